// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What the tensor-backend concept accepts and rejects. The must-not-compile cases that
// check the diagnostic text are in must_not_compile/ (run by ctest).
#include <doctest/doctest.h>

#include <cstdint>
#include <span>

#include <rlhf/core/host_tensor.hpp>
#include <rlhf/core/tensor_backend.hpp>
#include <rlhf/testing/minimal_backend.hpp>

namespace {

// Every requirement but the opt-in and parallel_for; the cases below add or break pieces.
struct primitives {
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
};

struct with_parallel_for : primitives {
  template <class F>
  static void parallel_for(rlhf::index_t n, F f) {
    for (rlhf::index_t i = 0; i < n; ++i) f(i);
  }
};

struct full : with_parallel_for {
  using backend_category = rlhf::tensor_backend_tag;
};
struct no_opt_in : with_parallel_for {};
struct wrong_tag : with_parallel_for {
  using backend_category = void;
};
struct no_index_tensor {
  using backend_category = rlhf::tensor_backend_tag;
  using tensor = rlhf::host_tensor<float>;
};
struct non_owning_tensor : full {
  struct view {
    float* p;
  };
  using tensor = view;
};
struct no_memory_space {
  using backend_category = rlhf::tensor_backend_tag;
  using tensor = rlhf::host_tensor<float>;
  using index_tensor = rlhf::host_tensor<std::int32_t>;
};
struct wrong_data_type : full {
  static double* data(tensor&) { return nullptr; }
};
struct no_parallel_for : primitives {
  using backend_category = rlhf::tensor_backend_tag;
};

// One type per requirement of the concept, missing exactly that one (the other five
// present), built from one mixin per requirement. tensor_backend rejects each, and the
// sub-concept that rlhf::assert_tensor_backend reports is the one that fails.
namespace each {
using ft = rlhf::host_tensor<float>;
using it = rlhf::host_tensor<std::int32_t>;
struct opt_in {
  using backend_category = rlhf::tensor_backend_tag;
};
struct tensor_types {
  using tensor = ft;
  using index_tensor = it;
};
struct memory_space {
  static constexpr bool host_accessible = false;  // false is as valid as true
};
struct data_access {
  static float* data(ft& t) { return t.data(); }
  static const float* data(const ft& t) { return t.data(); }
  static std::int32_t* data(it& t) { return t.data(); }
  static const std::int32_t* data(const it& t) { return t.data(); }
};
struct host_copies {
  static void copy_from_host(std::span<const float>, ft&) {}
  static void copy_to_host(const ft&, std::span<float>) {}
  static void copy_from_host(std::span<const std::int32_t>, it&) {}
  static void copy_to_host(const it&, std::span<std::int32_t>) {}
};
struct parallel {
  template <class F>
  static void parallel_for(rlhf::index_t n, F f) {
    for (rlhf::index_t i = 0; i < n; ++i) f(i);
  }
};

struct all : opt_in, tensor_types, memory_space, data_access, host_copies, parallel {};
struct no_opt_in : tensor_types, memory_space, data_access, host_copies, parallel {};
struct no_tensor_types : opt_in, memory_space, data_access, host_copies, parallel {};
struct not_owning : all {
  struct view {  // no shape constructor, shape(), size() or reshape()
    float* p;
  };
  using tensor = view;
};
struct index_not_owning : all {
  using index_tensor = std::span<std::int32_t>;
};
struct no_memory_space : opt_in, tensor_types, data_access, host_copies, parallel {};
struct no_data_access : opt_in, tensor_types, memory_space, host_copies, parallel {};
struct no_host_copies : opt_in, tensor_types, memory_space, data_access, parallel {};
struct no_index_host_copies : all {  // float copies only: int32 ones are required too
  static void copy_from_host(std::span<const float>, ft&) {}
  static void copy_to_host(const ft&, std::span<float>) {}
};
struct no_parallel_for : opt_in, tensor_types, memory_space, data_access, host_copies {};
}  // namespace each

// Opt-in by specialisation, for a type that cannot be edited.
struct third_party_untagged : with_parallel_for {};

}  // namespace

template <>
inline constexpr bool rlhf::enable_tensor_backend<third_party_untagged> = true;

static_assert(rlhf::tensor_backend<full>);
static_assert(rlhf::tensor_backend<rlhf::testing::minimal_backend>);
static_assert(rlhf::tensor_backend<third_party_untagged>);
static_assert(!rlhf::tensor_backend<int>);
static_assert(!rlhf::tensor_backend<rlhf::host_tensor<float>>);
static_assert(!rlhf::tensor_backend<no_opt_in>);
static_assert(!rlhf::tensor_backend<wrong_tag>);
static_assert(!rlhf::tensor_backend<no_index_tensor>);
static_assert(!rlhf::tensor_backend<non_owning_tensor>);
static_assert(!rlhf::tensor_backend<no_memory_space>);
static_assert(!rlhf::tensor_backend<wrong_data_type>);
static_assert(!rlhf::tensor_backend<no_parallel_for>);
// Each rejection is attributed to the right requirement.
static_assert(rlhf::backend_has_tensor_types<no_opt_in> && !rlhf::enable_tensor_backend<no_opt_in>);
static_assert(!rlhf::backend_has_tensor_types<no_index_tensor>);
static_assert(!rlhf::backend_tensors_are_owning<non_owning_tensor>);
static_assert(!rlhf::backend_has_memory_space<no_memory_space>);
static_assert(!rlhf::backend_has_data_access<wrong_data_type>);
static_assert(!rlhf::backend_has_parallel_for<no_parallel_for>);
static_assert(rlhf::backend_has_host_copies<no_parallel_for>);

static_assert(rlhf::tensor_backend<each::all>);
static_assert(!rlhf::tensor_backend<each::no_opt_in>);
static_assert(!rlhf::enable_tensor_backend<each::no_opt_in>);
static_assert(!rlhf::tensor_backend<each::no_tensor_types>);
static_assert(!rlhf::backend_has_tensor_types<each::no_tensor_types>);
static_assert(!rlhf::tensor_backend<each::not_owning>);
static_assert(rlhf::backend_has_tensor_types<each::not_owning> &&
              !rlhf::backend_tensors_are_owning<each::not_owning>);
static_assert(!rlhf::tensor_backend<each::index_not_owning>);
static_assert(!rlhf::backend_tensors_are_owning<each::index_not_owning>);
static_assert(!rlhf::tensor_backend<each::no_memory_space>);
static_assert(rlhf::backend_tensors_are_owning<each::no_memory_space> &&
              !rlhf::backend_has_memory_space<each::no_memory_space>);
static_assert(!rlhf::tensor_backend<each::no_data_access>);
static_assert(rlhf::backend_has_memory_space<each::no_data_access> &&
              !rlhf::backend_has_data_access<each::no_data_access>);
static_assert(!rlhf::tensor_backend<each::no_host_copies>);
static_assert(rlhf::backend_has_data_access<each::no_host_copies> &&
              !rlhf::backend_has_host_copies<each::no_host_copies>);
static_assert(!rlhf::tensor_backend<each::no_index_host_copies>);
static_assert(!rlhf::backend_has_host_copies<each::no_index_host_copies>);
static_assert(!rlhf::tensor_backend<each::no_parallel_for>);
static_assert(rlhf::backend_has_host_copies<each::no_parallel_for> &&
              !rlhf::backend_has_parallel_for<each::no_parallel_for>);

TEST_CASE("concept: the accepted and rejected types above are checked at compile time") {
  rlhf::assert_tensor_backend<full>();  // compiles: no diagnostic fires
  rlhf::assert_tensor_backend<each::all>();
  CHECK(rlhf::enable_tensor_backend<third_party_untagged>);
}
