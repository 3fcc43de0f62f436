// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Per-pair scalar kernels of the DPO family (rlhf/losses/dpo.hpp): each returns the loss
// of one pair and its derivative with respect to the quantity it is a function of, stable
// in float32 for any finite input and callable from host and device code.
#pragma once

#include <cmath>
#include <cstdint>

#include "rlhf/core/config.hpp"
#include "rlhf/core/math.hpp"
#include "rlhf/ops/detail/logprob_kernels.hpp"

namespace rlhf {
inline namespace v0 {
namespace losses {
namespace detail::dpo {

/// A loss value and one derivative.
struct value_grad {
  float value;
  float grad;
};

/// A loss value and its derivatives with respect to two arguments.
struct value_grad2 {
  float value;
  float grad_a;
  float grad_b;
};

/// -(1-ε)·logσ(z) - ε·logσ(-z) (sigmoid/cDPO, aot, aot_unpaired);
/// d/dz = -(1-ε)σ(-z) + εσ(z).
/// At z = ±inf (forward_kl past float's range) the ε term is left out when ε = 0, so a
/// pair whose loss is truly 0 gives 0, not 0·inf = NaN.
RLHF_HD inline value_grad smoothed_sigmoid_loss(float z, float eps) {
  const float smooth = eps != 0.0f ? eps * math::log_sigmoid(-z) : 0.0f;
  const float l = -(1.0f - eps) * math::log_sigmoid(z) - smooth;
  return {l, -(1.0f - eps) * math::sigmoid(-z) + eps * math::sigmoid(z)};
}

/// log(1 + u) for u in [0, 1], without branches (so loops that call it vectorise):
/// 2·atanh(s) with s = u / (2 + u) in [0, 1/3], by its odd series to s^15 (truncation below
/// 2e-9 relative). Near 0 it is u to full precision (1 + u is never formed); within 2 ulp of
/// std::log1p on [0, 1].
RLHF_HD RLHF_ALWAYS_INLINE float log1p_unit(float u) {
  const float s = u / (2.0f + u);
  const float s2 = s * s;
  float p = 1.0f / 15.0f;
  p = p * s2 + 1.0f / 13.0f;
  p = p * s2 + 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  return 2.0f * s + 2.0f * s * (s2 * p);
}

/// smoothed_sigmoid_loss on the vectorisable exp and log1p, for finite z: one e^-|z| gives
/// log σ(±z) = min(±z, 0) - log1p(e^-|z|) and σ(±z) = 1 / (1 + e^-|z|) or e^-|z| / (1 +
/// e^-|z|), chosen by z's sign bit (selects on bits: GCC keeps float comparisons from
/// vectorising here). With ε = 0 the ε terms are 0, as in smoothed_sigmoid_loss.
RLHF_HD RLHF_ALWAYS_INLINE value_grad sigmoid_loss_simd(float z, float eps) {
  using ops::detail::bits_float;
  using ops::detail::float_bits;
  const float e = ops::detail::exp_nonpositive(-std::fabs(z));
  const float l1p = log1p_unit(e);
  const std::int32_t neg = float_bits(z) >> 31;          // -1 when z < 0 (or -0)
  const float zneg = bits_float(float_bits(z) & neg);    // min(z, 0)
  const float zpos = bits_float(float_bits(z) & ~neg);   // max(z, 0)
  const float log_sig = zneg - l1p;                      // log σ(z)
  const float log_sig_neg = -zpos - l1p;                 // log σ(-z)
  const float big = 1.0f / (1.0f + e), small = e * big;  // σ(|z|), σ(-|z|)
  const float sig = bits_float((float_bits(small) & neg) | (float_bits(big) & ~neg));
  const float sig_neg = bits_float((float_bits(big) & neg) | (float_bits(small) & ~neg));
  return {-(1.0f - eps) * log_sig - eps * log_sig_neg, -(1.0f - eps) * sig_neg + eps * sig};
}

/// forward_kl's score difference s_c - s_r = e^{-rj} - e^{-cr} (s = -e^{-x}), written as
/// e^m·(e^{-rj-m} - e^{-cr-m}) with m = max(-rj, -cr) when a term would overflow, so the
/// sign is right and equal log-ratios give 0 even where e^{-x} is +inf in float (x < -88).
/// Returns ±inf only when the difference itself is beyond float's range.
RLHF_HD inline float forward_kl_difference(float cr, float rj) {
  const float a = -rj, b = -cr;
  const float m = a > b ? a : b;
  if (m < 80.0f) return std::exp(a) - std::exp(b);
  const float d = std::exp(a - m) - std::exp(b - m);  // in [-1, 1]
  if (d == 0.0f) return 0.0f;
  const float mag = std::exp(m + std::log(std::fabs(d)));
  return d > 0.0f ? mag : -mag;
}

/// relu(1 - z) (SLiC); derivative -1 where 1 - z > 0, else 0 (0 at the kink, as torch).
RLHF_HD inline value_grad hinge_loss(float z) {
  const float m = 1.0f - z;
  return m > 0.0f ? value_grad{m, -1.0f} : value_grad{0.0f, 0.0f};
}

/// EXO-pref: σ(z)(logσ(z) - log(1-ε)) + σ(-z)(logσ(-z) - log ε); since
/// logσ(z) - logσ(-z) = z, d/dz = σ(z)σ(-z)·(z - log((1-ε)/ε)).
RLHF_HD inline value_grad exo_pair_loss(float z, float log1m_eps, float log_eps) {
  const float p = math::sigmoid(z), q = math::sigmoid(-z);
  const float l = p * (math::log_sigmoid(z) - log1m_eps) + q * (math::log_sigmoid(-z) - log_eps);
  return {l, p * q * (z - (log1m_eps - log_eps))};
}

/// Robust DPO: (-(1-ε)logσ(z) + ε·logσ(-z)) / (1 - 2ε), 0 <= ε < 0.5.
RLHF_HD inline value_grad robust_loss(float z, float eps) {
  const float inv = 1.0f / (1.0f - 2.0f * eps);
  const float l = (-(1.0f - eps) * math::log_sigmoid(z) + eps * math::log_sigmoid(-z)) * inv;
  return {l, (-(1.0f - eps) * math::sigmoid(-z) - eps * math::sigmoid(z)) * inv};
}

/// NCA pair with a = β·s_c, b = β·s_r: -logσ(a) - ½logσ(-a) - ½logσ(-b).
RLHF_HD inline value_grad2 nca_pair_loss(float a, float b) {
  const float l = -math::log_sigmoid(a) - 0.5f * math::log_sigmoid(-a) -
                  0.5f * math::log_sigmoid(-b);
  return {l, -math::sigmoid(-a) + 0.5f * math::sigmoid(a), 0.5f * math::sigmoid(b)};
}

/// BCO pair with a = β·s_c - δ, b = β·s_r - δ: -logσ(a) - logσ(-b).
RLHF_HD inline value_grad2 bco_pair_loss(float a, float b) {
  return {-math::log_sigmoid(a) - math::log_sigmoid(-b), -math::sigmoid(-a), math::sigmoid(b)};
}

/// DiscoPOP (log-ratio modulated loss), z = β·D, w = σ(z/τ):
///   -logσ(z)·(1 - w) + e^{-z}·w,
/// with e^{-z}·w evaluated as exp(-z + logσ(z/τ)) so that it stays finite where e^{-z}
/// overflows and w underflows (z << 0).
RLHF_HD inline value_grad discopop_loss(float z, float tau) {
  const float w = math::sigmoid(z / tau);
  const float wc = math::sigmoid(-z / tau);  // 1 - w without cancellation
  const float nls = -math::log_sigmoid(z);
  const float ew = std::exp(-z + math::log_sigmoid(z / tau));  // e^{-z}·w
  const float dw = w * wc / tau;                               // dw/dz
  // d/dz[-logσ(z)(1-w)] = -σ(-z)(1-w) - (-logσ(z))·dw
  // d/dz[e^{-z}w]        = -e^{-z}w + e^{-z}w·wc/τ
  const float g = -math::sigmoid(-z) * wc - nls * dw - ew + ew * wc / tau;
  return {nls * wc + ew, g};
}

/// σ(x) and its derivative σ(x)σ(-x).
RLHF_HD inline value_grad sigmoid_with_grad(float x) {
  const float p = math::sigmoid(x);
  return {p, p * math::sigmoid(-x)};
}

}  // namespace detail::dpo
}  // namespace losses
}  // namespace v0
}  // namespace rlhf
