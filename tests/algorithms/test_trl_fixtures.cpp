// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf++ against numbers TRL 1.16's own code produced (tools/reference/trl/*.py run TRL's
// loss methods, read from the installed package, on stand-in trainers; tests/fixtures/trl/).
// Every case starts from logits (or rewards): our token_logprobs → loss → backward →
// token_logprobs_backward must give TRL's per-token log-probs, loss, metrics (TRL's names)
// and d loss / d logits (torch autograd through TRL's fused LM head). A metric we report
// under a TRL name must be one TRL logged, with TRL's value.
//
// Tolerances: |ours - TRL| <= 1e-5·|TRL| + abs. TRL ran in float32 as we do (its kernel keeps
// its statistics in float32), so both sides carry float32 round-off from different summation
// orders, and abs scales with the magnitudes summed:
//   log-probs, losses        1e-6·(1 + max |per-token log-prob|) (+ 1e-6·|loss| for GRPO/RLOO)
//   metrics of sums          the same times T (rewards/*, logps/*: sums of T log-probs)
//   entropies                1e-6 + 4·eps32·max |z / τ| of the row (TRL: log_z - Σ p·z)
//   d loss / d logits        1e-6 + 4·eps32·(1 + max |z| of the row)·|d loss / d log-prob|
//                            (grad_tolerances: TRL's p = exp(z - log_z) in float32)
//   rewards, advantages      1e-5 (values of size ~1), d loss / d rewards 1e-6
// The peaked-logits cases (log-probs near -100) are where the scaled terms matter.
// Built once, on the Eigen backend (this file is not templated on the test backends).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "rlhf/losses/dpo.hpp"
#include "rlhf/losses/grpo.hpp"
#include "rlhf/losses/kto.hpp"
#include "rlhf/losses/reward.hpp"
#include "rlhf/losses/rloo.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/slice.hpp"

namespace test_trl_fixtures_cases {

using json = nlohmann::json;
using B = rlhf::eigen_backend;
using tensor = B::tensor;
using itensor = B::index_tensor;
using rlhf::index_t;
using rlhf::shape;
namespace ops = rlhf::ops;
namespace losses = rlhf::losses;

namespace {

constexpr double rel_tol = 1e-5;

/// The worst errors seen per family (reported at the end of each test case): the largest
/// relative error among values with |TRL| >= 1e-3, and the largest fraction of the tolerance
/// used.
struct worst_error {
  double rel = 0.0, used = 0.0;
  std::string where, where_used;
  std::set<std::string> metrics_seen;  ///< TRL metric names compared in the current case
  std::string current;                 ///< the current case's name
  void note(double err, double allowed, double expected, const std::string& what) {
    const double r = err / std::max(std::abs(expected), 1e-30);
    if (std::abs(expected) >= 1e-3 && r > rel) rel = r, where = what + ", " + current;
    if (err / allowed > used) used = err / allowed, where_used = what + ", " + current;
  }
  void report(const std::string& family, int cases, int metrics) const {
    MESSAGE(family << ": " << cases << " cases, " << metrics << " metrics compared; worst "
                   << "relative error " << rel << " (" << where << "), worst share of the "
                   << "tolerance " << used << " (" << where_used << ")");
  }
};

/// Fixture values; JSON null is NaN (TRL's NaN).
std::vector<float> floats(const json& t) {
  std::vector<float> v;
  const json& data = t.is_object() ? t.at("data") : t;
  v.reserve(data.size());
  for (const auto& x : data) v.push_back(x.is_null() ? std::nanf("") : x.get<float>());
  return v;
}
shape shape_of(const json& t) { return rlhf_test::fixture_case::shape_of(t); }
tensor tensor_of(const json& t) {
  const auto v = floats(t);
  return ops::from_host<B>(std::span<const float>(v), shape_of(t));
}
itensor ids_of(const json& t) {
  const auto v = t.at("data").get<std::vector<std::int32_t>>();
  return ops::index_from_host<B>(std::span<const std::int32_t>(v), shape_of(t));
}
float scalar(const json& j) { return j.is_null() ? std::nanf("") : j.get<float>(); }

/// |a - e| <= rel·|e| + abs[i] for every element (NaN only against NaN); records the worst.
void check_values(std::span<const float> actual, std::span<const float> expected,
                  const std::string& what, const std::vector<double>& abs_tols,
                  worst_error& worst) {
  REQUIRE_MESSAGE(actual.size() == expected.size(),
                  what << ": " << actual.size() << " values, TRL has " << expected.size());
  std::size_t bad = 0, at = 0;
  double excess = 0.0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double a = actual[i], e = expected[i];
    if (std::isnan(e) || std::isnan(a)) {
      if (!(std::isnan(e) && std::isnan(a))) {
        if (bad++ == 0 || excess < 1e300) at = i, excess = 1e300;
      }
      continue;
    }
    const double abs_tol = abs_tols.size() == 1 ? abs_tols[0] : abs_tols.at(i);
    const double err = std::abs(a - e), allowed = abs_tol + rel_tol * std::abs(e);
    worst.note(err, allowed, e, what);
    if (err > allowed) {
      if (bad++ == 0 || err / allowed > excess) at = i, excess = err / allowed;
    }
  }
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << actual.size()
                               << " values differ from TRL's; worst at [" << at << "]: ours "
                               << (actual.empty() ? 0.0f : actual[at]) << ", TRL "
                               << (expected.empty() ? 0.0f : expected[at]));
}
void check_values(std::span<const float> actual, std::span<const float> expected,
                  const std::string& what, double abs_tol, worst_error& worst) {
  check_values(actual, expected, what, std::vector<double>{abs_tol}, worst);
}
void check_value(float actual, float expected, const std::string& what, double abs_tol,
                 worst_error& worst) {
  check_values(std::span<const float>(&actual, 1), std::span<const float>(&expected, 1), what,
               abs_tol, worst);
}
/// 1e-6·(1 + max |value|): the absolute float32 round-off of a sum of such values.
double sum_abs_tol(std::span<const float> expected) {
  double m = 0.0;
  for (const float v : expected) {
    if (std::isfinite(v)) m = std::max(m, static_cast<double>(std::abs(v)));
  }
  return 1e-6 * (1.0 + m);
}
/// Absolute tolerance of gradients with respect to rewards or of softmax scale.
constexpr double grad_abs_tol = 1e-6;

/// Per-entry absolute tolerances of d loss / d logits (N, T, V). TRL's kernel backward forms
/// p = exp(z - log_z) with log_z = max + log Σ in float32, so p carries a relative error of
/// about eps32·|log_z|; on a peaked row (p_target near 1, |z| ~ 50) the entries g·(1 - p)
/// and g·p_j lose most of their digits (checked against float64: ours is the closer one).
/// Tolerance: 1e-6 + 4·eps32·(1 + max_v |z[r, v]|)·|g_r|, g_r = d loss / d log-prob of the
/// token row r predicts (ours, in token_logprobs' layout: column t + 1).
std::vector<double> grad_tolerances(const std::vector<float>& logits,
                                    const std::vector<float>& g_tok, index_t n, index_t t,
                                    index_t v) {
  constexpr double eps32 = 1.1920928955078125e-07;
  std::vector<double> tol(static_cast<std::size_t>(n * t * v), 1e-6);
  for (index_t r = 0; r < n * t; ++r) {
    if (r % t == t - 1) continue;  // the last position predicts nothing
    double zmax = 0.0;
    for (index_t k = 0; k < v; ++k) {
      zmax = std::max(zmax,
                      static_cast<double>(std::abs(logits[static_cast<std::size_t>(r * v + k)])));
    }
    const double g = std::abs(static_cast<double>(g_tok[static_cast<std::size_t>(r + 1)]));
    for (index_t k = 0; k < v; ++k) {
      tol[static_cast<std::size_t>(r * v + k)] += 4.0 * eps32 * (1.0 + zmax) * g;
    }
  }
  return tol;
}

/// Every metric we report under TRL's name must be one TRL logged, with TRL's value.
void check_named_metrics(const rlhf::named_metrics& ours, const json& trl, double abs_tol,
                         worst_error& worst, int& compared) {
  for (const auto& [name, value] : ours) {
    if (!trl.contains(name)) {
      // rlhf++'s own additions (documented as not TRL's): frac_reward_unscorable.
      CHECK_MESSAGE(name == "frac_reward_unscorable", "TRL logged no metric " << name);
      continue;
    }
    check_value(value, scalar(trl.at(name)), "metric " + name, abs_tol, worst);
    worst.metrics_seen.insert(name);
    ++compared;
  }
}

/// Every metric TRL logged in this case was compared, except trainer bookkeeping that no loss
/// computes: num_tokens (attention-mask token count) and entropy_coef (GRPO's configured
/// coefficient, echoed).
void check_every_metric_compared(const json& trl, worst_error& worst) {
  for (const auto& [name, value] : trl.items()) {
    if (name == "num_tokens" || name == "entropy_coef") continue;
    CHECK_MESSAGE(worst.metrics_seen.count(name) == 1,
                  "TRL's metric " << name << " was not compared");
  }
  worst.metrics_seen.clear();
}

/// The rows [begin, begin + count) of a fixture tensor (N, ...) as a tensor.
tensor rows_of(const json& t, index_t begin, index_t count) {
  const auto v = floats(t);
  const shape s = shape_of(t);
  const index_t row = s.numel() / s[0];
  std::vector<float> out(v.begin() + begin * row, v.begin() + (begin + count) * row);
  const auto dims = t.at("shape").get<std::vector<index_t>>();
  shape rs = dims.size() == 2 ? shape{count, dims[1]} : shape{count, dims[1], dims[2]};
  return ops::from_host<B>(std::span<const float>(out), rs);
}
itensor id_rows_of(const json& t, index_t begin, index_t count) {
  const auto v = t.at("data").get<std::vector<std::int32_t>>();
  const auto dims = t.at("shape").get<std::vector<index_t>>();
  std::vector<std::int32_t> out(v.begin() + begin * dims[1], v.begin() + (begin + count) * dims[1]);
  return ops::index_from_host<B>(std::span<const std::int32_t>(out), shape{count, dims[1]});
}

/// TRL's per-token log-probs (N, T-1) against ours (N, T), whose column 0 is never predicted.
void check_token_logps(const tensor& ours, const json& trl, const std::string& what,
                       worst_error& worst) {
  const auto o = rlhf_test::host<B>(ours);
  const index_t n = ours.shape()[0], t = ours.shape()[1];
  std::vector<float> shifted;
  for (index_t i = 0; i < n; ++i) {
    for (index_t k = 1; k < t; ++k) shifted.push_back(o[static_cast<std::size_t>(i * t + k)]);
  }
  const auto e = floats(trl);
  check_values(shifted, e, what, sum_abs_tol(e), worst);
}

/// Masked token mean of a per-token quantity (N, T) over the rows [begin, begin + count).
float masked_mean(const std::vector<float>& x, const std::vector<float>& m, index_t t,
                  index_t begin, index_t count) {
  double s = 0.0, c = 0.0;
  for (index_t i = begin * t; i < (begin + count) * t; ++i) {
    if (i % t == 0) continue;
    s += static_cast<double>(x[static_cast<std::size_t>(i)]) * m[static_cast<std::size_t>(i)];
    c += m[static_cast<std::size_t>(i)];
  }
  return static_cast<float>(s / c);
}

json load_trl_fixture(const std::string& family) {
  const std::string path = std::string(RLHF_FIXTURE_DIR) + "/trl/" + family + ".json";
  std::ifstream in(path);
  REQUIRE_MESSAGE(in.good(),
                  "cannot open " << path << " (tools/reference/trl/" << family << ".py writes it)");
  json doc = json::parse(in);
  REQUIRE(doc.at("trl").get<std::string>() == "1.16.0");
  REQUIRE(!doc.at("cases").empty());
  return doc;
}

// --- DPO ---------------------------------------------------------------------------------

losses::dpo_config dpo_config_of(const json& j) {
  losses::dpo_config cfg;
  cfg.loss_type.clear();
  for (const auto& t : j.at("loss_type")) {
    cfg.loss_type.push_back(losses::parse_dpo_loss_type(t.get<std::string>()));
  }
  if (!j.at("loss_weights").is_null()) {
    cfg.loss_weights = j.at("loss_weights").get<std::vector<float>>();
  }
  cfg.beta = j.at("beta").get<float>();
  cfg.label_smoothing = j.at("label_smoothing").get<float>();
  cfg.f_divergence_type = losses::parse_f_divergence_type(
      j.at("f_divergence_type").get<std::string>());
  cfg.f_alpha_divergence_coef = j.at("f_alpha_divergence_coef").get<float>();
  cfg.discopop_tau = j.at("discopop_tau").get<float>();
  cfg.use_weighting = j.at("use_weighting").get<bool>();
  return cfg;
}

struct dpo_outcome {
  float loss;
  losses::dpo_metrics metrics;
  std::vector<float> grad_logits;
  std::vector<double> grad_tol;
};

/// Our DPO from the batch's logits: log-probs, (LD-)sequence sums, lengths, WPO weights,
/// dpo_loss and the backward to d loss / d logits.
dpo_outcome run_dpo(const json& batch, const json& config, const losses::dpo_config& cfg,
                    const json* trl_outputs, int& metrics_compared, worst_error& worst) {
  const tensor logits = tensor_of(batch.at("logits"));
  const tensor ref_logits = tensor_of(batch.at("ref_logits"));
  const itensor ids = ids_of(batch.at("input_ids"));
  const tensor mask = tensor_of(batch.at("completion_mask"));
  const index_t n2 = logits.shape()[0], t_len = logits.shape()[1], nb = n2 / 2;
  const auto f = ops::token_logprobs<B>(logits, ids, mask, {.compute_entropy = true});
  const auto fr = ops::token_logprobs<B>(ref_logits, ids, mask);
  const std::vector<float> m = rlhf_test::host<B>(mask);

  const std::optional<float> ld = config.at("ld_alpha").is_null()
                                      ? std::nullopt
                                      : std::optional<float>(config.at("ld_alpha").get<float>());
  const tensor mc = ops::slice_rows<B>(mask, 0, nb), mr = ops::slice_rows<B>(mask, nb, nb);
  tensor lc, lr, rc, rr, wc(mc.shape()), wr(mr.shape());
  if (ld) {
    const auto ld_sum = [&](const tensor& tok, const tensor& own, const tensor& other,
                            tensor* weights) {
      tensor out(shape{nb});
      losses::ld_sequence_logps<B>(tok, own, other, *ld, out, weights);
      return out;
    };
    lc = ld_sum(ops::slice_rows<B>(f.logps, 0, nb), mc, mr, &wc);
    lr = ld_sum(ops::slice_rows<B>(f.logps, nb, nb), mr, mc, &wr);
    rc = ld_sum(ops::slice_rows<B>(fr.logps, 0, nb), mc, mr, nullptr);
    rr = ld_sum(ops::slice_rows<B>(fr.logps, nb, nb), mr, mc, nullptr);
  } else {
    const tensor seq = ops::sequence_logprobs<B>(f.logps, mask, ops::logprob_columns::shifted);
    const tensor ref = ops::sequence_logprobs<B>(fr.logps, mask, ops::logprob_columns::shifted);
    lc = ops::slice_rows<B>(seq, 0, nb), lr = ops::slice_rows<B>(seq, nb, nb);
    rc = ops::slice_rows<B>(ref, 0, nb), rr = ops::slice_rows<B>(ref, nb, nb);
  }
  std::vector<float> len(static_cast<std::size_t>(n2), 0.0f);
  for (index_t i = 0; i < n2 * t_len; ++i) {
    if (i % t_len != 0) len[static_cast<std::size_t>(i / t_len)] += m[static_cast<std::size_t>(i)];
  }
  const tensor nc = ops::from_host<B>(std::span<const float>(len.data(), nb), shape{nb});
  const tensor nr = ops::from_host<B>(std::span<const float>(len.data() + nb, nb), shape{nb});
  std::optional<tensor> w;
  if (cfg.use_weighting) {
    tensor w_c(shape{nb}), w_r(shape{nb});
    losses::wpo_weights<B>(rows_of(batch.at("logits"), 0, nb),
                           id_rows_of(batch.at("input_ids"), 0, nb), mc, w_c);
    losses::wpo_weights<B>(rows_of(batch.at("logits"), nb, nb),
                           id_rows_of(batch.at("input_ids"), nb, nb), mr, w_r);
    const auto a = rlhf_test::host<B>(w_c), b = rlhf_test::host<B>(w_r);
    std::vector<float> p(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) p[i] = a[i] * b[i];
    w = ops::from_host<B>(std::span<const float>(p), shape{nb});
  }
  const auto r = losses::dpo_loss<B>({lc, lr, rc, rr, &nc, &nr, w ? &*w : nullptr}, cfg);

  tensor g_tok;
  if (ld) {
    g_tok = ops::concat_rows<B>(
        losses::ld_sequence_logps_backward<B>(r.grad_policy_chosen_logps, wc),
        losses::ld_sequence_logps_backward<B>(r.grad_policy_rejected_logps, wr));
  } else {
    g_tok = ops::sequence_logprobs_backward<B>(
        ops::concat_rows<B>(r.grad_policy_chosen_logps, r.grad_policy_rejected_logps), mask,
        ops::logprob_columns::shifted);
  }
  tensor g_logits(logits.shape());
  ops::token_logprobs_backward<B>(logits, ids, mask, f, g_tok, g_logits);

  if (trl_outputs) {
    const json& out = *trl_outputs;
    const json& metrics = out.at("metrics");
    check_token_logps(f.logps, out.at("per_token_logps"), "policy per-token log-probs", worst);
    check_token_logps(fr.logps, out.at("ref_per_token_logps"), "reference per-token log-probs",
                      worst);
    // The metrics TRL's DPOTrainer logs beside the loss's, from the log-prob op's outputs.
    const auto ent = rlhf_test::host<B>(f.entropy), hit = rlhf_test::host<B>(f.correct);
    const auto means = rlhf_test::host<B>(ops::predicting_logit_means<B>(logits, mask));
    const rlhf::named_metrics op_metrics{{"entropy", masked_mean(ent, m, t_len, 0, n2)},
                                         {"mean_token_accuracy", masked_mean(hit, m, t_len, 0, nb)},
                                         {"logits/chosen", masked_mean(means, m, t_len, 0, nb)},
                                         {"logits/rejected", masked_mean(means, m, t_len, nb, nb)}};
    // Metric tolerance: sums of log-probs, at their scale.
    const auto lp = floats(out.at("per_token_logps"));
    const double tol = sum_abs_tol(lp) * static_cast<double>(t_len);
    check_named_metrics(r.metrics.named(), metrics, tol, worst, metrics_compared);
    check_named_metrics(op_metrics, metrics, tol, worst, metrics_compared);
  }
  return {r.loss, r.metrics, rlhf_test::host<B>(g_logits),
          grad_tolerances(rlhf_test::host<B>(logits), rlhf_test::host<B>(g_tok), n2, t_len,
                          logits.shape()[2])};
}

}  // namespace

TEST_CASE("DPO from logits matches TRL 1.16's DPOTrainer._compute_loss") {
  const json doc = load_trl_fixture("dpo");
  worst_error worst;
  int cases = 0, metrics_compared = 0;
  for (const auto& c : doc.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    CAPTURE(name);
    worst.current = name;
    const json& batch = doc.at("batches").at(c.at("inputs").at("batch").get<std::string>());
    const json& config = c.at("config");
    const json& out = c.at("outputs");
    losses::dpo_config cfg = dpo_config_of(config);
    const float trl_loss = scalar(out.at("loss"));
    const auto trl_grad = floats(out.at("grad_logits"));
    const double loss_tol = sum_abs_tol(floats(out.at("per_token_logps")));
    const bool ignored_smoothing = cfg.loss_type.size() == 1 &&
                                   cfg.loss_type[0] == losses::dpo_loss_type::sigmoid &&
                                   cfg.label_smoothing > 0.0f;
    if (ignored_smoothing) {
      // Documented difference (docs/algorithms/dpo.md, "Known differences"): TRL 1.x's
      // sigmoid ignores label_smoothing, rlhf++ applies it (cDPO). With ε = 0 we give TRL's
      // numbers; with TRL's ε our loss is the cDPO one, which must differ from TRL's.
      const auto smoothed = run_dpo(batch, config, cfg, nullptr, metrics_compared, worst);
      CHECK(std::abs(smoothed.loss - trl_loss) > 1e-3f);
      cfg.label_smoothing = 0.0f;
    }
    const auto r = run_dpo(batch, config, cfg, &out, metrics_compared, worst);
    check_value(r.loss, trl_loss, "loss", loss_tol, worst);
    check_values(r.grad_logits, trl_grad, "d loss / d logits", r.grad_tol, worst);
    check_every_metric_compared(out.at("metrics"), worst);
    ++cases;
  }
  worst.report("DPO", cases, metrics_compared);
  CHECK(cases >= 50);
}

// --- GRPO --------------------------------------------------------------------------------

namespace {

/// A (N, C) completion-only fixture tensor as (N, P + C): `fill` in the P prompt columns.
tensor with_prompt_columns(const json& t, index_t prompt, float fill) {
  const auto v = floats(t);
  const auto dims = t.at("shape").get<std::vector<index_t>>();
  const index_t n = dims[0], c = dims[1];
  std::vector<float> out(static_cast<std::size_t>(n * (prompt + c)), fill);
  for (index_t i = 0; i < n; ++i) {
    for (index_t k = 0; k < c; ++k) {
      out[static_cast<std::size_t>(i * (prompt + c) + prompt + k)] =
          v[static_cast<std::size_t>(i * c + k)];
    }
  }
  return ops::from_host<B>(std::span<const float>(out), shape{n, prompt + c});
}

/// Columns [prompt, T) of an (N, T) tensor, flattened: TRL's completion-only layout.
std::vector<float> completion_columns(const tensor& x, index_t prompt) {
  const auto v = rlhf_test::host<B>(x);
  const index_t n = x.shape()[0], t = x.shape()[1];
  std::vector<float> out;
  for (index_t i = 0; i < n; ++i) {
    for (index_t k = prompt; k < t; ++k) out.push_back(v[static_cast<std::size_t>(i * t + k)]);
  }
  return out;
}

std::optional<float> optional_float(const json& j, const char* key) {
  return j.at(key).is_null() ? std::nullopt : std::optional<float>(j.at(key).get<float>());
}

losses::grpo_config grpo_config_of(const json& j) {
  losses::grpo_config cfg;
  cfg.loss_type = losses::parse_grpo_loss_type(j.at("loss_type").get<std::string>());
  cfg.beta = j.at("beta").get<float>();
  cfg.epsilon = j.at("epsilon").get<float>();
  cfg.epsilon_high = optional_float(j, "epsilon_high");
  cfg.delta = optional_float(j, "delta");
  cfg.importance_sampling_level = losses::parse_grpo_importance_sampling_level(
      j.at("importance_sampling_level").get<std::string>());
  cfg.top_entropy_quantile = j.at("top_entropy_quantile").get<float>();
  cfg.off_policy_mask_threshold = optional_float(j, "off_policy_mask_threshold");
  cfg.use_bias_correction_kl = j.at("use_bias_correction_kl").get<bool>();
  cfg.entropy_coef = j.at("entropy_coef").get<float>();
  cfg.max_completion_length = j.at("max_completion_length").get<index_t>();
  cfg.sapo_temperature_pos = j.at("sapo_temperature_pos").get<float>();
  cfg.sapo_temperature_neg = j.at("sapo_temperature_neg").get<float>();
  cfg.vespo_k_pos = j.at("vespo_k_pos").get<float>();
  cfg.vespo_lambda_pos = j.at("vespo_lambda_pos").get<float>();
  cfg.vespo_k_neg = j.at("vespo_k_neg").get<float>();
  cfg.vespo_lambda_neg = j.at("vespo_lambda_neg").get<float>();
  return cfg;
}

}  // namespace

TEST_CASE("GRPO from logits matches TRL 1.16's GRPOTrainer._compute_loss") {
  const json doc = load_trl_fixture("grpo");
  worst_error worst;
  int cases = 0, metrics_compared = 0;
  for (const auto& c : doc.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    CAPTURE(name);
    worst.current = name;
    const json& in = c.at("inputs");
    const json& batch = doc.at("batches").at(in.at("batch").get<std::string>());
    const json& config = c.at("config");
    const json& out = c.at("outputs");
    const index_t prompt = config.at("prompt_length").get<index_t>();
    const losses::grpo_config cfg = grpo_config_of(config);
    const ops::logprob_options opt{.temperature = config.at("temperature").get<float>(),
                                   .compute_entropy = true};

    const tensor logits = tensor_of(batch.at("logits"));
    const itensor ids = ids_of(batch.at("input_ids"));
    const tensor mask = with_prompt_columns(batch.at("completion_mask"), prompt, 0.0f);
    const index_t n = logits.shape()[0], t_len = logits.shape()[1];
    const auto f = ops::token_logprobs<B>(logits, ids, mask, opt);
    const auto trl_logps = floats(out.at("per_token_logps"));
    check_values(completion_columns(f.logps, prompt), trl_logps, "per-token log-probs",
                 sum_abs_tol(trl_logps), worst);
    // TRL's entropy is log_z - Σ p·z, a difference of two numbers of the size of the
    // logits: float32 leaves it an absolute error of about eps32·max |z / τ| of its row.
    const auto trl_entropies = floats(out.at("entropies"));
    std::vector<double> ent_tol;
    {
      const auto z = rlhf_test::host<B>(logits);
      const index_t v = logits.shape()[2];
      for (index_t i = 0; i < n; ++i) {
        for (index_t k = prompt; k < t_len; ++k) {
          double zmax = 0.0;
          for (index_t j = 0; j < v; ++j) {
            zmax = std::max(zmax, std::abs(static_cast<double>(
                                      z[static_cast<std::size_t>((i * t_len + k - 1) * v + j)])));
          }
          ent_tol.push_back(1e-6 + 4.0 * 1.1920928955078125e-07 * zmax / opt.temperature);
        }
      }
    }
    check_values(completion_columns(f.entropy, prompt), trl_entropies, "entropies", ent_tol, worst);

    const tensor advantages = tensor_of(in.at("advantages"));
    std::optional<tensor> old, ref, sampler, is_ratio;
    if (in.contains("old_per_token_logps")) {
      old = with_prompt_columns(in.at("old_per_token_logps"), prompt, 0.0f);
    }
    if (in.contains("ref_per_token_logps")) {
      ref = with_prompt_columns(in.at("ref_per_token_logps"), prompt, 0.0f);
    }
    if (in.contains("sampling_per_token_logps")) {
      sampler = with_prompt_columns(in.at("sampling_per_token_logps"), prompt, 0.0f);
    }
    if (in.contains("importance_sampling_ratio")) {
      is_ratio = with_prompt_columns(in.at("importance_sampling_ratio"), prompt, 1.0f);
    }
    const auto r = losses::grpo_loss<B>(
        {.per_token_logps = f.logps,
         .advantages = advantages,
         .completion_mask = mask,
         .old_per_token_logps = old ? &*old : nullptr,
         .ref_per_token_logps = ref ? &*ref : nullptr,
         .num_items_in_batch = config.at("num_items_in_batch").get<float>(),
         .entropies = &f.entropy,
         .sampling_per_token_logps = sampler ? &*sampler : nullptr,
         .importance_sampling_ratio = is_ratio ? &*is_ratio : nullptr},
        cfg);
    tensor g_logits(logits.shape());
    ops::token_logprobs_backward<B>(logits, ids, mask, f, r.grad_per_token_logps, g_logits, opt,
                                    r.grad_entropies.size() != 0 ? &r.grad_entropies : nullptr);

    const float trl_loss = scalar(out.at("loss"));
    // Loss and metrics are means of per-token terms, some proportional to the log-probs
    // (cispo, vespo): the round-off of the largest of those sizes.
    const double tol = sum_abs_tol(trl_logps) + 1e-6 * std::abs(trl_loss);
    check_value(r.loss, trl_loss, "loss", tol, worst);
    check_named_metrics(r.metrics.named(), out.at("metrics"), tol, worst, metrics_compared);
    // The upstream gradient scale of the entropy term (grad_tolerances covers d/d logps).
    auto g_tol = grad_tolerances(rlhf_test::host<B>(logits),
                                 rlhf_test::host<B>(r.grad_per_token_logps), n, t_len,
                                 logits.shape()[2]);
    check_values(rlhf_test::host<B>(g_logits), floats(out.at("grad_logits")), "d loss / d logits",
                 g_tol, worst);
    check_every_metric_compared(out.at("metrics"), worst);
    ++cases;
  }
  worst.report("GRPO", cases, metrics_compared);
  CHECK(cases >= 40);
}

// --- KTO ---------------------------------------------------------------------------------

namespace {

/// Σ completion log-probs (N,) of logits over ids under mask, and the op's forward.
struct sequence_sums {
  ops::token_logprobs_result<B> f;
  tensor sums;
};
sequence_sums sums_of(const tensor& logits, const itensor& ids, const tensor& mask,
                      const ops::logprob_options& opt = {}) {
  auto f = ops::token_logprobs<B>(logits, ids, mask, opt);
  tensor s = ops::sequence_logprobs<B>(f.logps, mask, ops::logprob_columns::shifted);
  return {std::move(f), std::move(s)};
}

}  // namespace

TEST_CASE("KTO from logits matches TRL 1.16's KTOTrainer._compute_loss") {
  const json doc = load_trl_fixture("kto");
  worst_error worst;
  int cases = 0, metrics_compared = 0;
  for (const auto& c : doc.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    CAPTURE(name);
    worst.current = name;
    const json& in = c.at("inputs");
    const json& config = c.at("config");
    const json& out = c.at("outputs");
    losses::kto_config cfg;
    cfg.loss_type = losses::parse_kto_loss_type(config.at("loss_type").get<std::string>());
    cfg.beta = config.at("beta").get<float>();
    cfg.desirable_weight = config.at("desirable_weight").get<float>();
    cfg.undesirable_weight = config.at("undesirable_weight").get<float>();

    const tensor logits = tensor_of(in.at("logits"));
    const itensor ids = ids_of(in.at("input_ids"));
    const tensor mask = tensor_of(in.at("completion_mask"));
    const itensor kl_ids = ids_of(in.at("KL_input_ids"));
    const tensor kl_mask = tensor_of(in.at("KL_completion_mask"));
    const index_t n = logits.shape()[0], t_len = logits.shape()[1];
    const auto policy = sums_of(logits, ids, mask, {.compute_entropy = true});
    const auto reference = sums_of(tensor_of(in.at("ref_logits")), ids, mask);
    const auto policy_kl = sums_of(tensor_of(in.at("kl_logits")), kl_ids, kl_mask);
    const auto reference_kl = sums_of(tensor_of(in.at("kl_ref_logits")), kl_ids, kl_mask);
    check_token_logps(policy.f.logps, out.at("per_token_logps"), "policy per-token log-probs",
                      worst);
    check_token_logps(reference.f.logps, out.at("ref_per_token_logps"),
                      "reference per-token log-probs", worst);
    if (out.contains("KL_per_token_logps")) {
      check_token_logps(policy_kl.f.logps, out.at("KL_per_token_logps"),
                        "KL policy per-token log-probs", worst);
      check_token_logps(reference_kl.f.logps, out.at("KL_ref_per_token_logps"),
                        "KL reference per-token log-probs", worst);
    }
    const auto label_values = in.at("label").at("data").get<std::vector<int>>();
    std::vector<float> labels(label_values.begin(), label_values.end());
    const tensor label_t = ops::from_host<B>(std::span<const float>(labels), shape{n});
    const auto r = losses::kto_loss<B>(
        {policy.sums, reference.sums, label_t, &policy_kl.sums, &reference_kl.sums}, cfg);
    tensor g_logits(logits.shape());
    const tensor g_tok = ops::sequence_logprobs_backward<B>(r.grad_policy_logps, mask,
                                                            ops::logprob_columns::shifted);
    ops::token_logprobs_backward<B>(logits, ids, mask, policy.f, g_tok, g_logits);

    const float trl_loss = scalar(out.at("loss"));
    // The loss: of the size of one log-prob's round-off; metrics: sums of T log-probs.
    const double tol = sum_abs_tol(floats(out.at("per_token_logps"))) * static_cast<double>(t_len);
    check_value(r.loss, trl_loss, "loss", tol / static_cast<double>(t_len), worst);
    check_named_metrics(r.metrics.named(), out.at("metrics"), tol, worst, metrics_compared);
    // TRL's KTOTrainer also logs entropy and logits/chosen|rejected: from the op's outputs.
    const auto m = rlhf_test::host<B>(mask);
    const auto ent = rlhf_test::host<B>(policy.f.entropy);
    const auto means = rlhf_test::host<B>(ops::predicting_logit_means<B>(logits, mask));
    double ent_sum = 0.0, ent_count = 0.0, lc = 0.0, nc = 0.0, lr = 0.0, nr = 0.0;
    for (index_t i = 0; i < n * t_len; ++i) {
      const auto k = static_cast<std::size_t>(i);
      if (i % t_len == 0 || m[k] == 0.0f) continue;
      ent_sum += ent[k], ent_count += 1.0;
      (labels[static_cast<std::size_t>(i / t_len)] != 0.0f ? lc : lr) += means[k];
      (labels[static_cast<std::size_t>(i / t_len)] != 0.0f ? nc : nr) += 1.0;
    }
    rlhf::named_metrics op_metrics{{"entropy", static_cast<float>(ent_sum / ent_count)}};
    if (nc > 0) op_metrics.emplace_back("logits/chosen", static_cast<float>(lc / nc));
    if (nr > 0) op_metrics.emplace_back("logits/rejected", static_cast<float>(lr / nr));
    check_named_metrics(op_metrics, out.at("metrics"), tol, worst, metrics_compared);
    check_values(rlhf_test::host<B>(g_logits), floats(out.at("grad_logits")), "d loss / d logits",
                 grad_tolerances(rlhf_test::host<B>(logits), rlhf_test::host<B>(g_tok), n, t_len,
                                 logits.shape()[2]),
                 worst);
    check_every_metric_compared(out.at("metrics"), worst);
    ++cases;
  }
  worst.report("KTO", cases, metrics_compared);
  CHECK(cases >= 10);
}

// --- RLOO --------------------------------------------------------------------------------

TEST_CASE("RLOO from logits matches TRL 1.16's RLOOTrainer._compute_loss") {
  const json doc = load_trl_fixture("rloo");
  worst_error worst;
  int cases = 0, metrics_compared = 0;
  for (const auto& c : doc.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    CAPTURE(name);
    worst.current = name;
    const json& in = c.at("inputs");
    const json& config = c.at("config");
    const json& out = c.at("outputs");
    const index_t prompt = config.at("prompt_length").get<index_t>();
    losses::rloo_config cfg;
    cfg.epsilon = config.at("epsilon").get<float>();
    cfg.epsilon_high = optional_float(config, "epsilon_high");
    const ops::logprob_options opt{.temperature = config.at("temperature").get<float>(),
                                   .compute_entropy = true};
    const tensor logits = tensor_of(in.at("logits"));
    const itensor ids = ids_of(in.at("input_ids"));
    const tensor mask = with_prompt_columns(in.at("completion_mask"), prompt, 0.0f);
    const index_t n = logits.shape()[0], t_len = logits.shape()[1];
    const auto f = ops::token_logprobs<B>(logits, ids, mask, opt);
    const auto trl_logps = floats(out.at("per_token_logps"));
    check_values(completion_columns(f.logps, prompt), trl_logps, "per-token log-probs",
                 sum_abs_tol(trl_logps), worst);
    const tensor advantages = tensor_of(in.at("advantages"));
    const tensor old = tensor_of(in.at("old_logps"));
    const auto r = losses::rloo_loss<B>({f.logps, advantages, mask, &old}, cfg);
    tensor g_logits(logits.shape());
    ops::token_logprobs_backward<B>(logits, ids, mask, f, r.grad_per_token_logps, g_logits, opt);

    const float trl_loss = scalar(out.at("loss"));
    const double tol = 1e-6 * (1.0 + std::abs(trl_loss));
    check_value(r.loss, trl_loss, "loss", tol, worst);
    check_named_metrics(r.metrics.named(), out.at("metrics"), tol, worst, metrics_compared);
    const auto m = rlhf_test::host<B>(mask);
    const rlhf::named_metrics op_metrics{
        {"entropy", masked_mean(rlhf_test::host<B>(f.entropy), m, t_len, 0, n)}};
    check_named_metrics(op_metrics, out.at("metrics"), 1e-5, worst, metrics_compared);
    check_values(
        rlhf_test::host<B>(g_logits), floats(out.at("grad_logits")), "d loss / d logits",
        grad_tolerances(rlhf_test::host<B>(logits), rlhf_test::host<B>(r.grad_per_token_logps), n,
                        t_len, logits.shape()[2]),
        worst);
    check_every_metric_compared(out.at("metrics"), worst);
    ++cases;
  }
  worst.report("RLOO", cases, metrics_compared);
  CHECK(cases >= 8);
}

// --- Reward model ------------------------------------------------------------------------

TEST_CASE("The reward-model loss matches TRL 1.16's RewardTrainer.compute_loss") {
  const json doc = load_trl_fixture("reward");
  worst_error worst;
  int cases = 0, metrics_compared = 0;
  for (const auto& c : doc.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    CAPTURE(name);
    worst.current = name;
    const json& in = c.at("inputs");
    const json& out = c.at("outputs");
    const auto rewards = floats(in.at("rewards"));
    const auto n = static_cast<index_t>(rewards.size() / 2);
    const tensor chosen = ops::from_host<B>(std::span<const float>(rewards.data(), n), shape{n});
    const tensor rejected = ops::from_host<B>(std::span<const float>(rewards.data() + n, n),
                                              shape{n});
    std::optional<tensor> margin;
    if (in.contains("margin")) margin = tensor_of(in.at("margin"));
    losses::reward_config cfg;
    const json& center = c.at("config").at("center_rewards_coefficient");
    if (!center.is_null()) cfg.center_rewards_coefficient = center.get<float>();  // None = off
    const auto r = losses::reward_loss<B>({chosen, rejected, margin ? &*margin : nullptr}, cfg);
    auto grad = rlhf_test::host<B>(r.grad_rewards_chosen);
    const auto gr = rlhf_test::host<B>(r.grad_rewards_rejected);
    grad.insert(grad.end(), gr.begin(), gr.end());
    const double tol = sum_abs_tol(rewards);
    check_value(r.loss, scalar(out.at("loss")), "loss", tol, worst);
    check_named_metrics(r.metrics.named(), out.at("metrics"), tol, worst, metrics_compared);
    check_values(grad, floats(out.at("grad_rewards")), "d loss / d rewards", grad_abs_tol, worst);
    check_every_metric_compared(out.at("metrics"), worst);
    ++cases;
  }
  worst.report("reward", cases, metrics_compared);
  CHECK(cases >= 6);
}

// --- Advantages --------------------------------------------------------------------------

TEST_CASE("GRPO and RLOO advantages match TRL 1.16's _generate_and_score_completions") {
  const json doc = load_trl_fixture("advantages");
  worst_error worst;
  int cases = 0, metrics_compared = 0;
  for (const auto& c : doc.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    CAPTURE(name);
    worst.current = name;
    const json& in = c.at("inputs");
    const json& config = c.at("config");
    const json& out = c.at("outputs");
    const tensor per_func = tensor_of(in.at("rewards_per_func"));
    const index_t n = per_func.shape()[0];
    const auto weights = config.at("reward_weights").get<std::vector<float>>();
    const auto names = config.at("reward_func_names").get<std::vector<std::string>>();
    tensor rewards(shape{n}), advantages(shape{n});
    const auto per_function = losses::grpo_combine_rewards<B>(
        per_func, std::span<const float>(weights), rewards);
    const double tol = 1e-5;  // rewards of size ~1, sums of a few of them
    check_named_metrics(per_function.named(std::span<const std::string>(names)), out.at("metrics"),
                        tol, worst, metrics_compared);
    const std::string kind = config.at("kind").get<std::string>();
    if (kind == "grpo") {
      losses::grpo_config cfg;
      cfg.num_generations = config.at("num_generations").get<index_t>();
      cfg.scale_rewards = losses::parse_grpo_scale_rewards(
          config.at("scale_rewards").get<std::string>());
      cfg.multi_objective_aggregation = losses::parse_grpo_multi_objective_aggregation(
          config.at("multi_objective_aggregation").get<std::string>());
      const auto m = losses::grpo_advantages<B>(
          {.rewards = rewards, .rewards_per_func = &per_func, .reward_weights = weights}, cfg,
          advantages);
      check_named_metrics(m.named(), out.at("metrics"), tol, worst, metrics_compared);
    } else {
      REQUIRE(kind == "rloo");
      losses::rloo_config cfg;
      cfg.num_generations = config.at("num_generations").get<index_t>();
      cfg.beta = config.at("beta").get<float>();
      cfg.normalize_advantages = config.at("normalize_advantages").get<bool>();
      if (!config.at("reward_clip_range").is_null()) {
        const auto r = config.at("reward_clip_range").get<std::vector<float>>();
        cfg.reward_clip_range = std::pair<float, float>{r.at(0), r.at(1)};
      }
      std::optional<tensor> mask, old, ref;
      if (in.contains("completion_mask")) {
        mask = tensor_of(in.at("completion_mask"));
        old = tensor_of(in.at("old_per_token_logps"));
        ref = tensor_of(in.at("ref_per_token_logps"));
      }
      const auto m = losses::rloo_advantages<B>(
          {rewards, mask ? &*mask : nullptr, old ? &*old : nullptr, ref ? &*ref : nullptr}, cfg,
          advantages);
      check_named_metrics(m.named(), out.at("metrics"), tol, worst, metrics_compared);
    }
    check_values(rlhf_test::host<B>(advantages), floats(out.at("advantages")), "advantages", tol,
                 worst);
    check_every_metric_compared(out.at("metrics"), worst);
    ++cases;
  }
  worst.report("advantages", cases, metrics_compared);
  CHECK(cases >= 20);
}

// --- Log-probs and entropies -------------------------------------------------------------

TEST_CASE("token_logprobs and its backward match TRL 1.16's selective_log_softmax_and_entropy") {
  const json doc = load_trl_fixture("logprobs");
  worst_error worst;
  int cases = 0, metrics_compared = 0;
  for (const auto& c : doc.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    CAPTURE(name);
    worst.current = name;
    const json& in = c.at("inputs");
    const json& out = c.at("outputs");
    const float tau = c.at("config").at("temperature").get<float>();
    const ops::logprob_options opt{.temperature = tau, .compute_entropy = true};
    const tensor logits = tensor_of(in.at("logits"));
    const itensor ids = ids_of(in.at("input_ids"));
    const index_t n = logits.shape()[0], t_len = logits.shape()[1], v = logits.shape()[2];
    const std::vector<float> ones(static_cast<std::size_t>(n * t_len), 1.0f);
    const tensor mask = ops::from_host<B>(std::span<const float>(ones), shape{n, t_len});
    const auto f = ops::token_logprobs<B>(logits, ids, mask, opt);
    // TRL's (N, T - 1) as our (N, T): column 0 (never predicted) gets 0.
    const auto pad = [&](const json& t) {
      const auto x = floats(t);
      std::vector<float> o(static_cast<std::size_t>(n * t_len), 0.0f);
      for (index_t i = 0; i < n; ++i) {
        for (index_t k = 1; k < t_len; ++k) {
          o[static_cast<std::size_t>(i * t_len + k)] =
              x[static_cast<std::size_t>(i * (t_len - 1) + k - 1)];
        }
      }
      return o;
    };
    const auto w = pad(in.at("grad_logps")), u = pad(in.at("grad_entropy"));
    const auto z = rlhf_test::host<B>(logits);
    std::vector<double> ent_tol;
    std::vector<float> upstream(w.size());
    for (index_t i = 0; i < n; ++i) {
      for (index_t k = 1; k < t_len; ++k) {
        double zmax = 0.0;
        for (index_t j = 0; j < v; ++j) {
          zmax = std::max(zmax, std::abs(static_cast<double>(
                                    z[static_cast<std::size_t>((i * t_len + k - 1) * v + j)])));
        }
        ent_tol.push_back(1e-6 + 4.0 * 1.1920928955078125e-07 * zmax / tau);
        const auto at = static_cast<std::size_t>(i * t_len + k);
        upstream[at] = (std::abs(w[at]) + std::abs(u[at])) / (tau * tau);
      }
    }
    check_token_logps(f.logps, out.at("logps"), "log-probs", worst);
    std::vector<float> ent;
    const auto e = rlhf_test::host<B>(f.entropy);
    for (index_t i = 0; i < n; ++i) {
      for (index_t k = 1; k < t_len; ++k) ent.push_back(e[static_cast<std::size_t>(i * t_len + k)]);
    }
    check_values(ent, floats(out.at("entropy")), "entropies", ent_tol, worst);
    const tensor gw = ops::from_host<B>(std::span<const float>(w), shape{n, t_len});
    const tensor gu = ops::from_host<B>(std::span<const float>(u), shape{n, t_len});
    tensor g_logits(logits.shape());
    ops::token_logprobs_backward<B>(logits, ids, mask, f, gw, g_logits, opt, &gu);
    check_values(rlhf_test::host<B>(g_logits), floats(out.at("grad_logits")), "d/d logits",
                 grad_tolerances(z, upstream, n, t_len, v), worst);
    ++cases;
  }
  worst.report("log-probs", cases, metrics_compared);
  CHECK(cases >= 5);
}

}  // namespace test_trl_fixtures_cases
