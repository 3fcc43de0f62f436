// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Generic elementwise implementations on B::data + B::parallel_for.
#pragma once

#include <cstddef>

#include "rlhf/core/config.hpp"

namespace rlhf {
inline namespace v0 {
namespace ops {
namespace detail {

template <class B>
void generic_fill(typename B::tensor& t, float value) {
  float* p = B::data(t);
  B::parallel_for(t.size(), RLHF_LAMBDA(index_t i) { p[i] = value; });
}

// Arity is spelled out (no std::tuple/std::apply) so the lambdas compile as device code.
template <class B, class F, class... In>
void generic_transform(typename B::tensor& out, F f, const In&... in) {
  float* o = B::data(out);
  const float* p[] = {B::data(in)...};
  constexpr std::size_t n_in = sizeof...(In);
  const float* p0 = p[0];
  const float* p1 = n_in > 1 ? p[n_in > 1 ? 1 : 0] : nullptr;
  const float* p2 = n_in > 2 ? p[n_in > 2 ? 2 : 0] : nullptr;
  const float* p3 = n_in > 3 ? p[n_in > 3 ? 3 : 0] : nullptr;
  if constexpr (n_in == 1) {
    B::parallel_for(out.size(), RLHF_LAMBDA(index_t i) { o[i] = f(p0[i]); });
  } else if constexpr (n_in == 2) {
    B::parallel_for(out.size(), RLHF_LAMBDA(index_t i) { o[i] = f(p0[i], p1[i]); });
  } else if constexpr (n_in == 3) {
    B::parallel_for(out.size(), RLHF_LAMBDA(index_t i) { o[i] = f(p0[i], p1[i], p2[i]); });
  } else {
    B::parallel_for(out.size(),
                    RLHF_LAMBDA(index_t i) { o[i] = f(p0[i], p1[i], p2[i], p3[i]); });
  }
}

template <class B, class F, class T0>
void generic_for_each(F f, T0& t0) {
  auto p0 = B::data(t0);
  B::parallel_for(t0.size(), RLHF_LAMBDA(index_t i) { f(p0[i]); });
}
template <class B, class F, class T0, class T1>
void generic_for_each(F f, T0& t0, T1& t1) {
  auto p0 = B::data(t0);
  auto p1 = B::data(t1);
  B::parallel_for(t0.size(), RLHF_LAMBDA(index_t i) { f(p0[i], p1[i]); });
}
template <class B, class F, class T0, class T1, class T2>
void generic_for_each(F f, T0& t0, T1& t1, T2& t2) {
  auto p0 = B::data(t0);
  auto p1 = B::data(t1);
  auto p2 = B::data(t2);
  B::parallel_for(t0.size(), RLHF_LAMBDA(index_t i) { f(p0[i], p1[i], p2[i]); });
}
template <class B, class F, class T0, class T1, class T2, class T3>
void generic_for_each(F f, T0& t0, T1& t1, T2& t2, T3& t3) {
  auto p0 = B::data(t0);
  auto p1 = B::data(t1);
  auto p2 = B::data(t2);
  auto p3 = B::data(t3);
  B::parallel_for(t0.size(), RLHF_LAMBDA(index_t i) { f(p0[i], p1[i], p2[i], p3[i]); });
}
template <class B, class F, class T0, class T1, class T2, class T3, class T4>
void generic_for_each(F f, T0& t0, T1& t1, T2& t2, T3& t3, T4& t4) {
  auto p0 = B::data(t0);
  auto p1 = B::data(t1);
  auto p2 = B::data(t2);
  auto p3 = B::data(t3);
  auto p4 = B::data(t4);
  B::parallel_for(t0.size(),
                  RLHF_LAMBDA(index_t i) { f(p0[i], p1[i], p2[i], p3[i], p4[i]); });
}

template <class B, class F>
void generic_transform_rows(typename B::tensor& out, F f, const typename B::tensor& x,
                            const typename B::tensor& v) {
  float* o = B::data(out);
  const float* xp = B::data(x);
  const float* vp = B::data(v);
  const index_t cols = x.shape().cols();
  B::parallel_for(x.size(), RLHF_LAMBDA(index_t i) { o[i] = f(xp[i], vp[i / cols]); });
}

template <class B, class F>
void generic_transform_cols(typename B::tensor& out, F f, const typename B::tensor& x,
                            const typename B::tensor& v) {
  float* o = B::data(out);
  const float* xp = B::data(x);
  const float* vp = B::data(v);
  const index_t cols = x.shape().cols();
  B::parallel_for(x.size(), RLHF_LAMBDA(index_t i) { o[i] = f(xp[i], vp[i % cols]); });
}

}  // namespace detail
}  // namespace ops
}  // namespace v0
}  // namespace rlhf
