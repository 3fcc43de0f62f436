// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Supervised fine-tuning: masked token cross-entropy over the completion tokens of the
// whole batch (a global token mean, as TRL's SFTTrainer with completion_only_loss), and
// the DFT variant (Wu et al. 2025, "On the Generalization of SFT": each token's NLL
// weighted by its detached probability). docs/algorithms/sft.md.
//
//   nll: loss = -Σ m_t logp_t / Σ m_t        dft: loss = -Σ m_t sg(p_t) logp_t / Σ m_t
//
// Shapes and the position shift are those of rlhf/ops/logprobs.hpp: logits (N, T, V),
// input_ids (N, T), completion_mask (N, T); logits at t-1 predict input_ids at t. The
// gradient with respect to the logits comes out of the same single pass over them.
#pragma once

#include <array>
#include <cmath>
#include <stdexcept>
#include <string>
#include <string_view>

#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/reductions.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {

/// The token loss: plain NLL, or DFT's NLL weighted by the detached token probability.
enum class sft_loss_type { nll, dft };

}  // namespace losses

/// The names of SFT's loss types.
template <>
struct enum_names<losses::sft_loss_type> {
  /// Every value with its name, in declaration order.
  static constexpr std::array<enum_name<losses::sft_loss_type>, 2> values{{
      {losses::sft_loss_type::nll, "nll"},
      {losses::sft_loss_type::dft, "dft"},
  }};
};
static_assert(enum_table_covers<losses::sft_loss_type>(2));

namespace losses {

/// The name of a loss type, the inverse of parse_sft_loss_type.
inline std::string_view to_string(sft_loss_type t) { return rlhf::to_string(t); }

/// "nll" or "dft"; anything else is a config_error.
inline sft_loss_type parse_sft_loss_type(std::string_view s) {
  return enum_from_string<sft_loss_type>(s, "parse_sft_loss_type", "loss_type");
}

/// TRL SFTConfig's loss options.
struct sft_config {
  sft_loss_type loss_type = sft_loss_type::nll;  ///< nll (TRL's default) or dft
  bool compute_entropy = true;  ///< the "entropy" metric (one extra multiply-add per logit)
};

/// The tensors the SFT loss reads.
template <class B>
struct sft_inputs {
  const typename B::tensor& logits;           ///< (N, T, V)
  const typename B::index_tensor& input_ids;  ///< (N, T)
  const typename B::tensor& completion_mask;  ///< (N, T), 1 on completion tokens
};

/// TRL's SFT metrics of the batch.
struct sft_metrics {
  float num_tokens = 0;           ///< Σ m (completion tokens of the batch)
  float mean_token_accuracy = 0;  ///< Σ m·[y_t is the argmax] / Σ m
  float entropy = 0;              ///< Σ m·H_t / Σ m (0 when not computed)
  /// The metrics under TRL's names.
  [[nodiscard]] named_metrics named() const {
    return {{"num_tokens", num_tokens}, {"mean_token_accuracy", mean_token_accuracy},
            {"entropy", entropy}};
  }
};

/// What the SFT loss returns (the logit gradient goes to the caller's buffer).
template <class B>
struct sft_result {
  float loss = 0;  ///< the masked token mean of the NLL (or DFT) term, as a host value
  typename B::tensor token_logps;  ///< (N, T) m·logp (0 at t = 0 and off the mask)
  sft_metrics metrics;             ///< TRL's metrics of the batch
};

/// SFT loss; writes d loss / d logits into grad_logits (N, T, V) (caller-owned, so a
/// trainer reuses one buffer).
template <class B>
sft_result<B> sft_loss(const sft_inputs<B>& in, typename B::tensor& grad_logits,
                       const sft_config& cfg = {}) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "sft_loss";
  check_rank(fn, "logits", in.logits.shape(), 3, 3);
  check_same_shape(fn, "grad_logits", grad_logits.shape(), "logits", in.logits.shape());
  check_enum(fn, "loss_type", cfg.loss_type);
  check_shape(fn, "completion_mask", in.completion_mask.shape(),
              shape{in.logits.shape()[0], in.logits.shape()[1]}, "(N, T) of logits (N, T, V)");
  ops::check_mask<B>(fn, "completion_mask", in.completion_mask);
  // Σ m over the predicted positions t >= 1.
  const index_t T = in.logits.shape()[1];
  double count = 0.0;  // in double: a float running count stops growing at 2^24
  ops::detail::with_host_values<B>(in.completion_mask, [&](std::span<const float> m) {
    for (std::size_t i = 0; i < m.size(); ++i) {
      if (static_cast<index_t>(i) % T != 0) count += m[i];
    }
  });
  if (!(count > 0.0)) {
    throw data_error("sft_loss: completion_mask selects no predicted token (positions t >= 1); "
                     "the token mean is undefined");
  }
  const float inv_count = 1.0f / static_cast<float>(count);
  ops::logprob_options opt;
  opt.compute_entropy = cfg.compute_entropy;
  const bool dft = cfg.loss_type == sft_loss_type::dft;
  auto fwd = dft ? ops::token_logprobs_fused<B>(in.logits, in.input_ids, in.completion_mask,
                                                grad_logits, ops::upstream::dft{inv_count}, opt)
                 : ops::token_logprobs_fused<B>(in.logits, in.input_ids, in.completion_mask,
                                                grad_logits,
                                                ops::upstream::constant{-inv_count}, opt);
  // Per-token statistics (3, N·T): loss numerator, hits, entropy; all weighted by m.
  const index_t nt = fwd.logps.size();
  typename B::tensor stats(shape{3, nt});
  const float* lp = B::data(fwd.logps);
  const float* m = B::data(in.completion_mask);
  const float* hit = B::data(fwd.correct);
  const float* ent = cfg.compute_entropy ? B::data(fwd.entropy) : nullptr;
  float* st = B::data(stats);
  B::parallel_for(nt, RLHF_LAMBDA(index_t i) {
    const float w = m[i];
    // lp is already m·logp; DFT needs the unmasked logp for sg(p).
    const float p = (dft && w != 0.0f) ? std::exp(lp[i] / w) : 1.0f;
    st[i] = w != 0.0f ? p * lp[i] : 0.0f;
    st[nt + i] = w * hit[i];
    st[2 * nt + i] = ent ? w * ent[i] : 0.0f;
  });
  const auto sums = ops::row_sums_to_host<B>(stats);
  sft_result<B> r{-sums[0] * inv_count, std::move(fwd.logps), {}};
  r.metrics.num_tokens = static_cast<float>(count);
  r.metrics.mean_token_accuracy = sums[1] * inv_count;
  r.metrics.entropy = sums[2] * inv_count;
  return r;
}

}  // namespace losses
}  // namespace v0
}  // namespace rlhf
