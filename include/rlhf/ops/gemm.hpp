// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Matrix products, row-major, in the BLAS sense C = alpha * op(A) * op(B) + beta * C.
//
//   gemm          2-D: tensors of any rank are seen as (rows, last dim), so (B, T, C)
//                 activations times a (C_out, C) weight is one call with trans_b.
//   gemm_batched  3-D: (batch, ., .) operands, one product per leading index.
//   gemm_strided  the general form every backend overrides: explicit offsets, leading
//                 dimensions and batch strides into the three buffers (cuBLAS's
//                 SgemmStridedBatched in row-major terms), e.g. one head of a packed
//                 (B, T, 3C) attention buffer.
//
// beta == 0 means C is not read (NaN or garbage in C does not leak). C must not be A or B.
#pragma once

#include <concepts>

#include "rlhf/core/overrides.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {

/// Whether a GEMM operand is used as stored (no) or transposed (yes).
enum class transpose : bool { no = false, yes = true };

/// Where one operand's matrices live inside its buffer.
struct matrix_layout {
  index_t offset = 0;        ///< element offset of the first matrix
  index_t ld = 0;            ///< leading dimension: distance between consecutive rows
  index_t batch_stride = 0;  ///< distance between consecutive matrices of the batch
};

/// A (batched) product C_q = alpha op(A_q) op(B_q) + beta C_q, q = 0..batch-1, with op(A_q)
/// of shape (m, k), op(B_q) of shape (k, n), C_q of shape (m, n).
/// A_q is stored (m, k) if !trans_a else (k, m); B_q is stored (k, n) if !trans_b else (n, k).
struct gemm_desc {
  bool trans_a = false;  ///< A_q is stored transposed, (k, m).
  bool trans_b = false;  ///< B_q is stored transposed, (n, k).
  ///@{
  /// m, n, k: op(A_q) is (m, k), op(B_q) is (k, n), C_q is (m, n).
  index_t m = 0, n = 0, k = 0;
  ///@}
  index_t batch = 1;   ///< The number of products.
  float alpha = 1.0f;  ///< Factor on op(A_q) op(B_q).
  float beta = 0.0f;   ///< Factor on the previous C_q (0: C is only written).
  ///@{
  /// a, b, c: where the matrices of A, B and C lie in their buffers.
  matrix_layout a, b, c;
  ///@}
};

namespace ops {
namespace detail {

inline void check_operand(std::string_view arg, index_t buffer_size, const matrix_layout& l,
                          index_t rows, index_t cols, index_t batch) {
  if (l.ld < cols || l.offset < 0 || l.batch_stride < 0) {
    throw shape_error(rlhf::detail::concat("gemm: operand ", arg, " has ld ", l.ld,
                                           ", offset ", l.offset, ", batch stride ",
                                           l.batch_stride, "; expected ld >= ", cols,
                                           " and non-negative offset and stride"));
  }
  if (rows == 0 || cols == 0 || batch == 0) return;
  const index_t last = l.offset + (batch - 1) * l.batch_stride + (rows - 1) * l.ld + cols - 1;
  if (last >= buffer_size) {
    throw shape_error(rlhf::detail::concat("gemm: operand ", arg, " reaches element ", last,
                                           " but its tensor has ", buffer_size,
                                           " elements"));
  }
}

inline void check_gemm_desc(const gemm_desc& d, index_t a_size, index_t b_size,
                            index_t c_size) {
  if (d.m < 0 || d.n < 0 || d.k < 0 || d.batch < 0) {
    throw shape_error(rlhf::detail::concat("gemm: m, n, k, batch must be >= 0, got ", d.m,
                                           ", ", d.n, ", ", d.k, ", ", d.batch));
  }
  check_operand("a", a_size, d.a, d.trans_a ? d.k : d.m, d.trans_a ? d.m : d.k, d.batch);
  check_operand("b", b_size, d.b, d.trans_b ? d.n : d.k, d.trans_b ? d.k : d.n, d.batch);
  check_operand("c", c_size, d.c, d.m, d.n, d.batch);
}

/// Reference-quality fallback: one dot product per output element.
template <class B>
void generic_gemm(const gemm_desc& d, const typename B::tensor& a, const typename B::tensor& b,
                  typename B::tensor& c) {
  const float* ap = B::data(a);
  const float* bp = B::data(b);
  float* cp = B::data(c);
  const gemm_desc g = d;
  B::parallel_for(d.batch * d.m * d.n, RLHF_LAMBDA(index_t e) {
    const index_t q = e / (g.m * g.n);
    const index_t i = (e / g.n) % g.m;
    const index_t j = e % g.n;
    const float* aq = ap + g.a.offset + q * g.a.batch_stride;
    const float* bq = bp + g.b.offset + q * g.b.batch_stride;
    float acc = 0.0f;
    for (index_t p = 0; p < g.k; ++p) {
      const float av = g.trans_a ? aq[p * g.a.ld + i] : aq[i * g.a.ld + p];
      const float bv = g.trans_b ? bq[j * g.b.ld + p] : bq[p * g.b.ld + j];
      acc += av * bv;
    }
    float& out = cp[g.c.offset + q * g.c.batch_stride + i * g.c.ld + j];
    out = g.beta == 0.0f ? g.alpha * acc : g.alpha * acc + g.beta * out;
  });
}

}  // namespace detail

/// The general strided-batched product; see gemm_desc.
template <class B>
void gemm_strided(const gemm_desc& d, const typename B::tensor& a, const typename B::tensor& b,
                  typename B::tensor& c) {
  assert_tensor_backend<B>();
  if (&c == &a || &c == &b) {
    throw shape_error("gemm: output c must be a different tensor from a and b");
  }
  detail::check_gemm_desc(d, a.size(), b.size(), c.size());
  if (d.batch == 0 || d.m == 0 || d.n == 0) return;
  if constexpr (::rlhf::detail::has_gemm_override<B>) {
    B::gemm(d, a, b, c);
  } else {
    detail::generic_gemm<B>(d, a, b, c);
  }
}

/// Whether B declares `static void gemm_bias(const gemm_desc&, const tensor& a, const
/// tensor& b, tensor& c, const float* c_row)`: one product whose C starts as the row c_row
/// (a device pointer to n floats) in every row, the fill done tile by tile just before each
/// tile's product accumulates onto it (the Eigen backend). ops::gemm_bias falls back to a
/// fill then gemm_strided with beta = 1 for backends without it.
template <class B>
inline constexpr bool has_gemm_bias = requires(const gemm_desc& d, const typename B::tensor& x,
                                               typename B::tensor& y, const float* row) {
  B::gemm_bias(d, x, x, y, row);
};

/// C (m, n) = alpha·op(A)·op(B) + bias, the bias (n,) at bias_offset in `bias` added to every
/// row of C: a linear layer's output with its bias. One product (d.batch must be 1; d.beta is
/// not read, C is overwritten). Equal bit for bit to filling C's rows with the bias and then
/// gemm_strided with beta = 1, which is what backends without B::gemm_bias run; those with
/// it fill each tile of C just before its product, while the tile is in cache.
template <class B>
void gemm_bias(const gemm_desc& d, const typename B::tensor& a, const typename B::tensor& b,
               typename B::tensor& c, const typename B::tensor& bias, index_t bias_offset) {
  assert_tensor_backend<B>();
  if (&c == &a || &c == &b || &c == &bias) {
    throw shape_error("gemm_bias: output c must be a different tensor from a, b and bias");
  }
  check_config(d.batch == 1, "gemm_bias", "batch", "1 (one product)", d.batch);
  gemm_desc acc = d;
  acc.beta = 1.0f;
  detail::check_gemm_desc(acc, a.size(), b.size(), c.size());
  if (bias_offset < 0 || bias_offset > bias.size() - d.n) {
    throw shape_error(rlhf::detail::concat("gemm_bias: bias needs ", d.n, " elements at offset ",
                                           bias_offset, " but its tensor has ", bias.size(),
                                           " elements"));
  }
  if (d.m == 0 || d.n == 0) return;
  const float* row = B::data(bias) + bias_offset;
  if constexpr (has_gemm_bias<B>) {
    B::gemm_bias(acc, a, b, c, row);
  } else {
    float* cp = B::data(c) + acc.c.offset;
    const index_t ld = acc.c.ld, n = acc.n;
    B::parallel_for(
        acc.m, RLHF_LAMBDA(index_t r) {
          float* crow = cp + r * ld;
          for (index_t j = 0; j < n; ++j) crow[j] = row[j];
        });
    gemm_strided<B>(acc, a, b, c);
  }
}

/// 2-D product on the row view of each tensor: c (M, N) = alpha op(a) op(b) + beta c.
template <class B>
void gemm(transpose ta, transpose tb, float alpha, const typename B::tensor& a,
          const typename B::tensor& b, float beta, typename B::tensor& c) {
  const shape& as = a.shape();
  const shape& bs = b.shape();
  gemm_desc d;
  d.trans_a = ta == transpose::yes;
  d.trans_b = tb == transpose::yes;
  d.m = d.trans_a ? as.cols() : as.rows();
  d.k = d.trans_a ? as.rows() : as.cols();
  d.n = d.trans_b ? bs.rows() : bs.cols();
  check_dim("gemm", "the inner dimension of op(b)", d.trans_b ? bs.cols() : bs.rows(), d.k);
  check_dim("gemm", "c's row count (rows of op(a))", c.shape().rows(), d.m);
  check_dim("gemm", "c's column count (columns of op(b))", c.shape().cols(), d.n);
  d.alpha = alpha;
  d.beta = beta;
  d.a.ld = as.cols();
  d.b.ld = bs.cols();
  d.c.ld = c.shape().cols();
  gemm_strided<B>(d, a, b, c);
}

/// Batched product over the leading axis of rank-3 tensors: c[q] = alpha op(a[q]) op(b[q])
/// + beta c[q].
template <class B>
void gemm_batched(transpose ta, transpose tb, float alpha, const typename B::tensor& a,
                  const typename B::tensor& b, float beta, typename B::tensor& c) {
  check_rank("gemm_batched", "a", a.shape(), 3, 3);
  check_rank("gemm_batched", "b", b.shape(), 3, 3);
  check_rank("gemm_batched", "c", c.shape(), 3, 3);
  const shape& as = a.shape();
  const shape& bs = b.shape();
  const shape& cs = c.shape();
  check_dim("gemm_batched", "b's batch size", bs[0], as[0]);
  check_dim("gemm_batched", "c's batch size", cs[0], as[0]);
  gemm_desc d;
  d.batch = as[0];
  d.trans_a = ta == transpose::yes;
  d.trans_b = tb == transpose::yes;
  d.m = d.trans_a ? as[2] : as[1];
  d.k = d.trans_a ? as[1] : as[2];
  d.n = d.trans_b ? bs[1] : bs[2];
  check_dim("gemm_batched", "the inner dimension of op(b)", d.trans_b ? bs[2] : bs[1], d.k);
  check_dim("gemm_batched", "c's row count", cs[1], d.m);
  check_dim("gemm_batched", "c's column count", cs[2], d.n);
  d.alpha = alpha;
  d.beta = beta;
  d.a = {0, as[2], as[1] * as[2]};
  d.b = {0, bs[2], bs[1] * bs[2]};
  d.c = {0, cs[2], cs[1] * cs[2]};
  gemm_strided<B>(d, a, b, c);
}

/// Whether B's GEMM runs x·W with W stored (K, N) faster than x·Wᵀ with W stored (N, K), so
/// that a layer multiplying by an (out, in) weight should do it through a transposed copy
/// (model/layers.hpp, matmul_forward_kn). B::gemm_prefers_kn_weights() when B declares it
/// (the Eigen backend: when oneDNN is its GEMM provider); false otherwise.
template <class B>
[[nodiscard]] bool gemm_prefers_kn_weights() {
  if constexpr (requires {
                  { B::gemm_prefers_kn_weights() } -> std::convertible_to<bool>;
                }) {
    return B::gemm_prefers_kn_weights();
  } else {
    return false;
  }
}

/// Whether B declares `template <class F> static void gemm_tasks(index_t n, F f)`: f(i) for
/// every i in [0, n) spread over the backend's threads, each f free to call ops::gemm*,
/// which then runs on that task's thread and gives the bits it gives when called alone.
/// A layer that issues several small products per batch row (attention) then runs one
/// task per row, its products and the elementwise work between them together, instead of
/// one parallel region per product.
template <class B>
inline constexpr bool has_gemm_tasks = requires {
  B::gemm_tasks(index_t{1}, [](index_t) {});
};

}  // namespace ops
}  // namespace v0
}  // namespace rlhf
