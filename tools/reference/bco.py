#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/losses/bco.hpp: TRL BCOTrainer's bco_loss without UDM: rewards
β(logp - ref_logp), δ = running mean updated with the batch's rewards first (TRL's
RunningMoments, replayed here in float64), desirable -logsigmoid(r - δ), undesirable
-logsigmoid(-(r - δ)), mean over the batch; gradient by autograd; TRL's summed metrics.
Cases chain one running mean (config holds it before the call, outputs after).
Writes tests/fixtures/bco.json."""
import torch
import torch.nn.functional as F

from common import Fixture, T, S, f32


def f32c(x):
    return float(torch.tensor(x, dtype=torch.float32))


class Running:
    """TRL's RunningMoments (mean part): count starts at 1e-24, Chan's batch merge."""

    def __init__(self):
        self.count, self.mean, self.var = 1e-24, 0.0, 1.0

    def update(self, xs):
        xs = xs.detach().to(torch.float64)
        n = xs.numel()
        xs_var, xs_mean = torch.var_mean(xs, unbiased=False)
        delta = float(xs_mean) - self.mean
        tot = self.count + n
        old_sum = self.var * self.count + delta ** 2 * self.count * n / tot
        self.var = (old_sum + float(xs_var) * n) / tot
        self.mean += delta * n / tot
        self.count = tot


def case(fx, name, running, lp, rp, labels, beta=0.1, update=True):
    beta = f32c(beta)
    lp, rp = f32(lp), f32(rp)
    lab = torch.as_tensor(labels, dtype=torch.float32)
    chosen = lab == 1
    config = {"beta": beta, "update_running": update, "running_count": running.count,
              "running_mean": running.mean}
    cr = beta * (lp[chosen] - rp[chosen])
    rj = beta * (lp[~chosen] - rp[~chosen])
    if update:
        running.update(torch.cat((cr, rj), 0))
    delta = torch.tensor(running.mean, dtype=torch.float64)
    chosen_losses = -F.logsigmoid(cr - delta)
    rejected_losses = -F.logsigmoid(-(rj - delta))
    loss = torch.cat((chosen_losses, rejected_losses), 0).mean()
    loss.backward()
    per = torch.empty(lp.shape[0], dtype=torch.float64)
    per[chosen] = chosen_losses.detach()
    per[~chosen] = rejected_losses.detach()
    fx.add(name, config,
           {"policy_logps": T(lp), "reference_logps": T(rp), "labels": T(lab)},
           {"loss": S(loss), "losses": T(per), "grad_policy_logps": T(lp.grad),
            "delta": S(delta), "running_count_after": running.count,
            "running_mean_after": running.mean,
            "rewards/chosen_sum": S(cr.detach().sum()),
            "logps/chosen_sum": S(lp.detach()[chosen].sum()), "count/chosen": S(chosen.sum()),
            "rewards/rejected_sum": S(rj.detach().sum()),
            "logps/rejected_sum": S(lp.detach()[~chosen].sum()),
            "count/rejected": S((~chosen).sum())})


def main():
    g = torch.Generator().manual_seed(555)
    fx = Fixture("bco")
    n = 37
    run = Running()
    for step in range(3):
        ref = -30 - 10 * torch.rand(n, generator=g)
        lp = ref + 4 * torch.randn(n, generator=g) + 2.0 * step
        labels = (torch.rand(n, generator=g) < 0.5).float()
        case(fx, f"train_step{step}", run, lp, ref, labels)
    ref = -30 - 10 * torch.rand(n, generator=g)
    lp = ref + 4 * torch.randn(n, generator=g)
    labels = (torch.rand(n, generator=g) < 0.5).float()
    case(fx, "eval_no_update", run, lp, ref, labels, update=False)
    case(fx, "beta_half", run, lp, ref, labels, beta=0.5)
    case(fx, "all_desirable", Running(), lp, ref, torch.ones(n))
    case(fx, "single_example", Running(), [-10.0], [-12.5], [0.0])
    case(fx, "extreme", Running(),
         torch.tensor([1e3, -1e3, 410.0, -610.0, 95.5, -95.5, 0.0]),
         torch.tensor([-1e3, 1e3, -610.0, 410.0, 0.0, 0.0, 0.0]),
         torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]), beta=1.0)
    fx.write()


if __name__ == "__main__":
    main()
