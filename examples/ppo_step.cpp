// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// One PPO step of RLHF on made-up tensors, on the Eigen CPU backend:
//   scores → normalised scores → per-token rewards (KL penalty + score on the last token)
//   → GAE → whitened advantages → PPO loss and its gradients → adaptive KL coefficient.
// In a real trainer the log-probs, values and entropies come from the policy, the reference
// model and the value head (rlhf/ops/logprobs.hpp), and the gradients flow back into them.
#include <cmath>
#include <cstdio>
#include <vector>

#include <rlhf/backends/eigen.hpp>
#include <rlhf/losses/ppo.hpp>
#include <rlhf/rl/gae.hpp>
#include <rlhf/rl/kl.hpp>
#include <rlhf/rl/kl_controller.hpp>
#include <rlhf/rl/rewards.hpp>
#include <rlhf/rl/running_moments.hpp>
#include <rlhf/rl/whiten.hpp>
#include <rlhf/rlhf.hpp>

int main() {
  using B = rlhf::eigen_backend;
  namespace ops = rlhf::ops;
  namespace rl = rlhf::rl;
  const rlhf::index_t n = 4, t = 6;
  const rlhf::shape s{n, t};

  // Rollout: response masks (right padding), log-probs under the policy and the reference,
  // value-head outputs and reward-model scores, all made up.
  const std::vector<float> mask_v{1, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 0, 0, 0,
                                  /**/ 1, 0, 0, 0, 0, 0, /**/ 1, 1, 1, 1, 1, 0};
  std::vector<float> logp_v, ref_v, value_v;
  for (rlhf::index_t i = 0; i < n * t; ++i) {
    const float x = static_cast<float>(i);
    logp_v.push_back(-1.0f - 0.5f * std::sin(x));
    ref_v.push_back(-1.1f - 0.4f * std::sin(x + 0.3f));
    value_v.push_back(0.3f * std::cos(0.7f * x));
  }
  const auto mask = ops::from_host<B>(mask_v, s);
  const auto logp = ops::from_host<B>(logp_v, s);
  const auto ref_logp = ops::from_host<B>(ref_v, s);
  const auto values = ops::from_host<B>(value_v, s);
  auto scores = ops::from_host<B>(std::vector<float>{1.5f, -0.5f, 0.2f, 2.0f}, rlhf::shape{n});
  const auto has_eos = ops::from_host<B>(std::vector<float>{1, 1, 0, 1}, rlhf::shape{n});

  // 1. Normalise the scores with running moments (update with this batch, then apply).
  rl::score_normalizer normalize({.mode = rl::score_normalization::subtract_mean,
                                  .eps = 1.1920929e-7f, .score_clip = 5.0f});
  normalize.operator()<B>(scores);

  // 2. Per-token rewards: -β·k1 on every real token, the score on the last one, minus a
  //    penalty for rows that never produced EOS.
  rl::adaptive_kl_controller kl_ctl;  // β = 0.2, target 6, horizon 10000
  rl::ppo_reward_config reward_cfg;
  reward_cfg.kl_coef = static_cast<float>(kl_ctl.value);
  reward_cfg.missing_eos_penalty = 1.0f;
  const auto shaped = rl::ppo_token_rewards<B>(
      {.logprobs = logp, .ref_logprobs = ref_logp, .mask = mask, .scores = scores,
       .has_eos = &has_eos},
      reward_cfg);

  // 3. GAE over the real tokens, then whitened advantages (padding stays 0).
  auto est = rl::gae<B>({shaped.rewards, values, mask}, {.gamma = 1.0f, .lam = 0.95f});
  rl::masked_whiten<B>(est.advantages, mask, est.advantages);

  // 4. PPO loss on a "new" policy that moved a little from the rollout policy.
  std::vector<float> new_logp_v(logp_v), new_value_v(value_v);
  for (std::size_t i = 0; i < new_logp_v.size(); ++i) {
    new_logp_v[i] += 0.15f * std::cos(static_cast<float>(i));
    new_value_v[i] += 0.25f * std::sin(static_cast<float>(i));
  }
  const auto new_logp = ops::from_host<B>(new_logp_v, s);
  const auto new_values = ops::from_host<B>(new_value_v, s);
  rlhf::losses::ppo_config ppo_cfg;  // cliprange 0.2, cliprange_value 0.2, vf_coef 0.1
  const auto r = rlhf::losses::ppo_loss<B>({.logprobs = new_logp, .old_logprobs = logp,
                                            .advantages = est.advantages,
                                            .values = new_values, .old_values = values,
                                            .returns = est.returns, .mask = mask},
                                           ppo_cfg);

  // 5. Adapt β to the measured KL (per-sequence sum, batch mean) over n episodes.
  const float kl_now = rl::mean_sequence_kl<B>(shaped.kl, mask);
  kl_ctl.update(kl_now, static_cast<double>(n));

  std::printf("rlhf++ PPO step (Eigen backend)\n");
  for (const auto& [name, value] : shaped.metrics.named()) {
    std::printf("  %-28s % .5f\n", name.c_str(), value);
  }
  std::printf("  %-28s % .5f\n", "loss", r.loss);
  for (const auto& [name, value] : r.metrics.named()) {
    std::printf("  %-28s % .5f\n", name.c_str(), value);
  }
  const auto g = ops::to_host<B>(r.grad_logprobs);
  std::printf("  d loss / d logprobs[0, 0..2]  % .5f % .5f % .5f\n", g[0], g[1], g[2]);
  std::printf("  kl_coef after update          % .6f\n", kl_ctl.value);
  return std::isfinite(r.loss) ? 0 : 1;
}
