// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// custom::vector_backend: a complete rlhf++ tensor backend in one page, written from
// docs/backends.md alone. Storage is a plain std::vector, there is no dependency beyond the
// standard library, and every op runs its generic implementation from rlhf/ops/ except
// the matrix product, which this backend overrides with a cache-friendly loop to show how
// an override is written. Copy this file to start a backend of your own.
//
// Check it with the conformance kit (tests/backends/custom.cmake does, with the whole
// algorithm and model suites too):
//
//   #include <rlhf/testing/conformance.hpp>
//   #include "vector_backend.hpp"
//   RLHF_CONFORMANCE_SUITE(custom::vector_backend);
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <rlhf/core/errors.hpp>          // rlhf::shape_error
#include <rlhf/core/overrides.hpp>       // RLHF_BACKEND_OVERRIDES
#include <rlhf/core/shape.hpp>           // rlhf::shape, rlhf::index_t
#include <rlhf/core/tensor_backend.hpp>  // rlhf::tensor_backend_tag, the concept
#include <rlhf/ops/gemm.hpp>             // rlhf::gemm_desc (only because gemm is overridden)

namespace custom {

/// Requirement 2: an owning, dense, row-major tensor of T (float or std::int32_t).
template <class T>
class vector_tensor {
 public:
  /// An empty tensor of shape (0). The bundled model declares its activation tensors first
  /// and assigns them later, so tensors must be default-constructible.
  vector_tensor() : vector_tensor(rlhf::shape{0}) {}

  /// Zero-filled storage for `s` (rlhf::shape has already checked rank 1..4, dims >= 0).
  explicit vector_tensor(const rlhf::shape& s)
      : shape_(s), values_(static_cast<std::size_t>(s.numel()), T{}) {}

  // Copies are deep (std::vector's); a moved-from tensor is left empty, shape (0), so that
  // its shape never describes storage it no longer has.
  vector_tensor(const vector_tensor&) = default;
  vector_tensor& operator=(const vector_tensor&) = default;
  vector_tensor(vector_tensor&& other) noexcept
      : shape_(std::exchange(other.shape_, rlhf::shape{0})), values_(std::move(other.values_)) {}
  vector_tensor& operator=(vector_tensor&& other) noexcept {
    shape_ = std::exchange(other.shape_, rlhf::shape{0});
    values_ = std::move(other.values_);
    return *this;
  }
  ~vector_tensor() = default;

  [[nodiscard]] const rlhf::shape& shape() const noexcept { return shape_; }
  [[nodiscard]] rlhf::index_t size() const noexcept { return shape_.numel(); }

  /// Same elements, another shape of the same element count; otherwise rlhf::shape_error.
  void reshape(const rlhf::shape& s) {
    if (s.numel() != size()) {
      throw rlhf::shape_error("reshape: new shape " + s.str() + " has " +
                              std::to_string(s.numel()) + " elements, tensor of shape " +
                              shape_.str() + " has " + std::to_string(size()));
    }
    shape_ = s;
  }

  [[nodiscard]] T* data() noexcept { return values_.data(); }
  [[nodiscard]] const T* data() const noexcept { return values_.data(); }

 private:
  rlhf::shape shape_;
  std::vector<T> values_;
};

struct vector_backend {
  // 1. The opt-in.
  using backend_category = rlhf::tensor_backend_tag;

  // 2. The tensor types.
  using tensor = vector_tensor<float>;
  using index_tensor = vector_tensor<std::int32_t>;

  // 3. Host code may dereference data() (this is host memory).
  static constexpr bool host_accessible = true;

  static constexpr const char* name = "vector";  // customary, not required

  // 4. Data access: the first element, contiguous and row-major.
  static float* data(tensor& t) noexcept { return t.data(); }
  static const float* data(const tensor& t) noexcept { return t.data(); }
  static std::int32_t* data(index_tensor& t) noexcept { return t.data(); }
  static const std::int32_t* data(const index_tensor& t) noexcept { return t.data(); }

  // 5. Whole-tensor host copies (rlhf::ops has already checked that the sizes match).
  static void copy_from_host(std::span<const float> src, tensor& dst) {
    std::copy(src.begin(), src.end(), dst.data());
  }
  static void copy_from_host(std::span<const std::int32_t> src, index_tensor& dst) {
    std::copy(src.begin(), src.end(), dst.data());
  }
  static void copy_to_host(const tensor& src, std::span<float> dst) {
    std::copy(src.data(), src.data() + dst.size(), dst.begin());
  }
  static void copy_to_host(const index_tensor& src, std::span<std::int32_t> dst) {
    std::copy(src.data(), src.data() + dst.size(), dst.begin());
  }

  // 6. parallel_for: f(i) for every i in [0, n). Serial here; any order (or threads) would
  // do, since the library never relies on the order.
  template <class F>
  static void parallel_for(rlhf::index_t n, F f) {
    for (rlhf::index_t i = 0; i < n; ++i) f(i);
  }

  // ---- an override ----------------------------------------------------------------------
  //
  // rlhf::ops::gemm / gemm_batched / gemm_strided call B::gemm(desc, a, b, c) when it exists
  // (after validating the descriptor against the three buffers, and never with batch, m or
  // n zero), else a generic kernel that computes one dot product per output element, which
  // walks op(B) down a column: slow. This version packs row i of op(A) once, then either
  // adds multiples of the contiguous rows of B into an accumulator row (B not transposed)
  // or takes contiguous dot products with the rows of B (B transposed).
  //
  // Semantics to keep (docs/backends.md): C_q = alpha op(A_q) op(B_q) + beta C_q; beta == 0
  // means C is not read; elements of c outside the described matrices are left alone.
  static void gemm(const rlhf::gemm_desc& d, const tensor& a, const tensor& b, tensor& c) {
    using rlhf::index_t;
    const auto k = static_cast<std::size_t>(d.k);
    const auto n = static_cast<std::size_t>(d.n);
    std::vector<float> a_row(k), acc(n);
    for (index_t q = 0; q < d.batch; ++q) {
      const float* aq = a.data() + d.a.offset + q * d.a.batch_stride;
      const float* bq = b.data() + d.b.offset + q * d.b.batch_stride;
      float* cq = c.data() + d.c.offset + q * d.c.batch_stride;
      for (index_t i = 0; i < d.m; ++i) {
        // Row i of op(A): A is stored (m, k), or (k, m) when transposed.
        for (index_t p = 0; p < d.k; ++p) {
          a_row[static_cast<std::size_t>(p)] = d.trans_a ? aq[p * d.a.ld + i] : aq[i * d.a.ld + p];
        }
        if (d.trans_b) {  // B stored (n, k): row j of it is column j of op(B)
          for (index_t j = 0; j < d.n; ++j) {
            const float* bj = bq + j * d.b.ld;
            float s = 0.0f;
            for (std::size_t p = 0; p < k; ++p) s += a_row[p] * bj[p];
            acc[static_cast<std::size_t>(j)] = s;
          }
        } else {  // B stored (k, n): acc += a[i, p] * (row p of B)
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (index_t p = 0; p < d.k; ++p) {
            const float aip = a_row[static_cast<std::size_t>(p)];
            const float* bp = bq + p * d.b.ld;
            for (std::size_t j = 0; j < n; ++j) acc[j] += aip * bp[j];
          }
        }
        float* ci = cq + i * d.c.ld;
        for (std::size_t j = 0; j < n; ++j) {
          ci[j] = d.beta == 0.0f ? d.alpha * acc[j] : d.alpha * acc[j] + d.beta * ci[j];
        }
      }
    }
  }
};

static_assert(rlhf::tensor_backend<vector_backend>);
// rlhf::ops uses B::gemm only if its call compiles; a misspelt name or a wrong signature would
// silently fall back to the generic kernel. Pinned, it fails to compile instead, naming the
// override and the signature expected.
RLHF_BACKEND_OVERRIDES(vector_backend, gemm);

}  // namespace custom
