// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Bradley–Terry reward-model loss with a K-way ranking turned into weighted pairs
// (InstructGPT) on the Eigen backend. docs/algorithms/reward.md.
#include <cstdio>
#include <vector>

#include <rlhf/backends/eigen.hpp>
#include <rlhf/losses/reward.hpp>
#include <rlhf/ops/tensor.hpp>

int main() {
  using B = rlhf::eigen_backend;
  namespace ops = rlhf::ops;
  // One prompt, four responses ranked best first, with their reward-head scores.
  const std::vector<float> scores{1.2f, 0.4f, 0.5f, -0.8f};
  std::vector<float> chosen, rejected, weights;
  for (const auto& p : rlhf::losses::ranking_pairs(4)) {
    chosen.push_back(scores[static_cast<std::size_t>(p.better)]);
    rejected.push_back(scores[static_cast<std::size_t>(p.worse)]);
    weights.push_back(p.weight);  // the prompt's 6 pairs count as one example
  }
  const rlhf::shape s{static_cast<rlhf::index_t>(chosen.size())};
  const auto rc = ops::from_host<B>(chosen, s), rr = ops::from_host<B>(rejected, s);
  const auto w = ops::from_host<B>(weights, s);
  rlhf::losses::reward_config cfg;
  cfg.center_rewards_coefficient = 0.01f;
  const auto r = rlhf::losses::reward_loss<B>(
      {.rewards_chosen = rc, .rewards_rejected = rr, .weights = &w}, cfg);
  std::printf("loss %.4f\n", r.loss);
  for (const auto& [name, value] : r.metrics.named()) std::printf("%s %.4f\n", name.c_str(), value);
  const auto g = ops::to_host<B>(r.grad_rewards_chosen);
  std::printf("d loss / d r_chosen of the first pair: %.4f\n", g[0]);
  return r.metrics.accuracy > 0.8f ? 0 : 1;  // 5 of the 6 pairs are ordered
}
