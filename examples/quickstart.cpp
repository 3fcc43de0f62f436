// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Quick start: per-sequence log-probabilities of completions under a model's logits, the
// quantity every RLHF loss starts from, on the Eigen CPU backend.
//
//   logp[b] = sum_t mask[b, t] * log_softmax(logits[b, t-1, :])[tokens[b, t]]
#include <cstdio>
#include <vector>

#include <rlhf/backends/eigen.hpp>
#include <rlhf/rlhf.hpp>

int main() {
  using B = rlhf::eigen_backend;
  namespace ops = rlhf::ops;
  const rlhf::index_t batch = 2, steps = 5, vocab = 11;

  // Stand-in logits for positions 0..T-2 (position t-1 predicts token t): (B, T-1, V).
  B::tensor logits(rlhf::shape{batch, steps - 1, vocab});
  rlhf::random_stream rng{/*seed=*/2024, /*stream=*/0};
  ops::random_normal<B>(logits, rng, 0.0f, 2.0f);

  // Tokens 1..T-1 of each sequence and which of them belong to the completion.
  const std::vector<std::int32_t> next_tokens{3, 7, 1, 9, /**/ 0, 4, 4, 10};
  const std::vector<float> completion_mask{0, 1, 1, 1, /**/ 0, 0, 1, 1};
  auto targets = ops::index_from_host<B>(next_tokens, rlhf::shape{batch * (steps - 1)});
  auto mask = ops::from_host<B>(completion_mask, rlhf::shape{batch, steps - 1});

  B::tensor logprobs(logits.shape());
  ops::log_softmax_rows<B>(logits, logprobs);               // (B, T-1, V)
  B::tensor token_logp(rlhf::shape{batch, steps - 1});
  ops::gather_last<B>(logprobs, targets, token_logp);       // (B, T-1)
  ops::transform<B>(token_logp, rlhf::fn::multiplies{}, token_logp, mask);
  B::tensor seq_logp(rlhf::shape{batch});
  ops::row_sum<B>(token_logp, seq_logp);                    // (B)
  B::tensor mean_logp(rlhf::shape{batch});
  ops::row_masked_mean<B>(token_logp, mask, mean_logp);     // per-token mean over the mask

  const auto sum = ops::to_host<B>(seq_logp), mean = ops::to_host<B>(mean_logp);
  std::printf("rlhf++ %s quick start (Eigen backend)\n", rlhf::version_string);
  for (rlhf::index_t b = 0; b < batch; ++b) {
    std::printf("sequence %lld: completion log-prob %.4f (mean per token %.4f)\n",
                static_cast<long long>(b), sum[b], mean[b]);
  }
}
