// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Sequence log-probs and the SFT loss on the Eigen backend: the forward/backward pair a
// DPO or PPO trainer uses (token_logprobs → a loss on sequence values → backward), and the
// fused single-pass SFT loss. docs/algorithms/logprobs.md, docs/algorithms/sft.md.
#include <cstdio>
#include <vector>

#include <rlhf/backends/eigen.hpp>
#include <rlhf/losses/sft.hpp>
#include <rlhf/ops/logprobs.hpp>
#include <rlhf/ops/random.hpp>

int main() {
  using B = rlhf::eigen_backend;
  namespace ops = rlhf::ops;
  const rlhf::index_t n = 2, t = 6, v = 16;

  B::tensor logits(rlhf::shape{n, t, v});  // (N, T, V): position t-1 predicts token t
  rlhf::random_stream rng{/*seed=*/7, /*stream=*/0};
  ops::random_normal<B>(logits, rng, 0.0f, 1.5f);
  const std::vector<std::int32_t> ids{1, 5, 9, 2, 2, 7, /**/ 3, 3, 0, 15, 4, -100};
  const std::vector<float> completion{0, 0, 1, 1, 1, 1, /**/ 0, 1, 1, 1, 1, 0};
  const auto tokens = ops::index_from_host<B>(ids, rlhf::shape{n, t});
  const auto mask = ops::from_host<B>(completion, rlhf::shape{n, t});

  // Forward: per-token log-probs, then one value per sequence.
  const auto fwd = ops::token_logprobs<B>(logits, tokens, mask);
  const auto seq = ops::sequence_logprobs<B>(fwd.logps, mask,
                                             ops::logprob_columns::shifted);  // (N,) sums
  // Backward of loss = -Σ_n seq[n]: upstream -1 per sequence → per token → logits.
  const auto grad_seq = ops::from_host<B>(std::vector<float>(n, -1.0f), rlhf::shape{n});
  const auto grad_tok = ops::sequence_logprobs_backward<B>(grad_seq, mask,
                                                           ops::logprob_columns::shifted);
  B::tensor grad_logits(logits.shape());
  ops::token_logprobs_backward<B>(logits, tokens, mask, fwd, grad_tok, grad_logits);

  // SFT: the same gradient direction in one pass over the logits, as a token mean.
  B::tensor sft_grad(logits.shape());
  const auto sft = rlhf::losses::sft_loss<B>({logits, tokens, mask}, sft_grad);

  const auto s = ops::to_host<B>(seq);
  std::printf("sequence log-probs: %.4f %.4f\n", s[0], s[1]);
  std::printf("sft loss %.4f over %.0f tokens, accuracy %.3f, entropy %.4f\n", sft.loss,
              sft.metrics.num_tokens, sft.metrics.mean_token_accuracy, sft.metrics.entropy);
  // Both gradients point the same way: sft's is the other one divided by the token count.
  const auto a = ops::to_host<B>(grad_logits), b = ops::to_host<B>(sft_grad);
  const float ratio = a[static_cast<std::size_t>(1 * v + 3)] / b[static_cast<std::size_t>(1 * v + 3)];
  std::printf("grad ratio (should be the token count %.0f): %.4f\n", sft.metrics.num_tokens,
              ratio);
  return ratio > sft.metrics.num_tokens - 1e-3f && ratio < sft.metrics.num_tokens + 1e-3f ? 0 : 1;
}
