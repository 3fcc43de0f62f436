// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Seeded test data and a float64 dot product, shared by the model tests that build random
// inputs and weigh outputs with them (L = sum(w * out), as in their finite-difference checks).
#pragma once

#include <cstddef>
#include <random>
#include <vector>

namespace rlhf_test {

/// n draws of N(0, scale^2) from std::mt19937(seed).
inline std::vector<float> randn(std::size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(gen);
  return v;
}

/// sum_i a[i] * b[i] in float64 (the sizes must match).
inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

}  // namespace rlhf_test
