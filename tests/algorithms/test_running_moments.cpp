// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Welford / Chan running moments and the PPO score normaliser (rlhf/rl/running_moments.hpp).
#include <cmath>
#include <cstdint>

#include "fixture.hpp"
#include "rlhf/rl/running_moments.hpp"

namespace test_running_moments_cases {

using namespace rlhf_test;
namespace rl = rlhf::rl;

namespace {

/// Deterministic values with a large offset (where a naive Σx² - n·mean² would lose digits).
std::vector<float> sample(std::size_t n, std::uint32_t seed) {
  std::vector<float> v(n);
  std::uint32_t s = seed;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = 1000.0f + static_cast<float>(s >> 8) / static_cast<float>(1u << 24) * 6.0f - 3.0f;
  }
  return v;
}

void two_pass(const std::vector<float>& v, double& mean, double& var_unbiased) {
  double s = 0.0;
  for (float x : v) s += x;
  mean = s / static_cast<double>(v.size());
  double ss = 0.0;
  for (float x : v) ss += (x - mean) * (x - mean);
  var_unbiased = ss / static_cast<double>(v.size() - 1);
}

}  // namespace

TEST_CASE("running_moments: Welford pushes and Chan merges equal the two-pass statistics") {
  const auto v = sample(1000, 42);
  double mean = 0, var = 0;
  two_pass(v, mean, var);

  rl::running_moments pushed;
  for (float x : v) pushed.push(x);
  CHECK(pushed.count() == 1000.0);
  CHECK(pushed.mean() == doctest::Approx(mean).epsilon(1e-13));
  CHECK(pushed.sample_var() == doctest::Approx(var).epsilon(1e-10));
  CHECK(pushed.std() == doctest::Approx(std::sqrt(var)).epsilon(1e-10));
  CHECK(pushed.var() == doctest::Approx(var * 999.0 / 1000.0).epsilon(1e-10));

  // Batches of uneven sizes (1, 7, 192, 800) merged one after the other.
  rl::running_moments merged;
  const std::size_t cuts[] = {0, 1, 8, 200, 1000};
  for (std::size_t k = 0; k + 1 < std::size(cuts); ++k) {
    merged.update(std::span<const float>(v.data() + cuts[k], cuts[k + 1] - cuts[k]));
  }
  CHECK(merged.count() == 1000.0);
  CHECK(merged.mean() == doctest::Approx(mean).epsilon(1e-13));
  CHECK(merged.sample_var() == doctest::Approx(var).epsilon(1e-10));

  // Merging two accumulators = one accumulator over everything; empty merges are no-ops.
  rl::running_moments a, b;
  a.update(std::span<const float>(v.data(), 300));
  b.update(std::span<const float>(v.data() + 300, 700));
  a.merge(b);
  a.merge(rl::running_moments{});
  CHECK(a.mean() == doctest::Approx(mean).epsilon(1e-13));
  CHECK(a.sample_var() == doctest::Approx(var).epsilon(1e-10));

  // Fewer than 2 values: sample variance undefined, reported as 0.
  rl::running_moments one;
  CHECK(one.var() == 0.0);
  one.push(3.0);
  CHECK(one.sample_var() == 0.0);
  CHECK(one.mean() == 3.0);
  CHECK_THROWS_WITH_AS(one.push(NAN), "running_moments::push: x must be finite, got nan",
                       rlhf::data_error);
  CHECK_THROWS_WITH_AS(one.merge(-1.0, 0.0, 0.0),
                       "running_moments::merge: count must be finite and >= 0, got -1",
                       rlhf::data_error);
  CHECK_THROWS_AS(one.merge(2.0, INFINITY, 0.0), rlhf::data_error);
  CHECK_THROWS_AS((rl::running_moments{1.0, NAN, 0.0}), rlhf::data_error);
  const rl::running_moments seeded{4.0, 0.25, 3.0};
  CHECK(rlhf::to_string(rl::score_normalization::scale_only) == "scale_only");
  CHECK(rlhf::enum_from_string<rl::score_normalization>("none", "f", "mode") ==
        rl::score_normalization::none);
  CHECK(seeded.count() == 4.0);
  CHECK(seeded.mean() == 0.25);
  CHECK(seeded.m2() == 3.0);
}

TEST_CASE_TEMPLATE("score_normalizer: update then apply, clip", B, RLHF_TEST_BACKENDS) {
  rl::score_normalizer norm;  // subtract_mean, eps = float32 eps
  auto s1 = make<B>({1.0f, 2.0f, 3.0f, 4.0f}, rlhf::shape{4});
  norm.template operator()<B>(s1);
  // The batch is included before use: mean 2.5, sample std sqrt(5/3).
  const double sd1 = std::sqrt(5.0 / 3.0) + 1.1920929e-7;
  check_close(host<B>(s1),
              std::vector<float>{static_cast<float>(-1.5 / sd1), static_cast<float>(-0.5 / sd1),
                                 static_cast<float>(0.5 / sd1), static_cast<float>(1.5 / sd1)},
              "first batch");
  // Second batch {10}: moments over {1, 2, 3, 4, 10}: mean 4, sample var 12.5.
  auto s2 = make<B>({10.0f}, rlhf::shape{1});
  norm.template operator()<B>(s2);
  check_close(host<B>(s2)[0], static_cast<float>(6.0 / (std::sqrt(12.5) + 1.1920929e-7)),
              "second batch");
  CHECK(norm.moments().count() == 5.0);

  // scale_only with a clip at ±1; a first single score is left unscaled (std undefined).
  rl::score_normalizer scale({.mode = rl::score_normalization::scale_only,
                              .eps = 1.1920929e-7f, .score_clip = 1.0f});
  auto single = make<B>({0.5f}, rlhf::shape{1});
  scale.template operator()<B>(single);
  CHECK(host<B>(single)[0] == 0.5f);
  auto s3 = make<B>({-4.0f, 0.0f, 0.5f}, rlhf::shape{3});
  scale.template operator()<B>(s3);  // moments over {0.5, -4, 0, 0.5}
  const double sd = std::sqrt((0.5 * 0.5 + 4.0 * 4.0 + 0.0 + 0.25) / 3.0 -
                              (0.5 - 4.0 + 0.0 + 0.5) * (0.5 - 4.0 + 0.0 + 0.5) / 12.0);
  check_close(host<B>(s3),
              std::vector<float>{-1.0f, 0.0f, static_cast<float>(0.5 / (sd + 1.1920929e-7))},
              "scale_only then clip", 1e-5, 1e-6);

  // Mode none only clips.
  rl::score_normalizer clip_only({.mode = rl::score_normalization::none, .score_clip = 2.0f});
  auto s4 = make<B>({-3.0f, 1.0f, 5.0f}, rlhf::shape{3});
  clip_only.template operator()<B>(s4);
  CHECK(host<B>(s4) == std::vector<float>{-2.0f, 1.0f, 2.0f});

  CHECK_THROWS_WITH_AS(rl::score_normalizer({.score_clip = 0.0f}),
                       "score_normalizer: score_clip must be finite and > 0, got 0",
                       rlhf::config_error);
  rl::score_normalizer_config bad_mode;
  bad_mode.mode = static_cast<rl::score_normalization>(3);
  CHECK_THROWS_WITH_AS(rl::score_normalizer{bad_mode},
                       "score_normalizer: mode must be one of its 3 enumerators (0..2), got 3",
                       rlhf::config_error);
  auto bad = make<B>({1.0f, INFINITY}, rlhf::shape{2});
  CHECK_THROWS_WITH_AS(norm.template operator()<B>(bad),
                       "score_normalizer: scores must be finite, got inf at flat index 1",
                       rlhf::data_error);
}

}  // namespace test_running_moments_cases
