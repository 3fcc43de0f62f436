# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reward → advantage fixtures from TRL's own code: the statements of
GRPOTrainer._generate_and_score_completions and RLOOTrainer._generate_and_score_completions
from `rewards_per_func = self._calculate_rewards(...)` to the logging of
`frac_reward_zero_std`, executed unchanged (trl/trainer/grpo_trainer.py, rloo_trainer.py; nanstd
from trl/trainer/utils.py). The stand-in trainer's _calculate_rewards returns the case's
rewards_per_func (N, F); NaN is a reward function returning None. Recorded: the advantages and
the metrics TRL logs (reward, reward_std, frac_reward_zero_std, rewards/<func>/mean|std, kl).

    $RLHF_TOOLS_PYTHON tools/reference/trl/advantages.py [--out DIR]  # tests/fixtures/trl/advantages.json
"""
import torch

import trl_source as ts

nan = float("nan")
FIRST = "rewards_per_func = self._calculate_rewards("
LAST = '"frac_reward_zero_std"'


def block(rel, func):
    ns = {"torch": torch}
    ts.load_defs("trainer/utils.py", ["nanstd"], ns)
    return ts.statements(rel, func, FIRST, LAST), ns["nanstd"]


def standin(rewards_per_func, num_generations, weights, names, **attrs):
    self = type("TrainerStandIn", (), {})()
    self._calculate_rewards = lambda *args: rewards_per_func
    self.num_generations = num_generations
    self.reward_weights = torch.tensor(weights, dtype=torch.float32)
    self.reward_func_names = names
    self.reward_funcs = [None] * len(names)  # only counted
    self.accelerator = ts.Accelerator()
    self._metrics = ts.new_metrics()
    for k, v in attrs.items():
        setattr(self, k, v)
    return self


def run(code, nanstd, self, rewards_per_func, extra=None):
    n = rewards_per_func.shape[0]
    ns = {"torch": torch, "nanstd": nanstd, "self": self, "mode": "train",
          "device": torch.device("cpu"), "inputs": None, "prompts": [None] * n,
          "completions": None, "completion_ids_list": None, "gather": lambda x: x}
    ns.update(extra or {})
    code(ns)
    return ns["advantages"], ts.last_metrics(self._metrics)


def main():
    ts.quiet()
    grpo_code, nanstd = block("trainer/grpo_trainer.py", "GRPOTrainer._generate_and_score_completions")
    rloo_code, _ = block("trainer/rloo_trainer.py", "RLOOTrainer._generate_and_score_completions")
    g = torch.Generator().manual_seed(5)
    names = ["accuracy", "format"]
    cases = []

    def rewards(n=8, f=2):
        return torch.round(torch.randn(n, f, generator=g) * 100) / 100  # exact in float32

    plain = rewards()
    holes = rewards()
    holes[1, 0] = nan  # one function does not apply
    holes[2] = nan     # unscorable (every function None)
    holes[6, 1] = nan
    special = rewards()
    special[0:4, 0] = 0.5  # group 0: every completion the same...
    special[0:4, 1] = nan  # ...and the second function never applies: zero std
    special[4:7] = nan     # group 1: one scorable completion left
    dead = rewards()
    dead[4:8] = nan        # a group nobody could score

    def grpo(name, rpf, scale, weights=(1.0, 1.0), agg="sum_then_normalize", G=4):
        self = standin(rpf, G, list(weights), names, scale_rewards=scale,
                       multi_objective_aggregation=agg)
        adv, metrics = run(grpo_code, nanstd, self, rpf.float())
        cases.append({"name": name, "config": {"kind": "grpo", "num_generations": G,
                                               "scale_rewards": scale, "reward_weights": list(weights),
                                               "multi_objective_aggregation": agg,
                                               "reward_func_names": names},
                      "inputs": {"rewards_per_func": ts.T(rpf.float())},
                      "outputs": {"advantages": ts.T(adv), "metrics": metrics}})

    for scale in ["group", "batch", "none"]:
        grpo(f"grpo {scale}", plain, scale)
        grpo(f"grpo {scale}, unscorable and missing rewards", holes, scale)
        grpo(f"grpo {scale}, zero std and a single scorable", special, scale)
    grpo("grpo group, an unscorable group", dead, "group")
    grpo("grpo batch, weights 1/0.5", holes, "batch", weights=(1.0, 0.5))
    grpo("grpo group, G = 2", holes, "group", G=2)
    grpo("grpo group, G = 8", holes, "group", G=8)
    grpo("grpo normalize_then_sum", plain, "group", agg="normalize_then_sum")
    grpo("grpo normalize_then_sum, unscorable, weights 2/0.5", holes, "group", weights=(2.0, 0.5),
         agg="normalize_then_sum")
    grpo("grpo normalize_then_sum, zero std", special, "batch", agg="normalize_then_sum")

    mask = torch.ones(8, 4, dtype=torch.int64)
    mask[1, 3:] = 0
    mask[5, 2:] = 0
    old = (torch.randn(8, 4, generator=g) * 0.5 - 2.0).float()
    ref = (old + torch.randn(8, 4, generator=g) * 0.3).float()

    def rloo(name, rpf, beta=0.0, clip=None, normalize=False, weights=(1.0, 1.0), G=4):
        self = standin(rpf, G, list(weights), names, beta=beta, reward_clip_range=clip,
                       normalize_advantages=normalize)
        extra = {"old_per_token_logps": old, "ref_per_token_logps": ref, "completion_mask": mask}
        adv, metrics = run(rloo_code, nanstd, self, rpf.float(), extra)
        case_inputs = {"rewards_per_func": ts.T(rpf.float())}
        if beta != 0.0:
            case_inputs.update({"old_per_token_logps": ts.T(old), "ref_per_token_logps": ts.T(ref),
                                "completion_mask": ts.T(mask)})
        cases.append({"name": name, "config": {"kind": "rloo", "num_generations": G, "beta": beta,
                                               "reward_clip_range": list(clip) if clip else None,
                                               "normalize_advantages": normalize,
                                               "reward_weights": list(weights),
                                               "reward_func_names": names},
                      "inputs": case_inputs,
                      "outputs": {"advantages": ts.T(adv), "metrics": metrics}})

    rloo("rloo", plain)
    rloo("rloo beta 0.05", plain, beta=0.05)
    rloo("rloo unscorable and missing rewards, beta 0.05", holes, beta=0.05)
    rloo("rloo zero std and a single scorable", special)
    rloo("rloo an unscorable group, normalized", dead, normalize=True)
    rloo("rloo clip (-0.5, 0.8), normalized, weights 1/2", holes, clip=(-0.5, 0.8), normalize=True,
         weights=(1.0, 2.0))
    rloo("rloo G = 2, beta 0.1", holes, beta=0.1, G=2)
    ts.write("advantages", "advantages.py", cases)


if __name__ == "__main__":
    main()
