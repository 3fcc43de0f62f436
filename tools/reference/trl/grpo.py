# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""GRPO fixtures from TRL's own GRPOTrainer (trl/trainer/grpo_trainer.py), read from the
installed package: _compute_loss with _get_per_token_logps_and_entropies, get_high_entropy_mask,
get_off_policy_mask and get_gamma_weights, over TRL's fused LM head; nanmin/nanmax from
trl/trainer/utils.py.

Each case starts from policy logits (N, P + C, V) over prompt + completion ids; the old, reference
and sampler log-probs are TRL's fused-head log-probs of other logits (recorded as inputs).
Recorded: TRL's per-token log-probs and entropies, the loss, the metrics and d loss / d logits.

    $RLHF_TOOLS_PYTHON tools/reference/trl/grpo.py [--out DIR]   # tests/fixtures/trl/grpo.json
"""
import math
import types

import torch

import trl_source as ts

N, P, C, V = 4, 2, 4, 11


def trainer_class():
    ns = {"torch": torch, "math": math, "profiling_decorator": ts.identity_decorator}
    ts.load_defs("trainer/utils.py", ["nanmin", "nanmax"], ns)
    methods = ["_get_per_token_logps_and_entropies", "get_high_entropy_mask",
               "get_off_policy_mask", "get_gamma_weights", "_compute_loss"]
    ts.load_defs("trainer/grpo_trainer.py", [f"GRPOTrainer.{m}" for m in methods], ns)
    return type("GRPOTrainerStandIn", (), {m: ns[m] for m in methods})


def make_batch(seed, scale=1.5, old_noise=0.3, ref_noise=0.3, lengths=(4, 3, 4, 2)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N, P + C, V, generator=g) * scale
    old = logits + torch.randn(N, P + C, V, generator=g) * old_noise
    ref = logits + torch.randn(N, P + C, V, generator=g) * ref_noise
    ids = torch.randint(0, V, (N, P + C), generator=g)
    completion_mask = torch.zeros(N, C, dtype=torch.int64)
    for i, c in enumerate(lengths):
        completion_mask[i, :c] = 1
    advantages = torch.tensor([1.2, -0.7, 0.4, -1.1])
    return {"logits": logits.float(), "old_logits": old.float(), "ref_logits": ref.float(),
            "ids": ids, "completion_mask": completion_mask, "advantages": advantages}


def run_case(head, Trainer, name, batch_name, b, loss_type="dapo", beta=0.0, epsilon=0.2,
             epsilon_high=None, delta=None, importance_sampling_level="token",
             top_entropy_quantile=1.0, off_policy_mask_threshold=None,
             use_bias_correction_kl=True, entropy_coef=0.0, temperature=1.0,
             max_completion_length=8, num_items_scale=1.0, with_old=True, sampler=None,
             is_ratio=None, vespo=None, sapo=None):
    ids, completion_mask = b["ids"], b["completion_mask"]
    prompt_ids, completion_ids = ids[:, :P], ids[:, P:]
    prompt_mask = torch.ones(N, P, dtype=torch.int64)

    def model_of(logits, grad):
        m = ts.Model(logits, requires_grad=grad)
        outputs = ("log_probs", "entropy") if grad else ("log_probs",)
        head["add_fused_lm_head"](m, temperature=temperature, outputs=outputs)
        return m

    policy = model_of(b["logits"], True)
    self = Trainer()
    self.model = policy
    self.accelerator = ts.Accelerator()
    args = {"use_bias_correction_kl": use_bias_correction_kl, "delta": delta,
            "sapo_temperature_pos": 1.0, "sapo_temperature_neg": 1.05, "vespo_k_pos": 2.0,
            "vespo_lambda_pos": 3.0, "vespo_k_neg": 3.0, "vespo_lambda_neg": 2.0,
            "steps_per_generation": 1, "entropy_target": 0.0}
    args.update(vespo or {})
    args.update(sapo or {})
    self.args = types.SimpleNamespace(**args)
    self.loss_type = loss_type
    self.beta = beta
    self.epsilon_low = epsilon  # as GRPOTrainer.__init__
    self.epsilon_high = epsilon_high if epsilon_high is not None else epsilon
    self.importance_sampling_level = importance_sampling_level
    self.top_entropy_quantile = top_entropy_quantile
    self.off_policy_mask_threshold = off_policy_mask_threshold
    self.max_completion_length = max_completion_length
    self.entropy_coef = entropy_coef
    self.use_adaptive_entropy = False
    self._entropy_bonus_enabled = entropy_coef != 0.0  # as GRPOTrainer.__init__
    self.use_vllm = is_ratio is not None and loss_type != "vespo"
    self.vllm_importance_sampling_correction = self.use_vllm
    self.aux_loss_enabled = False
    self.current_gradient_accumulation_steps = 1
    self._metrics = ts.new_metrics()

    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
    with torch.no_grad():  # TRL's _generate_and_score_completions does this with its models
        old = self._get_per_token_logps_and_entropies(model_of(b["old_logits"], False), input_ids,
                                                      attention_mask, C)[0]
        ref = self._get_per_token_logps_and_entropies(model_of(b["ref_logits"], False), input_ids,
                                                      attention_mask, C)[0]
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
              "completion_mask": completion_mask, "advantages": b["advantages"],
              "num_items_in_batch": completion_mask.sum().float() * num_items_scale}
    recorded = {}
    if with_old:
        inputs["old_per_token_logps"] = old
        recorded["old_per_token_logps"] = ts.T(old)
    if beta != 0.0:
        inputs["ref_per_token_logps"] = ref
        recorded["ref_per_token_logps"] = ts.T(ref)
    if sampler is not None:
        inputs["sampling_per_token_logps"] = sampler
        recorded["sampling_per_token_logps"] = ts.T(sampler)
    if is_ratio is not None:
        inputs["importance_sampling_ratio"] = is_ratio
        recorded["importance_sampling_ratio"] = ts.T(is_ratio)
    loss = self._compute_loss(policy, inputs)
    loss.backward()
    with torch.no_grad():
        logps, entropies, _ = self._get_per_token_logps_and_entropies(
            policy, input_ids, attention_mask, C, compute_entropy=True)
    config = {"loss_type": loss_type, "beta": beta, "epsilon": epsilon, "epsilon_high": epsilon_high,
              "delta": delta, "importance_sampling_level": importance_sampling_level,
              "top_entropy_quantile": top_entropy_quantile,
              "off_policy_mask_threshold": off_policy_mask_threshold,
              "use_bias_correction_kl": use_bias_correction_kl, "entropy_coef": entropy_coef,
              "temperature": temperature, "max_completion_length": max_completion_length,
              "num_items_in_batch": float(inputs["num_items_in_batch"]),
              "prompt_length": P, **args}
    recorded.update({"batch": batch_name, "advantages": ts.T(b["advantages"])})
    return {"name": name, "config": config, "inputs": recorded,
            "outputs": {"loss": ts.S(loss), "metrics": ts.last_metrics(self._metrics),
                        "per_token_logps": ts.T(logps), "entropies": ts.T(entropies),
                        "grad_logits": ts.T(policy.logits.grad)}}


def main():
    ts.quiet()
    head = ts.fused_lm_head_namespace()
    Trainer = trainer_class()
    cases, batches = [], {}

    def batch(key, seed, **kw):
        b = make_batch(seed, **kw)
        if key not in batches:
            batches[key] = {"logits": ts.T(b["logits"]), "input_ids": ts.T(b["ids"]),
                            "completion_mask": ts.T(b["completion_mask"])}
        return key, b

    plain = batch("random", 7)
    second = batch("random 2", 8, old_noise=0.6)
    extreme = batch("extreme", 9, scale=25.0, old_noise=2.0, ref_noise=4.0)

    def add(name, which=plain, **kw):
        cases.append(run_case(head, Trainer, name, which[0], which[1], **kw))

    for lt in ["grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo"]:
        add(f"{lt} token", loss_type=lt)
        add(f"{lt} sequence beta 0.04", second, loss_type=lt, importance_sampling_level="sequence",
            beta=0.04)
    add("grpo on-policy (no old log-probs)", loss_type="grpo", with_old=False)
    add("dapo beta 0.1", loss_type="dapo", beta=0.1)
    add("dapo beta 0.1 no bias correction", loss_type="dapo", beta=0.1,
        use_bias_correction_kl=False)
    add("grpo beta 0.05 sequence no bias correction", second, loss_type="grpo", beta=0.05,
        importance_sampling_level="sequence", use_bias_correction_kl=False)
    add("dapo epsilon_high 0.28", second, loss_type="dapo", epsilon_high=0.28)
    add("grpo delta 1.4", second, loss_type="grpo", epsilon_high=0.28, delta=1.4)
    add("bnpo delta 1.25 epsilon 0.1", second, loss_type="bnpo", epsilon=0.1, delta=1.25)
    add("cispo epsilon_high 1.1", second, loss_type="cispo", epsilon_high=1.1)
    add("dapo num_items_in_batch x2.5", loss_type="dapo", num_items_scale=2.5)
    add("dapo top_entropy_quantile 0.5", loss_type="dapo", top_entropy_quantile=0.5)
    add("grpo top_entropy_quantile 0.3 beta 0.04", second, loss_type="grpo",
        top_entropy_quantile=0.3, beta=0.04)
    add("dapo top_entropy_quantile 0", loss_type="dapo", top_entropy_quantile=0.0)
    add("dapo off_policy_mask 0.02", second, loss_type="dapo", off_policy_mask_threshold=0.02)
    add("grpo off_policy_mask 0 sequence", second, loss_type="grpo",
        off_policy_mask_threshold=0.0, importance_sampling_level="sequence")
    g = torch.Generator().manual_seed(11)
    sampler = (torch.randn(N, C, generator=g) * 0.5 - 2.0).float()
    sampler[1, 1] = float("nan")  # a token the sampler could not score
    add("dapo off_policy_mask with sampler log-probs (one NaN)", second, loss_type="dapo",
        off_policy_mask_threshold=0.1, sampler=sampler)
    is_ratio = (torch.rand(N, C, generator=g) * 1.5 + 0.25).float()
    add("dapo vLLM importance_sampling_ratio", second, loss_type="dapo", is_ratio=is_ratio)
    add("vespo importance_sampling_ratio", second, loss_type="vespo", is_ratio=is_ratio)
    add("vespo k/lambda", second, loss_type="vespo",
        vespo={"vespo_k_pos": 1.5, "vespo_lambda_pos": 2.0, "vespo_k_neg": 2.5,
               "vespo_lambda_neg": 0.5})
    add("sapo temperatures 0.5/2", second, loss_type="sapo",
        sapo={"sapo_temperature_pos": 0.5, "sapo_temperature_neg": 2.0})
    add("dapo entropy_coef 0.01", loss_type="dapo", entropy_coef=0.01)
    add("grpo entropy_coef 0.05 top_entropy_quantile 0.5", second, loss_type="grpo",
        entropy_coef=0.05, top_entropy_quantile=0.5)
    add("dapo temperature 0.7", loss_type="dapo", temperature=0.7, beta=0.04)
    add("grpo extreme logits beta 0.04", extreme, loss_type="grpo", beta=0.04)
    add("dapo extreme logits", extreme, loss_type="dapo")
    add("cispo extreme logits", extreme, loss_type="cispo", epsilon_high=5.0)
    add("sapo extreme logits sequence", extreme, loss_type="sapo",
        importance_sampling_level="sequence")
    add("vespo extreme logits", extreme, loss_type="vespo")
    ts.write("grpo", "grpo.py", cases, batches=batches)


if __name__ == "__main__":
    main()
