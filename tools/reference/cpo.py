#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/losses/cpo.hpp: TRL CPOTrainer's cpo_loss (sigmoid, hinge, ipo, simpo;
alphapo = simpo with cpo_alpha 0; AlphaPO's reward transform (1 - p^-alpha)/alpha for
alpha != 0) plus cpo_alpha times the chosen NLL (global token mean -Σ sums / Σ counts),
gradients by autograd and TRL's metrics. Writes tests/fixtures/cpo.json."""
import torch
import torch.nn.functional as F

from common import Fixture, T, S, f32


def f32c(x):
    return float(torch.tensor(x, dtype=torch.float32))


def case(fx, name, lc, lr, counts=None, sums=None, loss_type="sigmoid", beta=0.1,
         label_smoothing=0.0, simpo_gamma=0.5, cpo_alpha=1.0, alpha=0.0, nll="completion"):
    beta, eps, gamma = f32c(beta), f32c(label_smoothing), f32c(simpo_gamma)
    cpo_alpha, alpha = f32c(cpo_alpha), f32c(alpha)
    config = {"loss_type": loss_type, "beta": beta, "label_smoothing": eps,
              "simpo_gamma": gamma, "cpo_alpha": cpo_alpha, "alpha": alpha,
              "nll_tokens": nll}
    if loss_type == "alphapo":  # TRL's CPOConfig.__post_init__
        loss_type, cpo_alpha = "simpo", 0.0
    lc, lr = f32(lc), f32(lr)
    if alpha != 0.0:
        rho_c = (1 - torch.exp(lc).pow(-alpha)) / alpha
        rho_r = (1 - torch.exp(lr).pow(-alpha)) / alpha
    else:
        rho_c, rho_r = lc, lr
    logits = rho_c - rho_r
    if loss_type == "simpo":
        logits = logits - gamma / beta
        losses = (-F.logsigmoid(beta * logits) * (1 - eps) - F.logsigmoid(-beta * logits) * eps)
    elif loss_type == "sigmoid":
        losses = (-F.logsigmoid(beta * logits) * (1 - eps) - F.logsigmoid(-beta * logits) * eps)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * logits)
    elif loss_type == "ipo":
        losses = (logits - 1 / (2 * beta)) ** 2
    else:
        raise ValueError(loss_type)
    inputs = {"policy_chosen_logps": T(lc), "policy_rejected_logps": T(lr)}
    outputs = {}
    if counts is not None:
        counts = f32(counts).detach()
        inputs["chosen_nll_token_counts"] = T(counts)
    if sums is not None:
        sums = f32(sums)
        inputs["chosen_nll_logp_sums"] = T(sums)
    if cpo_alpha == 0:
        nll_loss = torch.zeros((), dtype=torch.float64)
    else:
        if sums is not None:
            nll_sums = sums
        else:
            assert nll == "completion"
            mean_logps = loss_type in ("ipo", "simpo")
            nll_sums = lc * counts if mean_logps else lc
        nll_loss = -nll_sums.sum() / counts.sum()
    loss = losses.mean() + cpo_alpha * nll_loss
    loss.backward()
    rc, rj = beta * rho_c.detach(), beta * rho_r.detach()
    outputs.update({
        "loss": S(loss), "losses": T(losses), "grad_policy_chosen_logps": T(lc.grad),
        "grad_policy_rejected_logps": T(lr.grad),
        "rewards/chosen": S(rc.mean()), "rewards/rejected": S(rj.mean()),
        "rewards/accuracies": S((rc > rj).double().mean()),
        "rewards/margins": S((rc - rj).mean()),
        "logps/chosen": S(lc.detach().mean()), "logps/rejected": S(lr.detach().mean()),
        "nll_loss": S(nll_loss)})
    if sums is not None:
        outputs["grad_chosen_nll_logp_sums"] = T(sums.grad if sums.grad is not None
                                                 else torch.zeros_like(sums))
    fx.add(name, config, inputs, outputs)


def main():
    g = torch.Generator().manual_seed(31)
    fx = Fixture("cpo")
    n = 37
    counts = torch.randint(4, 80, (n,), generator=g).float()
    # Sum log-probs (sigmoid / hinge) and per-token means (ipo / simpo).
    mc = -0.3 - torch.rand(n, generator=g)
    mr = -0.5 - torch.rand(n, generator=g)
    sc, sr = mc * counts, mr * counts
    sums = sc - 0.0  # completion-token sums (the NLL tokens)
    case(fx, "sigmoid", sc, sr, counts, sums)
    case(fx, "sigmoid_label_smoothing", sc, sr, counts, sums, label_smoothing=0.1, beta=0.05)
    case(fx, "sigmoid_derived_nll", sc, sr, counts)
    case(fx, "hinge", sc, sr, counts, sums, loss_type="hinge", beta=0.1)
    case(fx, "ipo", mc, mr, counts, sums, loss_type="ipo", beta=0.1)
    case(fx, "ipo_beta_big", mc, mr, counts, sums, loss_type="ipo", beta=2.0)
    case(fx, "simpo", mc, mr, counts, sums, loss_type="simpo", beta=2.0, cpo_alpha=0.0)
    case(fx, "simpo_ls_nll", mc, mr, counts, sums, loss_type="simpo", beta=2.5,
         simpo_gamma=1.4, label_smoothing=0.2, cpo_alpha=0.5)
    case(fx, "simpo_derived_nll", mc, mr, counts, loss_type="simpo", beta=2.0)
    case(fx, "prompt_and_completion_nll", sc, sr, counts, sums - counts * 0.7,
         nll="prompt_and_completion")
    case(fx, "alphapo", mc, mr, loss_type="alphapo", beta=2.5, simpo_gamma=0.3, alpha=0.25)
    case(fx, "alphapo_negative_alpha", mc, mr, counts, sums, loss_type="alphapo", beta=2.5,
         alpha=-0.5)
    case(fx, "sigmoid_alpha", mc, mr, counts, sums, beta=1.0, alpha=0.1)
    case(fx, "ipo_alpha_nll", mc, mr, counts, sums, loss_type="ipo", beta=0.5, alpha=0.5,
         cpo_alpha=0.3)
    # Extremes: sums ±1e3 apart and TRL's stability values.
    xc = torch.tensor([-1e3, -1.0, -410.0, -610.0, -95.5, -1e3])
    xr = torch.tensor([-1.0, -1e3, -610.0, -410.0, -1e3, -95.5])
    xn = torch.tensor([100.0, 2.0, 50.0, 60.0, 30.0, 100.0])
    case(fx, "extreme_sigmoid", xc, xr, xn, xc)
    case(fx, "extreme_hinge", xc, xr, xn, xc, loss_type="hinge")
    case(fx, "extreme_ipo", xc, xr, xn, xc, loss_type="ipo")
    case(fx, "extreme_simpo", xc, xr, xn, xc, loss_type="simpo", beta=2.0)
    case(fx, "single_pair", [-35.0], [-41.5], [20.0], [-35.0])
    fx.write()


if __name__ == "__main__":
    main()
