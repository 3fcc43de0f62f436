// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Test support: PyTorch reference fixtures (tools/reference/*.py → tests/fixtures/*.json),
// closeness checks and finite-difference gradients. Shared by tests/algorithms/.
//
// Fixture layout: {"cases": [{"name": str, "config": {...}, "inputs": {...},
//                              "outputs": {...}}]}
// where a tensor is {"shape": [...], "data": [flat row-major]} and a scalar is a number.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/testing/minimal_backend.hpp"

#ifndef RLHF_FIXTURE_DIR
#error "RLHF_FIXTURE_DIR must name tests/fixtures"
#endif

// The backends a templated test runs on. By default the Eigen backend (its overrides) and
// the minimal backend (every generic path); tests/CMakeLists.txt's rlhf_add_backend_suite
// compiles the same sources again for another backend by defining
// RLHF_TEST_BACKEND_HEADER (a quoted include) and RLHF_TEST_BACKENDS (the type list).
#if defined(RLHF_TEST_BACKEND_HEADER)
#include RLHF_TEST_BACKEND_HEADER
#endif
#ifndef RLHF_TEST_BACKENDS
#define RLHF_TEST_BACKENDS rlhf::eigen_backend, rlhf::testing::minimal_backend
#endif

namespace rlhf_test {

using json = nlohmann::json;

/// One case of a fixture file.
struct fixture_case {
  json j;

  [[nodiscard]] std::string name() const { return j.at("name").get<std::string>(); }
  [[nodiscard]] const json& config() const { return j.at("config"); }
  [[nodiscard]] bool has_input(const std::string& k) const { return j.at("inputs").contains(k); }
  [[nodiscard]] bool has_output(const std::string& k) const {
    return j.at("outputs").contains(k);
  }

  static std::vector<float> values_of(const json& t) {
    return t.at("data").get<std::vector<float>>();
  }
  static rlhf::shape shape_of(const json& t) {
    const auto dims = t.at("shape").get<std::vector<rlhf::index_t>>();
    switch (dims.size()) {
      case 1: return rlhf::shape{dims[0]};
      case 2: return rlhf::shape{dims[0], dims[1]};
      case 3: return rlhf::shape{dims[0], dims[1], dims[2]};
      case 4: return rlhf::shape{dims[0], dims[1], dims[2], dims[3]};
      default: throw std::runtime_error("fixture: tensors have rank 1..4");
    }
  }

  [[nodiscard]] std::vector<float> input(const std::string& k) const {
    return values_of(j.at("inputs").at(k));
  }
  [[nodiscard]] std::vector<float> output(const std::string& k) const {
    return values_of(j.at("outputs").at(k));
  }
  [[nodiscard]] float output_scalar(const std::string& k) const {
    return j.at("outputs").at(k).get<float>();
  }
  [[nodiscard]] rlhf::shape input_shape(const std::string& k) const {
    return shape_of(j.at("inputs").at(k));
  }

  /// An input as a tensor of backend B.
  template <class B>
  [[nodiscard]] typename B::tensor tensor(const std::string& k) const {
    const auto v = input(k);
    return rlhf::ops::from_host<B>(std::span<const float>(v), input_shape(k));
  }
  /// An integer input (token ids) as an index tensor of backend B.
  template <class B>
  [[nodiscard]] typename B::index_tensor index_tensor(const std::string& k) const {
    const auto& t = j.at("inputs").at(k);
    const auto v = t.at("data").get<std::vector<std::int32_t>>();
    return rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(v), shape_of(t));
  }
};

/// Every case of tests/fixtures/<file>.
inline std::vector<fixture_case> load_fixture(const std::string& file) {
  const std::string path = std::string(RLHF_FIXTURE_DIR) + "/" + file;
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(), "cannot open fixture " << path
                                                     << " (regenerate: tools/reference/)");
  const json doc = json::parse(in);
  std::vector<fixture_case> out;
  for (const auto& c : doc.at("cases")) out.push_back(fixture_case{c});
  REQUIRE_MESSAGE(!out.empty(), "fixture " << path << " has no cases");
  return out;
}

/// |a - e| <= abs_tol + rel_tol·|e| for every element; reports the count and the worst one.
inline void check_close(std::span<const float> actual, std::span<const float> expected,
                        std::string_view what, double rel_tol = 1e-5, double abs_tol = 1e-6) {
  REQUIRE_MESSAGE(actual.size() == expected.size(),
                  what << ": " << actual.size() << " values, expected " << expected.size());
  std::size_t bad = 0, worst = 0;
  double worst_excess = 0.0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double a = actual[i], e = expected[i];
    const double err = std::abs(a - e), allowed = abs_tol + rel_tol * std::abs(e);
    const bool ok = (std::isnan(e) && std::isnan(a)) || (std::isinf(e) && a == e) ||
                    err <= allowed;
    if (!ok) {
      const double excess = std::isfinite(err) ? err / allowed : 1e300;
      if (bad == 0 || excess > worst_excess) worst = i, worst_excess = excess;
      ++bad;
    }
  }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << actual.size()
                               << " values differ; worst at [" << worst << "]: got "
                               << (actual.empty() ? 0.0f : actual[worst]) << ", expected "
                               << (expected.empty() ? 0.0f : expected[worst]));
}

inline void check_close(float actual, float expected, std::string_view what,
                        double rel_tol = 1e-5, double abs_tol = 1e-6) {
  check_close(std::span<const float>(&actual, 1), std::span<const float>(&expected, 1), what,
              rel_tol, abs_tol);
}

/// A backend tensor's values on the host.
template <class B>
std::vector<float> host(const typename B::tensor& t) {
  return rlhf::ops::to_host<B>(t);
}

/// Central finite differences of a scalar function of x (float32 inputs), in float64 from
/// the float32 evaluations. The step actually taken, (x+h) - (x-h) in float32, is the
/// denominator, so large |x| does not bias the estimate.
template <class F>
std::vector<double> fd_gradient(F&& f, std::vector<float> x, float h = 1e-2f) {
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float x0 = x[i];
    const float xp = x0 + h, xm = x0 - h;
    x[i] = xp;
    const double fp = f(x);
    x[i] = xm;
    const double fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / static_cast<double>(xp - xm);
  }
  return g;
}

/// Analytic gradient against central differences: |a - fd| <= abs_tol + rel_tol·|fd|.
template <class F>
void check_gradient_fd(F&& f, const std::vector<float>& x, std::span<const float> analytic,
                       std::string_view what, float h = 1e-2f, double rel_tol = 2e-2,
                       double abs_tol = 2e-3) {
  const std::vector<double> fd = fd_gradient(f, x, h);
  std::vector<float> fdf(fd.begin(), fd.end());
  check_close(analytic, std::span<const float>(fdf), what, rel_tol, abs_tol);
}

/// The first value of a doctest-friendly shape: a tensor of backend B from host values.
template <class B>
typename B::tensor make(const std::vector<float>& v, const rlhf::shape& s) {
  return rlhf::ops::from_host<B>(std::span<const float>(v), s);
}

}  // namespace rlhf_test
