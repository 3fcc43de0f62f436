// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// One GRPO step on the Eigen CPU backend: rewards of 2 prompts × 4 completions become
// group-relative advantages, then the clipped GRPO loss (TRL's defaults: loss_type dapo,
// beta 0) and its gradient with respect to the per-token log-probs, which a trainer would
// back-propagate into the model (ops/logprobs turns it into a gradient on the logits).
//
//   g++ -std=c++20 -O1 -Iinclude -I/usr/include/eigen3 -fopenmp examples/grpo_step.cpp
#include <cstdio>
#include <vector>

#include <rlhf/backends/eigen.hpp>
#include <rlhf/losses/grpo.hpp>

int main() {
  using B = rlhf::eigen_backend;
  namespace ops = rlhf::ops;
  namespace losses = rlhf::losses;
  const rlhf::index_t prompts = 2, group = 4, n = prompts * group, steps = 5;

  // Scores of each completion (a verifier: 1 = correct); completions of one prompt are
  // contiguous, as TRL lays them out.
  const std::vector<float> scores{1, 0, 0, 1, /**/ 0, 0, 0, 1};
  const auto rewards = ops::from_host<B>(scores, rlhf::shape{n});
  B::tensor advantages(rlhf::shape{n});
  losses::grpo_config cfg;      // TRL GRPOConfig defaults: beta 0, epsilon 0.2, loss_type dapo
  cfg.num_generations = group;  // scale_rewards: group (TRL's default)
  cfg.epsilon_high = 0.28f;     // DAPO's clip-higher
  const auto stats = losses::grpo_advantages<B>({.rewards = rewards}, cfg, advantages);

  // Per-token log-probs of the completion tokens under the current policy and under the
  // policy that sampled them (one optimizer step ago), and the completion mask.
  std::vector<float> logp(static_cast<std::size_t>(n * steps)), old(logp.size()), mask(logp.size());
  for (std::size_t k = 0; k < logp.size(); ++k) {
    logp[k] = -0.2f - 0.15f * static_cast<float>(k % 7);
    old[k] = logp[k] + 0.15f * static_cast<float>(static_cast<int>(k % 5) - 2);
    mask[k] = (k % static_cast<std::size_t>(steps)) < 2 + (k / static_cast<std::size_t>(steps)) % 4
                  ? 1.0f : 0.0f;  // lengths 2..5
  }
  const auto lp = ops::from_host<B>(logp, rlhf::shape{n, steps});
  const auto op = ops::from_host<B>(old, rlhf::shape{n, steps});
  const auto cm = ops::from_host<B>(mask, rlhf::shape{n, steps});

  const auto r = losses::grpo_loss<B>(
      {.per_token_logps = lp, .advantages = advantages, .completion_mask = cm,
       .old_per_token_logps = &op},
      cfg);

  std::printf("rlhf++ GRPO step (Eigen backend), loss_type %s\n", losses::to_string(cfg.loss_type));
  for (const auto& [name, value] : stats.named()) std::printf("  %-22s %.4f\n", name.c_str(), value);
  const auto adv = ops::to_host<B>(advantages);
  std::printf("  advantages            ");
  for (float a : adv) std::printf(" %+.3f", a);
  std::printf("\n  loss                   %.6f\n", r.loss);
  for (const auto& [name, value] : r.metrics.named()) std::printf("  %-22s %.4f\n", name.c_str(), value);
  const auto grad = ops::to_host<B>(r.grad_per_token_logps);
  std::printf("  d loss / d logp, completion 0:");
  for (rlhf::index_t t = 0; t < steps; ++t) std::printf(" %+.4f", grad[static_cast<std::size_t>(t)]);
  std::printf("\n");
}
