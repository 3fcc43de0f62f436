# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""DPO fixtures from TRL's own DPOTrainer._compute_loss (trl/trainer/dpo_trainer.py) and its
fused LM head (add_fused_lm_head + ChunkedLogProbFunction), read from the installed package.

Each case starts from policy and reference logits (2B, T, V) of B pairs stacked [chosen;
rejected], token ids and a completion mask; TRL computes the per-token log-probs, the loss, its
metrics, and torch autograd d loss / d policy logits (through TRL's own kernel backward).

    $RLHF_TOOLS_PYTHON tools/reference/trl/dpo.py [--out DIR]   # tests/fixtures/trl/dpo.json
"""
import contextlib
import math
import types
import warnings

import torch
import torch.nn.functional as F

import trl_source as ts

B, T, V, PROMPT = 4, 6, 11, 2


def make_batch(seed, scale=1.5, ref_offset=0.4, lengths=None):
    """Policy and reference logits, ids, completion and attention masks of B pairs."""
    g = torch.Generator().manual_seed(seed)
    n = 2 * B
    logits = torch.randn(n, T, V, generator=g) * scale
    ref = logits + torch.randn(n, T, V, generator=g) * ref_offset
    ids = torch.randint(0, V, (n, T), generator=g)
    if lengths is None:  # completion tokens per row (chosen rows, then rejected rows)
        lengths = [4, 3, 2, 4, 2, 4, 3, 1]
    mask = torch.zeros(n, T, dtype=torch.int64)
    for i, c in enumerate(lengths):
        mask[i, PROMPT:PROMPT + c] = 1
    attention = mask.clone()
    attention[:, :PROMPT] = 1
    return logits.float(), ref.float(), ids, mask, attention


def trainer_class():
    ns = {"torch": torch, "F": F, "math": math, "warnings": warnings, "contextlib": contextlib,
          "is_peft_model": lambda model: False,
          "disable_gradient_checkpointing": ts.no_gradient_checkpointing}
    ts.load_defs("trainer/dpo_trainer.py", ["DPOTrainer._compute_loss"], ns)
    return type("DPOTrainerStandIn", (), {"_compute_loss": ns["_compute_loss"]})


def run_case(head, Trainer, name, batch_name, batch, loss_type, loss_weights=None, beta=0.1,
             label_smoothing=0.0, f_divergence_type="reverse_kl", f_alpha_divergence_coef=0.5,
             discopop_tau=0.05, use_weighting=False, ld_alpha=None):
    logits, ref_logits, ids, mask, attention = batch
    policy = ts.Model(logits)
    reference = ts.Model(ref_logits, requires_grad=False)
    outputs = ("log_probs", "entropy", "mean_logits", "is_top1")  # as DPOTrainer.__init__
    if use_weighting:
        outputs += ("log_sum_sq_probs",)
    head["add_fused_lm_head"](policy, outputs=outputs)
    head["add_fused_lm_head"](reference)

    self = Trainer()
    self.model, self.ref_model = policy, reference
    self.accelerator = ts.Accelerator()
    self.args = types.SimpleNamespace(gradient_checkpointing_kwargs=None, discopop_tau=discopop_tau)
    self.aux_loss_enabled = False
    self.precompute_ref_logps = False
    self.beta = beta
    self.loss_types = list(loss_type)
    self.loss_weights = loss_weights or [1.0] * len(self.loss_types)  # as DPOTrainer.__init__
    self.ld_alpha = ld_alpha
    self.f_divergence_type = f_divergence_type
    self.f_alpha_divergence_coef = f_alpha_divergence_coef
    self.label_smoothing = label_smoothing
    self.use_weighting = use_weighting
    self._metrics = ts.new_metrics()
    self._total_train_tokens = 0
    self._tp_size = 1

    inputs = {"input_ids": ids, "attention_mask": attention, "completion_mask": mask}
    loss = self._compute_loss(policy, inputs, False)
    loss.backward()
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        logps = policy(input_ids=ids, attention_mask=attention, labels=labels,
                       fused_lm_head=True).log_probs
        ref_logps = reference(input_ids=ids, attention_mask=attention, labels=labels,
                              fused_lm_head=True).log_probs
    config = {"loss_type": list(loss_type), "loss_weights": loss_weights, "beta": beta,
              "label_smoothing": label_smoothing, "f_divergence_type": f_divergence_type,
              "f_alpha_divergence_coef": f_alpha_divergence_coef, "discopop_tau": discopop_tau,
              "use_weighting": use_weighting, "ld_alpha": ld_alpha}
    return {"name": name, "config": config,
            "inputs": {"batch": batch_name},
            "outputs": {"loss": ts.S(loss), "metrics": ts.last_metrics(self._metrics),
                        "per_token_logps": ts.T(logps), "ref_per_token_logps": ts.T(ref_logps),
                        "grad_logits": ts.T(policy.logits.grad)}}


def main():
    ts.quiet()
    head = ts.fused_lm_head_namespace()
    Trainer = trainer_class()
    cases, batches, kwargs_of = [], {}, {}

    def add(name, seed, batch_kw=None, **kw):
        # A few batches, shared by the cases: seed s is batch "random s % 6" unless batch_kw
        # makes it a special one.
        batch_kw = batch_kw or {}
        key = (f"random {seed % 6}" if not batch_kw else
               "extreme" if batch_kw.get("scale", 1.5) > 1.5 else "policy = reference")
        assert key not in kwargs_of or kwargs_of[key] == batch_kw, key
        kwargs_of[key] = batch_kw
        batch = make_batch(seed % 6 if not batch_kw else 90 + len(key), **batch_kw)
        if key not in batches:
            logits, ref_logits, ids, mask, attention = batch
            batches[key] = {"logits": ts.T(logits), "ref_logits": ts.T(ref_logits),
                            "input_ids": ts.T(ids), "completion_mask": ts.T(mask),
                            "attention_mask": ts.T(attention)}
        cases.append(run_case(head, Trainer, name, key, batch, **kw))

    # Every loss type on its own (TRL 1.16's 15), default options.
    singles = {"sigmoid": {}, "hinge": {}, "ipo": {}, "exo_pair": {"label_smoothing": 1e-3},
               "nca_pair": {}, "robust": {"label_smoothing": 0.1}, "bco_pair": {},
               "sppo_hard": {}, "aot": {"label_smoothing": 0.1}, "aot_unpaired": {},
               "apo_zero": {}, "apo_down": {}, "discopop": {}, "sft": {}, "sigmoid_norm": {}}
    for k, (lt, kw) in enumerate(singles.items()):
        add(f"{lt}", 100 + k, loss_type=[lt], **kw)
    # Larger β, and aot_unpaired with smoothing.
    add("sigmoid beta 2", 130, loss_type=["sigmoid"], beta=2.0)
    add("hinge beta 0.5", 131, loss_type=["hinge"], beta=0.5)
    add("ipo beta 0.5", 132, loss_type=["ipo"], beta=0.5)
    add("aot_unpaired smoothing 0.2", 133, loss_type=["aot_unpaired"], label_smoothing=0.2)
    add("discopop tau 0.5 beta 1", 134, loss_type=["discopop"], beta=1.0, discopop_tau=0.5)
    # f-divergences on the types that read them.
    fdiv = [("sigmoid", "forward_kl", {}), ("sigmoid", "js_divergence", {}),
            ("sigmoid", "alpha_divergence", {"f_alpha_divergence_coef": 0.5}),
            ("sigmoid", "alpha_divergence", {"f_alpha_divergence_coef": 1.0}),
            ("sigmoid", "alpha_divergence", {"f_alpha_divergence_coef": 1.7}),
            ("ipo", "js_divergence", {}), ("ipo", "forward_kl", {}),
            ("sigmoid_norm", "forward_kl", {}), ("sigmoid_norm", "alpha_divergence", {}),
            ("hinge", "alpha_divergence", {"f_alpha_divergence_coef": 0.3}),
            ("robust", "js_divergence", {"label_smoothing": 0.2}),
            ("exo_pair", "forward_kl", {"label_smoothing": 0.01}),
            ("discopop", "js_divergence", {}), ("sft", "forward_kl", {})]
    for k, (lt, div, kw) in enumerate(fdiv):
        coef = kw.get("f_alpha_divergence_coef", "")
        add(f"{lt} {div}{' ' + str(coef) if coef != '' else ''}", 140 + k, loss_type=[lt],
            f_divergence_type=div, beta=0.5, **kw)
    # Weighted combinations (RPO, MPO-style mixes).
    add("rpo sigmoid+sft", 160, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 0.5])
    add("mpo sigmoid+bco_pair+sft", 161, loss_type=["sigmoid", "bco_pair", "sft"],
        loss_weights=[0.8, 0.2, 1.0])
    add("apo_zero+ipo", 162, loss_type=["apo_zero", "ipo"], loss_weights=[1.0, 0.3])
    add("aot+nca_pair+hinge", 163, loss_type=["aot", "nca_pair", "hinge"],
        loss_weights=[0.5, 1.5, 0.25])
    add("sigmoid+sft forward_kl", 164, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 2.0],
        f_divergence_type="forward_kl")
    # WPO weighting.
    add("sigmoid use_weighting", 170, loss_type=["sigmoid"], use_weighting=True)
    add("ipo use_weighting", 171, loss_type=["ipo"], use_weighting=True)
    # (sft with use_weighting is left out: TRL 1.16 multiplies the expanded sft loss in place,
    # which torch refuses: "more than one element of the written-to tensor refers to a single
    # memory location".)
    add("sigmoid+bco_pair use_weighting", 172, loss_type=["sigmoid", "bco_pair"],
        loss_weights=[1.0, 0.7], use_weighting=True)
    # LD-DPO (chosen and rejected of different lengths in every pair but one).
    add("sigmoid ld_alpha 0.5", 180, loss_type=["sigmoid"], ld_alpha=0.5)
    add("ipo ld_alpha 0", 181, loss_type=["ipo"], ld_alpha=0.0)
    add("apo_down ld_alpha 0.3 beta 1", 182, loss_type=["apo_down"], ld_alpha=0.3, beta=1.0)
    # Extreme logits: peaked rows (log-probs down to ~-100), the policy far from the reference.
    add("sigmoid extreme logits", 190, batch_kw={"scale": 25.0, "ref_offset": 8.0},
        loss_type=["sigmoid"])
    add("hinge extreme logits", 191, batch_kw={"scale": 25.0, "ref_offset": 8.0},
        loss_type=["hinge"], beta=0.05)
    add("ipo extreme logits", 192, batch_kw={"scale": 25.0, "ref_offset": 8.0}, loss_type=["ipo"],
        beta=1.0)
    add("apo_zero+sft extreme logits", 193, batch_kw={"scale": 25.0, "ref_offset": 8.0},
        loss_type=["apo_zero", "sft"], loss_weights=[1.0, 0.1])
    add("sigmoid js extreme logits", 194, batch_kw={"scale": 25.0, "ref_offset": 8.0},
        loss_type=["sigmoid"], f_divergence_type="js_divergence")
    add("sigmoid policy = reference", 195, batch_kw={"ref_offset": 0.0}, loss_type=["sigmoid"])
    # Documented deviation: TRL 1.16's sigmoid ignores label_smoothing (rlhf++ applies cDPO).
    add("sigmoid label_smoothing 0.1 (TRL ignores it)", 196, loss_type=["sigmoid"],
        label_smoothing=0.1)
    ts.write("dpo", "dpo.py", cases, batches=batches)


if __name__ == "__main__":
    main()
