// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// eigen_backend's GEMM through each provider this build linked (oneDNN, the CBLAS, Eigen):
// every result against a double-precision reference, the same bits whatever the thread
// count, beta = 0 overwriting a C full of NaN, and the choice by name and environment.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include <rlhf/backends/eigen.hpp>
#include <rlhf/core/philox.hpp>
#include <rlhf/ops/gemm.hpp>
#include <rlhf/testing/reference.hpp>

namespace {

using B = rlhf::eigen_backend;
using rlhf::gemm_provider;
using rlhf::index_t;

/// Chooses a provider for one scope, then restores the one before it.
struct provider_scope {
  gemm_provider before = rlhf::eigen_gemm_provider();
  explicit provider_scope(gemm_provider p) { rlhf::set_eigen_gemm_provider(p); }
  provider_scope(const provider_scope&) = delete;
  provider_scope& operator=(const provider_scope&) = delete;
  ~provider_scope() { rlhf::set_eigen_gemm_provider(before); }
};

#if defined(_OPENMP)
/// Runs with `n` OpenMP threads for one scope.
struct thread_scope {
  int before = omp_get_max_threads();
  explicit thread_scope(int n) { omp_set_num_threads(n); }
  thread_scope(const thread_scope&) = delete;
  thread_scope& operator=(const thread_scope&) = delete;
  ~thread_scope() { omp_set_num_threads(before); }
};
#endif

std::vector<gemm_provider> linked_providers() {
  std::vector<gemm_provider> out;
  for (const auto& entry : rlhf::enum_names<gemm_provider>::values) {
    if (rlhf::gemm_provider_available(entry.value)) out.push_back(entry.value);
  }
  return out;
}

B::tensor random_tensor(index_t n, std::uint64_t seed) {
  B::tensor t(rlhf::shape{n});
  for (index_t i = 0; i < n; ++i) {
    t.data()[i] = rlhf::philox_uniform(seed, 0, 0, static_cast<std::uint64_t>(i)) * 2.0f - 1.0f;
  }
  return t;
}

/// One strided-batched product: operands with padding between rows and matrices, so that
/// leading dimensions and batch strides are exercised.
struct product {
  rlhf::gemm_desc d;
  B::tensor a, b, c;

  product(bool ta, bool tb, index_t m, index_t n, index_t k, index_t batch, float alpha, float beta,
          std::uint64_t seed) {
    d.trans_a = ta;
    d.trans_b = tb;
    d.m = m;
    d.n = n;
    d.k = k;
    d.batch = batch;
    d.alpha = alpha;
    d.beta = beta;
    const index_t a_rows = ta ? k : m, a_cols = ta ? m : k;
    const index_t b_rows = tb ? n : k, b_cols = tb ? k : n;
    d.a = {3, a_cols + 5, a_rows * (a_cols + 5) + 7};
    d.b = {1, b_cols + 2, b_rows * (b_cols + 2) + 3};
    d.c = {2, n + 3, m * (n + 3) + 1};
    a = random_tensor(d.a.offset + batch * d.a.batch_stride, seed);
    b = random_tensor(d.b.offset + batch * d.b.batch_stride, seed + 1);
    c = random_tensor(d.c.offset + batch * d.c.batch_stride, seed + 2);
  }

  /// C as the product leaves it, in double (the library's test reference).
  [[nodiscard]] std::vector<double> reference() const {
    auto widen = [](const B::tensor& t) {
      return std::vector<double>(t.data(), t.data() + t.size());
    };
    return rlhf::testing::reference::gemm(d, widen(a), widen(b), widen(c), nullptr);
  }

  /// The product computed by eigen_backend into a copy of C.
  [[nodiscard]] B::tensor run() const {
    B::tensor out = c;
    rlhf::ops::gemm_strided<B>(d, a, b, out);
    return out;
  }
};

/// A single product's transposes and sizes.
struct product_shape {
  bool ta, tb;
  index_t m, n, k;
};

bool same_bits(const B::tensor& x, const B::tensor& y) {
  return x.size() == y.size() &&
         std::memcmp(x.data(), y.data(), static_cast<std::size_t>(x.size()) * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("gemm providers: the default is the first linked of oneDNN, the CBLAS, Eigen") {
  CHECK(rlhf::gemm_provider_available(gemm_provider::eigen));
#if defined(RLHF_EIGEN_USE_ONEDNN)
  CHECK(rlhf::default_gemm_provider() == gemm_provider::onednn);
#elif defined(RLHF_EIGEN_USE_CBLAS)
  CHECK(rlhf::default_gemm_provider() == gemm_provider::cblas);
#else
  CHECK(rlhf::default_gemm_provider() == gemm_provider::eigen);
#endif
  // ctest runs this binary with RLHF_GEMM_PROVIDER set to each linked provider in turn.
  if (const char* env = std::getenv("RLHF_GEMM_PROVIDER"); env != nullptr && *env != '\0') {
    CHECK(rlhf::to_string(rlhf::eigen_gemm_provider()) == std::string(env));
  } else {
    CHECK(rlhf::eigen_gemm_provider() == rlhf::default_gemm_provider());
  }
}

TEST_CASE("gemm providers: every product against a double reference") {
  struct case_t {
    bool ta, tb;
    index_t m, n, k, batch;
    float alpha, beta;
  };
  // The GPT's shapes (B·T rows, C..4C columns), shapes that cross the 128 × 256 tiles,
  // decode-sized M, vector shapes, small batched products, and K = 0.
  const std::vector<case_t> cases{
      {false, true, 300, 520, 70, 1, 1.0f, 1.0f},  {false, false, 129, 257, 33, 1, 0.5f, 0.0f},
      {true, false, 260, 130, 300, 1, 1.0f, 1.0f}, {true, true, 131, 259, 17, 1, -2.0f, 0.25f},
      {false, true, 8, 768, 256, 1, 1.0f, 1.0f},   {false, false, 1, 300, 1030, 1, 1.0f, 0.0f},
      {true, false, 64, 1, 4100, 1, 1.0f, 1.0f},   {false, true, 40, 40, 16, 12, 0.125f, 0.0f},
      {false, false, 33, 16, 40, 12, 1.0f, 1.0f},  {true, true, 5, 7, 0, 3, 1.0f, 0.5f},
      {false, true, 1024, 256, 64, 1, 1.0f, 1.0f},
  };
  for (const gemm_provider p : linked_providers()) {
    const provider_scope scope(p);
    std::uint64_t seed = 11;
    for (const case_t& cs : cases) {
      CAPTURE(rlhf::to_string(p));
      CAPTURE(cs.ta);
      CAPTURE(cs.tb);
      CAPTURE(cs.m);
      CAPTURE(cs.n);
      CAPTURE(cs.k);
      CAPTURE(cs.batch);
      const product pr(cs.ta, cs.tb, cs.m, cs.n, cs.k, cs.batch, cs.alpha, cs.beta, seed += 7);
      const B::tensor got = pr.run();
      const std::vector<double> want = pr.reference();
      // float32 products of K terms of magnitude ≤ 1: round-off grows like sqrt(K)·eps.
      const double tol = 1e-6 * (4.0 + 2.0 * std::sqrt(static_cast<double>(cs.k)));
      double worst = 0;
      for (index_t i = 0; i < got.size(); ++i) {
        const double err = std::abs(got.data()[i] - want[static_cast<std::size_t>(i)]);
        worst = std::isnan(err) ? INFINITY : std::max(worst, err);
      }
      CHECK(worst <= tol);
    }
  }
}

TEST_CASE("gemm providers: beta = 0 overwrites C without reading it (NaN in C)") {
  for (const gemm_provider p : linked_providers()) {
    const provider_scope scope(p);
    CAPTURE(rlhf::to_string(p));
    product pr(false, true, 200, 300, 50, 1, 1.0f, 0.0f, 5);
    for (index_t i = 0; i < pr.c.size(); ++i) pr.c.data()[i] = std::nanf("");
    const B::tensor got = pr.run();
    bool all_finite_in_c = true;
    for (index_t i = 0; i < pr.d.m; ++i) {
      for (index_t j = 0; j < pr.d.n; ++j) {
        all_finite_in_c = all_finite_in_c &&
                          std::isfinite(got.data()[pr.d.c.offset + i * pr.d.c.ld + j]);
      }
    }
    CHECK(all_finite_in_c);
    // Padding between C's rows is not touched.
    CHECK(std::isnan(got.data()[pr.d.c.offset + pr.d.n]));
  }
}

#if defined(_OPENMP)
TEST_CASE("gemm providers: the same bits with 1, 2, 3 and 4 threads") {
  // Shapes for which oneDNN left to its own threads splits K across them (few elements of C,
  // a long K) and ordinary ones.
  const std::vector<product_shape> cases{
      {true, true, 16, 1, 8192},     {true, false, 64, 64, 4096},   {false, false, 8, 259, 1024},
      {false, false, 1, 256, 1024},  {true, false, 256, 259, 1024}, {false, true, 300, 520, 70},
      {false, false, 32, 256, 1024}, {false, false, 640, 768, 256}};
  for (const gemm_provider p : linked_providers()) {
    const provider_scope scope(p);
    for (const product_shape& cs : cases) {
      CAPTURE(rlhf::to_string(p));
      CAPTURE(cs.m);
      CAPTURE(cs.n);
      CAPTURE(cs.k);
      const product pr(cs.ta, cs.tb, cs.m, cs.n, cs.k, 1, 1.0f, 0.0f, 99);
      B::tensor one;
      {
        const thread_scope threads(1);
        one = pr.run();
      }
      for (int t = 2; t <= 4; ++t) {
        const thread_scope threads(t);
        CAPTURE(t);
        CHECK(same_bits(one, pr.run()));
      }
    }
  }
}
#endif

namespace {
// The Eigen backend with gemm_bias hidden: ops::gemm_bias fills C's rows, then gemm_strided.
struct eigen_without_gemm_bias : B {
  static void gemm_bias(const rlhf::gemm_desc&, const tensor&, const tensor&, tensor&,
                        const float*) = delete;
};
static_assert(rlhf::ops::has_gemm_bias<B>);
static_assert(!rlhf::ops::has_gemm_bias<eigen_without_gemm_bias>);
}  // namespace

TEST_CASE("gemm providers: gemm_bias equals the bias rows then beta = 1, bit for bit") {
  // Each tile of C is set to the bias just before its product: the same operations on every
  // element as one fill of C's rows followed by the product with beta = 1. C starts as NaN
  // (gemm_bias must not read it); the padding between C's rows stays as it was.
  const std::vector<product_shape> cases{
      {false, true, 300, 520, 70},   {false, false, 129, 257, 33}, {false, true, 8, 768, 256},
      {false, false, 1024, 256, 64}, {true, false, 260, 130, 300}, {false, true, 5, 7, 0}};
  for (const gemm_provider p : linked_providers()) {
    const provider_scope scope(p);
    for (const product_shape& cs : cases) {
      CAPTURE(rlhf::to_string(p));
      CAPTURE(cs.m);
      CAPTURE(cs.n);
      CAPTURE(cs.k);
      product pr(cs.ta, cs.tb, cs.m, cs.n, cs.k, 1, 0.75f, 0.0f, 41);
      const B::tensor bias = random_tensor(cs.n + 9, 43);
      // The reference: C's rows set to the bias, then gemm_strided accumulating (beta = 1).
      B::tensor want = pr.c;
      for (index_t i = 0; i < cs.m; ++i) {
        for (index_t j = 0; j < cs.n; ++j) {
          want.data()[pr.d.c.offset + i * pr.d.c.ld + j] = bias.data()[9 + j];
        }
      }
      rlhf::gemm_desc acc = pr.d;
      acc.beta = 1.0f;
      rlhf::ops::gemm_strided<B>(acc, pr.a, pr.b, want);
      B::tensor nan_c = pr.c;
      for (index_t i = 0; i < cs.m; ++i) {
        for (index_t j = 0; j < cs.n; ++j) {
          nan_c.data()[pr.d.c.offset + i * pr.d.c.ld + j] = std::nanf("");
        }
      }
      B::tensor tiled = nan_c;
      rlhf::ops::gemm_bias<B>(pr.d, pr.a, pr.b, tiled, bias, 9);
      CHECK(same_bits(tiled, want));
      B::tensor fallback = nan_c;
      rlhf::ops::gemm_bias<eigen_without_gemm_bias>(pr.d, pr.a, pr.b, fallback, bias, 9);
      CHECK(same_bits(fallback, want));
    }
  }
  product pr(false, true, 4, 6, 3, 1, 1.0f, 0.0f, 3);
  const B::tensor bias = random_tensor(8, 5);
  CHECK_THROWS_WITH_AS(rlhf::ops::gemm_bias<B>(pr.d, pr.a, pr.b, pr.c, bias, 3),
                       "gemm_bias: bias needs 6 elements at offset 3 but its tensor has 8 "
                       "elements",
                       rlhf::shape_error);
  CHECK_THROWS_AS(rlhf::ops::gemm_bias<B>(pr.d, pr.a, pr.b, pr.c, bias, -1), rlhf::shape_error);
  rlhf::gemm_desc two = pr.d;
  two.batch = 2;
  CHECK_THROWS_AS(rlhf::ops::gemm_bias<B>(two, pr.a, pr.b, pr.c, bias, 0), rlhf::config_error);
  CHECK_THROWS_AS(rlhf::ops::gemm_bias<B>(pr.d, pr.a, pr.b, pr.a, bias, 0), rlhf::shape_error);
}

namespace {
struct backend_without_hook {};
struct backend_preferring_kn {
  static bool gemm_prefers_kn_weights() { return true; }
};
}  // namespace

TEST_CASE("gemm providers: only oneDNN asks the layers for transposed (in, out) weights") {
  CHECK_FALSE(rlhf::ops::gemm_prefers_kn_weights<backend_without_hook>());
  CHECK(rlhf::ops::gemm_prefers_kn_weights<backend_preferring_kn>());
  for (const gemm_provider p : linked_providers()) {
    const provider_scope scope(p);
    CAPTURE(rlhf::to_string(p));
    CHECK(rlhf::ops::gemm_prefers_kn_weights<B>() == (p == gemm_provider::onednn));
  }
}

TEST_CASE("gemm providers: chosen by name, an unknown or unlinked one is a config_error") {
  CHECK(rlhf::enum_from_string<gemm_provider>("openblas", "f", "a") == gemm_provider::cblas);
  CHECK(rlhf::enum_from_string<gemm_provider>("onednn", "f", "a") == gemm_provider::onednn);
  CHECK_THROWS_WITH_AS((void)rlhf::enum_from_string<gemm_provider>("mkl", "f", "provider"),
                       doctest::Contains("unknown provider 'mkl'"), rlhf::config_error);
  CHECK_THROWS_WITH_AS(rlhf::set_eigen_gemm_provider(static_cast<gemm_provider>(7)),
                       doctest::Contains("provider"), rlhf::config_error);
  for (const auto& entry : rlhf::enum_names<gemm_provider>::values) {
    if (rlhf::gemm_provider_available(entry.value)) continue;
    CHECK_THROWS_WITH_AS(rlhf::set_eigen_gemm_provider(entry.value),
                         doctest::Contains("not linked into this build"), rlhf::config_error);
  }
  // The environment is read at the first GEMM; its parser on its own:
  const char* saved = std::getenv("RLHF_GEMM_PROVIDER");
  const std::string before = saved != nullptr ? saved : "";
  setenv("RLHF_GEMM_PROVIDER", "fastest", 1);
  CHECK_THROWS_WITH_AS(rlhf::detail::gemm_provider_from_environment(),
                       doctest::Contains("environment variable RLHF_GEMM_PROVIDER: unknown"),
                       rlhf::config_error);
  setenv("RLHF_GEMM_PROVIDER", "eigen", 1);
  CHECK(rlhf::detail::gemm_provider_from_environment() == gemm_provider::eigen);
  setenv("RLHF_GEMM_PROVIDER", "", 1);
  CHECK(rlhf::detail::gemm_provider_from_environment() == rlhf::default_gemm_provider());
  if (saved != nullptr) {
    setenv("RLHF_GEMM_PROVIDER", before.c_str(), 1);
  } else {
    unsetenv("RLHF_GEMM_PROVIDER");
  }
}

TEST_CASE("gemm providers: the tiles of C come from its shape, at least 16 where they can") {
  using rlhf::detail::openmp::gemm_tiling;
  struct case_t {
    index_t m, n, rows, cols, row_tiles, col_tiles;
  };
  const std::vector<case_t> cases{
      {1024, 768, 128, 256, 8, 3},  // c_attn forward: 24 tiles as they are
      {1024, 256, 128, 128, 8, 2},  // c_proj forward: columns halved once
      {768, 256, 128, 64, 6, 4},    // c_attn weight gradient: columns halved twice
      {8, 768, 128, 64, 1, 12},     // a decode step: cut along the columns
      {640, 259, 128, 64, 5, 5},    // a PPO LM head (V = 259)
      {40, 40, 32, 256, 2, 1},      // small: rows halved to 32, no further
      {1, 1, 128, 256, 1, 1},       // one element: nothing to cut
  };
  for (const case_t& cs : cases) {
    CAPTURE(cs.m);
    CAPTURE(cs.n);
    const gemm_tiling t = gemm_tiling::of(cs.m, cs.n);
    CHECK(t.rows == cs.rows);
    CHECK(t.cols == cs.cols);
    CHECK(t.row_tiles == cs.row_tiles);
    CHECK(t.col_tiles == cs.col_tiles);
  }
}
