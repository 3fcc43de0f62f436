#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/rl/kl.hpp and rlhf/rl/rewards.hpp: the per-token KL estimators of TRL
(k1 = "kl", abs, mse = 0.5·Δ², k3 = exp(-Δ) - 1 + Δ) with their derivative by autograd, the
full KL over the vocabulary from logits (TRL 0.11: F.kl_div(ref, logp, log_target=True)),
the batch mean of per-sequence KL, and PPO's per-token rewards with the score on the LAST
real token (TRL 0.11 compute_rewards; InstructGPT). Writes tests/fixtures/kl.json."""
import torch
import torch.nn.functional as F

from common import Fixture, T, S, f32


def estimate(d, name):
    if name == "k1":
        return d
    if name == "abs":
        return d.abs()
    if name == "mse":
        return 0.5 * d.square()
    if name == "k3":
        return torch.exp(-d) - 1 + d
    raise ValueError(name)


def token_case(fx, name, est, logp, ref, mask):
    logp, ref = f32(logp), f32(ref)
    mask = f32(mask).detach()
    kl = estimate(logp - ref, est)
    kl.sum().backward()  # elementwise, so this is d kl_t / d logp_t
    seq_mean = (kl * mask).sum(1).mean()
    fx.add(name, {"kind": "token", "estimator": est},
           {"logp": T(logp), "ref_logp": T(ref), "mask": T(mask)},
           {"kl": T(kl), "grad": T(logp.grad), "mean_sequence_kl": S(seq_mean)})


def full_case(fx, name, logits, ref_logits):
    z, zr = f32(logits).detach(), f32(ref_logits).detach()
    logp = torch.log_softmax(z, -1)
    logq = torch.log_softmax(zr, -1)
    kl = F.kl_div(logq, logp, log_target=True, reduction="none").sum(-1)
    fx.add(name, {"kind": "full"}, {"logits": T(z), "ref_logits": T(zr)}, {"kl": T(kl)})


def rewards_case(fx, name, logp, ref, mask, scores, kl_coef, est, has_eos=None, penalty=None):
    logp, ref = f32(logp).detach(), f32(ref).detach()
    mask, scores = f32(mask).detach(), f32(scores).detach()
    kl_coef = float(torch.tensor(kl_coef, dtype=torch.float32))
    real = mask != 0
    kl = torch.where(real, estimate(logp - ref, est), torch.zeros_like(logp))
    rewards = -kl_coef * kl
    s = scores.clone()
    if penalty is not None:
        penalty = float(torch.tensor(penalty, dtype=torch.float32))
        has_eos = f32(has_eos).detach()
        s = torch.where(has_eos == 0, s - penalty, s)
    for i in range(logp.shape[0]):
        last = real[i].nonzero()[-1]  # TRL 0.11: mask.nonzero()[-1]
        rewards[i, last] += s[i]
    config = {"kind": "rewards", "estimator": est, "kl_coef": kl_coef}
    inputs = {"logprobs": T(logp), "ref_logprobs": T(ref), "mask": T(mask), "scores": T(scores)}
    if penalty is not None:
        config["missing_eos_penalty"] = penalty
        inputs["has_eos"] = T(has_eos)
    non_score = (-kl_coef * kl).sum(1).mean()
    fx.add(name, config, inputs,
           {"rewards": T(rewards), "kl": T(kl), "scores": T(s),
            "objective/kl": S(kl.sum(1).mean()), "objective/non_score_reward": S(non_score),
            "objective/scores": S(s.mean()), "objective/rlhf_reward": S(s.mean() + non_score)})


def right_mask(lengths, t):
    return (torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]).float()


def main():
    g = torch.Generator().manual_seed(2024)
    fx = Fixture("kl")
    n, t = 5, 7
    logp = -torch.rand(n, t, generator=g) * 4
    ref = logp + torch.randn(n, t, generator=g) * 0.7
    mask = right_mask([7, 3, 1, 5, 6], t)
    for est in ("k1", "abs", "mse", "k3"):
        token_case(fx, "random_" + est, est, logp, ref, mask)
    # Extreme log-prob differences (k3 overflows to +inf below Δ = -88.7, as in TRL: kept
    # out of the fixture, checked in the C++ test).
    big_lp = torch.tensor([[-1000.0, 0.0, -3.0, -80.0], [-0.5, -1000.0, -2.0, 0.0]])
    big_ref = torch.tensor([[0.0, -1000.0, -3.0, 0.0], [-0.5, 0.0, -90.0, -50.0]])
    ones = torch.ones(2, 4)
    for est in ("k1", "abs", "mse"):
        token_case(fx, "extreme_" + est, est, big_lp, big_ref, ones)
    k3_lp = torch.tensor([[0.0, -3.0, -60.0, -1e-4], [-2.0, -80.0, 0.0, -7.0]])
    k3_ref = torch.tensor([[-1000.0, -3.0, -2.0, 0.0], [-1.0, -5.0, -1e-6, -7.5]])
    token_case(fx, "extreme_k3", "k3", k3_lp, k3_ref, ones)

    # Full KL: random logits and the spec's literal values (logits = log p).
    full_case(fx, "full_random", torch.randn(6, 11, generator=g) * 3,
              torch.randn(6, 11, generator=g) * 3)
    p = torch.tensor([[0.98, 0.01, 0.01], [0.49, 0.02, 0.49], [0.2, 0.3, 0.5]])
    q = torch.tensor([[0.01, 0.01, 0.98], [0.01, 0.98, 0.01], [0.2, 0.3, 0.5]])
    full_case(fx, "full_spec_values", p.log(), q.log())
    full_case(fx, "full_large_logits", torch.tensor([[1000.0, 0.0, -1000.0, 999.0]]),
              torch.tensor([[-500.0, 500.0, 0.0, 1.0]]))

    # Per-token rewards: variable lengths, left/prompt zeros, a one-token row.
    n, t = 6, 9
    logp = -torch.rand(n, t, generator=g) * 3
    ref = logp + torch.randn(n, t, generator=g) * 0.5
    mask = right_mask([9, 4, 1, 6, 2, 8], t)
    mask[3, :2] = 0  # prompt zeros before the completion
    scores = torch.randn(n, generator=g) * 2
    rewards_case(fx, "rewards_k1", logp, ref, mask, scores, 0.05, "k1")
    rewards_case(fx, "rewards_k3_eos_penalty", logp, ref, mask, scores, 0.2, "k3",
                 has_eos=torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0]), penalty=1.5)
    rewards_case(fx, "rewards_abs", logp, ref, mask, scores, 0.1, "abs")
    rewards_case(fx, "rewards_mse", logp, ref, mask, scores, 0.1, "mse")
    fx.write()


if __name__ == "__main__":
    main()
