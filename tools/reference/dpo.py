#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/losses/dpo.hpp: TRL DPOTrainer's preference losses (every loss_type,
every f-divergence, label smoothing, also per pair (soft labels), weighted combinations,
RPO, the bco_pair running mean, WPO weights) with gradients by autograd, plus the two
helpers ld_sequence_logps (LD-DPO) and wpo_weights (WPO). Float64 from float32 inputs. Writes tests/fixtures/dpo.json.

Each case has config.kind:
  "loss"  dpo_loss on sequence log-probs: outputs loss, losses, grads, metrics
  "ld"    ld_sequence_logps on (N, T) token log-probs, then a sigmoid DPO loss on the
          length-desensitised sums with the gradient w.r.t. the policy's token log-probs
  "wpo"   wpo_weights from (N, T, V) logits
"""
import math

import torch
import torch.nn.functional as F

from common import Fixture, T, S, f32

LOSS_TYPES = ["sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair",
              "sppo_hard", "aot", "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft",
              "sigmoid_norm"]
F_DIVERGENCES = ["reverse_kl", "forward_kl", "js_divergence", "alpha_divergence"]
# The loss types TRL 1.16 allows with a divergence other than reverse_kl (it raises a
# ValueError for the others; so does rlhf++'s dpo_loss).
F_DIVERGENCE_TYPES = ["sigmoid", "sigmoid_norm", "hinge", "ipo", "exo_pair", "robust",
                      "discopop", "sft"]


def allowed(t, fdiv):
    return fdiv == "reverse_kl" or t in F_DIVERGENCE_TYPES


def r32(x):
    """A Python float rounded to float32 (what the C++ config holds)."""
    return float(torch.tensor(x, dtype=torch.float32))


def score(x, kind, a):
    """The f-divergence score of a log-ratio (f-DPO) as TRL 1.16 writes it, constants
    included (they cancel in s(cr) - s(rj) but not where ipo / sigmoid_norm divide each
    score by its own length)."""
    if kind == "reverse_kl":
        return x
    if kind == "forward_kl":
        return 1.0 - torch.exp(-x)
    if kind == "js_divergence":
        return math.log(2.0) + F.logsigmoid(x)
    if kind == "alpha_divergence":
        if abs(a - 1.0) < 1e-6:
            return x
        return (torch.exp(torch.clamp((a - 1.0) * x, max=80.0)) - 1.0) / (a - 1.0)
    raise ValueError(kind)


def smoothed_sigmoid(z, eps):
    return -(1 - eps) * F.logsigmoid(z) - eps * F.logsigmoid(-z)


def dpo_reference(lc, lr, rc, rrf, cfg, nc=None, nr=None, wt=None, bco_state=None,
                  eps_pairs=None):
    """Returns (loss, per-example combined losses, metrics, bco state after) for the
    configuration dict `cfg` (TRL names). eps_pairs: a per-pair ε for the sigmoid term
    (soft labels p = 1 - ε) in place of label_smoothing."""
    beta, eps = cfg["beta"], cfg["label_smoothing"]
    rc, rrf = rc.detach(), rrf.detach()
    cr, rj = lc - rc, lr - rrf
    sc = score(cr, cfg["f_divergence_type"], cfg["f_alpha_divergence_coef"])
    sr = score(rj, cfg["f_divergence_type"], cfg["f_alpha_divergence_coef"])
    D = sc - sr
    z = beta * D
    types = list(cfg["loss_type"])
    weights = list(cfg["loss_weights"]) if cfg["loss_weights"] else [1.0] * len(types)
    if cfg["rpo_alpha"] is not None:  # RPO = the listed losses + alpha * NLL(chosen)
        types.append("sft")
        weights.append(cfg["rpo_alpha"])
    n = lc.shape[0]
    delta = 0.0
    state_after = None
    if "bco_pair" in types and bco_state is not None:
        # TRL 0.x RunningMoments fed with the batch mean of [β·cr, β·rj]: one value a batch.
        batch_mean = torch.cat([beta * cr, beta * rj]).mean().detach().item()
        mean, count = bco_state
        count = count + 1
        mean = mean + (batch_mean - mean) / count
        delta = mean
        state_after = (mean, count)
    loss = 0.0
    per_example = torch.zeros(n, dtype=torch.float64)
    for t, w in zip(types, weights):
        if t == "sigmoid":
            L = smoothed_sigmoid(z, eps if eps_pairs is None else eps_pairs)
        elif t == "hinge":
            L = torch.relu(1 - z)
        elif t == "ipo":
            L = (sc / nc.clamp(min=1) - sr / nr.clamp(min=1) - 1 / (2 * beta)) ** 2
        elif t == "exo_pair":
            L = (torch.sigmoid(z) * (F.logsigmoid(z) - math.log1p(-eps)) +
                 torch.sigmoid(-z) * (F.logsigmoid(-z) - math.log(eps)))
        elif t == "nca_pair":
            a, b = beta * sc, beta * sr
            L = -F.logsigmoid(a) - 0.5 * F.logsigmoid(-a) - 0.5 * F.logsigmoid(-b)
        elif t == "robust":
            L = (-(1 - eps) * F.logsigmoid(z) + eps * F.logsigmoid(-z)) / (1 - 2 * eps)
        elif t == "bco_pair":
            L = -F.logsigmoid(beta * sc - delta) - F.logsigmoid(-(beta * sr - delta))
        elif t == "sppo_hard":
            L = (sc - 0.5 / beta) ** 2 + (sr + 0.5 / beta) ** 2
        elif t == "aot":
            d = torch.sort(lc - lr)[0] - torch.sort(rc - rrf)[0]
            L = smoothed_sigmoid(beta * d, eps)
        elif t == "aot_unpaired":
            d = torch.sort(cr)[0] - torch.sort(rj)[0]
            L = smoothed_sigmoid(beta * d, eps)
        elif t == "apo_zero":
            L = (1 - torch.sigmoid(beta * cr)) + torch.sigmoid(beta * rj)
        elif t == "apo_down":
            L = torch.sigmoid(beta * cr) + (1 - torch.sigmoid(z))
        elif t == "discopop":
            tau = cfg["discopop_tau"]
            m = torch.sigmoid(z / tau)
            L = -F.logsigmoid(z) * (1 - m) + torch.exp(-z) * m
        elif t == "sft":
            # Token-mean NLL of the chosen completions over the batch (lc = Σ token logps).
            L = (-lc.sum() / nc.sum().clamp(min=1)).expand(n)
        elif t == "sigmoid_norm":
            L = -F.logsigmoid(beta * (sc / nc.clamp(min=1) - sr / nr.clamp(min=1)))
        else:
            raise ValueError(t)
        if wt is not None:  # WPO: TRL multiplies every term by w_c·w_r, by batch position
            L = L * wt
        loss = loss + w * L.mean()
        per_example = per_example + w * L
    rw_c, rw_r = (beta * cr).detach(), (beta * rj).detach()
    metrics = {"rewards_chosen": S(rw_c.mean()), "rewards_rejected": S(rw_r.mean()),
               "rewards_accuracies": S((rw_c > rw_r).double().mean()),
               "rewards_margins": S((rw_c - rw_r).mean()),
               "logps_chosen": S(lc.detach().mean()), "logps_rejected": S(lr.detach().mean())}
    return loss, per_example, metrics, state_after


def make_config(loss_type, beta=0.1, label_smoothing=0.0, f_div="reverse_kl", alpha=0.5,
                tau=0.05, loss_weights=None, rpo_alpha=None, use_weighting=False):
    return {"kind": "loss",
            "loss_type": list(loss_type) if isinstance(loss_type, (list, tuple)) else [loss_type],
            "beta": r32(beta), "label_smoothing": r32(label_smoothing),
            "f_divergence_type": f_div, "f_alpha_divergence_coef": r32(alpha),
            "discopop_tau": r32(tau),
            "loss_weights": [r32(w) for w in loss_weights] if loss_weights else [],
            "rpo_alpha": None if rpo_alpha is None else r32(rpo_alpha),
            "use_weighting": use_weighting}


def loss_case(fx, name, cfg, lc, lr, rc, rrf, nc=None, nr=None, wt=None, bco_state=None,
              eps_pairs=None):
    lc, lr, rc, rrf = f32(lc), f32(lr), f32(rc), f32(rrf)
    eps_pairs = None if eps_pairs is None else f32(eps_pairs).detach()
    nc = None if nc is None else f32(nc).detach()
    nr = None if nr is None else f32(nr).detach()
    wt = None if wt is None else f32(wt).detach()
    loss, per_example, metrics, state_after = dpo_reference(lc, lr, rc, rrf, cfg, nc, nr, wt,
                                                            bco_state, eps_pairs)
    loss.backward()
    for x in (lc, lr):  # a loss that does not read an input (sft: lr) leaves grad None
        if x.grad is None:
            x.grad = torch.zeros_like(x)
    values = [float(loss)] + per_example.tolist() + lc.grad.tolist() + lr.grad.tolist()
    if not all(math.isfinite(v) for v in values):
        return False  # the reference itself overflows here (e.g. forward_kl at -1e3)
    outputs = {"loss": S(loss), "losses": T(per_example), "grad_policy_chosen_logps": T(lc.grad),
               "grad_policy_rejected_logps": T(lr.grad), **metrics}
    inputs = {"policy_chosen_logps": T(lc), "policy_rejected_logps": T(lr),
              "reference_chosen_logps": T(rc), "reference_rejected_logps": T(rrf)}
    if nc is not None:
        inputs["chosen_lengths"] = T(nc)
    if nr is not None:
        inputs["rejected_lengths"] = T(nr)
    if wt is not None:
        inputs["weights"] = T(wt)
    if eps_pairs is not None:
        inputs["label_smoothing"] = T(eps_pairs)
    cfg = dict(cfg)
    if bco_state is not None:
        cfg["bco_running_mean"] = [bco_state[0], bco_state[1]]
        outputs["bco_mean_after"] = state_after[0]
        outputs["bco_count_after"] = state_after[1]
    fx.add(name, cfg, inputs, outputs)
    return True


def typical_eps(t):
    return {"exo_pair": 1e-3, "robust": 0.1}.get(t, 0.0)


def random_batch(g, n):
    """Sequence log-probs of realistic size: sums over 10..200 tokens, reference close."""
    nc = torch.randint(1, 200, (n,), generator=g).double()
    nr = torch.randint(1, 200, (n,), generator=g).double()
    lc = -nc * (0.5 + torch.rand(n, generator=g))
    lr = -nr * (0.5 + torch.rand(n, generator=g))
    rc = lc + 3.0 * torch.randn(n, generator=g)
    rrf = lr + 3.0 * torch.randn(n, generator=g)
    return lc, lr, rc, rrf, nc, nr


def ld_case(fx, name, g, n, t, alpha, beta=0.1):
    """Token log-probs (already shifted: column t is the log-prob of token t), completion
    masks with prompt zeros and right padding."""
    def masks():
        m = torch.zeros(n, t)
        for i in range(n):
            start = int(torch.randint(0, 3, (1,), generator=g))
            length = int(torch.randint(1, t - start + 1, (1,), generator=g))
            m[i, start:start + length] = 1.0
        return m
    mc, mr = masks(), masks()
    tok = {k: f32(-3.0 * torch.rand(n, t, generator=g)) for k in ("pc", "pr", "rc", "rr")}
    a = r32(alpha)

    def ld(x, m, other):
        # Column 0 is never predicted (token_logprobs' layout): its mask is ignored.
        m = torch.cat([torch.zeros(n, 1), m[:, 1:]], dim=1)
        other = other[:, 1:]
        pos = torch.cumsum(m, dim=1)
        shared = torch.minimum(m.sum(1), other.sum(1)).unsqueeze(1)
        w = m * torch.where(pos <= shared, torch.ones_like(pos), torch.full_like(pos, a))
        return (x * w).sum(1), w

    lc, wc = ld(tok["pc"], mc, mr)
    lr, wr = ld(tok["pr"], mr, mc)
    rc, _ = ld(tok["rc"], mc, mr)
    rrf, _ = ld(tok["rr"], mr, mc)
    bt = r32(beta)
    loss = -F.logsigmoid(bt * ((lc - lr) - (rc - rrf).detach())).mean()
    loss.backward()
    fx.add(name, {"kind": "ld", "ld_alpha": a, "beta": bt},
           {"policy_chosen_token_logps": T(tok["pc"]), "policy_rejected_token_logps": T(tok["pr"]),
            "reference_chosen_token_logps": T(tok["rc"]),
            "reference_rejected_token_logps": T(tok["rr"]),
            "chosen_mask": T(mc), "rejected_mask": T(mr)},
           {"policy_chosen_logps": T(lc), "policy_rejected_logps": T(lr),
            "reference_chosen_logps": T(rc), "reference_rejected_logps": T(rrf),
            "chosen_token_weights": T(wc), "rejected_token_weights": T(wr),
            "loss": S(loss), "grad_policy_chosen_token_logps": T(tok["pc"].grad),
            "grad_policy_rejected_token_logps": T(tok["pr"].grad)})


def wpo_case(fx, name, g, n, t, v):
    logits = f32(2.0 * torch.randn(n, t, v, generator=g)).detach()
    tokens = torch.randint(0, v, (n, t), generator=g)
    mask = (torch.rand(n, t, generator=g) > 0.3).float()
    mask[0, 0] = 1.0       # position 0 is never predicted: ignored
    mask[-1, 1:] = 0.0     # no completion token: the mean is 0 (count clamped), w = 1
    shift_logits = logits[:, :-1, :]
    shift_tokens = tokens[:, 1:]
    shift_mask = mask[:, 1:].double()
    logp = torch.log_softmax(shift_logits, -1).gather(-1, shift_tokens.unsqueeze(-1)).squeeze(-1)
    lse1 = torch.logsumexp(shift_logits, -1)
    lse2 = torch.logsumexp(2.0 * shift_logits, -1)
    aligned = (logp - (lse2 - 2.0 * lse1)) * shift_mask
    w = torch.exp(aligned.sum(1) / shift_mask.sum(1).clamp(min=1))
    fx.add(name, {"kind": "wpo"}, {"logits": T(logits), "tokens": T(tokens.int()), "mask": T(mask)},
           {"weights": T(w)})


def main():
    g = torch.Generator().manual_seed(20240611)
    fx = Fixture("dpo")
    n = 37
    lc, lr, rc, rrf, nc, nr = random_batch(g, n)

    # Every loss type under every f-divergence (label smoothing where the type needs it);
    # the first 12 pairs for the non-default divergences, to keep the file small.
    for fdiv in F_DIVERGENCES:
        m = n if fdiv == "reverse_kl" else 12
        for t in (t for t in LOSS_TYPES if allowed(t, fdiv)):
            loss_case(fx, f"random_{t}_{fdiv}", make_config(t, label_smoothing=typical_eps(t),
                                                            f_div=fdiv),
                      lc[:m], lr[:m], rc[:m], rrf[:m], nc[:m], nr[:m])
    # Options: cDPO label smoothing, other beta, alpha coefficient, discopop tau, aot with ε.
    loss_case(fx, "sigmoid_label_smoothing", make_config("sigmoid", label_smoothing=0.2),
              lc, lr, rc, rrf)
    loss_case(fx, "sigmoid_beta_0.5", make_config("sigmoid", beta=0.5), lc, lr, rc, rrf)
    loss_case(fx, "hinge_beta_1", make_config("hinge", beta=1.0), lc, lr, rc, rrf)
    loss_case(fx, "robust_eps_0.3", make_config("robust", label_smoothing=0.3), lc, lr, rc, rrf)
    loss_case(fx, "exo_pair_eps_0.1", make_config("exo_pair", label_smoothing=0.1),
              lc, lr, rc, rrf)
    loss_case(fx, "aot_eps_0.1", make_config("aot", label_smoothing=0.1), lc, lr, rc, rrf)
    loss_case(fx, "aot_unpaired_eps_0.1", make_config("aot_unpaired", label_smoothing=0.1),
              lc, lr, rc, rrf)
    loss_case(fx, "discopop_tau_0.5", make_config("discopop", tau=0.5), lc, lr, rc, rrf)
    loss_case(fx, "alpha_divergence_0.2_sigmoid",
              make_config("sigmoid", f_div="alpha_divergence", alpha=0.2), lc, lr, rc, rrf)
    loss_case(fx, "alpha_divergence_1_is_reverse_kl",
              make_config("sigmoid", f_div="alpha_divergence", alpha=1.0), lc, lr, rc, rrf)
    # Combinations: RPO, MPO-style weighted sums, WPO weights, bco running mean.
    loss_case(fx, "rpo", make_config("sigmoid", rpo_alpha=0.5), lc, lr, rc, rrf, nc, nr)
    loss_case(fx, "mpo_weighted", make_config(["sigmoid", "bco_pair", "sft"],
                                              loss_weights=[0.8, 0.2, 1.0]),
              lc, lr, rc, rrf, nc, nr)
    loss_case(fx, "all_types_combined",
              make_config(LOSS_TYPES, label_smoothing=0.1, tau=0.2,
                          loss_weights=[0.05 * (k + 1) for k in range(len(LOSS_TYPES))]),
              lc, lr, rc, rrf, nc, nr)
    wt = 0.05 + 0.95 * torch.rand(n, generator=g)
    loss_case(fx, "wpo_sigmoid", make_config("sigmoid", use_weighting=True), lc, lr, rc, rrf,
              wt=wt)
    loss_case(fx, "wpo_rpo_aot", make_config(["sigmoid", "aot"], rpo_alpha=1.0,
                                             use_weighting=True),
              lc, lr, rc, rrf, nc, nr, wt=wt)
    loss_case(fx, "bco_running_mean_first", make_config("bco_pair"), lc, lr, rc, rrf,
              bco_state=(0.0, 0))
    loss_case(fx, "bco_running_mean_later", make_config("bco_pair"),
              lc, lr, rc, rrf, bco_state=(0.3, 5))
    # Lengths of 0 are clamped to 1 where divided.
    nc0, nr0 = nc.clone(), nr.clone()
    nc0[3], nr0[5] = 0.0, 0.0
    loss_case(fx, "zero_lengths_ipo", make_config("ipo"), lc, lr, rc, rrf, nc0, nr0)
    loss_case(fx, "zero_lengths_sigmoid_norm_sft", make_config(["sigmoid_norm", "sft"]),
              lc, lr, rc, rrf, nc0, nr0)

    # Extremes: log-probs of ±1e3 and TRL's stability values (410 / -610 / 95.5); a case is
    # kept only where the float64 reference is finite (forward_kl overflows exp at -1e3).
    xc = torch.tensor([1e3, -1e3, 410.0, -610.0, 95.5, 0.0, -1e3, 1e3])
    xr = torch.tensor([-1e3, 1e3, -610.0, 410.0, 95.5, 0.0, -1e3, -1e3])
    yc = torch.tensor([0.0, 0.0, 95.5, 410.0, -610.0, 0.0, 1e3, 1e3])
    yr = torch.tensor([0.0, 0.0, 410.0, -610.0, 95.5, 0.0, -1e3, -1e3])
    xn = torch.tensor([1000.0, 1000.0, 410.0, 610.0, 96.0, 1.0, 1000.0, 1000.0])
    for fdiv in F_DIVERGENCES:
        for t in (t for t in LOSS_TYPES if allowed(t, fdiv)):
            loss_case(fx, f"extreme_{t}_{fdiv}", make_config(t, label_smoothing=typical_eps(t),
                                                             f_div=fdiv),
                      xc, xr, yc, yr, xn, xn)
    # Policy equal to reference: sigmoid loss ln 2, accuracies 0.
    loss_case(fx, "equal_policy_reference", make_config("sigmoid"), lc, lr, lc, lr)
    # One pair.
    for t in LOSS_TYPES:
        loss_case(fx, f"single_pair_{t}", make_config(t, label_smoothing=typical_eps(t)),
                  torch.tensor([-12.5]), torch.tensor([-20.25]), torch.tensor([-14.0]),
                  torch.tensor([-18.0]), torch.tensor([9.0]), torch.tensor([13.0]))

    # Helpers.
    ld_case(fx, "ld_alpha_0.3", g, 5, 11, 0.3)
    ld_case(fx, "ld_alpha_0", g, 4, 8, 0.0)
    ld_case(fx, "ld_alpha_1", g, 3, 7, 1.0)
    wpo_case(fx, "wpo_weights", g, 4, 9, 13)

    # Soft labels: a per-pair ε in [0, 1] for the sigmoid term (their own generator, so the
    # cases above stay as they were); with sft and WPO weights; at the extremes.
    h = torch.Generator().manual_seed(20261203)
    eps_pairs = torch.rand(n, generator=h)
    eps_pairs[:4] = torch.tensor([0.0, 1.0, 0.5, 0.0])
    loss_case(fx, "soft_labels_sigmoid", make_config("sigmoid"), lc, lr, rc, rrf,
              eps_pairs=eps_pairs)
    loss_case(fx, "soft_labels_sigmoid_sft_wpo", make_config(["sigmoid", "sft"], use_weighting=True),
              lc, lr, rc, rrf, nc, nr, wt=wt, eps_pairs=eps_pairs)
    loss_case(fx, "soft_labels_js_divergence", make_config("sigmoid", f_div="js_divergence"),
              lc[:12], lr[:12], rc[:12], rrf[:12], eps_pairs=eps_pairs[:12])
    loss_case(fx, "soft_labels_extreme", make_config("sigmoid"), xc, xr, yc, yr,
              eps_pairs=torch.tensor([0.3, 0.7, 0.0, 1.0, 0.5, 0.25, 0.9, 0.1]))
    fx.write()


if __name__ == "__main__":
    main()
