// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The op overrides a backend may provide, each defined once: the test an op of rlhf/ops/
// makes before calling B::<op> instead of its generic implementation, and the way a backend
// pins the overrides it means to provide so that a misspelt name or a signature that does
// not accept the call fails to compile instead of silently falling back (docs/backends.md,
// section 5):
//
//   struct my_backend { ... static void fill(tensor&, float); static void gemm(...); };
//   RLHF_BACKEND_OVERRIDES(my_backend, fill, gemm);
//
// For each op there are three pieces, kept side by side below:
//
//   rlhf::detail::has_<op>_override<B, ...>  the requires-expression of the dispatch, with
//                                            the argument types of the call the op makes;
//   rlhf::overrides::<op>                    a tag whose provided_by<B> evaluates that
//                                            concept on every call shape the op can make
//                                            (every arity of transform and for_each);
//   RLHF_DETAIL_OVERRIDE_SIGNATURE_<op>      the signature quoted in the pin's message.
#pragma once

#include <cstdint>

#include "rlhf/core/config.hpp"

namespace rlhf {
inline namespace v0 {

struct gemm_desc;  // rlhf/ops/gemm.hpp

namespace detail {

/// A functor accepting any arguments, standing for the op's functor in the pin checks of
/// transform, for_each, transform_rows and transform_cols. Only used unevaluated.
struct override_probe_fn {
  template <class... A>
  RLHF_HD float operator()(const A&...) const {
    return 0.0f;
  }
};

// ---- the dispatch tests, one per overridable op ------------------------------------------
// ops::<op> calls B::<op> exactly when its concept holds for the argument types of the call.

/// ops::fill calls `B::fill(t, value)`.
template <class B>
concept has_fill_override = requires(typename B::tensor& t, float value) {
  B::fill(t, value);
};

/// ops::transform calls `B::transform(out, f, in...)`, In... being the backend's tensor.
template <class B, class F, class... In>
concept has_transform_override = requires(typename B::tensor& out, F f, const In&... in) {
  B::transform(out, f, in...);
};

/// ops::for_each calls `B::for_each(f, t...)`, each T the tensor or the const tensor.
template <class B, class F, class... T>
concept has_for_each_override = requires(F f, T&... t) {
  B::for_each(f, t...);
};

/// ops::transform_rows calls `B::transform_rows(out, f, x, v)`.
template <class B, class F>
concept has_transform_rows_override = requires(typename B::tensor& out, F f,
                                               const typename B::tensor& x,
                                               const typename B::tensor& v) {
  B::transform_rows(out, f, x, v);
};

/// ops::transform_cols calls `B::transform_cols(out, f, x, v)`.
template <class B, class F>
concept has_transform_cols_override = requires(typename B::tensor& out, F f,
                                               const typename B::tensor& x,
                                               const typename B::tensor& v) {
  B::transform_cols(out, f, x, v);
};

/// ops::row_sum calls `B::row_sum(x, out)`.
template <class B>
concept has_row_sum_override = requires(const typename B::tensor& x, typename B::tensor& out) {
  B::row_sum(x, out);
};

/// ops::row_max calls `B::row_max(x, out)`.
template <class B>
concept has_row_max_override = requires(const typename B::tensor& x, typename B::tensor& out) {
  B::row_max(x, out);
};

/// ops::row_logsumexp calls `B::row_logsumexp(x, out)`.
template <class B>
concept has_row_logsumexp_override = requires(const typename B::tensor& x,
                                              typename B::tensor& out) {
  B::row_logsumexp(x, out);
};

/// ops::row_masked_mean calls `B::row_masked_mean(x, mask, out)`.
template <class B>
concept has_row_masked_mean_override = requires(const typename B::tensor& x,
                                                const typename B::tensor& mask,
                                                typename B::tensor& out) {
  B::row_masked_mean(x, mask, out);
};

/// ops::col_sum calls `B::col_sum(x, out)`.
template <class B>
concept has_col_sum_override = requires(const typename B::tensor& x, typename B::tensor& out) {
  B::col_sum(x, out);
};

/// ops::softmax_rows calls `B::softmax_rows(x, out)`.
template <class B>
concept has_softmax_rows_override = requires(const typename B::tensor& x, typename B::tensor& out) {
  B::softmax_rows(x, out);
};

/// ops::log_softmax_rows calls `B::log_softmax_rows(x, out)`.
template <class B>
concept has_log_softmax_rows_override = requires(const typename B::tensor& x,
                                                 typename B::tensor& out) {
  B::log_softmax_rows(x, out);
};

/// ops::gather_last calls `B::gather_last(x, index, out)`.
template <class B>
concept has_gather_last_override = requires(const typename B::tensor& x,
                                            const typename B::index_tensor& index,
                                            typename B::tensor& out) {
  B::gather_last(x, index, out);
};

/// ops::gemm, ops::gemm_batched and ops::gemm_strided call `B::gemm(d, a, b, c)`.
template <class B>
concept has_gemm_override = requires(const gemm_desc& d, const typename B::tensor& a,
                                     const typename B::tensor& b, typename B::tensor& c) {
  B::gemm(d, a, b, c);
};

/// ops::reverse_linear_scan_rows calls `B::reverse_linear_scan_rows(a, b, y)`. rl::gae
/// also picks its implementation by this test (rlhf/rl/gae.hpp).
template <class B>
concept has_reverse_linear_scan_rows_override = requires(const typename B::tensor& a,
                                                         const typename B::tensor& b,
                                                         typename B::tensor& y) {
  B::reverse_linear_scan_rows(a, b, y);
};

/// ops::random_uniform calls `B::random_uniform(t, seed, stream, first_block)`.
template <class B>
concept has_random_uniform_override = requires(typename B::tensor& t, std::uint64_t seed,
                                               std::uint64_t stream, std::uint64_t first_block) {
  B::random_uniform(t, seed, stream, first_block);
};

/// ops::random_normal calls `B::random_normal(t, seed, stream, first_block)`.
template <class B>
concept has_random_normal_override = requires(typename B::tensor& t, std::uint64_t seed,
                                              std::uint64_t stream, std::uint64_t first_block) {
  B::random_normal(t, seed, stream, first_block);
};

/// The pin of transform: ops::transform calls B::transform with 1, 2, 3 and 4 inputs.
template <class B, class T, class F = override_probe_fn>
concept transform_pinned = has_transform_override<B, F, T> && has_transform_override<B, F, T, T> &&
    has_transform_override<B, F, T, T, T> && has_transform_override<B, F, T, T, T, T>;

/// The pin of for_each: ops::for_each calls B::for_each with 1 to 5 non-const tensors, and
/// with one non-const tensor followed by 1 to 4 const ones.
template <class B, class T, class C = const T, class F = override_probe_fn>
concept for_each_pinned = has_for_each_override<B, F, T> && has_for_each_override<B, F, T, T> &&
    has_for_each_override<B, F, T, T, T> && has_for_each_override<B, F, T, T, T, T> &&
    has_for_each_override<B, F, T, T, T, T, T> && has_for_each_override<B, F, T, C> &&
    has_for_each_override<B, F, T, C, C> && has_for_each_override<B, F, T, C, C, C> &&
    has_for_each_override<B, F, T, C, C, C, C>;

}  // namespace detail

/// One tag per overridable op, named as the op. `provided_by<B>` is true when every call
/// the op can make reaches B's override (so the op never takes its generic path on B).
/// Used through RLHF_BACKEND_OVERRIDES or rlhf::provides_overrides.
namespace overrides {

/// `static void fill(tensor& t, float value)`.
struct fill {
  /// Whether ops::fill calls B::fill.
  template <class B>
  static constexpr bool provided_by = detail::has_fill_override<B>;
};

/// `template <class F, class... In> static void transform(tensor& out, F f, const In&... in)`
/// for 1 to 4 inputs.
struct transform {
  /// Whether ops::transform calls B::transform with 1, 2, 3 and 4 inputs.
  template <class B>
  static constexpr bool provided_by = detail::transform_pinned<B, typename B::tensor>;
};

/// `template <class F, class... T> static void for_each(F f, T&... t)` for 1 to 5 tensors,
/// each the tensor or the const tensor.
struct for_each {
  /// Whether ops::for_each calls B::for_each with 1 to 5 non-const tensors, and with one
  /// non-const tensor followed by 1 to 4 const ones.
  template <class B>
  static constexpr bool provided_by = detail::for_each_pinned<B, typename B::tensor>;
};

/// `template <class F> static void transform_rows(tensor& out, F f, const tensor& x,
/// const tensor& v)`.
struct transform_rows {
  /// Whether ops::transform_rows calls B::transform_rows.
  template <class B>
  static constexpr bool provided_by =
      detail::has_transform_rows_override<B, detail::override_probe_fn>;
};

/// `template <class F> static void transform_cols(tensor& out, F f, const tensor& x,
/// const tensor& v)`.
struct transform_cols {
  /// Whether ops::transform_cols calls B::transform_cols.
  template <class B>
  static constexpr bool provided_by =
      detail::has_transform_cols_override<B, detail::override_probe_fn>;
};

/// `static void row_sum(const tensor& x, tensor& out)`.
struct row_sum {
  /// Whether ops::row_sum calls B::row_sum.
  template <class B>
  static constexpr bool provided_by = detail::has_row_sum_override<B>;
};

/// `static void row_max(const tensor& x, tensor& out)`.
struct row_max {
  /// Whether ops::row_max calls B::row_max.
  template <class B>
  static constexpr bool provided_by = detail::has_row_max_override<B>;
};

/// `static void row_logsumexp(const tensor& x, tensor& out)`.
struct row_logsumexp {
  /// Whether ops::row_logsumexp calls B::row_logsumexp.
  template <class B>
  static constexpr bool provided_by = detail::has_row_logsumexp_override<B>;
};

/// `static void row_masked_mean(const tensor& x, const tensor& mask, tensor& out)`.
struct row_masked_mean {
  /// Whether ops::row_masked_mean calls B::row_masked_mean.
  template <class B>
  static constexpr bool provided_by = detail::has_row_masked_mean_override<B>;
};

/// `static void col_sum(const tensor& x, tensor& out)`.
struct col_sum {
  /// Whether ops::col_sum calls B::col_sum.
  template <class B>
  static constexpr bool provided_by = detail::has_col_sum_override<B>;
};

/// `static void softmax_rows(const tensor& x, tensor& out)`.
struct softmax_rows {
  /// Whether ops::softmax_rows calls B::softmax_rows.
  template <class B>
  static constexpr bool provided_by = detail::has_softmax_rows_override<B>;
};

/// `static void log_softmax_rows(const tensor& x, tensor& out)`.
struct log_softmax_rows {
  /// Whether ops::log_softmax_rows calls B::log_softmax_rows.
  template <class B>
  static constexpr bool provided_by = detail::has_log_softmax_rows_override<B>;
};

/// `static void gather_last(const tensor& x, const index_tensor& index, tensor& out)`.
struct gather_last {
  /// Whether ops::gather_last calls B::gather_last.
  template <class B>
  static constexpr bool provided_by = detail::has_gather_last_override<B>;
};

/// `static void gemm(const rlhf::gemm_desc& d, const tensor& a, const tensor& b,
/// tensor& c)`, the override of all three GEMM forms.
struct gemm {
  /// Whether ops::gemm, ops::gemm_batched and ops::gemm_strided call B::gemm.
  template <class B>
  static constexpr bool provided_by = detail::has_gemm_override<B>;
};

/// `static void reverse_linear_scan_rows(const tensor& a, const tensor& b, tensor& y)`.
/// Also decides rl::gae's implementation (three passes around the scan with the override,
/// one fused recurrence on host memory without it).
struct reverse_linear_scan_rows {
  /// Whether ops::reverse_linear_scan_rows calls B::reverse_linear_scan_rows.
  template <class B>
  static constexpr bool provided_by = detail::has_reverse_linear_scan_rows_override<B>;
};

/// `static void random_uniform(tensor& t, std::uint64_t seed, std::uint64_t stream,
/// std::uint64_t first_block)`.
struct random_uniform {
  /// Whether ops::random_uniform calls B::random_uniform.
  template <class B>
  static constexpr bool provided_by = detail::has_random_uniform_override<B>;
};

/// `static void random_normal(tensor& t, std::uint64_t seed, std::uint64_t stream,
/// std::uint64_t first_block)`.
struct random_normal {
  /// Whether ops::random_normal calls B::random_normal.
  template <class B>
  static constexpr bool provided_by = detail::has_random_normal_override<B>;
};

}  // namespace overrides

/// True when B provides every override named by the tags (rlhf::overrides::fill, ...):
/// the ops concerned never take their generic path on B. RLHF_BACKEND_OVERRIDES states the
/// same with one message per missing override.
template <class B, class... Overrides>
concept provides_overrides = (Overrides::template provided_by<B> && ...);

namespace detail {

/// True when B overrides at least one op (of any signature the op would call).
template <class B>
inline constexpr bool has_any_override =
    has_fill_override<B> || has_transform_override<B, override_probe_fn, typename B::tensor> ||
    has_for_each_override<B, override_probe_fn, typename B::tensor> ||
    has_transform_rows_override<B, override_probe_fn> ||
    has_transform_cols_override<B, override_probe_fn> || has_row_sum_override<B> ||
    has_row_max_override<B> || has_row_logsumexp_override<B> || has_row_masked_mean_override<B> ||
    has_col_sum_override<B> || has_softmax_rows_override<B> || has_log_softmax_rows_override<B> ||
    has_gather_last_override<B> || has_gemm_override<B> ||
    has_reverse_linear_scan_rows_override<B> || has_random_uniform_override<B> ||
    has_random_normal_override<B>;

}  // namespace detail
}  // namespace v0
}  // namespace rlhf

// ---- the signatures quoted by RLHF_BACKEND_OVERRIDES --------------------------------------
//! \cond RLHF_INTERNAL

#define RLHF_DETAIL_OVERRIDE_SIGNATURE_fill "static void fill(tensor&, float)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_transform \
  "template <class F, class... In> static void transform(tensor&, F, const In&...)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_for_each \
  "template <class F, class... T> static void for_each(F, T&...)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_transform_rows \
  "template <class F> static void transform_rows(tensor&, F, const tensor&, const tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_transform_cols \
  "template <class F> static void transform_cols(tensor&, F, const tensor&, const tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_row_sum "static void row_sum(const tensor&, tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_row_max "static void row_max(const tensor&, tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_row_logsumexp \
  "static void row_logsumexp(const tensor&, tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_row_masked_mean \
  "static void row_masked_mean(const tensor&, const tensor&, tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_col_sum "static void col_sum(const tensor&, tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_softmax_rows \
  "static void softmax_rows(const tensor&, tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_log_softmax_rows \
  "static void log_softmax_rows(const tensor&, tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_gather_last \
  "static void gather_last(const tensor&, const index_tensor&, tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_gemm \
  "static void gemm(const rlhf::gemm_desc&, const tensor&, const tensor&, tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_reverse_linear_scan_rows \
  "static void reverse_linear_scan_rows(const tensor&, const tensor&, tensor&)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_random_uniform \
  "static void random_uniform(tensor&, std::uint64_t, std::uint64_t, std::uint64_t)"
#define RLHF_DETAIL_OVERRIDE_SIGNATURE_random_normal \
  "static void random_normal(tensor&, std::uint64_t, std::uint64_t, std::uint64_t)"
//! \endcond

// ---- RLHF_BACKEND_OVERRIDES ---------------------------------------------------------------

/// Pins the overrides a backend means to provide: one static_assert per name (names as in
/// rlhf::overrides, 1 to 17 of them), each failing with "rlhf: <backend> declares override
/// `<name>` but no `<signature>` matches; the generic path would be used" when the op would
/// not call the backend's member. At namespace scope after the backend is complete:
///
///   RLHF_BACKEND_OVERRIDES(my_backend, fill, row_sum, gemm);
///
/// A backend type whose name has a comma (a template with several arguments) needs an alias.
#define RLHF_BACKEND_OVERRIDES(backend, ...)                                                  \
  RLHF_DETAIL_OVERRIDES_CAT(RLHF_DETAIL_OVERRIDES_, RLHF_DETAIL_OVERRIDES_COUNT(__VA_ARGS__)) \
  (backend, __VA_ARGS__) static_assert(true, "")

//! \cond RLHF_INTERNAL
#define RLHF_DETAIL_OVERRIDE_PIN(backend, name)                    \
  static_assert(::rlhf::overrides::name::provided_by<backend>,     \
                "rlhf: " #backend " declares override `" #name     \
                "` but no `" RLHF_DETAIL_OVERRIDE_SIGNATURE_##name \
                "` matches; the generic path would "               \
                "be used");

#define RLHF_DETAIL_OVERRIDES_CAT(a, b) RLHF_DETAIL_OVERRIDES_CAT2(a, b)
#define RLHF_DETAIL_OVERRIDES_CAT2(a, b) a##b
#define RLHF_DETAIL_OVERRIDES_COUNT(...)                                                         \
  RLHF_DETAIL_OVERRIDES_NTH(__VA_ARGS__, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, \
                            1, 0)
#define RLHF_DETAIL_OVERRIDES_NTH(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, \
                                  _15, _16, _17, n, ...)                                       \
  n
#define RLHF_DETAIL_OVERRIDES_1(b, x) RLHF_DETAIL_OVERRIDE_PIN(b, x)
#define RLHF_DETAIL_OVERRIDES_2(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_1(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_3(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_2(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_4(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_3(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_5(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_4(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_6(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_5(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_7(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_6(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_8(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_7(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_9(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_8(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_10(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_9(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_11(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_10(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_12(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_11(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_13(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_12(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_14(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_13(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_15(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_14(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_16(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_15(b, __VA_ARGS__)
#define RLHF_DETAIL_OVERRIDES_17(b, x, ...) \
  RLHF_DETAIL_OVERRIDE_PIN(b, x) RLHF_DETAIL_OVERRIDES_16(b, __VA_ARGS__)
//! \endcond
