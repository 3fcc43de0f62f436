// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// From a model's logits to the loss and back to d loss / d logits, for DPO, GRPO and KTO,
// on the Eigen backend, with nothing leaving the backend but the scalars printed. Each part
// checks its gradient against a central finite difference and exits with 1 if they differ.
//
//   logits (R, T, V) --token_logprobs--> token log-probs (R, T), 0 where the mask is 0
//     --sequence_logprobs--> (R,) --slice_rows--> the loss's inputs --loss--> d loss / d inputs
//     --concat_rows, sequence_logprobs_backward--> (R, T) --token_logprobs_backward--> (R, T, V)
//
//   g++ -std=c++20 -O1 -Iinclude -I/usr/include/eigen3 -fopenmp examples/logits_to_gradients.cpp
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <vector>

#include <rlhf/backends/eigen.hpp>
#include <rlhf/losses/dpo.hpp>
#include <rlhf/losses/grpo.hpp>
#include <rlhf/losses/kto.hpp>
#include <rlhf/ops/logprobs.hpp>
#include <rlhf/ops/slice.hpp>

namespace {

using B = rlhf::eigen_backend;
using tensor = B::tensor;
namespace ops = rlhf::ops;
namespace losses = rlhf::losses;
using rlhf::index_t;
using rlhf::shape;

constexpr index_t T = 6, V = 11, prompt = 2;  // 2 prompt tokens, 4 completion tokens

/// Random logits (R, T, V) and tokens (R, T); the completion mask is 1 from `prompt` on.
struct batch {
  tensor logits;
  B::index_tensor tokens;
  tensor mask;
  batch(index_t rows, unsigned seed)
      : logits(shape{rows, T, V}), tokens(shape{rows, T}), mask(shape{rows, T}) {
    std::mt19937 gen(seed);
    std::normal_distribution<float> z(0.0f, 1.5f);
    std::uniform_int_distribution<std::int32_t> tok(0, V - 1);
    std::vector<float> l(static_cast<std::size_t>(logits.size())), m(mask.size());
    std::vector<std::int32_t> y(static_cast<std::size_t>(tokens.size()));
    for (auto& x : l) x = z(gen);
    for (auto& x : y) x = tok(gen);
    for (std::size_t k = 0; k < m.size(); ++k) m[k] = k % T >= prompt ? 1.0f : 0.0f;
    ops::copy_from_host<B>(std::span<const float>(l), logits);
    ops::copy_from_host<B>(std::span<const std::int32_t>(y), tokens);
    ops::copy_from_host<B>(std::span<const float>(m), mask);
  }
};

/// Σ completion log-probs (R,) of `b`, and the forward results the backward needs.
ops::token_logprobs_result<B> forward(const batch& b) {
  return ops::token_logprobs<B>(b.logits, b.tokens, b.mask);
}
tensor sums(const batch& b, const ops::token_logprobs_result<B>& f) {
  return ops::sequence_logprobs<B>(f.logps, b.mask, ops::logprob_columns::shifted);
}

/// d loss / d logits (R, T, V) from d loss / d sequence sums (R,).
tensor backward(const batch& b, const ops::token_logprobs_result<B>& f, const tensor& g_seq) {
  const tensor g_tok = ops::sequence_logprobs_backward<B>(g_seq, b.mask,
                                                          ops::logprob_columns::shifted);
  tensor g_logits(b.logits.shape());
  ops::token_logprobs_backward<B>(b.logits, b.tokens, b.mask, f, g_tok, g_logits);
  return g_logits;
}

/// Compares g_logits at a few completion positions with central differences of `loss`.
bool check(const char* name, batch& b, const tensor& g_logits,
           const std::function<double()>& loss) {
  bool ok = true;
  float* z = B::data(b.logits);
  const float* g = B::data(g_logits);
  for (const index_t k : {index_t{prompt * V + 3}, index_t{(T + 3) * V + 7}, index_t{4 * V}}) {
    const float saved = z[k], h = 1e-2f;
    z[k] = saved + h;
    const double up = loss();
    z[k] = saved - h;
    const double down = loss();
    z[k] = saved;
    const double fd = (up - down) / (2.0 * static_cast<double>(h));
    const bool close = std::abs(g[k] - fd) <= 2e-5 + 2e-2 * std::abs(fd);
    std::printf("  %s d loss / d logits[%ld] = %+.6f, finite difference %+.6f %s\n", name,
                static_cast<long>(k), static_cast<double>(g[k]), fd, close ? "ok" : "MISMATCH");
    ok = ok && close;
  }
  return ok;
}

bool dpo() {
  // 2 pairs stacked as (4, T, V): chosen rows 0-1, rejected rows 2-3; a frozen reference.
  const index_t n = 2;
  batch policy(2 * n, 1), reference(2 * n, 2);
  const tensor ref = sums(reference, forward(reference));
  const tensor rc = ops::slice_rows<B>(ref, 0, n), rr = ops::slice_rows<B>(ref, n, n);
  auto loss_of = [&](const tensor& seq) {
    const tensor lc = ops::slice_rows<B>(seq, 0, n), lr = ops::slice_rows<B>(seq, n, n);
    return losses::dpo_loss<B>({lc, lr, rc, rr});
  };
  const auto f = forward(policy);
  const auto r = loss_of(sums(policy, f));
  const tensor g = backward(
      policy, f, ops::concat_rows<B>(r.grad_policy_chosen_logps, r.grad_policy_rejected_logps));
  std::printf("DPO  loss %.6f\n", static_cast<double>(r.loss));
  return check("DPO ", policy, g, [&] { return loss_of(sums(policy, forward(policy))).loss; });
}

bool grpo() {
  // 4 completions of one prompt; old log-probs from the sampling policy (another batch's).
  const index_t n = 4;
  batch policy(n, 3), sampler(n, 4);
  sampler.tokens = policy.tokens;
  const auto old = forward(sampler).logps;
  const auto rewards = ops::from_host<B>(std::vector<float>{1, 0, 0.5f, 1}, shape{n});
  losses::grpo_config cfg;
  cfg.num_generations = n;
  tensor adv(shape{n});
  (void)losses::grpo_advantages<B>({.rewards = rewards}, cfg, adv);
  auto loss_of = [&](const tensor& logps) {
    return losses::grpo_loss<B>({.per_token_logps = logps,
                                 .advantages = adv,
                                 .completion_mask = policy.mask,
                                 .old_per_token_logps = &old},
                                cfg);
  };
  const auto f = forward(policy);
  const auto r = loss_of(f.logps);  // per token: d loss / d token log-probs (N, T)
  tensor g(policy.logits.shape());
  ops::token_logprobs_backward<B>(policy.logits, policy.tokens, policy.mask, f,
                                  r.grad_per_token_logps, g);
  std::printf("GRPO loss %.6f\n", static_cast<double>(r.loss));
  return check("GRPO", policy, g, [&] { return loss_of(forward(policy).logps).loss; });
}

bool kto() {
  // 4 examples (2 desirable) and their mismatched KL pairs, as (8, T, V) rows; the KL rows
  // carry no gradient (z0 is detached).
  const index_t n = 4;
  batch policy(2 * n, 5), reference(2 * n, 6);
  const tensor ref = sums(reference, forward(reference));
  const auto labels = ops::from_host<B>(std::vector<float>{1, 0, 1, 0}, shape{n});
  const tensor rp = ops::slice_rows<B>(ref, 0, n), rkl = ops::slice_rows<B>(ref, n, n);
  auto loss_of = [&](const tensor& seq) {
    const tensor lp = ops::slice_rows<B>(seq, 0, n), lkl = ops::slice_rows<B>(seq, n, n);
    return losses::kto_loss<B>({lp, rp, labels, &lkl, &rkl});
  };
  const auto f = forward(policy);
  const auto r = loss_of(sums(policy, f));
  const tensor zeros = ops::from_host<B>(std::vector<float>(n, 0.0f), shape{n});
  const tensor g = backward(policy, f, ops::concat_rows<B>(r.grad_policy_logps, zeros));
  std::printf("KTO  loss %.6f, kl %.6f\n", static_cast<double>(r.loss),
              static_cast<double>(r.metrics.kl));
  // Finite differences on the trained rows only: moving a KL row moves z0, which the
  // gradient leaves out by design.
  return check("KTO ", policy, g, [&] { return loss_of(sums(policy, forward(policy))).loss; });
}

}  // namespace

int main() {
  const bool ok = dpo() && grpo() && kto();
  std::printf(ok ? "every gradient matches its finite difference\n" : "MISMATCH\n");
  return ok ? 0 : 1;
}
