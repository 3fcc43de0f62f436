// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include <rlhf/core/errors.hpp>
#include <rlhf/core/validate.hpp>

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
