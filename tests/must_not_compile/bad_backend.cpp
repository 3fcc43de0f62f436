// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Must not compile. ctest checks that the compiler prints the one sentence of
// rlhf::assert_tensor_backend that names the missing requirement (RLHF_CASE_* selects which
// requirement is left out; tests/CMakeLists.txt, "Must-not-compile"), and, without any
// RLHF_CASE_*, that the complete backend compiles (concept_diagnostic_control).
//
//   RLHF_CASE_no_opt_in           no `using backend_category = rlhf::tensor_backend_tag;`
//   RLHF_CASE_no_tensor_types     no `tensor` / `index_tensor`
//   RLHF_CASE_not_owning          a `tensor` without reshape(shape)
//   RLHF_CASE_no_host_accessible  no `static constexpr bool host_accessible`
//   RLHF_CASE_runtime_host_accessible  `host_accessible` is a bool, but not a constant
//                                      expression (a plain `static inline bool`)
//   RLHF_CASE_no_data_access      no `data(tensor&)` family
//   RLHF_CASE_no_host_copies      no `copy_from_host` / `copy_to_host`
//   RLHF_CASE_no_parallel_for     no `parallel_for`
#include <cstdint>
#include <span>

#include <rlhf/core/host_tensor.hpp>
#include <rlhf/ops/elementwise.hpp>
#include <rlhf/ops/reductions.hpp>

#if defined(RLHF_CASE_not_owning)
// Constructible from a shape, with shape() and size(), but no reshape(): not the owning
// tensor the concept asks for.
struct no_reshape_tensor : rlhf::host_tensor<float> {
  using rlhf::host_tensor<float>::host_tensor;
  void reshape(const rlhf::shape&) = delete;
};
using float_tensor = no_reshape_tensor;
#else
using float_tensor = rlhf::host_tensor<float>;
#endif
using int_tensor = rlhf::host_tensor<std::int32_t>;

struct almost_backend {
#if !defined(RLHF_CASE_no_opt_in)
  using backend_category = rlhf::tensor_backend_tag;
#endif
#if !defined(RLHF_CASE_no_tensor_types)
  using tensor = float_tensor;
  using index_tensor = int_tensor;
#endif
#if defined(RLHF_CASE_runtime_host_accessible)
  static inline bool host_accessible = true;  // not constexpr: if constexpr cannot read it
#elif !defined(RLHF_CASE_no_host_accessible)
  static constexpr bool host_accessible = true;
#endif
#if !defined(RLHF_CASE_no_data_access)
  static float* data(float_tensor& t) { return t.data(); }
  static const float* data(const float_tensor& t) { return t.data(); }
  static std::int32_t* data(int_tensor& t) { return t.data(); }
  static const std::int32_t* data(const int_tensor& t) { return t.data(); }
#endif
#if !defined(RLHF_CASE_no_host_copies)
  static void copy_from_host(std::span<const float>, float_tensor&) {}
  static void copy_to_host(const float_tensor&, std::span<float>) {}
  static void copy_from_host(std::span<const std::int32_t>, int_tensor&) {}
  static void copy_to_host(const int_tensor&, std::span<std::int32_t>) {}
#endif
#if !defined(RLHF_CASE_no_parallel_for)
  template <class F>
  static void parallel_for(rlhf::index_t n, F f) {
    for (rlhf::index_t i = 0; i < n; ++i) f(i);
  }
#endif
};

int main() {
  float_tensor x(rlhf::shape{2, 3}), out(rlhf::shape{2});
#if defined(RLHF_CASE_no_tensor_types)
  // Ops whose signature names B::tensor cannot even be called without it; for_each's does
  // not, so its entry check is what reports the missing types.
  rlhf::ops::for_each<almost_backend>([](float& v) { v = 0.0f; }, x);
#else
  rlhf::ops::row_sum<almost_backend>(x, out);
#endif
}
