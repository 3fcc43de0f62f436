// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// AdamW, gradient clipping, accumulation helpers and LR schedules (rlhf/model/optim.hpp)
// against torch.optim.AdamW / clip_grad_norm_ / LambdaLR (tools/reference/adamw.py).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/model/optim.hpp"

namespace test_optim_cases {

using namespace rlhf_test;
namespace model = rlhf::model;
using rlhf::index_t;
using rlhf::shape;

namespace {

model::lr_schedule schedule_of(const json& cfg) {
  model::lr_schedule s;
  s.type = model::parse_lr_schedule_type(cfg.at("schedule").get<std::string>());
  s.lr = cfg.at("lr").get<float>();
  s.warmup_steps = cfg.at("warmup_steps").get<rlhf::index_t>();
  s.total_steps = cfg.at("total_steps").get<rlhf::index_t>();
  s.min_lr_ratio = cfg.at("min_lr_ratio").get<float>();
  return s;
}

/// a += b (a functor, not a lambda, so the CUDA build can launch it).
struct add_into {
  RLHF_HD void operator()(float& a, const float& b) const { a += b; }
};

std::vector<float> row(const std::vector<float>& m, std::size_t r, std::size_t cols) {
  return {m.begin() + static_cast<std::ptrdiff_t>(r * cols),
          m.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols)};
}

}  // namespace

TEST_CASE_TEMPLATE("adamw + clip_grad_norm + schedule match torch over 10 steps", B,
                   RLHF_TEST_BACKENDS) {
  int cases = 0;
  for (const auto& c : load_fixture("adamw.json")) {
    if (!c.has_input("params")) continue;
    ++cases;
    CAPTURE(c.name());
    const auto& cfg = c.config();
    model::adamw_config ac;
    ac.lr = cfg.at("lr").get<float>();
    ac.beta1 = cfg.at("beta1").get<float>();
    ac.beta2 = cfg.at("beta2").get<float>();
    ac.eps = cfg.at("eps").get<float>();
    ac.weight_decay = cfg.at("weight_decay").get<float>();
    const auto sched = schedule_of(cfg);
    const float max_norm = cfg.at("max_norm").get<float>();
    std::vector<bool> clip(10, false);
    for (const auto& s : cfg.at("clip_steps")) clip[s.get<std::size_t>()] = true;

    std::vector<model::param_range> ranges;
    for (const auto& r : cfg.at("ranges")) {
      ranges.push_back({r[0].get<rlhf::index_t>(), r[1].get<rlhf::index_t>(), r[2].get<bool>()});
    }
    auto params = c.tensor<B>("params");
    const rlhf::index_t P = params.size();
    const auto mask = model::make_decay_mask<B>(P, ranges);
    check_close(host<B>(mask), c.input("decay_mask"), "decay mask", 0.0, 0.0);

    const auto all_grads = c.input("grads");
    const auto want_params = c.output("params");
    const auto want_norm = c.output("grad_norm");
    const auto want_lr = c.output("lr");
    model::adamw<B> opt(P, ac);
    const auto p = static_cast<std::size_t>(P);
    for (std::size_t t = 0; t < 10; ++t) {
      CAPTURE(t);
      auto g = make<B>(row(all_grads, t, p), rlhf::shape{P});
      // Norms: float32 sum of squares against float64 torch.
      const float norm = clip[t] ? model::clip_grad_norm<B>(g, max_norm) : model::grad_norm<B>(g);
      check_close(norm, want_norm[t], "grad norm", 1e-5, 0.0);
      const float lr = sched.lr_at(static_cast<rlhf::index_t>(t));
      check_close(lr, want_lr[t], "lr", 1e-6, 0.0);
      CHECK(opt.step_count() == static_cast<std::int64_t>(t));
      opt.step(params, g, mask, lr);
      // float32 against float64 torch: each step rounds p and the update (|Δp| ~ lr) to a
      // few ulps; measured worst over 10 steps < 1e-6 relative, except one parameter of
      // magnitude 2e-4 that the abs 1e-7 term covers.
      check_close(host<B>(params), row(want_params, t, p), "params after step", 1e-5, 1e-7);
    }
    CHECK(opt.step_count() == c.j.at("outputs").at("step").get<std::int64_t>());
    // The moments: m is a sum of clipped gradients (abs 1e-6 for entries near 0), v of their
    // squares.
    check_close(host<B>(opt.exp_avg()), c.output("exp_avg"), "exp_avg", 1e-5, 1e-6);
    check_close(host<B>(opt.exp_avg_sq()), c.output("exp_avg_sq"), "exp_avg_sq", 1e-5, 1e-9);
  }
  CHECK(cases == 3);
}

TEST_CASE("lr schedules match transformers' formulas (LambdaLR)") {
  int cases = 0;
  for (const auto& c : load_fixture("adamw.json")) {
    if (c.has_input("params")) continue;
    ++cases;
    CAPTURE(c.name());
    const auto sched = schedule_of(c.config());
    const auto want = c.output("lr");
    std::vector<float> got;
    for (std::size_t s = 0; s < want.size(); ++s) {
      got.push_back(sched.lr_at(static_cast<rlhf::index_t>(s)));
    }
    check_close(got, want, "lr", 1e-6, 1e-12);
  }
  CHECK(cases == 6);

  model::lr_schedule cos;
  cos.type = model::lr_schedule_type::cosine;
  cos.lr = 1.0f;
  cos.warmup_steps = 2;
  cos.total_steps = 10;
  cos.min_lr_ratio = 0.1f;
  CHECK(cos.lr_at(0) == 0.0f);
  CHECK(cos.lr_at(2) == 1.0f);
  CHECK(cos.lr_at(10) == doctest::Approx(0.1));
  // Past total_steps the cosine stays at its minimum (transformers' would rise again).
  CHECK(cos.lr_at(25) == doctest::Approx(0.1));
  CHECK(model::to_string(model::lr_schedule_type::linear) == "linear");
  CHECK_THROWS_WITH_AS((void)model::parse_lr_schedule_type("step"),
                       "parse_lr_schedule_type: unknown lr_schedule_type 'step'; accepted: "
                       "constant, cosine, linear",
                       rlhf::config_error);
  auto bad = cos;
  bad.total_steps = 2;
  CHECK_THROWS_WITH_AS((void)bad.lr_at(0),
                       "lr_schedule: total_steps must be > warmup_steps (2) for the cosine "
                       "schedule, got 2",
                       rlhf::config_error);
  bad = cos;
  bad.min_lr_ratio = 1.5f;
  CHECK_THROWS_WITH_AS((void)bad.lr_at(0), "lr_schedule: min_lr_ratio must be in [0, 1], got 1.5",
                       rlhf::config_error);
  CHECK_THROWS_WITH_AS((void)cos.lr_at(-1), "lr_schedule::lr_at: step must be >= 0, got -1",
                       rlhf::config_error);
  model::lr_schedule constant;  // no total_steps needed
  CHECK(constant.lr_at(1000) == 1e-3f);
}

TEST_CASE_TEMPLATE("adamw invariants, state and bad input", B, RLHF_TEST_BACKENDS) {
  using tensor = typename B::tensor;
  const rlhf::shape s{5};
  // The first step of Adam moves every parameter by about lr·sign(g) (|m̂| / sqrt(v̂) = 1).
  {
    model::adamw_config cfg;
    cfg.weight_decay = 0.0f;
    model::adamw<B> opt(5, cfg);
    auto p = make<B>({1.0f, -2.0f, 0.5f, 3.0f, 0.0f}, s);
    const auto g = make<B>({0.3f, -7.0f, 1e-2f, -0.5f, 2.0f}, s);
    const auto mask = model::make_decay_mask<B>(5, std::vector<model::param_range>{});
    opt.step(p, g, mask);
    check_close(host<B>(p), std::vector<float>{1.0f - 1e-3f, -2.0f + 1e-3f, 0.5f - 1e-3f, 3.0f + 1e-3f, -1e-3f},
                "first step = -lr·sign(g)", 1e-5, 1e-7);
  }
  // Zero gradient, lr 0.1, wd 0.5: only the decayed entries shrink, by exactly 1 - lr·wd.
  {
    model::adamw_config cfg;
    cfg.lr = 0.1f;
    cfg.weight_decay = 0.5f;
    model::adamw<B> opt(4, cfg);
    auto p = make<B>({1.0f, 2.0f, 3.0f, 4.0f}, rlhf::shape{4});
    tensor g(rlhf::shape{4});
    model::zero_grads<B>(g);
    const std::vector<model::param_range> r{{0, 4, true}, {1, 2, false}};
    const auto mask = model::make_decay_mask<B>(4, r);
    check_close(host<B>(mask), std::vector<float>{1.0f, 0.0f, 0.0f, 1.0f}, "mask (later range wins)", 0.0, 0.0);
    opt.step(p, g, mask);
    check_close(host<B>(p), std::vector<float>{0.95f, 2.0f, 3.0f, 3.8f}, "decoupled decay", 1e-6, 0.0);
  }
  // State round trip: a fresh optimizer loaded with (m, v, step) continues identically.
  {
    model::adamw<B> a(5);
    auto pa = make<B>({1.0f, 2.0f, 3.0f, 4.0f, 5.0f}, s);
    const auto g1 = make<B>({0.1f, -0.2f, 0.3f, -0.4f, 0.5f}, s);
    const auto g2 = make<B>({-1.0f, 0.5f, 0.25f, 2.0f, -0.1f}, s);
    const auto mask = make<B>({1.0f, 1.0f, 0.0f, 1.0f, 0.0f}, s);
    a.step(pa, g1, mask);
    model::adamw<B> b(5);
    b.load_state(a.exp_avg(), a.exp_avg_sq(), a.step_count());
    auto pb = make<B>(host<B>(pa), s);
    a.step(pa, g2, mask, 5e-3f);
    b.step(pb, g2, mask, 5e-3f);
    CHECK(host<B>(pa) == host<B>(pb));
    CHECK(b.step_count() == 2);
    CHECK(a.state_bytes() == 2 * 5 * sizeof(float));
    b.reset();
    CHECK(b.step_count() == 0);
    check_close(host<B>(b.exp_avg()), std::vector<float>(5, 0.0f), "reset m", 0.0, 0.0);
  }
  // Gradient accumulation: k micro-batch gradients summed then scaled by 1/k = their mean.
  {
    tensor acc(s);
    model::zero_grads<B>(acc);
    const std::vector<std::vector<float>> micro{{1, 2, 3, 4, 5}, {3, 2, 1, 0, -1}, {2, 2, 2, 2, 2}};
    for (const auto& m : micro) {
      const auto gm = make<B>(m, s);
      rlhf::ops::for_each<B>(add_into{}, acc, gm);  // what a backward pass does
    }
    model::scale_grads<B>(acc, 1.0f / 3.0f);
    check_close(host<B>(acc), std::vector<float>{2.0f, 2.0f, 2.0f, 2.0f, 2.0f}, "accumulated mean", 1e-6, 1e-7);
  }
  // clip_grad_norm: below max_norm nothing changes; above, the norm becomes max_norm.
  {
    auto g = make<B>({3.0f, 4.0f, 0.0f, 0.0f, 0.0f}, s);
    CHECK(model::clip_grad_norm<B>(g, 10.0f) == 5.0f);
    check_close(host<B>(g), std::vector<float>{3.0f, 4.0f, 0.0f, 0.0f, 0.0f}, "unclipped", 0.0, 0.0);
    CHECK(model::clip_grad_norm<B>(g, 1.0f) == 5.0f);
    check_close(model::grad_norm<B>(g), 1.0f, "clipped norm", 1e-6, 0.0);
    // Many chunks (P not a multiple of the chunk size): norm of P ones is sqrt(P).
    tensor big(rlhf::shape{10001});
    rlhf::ops::fill<B>(big, 1.0f);
    check_close(model::grad_norm<B>(big), std::sqrt(10001.0f), "chunked norm", 1e-6, 0.0);
    tensor empty(rlhf::shape{0});
    CHECK(model::clip_grad_norm<B>(empty, 1.0f) == 0.0f);
  }

  // Bad input, each message naming the argument.
  model::adamw_config bad;
  bad.lr = -1.0f;
  CHECK_THROWS_WITH_AS(model::adamw<B>(5, bad), "adamw: lr must be finite and >= 0, got -1",
                       rlhf::config_error);
  bad = {};
  bad.beta1 = 1.0f;
  CHECK_THROWS_WITH_AS(model::adamw<B>(5, bad), "adamw: beta1 must be in [0, 1), got 1",
                       rlhf::config_error);
  bad = {};
  bad.beta2 = -0.5f;
  CHECK_THROWS_WITH_AS(model::adamw<B>(5, bad), "adamw: beta2 must be in [0, 1), got -0.5",
                       rlhf::config_error);
  bad = {};
  bad.eps = -1e-8f;
  CHECK_THROWS_AS(model::adamw<B>(5, bad), rlhf::config_error);
  bad = {};
  bad.weight_decay = NAN;
  CHECK_THROWS_WITH_AS(model::adamw<B>(5, bad),
                       "adamw: weight_decay must be finite and >= 0, got nan",
                       rlhf::config_error);

  model::adamw<B> opt(5);
  auto p = make<B>({1, 2, 3, 4, 5}, s);
  const auto g = make<B>({1, 1, 1, 1, 1}, s);
  const auto mask = make<B>({1, 1, 1, 1, 1}, s);
  const auto short_t = make<B>({1, 2, 3, 4}, rlhf::shape{4});
  CHECK_THROWS_WITH_AS(opt.step(p, short_t, mask),
                       "adamw::step: grads has shape (4), expected (5) (the optimizer's "
                       "parameter count)",
                       rlhf::shape_error);
  auto short_p = make<B>({1, 2, 3, 4}, rlhf::shape{4});
  CHECK_THROWS_AS(opt.step(short_p, g, mask), rlhf::shape_error);
  CHECK_THROWS_AS(opt.step(p, g, short_t), rlhf::shape_error);
  const auto nan_g = make<B>({1, 1, INFINITY, 1, 1}, s);
  CHECK_THROWS_WITH_AS(opt.step(p, nan_g, mask),
                       "adamw::step: grads must be finite, got inf at flat index 2",
                       rlhf::data_error);
  CHECK_THROWS_WITH_AS(opt.step(p, g, mask, -0.1f),
                       "adamw::step: lr must be finite and >= 0, got -0.100000001",
                       rlhf::config_error);
  CHECK(opt.step_count() == 0);  // nothing ran
  check_close(host<B>(p), std::vector<float>{1, 2, 3, 4, 5}, "params untouched by rejected steps", 0.0, 0.0);
  CHECK_THROWS_AS(opt.load_state(short_t, short_t, 1), rlhf::shape_error);
  CHECK_THROWS_WITH_AS(opt.load_state(g, g, -1),
                       "adamw::load_state: step must be in [0, 9007199254740991], got -1",
                       rlhf::config_error);
  // A step count past 2^53 - 1 (INT64_MAX would overflow on the next step) and a negative
  // or non-finite second moment (the first step would turn every parameter NaN).
  CHECK_THROWS_AS(opt.load_state(g, g, std::numeric_limits<std::int64_t>::max()),
                  rlhf::config_error);
  CHECK_THROWS_AS(opt.load_state(g, g, model::adamw_max_step + 1), rlhf::config_error);
  const auto negative_v = make<B>({1, 1, -1e-3f, 1, 1}, s);
  CHECK_THROWS_WITH_AS(opt.load_state(g, negative_v, 1),
                       "adamw::load_state: exp_avg_sq must hold finite weights >= 0, got "
                       "-0.00100000005 at flat index 2",
                       rlhf::data_error);
  const auto nan_v = make<B>({1, 1, 1, NAN, 1}, s);
  CHECK_THROWS_AS(opt.load_state(g, nan_v, 1), rlhf::data_error);
  CHECK(opt.step_count() == 0);  // nothing was restored
  {
    model::adamw<B> last(5, opt.config());
    last.load_state(g, g, model::adamw_max_step);
    CHECK_THROWS_WITH_AS(last.step(p, g, mask),
                         "adamw::step: step count must be < 9007199254740991, got "
                         "9007199254740991",
                         rlhf::config_error);
    CHECK(last.step_count() == model::adamw_max_step);
  }

  auto ng = make<B>({1, NAN, 1, 1, 1}, s);
  CHECK_THROWS_WITH_AS((void)model::clip_grad_norm<B>(ng, 1.0f),
                       "clip_grad_norm: grads must be finite, got nan at flat index 1",
                       rlhf::data_error);
  auto huge = make<B>({3e19f, 0, 0, 0, 0}, s);
  CHECK_THROWS_AS((void)model::clip_grad_norm<B>(huge, 1.0f), rlhf::data_error);
  auto fine = make<B>({1, 1, 1, 1, 1}, s);
  CHECK_THROWS_WITH_AS((void)model::clip_grad_norm<B>(fine, 0.0f),
                       "clip_grad_norm: max_norm must be finite and > 0, got 0",
                       rlhf::config_error);
  CHECK_THROWS_WITH_AS(model::scale_grads<B>(fine, INFINITY),
                       "scale_grads: factor must be finite, got inf", rlhf::config_error);
  const std::vector<model::param_range> outside{{3, 4, true}};
  CHECK_THROWS_WITH_AS((void)model::make_decay_mask<B>(5, outside),
                       "make_decay_mask: range 0 [3, 7) lies outside the arena [0, 5)",
                       rlhf::shape_error);
}

TEST_CASE_TEMPLATE("adamw step from decay ranges equals the masked step bit for bit", B,
                   RLHF_TEST_BACKENDS) {
  const index_t P = 1000;
  // Alternating runs, some adjacent with the same flag (merged), one of size 0.
  const std::vector<model::param_range> ranges{{0, 300, true},  {300, 7, false},
                                               {307, 0, true},  {307, 93, true},
                                               {400, 10, false}, {410, 5, false},
                                               {415, 585, true}};
  std::vector<float> p0(static_cast<std::size_t>(P));
  for (std::size_t i = 0; i < p0.size(); ++i) p0[i] = rlhf::philox_normal(3, 0, 0, i);
  const model::adamw_config cfg{.lr = 1e-2f, .weight_decay = 0.5f};
  model::adamw<B> a(P, cfg), b(P, cfg);
  auto pa = rlhf::ops::from_host<B>(std::span<const float>(p0), shape{P});
  auto pb = rlhf::ops::from_host<B>(std::span<const float>(p0), shape{P});
  const auto mask = model::make_decay_mask<B>(P, ranges);
  for (std::uint64_t s = 0; s < 3; ++s) {
    std::vector<float> g(static_cast<std::size_t>(P));
    for (std::size_t i = 0; i < g.size(); ++i) g[i] = rlhf::philox_normal(4, s, 0, i);
    const auto gt = rlhf::ops::from_host<B>(std::span<const float>(g), shape{P});
    a.step(pa, gt, mask);
    b.step(pb, gt, std::span<const model::param_range>(ranges));
  }
  const auto ha = rlhf_test::host<B>(pa), hb = rlhf_test::host<B>(pb);
  CHECK(std::memcmp(ha.data(), hb.data(), ha.size() * sizeof(float)) == 0);
  const auto ma = rlhf_test::host<B>(a.exp_avg_sq()), mb = rlhf_test::host<B>(b.exp_avg_sq());
  CHECK(std::memcmp(ma.data(), mb.data(), ma.size() * sizeof(float)) == 0);
  CHECK(b.step_count() == 3);
  // Decay did happen where it should: without it the result differs.
  CHECK(std::memcmp(ha.data(), p0.data(), ha.size() * sizeof(float)) != 0);

  // Ranges that do not tile [0, P).
  const auto g0 = rlhf::ops::from_host<B>(std::span<const float>(p0), shape{P});
  const std::vector<model::param_range> gap{{0, 10, true}, {11, 989, false}};
  CHECK_THROWS_WITH_AS(b.step(pb, g0, std::span<const model::param_range>(gap)),
                       doctest::Contains("range 1 is [11, 1000), expected offset 10"),
                       rlhf::config_error);
  const std::vector<model::param_range> short_{{0, 999, true}};
  CHECK_THROWS_WITH_AS(b.step(pb, g0, std::span<const model::param_range>(short_)),
                       doctest::Contains("ranges cover [0, 999), the optimizer holds 1000"),
                       rlhf::config_error);
  CHECK(b.step_count() == 3);  // a refused step does not count
}

}  // namespace test_optim_cases
