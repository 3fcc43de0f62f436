// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Generalized Advantage Estimation (Schulman et al. 2016) over the real tokens of each row.
// docs/algorithms/gae.md.
//
// Let next(t) be the next real position after t in the row (mask ≠ 0), if any. Then on real
// positions
//   δ_t = r_t + γ·V_next(t) - V_t          (V_next = 0 past the row's last real token)
//   A_t = δ_t + γλ·A_next(t)               (A_next = 0 past the last real token)
//   returns_t = A_t + V_t
// and on masked positions A = returns = 0 (their rewards and values are ignored).
//
// So masked positions are skipped: with right padding this is TRL's loop exactly (TRL
// zeroes the padded values and rewards first); left padding and prompt zeros before the
// completion give the same numbers as the completion alone; a hole inside a row is
// stepped over (the recurrence links the real tokens on either side). The mask is a
// selector: weights do not scale anything here.
//
// Implementation. A is the reverse linear scan y_t = b_t + a_t·y_{t+1} with
//   real t:   a_t = γλ, b_t = δ_t;     masked t: a_t = 1, b_t = 0 (the carry passes through).
// Which implementation runs is picked by whether the backend overrides
// ops::reverse_linear_scan_rows (docs/backends.md, section 5). With the override (a GPU
// backend's parallel scan) that is 3 passes: (1) a and δ per row, (2) the scan, (3) A and
// returns with the masked positions zeroed. On a backend without its own scan (the CPU
// backends) the generic scan would be a serial loop per row anyway, so the recurrence runs
// fused in one pass over blocks of 8 rows interleaved (8 independent chains per thread
// instead of one latency-bound chain): r, V and m read once, A and returns written once.
// Both paths are tested against the reference (tests/algorithms/test_gae.cpp runs a backend with a scan override).
#pragma once

#include <cmath>
#include <vector>

#include "rlhf/core/overrides.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/reductions.hpp"
#include "rlhf/ops/scan.hpp"

namespace rlhf {
inline namespace v0 {
namespace rl {

/// TRL PPOConfig names and defaults.
struct gae_config {
  float gamma = 1.0f;  ///< discount
  float lam = 0.95f;   ///< GAE λ
};

/// The tensors gae reads.
template <class B>
struct gae_inputs {
  const typename B::tensor& rewards;  ///< (N, T) per-token rewards (rl::ppo_token_rewards)
  const typename B::tensor& values;   ///< (N, T) value-head outputs V_t
  const typename B::tensor& mask;     ///< (N, T) response mask (non-zero = real token)
};

/// What gae returns.
template <class B>
struct gae_result {
  typename B::tensor advantages;  ///< (N, T), 0 on masked positions
  typename B::tensor returns;     ///< (N, T) A + V, 0 on masked positions
};

namespace detail {

template <class B>
void check_gae(const gae_inputs<B>& in, const gae_config& cfg, const typename B::tensor& adv,
               const typename B::tensor& ret) {
  constexpr const char* fn = "gae";
  check_rank(fn, "rewards", in.rewards.shape(), 2, 2);
  check_same_shape(fn, "rewards", in.rewards.shape(), "values", in.values.shape());
  check_same_shape(fn, "rewards", in.rewards.shape(), "mask", in.mask.shape());
  check_same_shape(fn, "rewards", in.rewards.shape(), "advantages", adv.shape());
  check_same_shape(fn, "rewards", in.rewards.shape(), "returns", ret.shape());
  if (in.rewards.shape()[0] == 0) throw shape_error("gae: batch is empty (rewards has 0 rows)");
  check_config(cfg.gamma >= 0.0f && cfg.gamma <= 1.0f, fn, "gamma", "in [0, 1]", cfg.gamma);
  check_config(cfg.lam >= 0.0f && cfg.lam <= 1.0f, fn, "lam", "in [0, 1]", cfg.lam);
  ops::check_finite<B>(fn, "rewards", in.rewards);
  ops::check_finite<B>(fn, "values", in.values);
  ops::check_mask<B>(fn, "mask", in.mask);
}

/// Whether B brings its own scan (a GPU backend's parallel scan): the very test
/// ops::reverse_linear_scan_rows dispatches on (rlhf/core/overrides.hpp), so a backend that
/// pins `reverse_linear_scan_rows` with RLHF_BACKEND_OVERRIDES also gets the three-pass path
/// here; without the override, host memory takes the fused loop.
template <class B>
concept has_scan_override = rlhf::detail::has_reverse_linear_scan_rows_override<B>;

}  // namespace detail

/// GAE into caller-owned (N, T) outputs (no allocation besides one (N, T) scratch tensor).
template <class B>
void gae(const gae_inputs<B>& in, const gae_config& cfg, typename B::tensor& advantages,
         typename B::tensor& returns) {
  assert_tensor_backend<B>();
  detail::check_gae<B>(in, cfg, advantages, returns);
  const index_t n = in.rewards.shape()[0], t = in.rewards.shape()[1];
  if (t == 0) return;
  const float* r = B::data(in.rewards);
  const float* v = B::data(in.values);
  const float* m = B::data(in.mask);
  float* adv = B::data(advantages);
  float* ret = B::data(returns);
  const float gamma = cfg.gamma, gl = cfg.gamma * cfg.lam;

  if constexpr (!detail::has_scan_override<B> && B::host_accessible) {
    // No scan of its own: the generic scan would be a serial loop per row anyway, so the
    // whole recurrence runs in one pass over blocks of rows (reads r, V, m once, writes A
    // and returns once).
    // One row per task, walked from its end. The only serial dependency is the carry's
    // multiply-add (a_t = 1, b_t = 0 on masked positions instead of a branch or a select in
    // the chain); V_next is tracked as the loop goes, so holes need nothing special. Rows
    // are not interleaved: rows T floats apart (4 KiB at T = 1024) share L1 sets, and more
    // than a few concurrent row streams thrash them.
    B::parallel_for(n, RLHF_LAMBDA(index_t i) {
      const float* ri = r + i * t;
      const float* vi = v + i * t;
      const float* mi = m + i * t;
      float* ai = adv + i * t;
      float* reti = ret + i * t;
      float carry = 0.0f, vn = 0.0f;
      for (index_t j = t - 1; j >= 0; --j) {
        const bool real = mi[j] != 0.0f;
        const float vj = vi[j];
        const float coef_j = real ? gl : 1.0f;
        const float delta = real ? ri[j] + gamma * vn - vj : 0.0f;
        carry = delta + coef_j * carry;
        vn = real ? vj : vn;
        ai[j] = real ? carry : 0.0f;
        reti[j] = real ? carry + vj : 0.0f;
      }
    });
    return;
  }

  typename B::tensor coef(shape{n, t});  // a of the scan
  float* a = B::data(coef);
  // Pass 1, per row from the end: a and δ, with V_next = the value of the next real token
  // (tracked as the loop goes, so holes need nothing special). δ lives in `returns` until
  // pass 3.
  B::parallel_for(n, RLHF_LAMBDA(index_t i) {
    float vn = 0.0f;
    for (index_t j = t - 1; j >= 0; --j) {
      const index_t q = i * t + j;
      const bool real = m[q] != 0.0f;
      a[q] = real ? gl : 1.0f;
      ret[q] = real ? r[q] + gamma * vn - v[q] : 0.0f;
      vn = real ? v[q] : vn;
    }
  });
  // Pass 2: A_t = δ_t + a_t·A_{t+1} (masked positions carry A of the next real token).
  ops::reverse_linear_scan_rows<B>(coef, returns, advantages);
  // Pass 3: zero the masked positions, returns = A + V.
  ops::for_each<B>(
      [] RLHF_HD(float& av, float& rv, const float& vv, const float& mv) {
        const bool real = mv != 0.0f;
        av = real ? av : 0.0f;
        rv = real ? av + vv : 0.0f;
      },
      advantages, returns, in.values, in.mask);
}

/// GAE, allocating the outputs.
template <class B>
gae_result<B> gae(const gae_inputs<B>& in, const gae_config& cfg = {}) {
  using tensor = typename B::tensor;
  gae_result<B> out{tensor(in.rewards.shape()), tensor(in.rewards.shape())};
  gae<B>(in, cfg, out.advantages, out.returns);
  return out;
}

}  // namespace rl
}  // namespace v0
}  // namespace rlhf
