// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// KTO, ORPO, CPO/SimPO, BCO and LD-DPO as training methods on a tiny GPT and generated data:
// each method's gradient equals central finite differences of its own loss, each run's loss
// falls, the unpaired methods log TRL's class means, BCO's running mean survives a resume
// bit for bit, and bad configurations are refused. Also TRL's cumulative num_tokens of SFT,
// DPO, KTO and reward modeling, and KTO's token metrics.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/data/batcher.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/bco.hpp"
#include "rlhf/train/cpo.hpp"
#include "rlhf/train/dpo.hpp"
#include "rlhf/train/kto.hpp"
#include "rlhf/train/orpo.hpp"
#include "rlhf/train/reward.hpp"
#include "rlhf/train/sft.hpp"
#include "rlhf/train/trainer.hpp"
#include "train_fixture.hpp"

namespace test_offline_methods_cases {

namespace {

using B = rlhf::eigen_backend;
namespace fs = std::filesystem;
namespace model = rlhf::model;
namespace train = rlhf::train;
namespace losses = rlhf::losses;
using Tok = model::byte_tokenizer;
using namespace train_fixture;

fs::path scratch(const std::string& name) { return train_fixture::scratch("offline", name); }

/// Unpaired examples a tiny model can tell apart: desirable completions repeat the prompt's
/// letter, undesirable ones are a fixed other string. Every `period`-th example is
/// undesirable: period 2 alternates, period 4 gives 3 desirable to 1.
std::vector<std::string> unpaired_lines(int n, int period = 2) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const char c = static_cast<char>('a' + (i / 2) % 6);
    const bool label = i % period != period - 1;
    out.push_back(std::string(R"({"prompt": "say )") + c + R"(", "completion": ")" +
                  (label ? std::string(3, c) : std::string("zq")) + R"(", "label": )" +
                  (label ? "true" : "false") + "}");
  }
  return out;
}

/// The policy and its frozen copy, both from the same seed.
struct models {
  model::gpt<B> policy{tiny_config()};
  model::gpt<B> reference{tiny_config(), /*trainable=*/false};
  models() {
    policy.init(11);
    rlhf::ops::transform<B>(reference.params(), rlhf::fn::identity{}, policy.params());
  }
};

/// The shared test arguments with a constant learning rate.
train::training_args args_in(const fs::path& dir, float lr) {
  auto a = test_args(dir, lr, 0.25f);
  a.lr_scheduler_type = model::lr_schedule_type::constant;
  return a;
}

/// The loss of `method` on `idx` without gradients.
template <class M>
double eval_loss(M& method, std::span<const std::uint64_t> idx) {
  const auto m = method.eval_batch(idx);
  REQUIRE(m.front().first == "loss");
  return m.front().second;
}

/// train_micro_batch's gradient on the first micro-batch against central differences of
/// eval_batch's loss, at the 6 coordinates with the largest gradients (float32: h = 1e-2
/// keeps the difference well above round-off; the loss is smooth at that scale).
template <class M>
void check_gradient(M& method, model::gpt<B>& policy) {
  const auto& all = method.train_indices();
  const std::vector<std::uint64_t> idx(all.begin(), all.begin() + 4);
  policy.zero_grads();
  (void)method.train_micro_batch(idx);
  float* g = B::data(policy.grads());
  float* p = B::data(policy.params());
  const auto n = static_cast<std::size_t>(policy.num_params());
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::partial_sort(order.begin(), order.begin() + 6, order.end(),
                    [&](std::size_t a, std::size_t b) { return std::abs(g[a]) > std::abs(g[b]); });
  REQUIRE(std::abs(g[order[0]]) > 1e-4f);
  for (int k = 0; k < 6; ++k) {
    const std::size_t i = order[static_cast<std::size_t>(k)];
    const float saved = p[i];
    const float h = 1e-2f;
    p[i] = saved + h;
    const double up = eval_loss(method, idx);
    p[i] = saved - h;
    const double down = eval_loss(method, idx);
    p[i] = saved;
    const double fd = (up - down) / (2.0 * h);
    CAPTURE(i);
    CHECK(g[i] == doctest::Approx(fd).epsilon(2e-2).scale(1e-3));
  }
}

/// The first logged training loss and the mean of the last five.
std::pair<double, double> first_and_last_losses(const fs::path& dir) {
  std::vector<double> losses;
  for (const auto& l : read_lines(dir / "metrics.jsonl")) {
    const auto j = nlohmann::json::parse(l);
    if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
  }
  REQUIRE(losses.size() >= 6);
  const double last = std::accumulate(losses.end() - 5, losses.end(), 0.0) / 5.0;
  return {losses.front(), last};
}

train::example_source<Tok> source_of(const fs::path& data, rlhf::data::format f,
                                     const rlhf::data::tokenize_options& o,
                                     const train::training_args& a) {
  return {{data, {}, {}}, f, Tok{}, o, a.seed, a.eval_fraction};
}

}  // namespace

TEST_CASE("orpo method: gradient = finite differences; training lowers the loss") {
  const auto data = scratch("orpo.jsonl");
  write_lines(data, separable_pairs(48));
  const auto dir = scratch("orpo_run");
  train::orpo_config cfg;
  cfg.args = args_in(dir, 5e-3f);
  cfg.max_length = 32;
  models m;
  auto src = source_of(data, rlhf::data::format::preference, train::orpo_tokenize_options(cfg),
                       cfg.args);
  train::orpo_method<B, Tok> method(m.policy, src, cfg);
  check_gradient(method, m.policy);
  const auto r = train::trainer<B, decltype(method)>(method, cfg.args).train();
  const auto [first, last] = first_and_last_losses(dir);
  MESSAGE("orpo loss ", first, " -> ", last, ", eval accuracy ",
          r.last_eval["eval_rewards/accuracies"].get<double>());
  CHECK(last < 0.8 * first);
  CHECK(r.last_eval["eval_rewards/accuracies"].get<double>() >= 0.9);
  CHECK(r.last_eval.contains("eval_nll_loss"));
  CHECK(r.last_eval.contains("eval_log_odds_ratio"));
}

TEST_CASE("cpo method: sigmoid and simpo; gradient = finite differences; the loss falls") {
  for (const auto type : {losses::cpo_loss_type::sigmoid, losses::cpo_loss_type::simpo}) {
    const std::string name = losses::to_string(type);
    CAPTURE(name);
    const auto data = scratch("cpo_" + name + ".jsonl");
    write_lines(data, separable_pairs(48));
    const auto dir = scratch("cpo_run_" + name);
    train::cpo_config cfg;
    cfg.args = args_in(dir, 5e-3f);
    cfg.max_length = 32;
    cfg.loss.loss_type = type;
    if (type == losses::cpo_loss_type::simpo) {
      cfg.loss.beta = 2.0f;
      cfg.loss.cpo_alpha = 0.0f;  // SimPO
    }
    models m;
    auto src = source_of(data, rlhf::data::format::preference, train::cpo_tokenize_options(cfg),
                         cfg.args);
    train::cpo_method<B, Tok> method(m.policy, src, cfg);
    check_gradient(method, m.policy);
    const auto r = train::trainer<B, decltype(method)>(method, cfg.args).train();
    const auto [first, last] = first_and_last_losses(dir);
    MESSAGE("cpo ", name, " loss ", first, " -> ", last);
    CHECK(last < 0.8 * first);
    CHECK(r.last_eval["eval_rewards/accuracies"].get<double>() >= 0.9);
  }
}

TEST_CASE("kto method: gradient = finite differences; class means as TRL 1.16 logs them") {
  const auto data = scratch("kto.jsonl");
  write_lines(data, unpaired_lines(48));
  SUBCASE("apo_zero_unpaired: the gradient") {
    train::kto_config cfg;
    cfg.args = args_in(scratch("kto_fd"), 5e-3f);
    cfg.loss.loss_type = losses::kto_loss_type::apo_zero_unpaired;
    models m;
    auto src = source_of(data, rlhf::data::format::unpaired_preference,
                         train::kto_tokenize_options(cfg), cfg.args);
    train::kto_method<B, Tok> method(m.policy, m.reference, src, cfg);
    check_gradient(method, m.policy);
  }
  SUBCASE("kto: the loss falls, desirable rewards rise above undesirable ones") {
    const auto dir = scratch("kto_run");
    train::kto_config cfg;
    cfg.args = args_in(dir, 5e-3f);
    models m;
    auto src = source_of(data, rlhf::data::format::unpaired_preference,
                         train::kto_tokenize_options(cfg), cfg.args);
    train::kto_method<B, Tok> method(m.policy, m.reference, src, cfg);
    std::vector<std::string> warnings;
    train::callbacks cb;
    cb.on_warning = [&](const std::string& w) { warnings.push_back(w); };
    const auto r = train::trainer<B, decltype(method)>(method, cfg.args, cb).train();
    CHECK(warnings.empty());  // balanced classes, equal weights
    const auto [first, last] = first_and_last_losses(dir);
    MESSAGE("kto loss ", first, " -> ", last, ", eval margin ",
            r.last_eval["eval_rewards/margins"].get<double>());
    CHECK(last < 0.8 * first);
    CHECK(r.last_eval["eval_rewards/margins"].get<double>() > 0.0);
    // TRL 1.16's names: per-batch class means and the KL estimate; no sums or counts.
    for (const char* k : {"loss", "kl", "rewards/chosen", "rewards/rejected", "rewards/margins",
                          "logps/chosen", "logps/rejected"}) {
      CAPTURE(k);
      CHECK(r.last_log.contains(k));
    }
    for (const auto& [k, v] : r.last_log.items()) {
      CAPTURE(k);
      CHECK(k.find("_sum") == std::string::npos);
      CHECK(k.rfind("count/", 0) != 0);
    }
    CHECK(r.last_log["rewards/margins"].get<double>() > 0.0);
  }
  SUBCASE("unbalanced classes: the class-weight advice before training") {
    const auto lopsided = scratch("kto_lopsided.jsonl");
    write_lines(lopsided, unpaired_lines(40, /*period=*/4));  // 3 desirable : 1
    train::kto_config cfg;
    cfg.args = args_in(scratch("kto_warn"), 5e-3f);
    cfg.args.max_steps = 1;
    models m;
    auto src = source_of(lopsided, rlhf::data::format::unpaired_preference,
                         train::kto_tokenize_options(cfg), cfg.args);
    train::kto_method<B, Tok> method(m.policy, m.reference, src, cfg);
    std::vector<std::string> warnings;
    train::callbacks cb;
    cb.on_warning = [&](const std::string& w) { warnings.push_back(w); };
    (void)train::trainer<B, decltype(method)>(method, cfg.args, cb).train();
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("desirable_weight") != std::string::npos);
  }
  SUBCASE("a micro-batch of 1 is refused for loss_type kto") {
    train::kto_config cfg;
    cfg.args = args_in(scratch("kto_b1"), 5e-3f);
    cfg.args.per_device_train_batch_size = 1;
    models m;
    auto src = source_of(data, rlhf::data::format::unpaired_preference,
                         train::kto_tokenize_options(cfg), cfg.args);
    using method_t = train::kto_method<B, Tok>;
    CHECK_THROWS_WITH_AS(method_t(m.policy, m.reference, src, cfg),
                         doctest::Contains("per_device_train_batch_size"), rlhf::config_error);
  }
}

namespace {

train::train_result run_bco(const fs::path& dir, const fs::path& data, int stop_at = 0,
                            const fs::path& resume = {}, double* delta = nullptr) {
  train::bco_config cfg;
  cfg.args = args_in(dir, 5e-3f);
  models m;
  auto src = source_of(data, rlhf::data::format::unpaired_preference,
                       train::bco_tokenize_options(cfg), cfg.args);
  train::bco_method<B, Tok> method(m.policy, m.reference, src, cfg);
  auto r = train_stopping_at<B>(method, cfg.args, stop_at, resume);
  if (delta != nullptr) *delta = method.running_mean().mean;
  return r;
}

}  // namespace

TEST_CASE("bco method: gradient = finite differences; the loss falls; resume keeps delta") {
  const auto data = scratch("bco.jsonl");
  write_lines(data, unpaired_lines(48));
  {
    train::bco_config cfg;
    cfg.args = args_in(scratch("bco_fd"), 5e-3f);
    models m;
    auto src = source_of(data, rlhf::data::format::unpaired_preference,
                         train::bco_tokenize_options(cfg), cfg.args);
    train::bco_method<B, Tok> method(m.policy, m.reference, src, cfg);
    check_gradient(method, m.policy);  // δ is updated by the first call, then held
  }
  const auto full = scratch("bco_full");
  double delta_full = 0.0, delta_resumed = 0.0;
  const auto r = run_bco(full, data, 0, {}, &delta_full);
  const auto [first, last] = first_and_last_losses(full);
  MESSAGE("bco loss ", first, " -> ", last, ", delta ", delta_full);
  CHECK(last < 0.8 * first);
  CHECK(r.last_eval["eval_rewards/margins"].get<double>() > 0.0);
  CHECK(r.last_log.contains("delta"));
  CHECK(delta_full != 0.0);
  const auto part = scratch("bco_part");
  CHECK(run_bco(part, data, /*stop_at=*/12).stopped_early);
  (void)run_bco(part, data, 0, part / "checkpoint-12", &delta_resumed);
  CHECK(delta_resumed == delta_full);
  const auto a = read_lines(full / "metrics.jsonl");
  const auto b = read_lines(part / "metrics.jsonl");
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(i);
    CHECK(a[i] == b[i]);
  }
}

TEST_CASE(
    "dpo method with ld_alpha: LD-DPO's sums on both models, gradient = finite "
    "differences") {
  const auto data = scratch("ld.jsonl");
  write_lines(data, separable_pairs(16));  // chosen "aaa" + EOS vs rejected "zq" + EOS
  models m;
  auto method_with = [&](std::optional<float> alpha) {
    train::dpo_config cfg;
    cfg.args = args_in(scratch("ld_run"), 5e-3f);
    cfg.max_length = 32;
    cfg.loss.ld_alpha = alpha;
    return cfg;
  };
  const auto plain_cfg = method_with(std::nullopt);
  auto src = source_of(data, rlhf::data::format::preference, train::dpo_tokenize_options(plain_cfg),
                       plain_cfg.args);
  const std::vector<std::uint64_t> idx(src.train_indices().begin(),
                                       src.train_indices().begin() + 4);
  {
    // One plain step moves the policy away from the reference (log-ratios not 0).
    train::dpo_method<B, Tok> method(m.policy, m.reference, src, plain_cfg);
    m.policy.zero_grads();
    (void)method.train_micro_batch(idx);
    rlhf::model::scale_grads<B>(m.policy.grads(), -50.0f);
    rlhf::ops::transform<B>(m.policy.params(), rlhf::fn::plus{}, m.policy.params(),
                            m.policy.grads());
  }
  auto loss_at = [&](std::optional<float> alpha) {
    train::dpo_method<B, Tok> method(m.policy, m.reference, src, method_with(alpha));
    const auto metrics = method.eval_batch(idx);
    if (alpha) check_gradient(method, m.policy);
    return std::pair{metrics.front().second, rlhf::metric_or(metrics, "logps/chosen", 0.0f)};
  };
  const auto plain = loss_at(std::nullopt);
  const auto one = loss_at(1.0f);
  const auto half = loss_at(0.5f);
  // α = 1 weighs every token fully: the plain sums.
  CHECK(one.first == doctest::Approx(plain.first).epsilon(1e-5));
  CHECK(one.second == doctest::Approx(plain.second).epsilon(1e-5));
  // α = 0.5 halves the chosen completion's token beyond the rejected one's length.
  CHECK(half.second > plain.second);
  CHECK(half.first != doctest::Approx(plain.first).epsilon(1e-4));
}

TEST_CASE("dpo method with use_soft_labels: each pair's soft_label is its target") {
  // Separable pairs with soft labels; `labels` cycles over the pairs.
  auto data_with = [](const std::string& name, const std::vector<std::string>& labels) {
    std::vector<std::string> lines = separable_pairs(16);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (!labels.empty()) {
        lines[i].insert(lines[i].size() - 1, ", \"soft_label\": " + labels[i % labels.size()]);
      }
    }
    const auto p = scratch(name);
    write_lines(p, lines);
    return p;
  };
  models m;
  train::dpo_config cfg;
  cfg.args = args_in(scratch("soft_run"), 5e-3f);
  cfg.max_length = 32;
  cfg.use_soft_labels = true;
  auto plain_cfg = cfg;
  plain_cfg.use_soft_labels = false;
  auto source = [&](const fs::path& data) {
    return source_of(data, rlhf::data::format::preference, train::dpo_tokenize_options(cfg),
                     cfg.args);
  };
  auto first4 = [](const auto& src) {
    return std::vector<std::uint64_t>(src.train_indices().begin(), src.train_indices().begin() + 4);
  };
  // Labels of 0.5 at policy = reference (z = 0): -0.5·σ(0) + 0.5·σ(0) = 0, no gradient at all.
  {
    auto src = source(data_with("soft_half.jsonl", {"0.5"}));
    train::dpo_method<B, Tok> method(m.policy, m.reference, src, cfg);
    m.policy.zero_grads();
    const auto metrics = method.train_micro_batch(first4(src));
    CHECK(metrics.front().second == doctest::Approx(std::log(2.0)).epsilon(1e-5));
    const auto g = rlhf::ops::to_host<B>(m.policy.grads());
    CHECK(std::all_of(g.begin(), g.end(), [](float v) { return v == 0.0f; }));
  }
  // Labels of 1 are the plain loss, bit for bit.
  {
    auto src = source(data_with("soft_one.jsonl", {"1"}));
    train::dpo_method<B, Tok> soft(m.policy, m.reference, src, cfg);
    train::dpo_method<B, Tok> plain(m.policy, m.reference, src, plain_cfg);
    const auto idx = first4(src);
    CHECK(eval_loss(soft, idx) == eval_loss(plain, idx));
  }
  // Mixed labels, the policy moved off the reference: gradient = finite differences.
  {
    auto src = source(data_with("soft_mixed.jsonl", {"1", "0.25", "0.8", "0"}));
    train::dpo_method<B, Tok> method(m.policy, m.reference, src, cfg);
    m.policy.zero_grads();
    (void)method.train_micro_batch(first4(src));
    rlhf::model::scale_grads<B>(m.policy.grads(), 50.0f);  // against the labels: z far from 0
    rlhf::ops::transform<B>(m.policy.params(), rlhf::fn::plus{}, m.policy.params(),
                            m.policy.grads());
    check_gradient(method, m.policy);
  }
  // A pair without a soft_label is a data_error naming the trainer and the example.
  {
    auto src = source(data_with("soft_none.jsonl", {}));
    train::dpo_method<B, Tok> method(m.policy, m.reference, src, cfg);
    CHECK_THROWS_WITH_AS((void)method.eval_batch(first4(src)),
                         doctest::Contains("dpo: soft labels were asked for, but example"),
                         rlhf::data_error);
  }
}

TEST_CASE("dpo method: TRL 1.16's token metrics (logits/*, mean_token_accuracy, entropy)") {
  const auto data = scratch("dpo_tokens.jsonl");
  write_lines(data, separable_pairs(8));
  train::dpo_config cfg;
  cfg.args = args_in(scratch("dpo_tokens_run"), 5e-3f);
  cfg.max_length = 32;
  models m;
  auto src = source_of(data, rlhf::data::format::preference, train::dpo_tokenize_options(cfg),
                       cfg.args);
  train::dpo_method<B, Tok> method(m.policy, m.reference, src, cfg);
  const std::vector<std::uint64_t> idx(src.train_indices().begin(),
                                       src.train_indices().begin() + 3);
  const auto got = method.eval_batch(idx);
  // The same quantities by hand from a plain forward of the stacked rows (chosen first).
  const auto ex = src.get(idx);
  std::vector<rlhf::model::encoded_chat> rows;
  for (const auto& e : ex) rows.push_back(e.chosen);
  for (const auto& e : ex) rows.push_back(e.rejected);
  const auto pb = rlhf::model::pad_batch(std::span<const rlhf::model::encoded_chat>(rows),
                                         Tok{}.pad_id(), rlhf::model::padding_side::right, 16);
  rlhf::model::gpt_activations<B> acts(tiny_config(), pb.rows, pb.cols);
  acts.train = false;
  rlhf::model::gpt_forward<B>(
      m.policy, acts,
      rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(pb.ids), pb.shape()));
  const auto z = rlhf::ops::to_host<B>(acts.logits);
  const auto vp = static_cast<std::size_t>(acts.logits.shape()[2]);
  double logit[2] = {0, 0}, count[2] = {0, 0}, hit = 0, ent = 0;
  for (std::size_t r = 0; r < static_cast<std::size_t>(pb.rows); ++r) {
    for (std::size_t t = 1; t < static_cast<std::size_t>(pb.cols); ++t) {
      const std::size_t k = r * static_cast<std::size_t>(pb.cols) + t;
      if (pb.completion_mask[k] == 0.0f) continue;
      const float* row = z.data() + (k - 1) * vp;
      const int side = r < ex.size() ? 0 : 1;
      double sum = 0, mx = row[0];
      std::size_t arg = 0;
      for (std::size_t c = 0; c < vp; ++c) {
        sum += row[c];
        if (row[c] > mx) mx = row[c], arg = c;
      }
      double se = 0, sez = 0;
      for (std::size_t c = 0; c < vp; ++c) {
        const double e = std::exp(row[c] - mx);
        se += e;
        sez += e * (row[c] - mx);
      }
      logit[side] += sum / static_cast<double>(vp);
      count[side] += 1;
      if (side == 0) hit += arg == static_cast<std::size_t>(pb.ids[k]) ? 1 : 0;
      ent += std::log(se) - sez / se;
    }
  }
  CHECK(rlhf::metric_or(got, "logits/chosen", NAN) ==
        doctest::Approx(logit[0] / count[0]).epsilon(1e-4));
  CHECK(rlhf::metric_or(got, "logits/rejected", NAN) ==
        doctest::Approx(logit[1] / count[1]).epsilon(1e-4));
  CHECK(rlhf::metric_or(got, "mean_token_accuracy", NAN) ==
        doctest::Approx(hit / count[0]).epsilon(1e-6));
  CHECK(rlhf::metric_or(got, "entropy", NAN) ==
        doctest::Approx(ent / (count[0] + count[1])).epsilon(1e-4));
}

namespace {

/// The prompt-completion lines of the SFT runs.
std::vector<std::string> sft_lines(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    const char c = static_cast<char>('a' + i % 6);
    out.push_back(std::string(R"({"prompt": "say )") + c + R"(", "completion": ")" +
                  std::string(static_cast<std::size_t>(1 + i % 4), c) + R"("})");
  }
  return out;
}

/// The arguments of the num_tokens runs: 6 steps of 2 micro-batches of 4, a log every 2
/// steps (so a window mean would differ from the value at its end), an evaluation and a
/// checkpoint every 3 (a checkpoint inside a window).
train::training_args num_tokens_args(const fs::path& dir) {
  auto a = args_in(dir, 5e-3f);
  a.max_steps = 6;
  a.logging_steps = 2;
  a.eval_steps = 3;
  a.save_steps = 3;
  return a;
}

/// TRL's num_tokens after each of the first `steps` optimizer steps, by hand: the trainer's
/// batcher replayed, Σ tokens_of(example) over its micro-batches.
template <class Count>
std::vector<double> tokens_by_step(train::example_source<Tok>& src, const train::training_args& a,
                                   rlhf::index_t steps, Count tokens_of) {
  rlhf::data::batcher b(
      src.train_indices(),
      {static_cast<std::size_t>(a.per_device_train_batch_size), a.seed, true, false});
  std::vector<double> out{0.0};
  double total = 0.0;
  for (rlhf::index_t s = 0; s < steps; ++s) {
    for (rlhf::index_t k = 0; k < a.gradient_accumulation_steps; ++k) {
      const auto idx = b.next();
      for (const auto& e : src.get(idx)) total += static_cast<double>(tokens_of(e));
    }
    out.push_back(total);
  }
  return out;
}

/// A run's num_tokens: every logged value is the by-hand total at its step (the value at the
/// end of the window), every evaluation logs the training total so far as eval_num_tokens
/// (TRL's eval log), and a run resumed from the checkpoint inside a window (step 3) logs
/// exactly the lines of the uninterrupted run. `run(dir, resume)` trains in `dir`.
template <class Run, class Count>
void check_num_tokens(const std::string& name, train::example_source<Tok>& src, Run run,
                      Count tokens_of) {
  const auto full = scratch(name + "_full");
  const auto expected = tokens_by_step(src, num_tokens_args(full), 6, tokens_of);
  const auto r = run(full, fs::path{});
  CHECK(r.last_log["num_tokens"].template get<double>() == expected[6]);
  int logs = 0, evals = 0;
  std::vector<std::string> after3;
  for (const auto& l : read_lines(full / "metrics.jsonl")) {
    const auto j = nlohmann::json::parse(l);
    const auto step = j["step"].get<std::size_t>();
    CAPTURE(l);
    if (j.contains("loss")) {
      ++logs;
      CHECK(j["num_tokens"].get<double>() == expected[step]);
    }
    if (j.contains("eval_loss")) {
      ++evals;
      CHECK(j["eval_num_tokens"].get<double>() == expected[step]);
    }
    if (step > 3) after3.push_back(l);
  }
  CHECK(logs == 3);   // steps 2, 4, 6
  CHECK(evals == 2);  // step 3 and the end
  CHECK(expected[2] > 0.0);
  CHECK(expected[2] != (expected[1] + expected[2]) / 2.0);  // a window mean would differ
  const auto resumed = scratch(name + "_resumed");
  (void)run(resumed, full / "checkpoint-3");
  CHECK(read_lines(resumed / "metrics.jsonl") == after3);
}

}  // namespace

TEST_CASE("num_tokens: TRL's cumulative training input tokens, exact across a resume") {
  const auto pairs = scratch("nt_pairs.jsonl");
  write_lines(pairs, separable_pairs(40));
  const auto pair_tokens = [](const rlhf::data::tokenized_example& e) {
    return e.chosen.ids.size() + e.rejected.ids.size();  // the prompt twice
  };
  const auto sequence_tokens = [](const rlhf::data::tokenized_example& e) {
    return e.sequence.ids.size();
  };
  SUBCASE("sft: Σ attention mask, prompt included") {
    const auto data = scratch("nt_sft.jsonl");
    write_lines(data, sft_lines(40));
    train::sft_config cfg;
    cfg.args = num_tokens_args(scratch("nt_sft"));
    cfg.max_length = 32;
    auto src = source_of(data, rlhf::data::format::prompt_completion,
                         train::sft_tokenize_options(cfg), cfg.args);
    check_num_tokens(
        "nt_sft", src,
        [&](const fs::path& dir, const fs::path& resume) {
          auto c = cfg;
          c.args.output_dir = dir.string();
          model::gpt<B> policy(tiny_config());
          policy.init(7);
          train::sft_method<B, Tok> method(policy, src, c);
          return train_stopping_at<B>(method, c.args, 0, resume);
        },
        sequence_tokens);
  }
  SUBCASE("dpo: Σ attention mask of the chosen and rejected rows") {
    train::dpo_config cfg;
    cfg.args = num_tokens_args(scratch("nt_dpo"));
    cfg.max_length = 32;
    auto src = source_of(pairs, rlhf::data::format::preference, train::dpo_tokenize_options(cfg),
                         cfg.args);
    check_num_tokens(
        "nt_dpo", src,
        [&](const fs::path& dir, const fs::path& resume) {
          auto c = cfg;
          c.args.output_dir = dir.string();
          models m;
          train::dpo_method<B, Tok> method(m.policy, m.reference, src, c);
          return train_stopping_at<B>(method, c.args, 0, resume);
        },
        pair_tokens);
  }
  SUBCASE("kto: Σ attention mask of the examples' rows, not the KL pairs") {
    const auto data = scratch("nt_kto.jsonl");
    write_lines(data, unpaired_lines(40));
    train::kto_config cfg;
    cfg.args = num_tokens_args(scratch("nt_kto"));
    auto src = source_of(data, rlhf::data::format::unpaired_preference,
                         train::kto_tokenize_options(cfg), cfg.args);
    check_num_tokens(
        "nt_kto", src,
        [&](const fs::path& dir, const fs::path& resume) {
          auto c = cfg;
          c.args.output_dir = dir.string();
          models m;
          train::kto_method<B, Tok> method(m.policy, m.reference, src, c);
          return train_stopping_at<B>(method, c.args, 0, resume);
        },
        sequence_tokens);
  }
  SUBCASE("reward: Σ attention mask of the chosen and rejected rows") {
    train::reward_config cfg;
    cfg.args = num_tokens_args(scratch("nt_reward"));
    cfg.max_length = 32;
    auto src = source_of(pairs, rlhf::data::format::preference, train::reward_tokenize_options(cfg),
                         cfg.args);
    check_num_tokens(
        "nt_reward", src,
        [&](const fs::path& dir, const fs::path& resume) {
          auto c = cfg;
          c.args.output_dir = dir.string();
          model::gpt<B> trunk(tiny_config());
          trunk.init(11);
          auto head = model::make_reward_head<B>(tiny_config().n_embd);
          head.init(12);
          train::reward_method<B, Tok> method(trunk, head, src, c);
          return train_stopping_at<B>(method, c.args, 0, resume);
        },
        pair_tokens);
  }
  SUBCASE("the methods whose TRL trainer does not log it (orpo, cpo, bco) do not") {
    train::orpo_config cfg;
    cfg.args = args_in(scratch("nt_orpo"), 5e-3f);
    cfg.max_length = 32;
    models m;
    auto src = source_of(pairs, rlhf::data::format::preference, train::orpo_tokenize_options(cfg),
                         cfg.args);
    train::orpo_method<B, Tok> method(m.policy, src, cfg);
    const std::vector<std::uint64_t> idx(src.train_indices().begin(),
                                         src.train_indices().begin() + 4);
    CHECK(rlhf::metric_or(method.train_micro_batch(idx), "num_tokens", -1.0f) == -1.0f);
    CHECK(method.state()["num_tokens"].get<std::uint64_t>() == 0);
  }
}

TEST_CASE("kto method: TRL 1.16's token metrics (logits/chosen, logits/rejected, entropy)") {
  const auto data = scratch("kto_tokens.jsonl");
  write_lines(data, unpaired_lines(16));
  train::kto_config cfg;
  cfg.args = args_in(scratch("kto_tokens_run"), 5e-3f);
  models m;
  auto src = source_of(data, rlhf::data::format::unpaired_preference,
                       train::kto_tokenize_options(cfg), cfg.args);
  train::kto_method<B, Tok> method(m.policy, m.reference, src, cfg);
  // Two desirable and two undesirable examples.
  std::vector<std::uint64_t> idx, desirable;
  int counts[2] = {0, 0};
  for (const auto i : src.train_indices()) {
    const int side = src.raw(i).label.value_or(false) ? 0 : 1;
    if (counts[side] < 2) idx.push_back(i), ++counts[side];
    if (side == 0 && desirable.size() < 2) desirable.push_back(i);
  }
  REQUIRE(idx.size() == 4);
  const auto got = method.eval_batch(idx);
  // The same quantities by hand from a plain forward of the examples' rows alone.
  const auto ex = src.get(idx);
  std::vector<rlhf::model::encoded_chat> rows;
  for (const auto& e : ex) rows.push_back(e.sequence);
  const auto pb = rlhf::model::pad_batch(std::span<const rlhf::model::encoded_chat>(rows),
                                         Tok{}.pad_id(), rlhf::model::padding_side::right, 32);
  rlhf::model::gpt_activations<B> acts(tiny_config(), pb.rows, pb.cols);
  acts.train = false;
  rlhf::model::gpt_forward<B>(
      m.policy, acts,
      rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(pb.ids), pb.shape()));
  const auto z = rlhf::ops::to_host<B>(acts.logits);
  const auto vp = static_cast<std::size_t>(acts.logits.shape()[2]);
  double logit[2] = {0, 0}, count[2] = {0, 0}, ent = 0;
  for (std::size_t r = 0; r < static_cast<std::size_t>(pb.rows); ++r) {
    for (std::size_t t = 1; t < static_cast<std::size_t>(pb.cols); ++t) {
      const std::size_t k = r * static_cast<std::size_t>(pb.cols) + t;
      if (pb.completion_mask[k] == 0.0f) continue;
      const float* row = z.data() + (k - 1) * vp;
      const int side = ex[r].label.value_or(false) ? 0 : 1;
      double sum = 0, mx = row[0];
      for (std::size_t c = 0; c < vp; ++c) {
        sum += row[c];
        mx = std::max<double>(mx, row[c]);
      }
      double se = 0, sez = 0;
      for (std::size_t c = 0; c < vp; ++c) {
        const double e = std::exp(row[c] - mx);
        se += e;
        sez += e * (row[c] - mx);
      }
      logit[side] += sum / static_cast<double>(vp);
      count[side] += 1;
      ent += std::log(se) - sez / se;
    }
  }
  REQUIRE(count[0] > 0);
  REQUIRE(count[1] > 0);
  CHECK(rlhf::metric_or(got, "logits/chosen", NAN) ==
        doctest::Approx(logit[0] / count[0]).epsilon(1e-4));
  CHECK(rlhf::metric_or(got, "logits/rejected", NAN) ==
        doctest::Approx(logit[1] / count[1]).epsilon(1e-4));
  CHECK(rlhf::metric_or(got, "entropy", NAN) ==
        doctest::Approx(ent / (count[0] + count[1])).epsilon(1e-4));
  // A micro-batch without undesirable examples reports no logits/rejected (TRL appends
  // none), so the window averages only the micro-batches that have them.
  const auto only_desirable = method.eval_batch(desirable);
  CHECK(rlhf::metric_or(only_desirable, "logits/rejected", -1.0f) == -1.0f);
  CHECK(std::isfinite(rlhf::metric_or(only_desirable, "logits/chosen", NAN)));
  CHECK(std::isfinite(rlhf::metric_or(only_desirable, "entropy", NAN)));
}

}  // namespace test_offline_methods_cases
