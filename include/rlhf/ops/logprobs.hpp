// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Sequence log-probs from logits: the hot path of every trainer (docs/algorithms/logprobs.md).
//
// Shapes: logits (N, T, V), tokens (N, T) int32, mask (N, T) float completion weights.
// Shift: the logits at position t-1 predict the token at position t, so
//   logps[n, t] = m[n, t] · (u[n, t-1, y_t] - logsumexp_v u[n, t-1, v]),  u = logits / τ,
// and logps[n, 0] = 0: position 0 is never predicted and mask[:, 0] is ignored. Positions
// with m = 0 are not read at all (prompt and padding cost nothing); their tokens may be any
// value (e.g. -100), every other token must lie in [0, V).
//
//   token_logprobs           forward: logps, the saved row statistics, argmax hits, entropy
//   token_logprobs_backward  grad_logits from an upstream d/d logps (and d/d entropy)
//   token_logprobs_fused     forward + gradient in one pass over each row, when the
//                            upstream gradient depends only on (n, t, logp): SFT, DFT
//   sequence_logprobs        Σ_t logps ("sum") or Σ_t logps / Σ_t m ("mean") over the
//                            columns the caller names (logprob_columns), and back
//
// Each logits row is read from memory once per call; the fused call reads it once and
// writes its gradient once (the minimum traffic). A NaN or Inf in a logits row that is
// used is a data_error naming the row.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/detail/logprob_kernels.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {

/// Options of the fused log-prob ops.
struct logprob_options {
  float temperature = 1.0f;      ///< τ > 0: logits are divided by it first
  bool compute_entropy = false;  ///< per-token entropy of softmax(logits / τ)
};

/// Forward results; `row_max` and `log_sum` are the saved intermediates the backward pass
/// reads (logsumexp = row_max + log_sum, kept apart so that softmax stays accurate when
/// |logits| is large).
template <class B>
struct token_logprobs_result {
  typename B::tensor logps;    ///< (N, T) m_t · log p(y_t | y_<t); 0 at t = 0 and where m = 0
  typename B::tensor row_max;  ///< (N, T) max of the tempered row t-1 (0 where unused)
  typename B::tensor log_sum;  ///< (N, T) log Σ_v e^(u_v - row_max)
  typename B::tensor correct;  ///< (N, T) 1 where y_t is the argmax of row t-1 (m ≠ 0 only)
  typename B::tensor entropy;  ///< (N, T) H of row t-1 where m ≠ 0, else 0; shape (0) if off
};

namespace detail {

struct logprob_dims {
  index_t n, t, v;
};

template <class B>
logprob_dims check_logprob_inputs(std::string_view fn, const typename B::tensor& logits,
                                  const typename B::index_tensor& tokens,
                                  const typename B::tensor& mask, const logprob_options& opt) {
  check_rank(fn, "logits", logits.shape(), 3, 3);
  const logprob_dims d{logits.shape()[0], logits.shape()[1], logits.shape()[2]};
  check_shape(fn, "tokens", tokens.shape(), shape{d.n, d.t}, "(N, T) of logits (N, T, V)");
  check_shape(fn, "mask", mask.shape(), shape{d.n, d.t}, "(N, T) of logits (N, T, V)");
  if (d.n == 0 || d.t == 0) {
    throw shape_error(rlhf::detail::concat(fn, ": batch is empty (logits has shape ",
                                           logits.shape().str(), ")"));
  }
  check_config(d.v >= 1, fn, "logits' vocabulary size V", ">= 1", d.v);
  check_config(std::isfinite(opt.temperature) && opt.temperature > 0.0f, fn, "temperature",
               "finite and > 0", opt.temperature);
  check_mask<B>(fn, "mask", mask);
  // Tokens that are predicted must index the vocabulary.
  // Host-readable backends are read in place; others copy the (N, T) ids once.
  std::vector<std::int32_t> ids_copy;
  if constexpr (!B::host_accessible) ids_copy = to_host<B>(tokens);
  const std::int32_t* ids = B::host_accessible ? B::data(tokens) : ids_copy.data();
  with_host_values<B>(mask, [&](std::span<const float> m) {
    for (index_t n = 0; n < d.n; ++n) {
      for (index_t t = 1; t < d.t; ++t) {
        const auto i = static_cast<std::size_t>(n * d.t + t);
        if (m[i] != 0.0f && (ids[i] < 0 || ids[i] >= d.v)) {
          throw data_error(rlhf::detail::concat(fn, ": tokens[", n, ", ", t, "] = ", ids[i],
                                                " is outside the vocabulary [0, ", d.v,
                                                ") at a position the mask uses"));
        }
      }
    }
  });
  return d;
}

/// The per-position outputs of the forward, as raw pointers a device lambda can capture.
struct logprob_slots {
  float *lp, *mx, *ls, *hit, *ent;  // ent null when entropy is off

  template <class B>
  static logprob_slots of(token_logprobs_result<B>& r) {
    return {B::data(r.logps), B::data(r.row_max), B::data(r.log_sum), B::data(r.correct),
            r.entropy.size() != 0 ? B::data(r.entropy) : nullptr};
  }
  /// Position i predicts nothing (t = 0) or is off the mask.
  RLHF_HD void clear(index_t i) const {
    lp[i] = mx[i] = ls[i] = hit[i] = 0.0f;
    if (ent) ent[i] = 0.0f;
  }
  RLHF_HD void store(index_t i, float mask, const logprob_row& row) const {
    lp[i] = mask * row.logp;
    mx[i] = row.max;
    ls[i] = row.log_sum;
    hit[i] = row.correct;
    if (ent) ent[i] = row.entropy;
  }
};

template <class B>
token_logprobs_result<B> allocate_logprobs_result(const logprob_dims& d,
                                                  const logprob_options& opt) {
  using tensor = typename B::tensor;
  const shape nt{d.n, d.t};
  return {tensor(nt), tensor(nt), tensor(nt), tensor(nt),
          tensor(opt.compute_entropy ? nt : shape{0})};
}

/// A NaN in the outputs at a used position means the logits row held NaN/Inf.
template <class B>
void check_logprob_rows(std::string_view fn, const typename B::tensor& logps,
                        const typename B::tensor& mask, const logprob_dims& d) {
  with_host_values<B>(logps, [&](std::span<const float> lp) {
    with_host_values<B>(mask, [&](std::span<const float> m) {
      for (index_t n = 0; n < d.n; ++n) {
        for (index_t t = 1; t < d.t; ++t) {
          const auto i = static_cast<std::size_t>(n * d.t + t);
          if (m[i] != 0.0f && !std::isfinite(lp[i])) {
            throw data_error(rlhf::detail::concat(
                fn, ": logits row [", n, ", ", t - 1,
                "] holds a NaN or Inf (or is entirely -inf); it predicts tokens[", n, ", ", t,
                "]"));
          }
        }
      }
    });
  });
}

}  // namespace detail

/// Forward pass: per-token log-probs of `tokens` under `logits`, with what the backward
/// pass needs. One read of every used logits row.
template <class B>
token_logprobs_result<B> token_logprobs(const typename B::tensor& logits,
                                        const typename B::index_tensor& tokens,
                                        const typename B::tensor& mask,
                                        const logprob_options& opt = {}) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "token_logprobs";
  const auto d = detail::check_logprob_inputs<B>(fn, logits, tokens, mask, opt);
  auto r = detail::allocate_logprobs_result<B>(d, opt);
  const float* z = B::data(logits);
  const std::int32_t* y = B::data(tokens);
  const float* m = B::data(mask);
  const auto out = detail::logprob_slots::of<B>(r);
  const index_t T = d.t, V = d.v;
  const float inv_tau = 1.0f / opt.temperature;
  B::parallel_for(d.n * d.t, RLHF_LAMBDA(index_t i) {
    const index_t t = i % T;
    if (t == 0 || m[i] == 0.0f) {
      out.clear(i);
      return;
    }
    float s;
    const auto row = detail::logprob_row_forward(z + (i - 1) * V, V, inv_tau, y[i],
                                                 out.ent != nullptr, nullptr, s);
    out.store(i, m[i], row);
  });
  detail::check_logprob_rows<B>(fn, r.logps, mask, d);
  return r;
}

/// Backward pass: grad_logits[n, t-1, :] (=|+=) g[n,t]·m·(onehot(y_t) - p)/τ
///   - ge[n,t]·p ⊙ (log p + H)/τ,   p = softmax(logits[n, t-1] / τ),
/// where g = d loss / d logps and ge = d loss / d entropy (optional; needs the forward's
/// entropy). Rows that predict nothing (t = T-1, or m = 0) get zero (or are left alone
/// when accumulating).
template <class B>
void token_logprobs_backward(const typename B::tensor& logits,
                             const typename B::index_tensor& tokens,
                             const typename B::tensor& mask,
                             const token_logprobs_result<B>& saved,
                             const typename B::tensor& grad_logps,
                             typename B::tensor& grad_logits, const logprob_options& opt = {},
                             const typename B::tensor* grad_entropy = nullptr,
                             bool accumulate = false) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "token_logprobs_backward";
  const auto d = detail::check_logprob_inputs<B>(fn, logits, tokens, mask, opt);
  check_same_shape(fn, "grad_logits", grad_logits.shape(), "logits", logits.shape());
  check_same_shape(fn, "grad_logps", grad_logps.shape(), "mask", mask.shape());
  check_same_shape(fn, "saved.row_max", saved.row_max.shape(), "mask", mask.shape());
  check_same_shape(fn, "saved.log_sum", saved.log_sum.shape(), "mask", mask.shape());
  check_finite<B>(fn, "grad_logps", grad_logps);
  if (grad_entropy) {
    check_same_shape(fn, "grad_entropy", grad_entropy->shape(), "mask", mask.shape());
    check_same_shape(fn, "saved.entropy", saved.entropy.shape(), "mask", mask.shape());
    check_finite<B>(fn, "grad_entropy", *grad_entropy);
  }
  const float* z = B::data(logits);
  const std::int32_t* y = B::data(tokens);
  const float* m = B::data(mask);
  const float* mx = B::data(saved.row_max);
  const float* ls = B::data(saved.log_sum);
  const float* g = B::data(grad_logps);
  const float* ge = grad_entropy ? B::data(*grad_entropy) : nullptr;
  const float* ent = grad_entropy ? B::data(saved.entropy) : nullptr;
  float* gz = B::data(grad_logits);
  const index_t T = d.t, V = d.v;
  const float inv_tau = 1.0f / opt.temperature;
  // One task per logits row r = (n, t): it predicts position t + 1.
  B::parallel_for(d.n * d.t, RLHF_LAMBDA(index_t r) {
    const index_t t = r % T;
    const index_t i = r + 1;  // the predicted position
    float* gr = gz + r * V;
    if (t == T - 1 || m[i] == 0.0f) {
      if (!accumulate) detail::zero_row(V, gr);
      return;
    }
    const float c = g[i] * m[i] * inv_tau;
    const float ce = ge ? ge[i] * inv_tau : 0.0f;  // entropy is reported unweighted
    detail::logprob_row_backward(z + r * V, V, inv_tau, y[i], mx[i], ls[i], c, ce,
                                 ent ? ent[i] : 0.0f, accumulate, gr);
  });
}

/// Upstream gradients for token_logprobs_fused: d loss / d logps[n, t] as a function of
/// (n, t, logp), where logp is the unmasked log-prob (the mask is applied by the op).
namespace upstream {
/// A constant, e.g. -1 / (number of completion tokens) for token-mean cross-entropy.
struct constant {
  float value;  ///< The gradient every token gets.
  /// Returns value, whatever the position and log-prob.
  RLHF_HD float operator()(index_t, index_t, float) const { return value; }
};
/// DFT (Wu et al. 2025): loss_t = -p.detach()·logp, so d/dlogp = -scale · e^logp.
struct dft {
  float scale;  ///< The factor on -e^logp.
  /// Returns -scale · e^logp.
  RLHF_HD float operator()(index_t, index_t, float logp) const {
    return -scale * std::exp(logp);
  }
};
}  // namespace upstream

/// Forward and gradient in one pass over each used row (read once, gradient written
/// once): `upstream(n, t, logp)` gives d loss / d logps[n, t]. Returns the forward results
/// (no entropy gradient; entropy as a metric when opt.compute_entropy).
template <class B, class Upstream>
token_logprobs_result<B> token_logprobs_fused(const typename B::tensor& logits,
                                              const typename B::index_tensor& tokens,
                                              const typename B::tensor& mask,
                                              typename B::tensor& grad_logits,
                                              Upstream upstream,
                                              const logprob_options& opt = {}) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "token_logprobs_fused";
  const auto d = detail::check_logprob_inputs<B>(fn, logits, tokens, mask, opt);
  check_same_shape(fn, "grad_logits", grad_logits.shape(), "logits", logits.shape());
  auto r = detail::allocate_logprobs_result<B>(d, opt);
  const float* z = B::data(logits);
  const std::int32_t* y = B::data(tokens);
  const float* m = B::data(mask);
  const auto out = detail::logprob_slots::of<B>(r);
  float* gz = B::data(grad_logits);
  const index_t T = d.t, V = d.v;
  const float inv_tau = 1.0f / opt.temperature;
  B::parallel_for(d.n * d.t, RLHF_LAMBDA(index_t row) {
    const index_t n = row / T, t = row % T;
    float* gr = gz + row * V;
    // Output slot `row` belongs to position t (predicted by row - 1); row `row` of the
    // logits predicts position t + 1. One task handles both so every row is read once.
    if (t == 0) out.clear(row);
    const index_t i = row + 1;
    if (t == T - 1 || m[i] == 0.0f) {
      detail::zero_row(V, gr);
      if (t != T - 1) out.clear(i);
      return;
    }
    float s;
    const auto res =
        detail::logprob_row_forward(z + row * V, V, inv_tau, y[i], out.ent != nullptr, gr, s);
    out.store(i, m[i], res);
    const float c = upstream(n, t + 1, res.logp) * m[i] * inv_tau;
    detail::logprob_row_finish_fused(V, y[i], s, c, gr);
  });
  detail::check_logprob_rows<B>(fn, r.logps, mask, d);
  return r;
}

/// The mean over the vocabulary of the logits row that predicts each used token: (N, T),
/// out[n, t] = (1/V) Σ_v logits[n, t-1, v] where t >= 1 and mask[n, t] != 0, else 0 (TRL's
/// logits/chosen and logits/rejected average these over a class's completion tokens).
template <class B>
typename B::tensor predicting_logit_means(const typename B::tensor& logits,
                                          const typename B::tensor& mask) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "predicting_logit_means";
  check_rank(fn, "logits", logits.shape(), 3, 3);
  const index_t N = logits.shape()[0], T = logits.shape()[1], V = logits.shape()[2];
  check_shape(fn, "mask", mask.shape(), shape{N, T}, "batch and length of logits");
  typename B::tensor out(mask.shape());
  const float* z = B::data(logits);
  const float* m = B::data(mask);
  float* o = B::data(out);
  const float inv_v = V > 0 ? 1.0f / static_cast<float>(V) : 0.0f;
  B::parallel_for(
      N * T, RLHF_LAMBDA(index_t i) {
        if (i % T == 0 || m[i] == 0.0f) {
          o[i] = 0.0f;
          return;
        }
        const float* row = z + (i - 1) * V;
        float s = 0.0f;
        for (index_t v = 0; v < V; ++v) s += row[v];
        o[i] = s * inv_v;
      });
  return out;
}

/// How sequence_logprobs reduces over tokens: sum (Σ_t logps) or mean (Σ_t logps / Σ_t m).
enum class logprob_reduction { sum, mean };

/// Which columns of an (N, T) log-prob tensor hold log-probs; sequence_logprobs asks for it
/// so that a completion-only window never silently loses its first token.
enum class logprob_columns {
  /// token_logprobs' layout: column 0 is never predicted (its log-prob is 0) and is skipped,
  /// mask[:, 0] is not counted.
  shifted,
  /// Every column holds a log-prob (e.g. a completion-only window cut from token_logprobs'
  /// output with ops::slice_cols): every column is summed and counted.
  all,
};

/// (N,) sequence values from per-token logps (N, T), already masked (token_logprobs
/// multiplies by the mask): Σ_t logps or Σ_t logps / Σ_t m over the columns `columns`
/// names. "mean" on a row whose mask is all zero there is a data_error (undefined); "sum"
/// gives 0.
template <class B>
typename B::tensor sequence_logprobs(const typename B::tensor& logps,
                                     const typename B::tensor& mask, logprob_columns columns,
                                     logprob_reduction how = logprob_reduction::sum) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "sequence_logprobs";
  check_rank(fn, "logps", logps.shape(), 2, 2);
  check_same_shape(fn, "logps", logps.shape(), "mask", mask.shape());
  check_enum(fn, "columns", columns, 2);
  const index_t first = columns == logprob_columns::shifted ? 1 : 0;
  if (how == logprob_reduction::mean) check_mask_rows_nonempty<B>(fn, "mask", mask, first);
  const index_t T = logps.shape()[1];
  typename B::tensor out(shape{logps.shape()[0]});
  const float* lp = B::data(logps);
  const float* m = B::data(mask);
  float* o = B::data(out);
  const bool mean = how == logprob_reduction::mean;
  B::parallel_for(
      out.size(), RLHF_LAMBDA(index_t n) {
        float s = 0.0f;
        double w = 0.0;  // a token count: exact in double past 2^24
        for (index_t t = first; t < T; ++t) {
          s += lp[n * T + t];
          w += m[n * T + t];
        }
        o[n] = mean ? s / static_cast<float>(w) : s;
      });
  return out;
}

/// d loss / d logps (N, T) from d loss / d sequence values (N,): g_n (sum) or g_n / Σ m
/// (mean), at every column `columns` names (0 elsewhere; the mask itself is applied inside
/// token_logprobs_backward).
template <class B>
typename B::tensor sequence_logprobs_backward(const typename B::tensor& grad_sequence,
                                              const typename B::tensor& mask,
                                              logprob_columns columns,
                                              logprob_reduction how = logprob_reduction::sum) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "sequence_logprobs_backward";
  check_rank(fn, "mask", mask.shape(), 2, 2);
  check_dim(fn, "grad_sequence's element count (one per row of mask)", grad_sequence.size(),
            mask.shape()[0]);
  check_enum(fn, "columns", columns, 2);
  const index_t first = columns == logprob_columns::shifted ? 1 : 0;
  if (how == logprob_reduction::mean) check_mask_rows_nonempty<B>(fn, "mask", mask, first);
  const index_t T = mask.shape()[1];
  typename B::tensor out(mask.shape());
  const float* g = B::data(grad_sequence);
  const float* m = B::data(mask);
  float* o = B::data(out);
  const bool mean = how == logprob_reduction::mean;
  B::parallel_for(
      mask.shape()[0], RLHF_LAMBDA(index_t n) {
        double w = 0.0;  // a token count: exact in double past 2^24
        if (mean) {
          for (index_t t = first; t < T; ++t) w += m[n * T + t];
        }
        const float v = mean ? g[n] / static_cast<float>(w) : g[n];
        for (index_t t = 0; t < T; ++t) o[n * T + t] = t < first ? 0.0f : v;
      });
  return out;
}

}  // namespace ops
}  // namespace v0
}  // namespace rlhf
