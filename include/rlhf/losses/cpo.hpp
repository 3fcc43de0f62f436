// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// CPO / SimPO / AlphaPO: reference-free preference losses with a behaviour-cloning NLL term
// (Xu et al. 2024; Meng et al. 2024; Gupta et al. 2025), TRL's CPOTrainer semantics.
// docs/algorithms/cpo.md.
//
//   lc, lr   policy log-probs of the chosen / rejected completion: *sum* over completion
//            tokens for sigmoid / hinge, per-token *mean* for ipo / simpo / alphapo (TRL's
//            average_log_prob = loss_type in {ipo, simpo}); the caller passes the right one.
//   reward   ρ(l) = l (alpha = 0) or AlphaPO's (1 - p^-α)/α = -expm1(-α·l)/α (alpha != 0)
//   x        = ρ(lc) - ρ(lr)
//   sigmoid  -(1-ε)·logσ(βx) - ε·logσ(-βx)                    (ε = label_smoothing)
//   simpo    -(1-ε)·logσ(βx - γ) - ε·logσ(-(βx - γ))          (γ = simpo_gamma)
//   hinge    relu(1 - βx)
//   ipo      (x - 1/(2β))^2
//   alphapo  simpo with the NLL term off (TRL: loss_type="alphapo" sets simpo, cpo_alpha = 0)
//   loss     = mean_i losses_i + cpo_alpha · NLL_chosen     (NLL as in orpo.hpp)
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "rlhf/core/enum_names.hpp"
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

/// The CPO-family preference term (formulas in the file header); alphapo is simpo without NLL.
enum class cpo_loss_type { sigmoid, hinge, ipo, simpo, alphapo };

namespace detail::cpo {

/// The preference term's formula, as a function of x = ρ(lc) - ρ(lr).
enum class preference_term : std::uint8_t {
  sigmoid,  ///< -(1-ε)·logσ(βx) - ε·logσ(-βx)
  hinge,    ///< relu(1 - βx)
  ipo,      ///< (x - 1/(2β))^2
  simpo,    ///< -(1-ε)·logσ(βx - γ) - ε·logσ(-(βx - γ))
};

/// One row of cpo_types: what cpo_loss does for a loss type.
struct type_traits {
  cpo_loss_type type;     ///< entry i of cpo_types is value i
  std::string_view name;  ///< TRL's spelling (a string literal)
  preference_term term;   ///< the preference term
  bool mean_logps;        ///< expects per-token mean log-probs (TRL's average_log_prob)
  bool nll;               ///< has the NLL term (weighted by cpo_alpha)
};

/// Every CPO loss type.
inline constexpr auto cpo_types = std::to_array<type_traits>({
    {cpo_loss_type::sigmoid, "sigmoid", preference_term::sigmoid, false, true},
    {cpo_loss_type::hinge, "hinge", preference_term::hinge, false, true},
    {cpo_loss_type::ipo, "ipo", preference_term::ipo, true, true},
    {cpo_loss_type::simpo, "simpo", preference_term::simpo, true, true},
    {cpo_loss_type::alphapo, "alphapo", preference_term::simpo, true, false},
});

/// True when entry i of cpo_types is the enumerator i.
constexpr bool cpo_types_in_enum_order() {
  for (std::size_t i = 0; i < cpo_types.size(); ++i) {
    if (static_cast<std::size_t>(cpo_types[i].type) != i) return false;
  }
  return true;
}
static_assert(cpo_types_in_enum_order(), "entry i of cpo_types must be cpo_loss_type value i");
static_assert(cpo_types.size() == static_cast<std::size_t>(cpo_loss_type::alphapo) + 1,
              "one cpo_types entry per cpo_loss_type (alphapo is the last enumerator)");

/// The row of a loss type (a value outside the enum is refused before this is asked).
constexpr const type_traits& traits(cpo_loss_type t) {
  return cpo_types[static_cast<std::size_t>(t)];
}

/// The preference term and its derivative d l / d x.
struct term_value {
  float loss;
  float dloss_dx;
};

/// The preference term of x for `term` (formulas at preference_term).
RLHF_HD inline term_value preference(preference_term term, float x, float beta, float eps,
                                     float gamma) {
  switch (term) {
    case preference_term::hinge: {
      const float h = 1.0f - beta * x;
      return {math::relu(h), h > 0.0f ? -beta : 0.0f};
    }
    case preference_term::ipo: {
      const float d = x - 1.0f / (2.0f * beta);
      return {d * d, 2.0f * d};
    }
    case preference_term::sigmoid:
    case preference_term::simpo: break;
  }
  const float z = term == preference_term::sigmoid ? beta * x : beta * x - gamma;
  return {-(1.0f - eps) * math::log_sigmoid(z) - eps * math::log_sigmoid(-z),
          beta * (-(1.0f - eps) * math::sigmoid(-z) + eps * math::sigmoid(z))};
}

}  // namespace detail::cpo
}  // namespace losses

/// TRL's names of CPOConfig.loss_type, from detail::cpo::cpo_types.
template <>
struct enum_names<losses::cpo_loss_type> {
  /// Every loss type with its name, in declaration order.
  static constexpr auto values = enum_names_from<losses::cpo_loss_type>(
      losses::detail::cpo::cpo_types);
};
static_assert(enum_table_covers<losses::cpo_loss_type>(losses::detail::cpo::cpo_types.size()));

namespace losses {

/// TRL's name of a loss type, the inverse of parse_cpo_loss_type.
inline const char* to_string(cpo_loss_type t) { return rlhf::to_string(t).data(); }

/// TRL's names; anything else is a config_error listing them.
inline cpo_loss_type parse_cpo_loss_type(std::string_view name) {
  return enum_from_string<cpo_loss_type>(name, "parse_cpo_loss_type", "loss_type");
}

/// Whether loss_type expects per-token mean log-probs (TRL: ipo, simpo; alphapo is simpo).
inline bool cpo_uses_mean_logps(cpo_loss_type t) {
  const auto i = static_cast<std::size_t>(t);
  return i < detail::cpo::cpo_types.size() && detail::cpo::cpo_types[i].mean_logps;
}

/// TRL CPOConfig's loss options (names and defaults).
struct cpo_config {
  float beta = 0.1f;  ///< > 0; for ipo the τ of the IPO paper; SimPO typically 2.0
  cpo_loss_type loss_type = cpo_loss_type::sigmoid;  ///< the preference term
  float label_smoothing = 0.0f;                      ///< ε in [0, 0.5], sigmoid and simpo only
  float simpo_gamma = 0.5f;                          ///< γ, the SimPO target margin (finite)
  float cpo_alpha = 1.0f;  ///< weight of the NLL (behaviour cloning) term, >= 0
  float alpha = 0.0f;      ///< AlphaPO reward shape; 0 = plain log-prob rewards
  /// Tokens the NLL covers; TRL's CPO: the completion (sums then optional).
  nll_tokens nll = nll_tokens::completion;
};

/// The tensors the CPO loss reads.
template <class B>
struct cpo_inputs {
  const typename B::tensor& policy_chosen_logps;    ///< (N,) sum or mean, see loss_type
  const typename B::tensor& policy_rejected_logps;  ///< (N,)
  /// (N,) NLL token counts; required unless the NLL term is off (cpo_alpha = 0 or alphapo).
  const typename B::tensor* chosen_nll_token_counts = nullptr;
  /// (N,) Σ token log-probs over those tokens; optional with nll_tokens::completion.
  const typename B::tensor* chosen_nll_logp_sums = nullptr;
};

/// TRL's CPO metrics (rewards are β·ρ(lc), β·ρ(lr)).
struct cpo_metrics {
  float rewards_chosen = 0;      ///< mean(β·ρ(lc))
  float rewards_rejected = 0;    ///< mean(β·ρ(lr))
  float rewards_accuracies = 0;  ///< mean(β·ρ(lc) > β·ρ(lr)), strict
  float rewards_margins = 0;     ///< mean(β·ρ(lc) - β·ρ(lr))
  float logps_chosen = 0;        ///< mean(lc), the raw input
  float logps_rejected = 0;      ///< mean(lr), the raw input
  float nll_loss = 0;            ///< NLL_chosen, 0 when the NLL term is off (as TRL)
  /// The metrics under TRL's names.
  [[nodiscard]] named_metrics named() const {
    return {{"rewards/chosen", rewards_chosen},       {"rewards/rejected", rewards_rejected},
            {"rewards/accuracies", rewards_accuracies}, {"rewards/margins", rewards_margins},
            {"logps/chosen", logps_chosen},           {"logps/rejected", logps_rejected},
            {"nll_loss", nll_loss}};
  }
};

/// What the CPO loss returns.
template <class B>
struct cpo_result {
  float loss = 0;             ///< mean preference term plus cpo_alpha · nll_loss, as a host value
  typename B::tensor losses;  ///< (N,) preference term per pair
  typename B::tensor grad_policy_chosen_logps;    ///< (N,) d loss / d lc (incl. a derived NLL)
  typename B::tensor grad_policy_rejected_logps;  ///< (N,)
  typename B::tensor grad_chosen_nll_logp_sums;   ///< (N,) d loss / d s_i; (0,) when not given
  cpo_metrics metrics;                            ///< TRL's metrics of the batch
};

namespace detail::cpo {

/// The shapes: (N,) log-probs, N >= 1.
template <class B>
void check_shapes(const char* fn, const cpo_inputs<B>& in) {
  check_rank(fn, "policy_chosen_logps", in.policy_chosen_logps.shape(), 1, 1);
  check_same_shape(fn, "policy_chosen_logps", in.policy_chosen_logps.shape(),
                   "policy_rejected_logps", in.policy_rejected_logps.shape());
  if (in.policy_chosen_logps.size() == 0) {
    throw shape_error("cpo_loss: batch is empty (policy_chosen_logps has 0 pairs)");
  }
}

/// The options, each against its documented range.
inline void check_options(const char* fn, const cpo_config& cfg) {
  check_config(std::isfinite(cfg.beta) && cfg.beta > 0.0f, fn, "beta", "finite and > 0",
               cfg.beta);
  check_config(cfg.label_smoothing >= 0.0f && cfg.label_smoothing <= 0.5f, fn,
               "label_smoothing", "in [0, 0.5]", cfg.label_smoothing);
  check_config(std::isfinite(cfg.simpo_gamma), fn, "simpo_gamma", "finite", cfg.simpo_gamma);
  check_config(std::isfinite(cfg.cpo_alpha) && cfg.cpo_alpha >= 0.0f, fn, "cpo_alpha",
               "finite and >= 0", cfg.cpo_alpha);
  check_config(std::isfinite(cfg.alpha), fn, "alpha", "finite", cfg.alpha);
  check_enum(fn, "loss_type", cfg.loss_type);
  check_enum(fn, "nll", cfg.nll);
}

/// The values: finite log-probs whose AlphaPO rewards stay finite in float32.
template <class B>
void check_values(const char* fn, const cpo_inputs<B>& in, const cpo_config& cfg) {
  using tensor = typename B::tensor;
  ops::check_finite<B>(fn, "policy_chosen_logps", in.policy_chosen_logps);
  ops::check_finite<B>(fn, "policy_rejected_logps", in.policy_rejected_logps);
  const float alpha = cfg.alpha;
  if (alpha != 0.0f) {
    // ρ(l), e^{-α·l} and β·(ρc - ρr) must stay finite in float32 (TRL's exp(l)^-α, with p
    // underflowing to 0 below l ≈ -104, overflows sooner).
    auto check_alpha_range = [&](const char* arg, const tensor& t) {
      if (!validating(validation::full)) return;
      ops::detail::with_host_values<B>(t, [&](std::span<const float> v) {
        for (std::size_t i = 0; i < v.size(); ++i) {
          const float rho = losses::detail::alphapo_reward(v[i], alpha);
          if (!(std::isfinite(2.0f * cfg.beta * rho) &&
                std::isfinite(losses::detail::alphapo_dreward(v[i], alpha)))) {
            throw data_error(rlhf::detail::concat(
                fn, ": ", arg, " = ", v[i], " at flat index ", i,
                " overflows the AlphaPO reward (1 - p^-alpha)/alpha in float32 (alpha = ",
                alpha, ")"));
          }
        }
      });
    };
    check_alpha_range("policy_chosen_logps", in.policy_chosen_logps);
    check_alpha_range("policy_rejected_logps", in.policy_rejected_logps);
  }
}

/// Whether the NLL term is on, after checking its inputs; Σ n_i (1 when it is off).
template <class B>
float check_nll(const char* fn, const cpo_inputs<B>& in, const cpo_config& cfg, bool& nll_on) {
  nll_on = traits(cfg.loss_type).nll && cfg.cpo_alpha != 0.0f;
  if (nll_on) {
    return losses::detail::check_chosen_nll_inputs<B>(fn, in.policy_chosen_logps.shape(),
                                                      in.chosen_nll_token_counts,
                                                      in.chosen_nll_logp_sums, cfg.nll);
  }
  if (in.chosen_nll_logp_sums) {
    check_same_shape(fn, "chosen_nll_logp_sums", in.chosen_nll_logp_sums->shape(),
                     "policy_chosen_logps", in.policy_chosen_logps.shape());
  }
  return 1.0f;
}

/// The per-pair pass (preference term, gradients, statistics) and the metrics.
template <class B>
cpo_result<B> pair_pass(const cpo_inputs<B>& in, const cpo_config& cfg, bool nll_on,
                        float count_total) {
  using tensor = typename B::tensor;
  const index_t n = in.policy_chosen_logps.size();
  const float alpha = cfg.alpha;
  const bool given_sums = in.chosen_nll_logp_sums != nullptr;
  cpo_result<B> r{0.0f, tensor(shape{n}), tensor(shape{n}), tensor(shape{n}),
                  tensor(shape{given_sums ? n : index_t{0}}), {}};
  // Statistics per pair: loss, β·ρc, β·ρr, correct, β·ρc - β·ρr, lc, lr, NLL sum s_i.
  constexpr index_t k_stats = 8;
  tensor stats(shape{k_stats, n});
  const float* lc = B::data(in.policy_chosen_logps);
  const float* lr = B::data(in.policy_rejected_logps);
  const float* cnt = nll_on ? B::data(*in.chosen_nll_token_counts) : nullptr;
  const float* sums = nll_on && given_sums ? B::data(*in.chosen_nll_logp_sums) : nullptr;
  float* loss = B::data(r.losses);
  float* gc = B::data(r.grad_policy_chosen_logps);
  float* gr = B::data(r.grad_policy_rejected_logps);
  float* gs = given_sums ? B::data(r.grad_chosen_nll_logp_sums) : nullptr;
  float* st = B::data(stats);
  const float beta = cfg.beta, eps = cfg.label_smoothing, gamma = cfg.simpo_gamma;
  const type_traits& row = traits(cfg.loss_type);
  const preference_term term = row.term;
  const bool mean_logps = row.mean_logps;
  const float inv_n = 1.0f / static_cast<float>(n);
  // d (cpo_alpha · NLL) / d s_i.
  const float nll_grad = nll_on ? -cfg.cpo_alpha / count_total : 0.0f;
  B::parallel_for(n, RLHF_LAMBDA(index_t i) {
    const float a = lc[i], b = lr[i];
    const float rho_c = alpha != 0.0f ? losses::detail::alphapo_reward(a, alpha) : a;
    const float rho_r = alpha != 0.0f ? losses::detail::alphapo_reward(b, alpha) : b;
    const float dc = alpha != 0.0f ? losses::detail::alphapo_dreward(a, alpha) : 1.0f;
    const float dr = alpha != 0.0f ? losses::detail::alphapo_dreward(b, alpha) : 1.0f;
    const float x = rho_c - rho_r;
    const term_value pt = preference(term, x, beta, eps, gamma);
    const float l = pt.loss, dl = pt.dloss_dx;
    loss[i] = l;
    const float s_i = !cnt ? 0.0f : (sums ? sums[i] : (mean_logps ? a * cnt[i] : a));
    const float derived = (cnt && !sums) ? nll_grad * (mean_logps ? cnt[i] : 1.0f) : 0.0f;
    gc[i] = dl * dc * inv_n + derived;
    gr[i] = -dl * dr * inv_n;
    if (gs) gs[i] = nll_grad;
    const float rc = beta * rho_c, rj = beta * rho_r;
    st[0 * n + i] = l;
    st[1 * n + i] = rc;
    st[2 * n + i] = rj;
    st[3 * n + i] = rc > rj ? 1.0f : 0.0f;
    st[4 * n + i] = rc - rj;
    st[5 * n + i] = a;
    st[6 * n + i] = b;
    st[7 * n + i] = s_i;
  });
  const std::vector<float> s = ops::row_sums_to_host<B>(stats);
  const float fn_ = static_cast<float>(n);
  auto& m = r.metrics;
  m.nll_loss = nll_on ? -s[7] / count_total : 0.0f;
  r.loss = s[0] / fn_ + (nll_on ? cfg.cpo_alpha * m.nll_loss : 0.0f);
  m.rewards_chosen = s[1] / fn_;
  m.rewards_rejected = s[2] / fn_;
  m.rewards_accuracies = s[3] / fn_;
  m.rewards_margins = s[4] / fn_;
  m.logps_chosen = s[5] / fn_;
  m.logps_rejected = s[6] / fn_;
  return r;
}

}  // namespace detail::cpo

/// CPO-family loss, its gradients and TRL's metrics.
template <class B>
cpo_result<B> cpo_loss(const cpo_inputs<B>& in, const cpo_config& cfg = {}) {
  constexpr const char* fn = "cpo_loss";
  assert_tensor_backend<B>();
  detail::cpo::check_shapes(fn, in);
  detail::cpo::check_options(fn, cfg);
  detail::cpo::check_values(fn, in, cfg);
  bool nll_on = false;
  const float count_total = detail::cpo::check_nll(fn, in, cfg, nll_on);
  return detail::cpo::pair_pass(in, cfg, nll_on, count_total);
}

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
