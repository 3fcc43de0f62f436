// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The DPO family (rlhf/losses/dpo.hpp): every loss type and f-divergence against the
// PyTorch reference (tools/reference/dpo.py), finite differences, invariants, bad input.
#include <cmath>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "random_data.hpp"
#include "rlhf/core/enum_names.hpp"
#include "rlhf/losses/dpo.hpp"
#include "rlhf/losses/reward.hpp"
#include "rlhf/rl/kl.hpp"

namespace test_dpo_cases {

using namespace rlhf_test;
namespace losses = rlhf::losses;
using losses::dpo_loss_type;
using losses::f_divergence_type;

namespace {

constexpr dpo_loss_type all_types[] = {
    dpo_loss_type::sigmoid,      dpo_loss_type::hinge,     dpo_loss_type::ipo,
    dpo_loss_type::exo_pair,     dpo_loss_type::nca_pair,  dpo_loss_type::robust,
    dpo_loss_type::bco_pair,     dpo_loss_type::sppo_hard, dpo_loss_type::aot,
    dpo_loss_type::aot_unpaired, dpo_loss_type::apo_zero,  dpo_loss_type::apo_down,
    dpo_loss_type::discopop,     dpo_loss_type::sft,       dpo_loss_type::sigmoid_norm};
constexpr f_divergence_type all_divergences[] = {
    f_divergence_type::reverse_kl, f_divergence_type::forward_kl,
    f_divergence_type::js_divergence, f_divergence_type::alpha_divergence};

/// The types TRL 1.16 lets read a divergence other than reverse_kl.
bool reads_divergence(dpo_loss_type t) {
  return t == dpo_loss_type::sigmoid || t == dpo_loss_type::sigmoid_norm ||
         t == dpo_loss_type::hinge || t == dpo_loss_type::ipo || t == dpo_loss_type::exo_pair ||
         t == dpo_loss_type::robust || t == dpo_loss_type::discopop || t == dpo_loss_type::sft;
}

losses::dpo_config config_of(const fixture_case& c) {
  const auto& j = c.config();
  losses::dpo_config cfg;
  cfg.loss_type.clear();
  for (const auto& t : j.at("loss_type")) {
    cfg.loss_type.push_back(losses::parse_dpo_loss_type(t.get<std::string>()));
  }
  cfg.loss_weights = j.at("loss_weights").get<std::vector<float>>();
  cfg.beta = j.at("beta").get<float>();
  cfg.label_smoothing = j.at("label_smoothing").get<float>();
  cfg.f_divergence_type =
      losses::parse_f_divergence_type(j.at("f_divergence_type").get<std::string>());
  cfg.f_alpha_divergence_coef = j.at("f_alpha_divergence_coef").get<float>();
  cfg.discopop_tau = j.at("discopop_tau").get<float>();
  cfg.use_weighting = j.at("use_weighting").get<bool>();
  if (!j.at("rpo_alpha").is_null()) cfg.rpo_alpha = j.at("rpo_alpha").get<float>();
  return cfg;
}

template <class B>
void check_loss_case(const fixture_case& c) {
  using tensor = typename B::tensor;
  losses::dpo_config cfg = config_of(c);
  std::optional<losses::bco_running_mean> bco;
  if (c.config().contains("bco_running_mean")) {
    const auto& s = c.config().at("bco_running_mean");
    bco = losses::bco_running_mean{};
    bco->mean = s.at(0).get<double>();
    bco->count = s.at(1).get<double>();
    cfg.bco_running = &*bco;
  }
  const tensor lc = c.tensor<B>("policy_chosen_logps");
  const tensor lr = c.tensor<B>("policy_rejected_logps");
  const tensor rc = c.tensor<B>("reference_chosen_logps");
  const tensor rr = c.tensor<B>("reference_rejected_logps");
  std::optional<tensor> nc, nr, w;
  if (c.has_input("chosen_lengths")) nc = c.tensor<B>("chosen_lengths");
  if (c.has_input("rejected_lengths")) nr = c.tensor<B>("rejected_lengths");
  if (c.has_input("weights")) w = c.tensor<B>("weights");
  std::optional<tensor> eps;  // per-pair ε: soft labels
  if (c.has_input("label_smoothing")) eps = c.tensor<B>("label_smoothing");
  const losses::dpo_inputs<B> in{.policy_chosen_logps = lc,
                                 .policy_rejected_logps = lr,
                                 .reference_chosen_logps = rc,
                                 .reference_rejected_logps = rr,
                                 .chosen_lengths = nc ? &*nc : nullptr,
                                 .rejected_lengths = nr ? &*nr : nullptr,
                                 .weights = w ? &*w : nullptr,
                                 .label_smoothing = eps ? &*eps : nullptr};
  // Where the reference's loss or a gradient is beyond float (+inf, or NaN from inf - inf),
  // dpo_loss refuses with a data_error instead of returning it.
  bool finite = std::isfinite(c.output_scalar("loss"));
  for (const char* g : {"grad_policy_chosen_logps", "grad_policy_rejected_logps"}) {
    for (const float v : c.output(g)) finite = finite && std::isfinite(v);
  }
  if (!finite) {
    CHECK_THROWS_AS((void)losses::dpo_loss<B>(in, cfg), rlhf::data_error);
    return;
  }
  const auto r = losses::dpo_loss<B>(in, cfg);
  check_close(r.loss, c.output_scalar("loss"), "loss");
  check_close(host<B>(r.losses), c.output("losses"), "losses");
  check_close(host<B>(r.grad_policy_chosen_logps), c.output("grad_policy_chosen_logps"),
              "grad_policy_chosen_logps");
  check_close(host<B>(r.grad_policy_rejected_logps), c.output("grad_policy_rejected_logps"),
              "grad_policy_rejected_logps");
  check_close(r.metrics.rewards_chosen, c.output_scalar("rewards_chosen"), "rewards/chosen");
  check_close(r.metrics.rewards_rejected, c.output_scalar("rewards_rejected"),
              "rewards/rejected");
  CHECK(r.metrics.rewards_accuracies == c.output_scalar("rewards_accuracies"));
  check_close(r.metrics.rewards_margins, c.output_scalar("rewards_margins"), "rewards/margins");
  check_close(r.metrics.logps_chosen, c.output_scalar("logps_chosen"), "logps/chosen");
  check_close(r.metrics.logps_rejected, c.output_scalar("logps_rejected"), "logps/rejected");
  if (bco) {
    check_close(static_cast<float>(bco->mean), c.output_scalar("bco_mean_after"), "bco mean");
    CHECK(bco->count == doctest::Approx(c.j.at("outputs").at("bco_count_after").get<double>()));
  }
}

template <class B>
void check_ld_case(const fixture_case& c) {
  using tensor = typename B::tensor;
  const float alpha = c.config().at("ld_alpha").get<float>();
  const tensor mc = c.tensor<B>("chosen_mask"), mr = c.tensor<B>("rejected_mask");
  const rlhf::index_t n = mc.shape()[0];
  const auto ld = [&](const char* name, const tensor& mask, const tensor& other,
                      tensor* weights) {
    tensor out(rlhf::shape{n});
    losses::ld_sequence_logps<B>(c.tensor<B>(name), mask, other, alpha, out, weights);
    return out;
  };
  tensor wc(mc.shape()), wr(mr.shape());
  const tensor lc = ld("policy_chosen_token_logps", mc, mr, &wc);
  const tensor lr = ld("policy_rejected_token_logps", mr, mc, &wr);
  const tensor rc = ld("reference_chosen_token_logps", mc, mr, nullptr);
  const tensor rr = ld("reference_rejected_token_logps", mr, mc, nullptr);
  check_close(host<B>(lc), c.output("policy_chosen_logps"), "ld policy chosen");
  check_close(host<B>(lr), c.output("policy_rejected_logps"), "ld policy rejected");
  check_close(host<B>(rc), c.output("reference_chosen_logps"), "ld reference chosen");
  check_close(host<B>(rr), c.output("reference_rejected_logps"), "ld reference rejected");
  check_close(host<B>(wc), c.output("chosen_token_weights"), "chosen token weights");
  check_close(host<B>(wr), c.output("rejected_token_weights"), "rejected token weights");
  losses::dpo_config cfg;
  cfg.beta = c.config().at("beta").get<float>();
  // ld_alpha acts through ld_sequence_logps; dpo_loss refuses it set, saying so.
  cfg.ld_alpha = alpha;
  CHECK_THROWS_WITH_AS((void)losses::dpo_loss<B>({lc, lr, rc, rr}, cfg),
                       doctest::Contains("ld_sequence_logps_backward"), rlhf::config_error);
  cfg.ld_alpha.reset();
  const auto r = losses::dpo_loss<B>({lc, lr, rc, rr}, cfg);
  check_close(r.loss, c.output_scalar("loss"), "ld loss");
  // The backward helper: d loss / d token = g_seq[i] · weight[i, t].
  check_close(host<B>(losses::ld_sequence_logps_backward<B>(r.grad_policy_chosen_logps, wc)),
              c.output("grad_policy_chosen_token_logps"), "grad chosen token logps");
  check_close(host<B>(losses::ld_sequence_logps_backward<B>(r.grad_policy_rejected_logps, wr)),
              c.output("grad_policy_rejected_token_logps"), "grad rejected token logps");
}

template <class B>
void check_wpo_case(const fixture_case& c) {
  const auto logits = c.tensor<B>("logits");
  const auto tokens = c.index_tensor<B>("tokens");
  const auto mask = c.tensor<B>("mask");
  typename B::tensor out(rlhf::shape{logits.shape()[0]});
  losses::wpo_weights<B>(logits, tokens, mask, out);
  check_close(host<B>(out), c.output("weights"), "wpo weights");
}

/// Small inputs away from kinks and ties (the aot sorts keep their order under ±h).
struct fd_setup {
  std::vector<float> lc{-4.1f, -7.3f, -2.2f, -5.6f}, lr{-5.0f, -6.1f, -4.4f, -3.9f};
  std::vector<float> rc{-4.6f, -6.8f, -3.0f, -5.0f}, rr{-4.3f, -6.9f, -3.5f, -4.5f};
  std::vector<float> nc{3.0f, 5.0f, 2.0f, 4.0f}, nr{4.0f, 2.0f, 6.0f, 3.0f};
  std::vector<float> w{0.9f, 0.4f, 0.7f, 0.2f};
};

template <class B>
void check_fd(const losses::dpo_config& cfg, const std::string& what,
              const std::vector<float>* soft_eps = nullptr) {
  const fd_setup s;
  const rlhf::shape sh{4};
  const auto rc = make<B>(s.rc, sh), rr = make<B>(s.rr, sh);
  const auto nc = make<B>(s.nc, sh), nr = make<B>(s.nr, sh), w = make<B>(s.w, sh);
  const auto* wp = cfg.use_weighting ? &w : nullptr;
  const auto eps = make<B>(soft_eps ? *soft_eps : std::vector<float>(4, 0.0f), sh);
  const auto* ep = soft_eps ? &eps : nullptr;
  auto loss_of = [&](const std::vector<float>& c, const std::vector<float>& j) {
    const auto ct = make<B>(c, sh), jt = make<B>(j, sh);
    return static_cast<double>(losses::dpo_loss<B>({ct, jt, rc, rr, &nc, &nr, wp, ep}, cfg).loss);
  };
  const auto ct = make<B>(s.lc, sh), jt = make<B>(s.lr, sh);
  const auto r = losses::dpo_loss<B>({ct, jt, rc, rr, &nc, &nr, wp, ep}, cfg);
  REQUIRE(std::isfinite(r.loss));
  check_gradient_fd([&](const std::vector<float>& x) { return loss_of(x, s.lr); }, s.lc,
                    host<B>(r.grad_policy_chosen_logps), what + ": d loss / d chosen");
  check_gradient_fd([&](const std::vector<float>& x) { return loss_of(s.lc, x); }, s.lr,
                    host<B>(r.grad_policy_rejected_logps), what + ": d loss / d rejected");
}

}  // namespace

TEST_CASE_TEMPLATE("dpo_loss and its helpers match the PyTorch reference", B,
                   RLHF_TEST_BACKENDS) {
  int loss_cases = 0, ld_cases = 0, wpo_cases = 0;
  for (const auto& c : load_fixture("dpo.json")) {
    CAPTURE(c.name());
    const std::string kind = c.config().at("kind").get<std::string>();
    if (kind == "loss") {
      check_loss_case<B>(c);
      ++loss_cases;
    } else if (kind == "ld") {
      check_ld_case<B>(c);
      ++ld_cases;
    } else {
      REQUIRE(kind == "wpo");
      check_wpo_case<B>(c);
      ++wpo_cases;
    }
  }
  CHECK(loss_cases > 100);  // every type × divergence, options, combinations, extremes
  CHECK(ld_cases == 3);
  CHECK(wpo_cases == 1);
}

TEST_CASE_TEMPLATE("dpo_loss gradients match finite differences for every loss type", B,
                   RLHF_TEST_BACKENDS) {
  for (const auto fdiv : all_divergences) {
    for (const auto t : all_types) {
      losses::dpo_config cfg;
      cfg.beta = t == dpo_loss_type::hinge ? 0.3f : 0.5f;  // hinge: keep β·D off the kink at 1
      cfg.loss_type = {t};
      cfg.f_divergence_type = fdiv;
      if (fdiv != f_divergence_type::reverse_kl && !reads_divergence(t)) {
        // TRL 1.16 refuses these combinations; so does dpo_loss.
        const auto z = make<B>({-1.0f, -2.0f}, rlhf::shape{2});
        CHECK_THROWS_WITH_AS((void)losses::dpo_loss<B>({z, z, z, z}, cfg),
                             doctest::Contains("works with loss_type sigmoid"), rlhf::config_error);
        continue;
      }
      cfg.label_smoothing = t == dpo_loss_type::exo_pair ? 0.01f : 0.1f;
      cfg.discopop_tau = 0.5f;
      cfg.use_weighting = true;  // every path with WPO weights and lengths
      check_fd<B>(cfg, std::string(losses::to_string(t)) + "/" +
                           std::string(losses::to_string(fdiv)));
    }
  }
  // A weighted combination with RPO, and δ = a fixed running mean's value is not
  // differentiable through the batch, so bco_pair's FD uses δ = 0 above.
  losses::dpo_config cfg;
  cfg.loss_type = {dpo_loss_type::sigmoid, dpo_loss_type::ipo, dpo_loss_type::aot_unpaired};
  cfg.loss_weights = {1.0f, 0.3f, 0.5f};
  cfg.rpo_alpha = 0.7f;
  cfg.beta = 0.3f;
  check_fd<B>(cfg, "combination");
  cfg.loss_type = {dpo_loss_type::sigmoid, dpo_loss_type::ipo, dpo_loss_type::sigmoid_norm};
  cfg.f_divergence_type = f_divergence_type::alpha_divergence;
  cfg.f_alpha_divergence_coef = 0.2f;
  check_fd<B>(cfg, "combination, alpha 0.2");
  // Soft labels: a per-pair ε in [0, 1] (labels 1, 0.25, 0.5, 0.9), with sft and WPO weights.
  const std::vector<float> soft{0.0f, 0.75f, 0.5f, 0.1f};
  cfg = {};
  cfg.loss_type = {dpo_loss_type::sigmoid, dpo_loss_type::sft};
  cfg.beta = 0.5f;
  cfg.use_weighting = true;
  check_fd<B>(cfg, "soft labels", &soft);
  cfg.f_divergence_type = f_divergence_type::js_divergence;
  check_fd<B>(cfg, "soft labels, js_divergence", &soft);
}

TEST_CASE_TEMPLATE("dpo_loss soft labels: a per-pair epsilon", B, RLHF_TEST_BACKENDS) {
  using tensor = typename B::tensor;
  const rlhf::shape sh{3};
  const tensor lc = make<B>({-1.0f, -2.0f, -3.0f}, sh), lr = make<B>({-2.0f, -1.0f, -4.0f}, sh);
  const tensor rc = make<B>({-1.5f, -1.0f, -3.5f}, sh), rr = make<B>({-2.5f, -2.0f, -3.0f}, sh);
  // ε the same for every pair is the scalar label_smoothing (cDPO).
  losses::dpo_config scalar;
  scalar.label_smoothing = 0.2f;
  const auto a = losses::dpo_loss<B>({lc, lr, rc, rr}, scalar);
  const tensor same = make<B>({0.2f, 0.2f, 0.2f}, sh);
  const auto b = losses::dpo_loss<B>({.policy_chosen_logps = lc,
                                      .policy_rejected_logps = lr,
                                      .reference_chosen_logps = rc,
                                      .reference_rejected_logps = rr,
                                      .label_smoothing = &same});
  CHECK(b.loss == a.loss);
  CHECK(host<B>(b.grad_policy_chosen_logps) == host<B>(a.grad_policy_chosen_logps));
  // Swapping chosen and rejected with p -> 1 - p leaves every pair's loss as it was.
  const tensor eps = make<B>({0.1f, 0.6f, 1.0f}, sh), flipped = make<B>({0.9f, 0.4f, 0.0f}, sh);
  const auto c = losses::dpo_loss<B>({lc, lr, rc, rr, nullptr, nullptr, nullptr, &eps});
  const auto d = losses::dpo_loss<B>({lr, lc, rr, rc, nullptr, nullptr, nullptr, &flipped});
  check_close(host<B>(d.losses), host<B>(c.losses), "losses with the pair and label swapped");
  check_close(host<B>(d.grad_policy_chosen_logps), host<B>(c.grad_policy_rejected_logps),
              "gradients with the pair and label swapped");
  // Bad input: values outside [0, 1], types that read ε otherwise, no sigmoid term, both.
  const tensor bad = make<B>({0.1f, 1.5f, 0.0f}, sh), nan_t = make<B>({0.1f, NAN, 0.0f}, sh);
  CHECK_THROWS_WITH_AS((void)losses::dpo_loss<B>({lc, lr, rc, rr, nullptr, nullptr, nullptr, &bad}),
                       "dpo_loss: label_smoothing must hold values in [0, 1], got 1.5 at index 1",
                       rlhf::data_error);
  CHECK_THROWS_AS((void)losses::dpo_loss<B>({lc, lr, rc, rr, nullptr, nullptr, nullptr, &nan_t}),
                  rlhf::data_error);
  const tensor short_t = make<B>({0.1f, 0.2f}, rlhf::shape{2});
  CHECK_THROWS_AS((void)losses::dpo_loss<B>({lc, lr, rc, rr, nullptr, nullptr, nullptr, &short_t}),
                  rlhf::shape_error);
  for (const auto t : {dpo_loss_type::robust, dpo_loss_type::exo_pair, dpo_loss_type::aot,
                       dpo_loss_type::aot_unpaired}) {
    losses::dpo_config cfg;
    cfg.loss_type = {dpo_loss_type::sigmoid, t};
    cfg.label_smoothing = 0.0f;
    CHECK_THROWS_WITH_AS(
        (void)losses::dpo_loss<B>({lc, lr, rc, rr, nullptr, nullptr, nullptr, &eps}, cfg),
        doctest::Contains("reads label_smoothing in its own way"), rlhf::config_error);
  }
  losses::dpo_config hinge;
  hinge.loss_type = {dpo_loss_type::hinge};
  CHECK_THROWS_WITH_AS(
      (void)losses::dpo_loss<B>({lc, lr, rc, rr, nullptr, nullptr, nullptr, &eps}, hinge),
      "dpo_loss: per-pair label_smoothing (soft labels) needs a sigmoid term in loss_type",
      rlhf::config_error);
  CHECK_THROWS_WITH_AS(
      (void)losses::dpo_loss<B>({lc, lr, rc, rr, nullptr, nullptr, nullptr, &eps}, scalar),
      doctest::Contains("label_smoothing must be 0 when per-pair label_smoothing is given"),
      rlhf::config_error);
}

TEST_CASE_TEMPLATE("dpo_loss invariants", B, RLHF_TEST_BACKENDS) {
  using tensor = typename B::tensor;
  const rlhf::shape sh{3};
  const tensor lc = make<B>({-10.0f, -20.0f, -5.0f}, sh), lr = make<B>({-12.0f, -8.0f, -9.0f}, sh);

  SUBCASE("policy = reference: sigmoid loss ln 2, accuracies 0 (strict), gradients "
          "∓(1-2ε)β/(2N)") {
    for (const float eps : {0.0f, 0.3f}) {
      losses::dpo_config cfg;
      cfg.label_smoothing = eps;
      const auto r = losses::dpo_loss<B>({lc, lr, lc, lr}, cfg);
      check_close(r.loss, std::log(2.0f), "loss");
      check_close(host<B>(r.losses), std::vector<float>(3, std::log(2.0f)), "losses");
      CHECK(r.metrics.rewards_accuracies == 0.0f);
      CHECK(r.metrics.rewards_margins == 0.0f);
      const float g = (1.0f - 2.0f * eps) * 0.1f / 6.0f;
      check_close(host<B>(r.grad_policy_chosen_logps), std::vector<float>(3, -g), "grad chosen");
      check_close(host<B>(r.grad_policy_rejected_logps), std::vector<float>(3, g),
                  "grad rejected");
      CHECK(rlhf::metric_or(r.metrics.named(), "rewards/accuracies", -1.0f) == 0.0f);
      CHECK(rlhf::metric_or(r.metrics.named(), "logps/chosen", 0.0f) ==
            doctest::Approx(-35.0 / 3.0));
    }
  }

  SUBCASE("the loss is the mean of the per-example losses and linear in the terms") {
    const tensor rc = make<B>({-11.0f, -19.0f, -6.5f}, sh);
    const tensor rr = make<B>({-11.5f, -9.0f, -8.0f}, sh);
    const tensor n = make<B>({4.0f, 7.0f, 2.0f}, sh);
    losses::dpo_config a, b, ab;
    a.loss_type = {dpo_loss_type::sigmoid};
    b.loss_type = {dpo_loss_type::sigmoid_norm};
    ab.loss_type = {dpo_loss_type::sigmoid, dpo_loss_type::sigmoid_norm};
    ab.loss_weights = {0.25f, 2.0f};
    const auto ra = losses::dpo_loss<B>({lc, lr, rc, rr, &n, &n}, a);
    const auto rb = losses::dpo_loss<B>({lc, lr, rc, rr, &n, &n}, b);
    const auto rab = losses::dpo_loss<B>({lc, lr, rc, rr, &n, &n}, ab);
    check_close(rab.loss, 0.25f * ra.loss + 2.0f * rb.loss, "combined loss");
    const auto l = host<B>(rab.losses);
    check_close((l[0] + l[1] + l[2]) / 3.0f, rab.loss, "mean of losses");
    // RPO is sigmoid + α·sft.
    losses::dpo_config rpo, listed;
    rpo.rpo_alpha = 0.5f;
    listed.loss_type = {dpo_loss_type::sigmoid, dpo_loss_type::sft};
    listed.loss_weights = {1.0f, 0.5f};
    const auto r1 = losses::dpo_loss<B>({lc, lr, rc, rr, &n}, rpo);
    const auto r2 = losses::dpo_loss<B>({lc, lr, rc, rr, &n}, listed);
    CHECK(r1.loss == r2.loss);
    CHECK(host<B>(r1.grad_policy_chosen_logps) == host<B>(r2.grad_policy_chosen_logps));
    // alpha_divergence with a = 1 is reverse KL.
    losses::dpo_config alpha1;
    alpha1.f_divergence_type = f_divergence_type::alpha_divergence;
    alpha1.f_alpha_divergence_coef = 1.0f;
    CHECK(losses::dpo_loss<B>({lc, lr, rc, rr}, alpha1).loss == ra.loss);
  }

  SUBCASE("bco_pair: the running mean is updated once per call and shifts the loss") {
    const tensor rc = make<B>({-11.0f, -19.0f, -6.5f}, sh);
    const tensor rr = make<B>({-11.5f, -9.0f, -8.0f}, sh);
    losses::bco_running_mean running;
    losses::dpo_config cfg;
    cfg.loss_type = {dpo_loss_type::bco_pair};
    const float no_delta = losses::dpo_loss<B>({lc, lr, rc, rr}, cfg).loss;
    cfg.bco_running = &running;
    const float first = losses::dpo_loss<B>({lc, lr, rc, rr}, cfg).loss;
    // Batch mean of [β·cr, β·rj] = 0.1·(1 - 1 + 1.5 - 0.5 + 1 - 1)/6.
    CHECK(running.count == 1.0);
    CHECK(running.mean == doctest::Approx(0.1 * 1.0 / 6.0).epsilon(1e-5));
    CHECK(first != no_delta);
    (void)losses::dpo_loss<B>({lc, lr, rc, rr}, cfg);
    CHECK(running.count == 2.0);
    cfg.loss_type = {dpo_loss_type::sigmoid};  // no bco_pair: left alone
    (void)losses::dpo_loss<B>({lc, lr, rc, rr}, cfg);
    CHECK(running.count == 2.0);
  }

  SUBCASE("every type stays finite at log-probs of ±1e3 where the formula is finite") {
    const rlhf::shape s2{2};
    const tensor big_c = make<B>({-1000.0f, 1000.0f}, s2), big_r = make<B>({1000.0f, -1000.0f}, s2);
    const tensor zero = make<B>({0.0f, 0.0f}, s2), n = make<B>({1000.0f, 1000.0f}, s2);
    for (const auto t : all_types) {
      CAPTURE(losses::to_string(t));
      losses::dpo_config cfg;
      cfg.beta = 1.0f;  // z = ∓2000
      cfg.loss_type = {t};
      cfg.label_smoothing = t == dpo_loss_type::exo_pair ? 1e-3f : 0.0f;
      const auto r = losses::dpo_loss<B>({big_c, big_r, zero, zero, &n, &n}, cfg);
      CHECK(std::isfinite(r.loss));  // discopop: e^{2000}·σ(-40000) evaluated as one exp
      for (const float g : host<B>(r.grad_policy_chosen_logps)) CHECK(std::isfinite(g));
    }
  }

  SUBCASE("names round-trip; a bad name lists the accepted ones") {
    for (const auto t : all_types) CHECK(losses::parse_dpo_loss_type(losses::to_string(t)) == t);
    for (const auto f : all_divergences) {
      CHECK(losses::parse_f_divergence_type(losses::to_string(f)) == f);
    }
    CHECK_THROWS_WITH_AS((void)losses::parse_dpo_loss_type("kto_pair"),
                         "parse_dpo_loss_type: unknown loss_type 'kto_pair'; accepted: "
                         "sigmoid, hinge, ipo, exo_pair, nca_pair, robust, bco_pair, "
                         "sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, sft, "
                         "sigmoid_norm",
                         rlhf::config_error);
    CHECK_THROWS_WITH_AS((void)losses::parse_f_divergence_type("kl"),
                         "parse_f_divergence_type: unknown f_divergence_type 'kl'; accepted: "
                         "reverse_kl, forward_kl, js_divergence, alpha_divergence",
                         rlhf::config_error);
  }
}

TEST_CASE_TEMPLATE("ld_sequence_logps and wpo_weights by hand", B, RLHF_TEST_BACKENDS) {
  // Chosen: prompt, 4 completion tokens; rejected: 2 completion tokens. Shared = 2.
  const auto x = make<B>({-9.0f, -1.0f, -2.0f, -3.0f, -4.0f}, rlhf::shape{1, 5});
  const auto mc = make<B>({0.0f, 1.0f, 1.0f, 1.0f, 1.0f}, rlhf::shape{1, 5});
  const auto mr = make<B>({0.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f}, rlhf::shape{1, 6});
  typename B::tensor out(rlhf::shape{1}), w(rlhf::shape{1, 5});
  losses::ld_sequence_logps<B>(x, mc, mr, 0.5f, out, &w);
  check_close(host<B>(out), std::vector<float>{-1.0f - 2.0f + 0.5f * (-3.0f - 4.0f)}, "ld");
  check_close(host<B>(w), std::vector<float>{0.0f, 1.0f, 1.0f, 0.5f, 0.5f}, "ld weights");
  losses::ld_sequence_logps<B>(x, mc, mr, 1.0f, out);
  check_close(host<B>(out), std::vector<float>{-10.0f}, "ld_alpha 1 is the plain sum");
  // Column 0 is never predicted (token_logprobs' convention): its mask is ignored in both
  // the sum and the counts. With mask[:, 0] = 1 the chosen side still has 4 tokens and the
  // shared length stays 2.
  const auto mc0 = make<B>({1.0f, 1.0f, 1.0f, 1.0f, 1.0f}, rlhf::shape{1, 5});
  const auto mr0 = make<B>({1.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f}, rlhf::shape{1, 6});
  losses::ld_sequence_logps<B>(x, mc0, mr0, 0.5f, out, &w);
  check_close(host<B>(out), std::vector<float>{-1.0f - 2.0f + 0.5f * (-3.0f - 4.0f)},
              "ld ignores mask[:, 0]");
  check_close(host<B>(w), std::vector<float>{0.0f, 1.0f, 1.0f, 0.5f, 0.5f}, "ld weights col 0");

  // WPO of uniform logits: logp = -log V, lse(2z) - 2lse(z) = -log V, so w = 1.
  const auto logits = make<B>(std::vector<float>(2 * 3 * 4, 0.7f), rlhf::shape{2, 3, 4});
  const std::vector<std::int32_t> ids{1, 2, 3, 0, 0, 1};
  const auto tokens = rlhf::ops::index_from_host<B>(ids, rlhf::shape{2, 3});
  const auto m = make<B>({1.0f, 1.0f, 1.0f, 0.0f, 1.0f, 0.0f}, rlhf::shape{2, 3});
  typename B::tensor ww(rlhf::shape{2});
  losses::wpo_weights<B>(logits, tokens, m, ww);
  check_close(host<B>(ww), std::vector<float>{1.0f, 1.0f}, "wpo uniform");
  // TRL's -100 where nothing is read (position 0, mask 0) is accepted, as token_logprobs
  // accepts it.
  const std::vector<std::int32_t> ids_100{-100, 2, 3, -100, 0, -100};
  losses::wpo_weights<B>(logits, rlhf::ops::index_from_host<B>(ids_100, rlhf::shape{2, 3}), m, ww);
  check_close(host<B>(ww), std::vector<float>{1.0f, 1.0f}, "wpo with -100 where unread");
}

TEST_CASE_TEMPLATE("dpo_loss rejects bad input with messages naming the argument", B,
                   RLHF_TEST_BACKENDS) {
  using tensor = typename B::tensor;
  const rlhf::shape sh{3};
  const tensor a = make<B>({-1.0f, -2.0f, -3.0f}, sh), b = make<B>({-2.0f, -1.0f, -4.0f}, sh);
  const tensor n = make<B>({2.0f, 3.0f, 4.0f}, sh);
  auto run = [&](const losses::dpo_config& cfg) { return losses::dpo_loss<B>({a, b, a, b}, cfg); };

  // Enum options cast from an out-of-range integer.
  {
    losses::dpo_config bad;
    bad.loss_type = {losses::dpo_loss_type::sigmoid, static_cast<losses::dpo_loss_type>(200)};
    CHECK_THROWS_WITH_AS(run(bad),
                         "dpo_loss: loss_type[1] must be one of its 15 enumerators (0..14), got "
                         "200",
                         rlhf::config_error);
    bad = {};
    bad.f_divergence_type = static_cast<losses::f_divergence_type>(4);
    CHECK_THROWS_WITH_AS(run(bad),
                         "dpo_loss: f_divergence_type must be one of its 4 enumerators (0..3), "
                         "got 4",
                         rlhf::config_error);
  }

  // Shapes and data.
  const tensor short_t = make<B>({1.0f, 2.0f}, rlhf::shape{2});
  CHECK_THROWS_WITH_AS(losses::dpo_loss<B>({a, short_t, a, b}),
                       "dpo_loss: policy_chosen_logps has shape (3) but policy_rejected_logps "
                       "has shape (2); they must match",
                       rlhf::shape_error);
  CHECK_THROWS_AS(losses::dpo_loss<B>({a, b, a, short_t}), rlhf::shape_error);
  const tensor empty(rlhf::shape{0});
  CHECK_THROWS_WITH_AS(losses::dpo_loss<B>({empty, empty, empty, empty}),
                       "dpo_loss: batch is empty (policy_chosen_logps has 0 pairs)",
                       rlhf::shape_error);
  const tensor nan_t = make<B>({1.0f, NAN, 0.0f}, sh), inf_t = make<B>({INFINITY, 0.0f, 0.0f}, sh);
  CHECK_THROWS_WITH_AS(losses::dpo_loss<B>({a, b, nan_t, b}),
                       "dpo_loss: reference_chosen_logps must be finite, got nan at flat index 1",
                       rlhf::data_error);
  CHECK_THROWS_AS(losses::dpo_loss<B>({inf_t, b, a, b}), rlhf::data_error);
  const tensor neg = make<B>({1.0f, -1.0f, 1.0f}, sh);
  CHECK_THROWS_WITH_AS(losses::dpo_loss<B>({a, b, a, b, &neg, &n}),
                       "dpo_loss: chosen_lengths must hold finite weights >= 0, got -1 at flat "
                       "index 1",
                       rlhf::data_error);

  // Hyper-parameters.
  losses::dpo_config cfg;
  cfg.beta = 0.0f;
  CHECK_THROWS_WITH_AS(run(cfg), "dpo_loss: beta must be finite and > 0, got 0",
                       rlhf::config_error);
  cfg = {};
  cfg.label_smoothing = 0.6f;
  CHECK_THROWS_WITH_AS(run(cfg), "dpo_loss: label_smoothing must be in [0, 0.5], got 0.600000024",
                       rlhf::config_error);
  cfg = {};
  cfg.loss_type = {dpo_loss_type::robust};
  cfg.label_smoothing = 0.5f;
  CHECK_THROWS_WITH_AS(run(cfg),
                       "dpo_loss: label_smoothing must be in [0, 0.5) for loss_type robust, "
                       "got 0.5",
                       rlhf::config_error);
  cfg = {};
  cfg.loss_type = {dpo_loss_type::exo_pair};
  CHECK_THROWS_WITH_AS(run(cfg),
                       "dpo_loss: label_smoothing must be in (0, 0.5] for loss_type exo_pair, "
                       "got 0",
                       rlhf::config_error);
  cfg = {};
  cfg.loss_weights = {1.0f, 2.0f};
  CHECK_THROWS_WITH_AS(run(cfg),
                       "dpo_loss: loss_weights must be empty or one weight per loss_type entry "
                       "(1), got 2 weights",
                       rlhf::config_error);
  cfg = {};
  cfg.loss_weights = {-1.0f};
  CHECK_THROWS_WITH_AS(run(cfg), "dpo_loss: loss_weights[0] must be finite and >= 0, got -1",
                       rlhf::config_error);
  cfg = {};
  cfg.loss_type.clear();
  CHECK_THROWS_AS(run(cfg), rlhf::config_error);
  cfg = {};
  cfg.discopop_tau = 0.0f;
  CHECK_THROWS_AS(run(cfg), rlhf::config_error);
  cfg = {};
  cfg.ld_alpha = 0.5f;  // valid, but dpo_loss cannot apply it
  CHECK_THROWS_WITH_AS(run(cfg), doctest::Contains("dpo_loss: ld_alpha (0.5) acts on token"),
                       rlhf::config_error);
  cfg = {};
  cfg.rpo_alpha = -0.5f;
  CHECK_THROWS_AS(run(cfg), rlhf::config_error);

  // Inputs a configuration needs.
  cfg = {};
  cfg.loss_type = {dpo_loss_type::sigmoid, dpo_loss_type::ipo};
  CHECK_THROWS_WITH_AS(run(cfg),
                       "dpo_loss: loss_type ipo needs chosen_lengths (completion token counts), "
                       "which are absent",
                       rlhf::config_error);
  CHECK_THROWS_WITH_AS(losses::dpo_loss<B>({a, b, a, b, &n}, cfg),
                       "dpo_loss: loss_type ipo needs rejected_lengths (completion token "
                       "counts), which are absent",
                       rlhf::config_error);
  cfg = {};
  cfg.rpo_alpha = 1.0f;
  CHECK_THROWS_WITH_AS(run(cfg),
                       "dpo_loss: rpo_alpha needs chosen_lengths (completion token counts), "
                       "which are absent",
                       rlhf::config_error);
  cfg = {};
  cfg.use_weighting = true;
  CHECK_THROWS_AS(run(cfg), rlhf::config_error);
  cfg = {};
  CHECK_THROWS_WITH_AS(losses::dpo_loss<B>({a, b, a, b, nullptr, nullptr, &n}, cfg),
                       "dpo_loss: weights were given but use_weighting is false",
                       rlhf::config_error);

  // Helpers.
  typename B::tensor out(rlhf::shape{3});
  const auto tok = make<B>(std::vector<float>(6, -1.0f), rlhf::shape{3, 2});
  const auto mask = make<B>(std::vector<float>(6, 1.0f), rlhf::shape{3, 2});
  const auto mask2 = make<B>(std::vector<float>(4, 1.0f), rlhf::shape{2, 2});
  CHECK_THROWS_WITH_AS(losses::ld_sequence_logps<B>(tok, mask, mask2, 0.5f, out),
                       "ld_sequence_logps: other_mask's row count (one per sequence) must be 3, "
                       "got 2",
                       rlhf::shape_error);
  CHECK_THROWS_AS(losses::ld_sequence_logps<B>(tok, mask, mask, -0.1f, out), rlhf::config_error);
  const auto logits = make<B>(std::vector<float>(3 * 2 * 4, 0.0f), rlhf::shape{3, 2, 4});
  const std::vector<std::int32_t> ids{0, 1, 2, 3, 0, 4};
  const auto tokens = rlhf::ops::index_from_host<B>(ids, rlhf::shape{3, 2});
  CHECK_THROWS_WITH_AS(losses::wpo_weights<B>(logits, tokens, mask, out),
                       "wpo_weights: tokens must be in [0, 4), got 4 at flat index 5",
                       rlhf::data_error);
}

// The sigmoid loss alone takes one SIMD pass on host backends (polynomial e^x and log1p,
// statistics in double per block of 256 pairs); listed twice at half weight it takes the
// general per-term kernels (std::exp, std::log1p, float statistics). The two agree to float
// round-off on ordinary and extreme pairs, and a pair whose z = β·(cr - rj) overflows goes
// to the general kernels, which report what they report.
TEST_CASE_TEMPLATE("dpo_loss sigmoid: the vectorised pass equals the general kernels", B,
                   RLHF_TEST_BACKENDS) {
  using tensor = typename B::tensor;
  const std::size_t n = 1000;  // 3 full blocks and a partial one
  std::vector<float> lc = randn(n, 501, 20.0f), lr = randn(n, 502, 20.0f);
  std::vector<float> rc = randn(n, 503, 20.0f), rr = randn(n, 504, 20.0f);
  // Extremes: |z| far past e^x's range (both signs), z = 0 (margin 0: not "correct"),
  // z tiny, huge log-probs whose differences are still finite.
  lc[0] = 2000.0f, rc[0] = 0.0f, lr[0] = 0.0f, rr[0] = 0.0f;       // z = +200
  lc[1] = -2000.0f, rc[1] = 0.0f, lr[1] = 0.0f, rr[1] = 0.0f;      // z = -200
  lc[2] = lr[2] = -7.0f, rc[2] = rr[2] = -3.0f;                    // z = 0
  lc[3] = -5.0f, lr[3] = -5.0f, rc[3] = -5.0f, rr[3] = -5.00001f;  // z ≈ -1e-6
  lc[4] = -1e30f, rc[4] = -1e30f, lr[4] = -2e30f, rr[4] = -2e30f;  // equal huge values
  lc[5] = 870.0f, rc[5] = 0.0f, lr[5] = 0.0f, rr[5] = 0.0f;        // z = 87: e^-z subnormal
  std::vector<float> w(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = static_cast<float>(i % 7) * 0.3f;
  const rlhf::shape sh{static_cast<rlhf::index_t>(n)};
  const tensor tlc = make<B>(lc, sh), tlr = make<B>(lr, sh), trc = make<B>(rc, sh),
               trr = make<B>(rr, sh), tw = make<B>(w, sh);
  for (const float eps : {0.0f, 0.2f}) {
    for (const bool weighted : {false, true}) {
      CAPTURE(eps);
      CAPTURE(weighted);
      losses::dpo_config one, twice;
      one.label_smoothing = twice.label_smoothing = eps;
      one.use_weighting = twice.use_weighting = weighted;
      one.loss_weights = {1.5f};
      twice.loss_type = {dpo_loss_type::sigmoid, dpo_loss_type::sigmoid};
      twice.loss_weights = {0.75f, 0.75f};
      const losses::dpo_inputs<B> in{
          tlc, tlr, trc, trr, nullptr, nullptr, weighted ? &tw : nullptr};
      const auto a = losses::dpo_loss<B>(in, one);
      const auto b = losses::dpo_loss<B>(in, twice);
      check_close(a.loss, b.loss, "loss", 2e-6, 1e-7);
      check_close(host<B>(a.losses), host<B>(b.losses), "losses", 2e-6, 1e-7);
      check_close(host<B>(a.grad_policy_chosen_logps), host<B>(b.grad_policy_chosen_logps),
                  "grad chosen", 2e-6, 1e-10);
      check_close(host<B>(a.grad_policy_rejected_logps), host<B>(b.grad_policy_rejected_logps),
                  "grad rejected", 2e-6, 1e-10);
      const auto ma = a.metrics.named(), mb = b.metrics.named();
      for (const auto& [name, value] : mb) {
        CAPTURE(name);
        check_close(rlhf::metric_or(ma, name, NAN), value, "metric", 2e-6, 1e-6);
      }
      CHECK(host<B>(a.losses)[2] == doctest::Approx(1.5 * std::log(2.0) * (weighted ? 0.6 : 1)));
    }
  }
  // z = β·(cr - rj) = +inf (cr overflows): the general kernels take the batch, and give the
  // loss 0 and gradients 0 for that pair, as the listed-twice form does.
  lc[6] = 3e38f, rc[6] = -3e38f;
  const tensor olc = make<B>(lc, sh), orc = make<B>(rc, sh);
  losses::dpo_config one, twice;
  twice.loss_type = {dpo_loss_type::sigmoid, dpo_loss_type::sigmoid};
  twice.loss_weights = {0.5f, 0.5f};
  const auto a = losses::dpo_loss<B>({olc, tlr, orc, trr}, one);
  const auto b = losses::dpo_loss<B>({olc, tlr, orc, trr}, twice);
  CHECK(host<B>(a.losses)[6] == 0.0f);
  CHECK(host<B>(a.grad_policy_chosen_logps)[6] == 0.0f);
  check_close(host<B>(a.losses), host<B>(b.losses), "losses with an overflowing pair", 2e-6, 1e-7);
  // Both log-ratios +inf: z = inf - inf = NaN, which both forms report the same way.
  lr[7] = 3e38f, rr[7] = -3e38f, lc[7] = 3e38f, rc[7] = -3e38f;
  const tensor nlc = make<B>(lc, sh), nlr = make<B>(lr, sh), nrc = make<B>(rc, sh),
               nrr = make<B>(rr, sh);
  std::string message_one, message_twice;
  try {
    (void)losses::dpo_loss<B>({nlc, nlr, nrc, nrr}, one);
  } catch (const rlhf::data_error& e) {
    message_one = e.what();
  }
  try {
    (void)losses::dpo_loss<B>({nlc, nlr, nrc, nrr}, twice);
  } catch (const rlhf::data_error& e) {
    message_twice = e.what();
  }
  CHECK(message_one.find("pair 7") != std::string::npos);
  CHECK(message_one == message_twice);
}

TEST_CASE_TEMPLATE(
    "dpo_loss forward_kl far from the reference: a true 0 is 0, a true overflow "
    "is a data_error from dpo_loss",
    B, RLHF_TEST_BACKENDS) {
  using tensor = typename B::tensor;
  // Log-ratios x = policy - reference; forward_kl scores s = -e^{-x}, so x = -300 and -600
  // put e^{-x} far beyond float (e^{88.7}). The truth, with z = β(e^{-rj} - e^{-cr}):
  //   cr = -300, rj = -600: z = β(e^{600} - e^{300}) -> +inf: loss softplus(-z) = 0 exactly,
  //                         gradients σ(-z)·β·e^{-x} = 0 (σ(-z) underflows first)
  //   cr = -600, rj = -300: z -> -inf, loss ≈ β·e^{600}: beyond float (and double)
  //   cr = rj = -600:       z = 0, loss log 2, but d loss / d cr = -β·e^{600}/2: beyond float
  const rlhf::shape sh{3};
  losses::dpo_config cfg;
  cfg.f_divergence_type = f_divergence_type::forward_kl;
  const tensor zero = make<B>({0.0f, 0.0f, 0.0f}, sh);
  {
    const tensor lc = make<B>({-300.0f, -1.0f, -500.0f}, sh);
    const tensor lr = make<B>({-600.0f, -2.0f, -700.0f}, sh);
    const auto r = losses::dpo_loss<B>({lc, lr, zero, zero}, cfg);
    const auto l = host<B>(r.losses);
    const auto gc = host<B>(r.grad_policy_chosen_logps);
    const auto gr = host<B>(r.grad_policy_rejected_logps);
    for (const std::size_t i : {std::size_t{0}, std::size_t{2}}) {
      CAPTURE(i);
      CHECK(l[i] == 0.0f);
      CHECK(gc[i] == 0.0f);
      CHECK(gr[i] == 0.0f);
    }
    // The ordinary pair, in double: z = 0.1·(e^{2} - e^{1}).
    const double z = 0.1 * (std::exp(2.0) - std::exp(1.0));
    CHECK(l[1] == doctest::Approx(std::log1p(std::exp(-z))).epsilon(1e-6));
    CHECK(r.loss == doctest::Approx(l[1] / 3.0).epsilon(1e-6));
    CHECK(std::isfinite(gc[1]));
    CHECK(std::isfinite(gr[1]));
  }
  {
    // Hinge: the far pair is beyond the margin: loss 0.
    losses::dpo_config h = cfg;
    h.loss_type = {dpo_loss_type::hinge};
    const tensor lc = make<B>({-300.0f, -1.0f, -1.0f}, sh);
    const tensor lr = make<B>({-600.0f, -2.0f, -2.0f}, sh);
    const auto r = losses::dpo_loss<B>({lc, lr, zero, zero}, h);
    CHECK(host<B>(r.losses)[0] == 0.0f);
    CHECK(std::isfinite(r.loss));
  }
  {
    const tensor lc = make<B>({-1.0f, -600.0f, -1.0f}, sh);
    const tensor lr = make<B>({-2.0f, -300.0f, -2.0f}, sh);
    CHECK_THROWS_WITH_AS((void)losses::dpo_loss<B>({lc, lr, zero, zero}, cfg),
                         doctest::Contains("dpo_loss: the loss of pair 1 is inf"),
                         rlhf::data_error);
    CHECK_THROWS_WITH_AS((void)losses::dpo_loss<B>({lc, lr, zero, zero}, cfg),
                         doctest::Contains("forward_kl"), rlhf::data_error);
  }
  {
    const tensor lc = make<B>({-1.0f, -1.0f, -600.0f}, sh);
    const tensor lr = make<B>({-2.0f, -2.0f, -600.0f}, sh);
    CHECK_THROWS_WITH_AS((void)losses::dpo_loss<B>({lc, lr, zero, zero}, cfg),
                         doctest::Contains("dpo_loss: the gradient of pair 2 is not finite"),
                         rlhf::data_error);
  }
}

TEST_CASE("enum names: one table per enum, both ways, aliases, messages") {
  // Every DPO loss type's name comes from its dpo_types row.
  REQUIRE(std::size(all_types) == rlhf::enum_count<dpo_loss_type>);
  for (const auto& row : losses::detail::dpo::dpo_types) {
    CHECK(losses::to_string(row.type) == row.name);
    CHECK(rlhf::enum_from_string<dpo_loss_type>(row.name, "f", "loss_type") == row.type);
  }
  CHECK(rlhf::to_string(static_cast<dpo_loss_type>(200)) == "unknown");
  // Enums with no converter of their own.
  CHECK(rlhf::to_string(losses::ensemble_reduction::mean_minus_std) == "mean_minus_std");
  CHECK(rlhf::enum_from_string<losses::ensemble_reduction>("min", "f", "how") ==
        losses::ensemble_reduction::min);
  CHECK_THROWS_WITH_AS(
      (void)rlhf::enum_from_string<losses::ensemble_reduction>("median", "reward_ensemble", "how"),
      "reward_ensemble: unknown how 'median'; accepted: mean, min, "
      "mean_minus_std",
      rlhf::config_error);
  // Aliases parse, print as the canonical name and are listed next to it.
  CHECK(rlhf::enum_find<rlhf::rl::kl_estimator>("k2") == rlhf::rl::kl_estimator::mse);
  CHECK(rlhf::to_string(rlhf::rl::kl_estimator::mse) == "mse");
  CHECK(rlhf::enum_accepted_names<rlhf::rl::kl_estimator>() == "k1 (kl), abs, mse (k2), k3, full");
  CHECK_FALSE(rlhf::enum_find<rlhf::rl::kl_estimator>("K1").has_value());
  static_assert(rlhf::named_enum<losses::f_divergence_type>);
  static_assert(!rlhf::named_enum<int>);
}

}  // namespace test_dpo_cases
