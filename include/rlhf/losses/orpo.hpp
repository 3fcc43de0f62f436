// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// ORPO: odds-ratio preference optimisation (Hong et al. 2024), no reference model, TRL's
// ORPOTrainer semantics. docs/algorithms/orpo.md.
//
//   lc, lr    per-token *mean* log-probs of the chosen / rejected completion (< 0)
//   log_odds_i = (lc - lr) - (log1mexp(lc) - log1mexp(lr))       log1mexp(x) = log(1 - e^x)
//   losses_i   = -λ · logσ(log_odds_i)                            (λ = beta, default 0.1)
//   loss       = NLL_chosen + mean_i losses_i
//   NLL_chosen = -Σ_i s_i / Σ_i n_i   (token mean over the batch's chosen sequences; see
//                                      rlhf/losses/detail/orpo_cpo_kernels.hpp, nll_tokens)
//
// log1mexp(0) = -inf: a mean log-prob of exactly 0 (or above) is a data_error naming the
// argument, so the loss and its gradients are finite for every accepted input.
#pragma once

#include <cmath>
#include <span>
#include <vector>

#include "rlhf/core/math.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/core/validation.hpp"
#include "rlhf/losses/detail/orpo_cpo_kernels.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/reductions.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {

/// TRL ORPOConfig's loss options.
struct orpo_config {
  /// λ of the paper (TRL names it beta): weight of the odds-ratio term, > 0.
  float beta = 0.1f;
  /// Which tokens chosen_nll_logp_sums / chosen_nll_token_counts cover. TRL's ORPO: prompt +
  /// completion. With `completion` the sums may be omitted (derived as lc_i · n_i).
  nll_tokens nll = nll_tokens::prompt_and_completion;
};

/// The tensors the ORPO loss reads.
template <class B>
struct orpo_inputs {
  const typename B::tensor& policy_chosen_logps;             ///< (N,) mean token log-prob, < 0
  const typename B::tensor& policy_rejected_logps;           ///< (N,) mean token log-prob, < 0
  const typename B::tensor& chosen_nll_token_counts;         ///< (N,) tokens the NLL covers, >= 0
  const typename B::tensor* chosen_nll_logp_sums = nullptr;  ///< (N,) Σ token log-probs on them
};

/// TRL's ORPO metrics (rewards are β·lc, β·lr; log_odds_ratio is mean logσ(log_odds)).
struct orpo_metrics {
  float rewards_chosen = 0;      ///< mean(β·lc)
  float rewards_rejected = 0;    ///< mean(β·lr)
  float rewards_accuracies = 0;  ///< mean(β·lc > β·lr), strict
  float rewards_margins = 0;     ///< mean(β·lc - β·lr)
  float logps_chosen = 0;        ///< mean(lc)
  float logps_rejected = 0;      ///< mean(lr)
  float nll_loss = 0;            ///< NLL_chosen
  float log_odds_ratio = 0;      ///< mean(logσ(log_odds))
  float log_odds_chosen = 0;     ///< mean(log_odds)
  /// The metrics under TRL's names.
  [[nodiscard]] named_metrics named() const {
    return {{"rewards/chosen", rewards_chosen},       {"rewards/rejected", rewards_rejected},
            {"rewards/accuracies", rewards_accuracies}, {"rewards/margins", rewards_margins},
            {"logps/chosen", logps_chosen},           {"logps/rejected", logps_rejected},
            {"nll_loss", nll_loss},                   {"log_odds_ratio", log_odds_ratio},
            {"log_odds_chosen", log_odds_chosen}};
  }
};

/// What the ORPO loss returns.
template <class B>
struct orpo_result {
  float loss = 0;                               ///< nll_loss plus the mean OR term, as a host value
  typename B::tensor losses;                    ///< (N,) -λ·logσ(log_odds), the OR term
  typename B::tensor grad_policy_chosen_logps;  ///< (N,) d loss / d lc (incl. a derived NLL)
  typename B::tensor grad_policy_rejected_logps;  ///< (N,) d loss / d lr
  typename B::tensor grad_chosen_nll_logp_sums;   ///< (N,) d loss / d s_i; (0,) when not given
  orpo_metrics metrics;                           ///< TRL's metrics of the batch
};

namespace detail {
/// Every value < 0 (a mean log-probability; log1mexp is -inf at 0).
template <class B>
void check_negative_logps(std::string_view fn, std::string_view arg, const typename B::tensor& t) {
  if (!validating(validation::full)) return;
  ops::detail::with_host_values<B>(t, [&](std::span<const float> v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!(v[i] < 0.0f)) {
        throw data_error(rlhf::detail::concat(
            fn, ": ", arg, " must be < 0 (a mean log-probability; log1mexp(0) = -inf), got ",
            v[i], " at flat index ", i));
      }
    }
  });
}
}  // namespace detail

/// ORPO loss, its gradients and TRL's metrics.
template <class B>
orpo_result<B> orpo_loss(const orpo_inputs<B>& in, const orpo_config& cfg = {}) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "orpo_loss";
  assert_tensor_backend<B>();
  const index_t n = in.policy_chosen_logps.size();
  check_rank(fn, "policy_chosen_logps", in.policy_chosen_logps.shape(), 1, 1);
  check_same_shape(fn, "policy_chosen_logps", in.policy_chosen_logps.shape(),
                   "policy_rejected_logps", in.policy_rejected_logps.shape());
  if (n == 0) throw shape_error("orpo_loss: batch is empty (policy_chosen_logps has 0 pairs)");
  check_config(std::isfinite(cfg.beta) && cfg.beta > 0.0f, fn, "beta", "finite and > 0",
               cfg.beta);
  check_enum(fn, "nll", cfg.nll);
  ops::check_finite<B>(fn, "policy_chosen_logps", in.policy_chosen_logps);
  ops::check_finite<B>(fn, "policy_rejected_logps", in.policy_rejected_logps);
  detail::check_negative_logps<B>(fn, "policy_chosen_logps", in.policy_chosen_logps);
  detail::check_negative_logps<B>(fn, "policy_rejected_logps", in.policy_rejected_logps);
  const float count_total = detail::check_chosen_nll_inputs<B>(
      fn, in.policy_chosen_logps.shape(), &in.chosen_nll_token_counts, in.chosen_nll_logp_sums,
      cfg.nll);

  const bool given_sums = in.chosen_nll_logp_sums != nullptr;
  orpo_result<B> r{0.0f, tensor(shape{n}), tensor(shape{n}), tensor(shape{n}),
                   tensor(shape{given_sums ? n : index_t{0}}), {}};
  // Statistics per pair: OR loss, logσ(log_odds), log_odds, β·lc, β·lr, correct, lc, lr,
  // NLL sum s_i, β·lc - β·lr.
  constexpr index_t k_stats = 10;
  tensor stats(shape{k_stats, n});
  const float* lc = B::data(in.policy_chosen_logps);
  const float* lr = B::data(in.policy_rejected_logps);
  const float* cnt = B::data(in.chosen_nll_token_counts);
  const float* sums = given_sums ? B::data(*in.chosen_nll_logp_sums) : nullptr;
  float* loss = B::data(r.losses);
  float* gc = B::data(r.grad_policy_chosen_logps);
  float* gr = B::data(r.grad_policy_rejected_logps);
  float* gs = given_sums ? B::data(r.grad_chosen_nll_logp_sums) : nullptr;
  float* st = B::data(stats);
  const float beta = cfg.beta;
  const float inv_n = 1.0f / static_cast<float>(n);
  const float nll_grad = -1.0f / count_total;  // d NLL / d s_i
  B::parallel_for(n, RLHF_LAMBDA(index_t i) {
    const float a = lc[i], b = lr[i];
    const float lo = (a - b) - (math::log1mexp(a) - math::log1mexp(b));
    const float ls = math::log_sigmoid(lo);
    loss[i] = -beta * ls;
    // d/dlo of -β·logσ(lo)/N = -β·σ(-lo)/N.
    const float g = -beta * math::sigmoid(-lo) * inv_n;
    gc[i] = g * detail::orpo_dlogodds(a) + (sums ? 0.0f : nll_grad * cnt[i]);
    gr[i] = -g * detail::orpo_dlogodds(b);
    if (gs) gs[i] = nll_grad;
    const float rc = beta * a, rj = beta * b;
    st[0 * n + i] = -beta * ls;
    st[1 * n + i] = ls;
    st[2 * n + i] = lo;
    st[3 * n + i] = rc;
    st[4 * n + i] = rj;
    st[5 * n + i] = rc > rj ? 1.0f : 0.0f;
    st[6 * n + i] = a;
    st[7 * n + i] = b;
    st[8 * n + i] = sums ? sums[i] : a * cnt[i];
    st[9 * n + i] = rc - rj;
  });
  const std::vector<float> s = ops::row_sums_to_host<B>(stats);
  const float fn_ = static_cast<float>(n);
  auto& m = r.metrics;
  m.nll_loss = -s[8] / count_total;
  r.loss = m.nll_loss + s[0] / fn_;
  m.log_odds_ratio = s[1] / fn_;
  m.log_odds_chosen = s[2] / fn_;
  m.rewards_chosen = s[3] / fn_;
  m.rewards_rejected = s[4] / fn_;
  m.rewards_accuracies = s[5] / fn_;
  m.rewards_margins = s[9] / fn_;
  m.logps_chosen = s[6] / fn_;
  m.logps_rejected = s[7] / fn_;
  return r;
}

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
