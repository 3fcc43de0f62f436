// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Dropout (rlhf/model/layers.hpp dropout_forward/backward, attention_dropout; gpt_forward /
// gpt_backward with gpt_config::dropout > 0): the mask is the documented Philox rule (checked
// element by element against philox_uniform on the host), its rate is p within 5 sigma, the
// backward regenerates the same mask, attention and the whole model pass central finite
// differences with dropout on, and train = false / frozen models / p = 0 drop nothing.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "fixture.hpp"
#include "random_data.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/layers.hpp"

namespace test_dropout_cases {

namespace model = rlhf::model;
using rlhf::index_t;
using rlhf::shape;
using rlhf_test::check_gradient_fd;
using rlhf_test::dot;
using rlhf_test::host;
using rlhf_test::make;
using rlhf_test::randn;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

model::gpt_config tiny_config(float p) {
  model::gpt_config cfg;
  cfg.vocab_size = 11;
  cfg.vocab_multiple = 1;
  cfg.max_seq_len = 4;
  cfg.n_layer = 2;
  cfg.n_head = 2;
  cfg.n_embd = 4;
  cfg.dropout = p;
  return cfg;
}

}  // namespace

TEST_CASE_TEMPLATE("dropout layer: Philox mask, rate, scaling, backward, bad p", B,
                   RLHF_TEST_BACKENDS) {
  const index_t n = 20000;
  const float p = 0.3f;
  const model::dropout_key key{1234, 56};
  const auto x = randn(static_cast<std::size_t>(n), 1);
  const auto xt = make<B>(x, shape{n});
  typename B::tensor y(shape{n});
  model::dropout_forward<B>(y, xt, p, key);
  const auto yh = host<B>(y);
  index_t kept = 0;
  for (index_t i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    const bool keep = rlhf::philox_uniform(key.seed, key.stream, 0, k) >= p;
    kept += keep ? 1 : 0;
    REQUIRE(yh[k] == (keep ? x[k] * (1.0f / (1.0f - p)) : 0.0f));
  }
  const double rate = 1.0 - static_cast<double>(kept) / static_cast<double>(n);
  CHECK(std::abs(rate - p) < 5.0 * std::sqrt(p * (1.0 - p) / n));

  // Another stream, another mask; the same key, the same mask (in place too).
  typename B::tensor y2(shape{n});
  model::dropout_forward<B>(y2, xt, p, model::dropout_key{1234, 57});
  CHECK_FALSE(same_bits(host<B>(y2), yh));
  auto inplace = make<B>(x, shape{n});
  model::dropout_forward<B>(inplace, inplace, p, key);
  CHECK(same_bits(host<B>(inplace), yh));

  // Backward passes dout through the same mask: on dout = x into zeros it gives exactly y;
  // a second call accumulates (2y up to the rounding of a fused multiply-add).
  auto dx = make<B>(std::vector<float>(static_cast<std::size_t>(n), 0.0f), shape{n});
  model::dropout_backward<B>(dx, xt, p, key);
  CHECK(host<B>(dx) == yh);  // by value: 0 + (-x)·0 is +0 where the forward wrote -0
  model::dropout_backward<B>(dx, xt, p, key);
  const auto dxh = host<B>(dx);
  for (std::size_t i = 0; i < dxh.size(); ++i) {
    REQUIRE(dxh[i] == doctest::Approx(2.0f * yh[i]).epsilon(1e-6));
  }

  // p = 0 copies.
  model::dropout_forward<B>(y2, xt, 0.0f, key);
  CHECK(same_bits(host<B>(y2), x));

  for (float bad : {-0.1f, 1.0f, std::numeric_limits<float>::quiet_NaN()}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(model::dropout_forward<B>(y2, xt, bad, key),
                         doctest::Contains("dropout_forward: p must be in [0, 1)"),
                         rlhf::config_error);
    CHECK_THROWS_AS(model::dropout_backward<B>(dx, xt, bad, key), rlhf::config_error);
  }
  typename B::tensor wrong(shape{n - 1});
  CHECK_THROWS_AS(model::dropout_forward<B>(wrong, xt, p, key), rlhf::shape_error);
}

TEST_CASE_TEMPLATE("attention with dropout: finite differences and the mask on v", B,
                   RLHF_TEST_BACKENDS) {
  const index_t Bn = 2, T = 4, C = 6, NH = 2;
  const float p = 0.25f;
  const model::attention_dropout<B>* none = nullptr;
  typename B::tensor dropped(shape{Bn, NH, T, T});
  const model::attention_dropout<B> drop{&dropped, p, {7, 3}};
  const auto x = randn(static_cast<std::size_t>(Bn * T * 3 * C), 2);
  const auto w = randn(static_cast<std::size_t>(Bn * T * C), 3);
  typename B::tensor out(shape{Bn, T, C}), preatt(shape{Bn, NH, T, T}), att(shape{Bn, NH, T, T});
  auto loss = [&](const std::vector<float>& xv) {
    model::attention_forward<B>(out, preatt, att, make<B>(xv, shape{Bn, T, 3 * C}), &drop);
    return dot(host<B>(out), w);
  };
  (void)loss(x);
  // The dropped probabilities are att through the key's mask, and some entries are dropped.
  const auto ah = host<B>(att), dh = host<B>(dropped);
  index_t zeros = 0;
  for (std::size_t i = 0; i < ah.size(); ++i) {
    const bool keep = rlhf::philox_uniform(7, 3, 0, i) >= p;
    REQUIRE(dh[i] == (keep ? ah[i] * (1.0f / (1.0f - p)) : 0.0f));
    zeros += (!keep && ah[i] != 0.0f) ? 1 : 0;
  }
  CHECK(zeros > 0);
  // Without dropout the output differs.
  typename B::tensor out0(shape{Bn, T, C});
  model::attention_forward<B>(out0, preatt, att, make<B>(x, shape{Bn, T, 3 * C}), none);
  (void)loss(x);
  CHECK_FALSE(same_bits(host<B>(out0), host<B>(out)));

  auto dx = make<B>(std::vector<float>(x.size(), 0.0f), shape{Bn, T, 3 * C});
  typename B::tensor dpre(shape{Bn, NH, T, T}), datt(shape{Bn, NH, T, T});
  model::attention_backward<B>(dx, dpre, datt, make<B>(w, shape{Bn, T, C}),
                               make<B>(x, shape{Bn, T, 3 * C}), att, &drop);
  check_gradient_fd(loss, x, std::span<const float>(host<B>(dx)), "attention with dropout",
                    1e-2f, 1e-2, 1e-3);
}

TEST_CASE_TEMPLATE("GPT with dropout: finite differences of every parameter, train/eval", B,
                   RLHF_TEST_BACKENDS) {
  const auto cfg = tiny_config(0.2f);
  const index_t Bn = 2, T = 3;
  const std::vector<std::int32_t> ids{1, 2, 3, 4, 5, 6};
  const auto tokens =
      rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{Bn, T});
  const auto wl = randn(static_cast<std::size_t>(Bn * T * cfg.vocab_size), 4, 0.1f);
  model::gpt<B> m(cfg);
  // O(1) weights (see test_heads.cpp): LayerNorms of C = 4 amplify 0.02-scale streams.
  const auto p0 = randn(static_cast<std::size_t>(m.num_params()), 5, 0.5f);
  rlhf::ops::copy_from_host<B>(std::span<const float>(p0), m.params());
  model::gpt_activations<B> acts(cfg, Bn, T);
  acts.dropout_seed = 99;

  // Every forward of the finite differences reuses forward index 0, so the same masks.
  auto loss = [&](const std::vector<float>& p) {
    rlhf::ops::copy_from_host<B>(std::span<const float>(p), m.params());
    acts.dropout_forwards = 0;
    model::gpt_forward<B>(m, acts, tokens);
    return dot(host<B>(acts.logits), wl);
  };
  (void)loss(p0);
  CHECK(acts.dropout_applied);
  CHECK(acts.dropout_forwards == 1);
  m.zero_grads();
  model::gpt_backward<B>(m, acts, tokens, make<B>(wl, acts.logits.shape()));
  check_gradient_fd(loss, p0, std::span<const float>(host<B>(m.grads())),
                    "GPT gradient with dropout");

  // The next training forward draws new masks; resetting the counter reproduces them.
  rlhf::ops::copy_from_host<B>(std::span<const float>(p0), m.params());
  acts.dropout_forwards = 0;
  model::gpt_forward<B>(m, acts, tokens);
  const auto first = host<B>(acts.logits);
  model::gpt_forward<B>(m, acts, tokens);
  CHECK(acts.dropout_forwards == 2);
  CHECK_FALSE(same_bits(host<B>(acts.logits), first));
  acts.dropout_forwards = 0;
  model::gpt_forward<B>(m, acts, tokens);
  CHECK(same_bits(host<B>(acts.logits), first));

  // Eval (train = false) is the model without dropout, bit for bit; so is a frozen copy.
  auto cfg0 = cfg;
  cfg0.dropout = 0.0f;
  model::gpt<B> m0(cfg0);
  rlhf::ops::copy_from_host<B>(std::span<const float>(p0), m0.params());
  model::gpt_activations<B> acts0(cfg0, Bn, T);
  model::gpt_forward<B>(m0, acts0, tokens);
  const auto reference = host<B>(acts0.logits);
  acts.train = false;
  model::gpt_forward<B>(m, acts, tokens);
  CHECK_FALSE(acts.dropout_applied);
  CHECK(acts.dropout_forwards == 1);
  CHECK(same_bits(host<B>(acts.logits), reference));
  model::gpt<B> frozen(cfg, false);
  rlhf::ops::copy_from_host<B>(std::span<const float>(p0), frozen.params());
  acts.train = true;
  model::gpt_forward<B>(frozen, acts, tokens);
  CHECK(same_bits(host<B>(acts.logits), reference));

  // Activations sized for a config without dropout cannot run a dropout forward.
  CHECK_THROWS_WITH_AS(model::gpt_forward<B>(m, acts0, tokens),
                       doctest::Contains("acts"), rlhf::config_error);
  // The config checks its range.
  auto bad = cfg;
  bad.dropout = 1.0f;
  CHECK_THROWS_WITH_AS(bad.validate(), doctest::Contains("dropout must be in [0, 1)"),
                       rlhf::config_error);
}

}  // namespace test_dropout_cases
