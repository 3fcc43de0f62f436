// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <rlhf/core/errors.hpp>
#include <rlhf/core/validate.hpp>
#include <rlhf/core/validation.hpp>
#include <rlhf/losses/kto.hpp>
#include <rlhf/ops/tensor.hpp>
#include <rlhf/rl/kl_controller.hpp>
#include <rlhf/testing/minimal_backend.hpp>

TEST_CASE("errors: one hierarchy under rlhf::error") {
  CHECK_THROWS_AS(throw rlhf::shape_error("x"), rlhf::error);
  CHECK_THROWS_AS(throw rlhf::config_error("x"), rlhf::error);
  CHECK_THROWS_AS(throw rlhf::data_error("x"), rlhf::error);
  CHECK_THROWS_AS(throw rlhf::io_error("x"), rlhf::error);
  CHECK_THROWS_AS(throw rlhf::backend_error("x"), rlhf::error);
  CHECK_THROWS_AS(throw rlhf::error("x"), std::runtime_error);
}

TEST_CASE("validation helpers name the function, the argument, the rule and the value") {
  using rlhf::shape;
  CHECK_NOTHROW(rlhf::check_same_shape("dpo_loss", "a", shape{7}, "b", shape{7}));
  CHECK_THROWS_WITH_AS(
      rlhf::check_same_shape("dpo_loss", "policy_chosen_logps", shape{7},
                             "ref_chosen_logps", shape{8}),
      "dpo_loss: policy_chosen_logps has shape (7) but ref_chosen_logps has shape (8); they "
      "must match",
      rlhf::shape_error);
  CHECK_THROWS_WITH_AS(rlhf::check_shape("gae", "values", shape{4, 3}, shape{4, 5}, "B, T"),
                       "gae: values has shape (4, 3), expected (4, 5) (B, T)",
                       rlhf::shape_error);
  CHECK_THROWS_WITH_AS(rlhf::check_rank("gemm_batched", "a", shape{2, 3}, 3, 3),
                       "gemm_batched: a must have rank 3, got shape (2, 3)", rlhf::shape_error);
  CHECK_THROWS_WITH_AS(rlhf::check_dim("gemm", "the inner dimension", 4, 5),
                       "gemm: the inner dimension must be 5, got 4", rlhf::shape_error);
  const double beta = -0.1;
  CHECK_NOTHROW(rlhf::check_config(0.1 > 0, "dpo_loss", "beta", "> 0", 0.1));
  CHECK_THROWS_WITH_AS(rlhf::check_config(beta > 0, "dpo_loss", "beta", "> 0", beta),
                       "dpo_loss: beta must be > 0, got -0.1", rlhf::config_error);
  const std::vector<float> v{1.0f, 2.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_WITH_AS(rlhf::check_finite("sft_loss", "logits", v),
                       "sft_loss: logits must be finite, got nan at flat index 2",
                       rlhf::data_error);
  const std::vector<float> ok{1.0f, -1e30f};
  CHECK_NOTHROW(rlhf::check_finite("sft_loss", "logits", ok));
}

namespace {
enum class three_values : unsigned char { a, b, c };
}  // namespace

TEST_CASE("check_enum rejects a value outside the enumerators, naming field and value") {
  CHECK_NOTHROW(rlhf::check_enum("f", "mode", three_values::c, 3));
  CHECK_THROWS_WITH_AS(rlhf::check_enum("f", "mode", static_cast<three_values>(200), 3),
                       "f: mode must be one of its 3 enumerators (0..2), got 200",
                       rlhf::config_error);
  enum class signed_values : int { x, y };
  CHECK_THROWS_WITH_AS(rlhf::check_enum("g", "kind", static_cast<signed_values>(-1), 2),
                       "g: kind must be one of its 2 enumerators (0..1), got -1",
                       rlhf::config_error);
}

TEST_CASE("validation level: set_validation, validating and scoped_validation") {
  using rlhf::validation;
  REQUIRE(rlhf::validation_level() == validation::full);  // the compile-time default
  CHECK(rlhf::validating(validation::full));
  CHECK(rlhf::to_string(validation::cheap) == "cheap");
  CHECK(rlhf::enum_from_string<validation>("none", "cli", "--validation") == validation::none);
  CHECK_THROWS_AS((void)rlhf::enum_from_string<validation>("some", "cli", "--validation"),
                  rlhf::config_error);
  {
    const rlhf::scoped_validation outer(validation::cheap);
    CHECK(rlhf::validation_level() == validation::cheap);
    CHECK(rlhf::validating(validation::cheap));
    CHECK_FALSE(rlhf::validating(validation::full));
    {
      const rlhf::scoped_validation inner(validation::none);
      CHECK_FALSE(rlhf::validating(validation::cheap));
      CHECK(rlhf::validating(validation::none));
    }
    CHECK(rlhf::validation_level() == validation::cheap);
  }
  CHECK(rlhf::validation_level() == validation::full);
  CHECK(rlhf::set_validation(validation::none) == validation::full);
  CHECK(rlhf::set_validation(validation::full) == validation::none);
}

TEST_CASE("validation level: NaN data throws data_error at full but not at none, shapes always") {
  using B = rlhf::testing::minimal_backend;
  using rlhf::validation;
  const auto make = [](std::vector<float> v) {
    B::tensor t(rlhf::shape{static_cast<rlhf::index_t>(v.size())});
    rlhf::ops::copy_from_host<B>(std::span<const float>(v), t);
    return t;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const B::tensor policy = make({-1.0f, nan, -2.0f, -0.5f});
  const B::tensor reference = make({-1.5f, -1.0f, -2.5f, -0.7f});
  const B::tensor labels = make({1.0f, 0.0f, 1.0f, 0.0f});
  const B::tensor short_labels = make({1.0f, 0.0f, 1.0f});
  const rlhf::losses::kto_inputs<B> in{
      .policy_logps = policy, .reference_logps = reference, .labels = labels};
  rlhf::losses::kto_config cfg;
  cfg.loss_type = rlhf::losses::kto_loss_type::apo_zero_unpaired;  // no KL inputs needed
  CHECK_THROWS_WITH_AS((void)rlhf::losses::kto_loss<B>(in, cfg),
                       doctest::Contains("policy_logps must be finite"), rlhf::data_error);
  {
    const rlhf::scoped_validation level(validation::none);
    CHECK_NOTHROW((void)rlhf::losses::kto_loss<B>(in, cfg));
    const rlhf::losses::kto_inputs<B> bad{
        .policy_logps = policy, .reference_logps = reference, .labels = short_labels};
    CHECK_THROWS_AS((void)rlhf::losses::kto_loss<B>(bad, cfg), rlhf::shape_error);
  }
  CHECK(rlhf::validation_level() == validation::full);
}

TEST_CASE("a non-finite measured KL is a data_error, a bad option a config_error") {
  rlhf::rl::adaptive_kl_controller ctl;
  CHECK_THROWS_WITH_AS((void)ctl.update(std::nan(""), 1.0),
                       doctest::Contains("current_kl must be finite"), rlhf::data_error);
  CHECK_THROWS_AS((void)ctl.update(1.0, -1.0), rlhf::config_error);
  const rlhf::rl::fixed_kl_controller fixed;
  CHECK_THROWS_AS(fixed.update(std::numeric_limits<double>::infinity(), 1.0), rlhf::data_error);
}
