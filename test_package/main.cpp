// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Row log-sum-exp on the Eigen backend must match a plain std:: computation.
#include <cmath>
#include <cstdio>
#include <span>
#include <vector>

#include <rlhf/backends/eigen.hpp>
#include <rlhf/rlhf.hpp>

// C++20 comes from the rlhf:: targets (cxx_std_20), whatever compiler.cppstd the profile says.
#if defined(_MSVC_LANG)
static_assert(_MSVC_LANG >= 202002L, "test_package must be compiled as C++20");
#else
static_assert(__cplusplus >= 202002L, "test_package must be compiled as C++20");
#endif

int main() {
  using B = rlhf::eigen_backend;
  const std::vector<float> host{0.5f, -2.0f, 3.0f, 1.0f};
  B::tensor x(rlhf::shape{2, 2});
  rlhf::ops::copy_from_host<B>(std::span<const float>(host), x);
  B::tensor out(rlhf::shape{2});
  rlhf::ops::row_logsumexp<B>(x, out);
  const std::vector<float> got = rlhf::ops::to_host<B>(out);

  std::printf("rlhf++ %s: test_package\n", rlhf::version_string);
  for (std::size_t r = 0; r < 2; ++r) {
    const double want = std::log(std::exp(double{host[2 * r]}) + std::exp(double{host[2 * r + 1]}));
    if (std::abs(double{got[r]} - want) > 1e-5) {
      std::printf("row %zu: got %.6f, expected %.6f\n", r, double{got[r]}, want);
      return 1;
    }
  }
  return 0;
}
