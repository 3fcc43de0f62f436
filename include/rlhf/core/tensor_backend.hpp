// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The tensor-backend concept: what a type must provide for rlhf++'s algorithms to run on it.
//
// A backend is a stateless type with static member functions. It opts in by name and must
// pass a structural check. The required set is deliberately small (docs/backends.md):
//
//   using backend_category = rlhf::tensor_backend_tag;      // the opt-in
//   using tensor       = ...;   // owning float32, dense row-major, rank 1..4
//   using index_tensor = ...;   // owning int32, same rules (token ids, gather indices)
//   static constexpr bool host_accessible;                  // may host code deref data()?
//   static float* data(tensor&);            const float* data(const tensor&);
//   static std::int32_t* data(index_tensor&); const std::int32_t* data(const index_tensor&);
//   static void copy_from_host(std::span<const float>, tensor&);   (and int32)
//   static void copy_to_host(const tensor&, std::span<float>);     (and int32)
//   static void parallel_for(index_t n, F f);   // f(i) for i in [0, n), any order
//
// Every op in rlhf/ops/ has a generic implementation on these primitives; a backend
// overrides an op by defining a static member of the same name (see docs/backends.md).
#pragma once

#include <concepts>
#include <cstdint>
#include <span>
#include <type_traits>

#include "rlhf/core/config.hpp"
#include "rlhf/core/shape.hpp"

namespace rlhf {
inline namespace v0 {

/// The tag a backend names to opt in: `using backend_category = rlhf::tensor_backend_tag;`
struct tensor_backend_tag {};

/// Opt-in switch. True when B names the tag; a backend that cannot be edited may
/// specialise this variable to true instead.
template <class B>
inline constexpr bool enable_tensor_backend = requires {
  requires std::is_same_v<typename B::backend_category, tensor_backend_tag>;
};

namespace detail {

/// A functor of the shape parallel_for must accept; used only in the structural check.
struct parallel_for_probe {
  RLHF_HD void operator()(index_t) const {}
};

template <class T, class Value>
concept owning_tensor = std::movable<T> && std::default_initializable<T> &&
                        std::constructible_from<T, const shape&> &&
                        requires(T& t, const T& ct, const shape& s) {
                          { ct.shape() } -> std::convertible_to<const shape&>;
                          { ct.size() } -> std::convertible_to<index_t>;
                          t.reshape(s);
                        };

}  // namespace detail

// One concept per requirement, so that a failure names the missing piece.

template <class B>
concept backend_has_tensor_types = requires {
  typename B::tensor;
  typename B::index_tensor;
};

template <class B>
concept backend_tensors_are_owning =
    backend_has_tensor_types<B> && detail::owning_tensor<typename B::tensor, float> &&
    detail::owning_tensor<typename B::index_tensor, std::int32_t>;

/// `B::host_accessible` is a bool usable in a constant expression (`if constexpr` branches
/// on it): a non-constexpr `static bool`, or a `static const bool` initialised at run time,
/// does not qualify.
template <class B>
concept backend_has_memory_space = requires {
  { B::host_accessible } -> std::convertible_to<bool>;
  typename std::bool_constant<static_cast<bool>(B::host_accessible)>;  // a constant expression
};

template <class B>
concept backend_has_data_access =
    backend_has_tensor_types<B> &&
    requires(typename B::tensor& t, const typename B::tensor& ct,
             typename B::index_tensor& i, const typename B::index_tensor& ci) {
      { B::data(t) } -> std::same_as<float*>;
      { B::data(ct) } -> std::same_as<const float*>;
      { B::data(i) } -> std::same_as<std::int32_t*>;
      { B::data(ci) } -> std::same_as<const std::int32_t*>;
    };

template <class B>
concept backend_has_host_copies =
    backend_has_tensor_types<B> &&
    requires(typename B::tensor& t, const typename B::tensor& ct,
             typename B::index_tensor& i, const typename B::index_tensor& ci,
             std::span<const float> fin, std::span<float> fout,
             std::span<const std::int32_t> iin, std::span<std::int32_t> iout) {
      B::copy_from_host(fin, t);
      B::copy_to_host(ct, fout);
      B::copy_from_host(iin, i);
      B::copy_to_host(ci, iout);
    };

template <class B>
concept backend_has_parallel_for = requires(index_t n, detail::parallel_for_probe f) {
  B::parallel_for(n, f);
};

/// The concept every algorithm of rlhf++ is written against.
template <class B>
concept tensor_backend = enable_tensor_backend<B> && backend_tensors_are_owning<B> &&
                         backend_has_memory_space<B> && backend_has_data_access<B> &&
                         backend_has_host_copies<B> && backend_has_parallel_for<B>;

namespace detail {
template <class>
inline constexpr bool dependent_false = false;
}  // namespace detail

/// Called at every op's entry: a type that is not a backend gets exactly one sentence
/// naming the first requirement it misses (instead of a template-error novel).
template <class B>
constexpr void assert_tensor_backend() {
  if constexpr (!enable_tensor_backend<B>) {
    static_assert(detail::dependent_false<B>,
                  "rlhf: this type is not a tensor backend: it does not opt in. Add "
                  "`using backend_category = rlhf::tensor_backend_tag;` to it "
                  "(see docs/backends.md).");
  } else if constexpr (!backend_has_tensor_types<B>) {
    static_assert(detail::dependent_false<B>,
                  "rlhf: backend lacks the member types `tensor` (float32) and "
                  "`index_tensor` (int32).");
  } else if constexpr (!backend_tensors_are_owning<B>) {
    static_assert(detail::dependent_false<B>,
                  "rlhf: backend's tensor/index_tensor must be movable, default- and "
                  "rlhf::shape-constructible, and have shape(), size() and reshape(shape).");
  } else if constexpr (!backend_has_memory_space<B>) {
    static_assert(detail::dependent_false<B>,
                  "rlhf: backend lacks `static constexpr bool host_accessible` (may host "
                  "code dereference data()?).");
  } else if constexpr (!backend_has_data_access<B>) {
    static_assert(detail::dependent_false<B>,
                  "rlhf: backend lacks `static float* data(tensor&)` / `const float* "
                  "data(const tensor&)` and the int32 overloads for index_tensor.");
  } else if constexpr (!backend_has_host_copies<B>) {
    static_assert(detail::dependent_false<B>,
                  "rlhf: backend lacks `copy_from_host(std::span<const T>, tensor&)` / "
                  "`copy_to_host(const tensor&, std::span<T>)` for float and int32.");
  } else if constexpr (!backend_has_parallel_for<B>) {
    static_assert(detail::dependent_false<B>,
                  "rlhf: backend lacks `static void parallel_for(rlhf::index_t n, F f)` "
                  "(calls f(i) for every i in [0, n)).");
  }
}

/// Waits for queued work where the backend is asynchronous (GPU); no-op otherwise.
template <class B>
void synchronize() {
  if constexpr (requires { B::synchronize(); }) B::synchronize();
}

}  // namespace v0
}  // namespace rlhf
