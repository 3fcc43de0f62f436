# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""KTO fixtures from TRL's own KTOTrainer._compute_loss and _compute_kl_logps
(trl/trainer/kto_trainer.py) over its fused LM head, read from the installed package.

Each case starts from policy and reference logits (N, T, V) of the examples and of their KL
sequences (mismatched prompt/completion pairs, their own ids), labels and completion masks.
Recorded: TRL's per-token log-probs, the loss, the metrics and d loss / d policy logits.

    $RLHF_TOOLS_PYTHON tools/reference/trl/kto.py [--out DIR]   # tests/fixtures/trl/kto.json
"""
import contextlib
import types
import warnings

import torch
import torch.nn.functional as F

import trl_source as ts

N, T, V, PROMPT = 4, 6, 11, 2


def trainer_class():
    ns = {"torch": torch, "F": F, "warnings": warnings, "contextlib": contextlib,
          "is_peft_model": lambda model: False,
          "disable_gradient_checkpointing": ts.no_gradient_checkpointing}
    ts.load_defs("trainer/kto_trainer.py",
                 ["KTOTrainer._compute_kl_logps", "KTOTrainer._compute_loss"], ns)
    return type("KTOTrainerStandIn", (), {"_compute_kl_logps": ns["_compute_kl_logps"],
                                          "_compute_loss": ns["_compute_loss"]})


def make_batch(seed, labels, scale=1.5, ref_offset=0.4, lengths=(4, 3, 2, 4), kl_lengths=(3, 4, 4, 2)):
    g = torch.Generator().manual_seed(seed)
    z = lambda: torch.randn(N, T, V, generator=g) * scale
    logits, kl_logits = z(), z()
    ref = logits + torch.randn(N, T, V, generator=g) * ref_offset
    kl_ref = kl_logits + torch.randn(N, T, V, generator=g) * ref_offset
    ids = torch.randint(0, V, (N, T), generator=g)
    kl_ids = torch.randint(0, V, (N, T), generator=g)
    kl_ids[:, 0] = (ids[:, 0] + 1) % V  # never equal to the examples' ids

    def masks(lens):
        m = torch.zeros(N, T, dtype=torch.int64)
        for i, c in enumerate(lens):
            m[i, PROMPT:PROMPT + c] = 1
        a = m.clone()
        a[:, :PROMPT] = 1
        return m, a

    mask, attention = masks(lengths)
    kl_mask, kl_attention = masks(kl_lengths)
    return {"logits": logits.float(), "ref_logits": ref.float(), "kl_logits": kl_logits.float(),
            "kl_ref_logits": kl_ref.float(), "input_ids": ids, "KL_input_ids": kl_ids,
            "completion_mask": mask, "attention_mask": attention, "KL_completion_mask": kl_mask,
            "KL_attention_mask": kl_attention, "label": torch.tensor(labels, dtype=torch.bool)}


def run_case(head, Trainer, name, b, loss_type="kto", beta=0.1, desirable_weight=1.0,
             undesirable_weight=1.0):
    policy = ts.Model(b["logits"], others=[(b["KL_input_ids"], b["kl_logits"])])
    reference = ts.Model(b["ref_logits"], requires_grad=False,
                         others=[(b["KL_input_ids"], b["kl_ref_logits"])])
    head["add_fused_lm_head"](policy, outputs=("log_probs", "entropy", "mean_logits"))
    head["add_fused_lm_head"](reference)
    self = Trainer()
    self.model, self.ref_model = policy, reference
    self.accelerator = ts.Accelerator()
    self.args = types.SimpleNamespace(gradient_checkpointing_kwargs=None)
    self.aux_loss_enabled = False
    self.precompute_ref_logps = False
    self.beta = beta
    self.loss_type = loss_type
    self.desirable_weight = desirable_weight
    self.undesirable_weight = undesirable_weight
    self.calculate_KL = loss_type not in ["apo_zero_unpaired"]  # as KTOTrainer.__init__
    self._metrics = ts.new_metrics()
    self._total_train_tokens = 0
    self._tp_size = 1
    keys = ["input_ids", "attention_mask", "completion_mask", "label"]
    if self.calculate_KL:
        keys += ["KL_input_ids", "KL_attention_mask", "KL_completion_mask"]
    inputs = {k: b[k] for k in keys}
    loss = self._compute_loss(policy, inputs, False)
    loss.backward()

    def logps(model, ids, mask):
        with torch.no_grad():
            return model(input_ids=ids, labels=ids.masked_fill(mask == 0, -100),
                         fused_lm_head=True).log_probs

    out = {"loss": ts.S(loss), "metrics": ts.last_metrics(self._metrics),
           "per_token_logps": ts.T(logps(policy, b["input_ids"], b["completion_mask"])),
           "ref_per_token_logps": ts.T(logps(reference, b["input_ids"], b["completion_mask"])),
           "grad_logits": ts.T(policy.logits.grad)}
    if self.calculate_KL:
        out["KL_per_token_logps"] = ts.T(logps(policy, b["KL_input_ids"], b["KL_completion_mask"]))
        out["KL_ref_per_token_logps"] = ts.T(logps(reference, b["KL_input_ids"],
                                                   b["KL_completion_mask"]))
    inputs = {k: ts.T(v) for k, v in b.items()}
    config = {"loss_type": loss_type, "beta": beta, "desirable_weight": desirable_weight,
              "undesirable_weight": undesirable_weight}
    return {"name": name, "config": config, "inputs": inputs, "outputs": out}


def main():
    ts.quiet()
    head = ts.fused_lm_head_namespace()
    Trainer = trainer_class()
    cases = []
    mixed, more_chosen = [True, False, True, False], [True, True, True, False]
    for lt in ["kto", "apo_zero_unpaired"]:
        cases.append(run_case(head, Trainer, f"{lt}", make_batch(1, mixed), loss_type=lt))
        cases.append(run_case(head, Trainer, f"{lt} beta 0.5 weights 1.33/0.7",
                              make_batch(2, more_chosen), loss_type=lt, beta=0.5,
                              desirable_weight=1.33, undesirable_weight=0.7))
        cases.append(run_case(head, Trainer, f"{lt} all desirable", make_batch(3, [True] * N),
                              loss_type=lt))
        cases.append(run_case(head, Trainer, f"{lt} all undesirable", make_batch(4, [False] * N),
                              loss_type=lt, beta=0.2))
        cases.append(run_case(head, Trainer, f"{lt} extreme logits",
                              make_batch(5, mixed, scale=25.0, ref_offset=8.0), loss_type=lt))
    # The KL estimate clamped at 0 (policy far below the reference on the KL sequences).
    cases.append(run_case(head, Trainer, "kto policy = reference", make_batch(6, mixed, ref_offset=0.0)))
    ts.write("kto", "kto.py", cases)


if __name__ == "__main__":
    main()
