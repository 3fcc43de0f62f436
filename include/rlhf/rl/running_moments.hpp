// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Running mean / variance of a stream (Welford 1962), merged batch by batch with the
// parallel update of Chan, Golub & LeVeque (1979), and the PPO score normaliser built on it
// (TRL 0.11 RunningMoments + use_score_scaling / use_score_norm / score_clip).
// docs/algorithms/ppo.md ("Score normalisation").
//
// State (host, float64): count n, mean μ, M2 = Σ (x - μ)². Merging a batch (n_b, μ_b, M2_b):
//   δ = μ_b - μ,  n' = n + n_b,  μ' = μ + δ·n_b/n',  M2' = M2 + M2_b + δ²·n·n_b/n'.
// var() = M2/n (population), sample_var() = M2/(n-1), std() = sqrt(sample_var()) — the
// Bessel-corrected std TRL divides by. With fewer than 2 values, sample_var() is undefined;
// std() returns 0 there and the normaliser treats the scale as 1 (see score_normalizer).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/core/validation.hpp"
#include "rlhf/ops/checks.hpp"

namespace rlhf {
inline namespace v0 {
namespace rl {

namespace detail {

/// Moments are values computed from data: anything but finite values with count >= 0 and
/// m2 >= 0 is a data_error naming the first offender.
inline void check_moments(std::string_view fn, double count, double mean, double m2) {
  const auto fail = [&](std::string_view arg, std::string_view what, double v) {
    throw data_error(rlhf::detail::concat(fn, ": ", arg, " must be ", what, ", got ", v));
  };
  if (!(std::isfinite(count) && count >= 0.0)) fail("count", "finite and >= 0", count);
  if (!std::isfinite(mean)) fail("mean", "finite", mean);
  if (!(std::isfinite(m2) && m2 >= 0.0)) fail("m2", "finite and >= 0", m2);
}

}  // namespace detail

/// Count, mean and M2 = Σ (x - mean)² of a stream of values, in float64 (Welford, with
/// Chan et al.'s merge for batches).
class running_moments {
 public:
  running_moments() = default;
  /// Moments already accumulated elsewhere: count values with mean `mean` and
  /// M2 = Σ (x - mean)², taken as they are (a data_error unless all are finite, count >= 0
  /// and m2 >= 0).
  running_moments(double count, double mean, double m2) : n_(count), mean_(mean), m2_(m2) {
    detail::check_moments("running_moments", count, mean, m2);
  }

  /// Adds one value (Welford's update); a non-finite x is a data_error.
  void push(double x) {
    if (!std::isfinite(x)) {
      throw data_error(rlhf::detail::concat("running_moments::push: x must be finite, got ", x));
    }
    n_ += 1.0;
    const double d = x - mean_;
    mean_ += d / n_;
    m2_ += d * (x - mean_);
  }

  /// Merges the moments of a batch: count values with mean `mean` and M2 = Σ (x - mean)²
  /// (a data_error unless all are finite, count >= 0 and m2 >= 0).
  void merge(double count, double mean, double m2) {
    detail::check_moments("running_moments::merge", count, mean, m2);
    if (count == 0.0) return;
    const double total = n_ + count;
    const double d = mean - mean_;
    mean_ += d * count / total;
    m2_ += m2 + d * d * n_ * count / total;
    n_ = total;
  }
  /// Merges the moments held by another accumulator.
  void merge(const running_moments& other) { merge(other.n_, other.mean_, other.m2_); }

  /// Merges a batch of values: its mean and M2 by two passes in float64, then merge().
  void update(std::span<const float> xs) {
    if (validating(validation::full)) check_finite("running_moments::update", "xs", xs);
    if (xs.empty()) return;
    double s = 0.0;
    for (float x : xs) s += x;
    const double mean = s / static_cast<double>(xs.size());
    double m2 = 0.0;
    for (float x : xs) m2 += (x - mean) * (x - mean);
    merge(static_cast<double>(xs.size()), mean, m2);
  }

  /// The same for a backend tensor (any shape; copied to the host where B's memory is not
  /// host-readable).
  template <class B>
  void update(const typename B::tensor& xs) {
    ops::detail::with_host_values<B>(xs, [&](std::span<const float> v) { update(v); });
  }

  /// The number of values seen.
  [[nodiscard]] double count() const noexcept { return n_; }
  /// Their mean (0 when empty).
  [[nodiscard]] double mean() const noexcept { return mean_; }
  /// Their M2 = Σ (x - mean)².
  [[nodiscard]] double m2() const noexcept { return m2_; }
  /// Population variance M2/n (0 when empty).
  [[nodiscard]] double var() const noexcept { return n_ > 0.0 ? m2_ / n_ : 0.0; }
  /// Bessel-corrected variance M2/(n-1) (0 with fewer than 2 values).
  [[nodiscard]] double sample_var() const noexcept { return n_ > 1.0 ? m2_ / (n_ - 1.0) : 0.0; }
  /// sqrt(sample_var()): what TRL's RunningMoments.std holds.
  [[nodiscard]] double std() const noexcept { return std::sqrt(sample_var()); }

 private:
  double n_ = 0.0, mean_ = 0.0, m2_ = 0.0;
};

/// How scores are normalised by the running moments (TRL 0.11 use_score_scaling=True with
/// use_score_norm = true → subtract_mean, false → scale_only).
enum class score_normalization { none, subtract_mean, scale_only };

}  // namespace rl

/// The names of score_normalization's values: "none", "subtract_mean", "scale_only".
template <>
struct enum_names<rl::score_normalization> {
  /// Every value with its name, in declaration order.
  static constexpr std::array<enum_name<rl::score_normalization>, 3> values{{
      {rl::score_normalization::none, "none"},
      {rl::score_normalization::subtract_mean, "subtract_mean"},
      {rl::score_normalization::scale_only, "scale_only"},
  }};
};
static_assert(enum_table_covers<rl::score_normalization>(3));

namespace rl {

/// Options of score_normalizer.
struct score_normalizer_config {
  /// What is done with the running moments.
  score_normalization mode = score_normalization::subtract_mean;
  /// Added to the std (TRL: torch.finfo(float32).eps).
  float eps = 1.1920929e-7f;
  /// Clip to ±score_clip after normalising (TRL score_clip, default None = off).
  std::optional<float> score_clip;
};

/// Normalises (N,) reward-model scores in place, batch after batch:
///   1. update: the batch's scores are merged into the running moments (update first, so a
///      batch is normalised with statistics that include it — TRL's order);
///   2. apply: s ← (s - mean)/(std + eps) (subtract_mean) or s/(std + eps) (scale_only);
///   3. clip to ±score_clip if set (also with mode none, as TRL clips without scaling).
/// Before 2 values have been seen std is undefined: the scale is taken as 1 there (TRL
/// divides by eps, a 1e7× blow-up of the first single score).
class score_normalizer {
 public:
  score_normalizer() = default;
  /// A normaliser with these options (eps finite and >= 0, score_clip finite and > 0).
  explicit score_normalizer(const score_normalizer_config& cfg) : cfg_(cfg) {
    constexpr const char* fn = "score_normalizer";
    check_enum(fn, "mode", cfg.mode);
    check_config(std::isfinite(cfg.eps) && cfg.eps >= 0.0f, fn, "eps", "finite and >= 0",
                 cfg.eps);
    if (cfg.score_clip) {
      check_config(std::isfinite(*cfg.score_clip) && *cfg.score_clip > 0.0f, fn, "score_clip",
                   "finite and > 0", *cfg.score_clip);
    }
  }

  /// Normalises the (N,) scores in place (steps 1-3 above); they must be finite.
  template <class B>
  void operator()(typename B::tensor& scores) {
    constexpr const char* fn = "score_normalizer";
    assert_tensor_backend<B>();
    check_rank(fn, "scores", scores.shape(), 1, 1);
    ops::check_finite<B>(fn, "scores", scores);
    if (scores.size() == 0) return;
    float shift = 0.0f, scale = 1.0f;
    if (cfg_.mode != score_normalization::none) {
      moments_.update<B>(scores);
      if (moments_.count() >= 2.0) {
        scale = static_cast<float>(1.0 / (moments_.std() + static_cast<double>(cfg_.eps)));
      }
      if (cfg_.mode == score_normalization::subtract_mean) {
        shift = static_cast<float>(moments_.mean());
      }
    }
    const bool clip = cfg_.score_clip.has_value();
    const float c = clip ? *cfg_.score_clip : 0.0f;
    float* s = B::data(scores);
    B::parallel_for(scores.size(), RLHF_LAMBDA(index_t i) {
      float v = (s[i] - shift) * scale;
      if (clip) v = v < -c ? -c : (v > c ? c : v);
      s[i] = v;
    });
  }

  /// The running moments of every score seen so far (empty with mode none).
  [[nodiscard]] const running_moments& moments() const noexcept { return moments_; }
  /// The options.
  [[nodiscard]] const score_normalizer_config& config() const noexcept { return cfg_; }

 private:
  score_normalizer_config cfg_{};
  running_moments moments_{};
};

}  // namespace rl
}  // namespace v0
}  // namespace rlhf
