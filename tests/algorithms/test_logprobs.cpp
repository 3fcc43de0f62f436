// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Fused sequence log-probs (rlhf/ops/logprobs.hpp) and the SFT loss (rlhf/losses/sft.hpp).
#include <cmath>
#include <limits>

#include "fixture.hpp"
#include "rlhf/losses/sft.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/slice.hpp"
#include "rlhf/ops/tensor.hpp"

namespace test_logprobs_cases {

using namespace rlhf_test;
namespace ops = rlhf::ops;
using rlhf::shape;

TEST_CASE("exp_nonpositive is within 2 ulp of std::exp on [-87, 0]") {
  double worst = 0.0;
  for (int k = 0; k <= 200000; ++k) {
    const float x = -87.0f * static_cast<float>(k) / 200000.0f;
    const double want = std::exp(static_cast<double>(x));
    const double got = ops::detail::exp_nonpositive(x);
    worst = std::max(worst, std::abs(got - want) / want);
  }
  CHECK(worst < 2.5e-7);  // 2 ulp of float at the top of a binade
  CHECK(ops::detail::exp_nonpositive(-100.0f) == 0.0f);
  CHECK(ops::detail::exp_nonpositive(-std::numeric_limits<float>::infinity()) == 0.0f);
  CHECK(ops::detail::exp_nonpositive(0.0f) == 1.0f);
}

TEST_CASE_TEMPLATE("token_logprobs forward and backward match PyTorch autograd", B,
                   RLHF_TEST_BACKENDS) {
  for (const auto& c : load_fixture("logprobs.json")) {
    CAPTURE(c.name());
    const auto z = c.tensor<B>("logits");
    const auto y = c.index_tensor<B>("tokens");
    const auto m = c.tensor<B>("mask");
    ops::logprob_options opt;
    opt.temperature = c.config().at("temperature").get<float>();
    opt.compute_entropy = true;
    const auto fwd = ops::token_logprobs<B>(z, y, m, opt);
    check_close(host<B>(fwd.logps), c.output("logps"), "logps");
    check_close(host<B>(fwd.entropy), c.output("entropy"), "entropy", 1e-5, 1e-5);
    check_close(host<B>(fwd.correct), c.output("correct"), "correct");

    const auto g = c.tensor<B>("grad_logps");
    const auto ge = c.tensor<B>("grad_entropy");
    typename B::tensor gz(z.shape());
    ops::token_logprobs_backward<B>(z, y, m, fwd, g, gz, opt, &ge);
    check_close(host<B>(gz), c.output("grad_logits"), "grad_logits");
    // Accumulating adds the same gradient again.
    ops::token_logprobs_backward<B>(z, y, m, fwd, g, gz, opt, &ge, true);
    auto twice = c.output("grad_logits");
    for (float& v : twice) v *= 2.0f;
    check_close(host<B>(gz), twice, "accumulated grad_logits");

    // Fused: d(Σ logps)/d logits in one pass, same forward values.
    typename B::tensor gf(z.shape());
    const auto fused = ops::token_logprobs_fused<B>(z, y, m, gf, ops::upstream::constant{1.0f}, opt);
    check_close(host<B>(fused.logps), c.output("logps"), "fused logps");
    check_close(host<B>(gf), c.output("grad_logits_sum"), "fused grad_logits");
    // ... and without entropy (the one-exp path).
    typename B::tensor gf2(z.shape());
    ops::logprob_options no_ent = opt;
    no_ent.compute_entropy = false;
    const auto fused2 =
        ops::token_logprobs_fused<B>(z, y, m, gf2, ops::upstream::constant{1.0f}, no_ent);
    check_close(host<B>(gf2), c.output("grad_logits_sum"), "fused grad_logits (no entropy)");
    CHECK(fused2.entropy.size() == 0);

    const auto seq = ops::sequence_logprobs<B>(fwd.logps, m, ops::logprob_columns::shifted);
    check_close(host<B>(seq), c.output("sequence_sum"), "sequence sum");
    if (c.has_output("sequence_mean")) {
      const auto mean = ops::sequence_logprobs<B>(fwd.logps, m, ops::logprob_columns::shifted,
                                                  ops::logprob_reduction::mean);
      check_close(host<B>(mean), c.output("sequence_mean"), "sequence mean");
    } else {
      CHECK_THROWS_AS(ops::sequence_logprobs<B>(fwd.logps, m, ops::logprob_columns::shifted,
                                                ops::logprob_reduction::mean),
                      rlhf::data_error);
    }
  }
}

TEST_CASE_TEMPLATE("sft_loss (nll and dft) matches PyTorch", B, RLHF_TEST_BACKENDS) {
  for (const auto& c : load_fixture("logprobs.json")) {
    if (!c.has_output("sft_nll_loss")) continue;
    CAPTURE(c.name());
    const auto z = c.tensor<B>("logits");
    const auto y = c.index_tensor<B>("tokens");
    const auto m = c.tensor<B>("mask");
    for (const char* kind : {"nll", "dft"}) {
      CAPTURE(kind);
      rlhf::losses::sft_config cfg;
      cfg.loss_type = rlhf::losses::parse_sft_loss_type(kind);
      typename B::tensor gz(z.shape());
      const auto r = rlhf::losses::sft_loss<B>({z, y, m}, gz, cfg);
      check_close(r.loss, c.output_scalar(std::string("sft_") + kind + "_loss"), "loss");
      check_close(host<B>(gz), c.output(std::string("sft_") + kind + "_grad_logits"),
                  "grad_logits");
      check_close(r.metrics.num_tokens, c.output_scalar("sft_num_tokens"), "num_tokens");
      check_close(r.metrics.mean_token_accuracy, c.output_scalar("sft_mean_token_accuracy"),
                  "mean_token_accuracy");
      check_close(r.metrics.entropy, c.output_scalar("sft_entropy"), "entropy", 1e-5, 1e-5);
    }
  }
}

TEST_CASE_TEMPLATE("logprob gradients match finite differences", B, RLHF_TEST_BACKENDS) {
  // N=2, T=3, V=4, τ = 0.8, loss = Σ g·logps + Σ ge·entropy.
  const std::vector<float> zv{0.3f, -1.2f, 0.8f, 0.1f,  1.5f, 0.2f, -0.7f, 0.4f,
                              -0.3f, 0.9f, 0.0f, -1.1f, 0.6f, -0.2f, 1.1f, -0.5f,
                              0.2f, 0.7f, -0.9f, 0.3f,  -1.0f, 0.5f, 0.25f, 0.8f};
  const std::vector<std::int32_t> yv{0, 2, 1, 3, 0, 2};
  const std::vector<float> mv{1, 1, 0.5f, 0, 1, 1};
  const std::vector<float> gv{0.0f, 0.7f, -1.3f, 0.0f, 0.4f, 2.0f};
  const std::vector<float> gev{0.0f, -0.6f, 0.9f, 0.0f, 1.2f, -0.4f};
  const auto y = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(yv), shape{2, 3});
  const auto m = make<B>(mv, shape{2, 3});
  const auto g = make<B>(gv, shape{2, 3});
  const auto ge = make<B>(gev, shape{2, 3});
  ops::logprob_options opt;
  opt.temperature = 0.8f;
  opt.compute_entropy = true;
  auto loss = [&](const std::vector<float>& x) {
    const auto zt = make<B>(x, shape{2, 3, 4});
    const auto f = ops::token_logprobs<B>(zt, y, m, opt);
    const auto lp = host<B>(f.logps), h = host<B>(f.entropy);
    double s = 0.0;
    for (std::size_t i = 0; i < lp.size(); ++i) s += gv[i] * lp[i] + gev[i] * h[i];
    return s;
  };
  const auto z = make<B>(zv, shape{2, 3, 4});
  const auto fwd = ops::token_logprobs<B>(z, y, m, opt);
  typename B::tensor gz(z.shape());
  ops::token_logprobs_backward<B>(z, y, m, fwd, g, gz, opt, &ge);
  check_gradient_fd(loss, zv, host<B>(gz), "d loss / d logits", 1e-2f, 1e-2, 1e-3);

  // SFT (nll, dft): the fused gradient against finite differences of the loss.
  for (auto kind : {rlhf::losses::sft_loss_type::nll, rlhf::losses::sft_loss_type::dft}) {
    rlhf::losses::sft_config cfg;
    cfg.loss_type = kind;
    typename B::tensor gs(z.shape());
    rlhf::losses::sft_loss<B>({z, y, m}, gs, cfg);
    // DFT's weight is detached: the finite difference must hold it fixed too.
    const auto p_fixed = host<B>(ops::token_logprobs<B>(z, y, m).logps);
    auto sft_loss = [&](const std::vector<float>& x) {
      const auto zt = make<B>(x, shape{2, 3, 4});
      const auto lp = host<B>(ops::token_logprobs<B>(zt, y, m).logps);
      double num = 0.0, den = 0.0;
      for (std::size_t i = 0; i < lp.size(); ++i) {
        if (i % 3 == 0 || mv[i] == 0.0f) continue;
        const double w = kind == rlhf::losses::sft_loss_type::dft
                             ? std::exp(static_cast<double>(p_fixed[i]) / mv[i])
                             : 1.0;
        num -= w * lp[i];
        den += mv[i];
      }
      return num / den;
    };
    check_gradient_fd(sft_loss, zv, host<B>(gs), "d sft / d logits", 1e-2f, 1e-2, 1e-3);
  }
}

TEST_CASE_TEMPLATE("logprobs: edge cases and bad input", B, RLHF_TEST_BACKENDS) {
  // Length 1: nothing is predicted; logps are 0 and the SFT token mean is undefined.
  const auto z1 = make<B>({0.1f, 0.2f, 0.3f}, shape{1, 1, 3});
  const auto y1 = rlhf::ops::index_from_host<B>(std::vector<std::int32_t>{2}, shape{1, 1});
  const auto m1 = make<B>({1.0f}, shape{1, 1});
  CHECK(host<B>(ops::token_logprobs<B>(z1, y1, m1).logps) == std::vector<float>{0.0f});
  typename B::tensor g1(z1.shape());
  CHECK_THROWS_WITH_AS(rlhf::losses::sft_loss<B>({z1, y1, m1}, g1),
                       "sft_loss: completion_mask selects no predicted token (positions t >= "
                       "1); the token mean is undefined",
                       rlhf::data_error);

  const auto z = make<B>(std::vector<float>(2 * 3 * 4, 0.5f), shape{2, 3, 4});
  auto y = rlhf::ops::index_from_host<B>(std::vector<std::int32_t>{0, 1, 2, 3, 0, 4},
                                         shape{2, 3});
  const auto m = make<B>({1, 1, 1, 1, 1, 0}, shape{2, 3});
  // Token 4 sits under m = 0: ignored. Token 4 under m = 1: an error naming it.
  CHECK_NOTHROW(ops::token_logprobs<B>(z, y, m));
  const auto m_all = make<B>({1, 1, 1, 1, 1, 1}, shape{2, 3});
  CHECK_THROWS_WITH_AS(ops::token_logprobs<B>(z, y, m_all),
                       "token_logprobs: tokens[1, 2] = 4 is outside the vocabulary [0, 4) at a "
                       "position the mask uses",
                       rlhf::data_error);
  // A NaN in a used logits row is reported with the row; in an unused row it is not read.
  std::vector<float> zn(2 * 3 * 4, 0.5f);
  zn[1 * 12 + 1 * 4 + 2] = std::numeric_limits<float>::quiet_NaN();  // row [1, 1]
  const auto znan = make<B>(zn, shape{2, 3, 4});
  CHECK_NOTHROW(ops::token_logprobs<B>(znan, y, m));  // row [1,1] predicts [1,2]: m = 0
  zn[1 * 12 + 1 * 4 + 2] = 0.5f;
  zn[0 * 12 + 0 * 4 + 1] = std::numeric_limits<float>::infinity();  // row [0, 0]
  const auto zinf = make<B>(zn, shape{2, 3, 4});
  CHECK_THROWS_WITH_AS(ops::token_logprobs<B>(zinf, y, m),
                       "token_logprobs: logits row [0, 0] holds a NaN or Inf (or is entirely "
                       "-inf); it predicts tokens[0, 1]",
                       rlhf::data_error);
  typename B::tensor gz(z.shape());
  CHECK_THROWS_AS(ops::token_logprobs_fused<B>(zinf, y, m, gz, ops::upstream::constant{1.0f}),
                  rlhf::data_error);
  ops::logprob_options bad;
  bad.temperature = 0.0f;
  CHECK_THROWS_WITH_AS(ops::token_logprobs<B>(z, y, m, bad),
                       "token_logprobs: temperature must be finite and > 0, got 0",
                       rlhf::config_error);
  const auto m_short = make<B>({1, 1, 1}, shape{1, 3});
  CHECK_THROWS_AS(ops::token_logprobs<B>(z, y, m_short), rlhf::shape_error);
  const auto m_neg = make<B>({1, -1, 1, 1, 1, 0}, shape{2, 3});
  CHECK_THROWS_AS(ops::token_logprobs<B>(z, y, m_neg), rlhf::data_error);
  CHECK_THROWS_AS(rlhf::losses::parse_sft_loss_type("mse"), rlhf::config_error);
}

TEST_CASE_TEMPLATE("sft_loss counts past 2^24 tokens exactly", B, RLHF_TEST_BACKENDS) {
  // One sequence of 2^24 + 2^22 positions, vocabulary 2, all logits 0: every predicted token
  // has logp = -ln 2 and is an argmax (a tie), so the float64 reference is loss = ln 2 and
  // accuracy 1 over T - 1 tokens. A float running count stops at 2^24 (the loss comes out
  // 25 % high), and a float running sum of the numerator drifts as well.
  const rlhf::index_t t_len = (rlhf::index_t{1} << 24) + (rlhf::index_t{1} << 22);
  typename B::tensor z = make<B>(std::vector<float>(static_cast<std::size_t>(2 * t_len), 0.0f),
                                 shape{1, t_len, 2});
  std::vector<std::int32_t> ids(static_cast<std::size_t>(t_len));
  for (std::size_t k = 0; k < ids.size(); ++k) ids[k] = static_cast<std::int32_t>(k % 2);
  const auto y = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{1, t_len});
  ids = {};
  const auto m = make<B>(std::vector<float>(static_cast<std::size_t>(t_len), 1.0f),
                         shape{1, t_len});
  typename B::tensor g(z.shape());
  const auto r = rlhf::losses::sft_loss<B>({z, y, m}, g);
  const double count = static_cast<double>(t_len - 1);
  CHECK(static_cast<double>(r.metrics.num_tokens) == doctest::Approx(count).epsilon(1e-7));
  CHECK(static_cast<double>(r.loss) == doctest::Approx(std::log(2.0)).epsilon(1e-5));
  CHECK(static_cast<double>(r.metrics.mean_token_accuracy) == doctest::Approx(1.0).epsilon(1e-5));
  CHECK(static_cast<double>(r.metrics.entropy) == doctest::Approx(std::log(2.0)).epsilon(1e-5));
  // d loss / d z[t-1, y_t] = -(1 - 1/2) / count, here at the last predicted position.
  const std::vector<float> gh = host<B>(g);
  const auto at = static_cast<std::size_t>(2 * (t_len - 2) + ((t_len - 1) % 2));
  CHECK(static_cast<double>(gh[at]) == doctest::Approx(-0.5 / count).epsilon(1e-6));
}

TEST_CASE_TEMPLATE("sft_loss rejects an out-of-range loss_type", B, RLHF_TEST_BACKENDS) {
  const auto z = make<B>(std::vector<float>(2 * 3 * 4, 0.5f), shape{2, 3, 4});
  const auto y = rlhf::ops::index_from_host<B>(std::vector<std::int32_t>{0, 1, 2, 3, 0, 1},
                                               shape{2, 3});
  const auto m = make<B>({1, 1, 1, 1, 1, 1}, shape{2, 3});
  typename B::tensor g(z.shape());
  rlhf::losses::sft_config cfg;
  cfg.loss_type = static_cast<rlhf::losses::sft_loss_type>(7);
  CHECK_THROWS_WITH_AS(rlhf::losses::sft_loss<B>({z, y, m}, g, cfg),
                       "sft_loss: loss_type must be one of its 2 enumerators (0..1), got 7",
                       rlhf::config_error);
}

TEST_CASE_TEMPLATE("slices on the backend and sequence_logprobs' explicit columns", B,
                   RLHF_TEST_BACKENDS) {
  using tensor = typename B::tensor;
  // (4, 3) rows 0..3; the halves of a stacked (2N, T) batch and their concatenation.
  std::vector<float> v(12);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const tensor t = make<B>(v, shape{4, 3});
  const tensor lo = ops::slice_rows<B>(t, 0, 2), hi = ops::slice_rows<B>(t, 2, 2);
  CHECK(lo.shape() == shape{2, 3});
  CHECK(host<B>(hi) == std::vector<float>{6, 7, 8, 9, 10, 11});
  CHECK(host<B>(ops::concat_rows<B>(hi, lo)) ==
        std::vector<float>{6, 7, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5});
  CHECK(host<B>(ops::slice_cols<B>(t, 1, 2)) == std::vector<float>{1, 2, 4, 5, 7, 8, 10, 11});
  // Index tensors and rank 3 (N, T, V): a completion window of the logits.
  const std::vector<std::int32_t> ids{1, 2, 3, 4, 5, 6};
  const auto it = ops::index_from_host<B>(ids, shape{2, 3});
  CHECK(ops::to_host<B>(ops::slice_cols<B>(it, 2, 1)) == std::vector<std::int32_t>{3, 6});
  CHECK(ops::to_host<B>(ops::slice_rows<B>(it, 1, 1)) == std::vector<std::int32_t>{4, 5, 6});
  std::vector<float> z(2 * 3 * 2);
  for (std::size_t i = 0; i < z.size(); ++i) z[i] = static_cast<float>(i);
  const tensor z3 = make<B>(z, shape{2, 3, 2});
  const tensor w3 = ops::slice_cols<B>(z3, 1, 2);
  CHECK(w3.shape() == shape{2, 2, 2});
  CHECK(host<B>(w3) == std::vector<float>{2, 3, 4, 5, 8, 9, 10, 11});
  CHECK_THROWS_WITH_AS(ops::slice_rows<B>(t, 3, 2), "slice_rows: rows [3, 3 + 2) is outside 0..4",
                       rlhf::shape_error);
  CHECK_THROWS_AS(ops::slice_cols<B>(t, 2, 2), rlhf::shape_error);
  CHECK_THROWS_AS(ops::concat_rows<B>(t, ops::slice_cols<B>(t, 0, 2)), rlhf::shape_error);

  // A completion-only window (columns P..T-1 of token_logprobs' output, already masked):
  // with logprob_columns::all its first column counts, so the window's sum and mean equal
  // the full tensor's (logprob_columns::shifted skips column 0, which there is never
  // predicted). Before the explicit argument the window silently lost its first token.
  const tensor m = make<B>({0.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f, 1.0f, 1.0f}, shape{2, 4});
  const tensor masked = make<B>({0.0f, 0.0f, -1.0f, -2.0f, 0.0f, 0.0f, -3.0f, -4.0f}, shape{2, 4});
  const auto full = host<B>(ops::sequence_logprobs<B>(masked, m, ops::logprob_columns::shifted));
  const tensor lw = ops::slice_cols<B>(masked, 2, 2), mw = ops::slice_cols<B>(m, 2, 2);
  CHECK(host<B>(ops::sequence_logprobs<B>(lw, mw, ops::logprob_columns::all)) == full);
  CHECK(host<B>(ops::sequence_logprobs<B>(lw, mw, ops::logprob_columns::all,
                                          ops::logprob_reduction::mean)) ==
        std::vector<float>{-1.5f, -3.5f});
  CHECK(host<B>(ops::sequence_logprobs<B>(lw, mw, ops::logprob_columns::shifted)) ==
        std::vector<float>{-2.0f, -4.0f});  // the first window token is skipped
  CHECK(host<B>(ops::sequence_logprobs_backward<B>(make<B>({1.0f, 2.0f}, shape{2}), mw,
                                                   ops::logprob_columns::all)) ==
        std::vector<float>{1, 1, 2, 2});
  // A mean over a row whose only mask entry is the skipped column 0 is undefined.
  const tensor only0 = make<B>({1.0f, 0.0f, 1.0f, 1.0f}, shape{2, 2});
  CHECK_THROWS_AS(
      ops::sequence_logprobs<B>(make<B>({0, 0, 0, -1}, shape{2, 2}), only0,
                                ops::logprob_columns::shifted, ops::logprob_reduction::mean),
      rlhf::data_error);
}

}  // namespace test_logprobs_cases
