// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Training-side pieces of the bundled transformer that work on whole parameter arenas:
// AdamW (torch.optim.AdamW's update, bias-corrected, decoupled weight decay, a per-element
// decay mask), global-norm gradient clipping (torch.nn.utils.clip_grad_norm_), gradient
// accumulation helpers and the learning-rate schedules of Hugging Face transformers.
// docs/model.md ("Training").
//
// Parameters live in ONE arena tensor (P,) and their gradients in one (P,) tensor, so every
// function here is one pass over one buffer.
//
//   AdamW, step t = 1, 2, ... (torch.optim.AdamW, amsgrad=False, maximize=False):
//     p   <- p · (1 - lr·wd)                 where decay_mask != 0 (decoupled decay)
//     m   <- β1·m + (1-β1)·g
//     v   <- β2·v + (1-β2)·g²
//     p   <- p - lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + eps)
//
//   clip_grad_norm: n = ||g||_2 over the whole arena; if n > max_norm, g <- g · max_norm/(n+1e-6)
//
// Gradient accumulation: every layer's *_backward ADDS into the gradient arena (+=), so a
// trainer calls zero_grads once per optimizer step, runs k micro-batches' backward passes,
// then scale_grads(grads, 1/k) (when each micro-batch loss is a mean), clip_grad_norm, and
// adamw::step.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/config.hpp"
#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/core/validation.hpp"
#include "rlhf/model/detail/simd_x86.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/reductions.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

// ---------------------------------------------------------------------------------------
// Decay mask

/// A contiguous run of the parameter arena: [offset, offset + size), decayed or not
/// (weights decay; biases, layernorm gains/biases and usually embeddings' positions do not,
/// as the model's parameter layout says).
struct param_range {
  index_t offset = 0;  ///< First element of the run in the (P,) arena.
  index_t size = 0;    ///< Number of elements in the run.
  bool decays = true;  ///< AdamW weight decay applies to the run.
};

/// The (P,) decay mask of AdamW: 1 where a range with decays = true covers the element, 0
/// elsewhere (elements no range covers do not decay; where ranges overlap the later wins).
/// A range outside [0, P) is a shape_error naming it.
template <class B>
typename B::tensor make_decay_mask(index_t num_params, std::span<const param_range> ranges) {
  assert_tensor_backend<B>();
  check_config(num_params >= 0, "make_decay_mask", "num_params", ">= 0", num_params);
  std::vector<float> host(static_cast<std::size_t>(num_params), 0.0f);
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    const auto& r = ranges[i];
    if (r.offset < 0 || r.size < 0 || r.offset > num_params || r.size > num_params - r.offset) {
      index_t end = 0;
      const bool end_fits = rlhf::detail::checked_add(r.offset, r.size, end);
      throw shape_error(
          rlhf::detail::concat("make_decay_mask: range ", i, " [", r.offset, ", ",
                               end_fits ? std::to_string(end) : std::string("overflow"),
                               ") lies outside the arena [0, ", num_params, ")"));
    }
    for (index_t k = r.offset; k < r.offset + r.size; ++k) {
      host[static_cast<std::size_t>(k)] = r.decays ? 1.0f : 0.0f;
    }
  }
  return ops::from_host<B>(std::span<const float>(host), shape{num_params});
}

// ---------------------------------------------------------------------------------------
// AdamW

/// torch.optim.AdamW's hyper-parameters and defaults (lr 1e-3, betas (0.9, 0.999),
/// eps 1e-8, weight_decay 1e-2).
struct adamw_config {
  float lr = 1e-3f;            ///< Learning rate (when step() is given none).
  float beta1 = 0.9f;          ///< Decay rate of the first moment m.
  float beta2 = 0.999f;        ///< Decay rate of the second moment v.
  float eps = 1e-8f;           ///< Added to sqrt(v̂) in the denominator.
  float weight_decay = 1e-2f;  ///< Decoupled weight decay wd, where the decay mask is nonzero.
};

namespace detail::optim {

inline void check_lr(std::string_view fn, float lr) {
  check_config(std::isfinite(lr) && lr >= 0.0f, fn, "lr", "finite and >= 0", lr);
}

inline void validate(const adamw_config& c) {
  constexpr std::string_view fn = "adamw";
  check_lr(fn, c.lr);
  check_config(c.beta1 >= 0.0f && c.beta1 < 1.0f, fn, "beta1", "in [0, 1)", c.beta1);
  check_config(c.beta2 >= 0.0f && c.beta2 < 1.0f, fn, "beta2", "in [0, 1)", c.beta2);
  check_config(std::isfinite(c.eps) && c.eps >= 0.0f, fn, "eps", "finite and >= 0", c.eps);
  check_config(std::isfinite(c.weight_decay) && c.weight_decay >= 0.0f, fn, "weight_decay",
               "finite and >= 0", c.weight_decay);
}

/// One fused AdamW update of one element; the scalars are computed on the host in double
/// (as torch does in Python) and rounded to float once.
struct adamw_kernel {
  float decay;          // 1 - lr·wd
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float step_size;      // lr / (1 - β1^t)
  float bc2_sqrt;       // sqrt(1 - β2^t)
  float eps;

  RLHF_HD void operator()(float& p, float& m, float& v, const float& g,
                          const float& mask) const {
    p *= mask != 0.0f ? decay : 1.0f;  // a select, not a branch (vectorises)
    update(p, m, v, g);
  }
  /// The update after the decay.
  RLHF_HD void update(float& p, float& m, float& v, float g) const {
    m = m * beta1 + g * one_minus_beta1;
    v = v * beta2 + (g * g) * one_minus_beta2;
    const float denom = std::sqrt(v) / bc2_sqrt + eps;
    p = p - step_size * (m / denom);
  }
};

/// The AdamW update of n contiguous host elements: p *= decay where mask[i] != 0 (every
/// element when mask is null), then k.update. Compilers keep std::sqrt scalar inside a loop
/// unless -fno-math-errno (it may set errno), which leaves the update bound by scalar sqrt
/// and division; with AVX-512 or AVX this uses the IEEE vector sqrt and division instead,
/// the last partial vector through masked loads and stores, so every element takes the same
/// instructions whatever n is (the masked and the range-based steps agree bit for bit).
inline void adamw_update_span(float* p, float* m, float* v, const float* g, const float* mask,
                              index_t n, const adamw_kernel& k, float decay) {
#if defined(RLHF_X86_SIMD)
  using V = model::detail::simd_x86;
  const V::reg b1 = V::set1(k.beta1), ob1 = V::set1(k.one_minus_beta1);
  const V::reg b2 = V::set1(k.beta2), ob2 = V::set1(k.one_minus_beta2);
  const V::reg bc2 = V::set1(k.bc2_sqrt), eps = V::set1(k.eps);
  const V::reg step = V::set1(k.step_size), dec = V::set1(decay), one = V::set1(1.0f);
  for (index_t i = 0; i < n; i += V::width) {
    const V::lanes l = V::live(n - i);
    const V::reg gi = V::load(l, g + i);
    const V::reg mi = V::add(V::mul(V::load(l, m + i), b1), V::mul(gi, ob1));
    const V::reg vi = V::add(V::mul(V::load(l, v + i), b2), V::mul(V::mul(gi, gi), ob2));
    const V::reg di = mask == nullptr ? dec : V::select_nonzero(V::load(l, mask + i), dec, one);
    const V::reg pi = V::mul(V::load(l, p + i), di);
    const V::reg denom = V::add(V::div(V::sqrt(vi), bc2), eps);
    V::store(l, m + i, mi);
    V::store(l, v + i, vi);
    V::store(l, p + i, V::sub(pi, V::mul(step, V::div(mi, denom))));
  }
#else
  for (index_t i = 0; i < n; ++i) {
    p[i] *= mask == nullptr || mask[i] != 0.0f ? decay : 1.0f;
    k.update(p[i], m[i], v[i], g[i]);
  }
#endif
}

/// Elements per work item of the host AdamW passes (a multiple of 16: whole vectors but for
/// a run's last item).
inline constexpr index_t adamw_block = 1024;

struct copy_fn {
  RLHF_HD float operator()(float x) const { return x; }
};
struct scale_kernel {
  float factor;
  RLHF_HD void operator()(float& g) const { g *= factor; }
};

}  // namespace detail::optim

/// The largest AdamW step count, 2^53 - 1: the step after it is still exact in double,
/// which the bias corrections 1 - beta^t take, and far from overflowing std::int64_t.
inline constexpr std::int64_t adamw_max_step = (std::int64_t{1} << 53) - 1;

/// AdamW over one (P,) parameter arena, holding the first and second moments (P,) and the
/// step count. The state follows torch's state_dict names: exp_avg (m), exp_avg_sq (v),
/// step; a checkpoint stores those three and restores them with load_state.
template <class B>
class adamw {
 public:
  using tensor = typename B::tensor;  ///< The backend's float tensor.

  /// Zero moments, step 0. A bad hyper-parameter is a config_error naming the field.
  explicit adamw(index_t num_params, adamw_config config = {})
      : config_(validated(config)), exp_avg_(shape{checked_size(num_params)}),
        exp_avg_sq_(shape{num_params}) {
    ops::fill<B>(exp_avg_, 0.0f);
    ops::fill<B>(exp_avg_sq_, 0.0f);
  }

  /// One optimizer step at learning rate config().lr.
  void step(tensor& params, const tensor& grads, const tensor& decay_mask) {
    step(params, grads, decay_mask, config_.lr);
  }

  /// One optimizer step at learning rate `lr` (from a schedule: lr_schedule::lr_at of
  /// step_count(), the number of steps taken before this one). decay_mask (P,) is nonzero
  /// where weight decay applies (make_decay_mask). One fused pass over the five arenas;
  /// grads is checked finite first (a data_error naming "grads" and the flat index) at
  /// validation::full.
  void step(tensor& params, const tensor& grads, const tensor& decay_mask, float lr) {
    constexpr std::string_view fn = "adamw::step";
    check_step_args(fn, params, grads, lr);
    check_shape(fn, "decay_mask", decay_mask.shape(), shape{num_params()},
                "the optimizer's parameter count");
    if (validating(validation::full)) ops::check_finite<B>(fn, "grads", grads);
    const detail::optim::adamw_kernel k = next_kernel(lr);
    if constexpr (B::host_accessible) {
      host_update(params, grads, B::data(decay_mask), 0, num_params(), k, k.decay);
    } else {
      ops::for_each<B>(k, params, exp_avg_, exp_avg_sq_, grads, decay_mask);
    }
  }

  /// The same step with the decay read from `ranges` (decay_ranges(model)) instead of a
  /// (P,) mask, so no mask occupies memory: the ranges must tile [0, P) in order (a
  /// config_error naming the first that does not). One parallel pass per run of ranges
  /// with the same decay flag.
  void step(tensor& params, const tensor& grads, std::span<const param_range> ranges,
            float lr) {
    constexpr std::string_view fn = "adamw::step";
    check_step_args(fn, params, grads, lr);
    index_t next = 0;
    for (std::size_t i = 0; i < ranges.size(); ++i) {
      index_t range_end = 0;
      const bool end_fits = rlhf::detail::checked_add(ranges[i].offset, ranges[i].size, range_end);
      if (ranges[i].offset != next || ranges[i].size < 0 || !end_fits) {
        throw config_error(rlhf::detail::concat(
            fn, ": ranges must tile [0, ", num_params(), ") in order; range ", i, " is [",
            ranges[i].offset, ", ", end_fits ? std::to_string(range_end) : std::string("overflow"),
            "), expected offset ", next));
      }
      next = range_end;
    }
    if (next != num_params()) {
      throw config_error(rlhf::detail::concat(fn, ": ranges cover [0, ", next,
                                              "), the optimizer holds ", num_params(),
                                              " parameters"));
    }
    if (validating(validation::full)) ops::check_finite<B>(fn, "grads", grads);
    const detail::optim::adamw_kernel k = next_kernel(lr);
    for (std::size_t i = 0; i < ranges.size();) {
      const bool decays = ranges[i].decays;
      const index_t begin = ranges[i].offset;
      index_t end = begin;
      for (; i < ranges.size() && ranges[i].decays == decays; ++i) end += ranges[i].size;
      const float decay = decays ? k.decay : 1.0f;
      if constexpr (B::host_accessible) {
        host_update(params, grads, nullptr, begin, end, k, decay);
      } else {
        float* p = B::data(params);
        float* m = B::data(exp_avg_);
        float* v = B::data(exp_avg_sq_);
        const float* g = B::data(grads);
        B::parallel_for(end - begin, RLHF_LAMBDA(index_t j) {
          const index_t e = begin + j;
          p[e] *= decay;
          k.update(p[e], m[e], v[e], g[e]);
        });
      }
    }
  }
  /// The step over `ranges` at learning rate config().lr.
  void step(tensor& params, const tensor& grads, std::span<const param_range> ranges) {
    step(params, grads, ranges, config_.lr);
  }

 private:
  /// Host backends: the update of [begin, end) in blocks of adamw_block, one work item
  /// each (adamw_update_span; mask null: every element decays by `decay`).
  void host_update(tensor& params, const tensor& grads, const float* mask, index_t begin,
                   index_t end, const detail::optim::adamw_kernel& k, float decay) {
    float* p = B::data(params);
    float* m = B::data(exp_avg_);
    float* v = B::data(exp_avg_sq_);
    const float* g = B::data(grads);
    constexpr index_t blk = detail::optim::adamw_block;
    B::parallel_for((end - begin + blk - 1) / blk, [=](index_t b) {
      const index_t s = begin + b * blk, len = end - s < blk ? end - s : blk;
      detail::optim::adamw_update_span(p + s, m + s, v + s, g + s,
                                       mask == nullptr ? nullptr : mask + s, len, k, decay);
    });
  }

  void check_step_args(std::string_view fn, const tensor& params, const tensor& grads,
                       float lr) const {
    detail::optim::check_lr(fn, lr);
    const shape s{num_params()};
    check_shape(fn, "params", params.shape(), s, "the optimizer's parameter count");
    check_shape(fn, "grads", grads.shape(), s, "the optimizer's parameter count");
  }

  /// Counts the step and returns its kernel (bias corrections of the new step count).
  detail::optim::adamw_kernel next_kernel(float lr) {
    check_config(step_ < max_step, "adamw::step", "step count",
                 rlhf::detail::concat("< ", max_step), step_);
    ++step_;
    const double b1 = config_.beta1, b2 = config_.beta2, t = static_cast<double>(step_);
    const double bc1 = 1.0 - std::pow(b1, t);
    const double bc2 = 1.0 - std::pow(b2, t);
    detail::optim::adamw_kernel k{};
    k.decay = static_cast<float>(1.0 - static_cast<double>(lr) * config_.weight_decay);
    k.beta1 = config_.beta1;
    k.one_minus_beta1 = static_cast<float>(1.0 - b1);
    k.beta2 = config_.beta2;
    k.one_minus_beta2 = static_cast<float>(1.0 - b2);
    k.step_size = static_cast<float>(static_cast<double>(lr) / bc1);
    k.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
    k.eps = config_.eps;
    return k;
  }

 public:
  /// The largest step count (adamw_max_step).
  static constexpr std::int64_t max_step = adamw_max_step;

  /// Restores a checkpointed state: shapes (P,), exp_avg finite, exp_avg_sq finite and
  /// >= 0 (a negative second moment turns the first step's parameters NaN), 0 <= step <=
  /// max_step.
  void load_state(const tensor& exp_avg, const tensor& exp_avg_sq, std::int64_t step) {
    constexpr std::string_view fn = "adamw::load_state";
    const shape s{num_params()};
    check_shape(fn, "exp_avg", exp_avg.shape(), s, "the optimizer's parameter count");
    check_shape(fn, "exp_avg_sq", exp_avg_sq.shape(), s, "the optimizer's parameter count");
    check_config(step >= 0 && step <= max_step, fn, "step",
                 rlhf::detail::concat("in [0, ", max_step, "]"), step);
    ops::check_finite<B>(fn, "exp_avg", exp_avg);
    ops::check_mask<B>(fn, "exp_avg_sq", exp_avg_sq);  // finite and >= 0
    copy_into(exp_avg, exp_avg_);
    copy_into(exp_avg_sq, exp_avg_sq_);
    step_ = step;
  }

  /// Back to zero moments and step 0 (hyper-parameters kept).
  void reset() {
    ops::fill<B>(exp_avg_, 0.0f);
    ops::fill<B>(exp_avg_sq_, 0.0f);
    step_ = 0;
  }

  /// The validated hyper-parameters.
  [[nodiscard]] const adamw_config& config() const { return config_; }
  /// P, the size of the arena the optimizer updates.
  [[nodiscard]] index_t num_params() const { return exp_avg_.size(); }
  /// Steps taken so far (torch's state["step"]).
  [[nodiscard]] std::int64_t step_count() const { return step_; }
  /// m, the first moment (torch's state["exp_avg"]).
  [[nodiscard]] const tensor& exp_avg() const { return exp_avg_; }
  /// v, the second moment (torch's state["exp_avg_sq"]).
  [[nodiscard]] const tensor& exp_avg_sq() const { return exp_avg_sq_; }
  /// Bytes of optimizer state (2·P floats), for memory accounting.
  [[nodiscard]] std::size_t state_bytes() const {
    return 2 * static_cast<std::size_t>(num_params()) * sizeof(float);
  }

 private:
  static adamw_config validated(const adamw_config& c) {
    detail::optim::validate(c);
    return c;
  }
  static index_t checked_size(index_t n) {
    check_config(n >= 0, "adamw", "num_params", ">= 0", n);
    return n;
  }
  static void copy_into(const tensor& from, tensor& to) {
    ops::transform<B>(to, detail::optim::copy_fn{}, from);
  }

  adamw_config config_;
  tensor exp_avg_;
  tensor exp_avg_sq_;
  std::int64_t step_ = 0;
};

// ---------------------------------------------------------------------------------------
// Gradient clipping and accumulation

/// g <- g · factor over the whole gradient arena (gradient accumulation: factor = 1/k for k
/// micro-batches whose losses are means). factor must be finite.
template <class B>
void scale_grads(typename B::tensor& grads, float factor) {
  assert_tensor_backend<B>();
  check_config(std::isfinite(factor), "scale_grads", "factor", "finite", factor);
  ops::for_each<B>(detail::optim::scale_kernel{factor}, grads);
}

/// g <- 0 over the whole gradient arena; once per optimizer step, since every backward pass
/// accumulates (+=) into it.
template <class B>
void zero_grads(typename B::tensor& grads) {
  assert_tensor_backend<B>();
  ops::fill<B>(grads, 0.0f);
}

/// The L2 norm of every element of `grads`. Squares are summed in float32 in chunks of
/// 2048 elements (one parallel_for task each, a fixed order, so the result is
/// deterministic), then the chunk totals with ops::sum: the rounding error grows with
/// ~(2048 + P/2048)·eps instead of P·eps. A norm above ~1.8e19 overflows float32.
template <class B>
float grad_norm(const typename B::tensor& grads) {
  assert_tensor_backend<B>();
  const index_t n = grads.size();
  if (n == 0) return 0.0f;
  constexpr index_t chunk = 2048;
  const index_t chunks = (n + chunk - 1) / chunk;
  typename B::tensor partial(shape{chunks});
  const float* g = B::data(grads);
  float* out = B::data(partial);
  B::parallel_for(chunks, RLHF_LAMBDA(index_t c) {
    const index_t lo = c * chunk;
    const index_t hi = lo + chunk < n ? lo + chunk : n;
    float s = 0.0f;
    RLHF_SIMD_REDUCE(+ : s)
    for (index_t i = lo; i < hi; ++i) s += g[i] * g[i];
    out[c] = s;
  });
  return std::sqrt(ops::sum<B>(partial));
}

/// torch.nn.utils.clip_grad_norm_ over the whole arena (norm_type 2): returns the total
/// norm before clipping; when it exceeds max_norm the gradients are multiplied by
/// max_norm / (norm + 1e-6). max_norm must be finite and > 0 (config_error); a non-finite
/// norm is a data_error naming the first non-finite gradient (torch's
/// error_if_nonfinite=True), or the overflow of the sum of squares.
template <class B>
float clip_grad_norm(typename B::tensor& grads, float max_norm) {
  assert_tensor_backend<B>();
  constexpr std::string_view fn = "clip_grad_norm";
  check_config(std::isfinite(max_norm) && max_norm > 0.0f, fn, "max_norm", "finite and > 0",
               max_norm);
  const float norm = grad_norm<B>(grads);
  if (!std::isfinite(norm)) {
    ops::check_finite<B>(fn, "grads", grads);
    throw data_error(rlhf::detail::concat(
        fn, ": the L2 norm of grads overflows float32 (every gradient is finite)"));
  }
  const double coef = static_cast<double>(max_norm) / (static_cast<double>(norm) + 1e-6);
  if (coef < 1.0) scale_grads<B>(grads, static_cast<float>(coef));
  return norm;
}

// ---------------------------------------------------------------------------------------
// Learning-rate schedules (Hugging Face transformers' LambdaLR factors)

/// The shape of an lr_schedule after its warmup (see lr_schedule for the formulas).
enum class lr_schedule_type { constant, cosine, linear };

}  // namespace model

/// The names of the lr schedule types.
template <>
struct enum_names<model::lr_schedule_type> {
  /// Every type with its name, in declaration order.
  static constexpr std::array<enum_name<model::lr_schedule_type>, 3> values{{
      {model::lr_schedule_type::constant, "constant"},
      {model::lr_schedule_type::cosine, "cosine"},
      {model::lr_schedule_type::linear, "linear"},
  }};
};
static_assert(enum_table_covers<model::lr_schedule_type>(3));

namespace model {

/// The name of `t` ("constant", "cosine", "linear"); "unknown" for any other value.
[[nodiscard]] inline std::string_view to_string(lr_schedule_type t) { return rlhf::to_string(t); }

/// "cosine" → lr_schedule_type::cosine; an unknown name is a config_error listing the
/// accepted ones.
[[nodiscard]] inline lr_schedule_type parse_lr_schedule_type(std::string_view name) {
  return enum_from_string<lr_schedule_type>(name, "parse_lr_schedule_type", "lr_schedule_type");
}

/// lr_at(step) = lr · factor(step), step = optimizer steps already taken (0 for the first
/// update), as LambdaLR stepped once after every optimizer.step(). With w = warmup_steps,
/// T = total_steps, r = min_lr_ratio:
///   step < w:   factor = step / max(1, w)                               (every type)
///   constant:   1                       (get_constant_schedule_with_warmup)
///   cosine:     progress = (step - w) / max(1, T - w), clamped to <= 1;
///               r + (1 - r) · max(0, 0.5·(1 + cos(π · num_cycles · 2 · progress)))
///               (get_cosine_schedule_with_warmup; with r > 0,
///                get_cosine_with_min_lr_schedule_with_warmup's min_lr_rate)
///   linear:     r + (1 - r) · max(0, (T - step) / max(1, T - w))
///               (get_linear_schedule_with_warmup at r = 0)
/// The clamp of progress only differs from transformers past T, where transformers' cosine
/// rises again; here it stays at its final value.
struct lr_schedule {
  lr_schedule_type type = lr_schedule_type::constant;  ///< The shape after the warmup.
  float lr = 1e-3f;                                    ///< Peak (base) learning rate.
  index_t warmup_steps = 0;                            ///< Steps of linear warmup from 0 to lr.
  index_t total_steps = 0;    ///< Required (> warmup_steps) for cosine and linear.
  float min_lr_ratio = 0.0f;  ///< Final lr = min_lr_ratio · lr (cosine, linear).
  float num_cycles = 0.5f;    ///< Cosine: 0.5 = one half-wave from lr down to the minimum.

  /// config_error naming the field.
  void validate() const {
    constexpr std::string_view fn = "lr_schedule";
    check_config(std::isfinite(lr) && lr >= 0.0f, fn, "lr", "finite and >= 0", lr);
    check_config(warmup_steps >= 0, fn, "warmup_steps", ">= 0", warmup_steps);
    check_config(std::isfinite(min_lr_ratio) && min_lr_ratio >= 0.0f && min_lr_ratio <= 1.0f,
                 fn, "min_lr_ratio", "in [0, 1]", min_lr_ratio);
    if (type != lr_schedule_type::constant) {
      check_config(total_steps > warmup_steps, fn, "total_steps",
                   rlhf::detail::concat("> warmup_steps (", warmup_steps, ") for the ",
                                        to_string(type), " schedule"),
                   total_steps);
      check_config(std::isfinite(num_cycles) && num_cycles > 0.0f, fn, "num_cycles", "> 0",
                   num_cycles);
    }
  }

  /// The multiplier of lr at `step` (in [0, 1]), computed in double.
  [[nodiscard]] double factor(index_t step) const {
    validate();
    check_config(step >= 0, "lr_schedule::lr_at", "step", ">= 0", step);
    const double s = static_cast<double>(step);
    const double w = static_cast<double>(warmup_steps);
    if (step < warmup_steps) return s / std::max(1.0, w);
    const double r = min_lr_ratio;
    switch (type) {
      case lr_schedule_type::constant:
        return 1.0;
      case lr_schedule_type::cosine: {
        const double t = static_cast<double>(total_steps);
        const double progress = std::min(1.0, (s - w) / std::max(1.0, t - w));
        const double pi = 3.14159265358979323846;
        const double c =
            std::max(0.0, 0.5 * (1.0 + std::cos(pi * static_cast<double>(num_cycles) * 2.0 *
                                                progress)));
        return r + (1.0 - r) * c;
      }
      case lr_schedule_type::linear: {
        const double t = static_cast<double>(total_steps);
        return r + (1.0 - r) * std::max(0.0, (t - s) / std::max(1.0, t - w));
      }
    }
    return 1.0;
  }

  /// The learning rate of the update that follows `step` completed steps.
  [[nodiscard]] float lr_at(index_t step) const {
    return static_cast<float>(static_cast<double>(lr) * factor(step));
  }
};

}  // namespace model
}  // namespace v0
}  // namespace rlhf
