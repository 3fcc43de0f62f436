// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The GPT-style decoder's layers, as forward/backward pairs in the manner of llm.c
// (docs/model.md, "Transformer layers"). Generic over a tensor backend B; every kernel runs inside
// B::parallel_for on raw pointers, and every matrix product is one ops::gemm_strided call,
// so a backend's GEMM (OpenBLAS, cuBLAS) does the heavy work.
//
// Conventions shared by every layer:
//   - Outputs come first in the signature, then saved intermediates the backward needs,
//     then inputs, then parameters.
//   - Parameters live in one (P,) arena tensor and are passed as a param_view (arena,
//     offset); their gradients live in a (P,) gradient arena at the same offsets and are
//     passed as a grad_view. Projection weights are stored (out, in), so y = x W^T + b.
//   - Activations are separate backend tensors sized once per (B, T) by the caller; a layer
//     call allocates nothing (the one exception is the token check of encoder_forward and
//     encoder_backward on a backend whose memory the host cannot read, which copies B*T ids
//     to the host).
//   - Forward OVERWRITES its outputs and saved intermediates.
//   - Backward ACCUMULATES (+=) into every parameter gradient and every input gradient, so
//     the caller zeroes the gradient arena and the activation gradients once per step, and
//     gradients of a tensor used twice (a residual stream, tied embeddings) simply add up.
//     The exceptions are attention_backward's scratch buffers dpreatt and datt, which it
//     overwrites, and the input gradient of matmul_backward, attention_backward and
//     gelu_backward when called with grad_write::overwrite (for a scratch buffer that
//     nothing else writes: gpt_backward's per-layer buffers, which then need no zeroing).
//   - Dropout masks are never stored: a dropout_key (seed, stream) regenerates them from
//     the counter-based Philox stream in the backward, identically on every backend.
//   - Shapes and parameter ranges are checked at entry (shape_error naming the argument);
//     values are not checked for finiteness here (the model checks its token ids).
//   - Every reduction (weight/bias gradients, scatter-adds) is race-free and deterministic:
//     each work item of parallel_for owns its output elements and sums serially.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "rlhf/core/config.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/config.hpp"
#include "rlhf/model/detail/layer_kernels.hpp"
#include "rlhf/model/detail/simd_x86.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/gemm.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// How a backward writes its input gradient: added to what the buffer holds (the default,
/// llm.c's contract) or overwriting it (the buffer then needs no zeroing, and its old
/// contents, NaN included, are never read).
enum class grad_write { accumulate, overwrite };

/// A read-only parameter: the elements starting at `offset` of the (P,) arena. A null arena
/// means "absent" where a layer takes an optional parameter (matmul's bias).
template <class B>
struct param_view {
  const typename B::tensor* arena = nullptr;  ///< The (P,) parameter arena; null = absent.
  index_t offset = 0;                         ///< First element of the parameter in the arena.
  /// True when the parameter exists (the arena is not null).
  [[nodiscard]] bool present() const { return arena != nullptr; }
};

/// The gradient of a parameter: the same offset in the (P,) gradient arena. Layers add into
/// it. A null arena means "absent" (no gradient wanted, or no such parameter).
template <class B>
struct grad_view {
  typename B::tensor* arena = nullptr;  ///< The (P,) gradient arena; null = absent.
  index_t offset = 0;                   ///< First element of the gradient in the arena.
  /// True when a gradient is wanted (the arena is not null).
  [[nodiscard]] bool present() const { return arena != nullptr; }
};

/// The view of arena entry `p` (from gpt_param_table) in the parameter arena ...
template <class B>
param_view<B> param_of(const typename B::tensor& arena, const param_ref& p) {
  return {&arena, p.offset};
}
/// ... and in the gradient arena.
template <class B>
grad_view<B> grad_of(typename B::tensor& grad_arena, const param_ref& p) {
  return {&grad_arena, p.offset};
}

namespace detail {

/// The view must cover `n` elements of its arena.
template <class View>
void check_view(std::string_view fn, std::string_view arg, const View& v, index_t n) {
  if (v.arena == nullptr) {
    throw shape_error(rlhf::detail::concat(fn, ": ", arg, " has no arena (null pointer)"));
  }
  const index_t size = v.arena->size();
  if (v.offset < 0 || v.offset + n > size) {
    throw shape_error(rlhf::detail::concat(fn, ": ", arg, " needs ", n,
                                           " elements at arena offset ", v.offset,
                                           " but its arena has ", size, " elements"));
  }
}

/// Columns per work item of the column sums (weight and bias gradients): one 64-byte cache
/// line of floats per row.
inline constexpr index_t column_block = 16;

/// Columns per work item of a column-sum pass over `cols` columns: `widest` (a power of two),
/// halved, down to 4, while that leaves fewer than 16 work items (a host parallel_for runs
/// fewer serially: "tiny"'s C = 128 made 8 blocks of 16, a one-thread pass). Each column
/// still sums its rows in order, so the block size changes no bit of the result.
constexpr index_t column_block_for(index_t cols, index_t widest = column_block) {
  index_t cb = widest;
  while (cb > 4 && (cols + cb - 1) / cb < 16) cb /= 2;
  return cb;
}
/// matmul_forward with at most this many rows (decode steps) runs as dot products, not GEMM.
inline constexpr index_t skinny_rows = 16;
/// Batches of more rows than this make generate() transpose the weights for a GEMM that
/// prefers (in, out) ones: oneDNN multiplies up to 8 rows by W as stored as fast as by
/// Wᵀ (a kernel without packing), and 16 rows 2–4× slower (docs/backends.md).
inline constexpr index_t kn_decode_rows = 8;

/// db[j] += Σ_r g[r, j] for g (N, OC) row-major: parallel over blocks of (up to) column_block
/// columns, each walking the rows in order (every column sums serially: race-free and
/// deterministic; a block reads one cache line per row).
template <class B>
void add_column_sums(float* db, const float* g, index_t N, index_t OC) {
  const index_t cb = column_block_for(OC);
  B::parallel_for((OC + cb - 1) / cb, RLHF_LAMBDA(index_t blk) {
    const index_t j0 = blk * cb, nj = OC - j0 < cb ? OC - j0 : cb;
    float s[column_block] = {};
    for (index_t r = 0; r < N; ++r) {  // rows in order: each column sums serially
      const float* gr = g + r * OC + j0;
      for (index_t j = 0; j < nj; ++j) s[j] += gr[j];
    }
    for (index_t j = 0; j < nj; ++j) db[j0 + j] += s[j];
  });
}

/// (rows, last dim) view of an activation; rank 1..4.
inline void check_activation(std::string_view fn, std::string_view arg, const shape& s,
                             index_t rows, index_t cols) {
  if (s.rows() != rows || s.cols() != cols) {
    throw shape_error(rlhf::detail::concat(fn, ": ", arg, " has shape ", s.str(),
                                           ", expected ", rows, " rows of ", cols,
                                           " (any leading shape)"));
  }
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Embedding: out[b, t, :] = wte[tokens[b, t], :] + wpe[t, :]
// ---------------------------------------------------------------------------------------------

namespace detail {
/// Every id of `tokens` in [0, vocab_rows), else a data_error naming `fn`, `tokens`, the id
/// and its flat index (checked on the host: device tokens are copied there first).
template <class B>
void check_token_ids(std::string_view fn, const typename B::index_tensor& tokens,
                     index_t vocab_rows) {
  auto check_ids = [&](std::span<const std::int32_t> ids) {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= vocab_rows) {
        throw data_error(rlhf::detail::concat(fn, ": tokens must be in [0, ", vocab_rows, "), got ",
                                              ids[i], " at flat index ", i));
      }
    }
  };
  const auto n = static_cast<std::size_t>(tokens.size());
  if constexpr (B::host_accessible) {
    check_ids(std::span<const std::int32_t>(B::data(tokens), n));
  } else {
    std::vector<std::int32_t> ids(n);
    B::copy_to_host(tokens, std::span<std::int32_t>(ids));
    check_ids(ids);
  }
}
}  // namespace detail

/// out (B, T, C) = token embedding + position embedding.
///   tokens (B, T) int32 in [0, vocab_rows); wte (vocab_rows, C) and wpe (>= T, C) views;
///   wpe absent (null arena; rotary positions): the token embedding alone.
/// A token id outside [0, vocab_rows) is a data_error (checked on the host before any work).
/// Parallel over the B*T rows.
template <class B>
void encoder_forward(typename B::tensor& out, const typename B::index_tensor& tokens,
                     param_view<B> wte, param_view<B> wpe, index_t vocab_rows) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "encoder_forward";
  check_rank(fn, "out", out.shape(), 3, 3);
  const index_t Bn = out.shape()[0], T = out.shape()[1], C = out.shape()[2];
  check_shape(fn, "tokens", tokens.shape(), shape{Bn, T}, "(B, T) of out");
  check_config(vocab_rows >= 1, fn, "vocab_rows", ">= 1", vocab_rows);
  detail::check_view(fn, "wte", wte, vocab_rows * C);
  if (wpe.present()) detail::check_view(fn, "wpe", wpe, T * C);
  const index_t n = Bn * T;
  detail::check_token_ids<B>(fn, tokens, vocab_rows);
  float* o = B::data(out);
  const std::int32_t* tok = B::data(tokens);
  const float* we = B::data(*wte.arena) + wte.offset;
  if (!wpe.present()) {
    B::parallel_for(
        n, RLHF_LAMBDA(index_t r) {
          const float* wr = we + static_cast<index_t>(tok[r]) * C;
          float* orow = o + r * C;
          for (index_t c = 0; c < C; ++c) orow[c] = wr[c];
        });
    return;
  }
  const float* pe = B::data(*wpe.arena) + wpe.offset;
  B::parallel_for(n, RLHF_LAMBDA(index_t r) {
    const index_t t = r % T;
    const float* wr = we + static_cast<index_t>(tok[r]) * C;
    const float* pr = pe + t * C;
    float* orow = o + r * C;
    for (index_t c = 0; c < C; ++c) orow[c] = wr[c] + pr[c];
  });
}

/// dwte[tokens[b, t], :] += dout[b, t, :];  dwpe[t, :] += sum_b dout[b, t, :].
/// Race-free: dwte is parallel over the C channels (each work item walks every (b, t) in
/// order, so rows hit by repeated tokens are summed serially and deterministically); dwpe is
/// parallel over its T*C elements. On a host backend a work item takes a block of channels
/// (column_block_for) or of dwpe elements, whose rows are contiguous and vectorise: every
/// element still sums in the same order, so the bits are those of one element per item.
/// Either view may be absent (null arena) to skip it.
/// A token id outside [0, vocab_rows) is a data_error (checked before any work).
template <class B>
void encoder_backward(grad_view<B> dwte, grad_view<B> dwpe, const typename B::tensor& dout,
                      const typename B::index_tensor& tokens, index_t vocab_rows) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "encoder_backward";
  check_rank(fn, "dout", dout.shape(), 3, 3);
  const index_t Bn = dout.shape()[0], T = dout.shape()[1], C = dout.shape()[2];
  check_shape(fn, "tokens", tokens.shape(), shape{Bn, T}, "(B, T) of dout");
  const float* g = B::data(dout);
  const std::int32_t* tok = B::data(tokens);
  if (dwte.present()) {
    detail::check_view(fn, "dwte", dwte, vocab_rows * C);
    detail::check_token_ids<B>(fn, tokens, vocab_rows);
    float* dw = B::data(*dwte.arena) + dwte.offset;
    const index_t n = Bn * T;
    if constexpr (B::host_accessible) {
      const index_t cb = detail::column_block_for(C);
      B::parallel_for((C + cb - 1) / cb, [=](index_t blk) {
        const index_t c0 = blk * cb, nc = C - c0 < cb ? C - c0 : cb;
        for (index_t r = 0; r < n; ++r) {  // rows in order: repeated tokens sum serially
          float* d = dw + static_cast<index_t>(tok[r]) * C + c0;
          const float* gr = g + r * C + c0;
          for (index_t j = 0; j < nc; ++j) d[j] += gr[j];
        }
      });
    } else {
      B::parallel_for(
          C, RLHF_LAMBDA(index_t c) {
            for (index_t r = 0; r < n; ++r)
              dw[static_cast<index_t>(tok[r]) * C + c] += g[r * C + c];
          });
    }
  }
  if (dwpe.present()) {
    detail::check_view(fn, "dwpe", dwpe, T * C);
    float* dp = B::data(*dwpe.arena) + dwpe.offset;
    const index_t TC = T * C;
    if constexpr (B::host_accessible) {
      constexpr index_t blk_len = 64;  // elements per work item: four cache lines
      B::parallel_for((TC + blk_len - 1) / blk_len, [=](index_t blk) {
        const index_t e0 = blk * blk_len, ne = TC - e0 < blk_len ? TC - e0 : blk_len;
        float s[blk_len] = {};
        for (index_t b = 0; b < Bn; ++b) {  // batches in order, as one element per item
          const float* gb = g + b * TC + e0;
          for (index_t j = 0; j < ne; ++j) s[j] += gb[j];
        }
        for (index_t j = 0; j < ne; ++j) dp[e0 + j] += s[j];
      });
    } else {
      B::parallel_for(
          TC, RLHF_LAMBDA(index_t e) {
            float s = 0.0f;
            for (index_t b = 0; b < Bn; ++b) s += g[b * TC + e];
            dp[e] += s;
          });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm over the last dimension
// ---------------------------------------------------------------------------------------------

namespace detail {
/// One LayerNorm row of C: o = (x - m) · s · w + b with m the mean and s = 1 / sqrt(var + eps)
/// (biased variance, two passes for accuracy), which it stores in mean and rstd. Shared by
/// layernorm_forward and residual_norm_forward, so the two agree bit for bit.
RLHF_HD RLHF_ALWAYS_INLINE void layernorm_row(float* o, float& mean, float& rstd, const float* x,
                                              const float* w, const float* b, index_t C,
                                              float eps) {
  const float inv_c = 1.0f / static_cast<float>(C);
  float m = 0.0f;
  RLHF_SIMD_REDUCE(+ : m)
  for (index_t c = 0; c < C; ++c) m += x[c];
  m *= inv_c;
  float v = 0.0f;
  RLHF_SIMD_REDUCE(+ : v)
  for (index_t c = 0; c < C; ++c) {
    const float d = x[c] - m;
    v += d * d;
  }
  v *= inv_c;
  const float s = 1.0f / std::sqrt(v + eps);
  for (index_t c = 0; c < C; ++c) o[c] = (x[c] - m) * s * w[c] + b[c];
  mean = m;
  rstd = s;
}

/// One RMSNorm row of C: o = w · (x · s), s = 1 / sqrt(mean(x²) + eps) (the sum of squares
/// in double, so no finite row overflows it); returns s. Shared by rmsnorm_forward and
/// residual_norm_forward.
RLHF_HD RLHF_ALWAYS_INLINE float rmsnorm_row(float* o, const float* x, const float* w, index_t C,
                                             float eps) {
  const float inv_c = 1.0f / static_cast<float>(C);
  double ss = 0.0;
  RLHF_SIMD_REDUCE(+ : ss)
  for (index_t c = 0; c < C; ++c) ss += static_cast<double>(x[c]) * x[c];
  const auto s = static_cast<float>(1.0 / std::sqrt(ss * inv_c + eps));
  for (index_t c = 0; c < C; ++c) o[c] = w[c] * (x[c] * s);
  return s;
}
}  // namespace detail

/// out = (inp - mean) * rstd * weight + bias, row by row over the last dimension C.
///   inp, out: any shape (N rows of C); mean, rstd: N elements each (saved for backward,
///   rstd = 1 / sqrt(var + eps) with the biased variance); weight, bias: C-element views.
/// Parallel over rows; two passes (mean, then centred variance) for accuracy.
template <class B>
void layernorm_forward(typename B::tensor& out, typename B::tensor& mean, typename B::tensor& rstd,
                       const typename B::tensor& inp, param_view<B> weight, param_view<B> bias,
                       float eps) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "layernorm_forward";
  const index_t N = inp.shape().rows(), C = inp.shape().cols();
  check_same_shape(fn, "out", out.shape(), "inp", inp.shape());
  check_dim(fn, "mean's element count (one per row of inp)", mean.size(), N);
  check_dim(fn, "rstd's element count (one per row of inp)", rstd.size(), N);
  check_config(eps > 0.0f, fn, "eps", "> 0", eps);
  detail::check_view(fn, "weight", weight, C);
  detail::check_view(fn, "bias", bias, C);
  float* o = B::data(out);
  float* mp = B::data(mean);
  float* rp = B::data(rstd);
  const float* x = B::data(inp);
  const float* w = B::data(*weight.arena) + weight.offset;
  const float* bb = B::data(*bias.arena) + bias.offset;
  B::parallel_for(
      N, RLHF_LAMBDA(index_t r) {
        detail::layernorm_row(o + r * C, mp[r], rp[r], x + r * C, w, bb, C, eps);
      });
}

/// With xhat = (inp - mean) * rstd and g = dout * weight, per row:
///   dinp    += rstd * (g - mean_c(g) - xhat * mean_c(g * xhat))
///   dweight += sum_rows dout * xhat,   dbias += sum_rows dout.
/// dinp is parallel over rows; dweight/dbias are parallel over blocks of (up to) column_block
/// channels, each walking the rows in order (every column sums serially: race-free,
/// deterministic; a block reads one cache line per row). dweight and dbias may be absent
/// (frozen layer).
template <class B>
void layernorm_backward(typename B::tensor& dinp, grad_view<B> dweight, grad_view<B> dbias,
                        const typename B::tensor& dout, const typename B::tensor& inp,
                        param_view<B> weight, const typename B::tensor& mean,
                        const typename B::tensor& rstd) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "layernorm_backward";
  const index_t N = inp.shape().rows(), C = inp.shape().cols();
  check_same_shape(fn, "dinp", dinp.shape(), "inp", inp.shape());
  check_same_shape(fn, "dout", dout.shape(), "inp", inp.shape());
  check_dim(fn, "mean's element count (one per row of inp)", mean.size(), N);
  check_dim(fn, "rstd's element count (one per row of inp)", rstd.size(), N);
  detail::check_view(fn, "weight", weight, C);
  if (dweight.present()) detail::check_view(fn, "dweight", dweight, C);
  if (dbias.present()) detail::check_view(fn, "dbias", dbias, C);
  float* dx = B::data(dinp);
  const float* g = B::data(dout);
  const float* x = B::data(inp);
  const float* w = B::data(*weight.arena) + weight.offset;
  const float* mp = B::data(mean);
  const float* rp = B::data(rstd);
  const float inv_c = 1.0f / static_cast<float>(C);
  B::parallel_for(N, RLHF_LAMBDA(index_t r) {
    const float* xr = x + r * C;
    const float* gr = g + r * C;
    const float m = mp[r], s = rp[r];
    float g_mean = 0.0f, gx_mean = 0.0f;
    RLHF_SIMD_REDUCE(+ : g_mean, gx_mean)
    for (index_t c = 0; c < C; ++c) {
      const float gn = gr[c] * w[c];
      g_mean += gn;
      gx_mean += gn * (xr[c] - m) * s;
    }
    g_mean *= inv_c;
    gx_mean *= inv_c;
    float* dr = dx + r * C;
    for (index_t c = 0; c < C; ++c) {
      const float xhat = (xr[c] - m) * s;
      dr[c] += s * (gr[c] * w[c] - g_mean - xhat * gx_mean);
    }
  });
  if (!dweight.present() && !dbias.present()) return;
  float* dw = dweight.present() ? B::data(*dweight.arena) + dweight.offset : nullptr;
  float* db = dbias.present() ? B::data(*dbias.arena) + dbias.offset : nullptr;
  const index_t cb = detail::column_block_for(C);
  B::parallel_for((C + cb - 1) / cb, RLHF_LAMBDA(index_t blk) {
    const index_t c0 = blk * cb, nc = C - c0 < cb ? C - c0 : cb;
    float sw[detail::column_block] = {}, sb[detail::column_block] = {};
    for (index_t r = 0; r < N; ++r) {  // rows in order: each column sums serially
      const float* gr = g + r * C + c0;
      const float* xr = x + r * C + c0;
      const float m = mp[r], s = rp[r];
      for (index_t j = 0; j < nc; ++j) {
        sw[j] += gr[j] * (xr[j] - m) * s;
        sb[j] += gr[j];
      }
    }
    for (index_t j = 0; j < nc; ++j) {
      if (dw != nullptr) dw[c0 + j] += sw[j];
      if (db != nullptr) db[c0 + j] += sb[j];
    }
  });
}

// ---------------------------------------------------------------------------------------------
// RMSNorm over the last dimension (Zhang & Sennrich 2019; the Llama family's norm)
// ---------------------------------------------------------------------------------------------

/// out = inp * rstd * weight, rstd = 1 / sqrt(mean_c(inp²) + eps), row by row over the last
/// dimension C (the sum of squares in double, so no finite row overflows it). inp, out: N
/// rows of C; rstd: N elements (saved for backward); weight: a C-element view. Parallel over
/// rows.
template <class B>
void rmsnorm_forward(typename B::tensor& out, typename B::tensor& rstd,
                     const typename B::tensor& inp, param_view<B> weight, float eps) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "rmsnorm_forward";
  const index_t N = inp.shape().rows(), C = inp.shape().cols();
  check_same_shape(fn, "out", out.shape(), "inp", inp.shape());
  check_dim(fn, "rstd's element count (one per row of inp)", rstd.size(), N);
  check_config(eps > 0.0f, fn, "eps", "> 0", eps);
  detail::check_view(fn, "weight", weight, C);
  float* o = B::data(out);
  float* rp = B::data(rstd);
  const float* x = B::data(inp);
  const float* w = B::data(*weight.arena) + weight.offset;
  B::parallel_for(
      N, RLHF_LAMBDA(index_t r) { rp[r] = detail::rmsnorm_row(o + r * C, x + r * C, w, C, eps); });
}

/// With xhat = inp * rstd and g = dout * weight, per row:
///   dinp    += rstd * (g - xhat * mean_c(g * xhat)),   dweight += sum_rows dout * xhat.
/// dinp is parallel over rows; dweight over blocks of (up to) column_block channels walking the rows
/// in order (race-free, deterministic). dweight may be absent (frozen layer).
template <class B>
void rmsnorm_backward(typename B::tensor& dinp, grad_view<B> dweight,
                      const typename B::tensor& dout, const typename B::tensor& inp,
                      param_view<B> weight, const typename B::tensor& rstd) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "rmsnorm_backward";
  const index_t N = inp.shape().rows(), C = inp.shape().cols();
  check_same_shape(fn, "dinp", dinp.shape(), "inp", inp.shape());
  check_same_shape(fn, "dout", dout.shape(), "inp", inp.shape());
  check_dim(fn, "rstd's element count (one per row of inp)", rstd.size(), N);
  detail::check_view(fn, "weight", weight, C);
  if (dweight.present()) detail::check_view(fn, "dweight", dweight, C);
  float* dx = B::data(dinp);
  const float* g = B::data(dout);
  const float* x = B::data(inp);
  const float* w = B::data(*weight.arena) + weight.offset;
  const float* rp = B::data(rstd);
  const float inv_c = 1.0f / static_cast<float>(C);
  B::parallel_for(
      N, RLHF_LAMBDA(index_t r) {
        const float* xr = x + r * C;
        const float* gr = g + r * C;
        const float s = rp[r];
        float gx_mean = 0.0f;
        RLHF_SIMD_REDUCE(+ : gx_mean)
        for (index_t c = 0; c < C; ++c) gx_mean += gr[c] * w[c] * xr[c] * s;
        gx_mean *= inv_c;
        float* dr = dx + r * C;
        for (index_t c = 0; c < C; ++c) dr[c] += s * (gr[c] * w[c] - xr[c] * s * gx_mean);
      });
  if (!dweight.present()) return;
  float* dw = B::data(*dweight.arena) + dweight.offset;
  const index_t cb = detail::column_block_for(C);
  B::parallel_for((C + cb - 1) / cb, RLHF_LAMBDA(index_t blk) {
    const index_t c0 = blk * cb, nc = C - c0 < cb ? C - c0 : cb;
    float sw[detail::column_block] = {};
    for (index_t r = 0; r < N; ++r) {  // rows in order: each column sums serially
      const float* gr = g + r * C + c0;
      const float* xr = x + r * C + c0;
      const float s = rp[r];
      for (index_t j = 0; j < nc; ++j) sw[j] += gr[j] * xr[j] * s;
    }
    for (index_t j = 0; j < nc; ++j) dw[c0 + j] += sw[j];
  });
}

// ---------------------------------------------------------------------------------------------
// Rotary position embeddings (Su et al. 2021, RoFormer; transformers' rotate_half layout)
// ---------------------------------------------------------------------------------------------

/// Rotates q and k of a packed (B, T, W) q|k|v buffer in place: for each of the first
/// `rotated_heads` heads of width hs (the NH query then the NKV key heads; v is left alone)
/// and i < hs/2, the pair (x_i, x_{i+hs/2}) at position p turns by the angle p · inv_freq_i:
///   x_i' = x_i cos - x_{i+hs/2} sin,   x_{i+hs/2}' = x_{i+hs/2} cos + x_i sin.
/// inv_freq (hs/2 floats, rope_inverse_frequencies) lives on the backend. Positions: row b's
/// step t is at start[b] + t when `start` (B,) is given, else at t. `inverse` turns by the
/// negative angle (the backward: the gradient of a rotation is the opposite rotation).
/// The angle is float(p) · inv_freq_i in float and cos/sin of it, as transformers computes
/// them. Parallel over the B·T rows.
template <class B>
void rope_rotate(typename B::tensor& qkv, index_t head_dim, index_t rotated_heads,
                 const typename B::tensor& inv_freq, const typename B::index_tensor* start,
                 bool inverse) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "rope_rotate";
  check_rank(fn, "qkv", qkv.shape(), 3, 3);
  const index_t Bn = qkv.shape()[0], T = qkv.shape()[1], W = qkv.shape()[2];
  check_config(head_dim >= 2 && head_dim % 2 == 0, fn, "head_dim", "even and >= 2", head_dim);
  check_config(rotated_heads >= 1 && rotated_heads * head_dim <= W, fn, "rotated_heads",
               rlhf::detail::concat("in [1, W / head_dim = ", W / head_dim, "]"), rotated_heads);
  const index_t half = head_dim / 2;
  check_dim(fn, "inv_freq's element count (head_dim / 2)", inv_freq.size(), half);
  if (start != nullptr) check_dim(fn, "start's element count (the batch)", start->size(), Bn);
  float* x = B::data(qkv);
  const float* f = B::data(inv_freq);
  const std::int32_t* st = start != nullptr ? B::data(*start) : nullptr;
  const float sign = inverse ? -1.0f : 1.0f;
  B::parallel_for(
      Bn * T, RLHF_LAMBDA(index_t r) {
        const index_t b = r / T, t = r % T;
        const index_t p = (st != nullptr ? static_cast<index_t>(st[b]) : 0) + t;
        float* row = x + r * W;
        for (index_t i = 0; i < half; ++i) {
          const float angle = static_cast<float>(p) * f[i];
          const float c = std::cos(angle), s = sign * std::sin(angle);
          for (index_t h = 0; h < rotated_heads; ++h) {
            float* xh = row + h * head_dim;
            const float a = xh[i], bb = xh[i + half];
            xh[i] = a * c - bb * s;
            xh[i + half] = bb * c + a * s;
          }
        }
      });
}

// ---------------------------------------------------------------------------------------------
// SwiGLU (Shazeer 2020, "GLU Variants Improve Transformer"; the Llama family's MLP)
// ---------------------------------------------------------------------------------------------

/// out (N, H) = silu(gate) * up, with inp (N, 2H) = [gate | up] per row (c_fc's packed
/// output) and silu(x) = x · sigmoid(x). Parallel over rows.
template <class B>
void swiglu_forward(typename B::tensor& out, const typename B::tensor& inp) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "swiglu_forward";
  const index_t N = out.shape().rows(), H = out.shape().cols();
  detail::check_activation(fn, "inp", inp.shape(), N, 2 * H);
  float* o = B::data(out);
  const float* x = B::data(inp);
  B::parallel_for(
      N, RLHF_LAMBDA(index_t r) {
        const float* g = x + r * 2 * H;
        const float* u = g + H;
        float* orow = o + r * H;
        for (index_t j = 0; j < H; ++j) orow[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
      });
}

/// With sg = sigmoid(gate): d gate = dout · up · sg · (1 + gate · (1 - sg)) and
/// d up = dout · gate · sg, written to dinp (N, 2H) = [d gate | d up]; added to it with
/// dinp_write = accumulate (the default), overwriting it with overwrite. Parallel over rows.
template <class B>
void swiglu_backward(typename B::tensor& dinp, const typename B::tensor& inp,
                     const typename B::tensor& dout,
                     grad_write dinp_write = grad_write::accumulate) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "swiglu_backward";
  const index_t N = dout.shape().rows(), H = dout.shape().cols();
  detail::check_activation(fn, "inp", inp.shape(), N, 2 * H);
  check_same_shape(fn, "dinp", dinp.shape(), "inp", inp.shape());
  float* d = B::data(dinp);
  const float* x = B::data(inp);
  const float* go = B::data(dout);
  const bool overwrite = dinp_write == grad_write::overwrite;
  B::parallel_for(
      N, RLHF_LAMBDA(index_t r) {
        const float* g = x + r * 2 * H;
        const float* u = g + H;
        const float* gr = go + r * H;
        float* dg = d + r * 2 * H;
        float* du = dg + H;
        for (index_t j = 0; j < H; ++j) {
          const float sg = 1.0f / (1.0f + std::exp(-g[j]));
          const float silu = g[j] * sg;
          const float vg = gr[j] * u[j] * sg * (1.0f + g[j] * (1.0f - sg));
          const float vu = gr[j] * silu;
          dg[j] = overwrite ? vg : dg[j] + vg;
          du[j] = overwrite ? vu : du[j] + vu;
        }
      });
}

// ---------------------------------------------------------------------------------------------
// Linear projection: out = inp W^T + bias
// ---------------------------------------------------------------------------------------------

namespace detail {
/// out (N, OC) = inp (N, C) · W + bias as one GEMM (checked by the caller): with a bias,
/// ops::gemm_bias (out starts as the bias in every row and the GEMM accumulates onto it,
/// tile by tile where the backend can); W is read as (OC, C) transposed when `out_in`,
/// else as stored (C, OC).
template <class B>
void linear_gemm(typename B::tensor& out, const typename B::tensor& inp, param_view<B> weight,
                 bool out_in, param_view<B> bias) {
  const index_t N = inp.shape().rows(), C = inp.shape().cols(), OC = out.shape().cols();
  gemm_desc d;
  d.trans_b = out_in;
  d.m = N;
  d.n = OC;
  d.k = C;
  d.a = {0, C, 0};
  d.b = {weight.offset, out_in ? C : OC, 0};
  d.c = {0, OC, 0};
  if (bias.present()) {
    ops::gemm_bias<B>(d, inp, *weight.arena, out, *bias.arena, bias.offset);
  } else {
    ops::gemm_strided<B>(d, inp, *weight.arena, out);
  }
}
}  // namespace detail

/// out (N, OC) = inp (N, C) W^T + bias, W stored (OC, C) in the arena, bias (OC) or absent.
/// inp and out may have any leading shape (N rows). One GEMM (trans_b) reading W straight
/// from the arena; with a bias, out is first filled with it (parallel over rows) and the
/// GEMM accumulates onto it (beta = 1). With N <= skinny_rows (generation's decode steps)
/// it is OC parallel dot-product items instead (see the body), except for up to
/// kn_decode_rows rows on a backend whose GEMM prefers (in, out) weights
/// (ops::gemm_prefers_kn_weights).
template <class B>
void matmul_forward(typename B::tensor& out, const typename B::tensor& inp,
                    param_view<B> weight, param_view<B> bias) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "matmul_forward";
  const index_t N = inp.shape().rows(), C = inp.shape().cols(), OC = out.shape().cols();
  detail::check_activation(fn, "out", out.shape(), N, OC);
  detail::check_view(fn, "weight", weight, OC * C);
  if (bias.present()) detail::check_view(fn, "bias", bias, OC);
  const bool small_row_gemm = N <= detail::kn_decode_rows && ops::gemm_prefers_kn_weights<B>();
  if (N <= detail::skinny_rows && !small_row_gemm) {
    // Few rows (a decode step): a GEMM would pack all of W to use it N times. Instead each
    // work item takes one output j and dots W's row j (contiguous, read once) with every
    // input row. (oneDNN, the GEMM that prefers (in, out) weights, does not pack up to
    // kn_decode_rows rows and runs 8 of them 1.8× faster than these dot products.)
    const float* x = B::data(inp);
    const float* w = B::data(*weight.arena) + weight.offset;
    const float* bp = bias.present() ? B::data(*bias.arena) + bias.offset : nullptr;
    float* o = B::data(out);
    B::parallel_for(OC, RLHF_LAMBDA(index_t j) {
      const float* wj = w + j * C;
      const float b0 = bp != nullptr ? bp[j] : 0.0f;
      index_t r = 0;
      for (; r + 8 <= N; r += 8) {  // eight rows at once: eight independent FMA chains
        const float* x0 = x + r * C;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f, a4 = 0.0f, a5 = 0.0f, a6 = 0.0f,
              a7 = 0.0f;
        RLHF_SIMD_REDUCE(+ : a0, a1, a2, a3, a4, a5, a6, a7)
        for (index_t c = 0; c < C; ++c) {
          const float wc = wj[c];
          a0 += x0[c] * wc;
          a1 += x0[C + c] * wc;
          a2 += x0[2 * C + c] * wc;
          a3 += x0[3 * C + c] * wc;
          a4 += x0[4 * C + c] * wc;
          a5 += x0[5 * C + c] * wc;
          a6 += x0[6 * C + c] * wc;
          a7 += x0[7 * C + c] * wc;
        }
        float* oc = o + r * OC + j;
        oc[0] = b0 + a0, oc[OC] = b0 + a1, oc[2 * OC] = b0 + a2, oc[3 * OC] = b0 + a3;
        oc[4 * OC] = b0 + a4, oc[5 * OC] = b0 + a5, oc[6 * OC] = b0 + a6;
        oc[7 * OC] = b0 + a7;
      }
      for (; r + 4 <= N; r += 4) {  // four rows at once: four independent FMA chains
        const float* x0 = x + r * C;
        const float* x1 = x0 + C;
        const float* x2 = x1 + C;
        const float* x3 = x2 + C;
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
        RLHF_SIMD_REDUCE(+ : a0, a1, a2, a3)
        for (index_t c = 0; c < C; ++c) {
          const float wc = wj[c];
          a0 += x0[c] * wc;
          a1 += x1[c] * wc;
          a2 += x2[c] * wc;
          a3 += x3[c] * wc;
        }
        o[r * OC + j] = b0 + a0;
        o[(r + 1) * OC + j] = b0 + a1;
        o[(r + 2) * OC + j] = b0 + a2;
        o[(r + 3) * OC + j] = b0 + a3;
      }
      for (; r < N; ++r) {
        const float* xr = x + r * C;
        float acc = 0.0f;
        RLHF_SIMD_REDUCE(+ : acc)
        for (index_t c = 0; c < C; ++c) acc += xr[c] * wj[c];
        o[r * OC + j] = b0 + acc;
      }
    });
    return;
  }
  detail::linear_gemm<B>(out, inp, weight, true, bias);
}

/// dst[offset ..] = Wᵀ (C, OC) for W (OC, C) read from the arena: the copy matmul_forward_kn
/// multiplies by. Tiles of 32 × 32, parallel over tiles; on a host backend compiled for AVX
/// a tile's whole 8 × 8 blocks go through registers (detail::transpose_8x8).
template <class B>
void transpose_weight(typename B::tensor& dst, index_t offset, param_view<B> weight, index_t OC,
                      index_t C) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "transpose_weight";
  detail::check_view(fn, "weight", weight, OC * C);
  detail::check_view(fn, "dst", param_view<B>{&dst, offset}, OC * C);
  const float* w = B::data(*weight.arena) + weight.offset;
  float* t = B::data(dst) + offset;
  constexpr index_t tile = 32;
  const index_t row_tiles = (OC + tile - 1) / tile, col_tiles = (C + tile - 1) / tile;
#if defined(RLHF_X86_SIMD)
  if constexpr (B::host_accessible) {
    B::parallel_for(row_tiles * col_tiles, [=](index_t i) {
      const index_t j0 = (i / col_tiles) * tile, c0 = (i % col_tiles) * tile;
      const index_t j1 = j0 + tile < OC ? j0 + tile : OC, c1 = c0 + tile < C ? c0 + tile : C;
      const index_t j8 = j0 + (j1 - j0) / 8 * 8, c8 = c0 + (c1 - c0) / 8 * 8;
      for (index_t j = j0; j < j8; j += 8) {
        for (index_t c = c0; c < c8; c += 8) {
          detail::transpose_8x8(w + j * C + c, C, t + c * OC + j, OC);
        }
      }
      // The tile's ragged right columns and bottom rows, one element at a time.
      for (index_t c = c8; c < c1; ++c) {
        for (index_t j = j0; j < j1; ++j) t[c * OC + j] = w[j * C + c];
      }
      for (index_t c = c0; c < c8; ++c) {
        for (index_t j = j8; j < j1; ++j) t[c * OC + j] = w[j * C + c];
      }
    });
    return;
  }
#endif
  B::parallel_for(
      row_tiles * col_tiles, RLHF_LAMBDA(index_t i) {
        const index_t j0 = (i / col_tiles) * tile, c0 = (i % col_tiles) * tile;
        const index_t j1 = j0 + tile < OC ? j0 + tile : OC, c1 = c0 + tile < C ? c0 + tile : C;
        for (index_t c = c0; c < c1; ++c) {
          for (index_t j = j0; j < j1; ++j) t[c * OC + j] = w[j * C + c];
        }
      });
}

/// out (N, OC) = inp (N, C) wt + bias with wt (C, OC) = Wᵀ (transpose_weight): the product
/// of matmul_forward with the weight stored the other way round, one GEMM without trans_b
/// for any N, for backends whose GEMM runs that layout faster
/// (ops::gemm_prefers_kn_weights). Equal to matmul_forward up to float32 round-off.
template <class B>
void matmul_forward_kn(typename B::tensor& out, const typename B::tensor& inp, param_view<B> wt,
                       param_view<B> bias) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "matmul_forward_kn";
  const index_t N = inp.shape().rows(), C = inp.shape().cols(), OC = out.shape().cols();
  detail::check_activation(fn, "out", out.shape(), N, OC);
  detail::check_view(fn, "wt", wt, OC * C);
  if (bias.present()) detail::check_view(fn, "bias", bias, OC);
  detail::linear_gemm<B>(out, inp, wt, false, bias);
}

/// dinp (N, C) += dout W;  dweight (OC, C) += dout^T inp;  dbias (OC) += column sums of dout.
/// Two GEMMs with beta = 1 (so they accumulate) plus a column sum parallel over blocks of (up to)
/// column_block outputs (rows in order, as layernorm_backward's).
/// dweight and dbias may be absent (frozen weights / no bias). With dinp_write = overwrite,
/// dinp = dout W (beta = 0).
template <class B>
void matmul_backward(typename B::tensor& dinp, grad_view<B> dweight, grad_view<B> dbias,
                     const typename B::tensor& dout, const typename B::tensor& inp,
                     param_view<B> weight, grad_write dinp_write = grad_write::accumulate) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "matmul_backward";
  const index_t N = inp.shape().rows(), C = inp.shape().cols(), OC = dout.shape().cols();
  check_same_shape(fn, "dinp", dinp.shape(), "inp", inp.shape());
  detail::check_activation(fn, "dout", dout.shape(), N, OC);
  detail::check_view(fn, "weight", weight, OC * C);
  if (dweight.present()) detail::check_view(fn, "dweight", dweight, OC * C);
  if (dbias.present()) detail::check_view(fn, "dbias", dbias, OC);
  {
    gemm_desc d;  // dinp (N, C) += dout (N, OC) . W (OC, C)
    d.m = N;
    d.n = C;
    d.k = OC;
    d.beta = dinp_write == grad_write::overwrite ? 0.0f : 1.0f;
    d.a = {0, OC, 0};
    d.b = {weight.offset, C, 0};
    d.c = {0, C, 0};
    ops::gemm_strided<B>(d, dout, *weight.arena, dinp);
  }
  if (dweight.present()) {
    gemm_desc d;  // dW (OC, C) += dout^T (OC, N) . inp (N, C)
    d.trans_a = true;
    d.m = OC;
    d.n = C;
    d.k = N;
    d.beta = 1.0f;
    d.a = {0, OC, 0};
    d.b = {0, C, 0};
    d.c = {dweight.offset, C, 0};
    ops::gemm_strided<B>(d, dout, inp, *dweight.arena);
  }
  if (dbias.present()) {
    detail::add_column_sums<B>(B::data(*dbias.arena) + dbias.offset, B::data(dout), N, OC);
  }
}

// ---------------------------------------------------------------------------------------------
// Causal multi-head self-attention
// ---------------------------------------------------------------------------------------------

namespace detail {

struct attention_dims {
  index_t Bn, T, C, NH, hs;
  index_t NKV;  ///< key/value heads (NH for multi-head attention; fewer: grouped-query)
  index_t W;    ///< width of a packed q|k|v row: C + 2 · NKV · hs
  /// Query heads per key/value head.
  [[nodiscard]] index_t group() const { return NH / NKV; }
};

/// Shapes of a packed (B, T, W) q|k|v buffer `inp`, the (B, T, C) output (or its gradient)
/// and the (B, NH, T, T) scores: C from `out`, NH from `scores`, the key/value heads from
/// W = C + 2 · NKV · hs (NKV dividing NH; NKV = NH is multi-head attention).
template <class B>
attention_dims check_attention(std::string_view fn, const shape& inp, const shape& out,
                               std::string_view out_name, const shape& scores,
                               std::string_view scores_name) {
  check_rank(fn, "inp", inp, 3, 3);
  check_rank(fn, out_name, out, 3, 3);
  const index_t Bn = inp[0], T = inp[1], W = inp[2], C = out[2];
  check_shape(fn, out_name, out, shape{Bn, T, C}, "(B, T, C) with inp's B and T");
  check_rank(fn, scores_name, scores, 4, 4);
  const index_t NH = scores[1];
  if (NH < 1 || C < 1 || C % NH != 0) {
    throw shape_error(rlhf::detail::concat(fn, ": ", scores_name, " has shape ", scores.str(),
                                           "; its head count (dimension 1) must divide C = ",
                                           C));
  }
  const index_t hs = C / NH, kv2 = W - C;
  if (kv2 <= 0 || kv2 % (2 * hs) != 0 || NH % (kv2 / (2 * hs)) != 0) {
    throw shape_error(
        rlhf::detail::concat(fn, ": inp has shape ", inp.str(),
                             "; its last dimension must be C + 2 · NKV · hs (q, k, v; C = ", C,
                             ", hs = ", hs, ", NKV key/value heads dividing NH = ", NH, ")"));
  }
  check_shape(fn, scores_name, scores, shape{Bn, NH, T, T}, "(B, NH, T, T)");
  return {Bn, T, C, NH, hs, kv2 / (2 * hs), W};
}

/// The causal softmax's row, shared by attention_forward and the KV-cache attention of
/// model/generate.hpp: e[i] = exp(s[i] - max_{j<n} s[j]) for i < n (e may be s); returns
/// 1 / sum_i e[i], by which the caller scales (in place, or as it weighs the values).
RLHF_HD RLHF_ALWAYS_INLINE float causal_softmax_exp(const float* s, float* e, index_t n) {
  float mx = s[0];
  for (index_t i = 1; i < n; ++i) mx = s[i] > mx ? s[i] : mx;
  float sum = 0.0f;
  for (index_t i = 0; i < n; ++i) {
    const float x = ops::detail::exp_nonpositive(s[i] - mx);
    e[i] = x;
    sum += x;
  }
  return 1.0f / sum;
}

/// Issues `gemm(h0, n, kv_stride)` for every run of query heads [h0, h0 + n) that one
/// strided-batched GEMM can take: all NH heads at once (kv stride hs) for multi-head
/// attention; per key/value head its group of query heads (kv stride 0) otherwise.
template <class Gemm>
void for_head_batches(const attention_dims& dm, Gemm&& gemm) {
  if (dm.NKV == dm.NH) {
    gemm(index_t{0}, dm.NH, dm.hs);
    return;
  }
  for (index_t j = 0; j < dm.NKV; ++j) gemm(j * dm.group(), dm.group(), index_t{0});
}

}  // namespace detail

/// Which Philox stream a dropout mask comes from. Element i of the tensor is kept when
/// philox_uniform(seed, stream, 0, i) >= p, so the mask depends only on (seed, stream, i),
/// not on the backend or the thread count, and the backward regenerates it.
struct dropout_key {
  std::uint64_t seed = 0;    ///< The Philox key.
  std::uint64_t stream = 0;  ///< The Philox stream (the GPT uses one per site and forward).
};

namespace detail {
RLHF_HD inline float dropout_factor(dropout_key key, float p, float scale, index_t i) {
  return philox_uniform(key.seed, key.stream, 0, static_cast<std::uint64_t>(i)) >= p ? scale
                                                                                     : 0.0f;
}
/// dropout_forward's elements [begin, end) on the host: out[i] = inp[i] · keep[i] / (1 - p).
inline void dropout_span(float* out, const float* inp, float p, dropout_key key, index_t begin,
                         index_t end) {
  const float scale = 1.0f / (1.0f - p);
  for (index_t i = begin; i < end; ++i) out[i] = inp[i] * dropout_factor(key, p, scale, i);
}
inline void check_dropout_p(std::string_view fn, float p) {
  check_config(p >= 0.0f && p < 1.0f, fn, "p", "in [0, 1)", p);
}
}  // namespace detail

/// Inverted dropout (Srivastava et al. 2014; GPT-2's placement, docs/model.md):
/// out[i] = inp[i] · keep[i] / (1 - p), keep[i] = [u_i >= p], u_i the key's uniform stream.
/// out may be inp (in place). p = 0 copies. Parallel over elements.
template <class B>
void dropout_forward(typename B::tensor& out, const typename B::tensor& inp, float p,
                     dropout_key key) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "dropout_forward";
  detail::check_dropout_p(fn, p);
  check_same_shape(fn, "out", out.shape(), "inp", inp.shape());
  const float scale = 1.0f / (1.0f - p);
  float* o = B::data(out);
  const float* x = B::data(inp);
  B::parallel_for(inp.size(), RLHF_LAMBDA(index_t i) {
    o[i] = x[i] * detail::dropout_factor(key, p, scale, i);
  });
}

/// dinp[i] += dout[i] · keep[i] / (1 - p), with the mask of dropout_forward(…, p, key).
template <class B>
void dropout_backward(typename B::tensor& dinp, const typename B::tensor& dout, float p,
                      dropout_key key) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "dropout_backward";
  detail::check_dropout_p(fn, p);
  check_same_shape(fn, "dinp", dinp.shape(), "dout", dout.shape());
  const float scale = 1.0f / (1.0f - p);
  float* d = B::data(dinp);
  const float* g = B::data(dout);
  B::parallel_for(dout.size(), RLHF_LAMBDA(index_t i) {
    d[i] += g[i] * detail::dropout_factor(key, p, scale, i);
  });
}

/// Dropout on the attention probabilities (GPT-2's attn_pdrop): attention_forward keeps the
/// softmax in `att` (for its backward) and writes the dropped probabilities, which multiply
/// v, to `*dropped` (B, NH, T, T).
template <class B>
struct attention_dropout {
  typename B::tensor* dropped = nullptr;  ///< Output: the dropped probabilities (B, NH, T, T).
  float p = 0.0f;                         ///< Drop probability, in [0, 1).
  dropout_key key;                        ///< The mask's Philox stream.
};

/// Causal multi-head attention over a packed (B, T, W) q|k|v buffer (the output of c_attn):
/// q is the first C channels (head h: [h*hs, (h+1)*hs), hs = C / NH), then k and v of NKV
/// heads each, W = C + 2·NKV·hs. NKV = NH is multi-head attention (W = 3C); NKV < NH is
/// grouped-query attention (Ainslie et al. 2023): query head h reads key/value head
/// h / (NH / NKV). C comes from out's shape, NH from preatt's, NKV from W.
///   preatt (B, NH, T, T) = q k^T / sqrt(hs)  (every entry; those with t2 > t are unused)
///   att    (B, NH, T, T) = softmax over t2 <= t of preatt, 0 for t2 > t
///   out    (B, T, C)     = att v, heads concatenated along C.
/// With `dropout`, out = dropout(att) v instead (see attention_dropout). NH is read from
/// preatt's shape. preatt and att are saved for the backward. Per batch
/// row, two strided-batched GEMMs over the NH heads (per key/value head over its group with
/// grouped-query attention; the scores are computed for the full
/// T x T square, which a GEMM does faster than the triangle), and a masked softmax parallel
/// over the B*NH*T rows. On a backend with gemm_tasks (ops::has_gemm_tasks) each batch row
/// is one task instead, its products, softmax and dropout together while its scores are in
/// cache: the same operations, so the same bits.
template <class B>
void attention_forward(typename B::tensor& out, typename B::tensor& preatt, typename B::tensor& att,
                       const typename B::tensor& inp,
                       const attention_dropout<B>* dropout = nullptr) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "attention_forward";
  const auto dm =
      detail::check_attention<B>(fn, inp.shape(), out.shape(), "out", preatt.shape(), "preatt");
  check_same_shape(fn, "att", att.shape(), "preatt", preatt.shape());
  const index_t Bn = dm.Bn, T = dm.T, C = dm.C, NH = dm.NH, hs = dm.hs, W = dm.W;
  if (Bn == 0 || T == 0) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const index_t G = dm.group();       // query heads per key/value head
  const index_t KV = dm.NKV * hs;     // offset of v after k in a row
  const index_t rows_per_b = NH * T;  // score rows of one batch row
  const auto scores = [&](index_t b) {
    detail::for_head_batches(dm, [&](index_t h0, index_t n, index_t kv_stride) {
      gemm_desc d;  // preatt[b, h] (T, T) = scale q_bh (T, hs) k_b,h/G^T
      d.trans_b = true;
      d.m = T;
      d.n = T;
      d.k = hs;
      d.batch = n;
      d.alpha = scale;
      d.a = {b * T * W + h0 * hs, W, hs};
      d.b = {b * T * W + C + h0 / G * hs, W, kv_stride};
      d.c = {(b * NH + h0) * T * T, T, T * T};
      ops::gemm_strided<B>(d, inp, inp, preatt);
    });
  };
  const float* pa = B::data(preatt);
  float* ap = B::data(att);
  const auto softmax_row = RLHF_LAMBDA(index_t row) {
    const index_t t = row % T;
    const float* pr = pa + row * T;
    float* ar = ap + row * T;
    const float inv = detail::causal_softmax_exp(pr, ar, t + 1);
    for (index_t t2 = 0; t2 <= t; ++t2) ar[t2] *= inv;
    for (index_t t2 = t + 1; t2 < T; ++t2) ar[t2] = 0.0f;
  };
  const typename B::tensor* probs = &att;
  if (dropout != nullptr) {
    check_same_shape(fn, "dropout->dropped", dropout->dropped->shape(), "att", att.shape());
    detail::check_dropout_p(fn, dropout->p);
    probs = dropout->dropped;
  }
  const auto values = [&](index_t b) {
    detail::for_head_batches(dm, [&](index_t h0, index_t n, index_t kv_stride) {
      gemm_desc d;  // out[b, :, h] (T, hs) = att[b, h] (T, T) v_b,h/G (T, hs)
      d.m = T;
      d.n = hs;
      d.k = T;
      d.batch = n;
      d.a = {(b * NH + h0) * T * T, T, T * T};
      d.b = {b * T * W + C + KV + h0 / G * hs, W, kv_stride};
      d.c = {b * T * C + h0 * hs, C, hs};
      ops::gemm_strided<B>(d, *probs, inp, out);
    });
  };
  if constexpr (ops::has_gemm_tasks<B>) {
    if (Bn > 1) {  // one task per batch row: its scores, softmax, dropout and values
      B::gemm_tasks(Bn, [&](index_t b) {
        scores(b);
        for (index_t r = b * rows_per_b; r < (b + 1) * rows_per_b; ++r) softmax_row(r);
        if (dropout != nullptr) {
          detail::dropout_span(B::data(*dropout->dropped), ap, dropout->p, dropout->key,
                               b * rows_per_b * T, (b + 1) * rows_per_b * T);
        }
        values(b);
      });
      return;
    }
  }
  for (index_t b = 0; b < Bn; ++b) scores(b);
  B::parallel_for(Bn * rows_per_b, softmax_row);
  if (dropout != nullptr) dropout_forward<B>(*dropout->dropped, att, dropout->p, dropout->key);
  for (index_t b = 0; b < Bn; ++b) values(b);
}

/// Backward of attention_forward. dinp (B, T, W) ACCUMULATES (+=) the gradients of q, k, v
/// (with grouped-query attention the G = NH / NKV heads of a group add into one k and v).
/// dpreatt and datt (B, NH, T, T) are scratch, OVERWRITTEN (not accumulated):
///   datt    = dout_h v_h^T                       (GEMM)
///   dv_h   += att_h^T dout_h                     (GEMM, beta = 1)
///   dpreatt = att * (datt - sum_{t2<=t} att datt) for t2 <= t, 0 above the diagonal
///   dq_h   += dpreatt k_h / sqrt(hs);  dk_h += dpreatt^T q_h / sqrt(hs)   (GEMMs, beta = 1)
/// With the forward's `dropout`, dv uses the dropped probabilities and datt passes through
/// the same mask before the softmax backward. The softmax backward is parallel over the
/// B*NH*T rows (one task per batch row with gemm_tasks, as in attention_forward). With
/// dinp_write = overwrite the GEMMs into dinp use beta = 0 (the first writer of each element
/// of dinp; the other heads of a group then add).
template <class B>
void attention_backward(typename B::tensor& dinp, typename B::tensor& dpreatt,
                        typename B::tensor& datt, const typename B::tensor& dout,
                        const typename B::tensor& inp, const typename B::tensor& att,
                        const attention_dropout<B>* dropout = nullptr,
                        grad_write dinp_write = grad_write::accumulate) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "attention_backward";
  const auto dm =
      detail::check_attention<B>(fn, inp.shape(), dout.shape(), "dout", att.shape(), "att");
  check_same_shape(fn, "dinp", dinp.shape(), "inp", inp.shape());
  check_same_shape(fn, "dpreatt", dpreatt.shape(), "att", att.shape());
  check_same_shape(fn, "datt", datt.shape(), "att", att.shape());
  const index_t Bn = dm.Bn, T = dm.T, C = dm.C, NH = dm.NH, hs = dm.hs, W = dm.W;
  if (Bn == 0 || T == 0) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  const float dinp_beta = dinp_write == grad_write::overwrite ? 0.0f : 1.0f;
  const index_t G = dm.group(), KV = dm.NKV * hs;
  const typename B::tensor* probs = &att;  // what multiplied v in the forward
  if (dropout != nullptr) {
    check_same_shape(fn, "dropout->dropped", dropout->dropped->shape(), "att", att.shape());
    detail::check_dropout_p(fn, dropout->p);
    probs = dropout->dropped;
  }
  // The key/value gradients: the G query heads of a group add into one k (v) slice, so with
  // G > 1 each head is its own GEMM, the first of a group writing with dinp_beta.
  const auto kv_batches = [&](auto&& gemm) {
    if (G == 1) {
      gemm(index_t{0}, NH, dinp_beta);
      return;
    }
    for (index_t h = 0; h < NH; ++h) gemm(h, index_t{1}, h % G == 0 ? dinp_beta : 1.0f);
  };
  const index_t rows_per_b = NH * T;  // score rows of one batch row
  const auto datt_and_dv = [&](index_t b) {
    detail::for_head_batches(dm, [&](index_t h0, index_t n, index_t kv_stride) {
      gemm_desc d;  // datt[b, h] (T, T) = dout_bh (T, hs) v_b,h/G^T
      d.trans_b = true;
      d.m = T;
      d.n = T;
      d.k = hs;
      d.batch = n;
      d.a = {b * T * C + h0 * hs, C, hs};
      d.b = {b * T * W + C + KV + h0 / G * hs, W, kv_stride};
      d.c = {(b * NH + h0) * T * T, T, T * T};
      ops::gemm_strided<B>(d, dout, inp, datt);
    });
    kv_batches([&](index_t h0, index_t n, float beta) {
      gemm_desc e;  // dv_b,h/G (T, hs) += att[b, h]^T (T, T) dout_bh (T, hs)
      e.trans_a = true;
      e.m = T;
      e.n = hs;
      e.k = T;
      e.batch = n;
      e.beta = beta;
      e.a = {(b * NH + h0) * T * T, T, T * T};
      e.b = {b * T * C + h0 * hs, C, hs};
      e.c = {b * T * W + C + KV + h0 / G * hs, W, hs};
      ops::gemm_strided<B>(e, *probs, dout, dinp);
    });
  };
  const float* ap = B::data(att);
  float* dap = B::data(datt);
  float* dpp = B::data(dpreatt);
  const auto softmax_backward_row = RLHF_LAMBDA(index_t row) {
    const index_t t = row % T;
    const float* ar = ap + row * T;
    const float* dar = dap + row * T;
    float* dr = dpp + row * T;
    float dot = 0.0f;
    RLHF_SIMD_REDUCE(+ : dot)
    for (index_t t2 = 0; t2 <= t; ++t2) dot += ar[t2] * dar[t2];
    for (index_t t2 = 0; t2 <= t; ++t2) dr[t2] = ar[t2] * (dar[t2] - dot);
    for (index_t t2 = t + 1; t2 < T; ++t2) dr[t2] = 0.0f;
  };
  const auto dq_and_dk = [&](index_t b) {
    detail::for_head_batches(dm, [&](index_t h0, index_t n, index_t kv_stride) {
      gemm_desc d;  // dq_bh (T, hs) += scale dpreatt[b, h] (T, T) k_b,h/G (T, hs)
      d.m = T;
      d.n = hs;
      d.k = T;
      d.batch = n;
      d.alpha = scale;
      d.beta = dinp_beta;
      d.a = {(b * NH + h0) * T * T, T, T * T};
      d.b = {b * T * W + C + h0 / G * hs, W, kv_stride};
      d.c = {b * T * W + h0 * hs, W, hs};
      ops::gemm_strided<B>(d, dpreatt, inp, dinp);
    });
    kv_batches([&](index_t h0, index_t n, float beta) {
      gemm_desc e;  // dk_b,h/G (T, hs) += scale dpreatt[b, h]^T (T, T) q_bh (T, hs)
      e.trans_a = true;
      e.m = T;
      e.n = hs;
      e.k = T;
      e.batch = n;
      e.alpha = scale;
      e.beta = beta;
      e.a = {(b * NH + h0) * T * T, T, T * T};
      e.b = {b * T * W + h0 * hs, W, hs};
      e.c = {b * T * W + C + h0 / G * hs, W, hs};
      ops::gemm_strided<B>(e, dpreatt, inp, dinp);
    });
  };
  if constexpr (ops::has_gemm_tasks<B>) {
    if (Bn > 1) {  // one task per batch row (see attention_forward)
      B::gemm_tasks(Bn, [&](index_t b) {
        datt_and_dv(b);
        if (dropout != nullptr) {  // d att = d dropped · keep / (1 - p), in place
          detail::dropout_span(dap, dap, dropout->p, dropout->key, b * rows_per_b * T,
                               (b + 1) * rows_per_b * T);
        }
        for (index_t r = b * rows_per_b; r < (b + 1) * rows_per_b; ++r) {
          softmax_backward_row(r);
        }
        dq_and_dk(b);
      });
      return;
    }
  }
  for (index_t b = 0; b < Bn; ++b) datt_and_dv(b);
  // Through the dropout: d att = d dropped · keep / (1 - p), in place.
  if (dropout != nullptr) dropout_forward<B>(datt, datt, dropout->p, dropout->key);
  B::parallel_for(Bn * rows_per_b, softmax_backward_row);
  for (index_t b = 0; b < Bn; ++b) dq_and_dk(b);
}

// ---------------------------------------------------------------------------------------------
// GELU (tanh approximation) and the residual add
// ---------------------------------------------------------------------------------------------

namespace detail {
struct gelu_fwd {
  RLHF_HD float operator()(float x) const { return gelu(x); }
};
struct gelu_bwd {
  RLHF_HD void operator()(float& dx, const float& x, const float& g) const {
    dx += g * gelu_grad(x);
  }
};
struct gelu_bwd_overwrite {
  RLHF_HD float operator()(float x, float g) const { return g * gelu_grad(x); }
};
struct add2 {
  RLHF_HD float operator()(float a, float b) const { return a + b; }
};
struct accumulate2 {
  RLHF_HD void operator()(float& da, float& db, const float& g) const {
    da += g;
    db += g;
  }
};
struct accumulate1 {
  RLHF_HD void operator()(float& da, const float& g) const { da += g; }
};
}  // namespace detail

/// out = 0.5 inp (1 + tanh(sqrt(2/pi) (inp + 0.044715 inp^3))), elementwise (GPT-2's GELU).
template <class B>
void gelu_forward(typename B::tensor& out, const typename B::tensor& inp) {
  check_same_shape("gelu_forward", "out", out.shape(), "inp", inp.shape());
  ops::transform<B>(out, detail::gelu_fwd{}, inp);
}

/// dinp += dout * gelu'(inp), elementwise (dinp_write = overwrite: dinp = ...).
template <class B>
void gelu_backward(typename B::tensor& dinp, const typename B::tensor& inp,
                   const typename B::tensor& dout,
                   grad_write dinp_write = grad_write::accumulate) {
  check_same_shape("gelu_backward", "dinp", dinp.shape(), "inp", inp.shape());
  check_same_shape("gelu_backward", "dout", dout.shape(), "inp", inp.shape());
  if (dinp_write == grad_write::overwrite) {
    ops::transform<B>(dinp, detail::gelu_bwd_overwrite{}, inp, dout);
  } else {
    ops::for_each<B>(detail::gelu_bwd{}, dinp, inp, dout);
  }
}

/// out = a + b, elementwise.
template <class B>
void residual_forward(typename B::tensor& out, const typename B::tensor& a,
                      const typename B::tensor& b) {
  check_same_shape("residual_forward", "a", a.shape(), "out", out.shape());
  check_same_shape("residual_forward", "b", b.shape(), "out", out.shape());
  ops::transform<B>(out, detail::add2{}, a, b);
}

/// da += dout;  db += dout. da and db may be the same tensor (then it receives 2 dout).
template <class B>
void residual_backward(typename B::tensor& da, typename B::tensor& db,
                       const typename B::tensor& dout) {
  check_same_shape("residual_backward", "da", da.shape(), "dout", dout.shape());
  check_same_shape("residual_backward", "db", db.shape(), "dout", dout.shape());
  if (&da == &db) {
    ops::for_each<B>(detail::accumulate1{}, da, dout);
    ops::for_each<B>(detail::accumulate1{}, db, dout);
  } else {
    ops::for_each<B>(detail::accumulate2{}, da, db, dout);
  }
}

// ---------------------------------------------------------------------------------------------
// Fused passes: element-wise work around a projection that reads the same rows, done in one
// pass (llm.c's fused residual + layernorm; the GELU's backward with the bias gradient).
// ---------------------------------------------------------------------------------------------

/// Dropout on a sublayer's output branch inside a fused kernel (GPT-2's resid_pdrop): the
/// mask of dropout_forward(…, p, key) over the branch's elements.
struct branch_dropout {
  float p = 0.0f;   ///< Drop probability, in [0, 1).
  dropout_key key;  ///< The mask's Philox stream.
};

/// The norm a fused kernel applies: LayerNorm (weight and bias) or RMSNorm (weight only).
template <class B>
struct norm_params {
  norm_type type = norm_type::layernorm;  ///< Which norm.
  param_view<B> weight;                   ///< (C,) scale.
  param_view<B> bias;                     ///< (C,) shift; LayerNorm only.
  float eps = 1e-5f;                      ///< Added to the variance (mean square); > 0.
};

/// The junction of two sublayers, one pass over the N rows of C instead of three (dropout,
/// residual add, norm):
///   out = x + drop(branch)                              the residual stream (N, C)
///   *ln = norm(out), with *mean and *rstd as layernorm_forward (rmsnorm_forward) saves them.
/// branch is a sublayer's output (its projection with the bias); drop null: no dropout.
/// norm null: out only (ln, mean and rstd may be null); mean may be null with RMSNorm.
/// Without dropout the result equals residual_forward then the norm bit for bit (the same
/// operations per element in the same order); with it, the dropout's multiply may contract
/// into the add (float round-off).
template <class B>
void residual_norm_forward(typename B::tensor& out, typename B::tensor* ln,
                           typename B::tensor* mean, typename B::tensor* rstd,
                           const typename B::tensor& x, const typename B::tensor& branch,
                           const branch_dropout* drop, const norm_params<B>* norm) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "residual_norm_forward";
  const index_t N = x.shape().rows(), C = x.shape().cols();
  check_same_shape(fn, "out", out.shape(), "x", x.shape());
  check_same_shape(fn, "branch", branch.shape(), "x", x.shape());
  if (drop != nullptr) detail::check_dropout_p(fn, drop->p);
  const bool rms = norm != nullptr && norm->type == norm_type::rmsnorm;
  if (norm != nullptr) {
    check_config(ln != nullptr && rstd != nullptr && (rms || mean != nullptr), fn,
                 "ln, mean and rstd", "given with a norm (mean: with LayerNorm)", "null");
    check_same_shape(fn, "ln", ln->shape(), "x", x.shape());
    if (!rms) check_dim(fn, "mean's element count (one per row of x)", mean->size(), N);
    check_dim(fn, "rstd's element count (one per row of x)", rstd->size(), N);
    check_config(norm->eps > 0.0f, fn, "norm eps", "> 0", norm->eps);
    detail::check_view(fn, "norm weight", norm->weight, C);
    if (!rms) detail::check_view(fn, "norm bias", norm->bias, C);
  }
  float* o = B::data(out);
  const float* xp = B::data(x);
  const float* bp = B::data(branch);
  const bool dropping = drop != nullptr;
  const float p = dropping ? drop->p : 0.0f, scale = 1.0f / (1.0f - p);
  const dropout_key key = dropping ? drop->key : dropout_key{};
  const bool normed = norm != nullptr;
  float* lp = normed ? B::data(*ln) : nullptr;
  float* mp = normed && !rms ? B::data(*mean) : nullptr;
  float* rp = normed ? B::data(*rstd) : nullptr;
  const float* w = normed ? B::data(*norm->weight.arena) + norm->weight.offset : nullptr;
  const float* nb = normed && !rms ? B::data(*norm->bias.arena) + norm->bias.offset : nullptr;
  const float eps = normed ? norm->eps : 1.0f;
  B::parallel_for(
      N, RLHF_LAMBDA(index_t r) {
        const float* xr = xp + r * C;
        const float* br = bp + r * C;
        float* orow = o + r * C;
        if (dropping) {
          for (index_t c = 0; c < C; ++c) {
            orow[c] = xr[c] + br[c] * detail::dropout_factor(key, p, scale, r * C + c);
          }
        } else {
          for (index_t c = 0; c < C; ++c) orow[c] = xr[c] + br[c];
        }
        if (!normed) return;
        if (rms) {
          rp[r] = detail::rmsnorm_row(lp + r * C, orow, w, C, eps);
        } else {
          detail::layernorm_row(lp + r * C, mp[r], rp[r], orow, w, nb, C, eps);
        }
      });
}

namespace detail {
/// Columns per work item of gelu_backward_bias (a multiple of 16: whole cache lines).
inline constexpr index_t gelu_bias_block = 64;
}  // namespace detail

/// dinp = dout · gelu'(inp) (overwritten) and dbias += the column sums of dinp: the
/// activation's backward and the bias gradient of the projection before it (matmul_backward
/// then runs without dbias). On a host backend one pass, parallel over blocks of columns
/// that each walk the rows in order (every column sums serially, as matmul_backward's
/// bias gradient: the same bits); elsewhere gelu_backward then the column sums. dbias may
/// be absent.
template <class B>
void gelu_backward_bias(typename B::tensor& dinp, grad_view<B> dbias, const typename B::tensor& inp,
                        const typename B::tensor& dout) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "gelu_backward_bias";
  const index_t N = inp.shape().rows(), OC = inp.shape().cols();
  check_same_shape(fn, "dinp", dinp.shape(), "inp", inp.shape());
  check_same_shape(fn, "dout", dout.shape(), "inp", inp.shape());
  if (dbias.present()) detail::check_view(fn, "dbias", dbias, OC);
  float* d = B::data(dinp);
  const float* x = B::data(inp);
  const float* g = B::data(dout);
  float* db = dbias.present() ? B::data(*dbias.arena) + dbias.offset : nullptr;
  if constexpr (B::host_accessible) {
    if (db != nullptr) {
      const index_t cb = detail::column_block_for(OC, detail::gelu_bias_block);
      B::parallel_for((OC + cb - 1) / cb, [=](index_t blk) {
        const index_t j0 = blk * cb, nj = OC - j0 < cb ? OC - j0 : cb;
        float s[detail::gelu_bias_block] = {};
        for (index_t r = 0; r < N; ++r) {  // rows in order: each column sums serially
          const float* xr = x + r * OC + j0;
          const float* gr = g + r * OC + j0;
          float* dr = d + r * OC + j0;
          for (index_t j = 0; j < nj; ++j) {
            const float v = gr[j] * detail::gelu_grad(xr[j]);
            dr[j] = v;
            s[j] += v;
          }
        }
        for (index_t j = 0; j < nj; ++j) db[j0 + j] += s[j];
      });
      return;
    }
  }
  gelu_backward<B>(dinp, inp, dout, grad_write::overwrite);
  if (db != nullptr) detail::add_column_sums<B>(db, d, N, OC);
}

}  // namespace model
}  // namespace v0
}  // namespace rlhf
