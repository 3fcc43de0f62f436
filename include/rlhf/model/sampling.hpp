// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Token selection for generation (docs/model.md, "Sampling"): one next token per row of a
// (N, V) logits tensor by greedy, temperature, top-k and top-p (nucleus) sampling, with the
// log-prob PPO needs as its "old" log-prob; and the host-side bookkeeping of a batched
// generation (stop tokens, max new tokens, PAD after the end).
//
//   sample_tokens<B>(logits, cfg, step, row_ids | row_offset, tokens, logprobs)
//   generation_state  per row: finished flag and length; update(tokens) after each step
//
// Semantics follow transformers' warpers, applied in its order (temperature, top-k, top-p):
//   u       = logits / τ                                   (τ = cfg.temperature)
//   top-k:  keep u_v >= the k-th largest u (with multiplicity); ties at it are kept, as
//           TopKLogitsWarper's `scores < topk(scores, k).values[-1]` removes only smaller
//   top-p:  over the top-k survivors with p = softmax(u restricted to them), keep v iff the
//           mass of the survivors with larger u is < top_p. That is TopPLogitsWarper's rule
//           (sort ascending, remove where cumsum <= 1 - top_p, keep the largest): the
//           ascending cumsum at v is 1 - (mass above v). Ties at the threshold are all kept
//           (transformers' unstable sort may split them); the argmax is always kept.
//   draw:   inverse CDF, in vocabulary order, over the surviving e^(u - max), with one
//           Philox uniform per row keyed by (seed, row id, step)
//   greedy: temperature 0: the argmax (the first one on ties, as torch.argmax)
//
// The returned logprob is log softmax(logits / τ)[token] over the WHOLE vocabulary — not
// renormalised over the top-k/top-p survivors — because that is what PPO's old log-probs
// are (TRL recomputes them from logits / τ without the warpers), and what
// ops::token_logprobs gives with the same temperature. Under greedy (τ = 0) it is
// log softmax(logits)[token] (τ = 1).
//
// Algorithm per row (one task of B::parallel_for, no allocation, so it runs on a GPU
// backend): the thresholds are found by bisection on the order of the float values (their
// bits mapped to monotone uint32 keys), so neither sort nor scratch is needed:
//   pass 1        min and max keys, NaN/Inf probe                              2·V
//   pass 2        Σ e^(u - max) (the logprob's normaliser)                     V exps
//   greedy        first index of the max                                       <= V
//   top-k         largest key K with #{key(u) >= K} >= k: <= 32 counting passes  32·V
//   top-p         smallest key K in [top-k threshold, max] with mass(key(u) > K) <
//                 top_p · mass(survivors): <= 32 passes of masked exp sums     32·V exps
//   draw          block sums (256 tokens) of the survivors' e^(u - max) until the running
//                 sum passes U · mass(survivors), then a scan of that block     V + 256 exps
// so O(V) for plain sampling and O(34·V) with top-k and/or top-p, independent of k. Each
// bisection ends on a key that belongs to an element, so the thresholds are exact logit
// values; the only rounding is in the float sums of the top-p test (a token whose
// mass-above equals top_p to within float rounding may fall either way, as in transformers).
//
// A row holding NaN or ±Inf (after dividing by τ) is a data_error naming the row, detected
// after the kernel from the NaN it leaves in `logprobs` (like ops/logprobs.hpp). Tokens that
// must never be drawn are therefore given a large negative finite logit, not -inf.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/detail/logprob_kernels.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// How the next token is chosen (transformers' GenerationConfig names and "off" values).
struct sampling_config {
  float temperature = 1.0f;  ///< τ >= 0; 0 = greedy (top_k and top_p are then ignored).
  index_t top_k = 0;         ///< Keep the k most likely tokens (ties kept); 0 = off.
  float top_p = 1.0f;        ///< Nucleus mass in (0, 1]; 1 = off.
  std::uint64_t seed = 0;    ///< Philox key; draws are keyed by (seed, row id, step).
};

/// config_error naming the field when a value is outside its domain.
inline void validate(const sampling_config& cfg, std::string_view fn = "sampling_config") {
  check_config(std::isfinite(cfg.temperature) && cfg.temperature >= 0.0f, fn, "temperature",
               "finite and >= 0 (0 = greedy)", cfg.temperature);
  check_config(cfg.top_k >= 0, fn, "top_k", ">= 0 (0 = off)", cfg.top_k);
  check_config(std::isfinite(cfg.top_p) && cfg.top_p > 0.0f && cfg.top_p <= 1.0f, fn,
               "top_p", "in (0, 1] (1 = off)", cfg.top_p);
}

/// The Philox stream of a row: the row id with a tag in the high word, so that sampling
/// never shares counters with other users of the same seed that number streams from 0.
RLHF_HD inline std::uint64_t sampling_stream(std::uint64_t row_id) {
  return row_id ^ (std::uint64_t{0x73616d70u} << 32);  // "samp"
}

/// The uniform [0, 1) that decides row `row_id`'s token at `step`: block `step` of the
/// row's stream, first word. A pure function of (seed, row id, step).
RLHF_HD inline float sampling_uniform(std::uint64_t seed, std::uint64_t row_id,
                                      std::uint64_t step) {
  return philox_uniform(seed, sampling_stream(row_id), step, 0);
}

namespace detail {

/// Monotone map of finite floats to uint32: a < b  <=>  key(a) < key(b), and -0, +0 share
/// a key (x + 0 turns -0 into +0), so comparing keys is comparing values. Integer
/// comparisons let GCC vectorise the masked loops below (it will not if-convert float
/// comparisons under its default -ftrapping-math).
RLHF_HD RLHF_ALWAYS_INLINE std::uint32_t order_key(float x) {
  const auto b = static_cast<std::uint32_t>(ops::detail::float_bits(x + 0.0f));
  const std::uint32_t flip = static_cast<std::uint32_t>(-static_cast<std::int32_t>(b >> 31));
  return b ^ (flip | 0x80000000u);  // negative: all bits flipped; positive: sign bit set
}
RLHF_HD RLHF_ALWAYS_INLINE float key_value(std::uint32_t k) {
  const std::uint32_t b = (k & 0x80000000u) != 0u ? (k & 0x7fffffffu) : ~k;
  return ops::detail::bits_float(static_cast<std::int32_t>(b));
}
/// x where `keep`, else +0 (a bit mask, so the loop stays branch-free).
RLHF_HD RLHF_ALWAYS_INLINE float masked(float x, bool keep) {
  return ops::detail::bits_float(ops::detail::float_bits(x) & -static_cast<std::int32_t>(keep));
}

/// Σ of e^(u - m), u = z·inv_tau, over the u whose key is > k (strict) or >= k.
template <bool Strict>
RLHF_HD inline float mass_beyond(const float* z, index_t v_count, float inv_tau, float m,
                                 std::uint32_t k) {
  float s = 0.0f;
  RLHF_SIMD_REDUCE(+ : s)
  for (index_t v = 0; v < v_count; ++v) {
    const float u = z[v] * inv_tau;
    const std::uint32_t ku = order_key(u);
    s += masked(ops::detail::exp_nonpositive(u - m), Strict ? ku > k : ku >= k);
  }
  return s;
}

/// #{u : key(u) >= k}.
RLHF_HD inline index_t count_from(const float* z, index_t v_count, float inv_tau,
                                  std::uint32_t k) {
  std::int32_t count = 0;  // V <= INT32_MAX (checked by the caller)
  RLHF_SIMD_REDUCE(+ : count)
  for (index_t v = 0; v < v_count; ++v) {
    count += static_cast<std::int32_t>(order_key(z[v] * inv_tau) >= k);
  }
  return count;
}

struct sampled {
  std::int32_t token;
  float logprob;  // NaN when the row holds NaN/Inf
};

/// Block size of the inverse-CDF search: block sums are vectorised, one block is scanned.
inline constexpr index_t cdf_block = 256;

/// One row: the token and log softmax(z·inv_tau)[token]. `greedy` picks the first argmax
/// (the caller passes inv_tau = 1). `uniform` in [0, 1).
RLHF_HD inline sampled sample_row(const float* z, index_t v_count, float inv_tau, bool greedy,
                                  index_t top_k, float top_p, float uniform) {
  // Pass 1: the keys of the max and the min (integer reductions vectorise everywhere) and
  // a NaN/Inf probe (Σ u·0 is 0 exactly when every u is finite).
  std::uint32_t key_lo = 0xffffffffu, key_max = 0u;
  float probe = 0.0f;
  RLHF_SIMD_REDUCE2(max : key_max, min : key_lo)
  for (index_t v = 0; v < v_count; ++v) {
    const std::uint32_t k = order_key(z[v] * inv_tau);
    key_max = k > key_max ? k : key_max;
    key_lo = k < key_lo ? k : key_lo;
  }
  RLHF_SIMD_REDUCE(+ : probe)
  for (index_t v = 0; v < v_count; ++v) probe += z[v] * inv_tau * 0.0f;
  if (probe != 0.0f) return {0, std::numeric_limits<float>::quiet_NaN()};
  const float m = key_value(key_max);
  // Pass 2: the normaliser of the full tempered softmax.
  float s = 0.0f;
  RLHF_SIMD_REDUCE(+ : s)
  for (index_t v = 0; v < v_count; ++v) s += ops::detail::exp_nonpositive(z[v] * inv_tau - m);
  const float log_s = std::log(s);
  if (greedy) {
    index_t arg = 0;
    while (arg < v_count - 1 && !(z[arg] * inv_tau == m)) ++arg;
    return {static_cast<std::int32_t>(arg), z[arg] * inv_tau - m - log_s};
  }

  // Top-k: the largest key K with #{key(u) >= K} >= k. Invariant: `a` satisfies it
  // (key(lo) does: all V values); the answer is <= key(max).
  std::uint32_t thr = key_lo;  // survivors: key(u) >= thr
  if (top_k > 0 && top_k < v_count) {
    std::uint32_t a = key_lo, b = key_max;
    while (a < b) {
      const std::uint32_t mid = a + (b - a + 1u) / 2u;
      if (count_from(z, v_count, inv_tau, mid) >= top_k) {
        a = mid;
      } else {
        b = mid - 1u;
      }
    }
    thr = a;
  }
  // Mass of the survivors.
  float total = thr > key_lo ? mass_beyond<false>(z, v_count, inv_tau, m, thr) : s;
  // Top-p over the survivors: the smallest key K in [thr, key(max)] with
  // mass(key(u) > K) < top_p · total. key(max) satisfies it (mass 0).
  if (top_p < 1.0f) {
    const float target = top_p * total;
    std::uint32_t a = thr, b = key_max;
    while (a < b) {
      const std::uint32_t mid = a + (b - a) / 2u;
      if (mass_beyond<true>(z, v_count, inv_tau, m, mid) < target) {
        b = mid;
      } else {
        a = mid + 1u;
      }
    }
    if (a > thr) total = mass_beyond<false>(z, v_count, inv_tau, m, a);
    thr = a;
  }
  // Inverse CDF over the survivors in vocabulary order: find the block where the running
  // sum of block sums passes uniform·total, then the token inside it. Where rounding lets
  // the sum end at or below the target, the last survivor of the last block with mass
  // is taken (probability ~2^-24).
  const float target = uniform * total;
  float cum = 0.0f;
  index_t last_block = 0;
  for (index_t b0 = 0; b0 < v_count; b0 += cdf_block) {
    const index_t len = v_count - b0 < cdf_block ? v_count - b0 : cdf_block;
    const float bs = mass_beyond<false>(z + b0, len, inv_tau, m, thr);
    if (bs == 0.0f) continue;
    last_block = b0;
    if (cum + bs > target) {
      float c = cum;
      index_t pick = b0;
      for (index_t v = b0; v < b0 + len; ++v) {
        const float u = z[v] * inv_tau;
        if (order_key(u) < thr) continue;
        const float e = ops::detail::exp_nonpositive(u - m);
        if (e == 0.0f) continue;
        c += e;
        pick = v;
        if (c > target) break;
      }
      return {static_cast<std::int32_t>(pick), z[pick] * inv_tau - m - log_s};
    }
    cum += bs;
  }
  index_t pick = last_block;
  const index_t end = v_count - last_block < cdf_block ? v_count : last_block + cdf_block;
  for (index_t v = last_block; v < end; ++v) {
    const float u = z[v] * inv_tau;
    if (order_key(u) >= thr && ops::detail::exp_nonpositive(u - m) > 0.0f) pick = v;
  }
  return {static_cast<std::int32_t>(pick), z[pick] * inv_tau - m - log_s};
}

struct sampling_dims {
  index_t n, v;
};

template <class B>
sampling_dims check_sampling_inputs(std::string_view fn, const typename B::tensor& logits,
                                    const sampling_config& cfg,
                                    const typename B::index_tensor& tokens,
                                    const typename B::tensor& logprobs) {
  validate(cfg, fn);
  check_rank(fn, "logits", logits.shape(), 2, 2);
  const sampling_dims d{logits.shape()[0], logits.shape()[1]};
  if (d.n == 0) {
    throw shape_error(rlhf::detail::concat(fn, ": batch is empty (logits has shape ",
                                           logits.shape().str(), ")"));
  }
  check_config(d.v >= 1, fn, "logits' vocabulary size V", ">= 1", d.v);
  check_config(d.v <= std::numeric_limits<std::int32_t>::max(), fn,
               "logits' vocabulary size V", "<= INT32_MAX (tokens are int32)", d.v);
  check_shape(fn, "tokens", tokens.shape(), shape{d.n}, "(N) of logits (N, V)");
  check_shape(fn, "logprobs", logprobs.shape(), shape{d.n}, "(N) of logits (N, V)");
  return d;
}

/// A NaN log-prob means the logits row held NaN/Inf.
template <class B>
void check_sampled_rows(std::string_view fn, const typename B::tensor& logprobs,
                        const sampling_config& cfg) {
  ops::detail::with_host_values<B>(logprobs, [&](std::span<const float> lp) {
    for (std::size_t r = 0; r < lp.size(); ++r) {
      if (!std::isfinite(lp[r])) {
        throw data_error(rlhf::detail::concat(
            fn, ": logits row ", r, " holds a NaN or Inf",
            cfg.temperature > 0.0f ? " (after dividing by the temperature)" : "",
            "; no token can be sampled from it"));
      }
    }
  });
}

template <class B>
void sample_tokens_impl(std::string_view fn, const typename B::tensor& logits,
                        const sampling_config& cfg, std::uint64_t step,
                        const std::int32_t* row_ids, std::uint64_t row_offset,
                        const sampling_dims& d, typename B::index_tensor& tokens,
                        typename B::tensor& logprobs) {
  const float* z = B::data(logits);
  std::int32_t* tok = B::data(tokens);
  float* lp = B::data(logprobs);
  const index_t V = d.v;
  const bool greedy = cfg.temperature == 0.0f;
  const float inv_tau = greedy ? 1.0f : 1.0f / cfg.temperature;
  const index_t top_k = cfg.top_k;
  const float top_p = cfg.top_p;
  const std::uint64_t seed = cfg.seed;
  B::parallel_for(d.n, RLHF_LAMBDA(index_t r) {
    const std::uint64_t id = row_ids != nullptr
                                 ? static_cast<std::uint64_t>(row_ids[r])
                                 : row_offset + static_cast<std::uint64_t>(r);
    const float uni = greedy ? 0.0f : sampling_uniform(seed, id, step);
    const sampled out = sample_row(z + r * V, V, inv_tau, greedy, top_k, top_p, uni);
    tok[r] = out.token;
    lp[r] = out.logprob;
  });
  check_sampled_rows<B>(fn, logprobs, cfg);
}

}  // namespace detail

/// One token per row of `logits` (N, V) into `tokens` (N,), and log softmax(logits/τ) at it
/// into `logprobs` (N,). Row r's draw is keyed by (cfg.seed, row_ids[r], step), so a row
/// samples the same token whatever else is in the batch and wherever it sits in it.
/// row_ids must be >= 0.
template <class B>
void sample_tokens(const typename B::tensor& logits, const sampling_config& cfg,
                   std::uint64_t step, const typename B::index_tensor& row_ids,
                   typename B::index_tensor& tokens, typename B::tensor& logprobs) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "sample_tokens";
  const auto d = detail::check_sampling_inputs<B>(fn, logits, cfg, tokens, logprobs);
  check_shape(fn, "row_ids", row_ids.shape(), shape{d.n}, "(N) of logits (N, V)");
  const std::vector<std::int32_t> ids = ops::to_host<B>(row_ids);
  for (std::size_t r = 0; r < ids.size(); ++r) {
    if (ids[r] < 0) {
      throw data_error(rlhf::detail::concat(fn, ": row_ids[", r, "] = ", ids[r],
                                            " must be >= 0"));
    }
  }
  detail::sample_tokens_impl<B>(fn, logits, cfg, step, B::data(row_ids), 0, d, tokens,
                                logprobs);
}

/// As above with row ids row_offset + r (a batch that is a contiguous slice of the rows).
template <class B>
void sample_tokens(const typename B::tensor& logits, const sampling_config& cfg,
                   std::uint64_t step, std::uint64_t row_offset,
                   typename B::index_tensor& tokens, typename B::tensor& logprobs) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "sample_tokens";
  const auto d = detail::check_sampling_inputs<B>(fn, logits, cfg, tokens, logprobs);
  detail::sample_tokens_impl<B>(fn, logits, cfg, step, nullptr, row_offset, d, tokens,
                                logprobs);
}

/// Host-side bookkeeping of a batched generation, as transformers' generate does it: a row
/// emits its tokens until it samples a stop token (which is kept, and counted in its
/// length) or reaches its max new tokens; from then on it emits PAD (log-prob 0).
///
///   generation_state st(n, max_new_tokens, {eos}, pad);
///   while (!st.all_finished()) {
///     ... logits of the last position ...
///     `sample_tokens<B>(logits, cfg, st.step(), row_offset, tokens, logprobs);`
///     `st.update<B>(tokens, &logprobs);`   // PAD / 0 where finished before this step
///   }
///   st.length(r): the row's completion length (mask positions [0, length) of its
///   completion)
class generation_state {
 public:
  /// Every row gets the same budget.
  generation_state(index_t batch, index_t max_new_tokens,
                   std::vector<std::int32_t> stop_tokens, std::int32_t pad_token)
      : generation_state(std::vector<index_t>(static_cast<std::size_t>(std::max<index_t>(batch, 0)),
                                              max_new_tokens),
                         std::move(stop_tokens), pad_token) {}

  /// Per-row budgets (e.g. context length minus each prompt's length).
  generation_state(std::vector<index_t> max_new_tokens, std::vector<std::int32_t> stop_tokens,
                   std::int32_t pad_token)
      : max_new_(std::move(max_new_tokens)),
        stop_(std::move(stop_tokens)),
        pad_(pad_token),
        finished_(max_new_.size(), 0),
        length_(max_new_.size(), 0) {
    check_config(!max_new_.empty(), "generation_state", "batch", ">= 1", max_new_.size());
    for (std::size_t r = 0; r < max_new_.size(); ++r) {
      check_config(max_new_[r] >= 0, "generation_state",
                   rlhf::detail::concat("max_new_tokens[", r, "]"), ">= 0", max_new_[r]);
      if (max_new_[r] == 0) finished_[r] = 1;
    }
  }

  /// One step's sampled tokens (N,) on the host: rows finished before this step get PAD
  /// (and log-prob 0 when `logprobs` is given); the others grow by one and finish on a stop
  /// token or on reaching their budget.
  void update(std::span<std::int32_t> tokens, std::span<float> logprobs = {}) {
    constexpr std::string_view fn = "generation_state::update";
    check_dim(fn, "tokens' length (the batch)", static_cast<index_t>(tokens.size()),
              batch());
    if (!logprobs.empty()) {
      check_dim(fn, "logprobs' length (the batch)", static_cast<index_t>(logprobs.size()),
                batch());
    }
    for (std::size_t r = 0; r < tokens.size(); ++r) {
      if (finished_[r] != 0) {
        tokens[r] = pad_;
        if (!logprobs.empty()) logprobs[r] = 0.0f;
        continue;
      }
      ++length_[r];
      if (is_stop(tokens[r]) || length_[r] >= max_new_[r]) finished_[r] = 1;
    }
    ++step_;
  }

  /// The same on backend tensors (copies N values each way).
  template <class B>
  void update(typename B::index_tensor& tokens, typename B::tensor* logprobs = nullptr) {
    assert_tensor_backend<B>();
    std::vector<std::int32_t> t = ops::to_host<B>(tokens);
    std::vector<float> lp;
    if (logprobs != nullptr) lp = ops::to_host<B>(*logprobs);
    update(std::span<std::int32_t>(t), std::span<float>(lp));
    ops::copy_from_host<B>(std::span<const std::int32_t>(t), tokens);
    if (logprobs != nullptr) ops::copy_from_host<B>(std::span<const float>(lp), *logprobs);
  }

  /// Rows N of the generation.
  [[nodiscard]] index_t batch() const { return static_cast<index_t>(finished_.size()); }
  /// Steps taken so far (the `step` to pass to sample_tokens next).
  [[nodiscard]] std::uint64_t step() const { return step_; }
  /// True once `row` has emitted a stop token or used its budget.
  [[nodiscard]] bool finished(index_t row) const {
    return finished_.at(static_cast<std::size_t>(row)) != 0;
  }
  /// Tokens the row has generated, its stop token included.
  [[nodiscard]] index_t length(index_t row) const {
    return length_.at(static_cast<std::size_t>(row));
  }
  /// True when every row is finished (the generation loop's exit test).
  [[nodiscard]] bool all_finished() const {
    return std::all_of(finished_.begin(), finished_.end(), [](std::uint8_t f) { return f != 0; });
  }
  /// The token emitted by finished rows.
  [[nodiscard]] std::int32_t pad_token() const { return pad_; }
  /// True when `token` is one of the stop tokens.
  [[nodiscard]] bool is_stop(std::int32_t token) const {
    return std::find(stop_.begin(), stop_.end(), token) != stop_.end();
  }

 private:
  std::vector<index_t> max_new_;
  std::vector<std::int32_t> stop_;
  std::int32_t pad_;
  std::vector<std::uint8_t> finished_;
  std::vector<index_t> length_;
  std::uint64_t step_ = 0;
};

}  // namespace model
}  // namespace v0
}  // namespace rlhf
