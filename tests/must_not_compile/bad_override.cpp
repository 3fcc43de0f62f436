// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Must not compile. A backend pins its overrides with RLHF_BACKEND_OVERRIDES; ctest checks
// that an override the ops would not call (RLHF_CASE_* selects which mistake) stops the
// build with the sentence naming it (tests/CMakeLists.txt, "Pinned overrides"), and, without
// any RLHF_CASE_*, that the backend with correct overrides compiles
// (concept_diagnostic_override_control).
//
//   RLHF_CASE_misspelt_name       `fil` declared, `fill` pinned
//   RLHF_CASE_wrong_signature     `row_sum(tensor&, tensor&)`: x is not const, so the
//                                 call ops::row_sum makes with a const x does not match
//   RLHF_CASE_missing_arity       `transform` for one input only; ops::transform also calls
//                                 it with 2 to 4
//   RLHF_CASE_unknown_name        `fil` pinned: no such override (the compiler's own error
//                                 names rlhf::overrides::fil)
#include <cstdint>
#include <span>

#include <rlhf/core/host_tensor.hpp>
#include <rlhf/core/overrides.hpp>
#include <rlhf/ops/elementwise.hpp>
#include <rlhf/ops/reductions.hpp>

struct pinned_backend {
  using backend_category = rlhf::tensor_backend_tag;
  using tensor = rlhf::host_tensor<float>;
  using index_tensor = rlhf::host_tensor<std::int32_t>;
  static constexpr bool host_accessible = true;

  static float* data(tensor& t) { return t.data(); }
  static const float* data(const tensor& t) { return t.data(); }
  static std::int32_t* data(index_tensor& t) { return t.data(); }
  static const std::int32_t* data(const index_tensor& t) { return t.data(); }
  static void copy_from_host(std::span<const float>, tensor&) {}
  static void copy_to_host(const tensor&, std::span<float>) {}
  static void copy_from_host(std::span<const std::int32_t>, index_tensor&) {}
  static void copy_to_host(const index_tensor&, std::span<std::int32_t>) {}
  template <class F>
  static void parallel_for(rlhf::index_t n, F f) {
    for (rlhf::index_t i = 0; i < n; ++i) f(i);
  }

  // ---- the overrides ----------------------------------------------------------------------
#if defined(RLHF_CASE_misspelt_name)
  static void fil(tensor& t, float value) {
#else
  static void fill(tensor& t, float value) {
#endif
    for (float& v : t.span()) v = value;
  }

#if defined(RLHF_CASE_wrong_signature)
  static void row_sum(tensor& x, tensor& out) {
#else
  static void row_sum(const tensor& x, tensor& out) {
#endif
    const rlhf::index_t cols = x.shape().cols();
    for (rlhf::index_t r = 0; r < x.shape().rows(); ++r) {
      float s = 0.0f;
      for (rlhf::index_t c = 0; c < cols; ++c) s += x.data()[r * cols + c];
      out.data()[r] = s;
    }
  }

#if defined(RLHF_CASE_missing_arity)
  template <class F>
  static void transform(tensor& out, F f, const tensor& in) {
    for (rlhf::index_t i = 0; i < out.size(); ++i) out.data()[i] = f(in.data()[i]);
  }
#else
  template <class F, class... In>
  static void transform(tensor& out, F f, const In&... in) {
    for (rlhf::index_t i = 0; i < out.size(); ++i) out.data()[i] = f(in.data()[i]...);
  }
#endif
};

#if defined(RLHF_CASE_unknown_name)
RLHF_BACKEND_OVERRIDES(pinned_backend, fil, row_sum, transform);
#else
RLHF_BACKEND_OVERRIDES(pinned_backend, fill, row_sum, transform);
#endif

int main() {
  pinned_backend::tensor x(rlhf::shape{2, 3}), out(rlhf::shape{2});
  rlhf::ops::fill<pinned_backend>(x, 1.0f);
  rlhf::ops::row_sum<pinned_backend>(x, out);
}
