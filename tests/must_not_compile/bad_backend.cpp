// Must not compile. ctest checks that the compiler prints the one sentence of
// rlhf::assert_tensor_backend that names the missing requirement (RLHF_CASE_* selects it).
#include <cstdint>
#include <span>

#include <rlhf/core/host_tensor.hpp>
#include <rlhf/ops/reductions.hpp>

struct almost_backend {
#if !defined(RLHF_CASE_no_opt_in)
  using backend_category = rlhf::tensor_backend_tag;
#endif
  using tensor = rlhf::host_tensor<float>;
  using index_tensor = rlhf::host_tensor<std::int32_t>;
  static constexpr bool host_accessible = true;
  static float* data(tensor& t) { return t.data(); }
  static const float* data(const tensor& t) { return t.data(); }
  static std::int32_t* data(index_tensor& t) { return t.data(); }
  static const std::int32_t* data(const index_tensor& t) { return t.data(); }
#if !defined(RLHF_CASE_no_host_copies)
  static void copy_from_host(std::span<const float>, tensor&) {}
  static void copy_to_host(const tensor&, std::span<float>) {}
  static void copy_from_host(std::span<const std::int32_t>, index_tensor&) {}
  static void copy_to_host(const index_tensor&, std::span<std::int32_t>) {}
#endif
#if !defined(RLHF_CASE_no_parallel_for)
  template <class F>
  static void parallel_for(rlhf::index_t n, F f) {
    for (rlhf::index_t i = 0; i < n; ++i) f(i);
  }
#endif
};

int main() {
  almost_backend::tensor x(rlhf::shape{2, 3}), out(rlhf::shape{2});
  rlhf::ops::row_sum<almost_backend>(x, out);
}
