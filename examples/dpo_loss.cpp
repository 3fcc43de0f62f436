// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// DPO on the Eigen backend: the loss, its gradients with respect to the policy's sequence
// log-probs, and TRL's metrics, for plain DPO and for an MPO-style weighted combination.
// docs/algorithms/dpo.md.
#include <cstdio>
#include <vector>

#include <rlhf/backends/eigen.hpp>
#include <rlhf/losses/dpo.hpp>

int main() {
  using B = rlhf::eigen_backend;
  namespace losses = rlhf::losses;
  namespace ops = rlhf::ops;
  const rlhf::shape batch{4};

  // Sequence log-probs (sums over completion tokens) of 4 preference pairs under the policy
  // and the frozen reference model, and the completion lengths in tokens.
  const auto lc = ops::from_host<B>(std::vector<float>{-42.0f, -17.5f, -88.1f, -30.2f}, batch);
  const auto lr = ops::from_host<B>(std::vector<float>{-45.3f, -16.0f, -97.4f, -35.9f}, batch);
  const auto rc = ops::from_host<B>(std::vector<float>{-43.1f, -17.9f, -90.0f, -29.8f}, batch);
  const auto rr = ops::from_host<B>(std::vector<float>{-44.0f, -16.2f, -95.1f, -34.7f}, batch);
  const auto nc = ops::from_host<B>(std::vector<float>{21.0f, 9.0f, 40.0f, 15.0f}, batch);
  const auto nr = ops::from_host<B>(std::vector<float>{23.0f, 8.0f, 44.0f, 18.0f}, batch);

  losses::dpo_config cfg;  // TRL's defaults: loss_type {sigmoid}, beta 0.1
  auto r = losses::dpo_loss<B>({.policy_chosen_logps = lc,
                                .policy_rejected_logps = lr,
                                .reference_chosen_logps = rc,
                                .reference_rejected_logps = rr},
                               cfg);
  std::printf("dpo (sigmoid, beta %.2f): loss %.6f\n", cfg.beta, r.loss);
  for (const auto& [name, value] : r.metrics.named()) {
    std::printf("  %-20s %9.5f\n", name.c_str(), value);
  }
  const auto g = ops::to_host<B>(r.grad_policy_chosen_logps);
  std::printf("  d loss / d policy_chosen_logps: %.5f %.5f %.5f %.5f\n", g[0], g[1], g[2], g[3]);

  // MPO-style: sigmoid + bco_pair + sft, weighted (sft needs the chosen lengths).
  cfg.loss_type = {losses::dpo_loss_type::sigmoid, losses::dpo_loss_type::bco_pair,
                   losses::dpo_loss_type::sft};
  cfg.loss_weights = {0.8f, 0.2f, 1.0f};
  r = losses::dpo_loss<B>({.policy_chosen_logps = lc,
                           .policy_rejected_logps = lr,
                           .reference_chosen_logps = rc,
                           .reference_rejected_logps = rr,
                           .chosen_lengths = &nc,
                           .rejected_lengths = &nr},
                          cfg);
  std::printf("mpo (0.8 sigmoid + 0.2 bco_pair + 1.0 sft): loss %.6f\n", r.loss);
}
