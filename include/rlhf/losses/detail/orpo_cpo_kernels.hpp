// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Shared by the reference-free preference losses (rlhf/losses/orpo.hpp, rlhf/losses/cpo.hpp):
// the chosen-sequence NLL term and the per-element math of ORPO and CPO.
//
//   NLL = -Σ_i s_i / Σ_i n_i      (global token mean over the batch's chosen sequences)
//
// s_i is the sum of the token log-probs of chosen sequence i over the tokens the NLL covers,
// n_i the number of those tokens. Which tokens they are is the caller's choice, named by
// `nll_tokens`: TRL's ORPO covers prompt + completion, TRL's CPO the completion only. With
// `nll_tokens::completion` the sums may be left out: they are then derived from the chosen
// log-probs the loss already receives (s_i = logp_i for sum log-probs, logp_i · n_i for
// per-token mean log-probs), and the NLL gradient flows into those log-probs.
#pragma once

#include <array>
#include <cmath>
#include <string>
#include <string_view>

#include "rlhf/core/config.hpp"
#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/math.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/reductions.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {

/// Which tokens of the chosen sequence the NLL term of ORPO / CPO covers.
enum class nll_tokens {
  prompt_and_completion,  // TRL ORPOTrainer: every non-padding token of prompt + completion
  completion,             // TRL CPOTrainer: the completion tokens only
};

}  // namespace losses

/// The names of nll_tokens' values.
template <>
struct enum_names<losses::nll_tokens> {
  /// Every value with its name, in declaration order.
  static constexpr std::array<enum_name<losses::nll_tokens>, 2> values{{
      {losses::nll_tokens::prompt_and_completion, "prompt_and_completion"},
      {losses::nll_tokens::completion, "completion"},
  }};
};
static_assert(enum_table_covers<losses::nll_tokens>(2));

namespace losses {

/// The name of an nll_tokens value, the inverse of parse_nll_tokens.
inline const char* to_string(nll_tokens t) { return rlhf::to_string(t).data(); }

/// "prompt_and_completion" | "completion"; anything else is a config_error.
inline nll_tokens parse_nll_tokens(std::string_view name) {
  return enum_from_string<nll_tokens>(name, "parse_nll_tokens", "nll_tokens");
}

namespace detail {

/// Validates the NLL inputs and returns Σ n_i (> 0). `sums` may be null only for
/// nll_tokens::completion (derived from the chosen log-probs).
template <class B>
float check_chosen_nll_inputs(std::string_view fn, const shape& chosen_shape,
                              const typename B::tensor* counts,
                              const typename B::tensor* sums, nll_tokens tokens) {
  if (counts == nullptr) {
    throw config_error(rlhf::detail::concat(
        fn, ": chosen_nll_token_counts is required (the NLL term is a token mean)"));
  }
  check_same_shape(fn, "chosen_nll_token_counts", counts->shape(), "policy_chosen_logps",
                   chosen_shape);
  ops::check_mask<B>(fn, "chosen_nll_token_counts", *counts);
  if (sums != nullptr) {
    check_same_shape(fn, "chosen_nll_logp_sums", sums->shape(), "policy_chosen_logps",
                     chosen_shape);
    ops::check_finite<B>(fn, "chosen_nll_logp_sums", *sums);
  } else if (tokens != nll_tokens::completion) {
    throw config_error(rlhf::detail::concat(
        fn, ": chosen_nll_logp_sums is required when nll_tokens = ", to_string(tokens),
        " (only completion-token sums can be derived from policy_chosen_logps)"));
  }
  const float total = ops::sum<B>(*counts);
  if (!(total > 0.0f)) {
    throw data_error(rlhf::detail::concat(
        fn, ": chosen_nll_token_counts sums to 0; the NLL token mean is undefined"));
  }
  return total;
}

/// d log_odds / d logp for ORPO: log_odds = (a - b) - (log1mexp(a) - log1mexp(b)), so
/// d/da = 1 - d log1mexp(a)/da = 1 + e^a/(1 - e^a) = -1/expm1(a) (> 0 for a < 0).
RLHF_HD inline float orpo_dlogodds(float a) { return -1.0f / std::expm1(a); }

/// AlphaPO reward (1 - p^-α)/α with p = e^l, written -expm1(-α·l)/α (no underflow of p);
/// its derivative in l is e^{-α·l}.
RLHF_HD inline float alphapo_reward(float l, float alpha) { return -std::expm1(-alpha * l) / alpha; }
RLHF_HD inline float alphapo_dreward(float l, float alpha) { return std::exp(-alpha * l); }

}  // namespace detail
}  // namespace losses
}  // namespace v0
}  // namespace rlhf
