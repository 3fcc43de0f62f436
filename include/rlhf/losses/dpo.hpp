// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The DPO family of preference losses with TRL DPOTrainer's semantics (TRL 1.x; Rafailov
// et al. 2023 and its variants), the f-divergence score transforms of f-DPO, weighted
// combinations (MPO; RPO = sigmoid + α·sft), WPO weighting and LD-DPO's length-desensitised
// log-probs. docs/algorithms/dpo.md.
//
// Per pair i, with cr = lc - rc, rj = lr - rrf (policy minus reference sequence log-probs),
// s_c = s(cr), s_r = s(rj) the f-divergence scores, D = s_c - s_r, z = β·D:
//
//   sigmoid      -(1-ε)·logσ(z) - ε·logσ(-z)           (ε = label_smoothing: cDPO; or ε_i
//                                                        per pair: a soft label p_i is 1 - ε_i)
//   hinge        relu(1 - z)
//   ipo          (s_c/n_c - s_r/n_r - 1/(2β))^2
//   exo_pair     σ(z)(logσ(z) - log(1-ε)) + σ(-z)(logσ(-z) - log ε)        (ε > 0)
//   nca_pair     -logσ(β s_c) - ½·logσ(-β s_c) - ½·logσ(-β s_r)
//   robust       (-(1-ε)·logσ(z) + ε·logσ(-z)) / (1-2ε)                    (ε < 0.5)
//   bco_pair     -logσ(β s_c - δ) - logσ(-(β s_r - δ))
//   sppo_hard    (s_c - 0.5/β)^2 + (s_r + 0.5/β)^2
//   aot          d = sort(lc - lr) - sort(rc - rrf) over the batch; sigmoid of β·d with ε
//   aot_unpaired d = sort(cr) - sort(rj)
//   apo_zero     (1 - σ(β·cr)) + σ(β·rj)
//   apo_down     σ(β·cr) + (1 - σ(z))
//   discopop     -logσ(z)·(1 - σ(z/τ)) + e^{-z}·σ(z/τ)
//   sft          -Σ_i lc_i / Σ_i n_c,i  (token-mean NLL of the chosen completions; the same
//                value for every pair)
//   sigmoid_norm -logσ(β(s_c/n_c - s_r/n_r))
//
//   loss = Σ_k w_k · mean_i(L_k,i · wpo_i)      (w_k = loss_weights, default 1; wpo_i = 1
//                                                unless use_weighting)
//
// Gradients are with respect to the policy log-probs only (the reference is frozen).
// aot and aot_unpaired need a global order: the four (N,) inputs are copied to the host,
// sorted there (stable), and the per-position losses and the gradients, routed back
// through the sort permutations, are copied back; every other type runs per pair in
// B::parallel_for. ld_sequence_logps and wpo_weights (below) make the inputs of LD-DPO and
// WPO from per-token quantities.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/math.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/core/validation.hpp"
#include "rlhf/losses/bco_running_mean.hpp"
#include "rlhf/losses/detail/dpo_kernels.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/reductions.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {

/// TRL DPOConfig.loss_type values (TRL spells them the same way).
enum class dpo_loss_type : std::uint8_t {
  sigmoid,
  hinge,
  ipo,
  exo_pair,
  nca_pair,
  robust,
  bco_pair,
  sppo_hard,
  aot,
  aot_unpaired,
  apo_zero,
  apo_down,
  discopop,
  sft,
  sigmoid_norm,
};

/// TRL DPOConfig.f_divergence_type values: the score s(x) of a log-ratio x, as TRL 1.16
/// writes it (the constants cancel in s(cr) - s(rj) but not in ipo / sigmoid_norm, which
/// divide each score by its own length).
///   reverse_kl s = x (standard DPO); forward_kl s = 1 - e^{-x}; js_divergence
///   s = log 2 + logσ(x); alpha_divergence s = (e^{min((a-1)x, 80)} - 1) / (a-1),
///   a = f_alpha_divergence_coef (reverse_kl when |a - 1| < 1e-6).
/// Only sigmoid, sigmoid_norm, hinge, ipo, exo_pair, robust, discopop and sft read the scores
/// (TRL refuses another divergence with the other types; so does dpo_loss).
enum class f_divergence_type : std::uint8_t {
  reverse_kl,
  forward_kl,
  js_divergence,
  alpha_divergence,
};

namespace detail::dpo {

/// How dpo_loss computes a loss type's term.
enum class term_scope : std::uint8_t {
  pair,    ///< per pair, in B::parallel_for, by the type's pair_term kernel
  sft,     ///< one batch-level value (the chosen NLL), the same for every pair
  sorted,  ///< over the batch, sorted on the host (aot, aot_unpaired)
};

/// How a loss type reads label_smoothing (ε), and which values it accepts.
enum class smoothing_use : std::uint8_t {
  none,         ///< ignores ε
  soft_labels,  ///< cDPO's ε in [0, 0.5], or per-pair soft labels (dpo_inputs::label_smoothing)
  scalar,       ///< its own use of the scalar ε in [0, 0.5]
  below_half,   ///< its own use of the scalar ε, in [0, 0.5)
  positive,     ///< its own use of the scalar ε, in (0, 0.5]
};

/// What a loss type reads besides the four log-probs; or-ed into type_traits::reads.
enum read_flag : unsigned {
  reads_nothing_else = 0,      ///< the four log-probs only
  reads_chosen_lengths = 1,    ///< divides by n_c: needs dpo_inputs::chosen_lengths
  reads_rejected_lengths = 2,  ///< divides by n_r: needs dpo_inputs::rejected_lengths
  reads_scores = 4,            ///< the f-divergence scores (others take reverse_kl only)
  reads_running_delta = 8,     ///< δ from dpo_config::bco_running
};

/// One row of dpo_types: what dpo_loss needs to know about a loss type besides its kernel.
/// There is no "needs reference" column: the logged rewards (β·(lc - rc), β·(lr - rr)) read
/// the reference log-probs whatever the types, so dpo_inputs always carries them (a run
/// without a reference model passes zeros, TRL's reference_free).
struct type_traits {
  dpo_loss_type type;                             ///< entry i of dpo_types is value i
  std::string_view name;                          ///< TRL's spelling (a string literal)
  unsigned reads = reads_nothing_else;            ///< what it reads (read_flag bits)
  smoothing_use smoothing = smoothing_use::none;  ///< how it reads label_smoothing
  term_scope scope = term_scope::pair;            ///< where its term is computed
};

/// Every DPO loss type. A type whose scope is pair also has a pair_term kernel (below).
inline constexpr auto dpo_types = std::to_array<type_traits>({
    {.type = dpo_loss_type::sigmoid,
     .name = "sigmoid",
     .reads = reads_scores,
     .smoothing = smoothing_use::soft_labels},
    {.type = dpo_loss_type::hinge, .name = "hinge", .reads = reads_scores},
    {.type = dpo_loss_type::ipo,
     .name = "ipo",
     .reads = reads_chosen_lengths | reads_rejected_lengths | reads_scores},
    {.type = dpo_loss_type::exo_pair,
     .name = "exo_pair",
     .reads = reads_scores,
     .smoothing = smoothing_use::positive},
    {.type = dpo_loss_type::nca_pair, .name = "nca_pair"},
    {.type = dpo_loss_type::robust,
     .name = "robust",
     .reads = reads_scores,
     .smoothing = smoothing_use::below_half},
    {.type = dpo_loss_type::bco_pair, .name = "bco_pair", .reads = reads_running_delta},
    {.type = dpo_loss_type::sppo_hard, .name = "sppo_hard"},
    {.type = dpo_loss_type::aot,
     .name = "aot",
     .smoothing = smoothing_use::scalar,
     .scope = term_scope::sorted},
    {.type = dpo_loss_type::aot_unpaired,
     .name = "aot_unpaired",
     .smoothing = smoothing_use::scalar,
     .scope = term_scope::sorted},
    {.type = dpo_loss_type::apo_zero, .name = "apo_zero"},
    {.type = dpo_loss_type::apo_down, .name = "apo_down"},
    {.type = dpo_loss_type::discopop, .name = "discopop", .reads = reads_scores},
    {.type = dpo_loss_type::sft,
     .name = "sft",
     .reads = reads_chosen_lengths | reads_scores,
     .scope = term_scope::sft},
    {.type = dpo_loss_type::sigmoid_norm,
     .name = "sigmoid_norm",
     .reads = reads_chosen_lengths | reads_rejected_lengths | reads_scores},
});

/// True when entry i of dpo_types is the enumerator i.
constexpr bool dpo_types_in_enum_order() {
  for (std::size_t i = 0; i < dpo_types.size(); ++i) {
    if (static_cast<std::size_t>(dpo_types[i].type) != i) return false;
  }
  return true;
}
static_assert(dpo_types_in_enum_order(), "entry i of dpo_types must be dpo_loss_type value i");
static_assert(dpo_types.size() == static_cast<std::size_t>(dpo_loss_type::sigmoid_norm) + 1,
              "one dpo_types entry per dpo_loss_type (sigmoid_norm is the last enumerator)");

/// The row of a loss type (a value outside the enum is refused before this is asked).
constexpr const type_traits& traits(dpo_loss_type t) {
  return dpo_types[static_cast<std::size_t>(t)];
}

}  // namespace detail::dpo
}  // namespace losses

/// TRL's names of the DPO loss types, from detail::dpo::dpo_types.
template <>
struct enum_names<losses::dpo_loss_type> {
  /// Every loss type with its name, in declaration order.
  static constexpr auto values = enum_names_from<losses::dpo_loss_type>(
      losses::detail::dpo::dpo_types);
};
static_assert(enum_table_covers<losses::dpo_loss_type>(losses::detail::dpo::dpo_types.size()));

/// TRL's names of the f-divergence types.
template <>
struct enum_names<losses::f_divergence_type> {
  /// Every f-divergence type with its name, in declaration order.
  static constexpr std::array<enum_name<losses::f_divergence_type>, 4> values{{
      {losses::f_divergence_type::reverse_kl, "reverse_kl"},
      {losses::f_divergence_type::forward_kl, "forward_kl"},
      {losses::f_divergence_type::js_divergence, "js_divergence"},
      {losses::f_divergence_type::alpha_divergence, "alpha_divergence"},
  }};
};
static_assert(enum_table_covers<losses::f_divergence_type>(
    static_cast<std::size_t>(losses::f_divergence_type::alpha_divergence) + 1));

namespace losses {

/// TRL's name of a loss type ("unknown" for a value outside the enum).
[[nodiscard]] inline std::string_view to_string(dpo_loss_type t) { return rlhf::to_string(t); }
/// TRL's name of an f-divergence type ("unknown" for a value outside the enum).
[[nodiscard]] inline std::string_view to_string(f_divergence_type t) { return rlhf::to_string(t); }

/// "sigmoid" → dpo_loss_type::sigmoid; an unknown name is a config_error listing the
/// accepted ones.
[[nodiscard]] inline dpo_loss_type parse_dpo_loss_type(std::string_view name) {
  return enum_from_string<dpo_loss_type>(name, "parse_dpo_loss_type", "loss_type");
}
/// "reverse_kl" → f_divergence_type::reverse_kl; an unknown name is a config_error listing
/// the accepted ones.
[[nodiscard]] inline f_divergence_type parse_f_divergence_type(std::string_view name) {
  return enum_from_string<f_divergence_type>(name, "parse_f_divergence_type", "f_divergence_type");
}

/// TRL DPOConfig's loss options (names and defaults as TRL's).
struct dpo_config {
  float beta = 0.1f;  ///< β, the scale of the scores; finite and > 0
  /// One or more losses, combined as Σ_k loss_weights[k] · mean(L_k).
  std::vector<dpo_loss_type> loss_type{dpo_loss_type::sigmoid};
  /// Empty = 1 for every entry of loss_type; otherwise one finite weight >= 0 per entry.
  std::vector<float> loss_weights{};
  /// ε: cDPO for sigmoid/aot (in [0, 0.5]), the flip probability of robust ([0, 0.5)),
  /// EXO's ε for exo_pair ((0, 0.5]; the paper's value is 1e-3).
  float label_smoothing = 0.0f;
  /// The score s(x) applied to the log-ratios cr and rj.
  losses::f_divergence_type f_divergence_type = losses::f_divergence_type::reverse_kl;
  float f_alpha_divergence_coef = 0.5f;  ///< a of alpha_divergence; finite
  float discopop_tau = 0.05f;            ///< τ of discopop; finite and > 0
  /// WPO: multiply every pair's loss by dpo_inputs::weights (= w_c·w_r from wpo_weights).
  bool use_weighting = false;
  /// LD-DPO's α in [0, 1], TRL's name. It acts on token log-probs, which dpo_loss never
  /// sees: make the four sequence log-probs with ld_sequence_logps and take the gradient back
  /// with ld_sequence_logps_backward (train::dpo_method does both when it is set). dpo_loss
  /// itself refuses a set ld_alpha (a config_error saying this), so that setting it alone
  /// never silently changes nothing.
  std::optional<float> ld_alpha{};
  /// RPO: adds an sft term with weight rpo_alpha (TRL 0.x's rpo_alpha; TRL 1.x writes it
  /// loss_type = {sigmoid, sft}, loss_weights = {1, α}).
  std::optional<float> rpo_alpha{};
  /// bco_pair's δ: nullptr (default) is δ = 0, as in TRL 1.x. Otherwise the caller's
  /// running mean (rlhf/losses/bco_running_mean.hpp), updated by every dpo_loss call whose
  /// loss_type includes bco_pair with one value, the batch mean of [β·cr, β·rj], before
  /// δ = its mean is used (TRL 0.x: RunningMoments fed with that scalar). δ carries no
  /// gradient.
  bco_running_mean* bco_running = nullptr;
};

/// The tensors the DPO loss reads.
template <class B>
struct dpo_inputs {
  const typename B::tensor& policy_chosen_logps;       ///< (N,) lc: Σ of completion token logps
  const typename B::tensor& policy_rejected_logps;     ///< (N,) lr
  const typename B::tensor& reference_chosen_logps;    ///< (N,) rc (frozen reference)
  const typename B::tensor& reference_rejected_logps;  ///< (N,) rrf
  ///@{
  /// (N,) completion token counts n_c, n_r (clamped to >= 1 where divided); needed by ipo
  /// and sigmoid_norm (both), sft and rpo_alpha (chosen).
  const typename B::tensor* chosen_lengths = nullptr;
  const typename B::tensor* rejected_lengths = nullptr;
  ///@}
  /// (N,) WPO weights w_c·w_r (finite, >= 0; see wpo_weights); used iff use_weighting.
  const typename B::tensor* weights = nullptr;
  /// (N,) per-pair ε_i in [0, 1] for the sigmoid term, in place of dpo_config's scalar
  /// label_smoothing: soft preference labels (cDPO with a label per pair). A judge's
  /// probability p_i that the chosen response is the better one is ε_i = 1 - p_i, so the
  /// sigmoid term is the cross-entropy -p_i·logσ(z) - (1-p_i)·logσ(-z). Refused with loss
  /// types that read ε another way (robust, exo_pair, aot, aot_unpaired), without a sigmoid
  /// term, and with a non-zero scalar label_smoothing.
  const typename B::tensor* label_smoothing = nullptr;
};

/// TRL's logged DPO metrics, always from the raw log-ratios (not the f-divergence scores).
struct dpo_metrics {
  float rewards_chosen = 0;      ///< mean(β·cr)
  float rewards_rejected = 0;    ///< mean(β·rj)
  float rewards_accuracies = 0;  ///< mean(β·cr > β·rj), strict
  float rewards_margins = 0;     ///< mean(β·cr - β·rj)
  float logps_chosen = 0;        ///< mean(lc)
  float logps_rejected = 0;      ///< mean(lr)
  /// The metrics under TRL's names.
  [[nodiscard]] named_metrics named() const {
    return {{"rewards/chosen", rewards_chosen},         {"rewards/rejected", rewards_rejected},
            {"rewards/accuracies", rewards_accuracies}, {"rewards/margins", rewards_margins},
            {"logps/chosen", logps_chosen},             {"logps/rejected", logps_rejected}};
  }
};

/// What the DPO loss returns.
template <class B>
struct dpo_result {
  float loss = 0;                                 ///< mean(losses), as a host value
  typename B::tensor losses;                      ///< (N,) Σ_k w_k·L_k,i·wpo_i; loss = mean
  typename B::tensor grad_policy_chosen_logps;    ///< (N,) d loss / d lc
  typename B::tensor grad_policy_rejected_logps;  ///< (N,) d loss / d lr
  dpo_metrics metrics;                            ///< TRL's metrics of the batch
};

namespace detail::dpo {

inline constexpr int dpo_max_terms = 32;

/// The loss terms in a form a device lambda can capture by value.
struct dpo_terms {
  int count = 0;
  dpo_loss_type type[dpo_max_terms] = {};
  float weight[dpo_max_terms] = {};
};

/// The scalars a kernel reads: β, ε (per pair where soft labels are given), discopop's τ,
/// bco_pair's δ, alpha_divergence's a, log(1-ε), log ε (0 when ε = 0) and the divergence.
struct dpo_params {
  float beta, eps, tau, delta, alpha, log1m_eps, log_eps;
  losses::f_divergence_type fdiv;
};

/// alpha_divergence's a close enough to 1 that its score is reverse KL's (x, gradient 1).
RLHF_HD inline bool alpha_is_one(float a) { return std::fabs(a - 1.0f) < 1e-6f; }

/// The f-divergence score s(x) and ds/dx.
RLHF_HD inline value_grad f_score(losses::f_divergence_type kind, float a, float x) {
  switch (kind) {
    case losses::f_divergence_type::reverse_kl: return {x, 1.0f};
    case losses::f_divergence_type::forward_kl: {
      const float e = std::exp(-x);
      return {1.0f - e, e};
    }
    case losses::f_divergence_type::js_divergence:
      return {0.6931471805599453f + math::log_sigmoid(x), math::sigmoid(-x)};
    case losses::f_divergence_type::alpha_divergence: {
      if (alpha_is_one(a)) return {x, 1.0f};
      const float t = (a - 1.0f) * x;
      const float e = std::exp(t < 80.0f ? t : 80.0f);
      // e^{t} - 1 as expm1 below the clamp (exact near t = 0); the clamp passes no gradient.
      return {(t < 80.0f ? std::expm1(t) : e - 1.0f) / (a - 1.0f), t <= 80.0f ? e : 0.0f};
    }
  }
  return {x, 1.0f};
}

/// One pair's inputs to a per-pair term; diff = sc - sr, computed without overflow where
/// the scores are ±inf (forward_kl_difference).
struct dpo_pair {
  float sc, sr, cr, rj, inv_nc, inv_nr, diff;
};

/// One term's loss and its derivatives with respect to s_c, s_r and the raw cr, rj.
struct dpo_term_out {
  float loss = 0, d_sc = 0, d_sr = 0, d_cr = 0, d_rj = 0;
};

/// A term whose loss is a function of z = β·(s_c - s_r) only: its derivatives by chain rule.
RLHF_HD inline dpo_term_out of_z(const value_grad& v, float beta) {
  return {v.value, beta * v.grad, -beta * v.grad, 0.0f, 0.0f};
}

/// The per-pair kernel of loss type T: the pair's loss and its derivatives. Every type whose
/// dpo_types row has scope pair specialises it; the others never instantiate it.
template <dpo_loss_type T>
RLHF_HD dpo_term_out pair_term(const dpo_params& /*p*/, const dpo_pair& /*x*/) {
  static_assert(static_cast<int>(T) < 0,  // false for every type, at instantiation
                "a loss type with term_scope::pair needs a pair_term kernel");
  return {};
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::sigmoid>(const dpo_params& p,
                                                              const dpo_pair& x) {
  return of_z(smoothed_sigmoid_loss(p.beta * x.diff, p.eps), p.beta);
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::hinge>(const dpo_params& p,
                                                            const dpo_pair& x) {
  return of_z(hinge_loss(p.beta * x.diff), p.beta);
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::ipo>(const dpo_params& p, const dpo_pair& x) {
  const float u = x.sc * x.inv_nc - x.sr * x.inv_nr - 0.5f / p.beta;
  return {u * u, 2.0f * u * x.inv_nc, -2.0f * u * x.inv_nr, 0.0f, 0.0f};
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::exo_pair>(const dpo_params& p,
                                                               const dpo_pair& x) {
  return of_z(exo_pair_loss(p.beta * x.diff, p.log1m_eps, p.log_eps), p.beta);
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::nca_pair>(const dpo_params& p,
                                                               const dpo_pair& x) {
  const value_grad2 v = nca_pair_loss(p.beta * x.sc, p.beta * x.sr);
  return {v.value, p.beta * v.grad_a, p.beta * v.grad_b, 0.0f, 0.0f};
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::robust>(const dpo_params& p,
                                                             const dpo_pair& x) {
  return of_z(robust_loss(p.beta * x.diff, p.eps), p.beta);
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::bco_pair>(const dpo_params& p,
                                                               const dpo_pair& x) {
  const value_grad2 v = bco_pair_loss(p.beta * x.sc - p.delta, p.beta * x.sr - p.delta);
  return {v.value, p.beta * v.grad_a, p.beta * v.grad_b, 0.0f, 0.0f};
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::sppo_hard>(const dpo_params& p,
                                                                const dpo_pair& x) {
  const float u = x.sc - 0.5f / p.beta, v = x.sr + 0.5f / p.beta;
  return {u * u + v * v, 2.0f * u, 2.0f * v, 0.0f, 0.0f};
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::apo_zero>(const dpo_params& p,
                                                               const dpo_pair& x) {
  const float b = p.beta;
  const value_grad c = sigmoid_with_grad(b * x.cr), r = sigmoid_with_grad(b * x.rj);
  return {(1.0f - c.value) + r.value, 0.0f, 0.0f, -b * c.grad, b * r.grad};
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::apo_down>(const dpo_params& p,
                                                               const dpo_pair& x) {
  const float b = p.beta;
  const value_grad c = sigmoid_with_grad(b * x.cr), d = sigmoid_with_grad(b * x.diff);
  return {c.value + (1.0f - d.value), -b * d.grad, b * d.grad, b * c.grad, 0.0f};
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::discopop>(const dpo_params& p,
                                                               const dpo_pair& x) {
  return of_z(discopop_loss(p.beta * x.diff, p.tau), p.beta);
}

template <>
RLHF_HD inline dpo_term_out pair_term<dpo_loss_type::sigmoid_norm>(const dpo_params& p,
                                                                   const dpo_pair& x) {
  const float b = p.beta;
  const float y = b * (x.sc * x.inv_nc - x.sr * x.inv_nr);
  const float g = -math::sigmoid(-y);
  return {-math::log_sigmoid(y), b * x.inv_nc * g, -b * x.inv_nr * g, 0.0f, 0.0f};
}

/// Whether entry I of dpo_types is computed per pair (a constant a device function can read).
template <std::size_t I>
inline constexpr bool is_pair_term = dpo_types[I].scope == term_scope::pair;

/// The kernel of entry I, or no contribution for a batch-level type (sft, aot: dpo_loss
/// adds those separately).
template <std::size_t I>
RLHF_HD dpo_term_out pair_term_at(const dpo_params& p, const dpo_pair& x) {
  if constexpr (is_pair_term<I>) {
    return pair_term<static_cast<dpo_loss_type>(I)>(p, x);
  } else {
    return {};
  }
}

template <std::size_t... I>
RLHF_HD dpo_term_out pair_term_of(dpo_loss_type t, const dpo_params& p, const dpo_pair& x,
                                  std::index_sequence<I...> /*every entry*/) {
  dpo_term_out o;
  (void)((t == static_cast<dpo_loss_type>(I) && (o = pair_term_at<I>(p, x), true)) || ...);
  return o;
}

/// The per-pair term of type t: its pair_term kernel, dispatched through dpo_types.
RLHF_HD inline dpo_term_out dpo_pair_term(dpo_loss_type t, const dpo_params& p, const dpo_pair& x) {
  return pair_term_of(t, p, x, std::make_index_sequence<dpo_types.size()>{});
}

/// The names of the types whose row satisfies `pred`, as "a, b or c".
template <class Pred>
std::string type_names_where(Pred pred) {
  std::vector<std::string_view> names;
  for (const type_traits& t : dpo_types) {
    if (pred(t)) names.push_back(t.name);
  }
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " or " : ", ";
    out += names[i];
  }
  return out;
}

/// The data_error of a batch whose loss or gradient is not finite: names the first such
/// pair, its log-ratios and, for forward_kl, why (β·e^{-x} beyond float's range). An
/// infinite loss (or gradient) gives an optimizer nothing to step on, so dpo_loss throws
/// instead of returning it; pairs whose true loss and gradients are finite never throw.
template <class B>
[[noreturn]] void throw_non_finite(const dpo_inputs<B>& in, const dpo_result<B>& r,
                                   const dpo_config& cfg) {
  const auto loss = ops::to_host<B>(r.losses);
  const auto gc = ops::to_host<B>(r.grad_policy_chosen_logps);
  const auto gr = ops::to_host<B>(r.grad_policy_rejected_logps);
  const auto lc = ops::to_host<B>(in.policy_chosen_logps);
  const auto lr = ops::to_host<B>(in.policy_rejected_logps);
  const auto rc = ops::to_host<B>(in.reference_chosen_logps);
  const auto rr = ops::to_host<B>(in.reference_rejected_logps);
  std::size_t i = 0;
  while (i + 1 < loss.size() && std::isfinite(loss[i]) && std::isfinite(gc[i]) &&
         std::isfinite(gr[i])) {
    ++i;
  }
  const bool fkl = cfg.f_divergence_type == f_divergence_type::forward_kl;
  const std::string what = std::isfinite(loss[i])
                               ? rlhf::detail::concat("the gradient of pair ", i,
                                                      " is not finite (", gc[i], ", ", gr[i],
                                                      "; loss ", loss[i], ")")
                               : rlhf::detail::concat("the loss of pair ", i, " is ", loss[i],
                                                      " (gradients ", gc[i], ", ", gr[i], ")");
  throw data_error(rlhf::detail::concat(
      "dpo_loss: ", what, ": chosen log-ratio ", lc[i] - rc[i], ", rejected log-ratio ",
      lr[i] - rr[i],
      fkl ? "; with f_divergence_type forward_kl the score -e^{-x} of a log-ratio below about "
            "-88 is beyond float's range, and here the true value is too; keep the policy "
            "closer to the reference or use reverse_kl"
          : "; the true value is beyond float's range"));
}

/// Indices that sort v ascending (stable: ties keep their batch order).
inline std::vector<std::size_t> argsort(const std::vector<float>& v) {
  std::vector<std::size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  std::stable_sort(idx.begin(), idx.end(),
                   [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  return idx;
}

// ---- validate

/// The four log-probs: rank 1, one shape, at least one pair.
template <class B>
void check_shapes(const char* fn, const dpo_inputs<B>& in) {
  const shape& s0 = in.policy_chosen_logps.shape();
  check_rank(fn, "policy_chosen_logps", s0, 1, 1);
  check_same_shape(fn, "policy_chosen_logps", s0, "policy_rejected_logps",
                   in.policy_rejected_logps.shape());
  check_same_shape(fn, "policy_chosen_logps", s0, "reference_chosen_logps",
                   in.reference_chosen_logps.shape());
  check_same_shape(fn, "policy_chosen_logps", s0, "reference_rejected_logps",
                   in.reference_rejected_logps.shape());
  if (in.policy_chosen_logps.size() == 0) {
    throw shape_error("dpo_loss: batch is empty (policy_chosen_logps has 0 pairs)");
  }
}

/// The scalar options, each against its documented range.
inline void check_options(const char* fn, const dpo_config& cfg) {
  const float eps = cfg.label_smoothing;
  check_config(!cfg.loss_type.empty(), fn, "loss_type", "a non-empty list", "an empty list");
  check_config(std::isfinite(cfg.beta) && cfg.beta > 0.0f, fn, "beta", "finite and > 0",
               cfg.beta);
  check_config(std::isfinite(eps) && eps >= 0.0f && eps <= 0.5f, fn, "label_smoothing",
               "in [0, 0.5]", eps);
  check_config(cfg.loss_weights.empty() || cfg.loss_weights.size() == cfg.loss_type.size(),
               fn, "loss_weights",
               rlhf::detail::concat("empty or one weight per loss_type entry (",
                                    cfg.loss_type.size(), ")"),
               rlhf::detail::concat(cfg.loss_weights.size(), " weights"));
  for (std::size_t k = 0; k < cfg.loss_weights.size(); ++k) {
    check_config(std::isfinite(cfg.loss_weights[k]) && cfg.loss_weights[k] >= 0.0f, fn,
                 rlhf::detail::concat("loss_weights[", k, "]"), "finite and >= 0",
                 cfg.loss_weights[k]);
  }
  check_config(std::isfinite(cfg.discopop_tau) && cfg.discopop_tau > 0.0f, fn, "discopop_tau",
               "finite and > 0", cfg.discopop_tau);
  check_config(std::isfinite(cfg.f_alpha_divergence_coef), fn, "f_alpha_divergence_coef",
               "finite", cfg.f_alpha_divergence_coef);
  check_enum(fn, "f_divergence_type", cfg.f_divergence_type);
  if (cfg.ld_alpha) {
    throw config_error(rlhf::detail::concat(
        fn, ": ld_alpha (", *cfg.ld_alpha,
        ") acts on token log-probs, which dpo_loss does not see: pass sequence log-probs made "
        "by ld_sequence_logps (and take the gradient back with ld_sequence_logps_backward), "
        "and leave dpo_config::ld_alpha unset here; train::dpo_method does both when it is "
        "set"));
  }
  if (cfg.rpo_alpha) {
    check_config(std::isfinite(*cfg.rpo_alpha) && *cfg.rpo_alpha >= 0.0f, fn, "rpo_alpha",
                 "finite and >= 0", *cfg.rpo_alpha);
  }
}

/// dpo_inputs::label_smoothing's conditions on the configuration (see there): a type that
/// takes soft labels is present and none reads ε another way.
inline void check_per_pair_smoothing(const char* fn, const dpo_config& cfg) {
  const auto soft = [](const type_traits& t) { return t.smoothing == smoothing_use::soft_labels; };
  bool any_soft = false;
  for (const dpo_loss_type t : cfg.loss_type) {
    const type_traits& row = traits(t);
    any_soft |= soft(row);
    if (row.smoothing != smoothing_use::none && !soft(row)) {
      throw config_error(rlhf::detail::concat(
          fn, ": per-pair label_smoothing (soft labels) works with the ", type_names_where(soft),
          " loss; loss_type ", row.name, " reads label_smoothing in its own way"));
    }
  }
  if (!any_soft) {
    throw config_error(rlhf::detail::concat(fn, ": per-pair label_smoothing (soft labels) needs a ",
                                            type_names_where(soft), " term in loss_type"));
  }
  check_config(cfg.label_smoothing == 0.0f, fn, "label_smoothing",
               "0 when per-pair label_smoothing is given", cfg.label_smoothing);
}

// ---- plan

/// The terms to compute and what they read, from the configuration and the inputs given.
struct dpo_plan {
  dpo_terms terms;          ///< one entry per loss_type, then rpo_alpha's sft
  bool has_sft = false;     ///< a term of scope sft
  bool has_sorted = false;  ///< a term of scope sorted
  bool has_delta = false;   ///< a term that reads δ
  bool need_nc = false;     ///< a term reads chosen_lengths
  bool need_nr = false;     ///< a term reads rejected_lengths
};

/// Checks every term against its dpo_types row (divergence, ε, the inputs it reads) and
/// returns the plan.
template <class B>
dpo_plan make_plan(const char* fn, const dpo_inputs<B>& in, const dpo_config& cfg) {
  // The enumerators first: every later check reads the type's row.
  for (std::size_t k = 0; k < cfg.loss_type.size(); ++k) {
    check_enum(fn, rlhf::detail::concat("loss_type[", k, "]"), cfg.loss_type[k]);
  }
  if (in.label_smoothing) check_per_pair_smoothing(fn, cfg);
  dpo_plan plan;
  const std::size_t count = cfg.loss_type.size() + (cfg.rpo_alpha ? 1 : 0);
  check_config(count <= static_cast<std::size_t>(dpo_max_terms), fn, "loss_type (with rpo_alpha)",
               "at most 32 terms", count);
  const float eps = cfg.label_smoothing;
  std::string needs_nc_by, needs_nr_by;  // what asks for the lengths, for the message
  for (std::size_t k = 0; k < count; ++k) {
    const bool rpo = k == cfg.loss_type.size();
    const dpo_loss_type t = rpo ? dpo_loss_type::sft : cfg.loss_type[k];
    const type_traits& row = traits(t);
    if (cfg.f_divergence_type != f_divergence_type::reverse_kl && (row.reads & reads_scores) == 0) {
      throw config_error(rlhf::detail::concat(
          fn, ": f_divergence_type ", to_string(cfg.f_divergence_type), " works with loss_type ",
          type_names_where([](const type_traits& r) { return (r.reads & reads_scores) != 0; }),
          " (as in TRL), not ", row.name));
    }
    plan.terms.type[k] = t;
    plan.terms.weight[k] = rpo ? *cfg.rpo_alpha
                               : (cfg.loss_weights.empty() ? 1.0f : cfg.loss_weights[k]);
    plan.has_sft |= row.scope == term_scope::sft;
    plan.has_sorted |= row.scope == term_scope::sorted;
    plan.has_delta |= (row.reads & reads_running_delta) != 0;
    const std::string by = rpo ? std::string("rpo_alpha")
                               : rlhf::detail::concat("loss_type ", row.name);
    if ((row.reads & reads_chosen_lengths) != 0 && !plan.need_nc) {
      plan.need_nc = true;
      needs_nc_by = by;
    }
    if ((row.reads & reads_rejected_lengths) != 0 && !plan.need_nr) {
      plan.need_nr = true;
      needs_nr_by = by;
    }
    if (row.smoothing == smoothing_use::below_half) {
      check_config(eps < 0.5f, fn, "label_smoothing",
                   rlhf::detail::concat("in [0, 0.5) for loss_type ", row.name), eps);
    }
    if (row.smoothing == smoothing_use::positive) {
      check_config(eps > 0.0f, fn, "label_smoothing",
                   rlhf::detail::concat("in (0, 0.5] for loss_type ", row.name), eps);
    }
  }
  plan.terms.count = static_cast<int>(count);
  if (cfg.use_weighting && !in.weights) {
    throw config_error("dpo_loss: use_weighting needs weights (the WPO weights w_c*w_r), "
                       "which are absent");
  }
  if (!cfg.use_weighting && in.weights) {
    throw config_error("dpo_loss: weights were given but use_weighting is false");
  }
  if (plan.need_nc && !in.chosen_lengths) {
    throw config_error(rlhf::detail::concat(
        "dpo_loss: ", needs_nc_by, " needs chosen_lengths (completion token counts), which "
        "are absent"));
  }
  if (plan.need_nr && !in.rejected_lengths) {
    throw config_error(rlhf::detail::concat(
        "dpo_loss: ", needs_nr_by, " needs rejected_lengths (completion token counts), which "
        "are absent"));
  }
  return plan;
}

/// The values: finite log-probs; lengths and weights finite and >= 0; soft labels in [0, 1].
template <class B>
void check_values(const char* fn, const dpo_inputs<B>& in) {
  const shape& s0 = in.policy_chosen_logps.shape();
  ops::check_finite<B>(fn, "policy_chosen_logps", in.policy_chosen_logps);
  ops::check_finite<B>(fn, "policy_rejected_logps", in.policy_rejected_logps);
  ops::check_finite<B>(fn, "reference_chosen_logps", in.reference_chosen_logps);
  ops::check_finite<B>(fn, "reference_rejected_logps", in.reference_rejected_logps);
  const auto check_optional = [&](const typename B::tensor* t, std::string_view name) {
    if (!t) return;
    check_same_shape(fn, name, t->shape(), "policy_chosen_logps", s0);
    ops::check_mask<B>(fn, name, *t);
  };
  check_optional(in.chosen_lengths, "chosen_lengths");
  check_optional(in.rejected_lengths, "rejected_lengths");
  check_optional(in.weights, "weights");
  if (in.label_smoothing) {
    check_same_shape(fn, "label_smoothing", in.label_smoothing->shape(), "policy_chosen_logps", s0);
    ops::check_probabilities<B>(fn, "label_smoothing", *in.label_smoothing);
  }
}

// ---- kernels

/// The batch-level terms every pair adds: the sft value and gradient (scope sft), δ, and the
/// per-position losses and routed gradients of the sorted terms.
template <class B>
struct batch_terms {
  float sft_value = 0.0f;  ///< Σ_k w_k·S, the same for every pair
  float sft_grad = 0.0f;   ///< Σ_k w_k·dS·mean(wpo), added to every d loss / d lc
  float delta = 0.0f;      ///< bco_pair's δ
  std::optional<typename B::tensor> sorted_loss, sorted_gc, sorted_gr;
};

/// The sft terms: S = -Σ_i lc_i / Σ_i n_c,i (the token-mean NLL of the chosen completions).
template <class B>
void sft_terms(const dpo_inputs<B>& in, const dpo_plan& plan, batch_terms<B>& out) {
  const float n = static_cast<float>(in.policy_chosen_logps.size());
  const float mean_w = in.weights ? ops::sum<B>(*in.weights) / n : 1.0f;
  const float tokens = std::max(ops::sum<B>(*in.chosen_lengths), 1.0f);
  const float s = -ops::sum<B>(in.policy_chosen_logps) / tokens;
  for (int k = 0; k < plan.terms.count; ++k) {
    if (traits(plan.terms.type[k]).scope != term_scope::sft) continue;
    out.sft_value += plan.terms.weight[k] * s;
    out.sft_grad += plan.terms.weight[k] * (-mean_w / tokens);
  }
}

/// bco_pair's δ: the running mean, first updated with the batch mean of [β·cr, β·rj].
template <class B>
float running_delta(const dpo_inputs<B>& in, const dpo_config& cfg) {
  const index_t n = in.policy_chosen_logps.size();
  const float beta = cfg.beta;
  const float* lc = B::data(in.policy_chosen_logps);
  const float* lr = B::data(in.policy_rejected_logps);
  const float* rc = B::data(in.reference_chosen_logps);
  const float* rrf = B::data(in.reference_rejected_logps);
  typename B::tensor both(shape{n});
  float* bp = B::data(both);
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) { bp[i] = beta * (lc[i] - rc[i]) + beta * (lr[i] - rrf[i]); });
  cfg.bco_running->update(static_cast<double>(ops::sum<B>(both)) / (2.0 * static_cast<double>(n)),
                          1.0);
  return static_cast<float>(cfg.bco_running->mean);
}

/// The sorted terms (aot, aot_unpaired) on the host: per-position losses, and gradients
/// routed back through the sort permutations.
template <class B>
void sorted_terms(const dpo_inputs<B>& in, const dpo_config& cfg, const dpo_plan& plan,
                  batch_terms<B>& out) {
  const index_t n = in.policy_chosen_logps.size();
  const float beta = cfg.beta, eps = cfg.label_smoothing, fn_ = static_cast<float>(n);
  const auto h_lc = ops::to_host<B>(in.policy_chosen_logps);
  const auto h_lr = ops::to_host<B>(in.policy_rejected_logps);
  const auto h_rc = ops::to_host<B>(in.reference_chosen_logps);
  const auto h_rr = ops::to_host<B>(in.reference_rejected_logps);
  const std::vector<float> h_w = in.weights ? ops::to_host<B>(*in.weights)
                                            : std::vector<float>(static_cast<std::size_t>(n), 1.0f);
  const auto un = static_cast<std::size_t>(n);
  std::vector<float> l(un, 0.0f), gc(un, 0.0f), gr(un, 0.0f), a(un), b(un);
  for (int k = 0; k < plan.terms.count; ++k) {
    const dpo_loss_type t = plan.terms.type[k];
    if (traits(t).scope != term_scope::sorted) continue;
    const bool paired = t == dpo_loss_type::aot;
    for (std::size_t i = 0; i < un; ++i) {
      a[i] = paired ? h_lc[i] - h_lr[i] : h_lc[i] - h_rc[i];  // sorted with a gradient
      b[i] = paired ? h_rc[i] - h_rr[i] : h_lr[i] - h_rr[i];
    }
    const auto pa = argsort(a), pb = argsort(b);
    for (std::size_t pos = 0; pos < un; ++pos) {
      const auto v = smoothed_sigmoid_loss(beta * (a[pa[pos]] - b[pb[pos]]), eps);
      l[pos] += plan.terms.weight[k] * v.value;
      // WPO weights multiply by batch position (TRL multiplies the sorted losses).
      const float g = plan.terms.weight[k] * beta * v.grad * h_w[pos] / fn_;
      gc[pa[pos]] += g;
      (paired ? gr[pa[pos]] : gr[pb[pos]]) -= g;  // a = lc - lr, or b = lr - rrf
    }
  }
  out.sorted_loss = ops::from_host<B>(std::span<const float>(l), shape{n});
  out.sorted_gc = ops::from_host<B>(std::span<const float>(gc), shape{n});
  out.sorted_gr = ops::from_host<B>(std::span<const float>(gr), shape{n});
}

/// Whether pair_pass may take sigmoid_pair_pass: the one term is sigmoid (any weight) on
/// the plain log-ratios (reverse KL, or alpha_divergence at a = 1, which f_score makes the
/// same), with no batch terms.
inline bool sigmoid_only(const dpo_config& cfg, const dpo_plan& plan) {
  const bool plain_ratios = cfg.f_divergence_type == losses::f_divergence_type::reverse_kl ||
                            (cfg.f_divergence_type == losses::f_divergence_type::alpha_divergence &&
                             alpha_is_one(cfg.f_alpha_divergence_coef));
  return plan.terms.count == 1 && plan.terms.type[0] == dpo_loss_type::sigmoid && plain_ratios &&
         !plan.has_sft && !plan.has_sorted && !plan.has_delta;
}

/// Pairs per work item of sigmoid_pair_pass.
inline constexpr index_t sigmoid_block = 256;

/// What one block of sigmoid_pair_pass adds up: pair_pass's statistics rows (loss, β·cr,
/// β·rj, correct, margin, lc, lr, the gradients' sum), then the count of non-finite z.
inline constexpr int sigmoid_stats = 9;

/// The pairs [begin, end) of sigmoid_pair_pass: losses and gradients written, statistics
/// added into sums[0..8] (a plain function of pointers and scalars, so that GCC and Clang
/// both vectorise its loop; inside the caller's lambda Clang did not).
RLHF_ALWAYS_INLINE void sigmoid_pairs(const float* lc, const float* lr, const float* rc,
                                      const float* rrf, const float* wt, const float* eps_i,
                                      float* loss, float* gcp, float* grp, float beta, float eps,
                                      float inv_n, float term_weight, index_t begin, index_t end,
                                      double* sums) {
  using ops::detail::float_bits;
  double s_loss = 0, s_rwc = 0, s_rwr = 0, s_correct = 0, s_margin = 0, s_lc = 0, s_lr = 0,
         s_grad = 0, not_finite = 0;
  RLHF_SIMD_REDUCE(+ : s_loss, s_rwc, s_rwr, s_correct, s_margin, s_lc, s_lr, s_grad, not_finite)
  for (index_t i = begin; i < end; ++i) {
    const float cr = lc[i] - rc[i], rj = lr[i] - rrf[i];
    const float z = beta * (cr - rj);
    not_finite += ((float_bits(z) >> 23) & 0xff) == 0xff ? 1.0 : 0.0;  // inf or NaN
    const value_grad v = sigmoid_loss_simd(z, eps_i ? eps_i[i] : eps);
    const float wi = wt ? wt[i] : 1.0f;
    const float g_c = wi * inv_n * (term_weight * (beta * v.grad));
    const float g_r = wi * inv_n * (term_weight * (-beta * v.grad));
    gcp[i] = g_c;
    grp[i] = g_r;
    const float li = wi * (term_weight * v.value);
    loss[i] = li;
    const float rwc = beta * cr, rwr = beta * rj, margin = rwc - rwr;
    // rwc > rwr: margin's sign bit clear and margin not ±0.
    s_correct += float_bits(margin) > 0 ? 1.0 : 0.0;
    s_loss += li;
    s_rwc += rwc;
    s_rwr += rwr;
    s_margin += margin;
    s_lc += lc[i];
    s_lr += lr[i];
    s_grad += static_cast<double>(g_c + g_r);
  }
  const double block[sigmoid_stats] = {s_loss, s_rwc, s_rwr,  s_correct, s_margin,
                                       s_lc,   s_lr,  s_grad, not_finite};
  for (int k = 0; k < sigmoid_stats; ++k) sums[k] = block[k];
}

/// pair_pass for the sigmoid loss alone, on host memory: blocks of sigmoid_block pairs, each
/// one SIMD loop (sigmoid_loss_simd) whose statistics add up in double; the blocks' sums
/// then add in block order, so the result does not depend on the thread count. Returns
/// nothing when some z = β·(cr - rj) is not finite (a log-ratio beyond float's range), for
/// pair_pass's general kernels, which handle and report that.
template <class B>
std::optional<dpo_result<B>> sigmoid_pair_pass(const dpo_inputs<B>& in, const dpo_config& cfg,
                                               float term_weight) {
  using tensor = typename B::tensor;
  const index_t n = in.policy_chosen_logps.size();
  const float beta = cfg.beta, eps = cfg.label_smoothing;
  const float* lc = B::data(in.policy_chosen_logps);
  const float* lr = B::data(in.policy_rejected_logps);
  const float* rc = B::data(in.reference_chosen_logps);
  const float* rrf = B::data(in.reference_rejected_logps);
  const float* wt = in.weights ? B::data(*in.weights) : nullptr;
  const float* eps_i = in.label_smoothing ? B::data(*in.label_smoothing) : nullptr;
  dpo_result<B> r{0.0f, tensor(shape{n}), tensor(shape{n}), tensor(shape{n}), {}};
  float* loss = B::data(r.losses);
  float* gcp = B::data(r.grad_policy_chosen_logps);
  float* grp = B::data(r.grad_policy_rejected_logps);
  constexpr int n_stats = sigmoid_stats - 1;  // the last is the non-finite count
  const index_t blocks = (n + sigmoid_block - 1) / sigmoid_block;
  std::vector<double> partial(static_cast<std::size_t>(blocks * sigmoid_stats), 0.0);
  double* part = partial.data();
  const float inv_n = 1.0f / static_cast<float>(n);
  B::parallel_for(blocks, [=](index_t blk) {
    const index_t begin = blk * sigmoid_block;
    const index_t end = begin + sigmoid_block < n ? begin + sigmoid_block : n;
    sigmoid_pairs(lc, lr, rc, rrf, wt, eps_i, loss, gcp, grp, beta, eps, inv_n, term_weight, begin,
                  end, part + blk * sigmoid_stats);
  });
  double sums[sigmoid_stats] = {};
  for (index_t blk = 0; blk < blocks; ++blk) {
    for (int k = 0; k < sigmoid_stats; ++k) sums[k] += part[blk * sigmoid_stats + k];
  }
  if (sums[n_stats] != 0.0) return std::nullopt;
  if (validating(validation::cheap) && (!std::isfinite(sums[0]) || !std::isfinite(sums[7]))) {
    throw_non_finite<B>(in, r, cfg);
  }
  const double dn = static_cast<double>(n);
  r.loss = static_cast<float>(sums[0] / dn);
  r.metrics.rewards_chosen = static_cast<float>(sums[1] / dn);
  r.metrics.rewards_rejected = static_cast<float>(sums[2] / dn);
  r.metrics.rewards_accuracies = static_cast<float>(sums[3] / dn);
  r.metrics.rewards_margins = static_cast<float>(sums[4] / dn);
  r.metrics.logps_chosen = static_cast<float>(sums[5] / dn);
  r.metrics.logps_rejected = static_cast<float>(sums[6] / dn);
  return r;
}

/// The per-pair pass: every pair's terms (dpo_pair_term), the batch terms added, the
/// losses and gradients written, and the metrics reduced by one row_sums_to_host.
template <class B>
dpo_result<B> pair_pass(const dpo_inputs<B>& in, const dpo_config& cfg, const dpo_plan& plan,
                        const batch_terms<B>& batch) {
  using tensor = typename B::tensor;
  const index_t n = in.policy_chosen_logps.size();
  const float beta = cfg.beta, eps = cfg.label_smoothing;
  const float fn_ = static_cast<float>(n);
  const float* lc = B::data(in.policy_chosen_logps);
  const float* lr = B::data(in.policy_rejected_logps);
  const float* rc = B::data(in.reference_chosen_logps);
  const float* rrf = B::data(in.reference_rejected_logps);
  const float* nc = plan.need_nc ? B::data(*in.chosen_lengths) : nullptr;
  const float* nr = plan.need_nr ? B::data(*in.rejected_lengths) : nullptr;
  const float* wt = in.weights ? B::data(*in.weights) : nullptr;
  const float* eps_i = in.label_smoothing ? B::data(*in.label_smoothing) : nullptr;
  dpo_result<B> r{0.0f, tensor(shape{n}), tensor(shape{n}), tensor(shape{n}), {}};
  // Statistics per pair: loss, β·cr, β·rj, correct, margin, lc, lr, and the gradients' sum
  // (for the finiteness check).
  tensor stats(shape{8, n});
  float* loss = B::data(r.losses);
  float* gcp = B::data(r.grad_policy_chosen_logps);
  float* grp = B::data(r.grad_policy_rejected_logps);
  float* st = B::data(stats);
  const float* al = batch.sorted_loss ? B::data(*batch.sorted_loss) : nullptr;
  const float* agc = batch.sorted_gc ? B::data(*batch.sorted_gc) : nullptr;
  const float* agr = batch.sorted_gr ? B::data(*batch.sorted_gr) : nullptr;
  const float sft_value = batch.sft_value, sft_grad = batch.sft_grad;
  const dpo_terms terms = plan.terms;
  const dpo_params p{beta,
                     eps,
                     cfg.discopop_tau,
                     batch.delta,
                     cfg.f_alpha_divergence_coef,
                     std::log1p(-eps),
                     eps > 0.0f ? std::log(eps) : 0.0f,
                     cfg.f_divergence_type};
  const float inv_n = 1.0f / fn_;
  B::parallel_for(n, RLHF_LAMBDA(index_t i) {
    const float cr = lc[i] - rc[i], rj = lr[i] - rrf[i];
    const value_grad sc = f_score(p.fdiv, p.alpha, cr);
    const value_grad sr = f_score(p.fdiv, p.alpha, rj);
    const float diff = p.fdiv == losses::f_divergence_type::forward_kl
                           ? forward_kl_difference(cr, rj)
                           : sc.value - sr.value;
    const dpo_pair x{sc.value,
                     sr.value,
                     cr,
                     rj,
                     nc ? 1.0f / (nc[i] > 1.0f ? nc[i] : 1.0f) : 1.0f,
                     nr ? 1.0f / (nr[i] > 1.0f ? nr[i] : 1.0f) : 1.0f,
                     diff};
    dpo_params pi = p;
    if (eps_i) pi.eps = eps_i[i];  // only soft-label types read it (check_per_pair_smoothing)
    float l = 0.0f, d_sc = 0.0f, d_sr = 0.0f, d_cr = 0.0f, d_rj = 0.0f;
    for (int k = 0; k < terms.count; ++k) {
      const dpo_term_out o = dpo_pair_term(terms.type[k], pi, x);
      const float w = terms.weight[k];
      l += w * o.loss;
      d_sc += w * o.d_sc;
      d_sr += w * o.d_sr;
      d_cr += w * o.d_cr;
      d_rj += w * o.d_rj;
    }
    const float wi = wt ? wt[i] : 1.0f;
    const float scale = wi * inv_n;
    // A zero derivative skips the score's (0 · inf would be NaN where forward_kl overflows
    // for a term that does not read the score).
    const float g_c = (d_sc != 0.0f ? d_sc * sc.grad : 0.0f) + d_cr;
    const float g_r = (d_sr != 0.0f ? d_sr * sr.grad : 0.0f) + d_rj;
    gcp[i] = scale * g_c + sft_grad + (agc ? agc[i] : 0.0f);
    grp[i] = scale * g_r + (agr ? agr[i] : 0.0f);
    const float li = wi * (l + sft_value + (al ? al[i] : 0.0f));
    loss[i] = li;
    const float rwc = beta * cr, rwr = beta * rj;
    st[0 * n + i] = li;
    st[1 * n + i] = rwc;
    st[2 * n + i] = rwr;
    st[3 * n + i] = rwc > rwr ? 1.0f : 0.0f;
    st[4 * n + i] = rwc - rwr;
    st[5 * n + i] = lc[i];
    st[6 * n + i] = lr[i];
    st[7 * n + i] = gcp[i] + grp[i];
  });
  const std::vector<float> sums = ops::row_sums_to_host<B>(stats);
  if (validating(validation::cheap) && (!std::isfinite(sums[0]) || !std::isfinite(sums[7]))) {
    throw_non_finite<B>(in, r, cfg);
  }
  r.loss = sums[0] / fn_;
  r.metrics.rewards_chosen = sums[1] / fn_;
  r.metrics.rewards_rejected = sums[2] / fn_;
  r.metrics.rewards_accuracies = sums[3] / fn_;
  r.metrics.rewards_margins = sums[4] / fn_;
  r.metrics.logps_chosen = sums[5] / fn_;
  r.metrics.logps_rejected = sums[6] / fn_;
  return r;
}

}  // namespace detail::dpo

/// The DPO-family loss of a batch of preference pairs, its gradients with respect to the
/// policy log-probs, and TRL's metrics.
template <class B>
dpo_result<B> dpo_loss(const dpo_inputs<B>& in, const dpo_config& cfg = {}) {
  constexpr const char* fn = "dpo_loss";
  assert_tensor_backend<B>();
  detail::dpo::check_shapes(fn, in);
  detail::dpo::check_options(fn, cfg);
  const detail::dpo::dpo_plan plan = detail::dpo::make_plan(fn, in, cfg);
  detail::dpo::check_values(fn, in);

  detail::dpo::batch_terms<B> batch;
  if (plan.has_sft) detail::dpo::sft_terms(in, plan, batch);
  if (plan.has_delta && cfg.bco_running) batch.delta = detail::dpo::running_delta(in, cfg);
  if (plan.has_sorted) detail::dpo::sorted_terms(in, cfg, plan, batch);
  if constexpr (B::host_accessible) {
    if (detail::dpo::sigmoid_only(cfg, plan)) {
      if (auto r = detail::dpo::sigmoid_pair_pass(in, cfg, plan.terms.weight[0])) return *r;
    }
  }
  return detail::dpo::pair_pass(in, cfg, plan, batch);
}

/// LD-DPO's length-desensitised sequence log-probs (Liu et al. 2024), as TRL computes them
/// for policy and reference alike: with c_t = Σ_{s<=t} mask[i, s] the completion position
/// and shared_i = min(Σ_t mask[i, t], Σ_t other_mask[i, t]),
///
///   out[i] = Σ_t mask[i,t] · token_logps[i,t] · (c_t <= shared_i ? 1 : ld_alpha)
///
/// i.e. the first min(n_c, n_r) completion tokens at full weight, the rest times ld_alpha.
/// token_logps (N, T) are token_logprobs' layout: column t holds the log-prob of token t,
/// and column 0 is never predicted, so mask[:, 0] and other_mask[:, 0] are ignored (the
/// convention of token_logprobs, sequence_logprobs and wpo_weights: t runs from 1). Masks
/// are the 0/1 completion masks of these sequences and of their paired sequences
/// (other_mask (N, T'), T' may differ from T); positions with mask 0 are skipped entirely. Call it with (chosen, chosen mask, rejected mask) and with
/// (rejected, rejected mask, chosen mask), for the policy and for the reference.
/// token_weights (optional, (N, T)) receives d out[i] / d token_logps[i, t], the factor by
/// which a trainer multiplies the upstream sequence gradient per token.
template <class B>
void ld_sequence_logps(const typename B::tensor& token_logps, const typename B::tensor& mask,
                       const typename B::tensor& other_mask, float ld_alpha,
                       typename B::tensor& out, typename B::tensor* token_weights = nullptr) {
  constexpr const char* fn = "ld_sequence_logps";
  assert_tensor_backend<B>();
  check_rank(fn, "token_logps", token_logps.shape(), 2, 2);
  check_same_shape(fn, "token_logps", token_logps.shape(), "mask", mask.shape());
  check_rank(fn, "other_mask", other_mask.shape(), 2, 2);
  const index_t n = token_logps.shape()[0], t_len = token_logps.shape()[1];
  check_dim(fn, "other_mask's row count (one per sequence)", other_mask.shape()[0], n);
  check_dim(fn, "out's element count (one per sequence)", out.size(), n);
  if (token_weights) {
    check_same_shape(fn, "token_weights", token_weights->shape(), "token_logps",
                     token_logps.shape());
  }
  check_config(ld_alpha >= 0.0f && ld_alpha <= 1.0f, fn, "ld_alpha", "in [0, 1]", ld_alpha);
  ops::check_finite<B>(fn, "token_logps", token_logps);
  ops::check_mask<B>(fn, "mask", mask);
  ops::check_mask<B>(fn, "other_mask", other_mask);
  const float* x = B::data(token_logps);
  const float* m = B::data(mask);
  const float* om = B::data(other_mask);
  const index_t t_other = other_mask.shape()[1];
  float* o = B::data(out);
  float* tw = token_weights ? B::data(*token_weights) : nullptr;
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        double len = 0.0, other = 0.0;  // token counts: exact in double past 2^24
        for (index_t t = 1; t < t_len; ++t) len += m[i * t_len + t];
        for (index_t t = 1; t < t_other; ++t) other += om[i * t_other + t];
        const double shared = len < other ? len : other;
        double pos = 0.0;
        float sum = 0.0f;
        if (tw && t_len > 0) tw[i * t_len] = 0.0f;
        for (index_t t = 1; t < t_len; ++t) {
          const float mt = m[i * t_len + t];
          pos += mt;
          const float w = mt != 0.0f ? mt * (pos <= shared ? 1.0f : ld_alpha) : 0.0f;
          if (mt != 0.0f) sum += w * x[i * t_len + t];
          if (tw) tw[i * t_len + t] = w;
        }
        o[i] = sum;
      });
}

/// The backward of ld_sequence_logps: d loss / d token_logps[i, t] =
/// grad_sequence[i] · token_weights[i, t], with token_weights (N, T) as ld_sequence_logps
/// wrote them. Returns (N, T), ready for token_logprobs_backward.
template <class B>
typename B::tensor ld_sequence_logps_backward(const typename B::tensor& grad_sequence,
                                              const typename B::tensor& token_weights) {
  constexpr const char* fn = "ld_sequence_logps_backward";
  assert_tensor_backend<B>();
  check_rank(fn, "token_weights", token_weights.shape(), 2, 2);
  const index_t n = token_weights.shape()[0], t_len = token_weights.shape()[1];
  check_dim(fn, "grad_sequence's element count (one per row of token_weights)",
            grad_sequence.size(), n);
  typename B::tensor out(token_weights.shape());
  const float* g = B::data(grad_sequence);
  const float* w = B::data(token_weights);
  float* o = B::data(out);
  B::parallel_for(
      n * t_len, RLHF_LAMBDA(index_t k) { o[k] = g[k / t_len] * w[k]; });
  return out;
}

/// WPO's per-sequence weight (Zhou et al. 2024, eq. 2, as TRL computes it from the
/// policy's logits, without gradient):
///
///   w_i = exp( Σ_{t>=1} m_t·(logp_t - logsumexp_v(2·z_{t-1}) + 2·logsumexp_v(z_{t-1}))
///              / max(Σ_{t>=1} m_t, 1) ),   logp_t = z_{t-1}[y_t] - logsumexp_v(z_{t-1})
///
/// logits (N, T, V): position t-1 predicts token t, so position 0 is never predicted
/// (mask[:, 0] is ignored) and the logits of position T-1 are unused; tokens (N, T) in
/// [0, V) where they are read (t >= 1 and mask != 0; elsewhere any value, e.g. TRL's -100,
/// as token_logprobs accepts; a data_error otherwise); mask (N, T) the completion mask;
/// out (N,). Multiply the
/// chosen and the rejected weights into dpo_inputs::weights. NaN in logits propagates.
template <class B>
void wpo_weights(const typename B::tensor& logits, const typename B::index_tensor& tokens,
                 const typename B::tensor& mask, typename B::tensor& out) {
  using tensor = typename B::tensor;
  constexpr const char* fn = "wpo_weights";
  assert_tensor_backend<B>();
  check_rank(fn, "logits", logits.shape(), 3, 3);
  const index_t n = logits.shape()[0], t_len = logits.shape()[1], v = logits.shape()[2];
  check_shape(fn, "tokens", tokens.shape(), shape{n, t_len}, "batch and length of logits");
  check_shape(fn, "mask", mask.shape(), shape{n, t_len}, "batch and length of logits");
  check_dim(fn, "out's element count (one per sequence)", out.size(), n);
  check_config(v >= 1, fn, "logits' vocabulary size", ">= 1", v);
  ops::check_mask<B>(fn, "mask", mask);
  {
    const std::vector<std::int32_t> ids = ops::to_host<B>(tokens);
    const std::vector<float> used = ops::to_host<B>(mask);
    for (std::size_t k = 0; k < ids.size(); ++k) {
      const bool read = t_len > 0 && k % static_cast<std::size_t>(t_len) != 0 && used[k] != 0.0f;
      if (read && (ids[k] < 0 || ids[k] >= v)) {
        throw data_error(rlhf::detail::concat(fn, ": tokens must be in [0, ", v, "), got ",
                                              ids[k], " at flat index ", k));
      }
    }
  }
  if (n == 0) return;
  tensor per_token(shape{n, t_len});  // T = 0: no predicted token, w = exp(0) = 1
  const float* z = B::data(logits);
  const std::int32_t* y = B::data(tokens);
  const float* m = B::data(mask);
  float* pt = B::data(per_token);
  B::parallel_for(n * t_len, RLHF_LAMBDA(index_t k) {  // n·T = 0 runs nothing
    const index_t t = k % t_len;
    const float mt = t > 0 ? m[k] : 0.0f;
    if (mt == 0.0f) {
      pt[k] = 0.0f;
      return;
    }
    const float* row = z + (k - 1) * v;  // position t-1 of the same sequence
    float mx = row[0];
    for (index_t c = 1; c < v; ++c) mx = row[c] > mx ? row[c] : mx;
    float s1 = 0.0f, s2 = 0.0f;
    for (index_t c = 0; c < v; ++c) {
      const float e = std::exp(row[c] - mx);
      s1 += e;
      s2 += e * e;
    }
    const float lse1 = mx + std::log(s1), lse2 = 2.0f * mx + std::log(s2);
    // logp - lse2 + 2·lse1 = z[y] - lse1 - lse2 + 2·lse1 = z[y] + lse1 - lse2
    pt[k] = mt * (row[y[k]] + lse1 - lse2);
  });
  float* o = B::data(out);
  B::parallel_for(
      n, RLHF_LAMBDA(index_t i) {
        float sum = 0.0f;
        double count = 0.0;  // a token count: exact in double past 2^24
        for (index_t t = 1; t < t_len; ++t) {
          sum += pt[i * t_len + t];
          count += m[i * t_len + t];
        }
        o[i] = std::exp(sum / (count > 1.0 ? static_cast<float>(count) : 1.0f));
      });
}

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
