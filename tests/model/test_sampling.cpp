// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Token selection (rlhf/model/sampling.hpp): greedy, temperature, top-k, top-p, the
// log-prob it returns, reproducibility keyed by (seed, row id, step), and generation_state.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "rlhf/model/sampling.hpp"
#include "rlhf/ops/softmax.hpp"

namespace test_sampling_cases {

using namespace rlhf_test;
namespace model = rlhf::model;
namespace ops = rlhf::ops;
using rlhf::index_t;
using rlhf::shape;

namespace {

/// Deterministic pseudo-random logits in [-scale, scale) (Philox, stream 99).
std::vector<float> random_logits(index_t n, index_t v, float scale, std::uint64_t seed) {
  std::vector<float> out(static_cast<std::size_t>(n * v));
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = scale * (2.0f * rlhf::philox_uniform(seed, 99, 0, i) - 1.0f);
  }
  return out;
}

/// `row` repeated n times.
std::vector<float> tile(const std::vector<float>& row, index_t n) {
  std::vector<float> out;
  for (index_t i = 0; i < n; ++i) out.insert(out.end(), row.begin(), row.end());
  return out;
}

template <class B>
struct draw_result {
  std::vector<std::int32_t> tokens;
  std::vector<float> logprobs;
};

/// sample_tokens on host logits (n, v) with row ids offset + r.
template <class B>
draw_result<B> draw(const std::vector<float>& logits, index_t n, index_t v,
                    const model::sampling_config& cfg, std::uint64_t step,
                    std::uint64_t offset = 0) {
  const auto z = make<B>(logits, shape{n, v});
  typename B::index_tensor tok(shape{n});
  typename B::tensor lp(shape{n});
  model::sample_tokens<B>(z, cfg, step, offset, tok, lp);
  return {ops::to_host<B>(tok), ops::to_host<B>(lp)};
}

/// sample_tokens with explicit row ids.
template <class B>
draw_result<B> draw_ids(const std::vector<float>& logits, index_t v,
                        const std::vector<std::int32_t>& ids, const model::sampling_config& cfg,
                        std::uint64_t step) {
  const auto n = static_cast<index_t>(ids.size());
  const auto z = make<B>(logits, shape{n, v});
  const auto rid = ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{n});
  typename B::index_tensor tok(shape{n});
  typename B::tensor lp(shape{n});
  model::sample_tokens<B>(z, cfg, step, rid, tok, lp);
  return {ops::to_host<B>(tok), ops::to_host<B>(lp)};
}

/// transformers' warpers in float64 on one row: temperature, then TopKLogitsWarper
/// (remove u < k-th largest), then TopPLogitsWarper (sort ascending, remove where the
/// cumulative probability <= 1 - top_p, keep the largest; tied values kept or removed
/// together). Returns the renormalised probabilities (0 for removed tokens).
std::vector<double> reference_distribution(const std::vector<float>& row, float tau,
                                           index_t top_k, float top_p) {
  const std::size_t v = row.size();
  std::vector<double> u(v);
  for (std::size_t i = 0; i < v; ++i) u[i] = static_cast<double>(row[i] * (1.0f / tau));
  std::vector<bool> keep(v, true);
  if (top_k > 0 && static_cast<std::size_t>(top_k) < v) {
    std::vector<double> sorted = u;
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    const double kth = sorted[static_cast<std::size_t>(top_k) - 1];
    for (std::size_t i = 0; i < v; ++i) keep[i] = u[i] >= kth;
  }
  const double m = *std::max_element(u.begin(), u.end());
  std::vector<double> p(v, 0.0);
  double z = 0.0;
  for (std::size_t i = 0; i < v; ++i) {
    if (keep[i]) z += (p[i] = std::exp(u[i] - m));
  }
  for (double& x : p) x /= z;
  if (top_p < 1.0f) {
    std::vector<std::size_t> order(v);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return u[a] < u[b]; });
    // A group of equal values is removed or kept as one, by the cumsum at its last member
    // (transformers' unstable sort may split such a group; sample_tokens keeps it whole).
    double cum = 0.0;
    for (std::size_t j = 0; j < v;) {
      std::size_t end = j;
      while (end < v && u[order[end]] == u[order[j]]) cum += p[order[end++]];
      const bool remove = cum <= 1.0 - static_cast<double>(top_p) && end < v;
      for (; j < end; ++j) {
        if (remove) keep[order[j]] = false;
      }
    }
    double z2 = 0.0;
    for (std::size_t i = 0; i < v; ++i) z2 += keep[i] ? p[i] : 0.0;
    for (std::size_t i = 0; i < v; ++i) p[i] = keep[i] ? p[i] / z2 : 0.0;
  }
  return p;
}

/// Pearson's chi-square of the counts against probabilities p (cells with p = 0 must be
/// empty; returns +inf otherwise) and the degrees of freedom.
std::pair<double, int> chi_square(const std::vector<int>& counts, const std::vector<double>& p,
                                  int total) {
  double chi = 0.0;
  int cells = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0.0) {
      if (counts[i] != 0) return {std::numeric_limits<double>::infinity(), 0};
      continue;
    }
    const double e = p[i] * total;
    chi += (counts[i] - e) * (counts[i] - e) / e;
    ++cells;
  }
  return {chi, cells - 1};
}

/// Counts of each token over many independent draws of the same row: `n` rows of one
/// batch, each with its own row id (so its own Philox stream).
template <class B>
std::vector<int> histogram(const std::vector<float>& row, int n,
                           const model::sampling_config& cfg) {
  const auto v = static_cast<index_t>(row.size());
  const auto r = draw<B>(tile(row, n), n, v, cfg, 0);
  std::vector<int> counts(row.size(), 0);
  const bool in_range = std::all_of(r.tokens.begin(), r.tokens.end(),
                                    [&](std::int32_t t) { return t >= 0 && t < v; });
  REQUIRE(in_range);
  for (const auto t : r.tokens) ++counts[static_cast<std::size_t>(t)];
  return counts;
}

/// Chi-square bound: for df <= 20 the 1 - 1e-6 quantile is below 3·df + 30.
void check_matches(const std::vector<int>& counts, const std::vector<double>& p, int total,
                   const std::string& what) {
  const auto result = chi_square(counts, p, total);
  const double chi = result.first;
  const int df = result.second;
  CAPTURE(what);
  CAPTURE(df);
  CHECK(chi < 3.0 * df + 30.0);
}

}  // namespace

TEST_CASE_TEMPLATE("sample_tokens: same key, same draw, and another step or seed, another draw", B,
                   RLHF_TEST_BACKENDS) {
  const index_t n = 64, v = 1000;
  const auto z = std::vector<float>(static_cast<std::size_t>(n * v), 0.0f);  // uniform
  model::sampling_config cfg;
  cfg.seed = 1234;
  const auto a = draw<B>(z, n, v, cfg, 7);
  const auto b = draw<B>(z, n, v, cfg, 7);
  CHECK(a.tokens == b.tokens);
  CHECK(a.logprobs == b.logprobs);
  const auto c = draw<B>(z, n, v, cfg, 8);
  cfg.seed = 1235;
  const auto d = draw<B>(z, n, v, cfg, 7);
  int same_step = 0, same_seed = 0;
  for (index_t r = 0; r < n; ++r) {
    same_step += a.tokens[r] == c.tokens[r];
    same_seed += a.tokens[r] == d.tokens[r];
  }
  // Independent uniform draws over 1000 tokens agree with probability 1/1000 each.
  CHECK(same_step <= 3);
  CHECK(same_seed <= 3);
  // Rows of one batch draw independently too.
  CHECK(std::set<std::int32_t>(a.tokens.begin(), a.tokens.end()).size() >= 55);
  // The token is the inverse CDF of the row's uniform: on a uniform row, floor(u·V).
  cfg.seed = 1234;
  for (index_t r = 0; r < n; ++r) {
    const float u = model::sampling_uniform(cfg.seed, static_cast<std::uint64_t>(r), 7);
    CHECK(std::abs(a.tokens[r] - static_cast<int>(u * static_cast<float>(v))) <= 1);
  }
}

TEST_CASE_TEMPLATE("sample_tokens: a row's draw does not depend on the batch around it", B,
                   RLHF_TEST_BACKENDS) {
  const index_t n = 6, v = 50;
  const auto z = random_logits(n, v, 3.0f, 5);
  model::sampling_config cfg;
  cfg.seed = 42;
  cfg.temperature = 0.9f;
  cfg.top_k = 20;
  cfg.top_p = 0.9f;
  for (std::uint64_t step : {0u, 1u, 17u}) {
    CAPTURE(step);
    // Rows 10..15 by offset and by explicit ids agree.
    const auto batch = draw<B>(z, n, v, cfg, step, 10);
    const auto by_id = draw_ids<B>(z, v, {10, 11, 12, 13, 14, 15}, cfg, step);
    CHECK(batch.tokens == by_id.tokens);
    CHECK(batch.logprobs == by_id.logprobs);
    // Row 3 (id 13) alone, and at another position of a reordered batch.
    const std::vector<float> row3(z.begin() + 3 * v, z.begin() + 4 * v);
    const auto alone = draw_ids<B>(row3, v, {13}, cfg, step);
    CHECK(alone.tokens[0] == batch.tokens[3]);
    CHECK(alone.logprobs[0] == batch.logprobs[3]);
    std::vector<float> reordered(z.begin() + 4 * v, z.begin() + 6 * v);  // rows 4, 5
    reordered.insert(reordered.end(), row3.begin(), row3.end());
    const auto mixed = draw_ids<B>(reordered, v, {14, 15, 13}, cfg, step);
    CHECK(mixed.tokens[2] == batch.tokens[3]);
    CHECK(mixed.tokens[0] == batch.tokens[4]);
    CHECK(mixed.tokens[1] == batch.tokens[5]);
  }
}

TEST_CASE_TEMPLATE("sample_tokens: greedy is the argmax, and top_k = 1 equals greedy", B,
                   RLHF_TEST_BACKENDS) {
  const index_t n = 32, v = 300;
  auto z = random_logits(n, v, 5.0f, 11);
  // Row 0: a tie for the maximum; greedy takes the first (torch.argmax).
  z[17] = 9.0f;
  z[200] = 9.0f;
  model::sampling_config greedy;
  greedy.temperature = 0.0f;
  greedy.top_k = 3;     // ignored under greedy
  greedy.top_p = 0.5f;  // ignored under greedy
  const auto g = draw<B>(z, n, v, greedy, 0);
  for (index_t r = 0; r < n; ++r) {
    const auto first = z.begin() + r * v;
    const auto want = std::max_element(first, first + v) - first;
    CHECK(g.tokens[r] == want);
  }
  CHECK(g.tokens[0] == 17);
  // top_k = 1 on rows with a unique maximum, at any temperature and seed.
  for (float tau : {0.3f, 1.0f, 4.0f}) {
    for (std::uint64_t seed : {0u, 9u, 77u}) {
      model::sampling_config cfg;
      cfg.temperature = tau;
      cfg.top_k = 1;
      cfg.seed = seed;
      const auto s = draw<B>(z, n, v, cfg, 3);
      for (index_t r = 1; r < n; ++r) CHECK(s.tokens[r] == g.tokens[r]);
      // Row 0's maximum is tied: top-k keeps both (TopKLogitsWarper keeps ties).
      CHECK((s.tokens[0] == 17 || s.tokens[0] == 200));
    }
  }
  // A tiny top_p leaves only the argmax as well.
  model::sampling_config nucleus;
  nucleus.top_p = 1e-6f;
  const auto s = draw<B>(z, n, v, nucleus, 0);
  for (index_t r = 1; r < n; ++r) CHECK(s.tokens[r] == g.tokens[r]);
}

TEST_CASE_TEMPLATE("sample_tokens: logprob is log_softmax(logits / tau) at the token", B,
                   RLHF_TEST_BACKENDS) {
  const index_t n = 40, v = 129;
  const auto z = random_logits(n, v, 6.0f, 3);
  struct mode {
    float tau;
    index_t k;
    float p;
  };
  for (const mode md : {mode{1.0f, 0, 1.0f}, mode{0.7f, 10, 1.0f}, mode{1.5f, 0, 0.8f},
                        mode{0.5f, 30, 0.6f}, mode{0.0f, 0, 1.0f}}) {
    CAPTURE(md.tau);
    model::sampling_config cfg;
    cfg.temperature = md.tau;
    cfg.top_k = md.k;
    cfg.top_p = md.p;
    cfg.seed = 5;
    const auto s = draw<B>(z, n, v, cfg, 2);
    // The full tempered softmax (greedy: tau = 1), not renormalised over the survivors.
    const float tau = md.tau == 0.0f ? 1.0f : md.tau;
    std::vector<float> scaled(z.size());
    for (std::size_t i = 0; i < z.size(); ++i) scaled[i] = z[i] * (1.0f / tau);
    const auto zt = make<B>(scaled, shape{n, v});
    typename B::tensor ls(shape{n, v});
    ops::log_softmax_rows<B>(zt, ls);
    const auto lsh = host<B>(ls);
    std::vector<float> want(static_cast<std::size_t>(n));
    for (index_t r = 0; r < n; ++r) want[r] = lsh[r * v + s.tokens[r]];
    check_close(s.logprobs, want, "logprobs", 1e-5, 2e-6);
  }
}

TEST_CASE_TEMPLATE("sample_tokens: top-k keeps the k largest and their ties", B,
                   RLHF_TEST_BACKENDS) {
  // Values 2, 2, 2 tie for second place behind 3: top_k = 2 keeps all four.
  const std::vector<float> row{1.0f, 2.0f, 0.5f, 2.0f, 3.0f, 2.0f, -1.0f, 1.9f};
  model::sampling_config cfg;
  cfg.top_k = 2;
  cfg.seed = 8;
  const auto counts = histogram<B>(row, 4000, cfg);
  for (std::size_t i : {0u, 2u, 6u, 7u}) CHECK(counts[i] == 0);
  for (std::size_t i : {1u, 3u, 4u, 5u}) CHECK(counts[i] > 0);
  check_matches(counts, reference_distribution(row, 1.0f, 2, 1.0f), 4000, "top-k ties");
  // k >= V is off.
  cfg.top_k = 8;
  const auto all = histogram<B>(row, 4000, cfg);
  check_matches(all, reference_distribution(row, 1.0f, 0, 1.0f), 4000, "k = V");
}

TEST_CASE_TEMPLATE("sample_tokens: top-p keeps the nucleus and nothing else", B,
                   RLHF_TEST_BACKENDS) {
  // Probabilities 0.5, 0.3, 0.15, 0.05 at scattered positions of a V = 6 row (two tokens
  // with probability ~0). Mass above each: 0, 0.5, 0.8, 0.95.
  const float lo = -30.0f;
  const std::vector<float> row{std::log(0.15f), lo, std::log(0.5f), std::log(0.05f), lo,
                               std::log(0.3f)};
  struct expectation {
    float top_p;
    std::vector<std::size_t> kept;
  };
  for (const auto& ex : {expectation{0.3f, {2}}, expectation{0.5f, {2}},
                         expectation{0.6f, {2, 5}}, expectation{0.75f, {2, 5}},
                         expectation{0.85f, {0, 2, 5}}, expectation{0.9f, {0, 2, 5}},
                         expectation{0.97f, {0, 2, 3, 5}}}) {
    CAPTURE(ex.top_p);
    model::sampling_config cfg;
    cfg.top_p = ex.top_p;
    int total = 0;
    std::vector<int> counts(row.size(), 0);
    for (std::uint64_t seed = 0; seed < 4; ++seed) {  // many seeds, many rows each
      cfg.seed = seed;
      const auto c = histogram<B>(row, 1000, cfg);
      for (std::size_t i = 0; i < c.size(); ++i) counts[i] += c[i];
      total += 1000;
    }
    for (std::size_t i = 0; i < row.size(); ++i) {
      const bool in = std::find(ex.kept.begin(), ex.kept.end(), i) != ex.kept.end();
      CAPTURE(i);
      if (in) {
        CHECK(counts[i] > 0);
      } else {
        CHECK(counts[i] == 0);
      }
    }
    const auto p = reference_distribution(row, 1.0f, 0, ex.top_p);
    for (std::size_t i = 0; i < row.size(); ++i) {
      const bool in = std::find(ex.kept.begin(), ex.kept.end(), i) != ex.kept.end();
      CHECK((p[i] > 0.0) == in);  // the reference agrees on the nucleus
    }
    check_matches(counts, p, total, "nucleus");
  }
}

TEST_CASE_TEMPLATE("sample_tokens: top-p keeps a tie at its threshold whole", B,
                   RLHF_TEST_BACKENDS) {
  // Probabilities 0.4, 0.2, 0.2, 0.2: with top_p = 0.5 the mass above each 0.2 token is
  // 0.4 < 0.5, so all three are kept (a sort-based warper may keep only some of them).
  const std::vector<float> row{std::log(0.2f), std::log(0.4f), std::log(0.2f), std::log(0.2f)};
  model::sampling_config cfg;
  cfg.top_p = 0.5f;
  const auto counts = histogram<B>(row, 3000, cfg);
  for (const int c : counts) CHECK(c > 0);
  // With top_p = 0.39 the mass above them is not below top_p: only the 0.4 token is left.
  cfg.top_p = 0.39f;
  const auto only = histogram<B>(row, 3000, cfg);
  CHECK(only[1] == 3000);
}

TEST_CASE_TEMPLATE("sample_tokens: frequencies match transformers' warped distribution", B,
                   RLHF_TEST_BACKENDS) {
  const index_t v = 12;
  const int draws = 20000;
  struct mode {
    float tau;
    index_t k;
    float p;
  };
  for (std::uint64_t row_seed : {1u, 2u, 3u}) {
    const auto row = random_logits(1, v, 2.5f, row_seed);
    for (const mode md : {mode{1.0f, 0, 1.0f}, mode{0.6f, 0, 1.0f}, mode{2.0f, 5, 1.0f},
                          mode{1.0f, 0, 0.7f}, mode{0.8f, 8, 0.9f}, mode{1.3f, 4, 0.5f}}) {
      CAPTURE(row_seed);
      CAPTURE(md.tau);
      CAPTURE(md.k);
      CAPTURE(md.p);
      model::sampling_config cfg;
      cfg.temperature = md.tau;
      cfg.top_k = md.k;
      cfg.top_p = md.p;
      cfg.seed = 100 + row_seed;
      const auto counts = histogram<B>(row, draws, cfg);
      check_matches(counts, reference_distribution(row, md.tau, md.k, md.p), draws,
                    "warped distribution");
    }
  }
}

TEST_CASE_TEMPLATE("sample_tokens: frequencies on a wide row (the blocked inverse CDF)", B,
                   RLHF_TEST_BACKENDS) {
  // V = 600 spans three CDF blocks of 256; the mass sits on a few tokens in each block and
  // at the ends, the rest is a low floor that top-k/top-p may cut.
  const index_t v = 600;
  std::vector<float> row(static_cast<std::size_t>(v), -4.0f);
  for (const auto& [i, x] : {std::pair<std::size_t, float>{0, 1.0f}, {5, 2.0f}, {255, 0.5f},
                            {256, 1.5f}, {300, 2.2f}, {511, 0.0f}, {512, 1.0f}, {599, 1.8f}}) {
    row[i] = x;
  }
  struct mode {
    float tau;
    index_t k;
    float p;
  };
  for (const mode md : {mode{1.0f, 0, 1.0f}, mode{1.0f, 6, 1.0f}, mode{0.8f, 0, 0.8f},
                        mode{1.2f, 12, 0.95f}}) {
    CAPTURE(md.tau);
    CAPTURE(md.k);
    CAPTURE(md.p);
    model::sampling_config cfg;
    cfg.temperature = md.tau;
    cfg.top_k = md.k;
    cfg.top_p = md.p;
    cfg.seed = 31;
    const int draws = 20000;
    const auto counts = histogram<B>(row, draws, cfg);
    const auto p = reference_distribution(row, md.tau, md.k, md.p);
    // Pool the floor tokens into one cell so that the expected counts are not tiny.
    std::vector<int> c2;
    std::vector<double> p2;
    int floor_count = 0;
    double floor_p = 0.0;
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (row[i] == -4.0f) {
        floor_count += counts[i];
        floor_p += p[i];
      } else {
        c2.push_back(counts[i]);
        p2.push_back(p[i]);
      }
    }
    c2.push_back(floor_count);
    p2.push_back(floor_p);
    check_matches(c2, p2, draws, "wide row");
  }
}

TEST_CASE_TEMPLATE("sample_tokens: -0 and +0 are one value for top-k", B, RLHF_TEST_BACKENDS) {
  const std::vector<float> row{-0.0f, -1.0f, 0.0f, -2.0f};
  model::sampling_config cfg;
  cfg.top_k = 1;  // the largest value is 0, held by tokens 0 and 2: both kept
  const auto counts = histogram<B>(row, 2000, cfg);
  CHECK(counts[0] > 0);
  CHECK(counts[2] > 0);
  CHECK(counts[1] + counts[3] == 0);
}

TEST_CASE_TEMPLATE("sample_tokens: survivors agree with the reference on wide random rows", B,
                   RLHF_TEST_BACKENDS) {
  // V = 2000 rows, many draws each: every drawn token must be a survivor of transformers'
  // warpers (float64 reference; rows whose boundary is within float rounding are skipped).
  const index_t v = 2000, n = 8;
  const auto z = random_logits(n, v, 4.0f, 21);
  model::sampling_config cfg;
  cfg.temperature = 0.8f;
  cfg.top_k = 100;
  cfg.top_p = 0.6f;
  for (index_t r = 0; r < n; ++r) {
    const std::vector<float> row(z.begin() + r * v, z.begin() + (r + 1) * v);
    const auto p = reference_distribution(row, cfg.temperature, cfg.top_k, cfg.top_p);
    cfg.seed = static_cast<std::uint64_t>(r);
    const auto counts = histogram<B>(row, 500, cfg);
    int outside = 0, drawn = 0;
    for (index_t i = 0; i < v; ++i) {
      outside += p[i] == 0.0 ? counts[i] : 0;
      drawn += counts[i];
    }
    CAPTURE(r);
    CHECK(drawn == 500);
    CHECK(outside == 0);
  }
}

TEST_CASE_TEMPLATE("sample_tokens: bad input", B, RLHF_TEST_BACKENDS) {
  const index_t n = 3, v = 5;
  auto z = random_logits(n, v, 1.0f, 1);
  const auto good = make<B>(z, shape{n, v});
  typename B::index_tensor tok(shape{n});
  typename B::tensor lp(shape{n});
  auto with = [](auto f) {
    model::sampling_config c;
    f(c);
    return c;
  };
  const auto nan = std::numeric_limits<float>::quiet_NaN();
  const auto inf = std::numeric_limits<float>::infinity();
  for (const auto& cfg :
       {with([](auto& c) { c.temperature = -0.5f; }), with([&](auto& c) { c.temperature = nan; }),
        with([](auto& c) { c.top_k = -1; }), with([](auto& c) { c.top_p = 0.0f; }),
        with([](auto& c) { c.top_p = 1.5f; }), with([&](auto& c) { c.top_p = nan; })}) {
    CHECK_THROWS_AS(model::sample_tokens<B>(good, cfg, 0, 0, tok, lp), rlhf::config_error);
  }
  CHECK_THROWS_WITH_AS(
      model::sample_tokens<B>(good, with([](auto& c) { c.temperature = -1.0f; }), 0, 0, tok, lp),
      "sample_tokens: temperature must be finite and >= 0 (0 = greedy), got -1",
      rlhf::config_error);
  CHECK_THROWS_WITH_AS(
      model::sample_tokens<B>(good, with([](auto& c) { c.top_k = -2; }), 0, 0, tok, lp),
      "sample_tokens: top_k must be >= 0 (0 = off), got -2", rlhf::config_error);
  CHECK_THROWS_WITH_AS(
      model::sample_tokens<B>(good, with([](auto& c) { c.top_p = 0.0f; }), 0, 0, tok, lp),
      "sample_tokens: top_p must be in (0, 1] (1 = off), got 0", rlhf::config_error);
  CHECK_THROWS_AS(model::validate(with([](auto& c) { c.top_p = 2.0f; })), rlhf::config_error);
  CHECK_NOTHROW(model::validate(with([](auto& c) { c.temperature = 0.0f; })));

  // NaN / Inf in a row: data_error naming the row, at every temperature.
  for (const float bad : {nan, inf, -inf}) {
    auto zb = z;
    zb[2 * v + 3] = bad;
    const auto t = make<B>(zb, shape{n, v});
    for (const float tau : {0.0f, 1.0f}) {
      model::sampling_config cfg;
      cfg.temperature = tau;
      cfg.top_k = 2;
      CHECK_THROWS_WITH_AS(model::sample_tokens<B>(t, cfg, 0, 0, tok, lp),
                           doctest::Contains("sample_tokens: logits row 2 holds a NaN or Inf"),
                           rlhf::data_error);
    }
  }
  // Finite logits that overflow once divided by a tiny temperature.
  {
    auto zb = z;
    zb[1] = 3e38f;
    model::sampling_config cfg;
    cfg.temperature = 1e-3f;
    CHECK_THROWS_WITH_AS(model::sample_tokens<B>(make<B>(zb, shape{n, v}), cfg, 0, 0, tok, lp),
                         doctest::Contains("logits row 0"), rlhf::data_error);
  }

  // Shapes.
  const model::sampling_config cfg;
  typename B::index_tensor tok_short(shape{n - 1});
  typename B::tensor lp_short(shape{n - 1});
  CHECK_THROWS_AS(model::sample_tokens<B>(good, cfg, 0, 0, tok_short, lp), rlhf::shape_error);
  CHECK_THROWS_AS(model::sample_tokens<B>(good, cfg, 0, 0, tok, lp_short), rlhf::shape_error);
  const auto rank3 = make<B>(std::vector<float>(static_cast<std::size_t>(n * v)), shape{n, 1, v});
  CHECK_THROWS_AS(model::sample_tokens<B>(rank3, cfg, 0, 0, tok, lp), rlhf::shape_error);
  typename B::tensor empty(shape{0, v});
  typename B::index_tensor tok0(shape{0});
  typename B::tensor lp0(shape{0});
  CHECK_THROWS_WITH_AS(model::sample_tokens<B>(empty, cfg, 0, 0, tok0, lp0),
                       doctest::Contains("batch is empty"), rlhf::shape_error);
  const std::vector<std::int32_t> ids{0, -4, 2};
  const auto rid = ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{n});
  CHECK_THROWS_WITH_AS(model::sample_tokens<B>(good, cfg, 0, rid, tok, lp),
                       "sample_tokens: row_ids[1] = -4 must be >= 0", rlhf::data_error);
  const auto rid_short =
      ops::index_from_host<B>(std::span<const std::int32_t>(ids.data(), 2), shape{2});
  CHECK_THROWS_AS(model::sample_tokens<B>(good, cfg, 0, rid_short, tok, lp), rlhf::shape_error);
}

TEST_CASE_TEMPLATE("sample_tokens: a one-token vocabulary and large logits", B,
                   RLHF_TEST_BACKENDS) {
  model::sampling_config cfg;
  cfg.top_k = 1;
  cfg.top_p = 0.3f;
  const auto one = draw<B>({4.0f, -2.0f}, 2, 1, cfg, 0);
  CHECK(one.tokens == std::vector<std::int32_t>{0, 0});
  CHECK(one.logprobs == std::vector<float>{0.0f, 0.0f});
  // |logits| ~ 1e30: the max-shift keeps everything finite.
  const std::vector<float> big{1e30f, -1e30f, 1e30f, 0.0f};
  cfg = {};
  const auto r = draw<B>(big, 1, 4, cfg, 0);
  CHECK((r.tokens[0] == 0 || r.tokens[0] == 2));
  CHECK(std::abs(r.logprobs[0] - std::log(0.5f)) < 1e-6f);
}

TEST_CASE("generation_state: stop tokens, budgets, PAD after the end") {
  const std::int32_t eos = 1, pad = 0, stop2 = 7;
  model::generation_state st(3, 4, {eos, stop2}, pad);
  CHECK(st.batch() == 3);
  CHECK(st.step() == 0);
  CHECK_FALSE(st.all_finished());

  std::vector<std::int32_t> t{5, 1, 6};
  std::vector<float> lp{-0.1f, -0.2f, -0.3f};
  st.update(t, lp);  // row 1 emits EOS: kept, counted, finished
  CHECK(t == std::vector<std::int32_t>{5, 1, 6});
  CHECK(st.finished(1));
  CHECK(st.length(1) == 1);
  CHECK(st.step() == 1);

  t = {7, 9, 9};
  lp = {-0.1f, -0.2f, -0.3f};
  st.update(t, lp);  // row 0 emits the second stop token; row 1 is PAD from now on
  CHECK(t == std::vector<std::int32_t>{7, pad, 9});
  CHECK(lp == std::vector<float>{-0.1f, 0.0f, -0.3f});
  CHECK(st.finished(0));
  CHECK(st.length(0) == 2);
  CHECK(st.length(1) == 1);

  t = {3, 3, 3};
  st.update(t);
  CHECK(t == std::vector<std::int32_t>{pad, pad, 3});
  CHECK_FALSE(st.all_finished());
  t = {3, 3, 1};  // row 2 reaches its budget of 4 (with EOS, either way it ends)
  st.update(t);
  CHECK(st.all_finished());
  CHECK(st.length(2) == 4);
  CHECK(st.step() == 4);

  // Per-row budgets; a zero budget is finished from the start.
  model::generation_state per_row(std::vector<index_t>{2, 0, 1}, {eos}, pad);
  CHECK(per_row.finished(1));
  std::vector<std::int32_t> u{4, 4, 4};
  per_row.update(u);
  CHECK(u == std::vector<std::int32_t>{4, pad, 4});
  CHECK(per_row.finished(2));
  CHECK_FALSE(per_row.finished(0));
  u = {4, 4, 4};
  per_row.update(u);
  CHECK(u == std::vector<std::int32_t>{4, pad, pad});
  CHECK(per_row.all_finished());
  CHECK(per_row.length(0) == 2);
  CHECK(per_row.length(2) == 1);

  // Bad input.
  CHECK_THROWS_AS(model::generation_state(0, 4, {eos}, pad), rlhf::config_error);
  CHECK_THROWS_WITH_AS(model::generation_state(std::vector<index_t>{3, -1}, {eos}, pad),
                       "generation_state: max_new_tokens[1] must be >= 0, got -1",
                       rlhf::config_error);
  std::vector<std::int32_t> wrong{1, 2};
  CHECK_THROWS_AS(st.update(wrong), rlhf::shape_error);
}

TEST_CASE_TEMPLATE("generation_state with sample_tokens: a batched loop on a backend", B,
                   RLHF_TEST_BACKENDS) {
  // A toy "model": the same logits every step, EOS (token 1) fairly likely. Each row's
  // output is the same whether generated in the batch or alone with its row id.
  const index_t n = 5, v = 16;
  std::vector<float> row(static_cast<std::size_t>(v), 0.0f);
  row[1] = 1.5f;
  const auto z = make<B>(tile(row, n), shape{n, v});
  model::sampling_config cfg;
  cfg.seed = 3;
  cfg.top_k = 8;

  auto run = [&](const typename B::tensor& logits, const std::vector<std::int32_t>& ids) {
    const auto rows = static_cast<index_t>(ids.size());
    const auto rid = ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{rows});
    model::generation_state st(rows, 10, {1}, 0);
    std::vector<std::vector<std::int32_t>> out(ids.size());
    typename B::index_tensor tok(shape{rows});
    typename B::tensor lp(shape{rows});
    while (!st.all_finished()) {
      model::sample_tokens<B>(logits, cfg, st.step(), rid, tok, lp);
      st.update<B>(tok, &lp);
      const auto t = ops::to_host<B>(tok);
      for (std::size_t r = 0; r < ids.size(); ++r) {
        if (st.length(static_cast<index_t>(r)) > static_cast<index_t>(out[r].size())) {
          out[r].push_back(t[r]);
        } else {
          CHECK(t[r] == 0);  // PAD after the end
        }
      }
    }
    return out;
  };
  const auto batch = run(z, {0, 1, 2, 3, 4});
  const auto alone = run(make<B>(row, shape{1, v}), {3});
  CHECK(alone[0] == batch[3]);
  for (const auto& seq : batch) {
    CHECK(!seq.empty());
    CHECK(seq.size() <= 10u);
    // Only the last token may be EOS.
    for (std::size_t i = 0; i + 1 < seq.size(); ++i) CHECK(seq[i] != 1);
    if (seq.size() < 10u) CHECK(seq.back() == 1);
  }
}

TEST_CASE("sample_tokens: the Eigen and minimal backends draw the same tokens") {
  const index_t n = 16, v = 700;
  const auto z = random_logits(n, v, 4.0f, 77);
  model::sampling_config cfg;
  cfg.seed = 2024;
  cfg.temperature = 0.9f;
  cfg.top_k = 40;
  cfg.top_p = 0.85f;
  for (std::uint64_t step : {0u, 5u}) {
    const auto a = draw<rlhf::eigen_backend>(z, n, v, cfg, step, 100);
    const auto b = draw<rlhf::testing::minimal_backend>(z, n, v, cfg, step, 100);
    CHECK(a.tokens == b.tokens);
    check_close(a.logprobs, b.logprobs, "logprobs across backends", 1e-6, 1e-6);
  }
}

}  // namespace test_sampling_cases
