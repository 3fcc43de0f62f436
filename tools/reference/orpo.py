#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/losses/orpo.hpp: TRL ORPOTrainer's odds_ratio_loss on per-token mean
log-probs plus the chosen NLL (a global token mean, -Σ sums / Σ counts, as
nn.CrossEntropyLoss over the chosen sequences' tokens), gradients by autograd and TRL's
metrics. Cases with nll_tokens = completion and no sums derive the sums as lc·count.
Writes tests/fixtures/orpo.json."""
import torch
import torch.nn.functional as F

from common import Fixture, T, S, f32


def f32c(x):
    return float(torch.tensor(x, dtype=torch.float32))


def log1mexp(x):
    # TRL's helper: log(1 - exp(x)) for x < 0, two branches around -ln 2.
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)),
                       torch.log(-torch.expm1(x)))


def case(fx, name, lc, lr, counts, sums=None, beta=0.1, nll="prompt_and_completion"):
    beta = f32c(beta)
    lc, lr = f32(lc), f32(lr)
    counts = f32(counts).detach()
    if sums is not None:
        sums = f32(sums)
        nll_sums = sums
    else:
        assert nll == "completion"
        nll_sums = lc * counts
    nll_loss = -nll_sums.sum() / counts.sum()
    log_odds = (lc - lr) - (log1mexp(lc) - log1mexp(lr))
    ratio = F.logsigmoid(log_odds)
    losses = beta * ratio
    loss = nll_loss - losses.mean()
    loss.backward()
    rc, rj = beta * lc.detach(), beta * lr.detach()
    inputs = {"policy_chosen_logps": T(lc), "policy_rejected_logps": T(lr),
              "chosen_nll_token_counts": T(counts)}
    outputs = {"loss": S(loss), "losses": T(-losses), "grad_policy_chosen_logps": T(lc.grad),
               "grad_policy_rejected_logps": T(lr.grad),
               "rewards/chosen": S(rc.mean()), "rewards/rejected": S(rj.mean()),
               "rewards/accuracies": S((rc > rj).double().mean()),
               "rewards/margins": S((rc - rj).mean()),
               "logps/chosen": S(lc.detach().mean()), "logps/rejected": S(lr.detach().mean()),
               "nll_loss": S(nll_loss), "log_odds_ratio": S(ratio.mean()),
               "log_odds_chosen": S(log_odds.mean())}
    if sums is not None:
        inputs["chosen_nll_logp_sums"] = T(sums)
        outputs["grad_chosen_nll_logp_sums"] = T(sums.grad)
    fx.add(name, {"beta": beta, "nll_tokens": nll}, inputs, outputs)


def main():
    g = torch.Generator().manual_seed(77)
    fx = Fixture("orpo")
    n = 37
    lc = -F.softplus(torch.randn(n, generator=g)) - 0.05
    lr = -F.softplus(torch.randn(n, generator=g) + 0.5) - 0.05
    counts = torch.randint(5, 60, (n,), generator=g).float()
    # Prompt + completion sums: about -1.2 nats per token on average.
    sums = -counts * (0.2 + 2 * torch.rand(n, generator=g))
    case(fx, "random", lc, lr, counts, sums)
    case(fx, "beta_half", lc, lr, counts, sums, beta=0.5)
    case(fx, "completion_given_sums", lc, lr, counts, lc * counts, nll="completion")
    case(fx, "completion_derived_sums", lc, lr, counts, nll="completion")
    # Near 0 (large d log_odds / d logp), and around -ln 2 (the log1mexp branch point).
    lc_z = torch.tensor([-1e-6, -1e-4, -0.01, -0.6931472, -0.6931471, -0.7, -5.0])
    lr_z = torch.tensor([-1e-4, -1e-6, -0.6931471, -0.01, -0.7, -0.6931472, -1e-3])
    cnt_z = torch.tensor([1.0, 3.0, 0.0, 10.0, 2.0, 7.0, 4.0])
    case(fx, "near_zero_and_branch", lc_z, lr_z, cnt_z, -cnt_z * 0.5)
    # Extremes: TRL's stability values and -1e3 (log1mexp -> 0, odds -> logp).
    lc_x = torch.tensor([-1e3, -0.01, -410.0, -610.0, -95.5, -1e3])
    lr_x = torch.tensor([-0.01, -1e3, -610.0, -410.0, -1e3, -95.5])
    cnt_x = torch.tensor([20.0, 30.0, 40.0, 50.0, 60.0, 70.0])
    case(fx, "extreme", lc_x, lr_x, cnt_x, -cnt_x * torch.tensor([1e3, 0.01, 410.0, 610.0, 95.5, 1.0]))
    case(fx, "single_pair", [-0.8], [-1.9], [12.0], [-20.0])
    fx.write()


if __name__ == "__main__":
    main()
