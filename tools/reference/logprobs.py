#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/ops/logprobs.hpp and rlhf/losses/sft.hpp: per-token log-probs with the
one-position shift (logits[t-1] predict token t), temperature, entropy, their gradients by
autograd for a random upstream gradient, the fused SFT (NLL and DFT) loss and gradient, and
sequence sum/mean. float64 from float32 inputs. Writes tests/fixtures/logprobs.json."""
import torch

from common import Fixture, T, S, f32


def forward(z, y, m, tau):
    """logps (N,T), entropy (N,T) as the C++ op defines them (0 at t=0 and where m=0)."""
    n, t, v = z.shape
    u = z[:, :-1] / tau                               # rows 0..T-2 predict 1..T-1
    logp_all = torch.log_softmax(u, dim=-1)
    yy = y[:, 1:].clamp(0, v - 1).long()              # masked positions may hold anything
    lp = logp_all.gather(-1, yy.unsqueeze(-1)).squeeze(-1)
    ent = -(logp_all.exp() * logp_all).sum(-1)
    used = m[:, 1:] != 0
    zero = torch.zeros(n, 1, dtype=z.dtype)
    logps = torch.cat([zero, torch.where(used, m[:, 1:] * lp, torch.zeros_like(lp))], 1)
    entropy = torch.cat([zero, torch.where(used, ent, torch.zeros_like(ent))], 1)
    correct = torch.cat([zero, (used & (u.argmax(-1) == yy)).double()], 1)
    return logps, entropy, correct, lp


def add_case(fx, name, z, y, m, tau, g, ge):
    z = f32(z)
    m = torch.as_tensor(m, dtype=torch.float32).double()
    g = torch.as_tensor(g, dtype=torch.float32).double()
    ge = torch.as_tensor(ge, dtype=torch.float32).double()
    logps, entropy, correct, raw = forward(z, y, m, tau)
    (g * logps).sum().add((ge * entropy).sum()).backward()
    grad_logits = z.grad.clone()
    z.grad = None
    # Fused sum: d(Σ logps)/dz.
    logps2, _, _, _ = forward(z, y, m, tau)
    logps2.sum().backward()
    grad_sum = z.grad.clone()
    z.grad = None
    count = m[:, 1:].sum()
    out = {"logps": T(logps), "entropy": T(entropy), "correct": T(correct),
           "grad_logits": T(grad_logits), "grad_logits_sum": T(grad_sum),
           "sequence_sum": T(logps.sum(1)),
           }
    if bool((m[:, 1:].sum(1) > 0).all()):
        out["sequence_mean"] = T(logps.sum(1) / m[:, 1:].sum(1))
    if tau == 1.0 and count > 0:
        for kind in ("nll", "dft"):
            lps, ent, corr, _ = forward(z, y, m, 1.0)
            if kind == "nll":
                loss = -lps.sum() / count
            else:
                used = m[:, 1:] != 0
                p = torch.where(used, (lps[:, 1:] / torch.where(used, m[:, 1:], torch.ones_like(m[:, 1:]))).exp(),
                                torch.zeros_like(m[:, 1:])).detach()
                loss = -(p * lps[:, 1:]).sum() / count
            loss.backward()
            out[f"sft_{kind}_loss"] = S(loss)
            out[f"sft_{kind}_grad_logits"] = T(z.grad)
            z.grad = None
        out["sft_num_tokens"] = S(count)
        out["sft_mean_token_accuracy"] = S((m * correct).sum() / count)
        out["sft_entropy"] = S((m * entropy).sum() / count)
    fx.add(name, {"temperature": float(torch.tensor(tau, dtype=torch.float32))},
           {"logits": T(z), "tokens": T(torch.as_tensor(y, dtype=torch.int32)), "mask": T(m),
            "grad_logps": T(g), "grad_entropy": T(ge)}, out)


def main():
    gen = torch.Generator().manual_seed(7)
    fx = Fixture("logprobs")
    n, t, v = 3, 7, 11
    z = torch.randn(n, t, v, generator=gen) * 2
    y = torch.randint(0, v, (n, t), generator=gen)
    m = torch.tensor([[0, 0, 1, 1, 1, 1, 1],      # prompt of 2, then completion
                      [0, 1, 1, 1, 0, 0, 0],      # right padding
                      [1, 1, 1, 1, 1, 1, 1]], dtype=torch.float32)
    y[1, 4:] = -100                                # pad ids under m = 0 are never read
    g = torch.randn(n, t, generator=gen)
    ge = torch.randn(n, t, generator=gen)
    add_case(fx, "random", z, y, m, 1.0, g, ge)
    add_case(fx, "temperature_0.7", z, y, m, 0.7, g, ge)
    mw = m.clone()
    mw[2] = torch.rand(t, generator=gen)           # fractional weights
    add_case(fx, "fractional_mask", z, y, mw, 1.0, g, ge)
    mz = m.clone()
    mz[1] = 0                                      # a fully masked row
    add_case(fx, "masked_row", z, y, mz, 1.0, g, ge)
    # Extreme logits: ±1e3 spreads (softmax saturates) and a near-tie.
    ze = torch.randn(2, 5, 7, generator=gen) * 1e3
    ze[1, 2] = torch.tensor([1e3, 1e3 - 1e-2, -1e3, 0, 5, 5, 5])
    ye = torch.randint(0, 7, (2, 5), generator=gen)
    me = torch.ones(2, 5)
    add_case(fx, "extreme_1e3", ze, ye, me, 1.0, torch.randn(2, 5, generator=gen),
             torch.randn(2, 5, generator=gen))
    # Length 2: exactly one predicted token per row.
    z2 = torch.randn(2, 2, 5, generator=gen)
    add_case(fx, "length_2", z2, torch.randint(0, 5, (2, 2), generator=gen), torch.ones(2, 2),
             1.0, torch.randn(2, 2, generator=gen), torch.randn(2, 2, generator=gen))
    fx.write()


if __name__ == "__main__":
    main()
