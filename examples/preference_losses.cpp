// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The unpaired and reference-free preference losses on the Eigen CPU backend: KTO and BCO
// (binary feedback, one completion per example) and ORPO and CPO/SimPO (pairs, no reference
// model). Each takes per-sequence log-probs (rlhf/ops/logprobs.hpp computes them from logits)
// and returns the loss, its gradients with respect to those log-probs and TRL's metrics.
//
//   docs/algorithms/kto.md, bco.md, orpo.md, cpo.md
#include <cstdio>
#include <vector>

#include <rlhf/backends/eigen.hpp>
#include <rlhf/losses/bco.hpp>
#include <rlhf/losses/cpo.hpp>
#include <rlhf/losses/kto.hpp>
#include <rlhf/losses/orpo.hpp>

namespace {
using B = rlhf::eigen_backend;

B::tensor tensor_of(const std::vector<float>& v) {
  return rlhf::ops::from_host<B>(std::span<const float>(v),
                                 rlhf::shape{static_cast<rlhf::index_t>(v.size())});
}

void print(const char* name, float loss, const rlhf::named_metrics& metrics) {
  std::printf("%-5s loss %.6f\n", name, static_cast<double>(loss));
  for (const auto& [key, value] : metrics) {
    std::printf("        %-22s %.6f\n", key.c_str(), static_cast<double>(value));
  }
}
}  // namespace

int main() {
  namespace losses = rlhf::losses;

  // --- KTO: 4 completions with thumbs up / down, sum log-probs under policy and reference.
  const auto policy = tensor_of({-42.0f, -37.5f, -55.0f, -61.2f});
  const auto reference = tensor_of({-43.1f, -36.0f, -54.0f, -60.0f});
  const auto labels = tensor_of({1.0f, 0.0f, 1.0f, 0.0f});
  // KL pairs: prompt i with completion kl_index[i] (a rotation by one), scored by both models.
  const auto kl_index = losses::kto_kl_pair_indices(4);  // {3, 0, 1, 2}
  std::printf("KTO KL pairs: prompt i + completion {%lld, %lld, %lld, %lld}\n",
              static_cast<long long>(kl_index[0]), static_cast<long long>(kl_index[1]),
              static_cast<long long>(kl_index[2]), static_cast<long long>(kl_index[3]));
  const auto policy_kl = tensor_of({-70.3f, -48.2f, -52.9f, -66.0f});
  const auto reference_kl = tensor_of({-70.9f, -48.0f, -53.5f, -66.4f});
  losses::kto_config kto_cfg;  // beta 0.1, weights 1, loss_type kto
  const auto kto = losses::kto_loss<B>({.policy_logps = policy,
                                        .reference_logps = reference,
                                        .labels = labels,
                                        .policy_kl_logps = &policy_kl,
                                        .reference_kl_logps = &reference_kl},
                                       kto_cfg);
  print("KTO", kto.loss, kto.metrics.named());
  // The class-balance advice of the KTO paper, for a data set of 1000 up / 3000 down votes.
  if (const auto warning = losses::kto_class_balance_warning(1000, 3000, kto_cfg)) {
    std::printf("        warning: %s\n", warning->c_str());
  }

  // --- BCO: the same data; the running mean δ persists across training steps.
  losses::bco_running_mean delta;
  const auto bco = losses::bco_loss<B>(
      {.policy_logps = policy, .reference_logps = reference, .labels = labels}, delta);
  print("BCO", bco.loss, bco.metrics.named());

  // --- ORPO: per-token *mean* log-probs of chosen / rejected completions, and the chosen
  // sequences' NLL over prompt + completion as (sum of token log-probs, token count).
  const auto chosen_mean = tensor_of({-0.62f, -0.91f, -0.48f});
  const auto rejected_mean = tensor_of({-0.95f, -0.88f, -1.30f});
  const auto nll_sums = tensor_of({-30.5f, -41.0f, -22.7f});
  const auto nll_counts = tensor_of({48.0f, 45.0f, 50.0f});
  const auto orpo = losses::orpo_loss<B>({.policy_chosen_logps = chosen_mean,
                                          .policy_rejected_logps = rejected_mean,
                                          .chosen_nll_token_counts = nll_counts,
                                          .chosen_nll_logp_sums = &nll_sums});
  print("ORPO", orpo.loss, orpo.metrics.named());

  // --- SimPO (CPO family): mean log-probs, β = 2, γ = 0.5, no NLL term (cpo_alpha = 0).
  losses::cpo_config simpo;
  simpo.loss_type = losses::cpo_loss_type::simpo;
  simpo.beta = 2.0f;
  simpo.cpo_alpha = 0.0f;
  const auto sp = losses::cpo_loss<B>(
      {.policy_chosen_logps = chosen_mean, .policy_rejected_logps = rejected_mean}, simpo);
  print("SimPO", sp.loss, sp.metrics.named());

  // --- CPO (sigmoid on sum log-probs) + completion NLL derived from those sums.
  const auto chosen_sum = tensor_of({-18.6f, -27.3f, -14.4f});
  const auto rejected_sum = tensor_of({-28.5f, -26.4f, -39.0f});
  const auto completion_counts = tensor_of({30.0f, 30.0f, 30.0f});
  const auto cpo = losses::cpo_loss<B>({.policy_chosen_logps = chosen_sum,
                                        .policy_rejected_logps = rejected_sum,
                                        .chosen_nll_token_counts = &completion_counts});
  print("CPO", cpo.loss, cpo.metrics.named());
  const auto g = rlhf::ops::to_host<B>(cpo.grad_policy_chosen_logps);
  std::printf("CPO d loss / d chosen logps: %.6f %.6f %.6f\n", static_cast<double>(g[0]),
              static_cast<double>(g[1]), static_cast<double>(g[2]));
  return 0;
}
