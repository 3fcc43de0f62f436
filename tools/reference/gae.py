#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/rl/gae.hpp and rlhf/rl/whiten.hpp.

GAE: a plain reverse Python loop per row over the real tokens only (mask != 0): masked
positions are skipped (A = returns = 0 there), V beyond the last real token is 0. For right
padding this is TRL's loop exactly, and the script asserts that on those cases (TRL zeroes the
padded values/rewards, then runs delta = r_t + γ·V_{t+1} - V_t, A_t = delta + γλ·A_{t+1} over
all positions, vectorised over the batch).
Whitening: TRL's masked_mean / masked_var (unbiased) / masked_whiten, then masked positions
set to 0 as TRL does after whitening. Writes tests/fixtures/gae.json."""
import torch

from common import Fixture, T, S, f32


def gae_skip_masked(r, v, m, gamma, lam):
    n, t = r.shape
    adv = torch.zeros_like(r)
    for i in range(n):
        last_gae, next_value = 0.0, 0.0
        for j in reversed(range(t)):
            if m[i, j] == 0:
                continue
            delta = r[i, j] + gamma * next_value - v[i, j]
            last_gae = delta + gamma * lam * last_gae
            adv[i, j] = last_gae
            next_value = v[i, j]
    ret = torch.where(m != 0, adv + v, torch.zeros_like(v))
    return adv, ret


def gae_trl(r, v, m, gamma, lam):
    """TRL's loop (right padding only): padded rewards and values are zeroed first."""
    r, v = r * (m != 0), v * (m != 0)
    t = r.shape[1]
    last, out = 0.0, []
    for j in reversed(range(t)):
        nv = v[:, j + 1] if j < t - 1 else 0.0
        delta = r[:, j] + gamma * nv - v[:, j]
        last = delta + gamma * lam * last
        out.append(last)
    adv = torch.stack(out[::-1], 1)
    return adv, adv + v


def gae_case(fx, name, r, v, m, gamma=1.0, lam=0.95, right_padded=False):
    r, v, m = f32(r).detach(), f32(v).detach(), f32(m).detach()
    gamma = float(torch.tensor(gamma, dtype=torch.float32))
    lam = float(torch.tensor(lam, dtype=torch.float32))
    adv, ret = gae_skip_masked(r, v, m, gamma, lam)
    if right_padded:
        a2, r2 = gae_trl(r, v, m, gamma, lam)
        assert torch.allclose(adv, a2, rtol=1e-12, atol=1e-9), name
        assert torch.allclose(ret, r2, rtol=1e-12, atol=1e-9), name
    fx.add(name, {"kind": "gae", "gamma": gamma, "lam": lam},
           {"rewards": T(r), "values": T(v), "mask": T(m)},
           {"advantages": T(adv), "returns": T(ret)})


def whiten_case(fx, name, x, m, shift_mean=True):
    x, m = f32(x).detach(), f32(m).detach()
    s = m.sum()
    mean = (x * m).sum() / s
    var = ((x - mean) ** 2 * m).sum() / s * (s / (s - 1))
    w = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        w = w + mean
    w = torch.where(m != 0, w, torch.zeros_like(w))
    fx.add(name, {"kind": "whiten", "shift_mean": shift_mean}, {"x": T(x), "mask": T(m)},
           {"whitened": T(w), "mean": S(mean), "var": S(var)})


def right_mask(lengths, t):
    return (torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]).float()


def main():
    g = torch.Generator().manual_seed(7)
    fx = Fixture("gae")
    n, t = 6, 9
    r = torch.randn(n, t, generator=g)
    v = torch.randn(n, t, generator=g) * 2
    mask = right_mask([9, 4, 1, 6, 2, 8], t)
    gae_case(fx, "right_padding", r, v, mask, right_padded=True)
    gae_case(fx, "right_padding_gamma_lam", r, v, mask, 0.99, 0.9, right_padded=True)
    gae_case(fx, "gamma0_lam0", r, v, mask, 0.0, 0.0, right_padded=True)
    gae_case(fx, "gamma1_lam1", r, v, mask, 1.0, 1.0, right_padded=True)
    # Left padding / prompt zeros before the completion, and right padding together.
    left = mask.clone()
    left[0, :3] = 0
    left[3, :2] = 0
    left[5] = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1.0])
    gae_case(fx, "left_and_prompt_zeros", r, v, left)
    # Holes inside rows (stepped over), and garbage values/rewards under the mask.
    holes = (torch.rand(n, t, generator=g) > 0.35).float()
    holes[:, 0] = 1
    gae_case(fx, "holes", r * 3, v + 100 * (1 - holes), holes, 0.97, 0.93)
    # Long rows: T = 1024 in float32 (see the tolerance in test_gae.cpp).
    n, t = 2, 1024
    r = torch.randn(n, t, generator=g) * 0.1
    r[:, -1] += 1.0
    v = torch.randn(n, t, generator=g)
    gae_case(fx, "long_1024", r, v, right_mask([1024, 700], t), right_padded=True)
    gae_case(fx, "long_1024_gamma1_lam1", r, v, right_mask([1024, 700], t), 1.0, 1.0,
             right_padded=True)

    # Whitening.
    x = torch.randn(5, 8, generator=g) * 3 + 1.5
    m = right_mask([8, 3, 1, 6, 5], 8)
    whiten_case(fx, "whiten", x, m)
    whiten_case(fx, "whiten_keep_mean", x, m, shift_mean=False)
    w = m * torch.tensor([1.0, 0.5, 2.0, 1.0, 1.0, 0.25, 1.0, 3.0])
    whiten_case(fx, "whiten_weights", x, w)
    whiten_case(fx, "whiten_two_positions", x, right_mask([2, 0, 0, 0, 0], 8))
    fx.write()


if __name__ == "__main__":
    main()
