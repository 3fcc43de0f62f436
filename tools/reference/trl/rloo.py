# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""RLOO loss fixtures from TRL's own RLOOTrainer._compute_loss and
_get_per_token_logps_and_entropies (trl/trainer/rloo_trainer.py) over its fused LM head;
nanmin/nanmax from trl/trainer/utils.py; read from the installed package.

Each case starts from policy logits (N, P + C, V); the sampling policy's sequence log-probs
(old_logps) are TRL's fused-head log-probs of other logits, summed over the completion mask as
RLOOTrainer._generate_and_score_completions sums them. Recorded: TRL's per-token log-probs, the
loss, the metrics and d loss / d logits.

    $RLHF_TOOLS_PYTHON tools/reference/trl/rloo.py [--out DIR]   # tests/fixtures/trl/rloo.json
"""
import types

import torch

import trl_source as ts

N, P, C, V = 4, 2, 4, 11


def trainer_class():
    ns = {"torch": torch, "profiling_decorator": ts.identity_decorator}
    ts.load_defs("trainer/utils.py", ["nanmin", "nanmax"], ns)
    methods = ["_get_per_token_logps_and_entropies", "_compute_loss"]
    ts.load_defs("trainer/rloo_trainer.py", [f"RLOOTrainer.{m}" for m in methods], ns)
    return type("RLOOTrainerStandIn", (), {m: ns[m] for m in methods})


def run_case(head, Trainer, name, seed, advantages, scale=1.5, old_noise=0.3, epsilon=0.2,
             epsilon_high=None, temperature=1.0, lengths=(4, 3, 4, 2)):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(N, P + C, V, generator=g) * scale).float()
    old_logits = (logits + torch.randn(N, P + C, V, generator=g) * old_noise).float()
    ids = torch.randint(0, V, (N, P + C), generator=g)
    completion_mask = torch.zeros(N, C, dtype=torch.int64)
    for i, c in enumerate(lengths):
        completion_mask[i, :c] = 1
    prompt_mask = torch.ones(N, P, dtype=torch.int64)

    def model_of(z, grad):
        m = ts.Model(z, requires_grad=grad)
        head["add_fused_lm_head"](m, temperature=temperature,
                                  outputs=("log_probs", "entropy") if grad else ("log_probs",))
        return m

    policy = model_of(logits, True)
    self = Trainer()
    self.model = policy
    self.accelerator = ts.Accelerator()
    self.args = types.SimpleNamespace()
    self.epsilon_low = epsilon  # as RLOOTrainer.__init__
    self.epsilon_high = epsilon_high if epsilon_high is not None else epsilon
    self.aux_loss_enabled = False
    self._metrics = ts.new_metrics()
    attention = torch.cat([prompt_mask, completion_mask], dim=1)
    with torch.no_grad():
        old_per_token = self._get_per_token_logps_and_entropies(model_of(old_logits, False), ids,
                                                                attention, C)[0]
    old_logps = (old_per_token * completion_mask).sum(1)  # as _generate_and_score_completions
    advantages = torch.tensor(advantages, dtype=torch.float32)
    inputs = {"prompt_ids": ids[:, :P], "prompt_mask": prompt_mask, "completion_ids": ids[:, P:],
              "completion_mask": completion_mask, "old_logps": old_logps, "advantages": advantages}
    loss = self._compute_loss(policy, inputs)
    loss.backward()
    with torch.no_grad():
        logps, entropies, _ = self._get_per_token_logps_and_entropies(policy, ids, attention, C,
                                                                      compute_entropy=True)
    config = {"epsilon": epsilon, "epsilon_high": epsilon_high, "temperature": temperature,
              "prompt_length": P}
    return {"name": name, "config": config,
            "inputs": {"logits": ts.T(logits), "input_ids": ts.T(ids),
                       "completion_mask": ts.T(completion_mask), "old_logps": ts.T(old_logps),
                       "advantages": ts.T(advantages)},
            "outputs": {"loss": ts.S(loss), "metrics": ts.last_metrics(self._metrics),
                        "per_token_logps": ts.T(logps), "entropies": ts.T(entropies),
                        "grad_logits": ts.T(policy.logits.grad)}}


def main():
    ts.quiet()
    head = ts.fused_lm_head_namespace()
    Trainer = trainer_class()
    adv = [1.2, -0.7, 0.4, -1.1]
    cases = [run_case(head, Trainer, "default", 1, adv),
             run_case(head, Trainer, "near on-policy", 2, adv, old_noise=0.01),
             run_case(head, Trainer, "clipping, epsilon_high 0.28", 3, adv, old_noise=0.5,
                      epsilon_high=0.28),
             run_case(head, Trainer, "epsilon 0.1, all positive advantages", 4,
                      [0.5, 1.5, 0.2, 2.0], old_noise=0.4, epsilon=0.1),
             run_case(head, Trainer, "all negative advantages", 5, [-0.5, -1.5, -0.2, -2.0],
                      old_noise=0.4),
             run_case(head, Trainer, "temperature 0.7", 6, adv, temperature=0.7),
             run_case(head, Trainer, "zero advantages", 7, [0.0, 0.0, 0.0, 0.0]),
             run_case(head, Trainer, "extreme logits", 8, adv, scale=25.0, old_noise=0.2)]
    ts.write("rloo", "rloo.py", cases)


if __name__ == "__main__":
    main()
