// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Generation with a KV cache (rlhf/model/generate.hpp): the cached forward against the full
// forward, greedy against the argmax of repeated full forwards, reproducibility, per-row
// lengths (a row alone equals the row in a batch), stop tokens, the returned log-probs
// against ops::token_logprobs, and the argument errors.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "fixture.hpp"
#include "random_data.hpp"
#include "rlhf/model/generate.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/ops/logprobs.hpp"

namespace test_generate_cases {

using namespace rlhf_test;
namespace model = rlhf::model;
using rlhf::index_t;
using rlhf::shape;

namespace {

model::gpt_config tiny_config() {
  model::gpt_config c;
  c.vocab_size = 70;  // not a multiple of 64
  c.max_seq_len = 24;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.mlp_ratio = 4;
  return c;
}

/// GPT-2 init scaled up so that the next-token distributions are far from uniform (greedy
/// is then decided by clear margins, not by rounding).
template <class B>
model::gpt<B> make_model(std::uint64_t seed, const model::gpt_config& cfg = tiny_config()) {
  model::gpt<B> m(cfg, /*trainable=*/false);
  m.init(seed);
  auto p = rlhf::ops::to_host<B>(m.params());
  for (auto& x : p) x *= 6.0f;
  rlhf::ops::copy_from_host<B>(std::span<const float>(p), m.params());
  return m;
}

/// Full forward logits (1, T, V) of one sequence.
template <class B>
std::vector<float> full_logits(const model::gpt<B>& m, const std::vector<std::int32_t>& seq) {
  const auto t = static_cast<index_t>(seq.size());
  model::gpt_activations<B> acts(m.config(), 1, t);
  const auto ids = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(seq), shape{1, t});
  model::gpt_forward<B>(m, acts, ids);
  return host<B>(acts.logits);
}

template <class T>
std::vector<T> row_of(const std::vector<T>& v, index_t row, index_t width) {
  return std::vector<T>(v.begin() + row * width, v.begin() + (row + 1) * width);
}

std::vector<std::vector<std::int32_t>> some_prompts() {
  return {{5, 17, 33, 2, 9}, {41, 3}, {7, 7, 12, 60, 1, 0, 25, 8}};
}

/// The completion of row b: its generated tokens (lengths[b] of them, from column P).
template <class B>
std::vector<std::int32_t> completion(const model::generation_result<B>& r, index_t b) {
  const auto toks = rlhf::ops::to_host<B>(r.tokens);
  const index_t w = r.tokens.shape()[1];
  const auto first = toks.begin() + b * w + r.prompt_width;
  return std::vector<std::int32_t>(first, first + r.lengths[static_cast<std::size_t>(b)]);
}

template <class B>
std::vector<float> completion_logprobs(const model::generation_result<B>& r, index_t b) {
  const auto lp = host<B>(r.logprobs);
  const index_t w = r.tokens.shape()[1];
  const auto first = lp.begin() + b * w + r.prompt_width;
  return std::vector<float>(first, first + r.lengths[static_cast<std::size_t>(b)]);
}

template <class F>
void check_error_names(F&& f, const std::string& needle) {
  try {
    f();
    FAIL("no exception; expected one naming " << needle);
  } catch (const rlhf::error& e) {
    const std::string what = e.what();
    CHECK_MESSAGE(what.find(needle) != std::string::npos, what << " does not name " << needle);
  }
}

/// Logits to 1e-5 of their scale: |got - want| <= 1e-5 · max(1, max |want|) everywhere (the
/// cached path sums its attention dot products in another order than the GEMMs of the full
/// forward, so entries near zero carry the rounding of the larger ones).
void check_logits(const std::vector<float>& got, const std::vector<float>& want,
                  const std::string& what) {
  REQUIRE(got.size() == want.size());
  double scale = 1.0, worst = 0.0;
  for (float w : want) scale = std::max(scale, std::abs(static_cast<double>(w)));
  for (std::size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
  }
  CHECK_MESSAGE(worst <= 1e-5 * scale, what << ": max |diff| " << worst << " vs scale " << scale);
}

/// The two rows of the prefill + decode cases (13 tokens each).
const std::vector<std::vector<std::int32_t>> two_rows = {
    {4, 8, 15, 16, 23, 42, 1, 2, 3, 69, 0, 31, 7}, {9, 9, 9, 50, 61, 12, 13, 14, 3, 2, 1, 0, 68}};

/// Every row's logits (T, V) through the cache: a (B, k) prefill returning all positions,
/// then one (B, 1) decode step per remaining token with (B, V) logits.
template <class B>
std::vector<std::vector<float>> prefill_then_decode(
    const model::gpt<B>& m, const std::vector<std::vector<std::int32_t>>& seqs, index_t k) {
  const auto& cfg = m.config();
  const index_t V = cfg.vocab_size, Bn = static_cast<index_t>(seqs.size());
  const auto T = static_cast<index_t>(seqs[0].size());
  model::kv_cache<B> cache(cfg, Bn, T);
  std::vector<std::int32_t> pre;
  for (const auto& s : seqs) pre.insert(pre.end(), s.begin(), s.begin() + k);
  const auto pre_dev = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(pre),
                                                     shape{Bn, k});
  typename B::tensor lg(shape{Bn, k, V});
  const std::vector<index_t> zeros(static_cast<std::size_t>(Bn), 0);
  model::gpt_forward_cached<B>(m, cache, pre_dev, zeros, lg);
  const auto pre_logits = host<B>(lg);
  std::vector<std::vector<float>> got;
  for (index_t b = 0; b < Bn; ++b) got.push_back(row_of(pre_logits, b, k * V));
  model::gpt_inference_buffers<B> dec(cfg, Bn, 1, T);
  typename B::tensor lg1(shape{Bn, V});
  for (index_t t = k; t < T; ++t) {
    std::vector<std::int32_t> tok;
    for (const auto& s : seqs) tok.push_back(s[static_cast<std::size_t>(t)]);
    const auto tok_dev = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(tok),
                                                       shape{Bn, 1});
    const std::vector<index_t> pos(static_cast<std::size_t>(Bn), t);
    model::gpt_forward_cached<B>(m, cache, dec, tok_dev, pos, lg1);
    const auto h = host<B>(lg1);
    for (index_t b = 0; b < Bn; ++b) {
      const auto r = row_of(h, b, V);
      auto& g = got[static_cast<std::size_t>(b)];
      g.insert(g.end(), r.begin(), r.end());
    }
  }
  return got;
}

/// The per-row start positions case: rows {1, 2, 3} and {30, ..., 35} prefilled
/// right-padded into `cache` (2 rows, 12 positions), last prompt logits checked against the
/// full forward; then a chunk of 4 more tokens per row at positions 3 and 6 in one call,
/// checked against the full forward of the whole rows. Returns the chunk's (2, 4, V) logits.
template <class B>
std::vector<float> per_row_starts_chunk(const model::gpt<B>& m, model::kv_cache<B>& cache) {
  const index_t V = m.config().vocab_size;
  {
    // Prefill right-padded (row 0 padded with its last token), last valid logits only.
    const std::vector<std::int32_t> pre = {1, 2, 3, 3, 3, 3, 30, 31, 32, 33, 34, 35};
    const auto d = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(pre), shape{2, 6});
    typename B::tensor lg(shape{2, V});
    const std::vector<index_t> zeros = {0, 0}, lens = {3, 6};
    model::gpt_forward_cached<B>(m, cache, d, zeros, lg, lens);
    const auto h = host<B>(lg);
    check_logits(row_of(h, 0, V), row_of(full_logits<B>(m, {1, 2, 3}), 2, V),
                 "row 0 last prefill logits");
    check_logits(row_of(h, 1, V), row_of(full_logits<B>(m, {30, 31, 32, 33, 34, 35}), 5, V),
                 "row 1 last prefill logits");
  }
  const std::vector<std::int32_t> chunk = {10, 11, 12, 13, 40, 41, 42, 43};
  const auto d = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(chunk), shape{2, 4});
  typename B::tensor lg(shape{2, 4, V});
  const std::vector<index_t> pos = {3, 6};
  model::gpt_forward_cached<B>(m, cache, d, pos, lg);
  const auto h = host<B>(lg);
  const auto w0 = full_logits<B>(m, {1, 2, 3, 10, 11, 12, 13});
  const auto w1 = full_logits<B>(m, {30, 31, 32, 33, 34, 35, 40, 41, 42, 43});
  check_logits(row_of(h, 0, 4 * V), std::vector<float>(w0.begin() + 3 * V, w0.end()),
               "row 0 chunk logits");
  check_logits(row_of(h, 1, 4 * V), std::vector<float>(w1.begin() + 6 * V, w1.end()),
               "row 1 chunk logits");
  return h;
}

/// Greedy decoding by repeated full forwards: the `n` argmax tokens after `prompt` and their
/// log-probs (log softmax at the argmax), the reference generate's cache must reproduce.
struct greedy_run {
  std::vector<std::int32_t> tokens;  ///< The n tokens appended to the prompt.
  std::vector<float> logprobs;       ///< Their log-probs.
};
template <class B>
greedy_run greedy_by_full_forwards(const model::gpt<B>& m, std::vector<std::int32_t> seq, int n) {
  const index_t V = m.config().vocab_size;
  greedy_run r;
  for (int step = 0; step < n; ++step) {
    const auto lg = full_logits<B>(m, seq);
    const auto last = row_of(lg, static_cast<index_t>(seq.size()) - 1, V);
    index_t arg = 0;
    for (index_t v = 1; v < V; ++v) {
      if (last[static_cast<std::size_t>(v)] > last[static_cast<std::size_t>(arg)]) arg = v;
    }
    double mx = last[static_cast<std::size_t>(arg)], s = 0.0;
    for (float x : last) s += std::exp(static_cast<double>(x) - mx);
    r.logprobs.push_back(static_cast<float>(-std::log(s)));
    seq.push_back(static_cast<std::int32_t>(arg));
    r.tokens.push_back(static_cast<std::int32_t>(arg));
  }
  return r;
}

}  // namespace

TEST_CASE_TEMPLATE("gpt_forward_cached: prefill + decode equals the full forward", B,
                   RLHF_TEST_BACKENDS) {
  const auto m = make_model<B>(11);
  for (index_t k : {1, 4, 12}) {
    CAPTURE(k);
    const auto got = prefill_then_decode<B>(m, two_rows, k);
    for (std::size_t b = 0; b < 2; ++b) {
      check_logits(got[b], full_logits<B>(m, two_rows[b]), "cached vs full logits");
    }
  }
}

TEST_CASE_TEMPLATE("gpt_forward_cached: per-row start positions and a multi-token chunk", B,
                   RLHF_TEST_BACKENDS) {
  const auto m = make_model<B>(12);
  model::kv_cache<B> cache(m.config(), 2, 12);
  (void)per_row_starts_chunk<B>(m, cache);
}

TEST_CASE_TEMPLATE("generate: greedy equals the argmax of repeated full forwards", B,
                   RLHF_TEST_BACKENDS) {
  const auto m = make_model<B>(13);
  model::generation_config gc;
  gc.max_new_tokens = 9;
  gc.sampling.temperature = 0.0f;
  const auto prompts = some_prompts();
  const auto r = model::generate<B>(m, prompts, gc);
  CHECK(r.prompt_width == 8);
  CHECK(r.tokens.shape() == shape{3, 17});
  for (index_t b = 0; b < 3; ++b) {
    CAPTURE(b);
    CHECK(r.lengths[static_cast<std::size_t>(b)] == 9);
    const auto want = greedy_by_full_forwards<B>(m, prompts[static_cast<std::size_t>(b)], 9);
    CHECK(completion(r, b) == want.tokens);
    check_close(completion_logprobs(r, b), want.logprobs, "greedy logprobs", 1e-5, 1e-5);
  }
  // Layout: left-padded prompts, masks aligned with the tokens.
  const auto toks = rlhf::ops::to_host<B>(r.tokens);
  const auto am = host<B>(r.attention_mask);
  const auto cm = host<B>(r.completion_mask);
  // Row 1: prompt {41, 3} at columns 6, 7.
  CHECK(toks[17 + 0] == gc.pad_token);
  CHECK(toks[17 + 6] == 41);
  CHECK(toks[17 + 7] == 3);
  CHECK(am[17 + 5] == 0.0f);
  CHECK(am[17 + 6] == 1.0f);
  CHECK(cm[17 + 7] == 0.0f);
  CHECK(cm[17 + 8] == 1.0f);
  CHECK(cm[17 + 16] == 1.0f);
}

TEST_CASE_TEMPLATE("generate: same seed, same output; another seed, another output", B,
                   RLHF_TEST_BACKENDS) {
  const auto m = make_model<B>(14);
  model::generation_config gc;
  gc.max_new_tokens = 10;
  gc.sampling.temperature = 1.0f;
  gc.sampling.top_k = 20;
  gc.sampling.top_p = 0.95f;
  gc.sampling.seed = 123;
  const auto prompts = some_prompts();
  const auto a = model::generate<B>(m, prompts, gc);
  const auto b = model::generate<B>(m, prompts, gc);
  CHECK(rlhf::ops::to_host<B>(a.tokens) == rlhf::ops::to_host<B>(b.tokens));
  CHECK(host<B>(a.logprobs) == host<B>(b.logprobs));
  gc.sampling.seed = 124;
  const auto c = model::generate<B>(m, prompts, gc);
  CHECK(rlhf::ops::to_host<B>(a.tokens) != rlhf::ops::to_host<B>(c.tokens));
}

/// Every row of `all` (generate of `prompts` under `gc`) equals that row generated alone with
/// its row id: the same completion, log-probs to float32 round-off.
template <class B>
void check_rows_alone(const model::gpt<B>& m, const std::vector<std::vector<std::int32_t>>& prompts,
                      const model::generation_config& gc, const model::generation_result<B>& all) {
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    CAPTURE(b);
    model::generation_config one = gc;
    one.row_ids = {static_cast<std::int32_t>(b)};
    const auto alone = model::generate<B>(m, {prompts[b]}, one);
    const auto row = static_cast<index_t>(b);
    CHECK(completion(alone, 0) == completion(all, row));
    check_close(completion_logprobs(alone, 0), completion_logprobs(all, row),
                "logprobs alone vs in the batch", 1e-5, 1e-6);
  }
}

TEST_CASE_TEMPLATE("generate: a row alone equals the same row in a batch", B,
                   RLHF_TEST_BACKENDS) {
  const auto m = make_model<B>(15);
  const auto prompts = some_prompts();  // lengths 5, 2, 8
  for (float tau : {0.0f, 0.8f}) {
    CAPTURE(tau);
    model::generation_config gc;
    gc.max_new_tokens = 8;
    gc.sampling.temperature = tau;
    gc.sampling.seed = 77;
    const auto all = model::generate<B>(m, prompts, gc);
    check_rows_alone(m, prompts, gc, all);
    // Reordered batch with the matching row ids: the same rows.
    model::generation_config re = gc;
    re.row_ids = {2, 0};
    const auto sw = model::generate<B>(m, {prompts[2], prompts[0]}, re);
    CHECK(completion(sw, 0) == completion(all, 2));
    CHECK(completion(sw, 1) == completion(all, 0));
  }
}

TEST_CASE_TEMPLATE("generate: rows with the same prompt share a prefill and match rows alone", B,
                   RLHF_TEST_BACKENDS) {
  // Prompts 0, 1, 0, 2, 1, 0 (lengths 5, 2, 5, 8, 2, 5): three distinct prefills copied to six
  // rows. Each row must be what it is alone with its row id: greedy (equal rows give equal
  // completions) and sampled (equal prompts, other draws).
  const auto m = make_model<B>(23);
  const auto base = some_prompts();
  const std::vector<std::vector<std::int32_t>> prompts{base[0], base[1], base[0],
                                                       base[2], base[1], base[0]};
  for (float tau : {0.0f, 1.0f}) {
    CAPTURE(tau);
    model::generation_config gc;
    gc.max_new_tokens = 7;
    gc.sampling.temperature = tau;
    gc.sampling.seed = 31;
    const auto all = model::generate<B>(m, prompts, gc);
    check_rows_alone(m, prompts, gc, all);
    if (tau == 0.0f) CHECK(completion(all, 0) == completion(all, 5));
  }
}

TEST_CASE_TEMPLATE("generate: a kept workspace gives the bits of a fresh one", B,
                   RLHF_TEST_BACKENDS) {
  // The workspace keeps the KV cache (stale positions are never read) and the transposed
  // weights (refilled every call): after the weights change, and across batch sizes, each
  // call equals a call without one, bit for bit.
  auto m = make_model<B>(25);
  std::vector<std::vector<std::int32_t>> twelve;
  for (int k = 0; k < 4; ++k) {
    for (const auto& p : some_prompts()) twelve.push_back(p);
  }
  model::generation_config gc;
  gc.max_new_tokens = 9;
  gc.sampling.temperature = 1.0f;
  gc.sampling.seed = 3;
  model::generation_workspace<B> ws;
  const auto same = [&](const std::vector<std::vector<std::int32_t>>& prompts) {
    const auto kept = model::generate<B>(m, prompts, gc, &ws);
    const auto fresh = model::generate<B>(m, prompts, gc);
    CHECK(rlhf::ops::to_host<B>(kept.tokens) == rlhf::ops::to_host<B>(fresh.tokens));
    CHECK(host<B>(kept.logprobs) == host<B>(fresh.logprobs));
  };
  same(twelve);
  same(twelve);
  m.init(26);  // new weights: the kept transposed copy must follow them
  same(twelve);
  same(some_prompts());
  same(twelve);
}

TEST_CASE_TEMPLATE("generate: a stop token ends its row", B, RLHF_TEST_BACKENDS) {
  const auto m = make_model<B>(16);
  const auto prompts = some_prompts();
  model::generation_config gc;
  gc.max_new_tokens = 10;
  gc.sampling.temperature = 1.0f;
  gc.sampling.seed = 5;
  gc.pad_token = 69;
  const auto free_run = model::generate<B>(m, prompts, gc);
  const auto c0 = completion(free_run, 0);
  REQUIRE(c0.size() == 10);
  // Stop on row 0's 4th token (unless it appeared earlier: then at its first occurrence).
  const std::int32_t stop = c0[3];
  index_t first = 0;
  while (c0[static_cast<std::size_t>(first)] != stop) ++first;
  gc.stop_tokens = {stop};
  const auto r = model::generate<B>(m, prompts, gc);
  CHECK(r.lengths[0] == first + 1);
  const auto toks = rlhf::ops::to_host<B>(r.tokens);
  const auto cm = host<B>(r.completion_mask);
  const auto am = host<B>(r.attention_mask);
  const auto lp = host<B>(r.logprobs);
  const index_t w = r.tokens.shape()[1], P = r.prompt_width;
  for (index_t j = 0; j < 10; ++j) {
    CAPTURE(j);
    const auto i = static_cast<std::size_t>(P + j);
    if (j <= first) {
      CHECK(toks[i] == c0[static_cast<std::size_t>(j)]);
      CHECK(cm[i] == 1.0f);
      CHECK(am[i] == 1.0f);
    } else {
      CHECK(toks[i] == 69);
      CHECK(cm[i] == 0.0f);
      CHECK(am[i] == 0.0f);
      CHECK(lp[i] == 0.0f);
    }
  }
  // Every row ends at its first stop token (or runs to the budget), PAD after it.
  for (index_t b = 0; b < 3; ++b) {
    CAPTURE(b);
    const auto c = completion(r, b);
    for (std::size_t j = 0; j + 1 < c.size(); ++j) CHECK(c[j] != stop);
    if (static_cast<index_t>(c.size()) < 10) CHECK(c.back() == stop);
    for (index_t j = static_cast<index_t>(c.size()); j < 10; ++j) {
      CHECK(toks[static_cast<std::size_t>(b * w + P + j)] == 69);
    }
  }
  // Stops on every row at once end the loop early (the result keeps its width).
  gc.stop_tokens.clear();
  for (index_t v = 0; v < m.config().vocab_size; ++v) gc.stop_tokens.push_back(static_cast<std::int32_t>(v));
  const auto one = model::generate<B>(m, prompts, gc);
  for (index_t b = 0; b < 3; ++b) CHECK(one.lengths[static_cast<std::size_t>(b)] == 1);
  CHECK(one.tokens.shape() == shape{3, 18});
}

TEST_CASE_TEMPLATE("generate: logprobs equal ops::token_logprobs of the full forward", B,
                   RLHF_TEST_BACKENDS) {
  const auto m = make_model<B>(17);
  const auto prompts = some_prompts();
  for (float tau : {1.0f, 0.7f, 1.6f}) {
    CAPTURE(tau);
    model::generation_config gc;
    gc.max_new_tokens = 7;
    gc.sampling.temperature = tau;
    gc.sampling.top_k = 30;
    gc.sampling.seed = 99;
    const auto r = model::generate<B>(m, prompts, gc);
    for (index_t b = 0; b < 3; ++b) {
      CAPTURE(b);
      std::vector<std::int32_t> seq = prompts[static_cast<std::size_t>(b)];
      const auto plen = static_cast<index_t>(seq.size());
      const auto comp = completion(r, b);
      seq.insert(seq.end(), comp.begin(), comp.end());
      const auto t = static_cast<index_t>(seq.size());
      model::gpt_activations<B> acts(m.config(), 1, t);
      const auto ids = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(seq),
                                                     shape{1, t});
      model::gpt_forward<B>(m, acts, ids);
      std::vector<float> mask(static_cast<std::size_t>(t), 0.0f);
      for (index_t j = plen; j < t; ++j) mask[static_cast<std::size_t>(j)] = 1.0f;
      const auto mask_dev = make<B>(mask, shape{1, t});
      rlhf::ops::logprob_options opt;
      opt.temperature = tau;
      const auto lp = host<B>(rlhf::ops::token_logprobs<B>(acts.logits, ids, mask_dev, opt).logps);
      const std::vector<float> want(lp.begin() + plen, lp.end());
      check_close(completion_logprobs(r, b), want, "logprobs vs token_logprobs", 1e-5, 1e-5);
    }
  }
}

TEST_CASE_TEMPLATE("generate and gpt_forward_cached: bad input is a typed error naming it", B,
                   RLHF_TEST_BACKENDS) {
  const auto m = make_model<B>(18);
  model::generation_config gc;
  gc.max_new_tokens = 10;
  const std::vector<std::int32_t> ok = {1, 2, 3};
  // max_seq_len 24: a 15-token prompt leaves room for 9 new tokens only.
  const std::vector<std::int32_t> long_prompt(15, 4);
  CHECK_THROWS_AS(model::generate<B>(m, {ok, long_prompt}, gc), rlhf::config_error);
  check_error_names([&] { (void)model::generate<B>(m, {ok, long_prompt}, gc); },
                    "prompts[1]'s length");
  CHECK_THROWS_AS(model::generate<B>(m, {ok, {}}, gc), rlhf::config_error);
  check_error_names([&] { (void)model::generate<B>(m, {ok, {}}, gc); }, "prompts[1]");
  CHECK_THROWS_AS(model::generate<B>(m, {}, gc), rlhf::config_error);
  check_error_names([&] { (void)model::generate<B>(m, {}, gc); }, "prompts");
  CHECK_THROWS_AS(model::generate<B>(m, {{1, 70}}, gc), rlhf::data_error);
  check_error_names([&] { (void)model::generate<B>(m, {{1, 70}}, gc); }, "prompts[0][1]");
  CHECK_THROWS_AS(model::generate<B>(m, {{-1}}, gc), rlhf::data_error);
  {
    auto g = gc;
    g.max_new_tokens = 0;
    check_error_names([&] { (void)model::generate<B>(m, {ok}, g); }, "max_new_tokens");
    g.max_new_tokens = 24;
    check_error_names([&] { (void)model::generate<B>(m, {ok}, g); }, "max_new_tokens");
  }
  {
    auto g = gc;
    g.sampling.temperature = -1.0f;
    CHECK_THROWS_AS(model::generate<B>(m, {ok}, g), rlhf::config_error);
    check_error_names([&] { (void)model::generate<B>(m, {ok}, g); }, "temperature");
    g = gc;
    g.sampling.top_p = 0.0f;
    check_error_names([&] { (void)model::generate<B>(m, {ok}, g); }, "top_p");
  }
  {
    auto g = gc;
    g.row_ids = {0, 1};
    check_error_names([&] { (void)model::generate<B>(m, {ok}, g); }, "row_ids");
    g.row_ids = {-2};
    check_error_names([&] { (void)model::generate<B>(m, {ok}, g); }, "row_ids[0]");
  }
  // The cached forward's own checks.
  const auto& cfg = m.config();
  model::kv_cache<B> cache(cfg, 1, 8);
  typename B::tensor lg(shape{1, cfg.vocab_size});
  const std::vector<std::int32_t> two = {1, 2};
  const auto tok = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(two), shape{1, 2});
  const std::vector<index_t> p7 = {7}, p0 = {0}, p_two = {0, 0}, n3 = {3};
  CHECK_THROWS_AS(model::gpt_forward_cached<B>(m, cache, tok, p7, lg), rlhf::config_error);
  check_error_names([&] { model::gpt_forward_cached<B>(m, cache, tok, p7, lg); }, "start_pos[0]");
  check_error_names([&] { model::gpt_forward_cached<B>(m, cache, tok, p_two, lg); }, "start_pos");
  check_error_names([&] { model::gpt_forward_cached<B>(m, cache, tok, p0, lg, n3); },
                    "new_lengths[0]");
  typename B::tensor bad(shape{1, 3, cfg.vocab_size});
  CHECK_THROWS_AS(model::gpt_forward_cached<B>(m, cache, tok, p0, bad), rlhf::shape_error);
  check_error_names([&] { model::gpt_forward_cached<B>(m, cache, tok, p0, bad); }, "logits");
  const std::vector<std::int32_t> oov = {1, 99};
  const auto tok_oov = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(oov), shape{1, 2});
  CHECK_THROWS_AS(model::gpt_forward_cached<B>(m, cache, tok_oov, p0, lg), rlhf::data_error);
  check_error_names([&] { model::kv_cache<B> c(cfg, 1, 25); }, "max_len");
  check_error_names([&] { model::kv_cache<B> c(cfg, 0, 8); }, "batch");
}

TEST_CASE_TEMPLATE("generate: pad_token and stop_tokens must be in the vocabulary", B,
                   RLHF_TEST_BACKENDS) {
  const auto m = make_model<B>(21);  // vocab_size 70
  model::generation_config gc;
  gc.max_new_tokens = 3;
  const std::vector<std::int32_t> ok = {1, 2, 3};
  // Before, these were accepted and written into the output tokens (a PAD of 70 or -100
  // that no embedding row exists for), or a stop token that can never be sampled.
  for (std::int32_t bad : {70, -100, 1000000}) {
    CAPTURE(bad);
    auto g = gc;
    g.pad_token = bad;
    CHECK_THROWS_AS(model::generate<B>(m, {ok}, g), rlhf::config_error);
    check_error_names([&] { (void)model::generate<B>(m, {ok}, g); }, "generate: pad_token");
    g = gc;
    g.stop_tokens = {5, bad};
    CHECK_THROWS_AS(model::generate<B>(m, {ok}, g), rlhf::config_error);
    check_error_names([&] { (void)model::generate<B>(m, {ok}, g); }, "stop_tokens[1]");
  }
  auto g = gc;
  g.pad_token = 69;
  g.stop_tokens = {0, 69};
  CHECK_NOTHROW((void)model::generate<B>(m, {ok}, g));
}

// ---------------------------------------------------------------------------------------------
// Llama-style blocks: RMSNorm, rotary positions, SwiGLU, grouped-query attention (1 key/value
// head for 2 query heads), q/k/v biases only, untied LM head.

namespace {

model::gpt_config llama_config(model::rope_scaling_type scaling) {
  model::gpt_config c = tiny_config();  // V 70, T 24, L 2, NH 2, C 16 (hs 8)
  c.norm = model::norm_type::rmsnorm;
  c.position = model::position_type::rotary;
  c.mlp = model::mlp_type::swiglu;
  c.n_kv_head = 1;
  c.mlp_hidden = 40;
  c.qkv_bias = true;
  c.proj_bias = false;
  c.tie_embeddings = false;
  c.rope.scaling = scaling;
  if (scaling == model::rope_scaling_type::llama3) {
    // inv_freq 1, 0.1, 0.01, 0.001: wavelengths 6.3 (kept), 63 (the ramp), 628 and 6283
    // (divided by 8) against original_max_seq_len 64, low 1, high 4.
    c.rope.factor = 8.0f;
    c.rope.low_freq_factor = 1.0f;
    c.rope.high_freq_factor = 4.0f;
    c.rope.original_max_seq_len = 64;
  }
  return c;
}

/// make_model's scaled init, plus nonzero q/k/v biases (the init's are zero): a biased k is
/// rotated too.
template <class B>
model::gpt<B> make_llama_model(std::uint64_t seed, const model::gpt_config& cfg) {
  auto m = make_model<B>(seed, cfg);
  auto p = rlhf::ops::to_host<B>(m.params());
  unsigned s = 500;
  for (const auto& e : m.table()) {
    if (!e.name.ends_with("attn.c_attn.bias")) continue;
    const auto b = randn(static_cast<std::size_t>(e.size()), s++, 0.5f);
    std::copy(b.begin(), b.end(), p.begin() + e.offset);
  }
  rlhf::ops::copy_from_host<B>(std::span<const float>(p), m.params());
  return m;
}

const model::rope_scaling_type llama_scalings[] = {model::rope_scaling_type::none,
                                                   model::rope_scaling_type::llama3};

}  // namespace

TEST_CASE_TEMPLATE("Llama-style blocks: the cached forward equals the full forward", B,
                   RLHF_TEST_BACKENDS) {
  for (const auto scaling : llama_scalings) {
    CAPTURE(static_cast<int>(scaling));
    const auto m = make_llama_model<B>(31, llama_config(scaling));
    const auto& cfg = m.config();
    REQUIRE(cfg.kv_heads() == 1);
    std::vector<std::vector<float>> want;
    for (const auto& s : two_rows) want.push_back(full_logits<B>(m, s));
    // Prefill k tokens, then decode the rest one at a time.
    for (index_t k : {1, 5, 12}) {
      CAPTURE(k);
      const auto got = prefill_then_decode<B>(m, two_rows, k);
      for (std::size_t b = 0; b < 2; ++b) check_logits(got[b], want[b], "cached vs full logits");
    }

    // Per-row start positions: rows rotated at different positions in one call.
    model::kv_cache<B> cache(cfg, 2, 12);
    const auto h = per_row_starts_chunk<B>(m, cache);
    // Positions matter: the same chunk at other start positions gives other logits.
    const index_t V = cfg.vocab_size;
    model::kv_cache<B> cache2(cfg, 2, 12);
    {
      const std::vector<std::int32_t> pre = {1, 2, 3, 3, 3, 3, 30, 31, 32, 33, 34, 35};
      const auto dp = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(pre),
                                                    shape{2, 6});
      typename B::tensor lgp(shape{2, V});
      const std::vector<index_t> zeros = {0, 0}, lens = {3, 6};
      model::gpt_forward_cached<B>(m, cache2, dp, zeros, lgp, lens);
    }
    const std::vector<std::int32_t> chunk = {10, 11, 12, 13, 40, 41, 42, 43};
    const auto d = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(chunk), shape{2, 4});
    typename B::tensor lg(shape{2, 4, V});
    const std::vector<index_t> pos_late = {5, 7};  // row 0: a gap; row 1: overwrites step 6
    model::gpt_forward_cached<B>(m, cache2, d, pos_late, lg);
    CHECK(host<B>(lg) != h);
  }
}

TEST_CASE_TEMPLATE("Llama-style blocks: greedy generate equals the argmax of full forwards", B,
                   RLHF_TEST_BACKENDS) {
  for (const auto scaling : llama_scalings) {
    CAPTURE(static_cast<int>(scaling));
    const auto m = make_llama_model<B>(32, llama_config(scaling));
    model::generation_config gc;
    gc.max_new_tokens = 9;
    gc.sampling.temperature = 0.0f;
    const auto prompts = some_prompts();
    const auto r = model::generate<B>(m, prompts, gc);
    REQUIRE(r.prompt_width == 8);
    for (index_t b = 0; b < 3; ++b) {
      CAPTURE(b);
      CHECK(r.lengths[static_cast<std::size_t>(b)] == 9);
      const auto want = greedy_by_full_forwards<B>(m, prompts[static_cast<std::size_t>(b)], 9);
      CHECK(completion(r, b) == want.tokens);
      check_close(completion_logprobs(r, b), want.logprobs, "greedy logprobs", 1e-5, 1e-5);
    }
    // A row alone (left-padded differently) generates what it does in the batch.
    model::generation_config one = gc;
    one.row_ids = {1};
    const auto alone = model::generate<B>(m, {prompts[1]}, one);
    CHECK(completion(alone, 0) == completion(r, 1));
  }
}

#if defined(RLHF_EIGEN_USE_ONEDNN)
TEST_CASE("generate: oneDNN's transposed weights give the stored-weight result") {
  // With oneDNN as the GEMM provider the forward passes multiply by transposed (in, out)
  // copies of the weights (gpt_forward: one layer's at a time; in generate, gpt_weights_kn for
  // more than kn_decode_rows rows, W as stored through oneDNN's small-row kernel for fewer);
  // Eigen's kernel reads W as stored. Same tokens (greedy); logits to 1e-5 of their scale
  // (check_logits: the kernels sum in different orders), log-probs to 1e-4 of it (below).
  using B = rlhf::eigen_backend;
  const rlhf::gemm_provider before = rlhf::eigen_gemm_provider();
  auto cfg = tiny_config();
  cfg.n_embd = 48;  // products large enough to pass through the GEMM providers' tiles
  const auto m = make_model<B>(21, cfg);
  model::generation_config gc;
  gc.max_new_tokens = 12;
  std::vector<std::vector<std::int32_t>> twelve;
  for (int k = 0; k < 4; ++k) {
    for (const auto& p : some_prompts()) twelve.push_back(p);
  }
  const auto ids = some_prompts()[2];  // 8 tokens
  const auto run = [&](rlhf::gemm_provider p, const std::vector<std::vector<std::int32_t>>& ps) {
    rlhf::set_eigen_gemm_provider(p);
    REQUIRE(rlhf::ops::gemm_prefers_kn_weights<B>() == (p == rlhf::gemm_provider::onednn));
    auto g = model::generate<B>(m, ps, gc);
    model::gpt_activations<B> acts(cfg, 1, 8);
    model::gpt_forward<B>(
        m, acts, rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{1, 8}));
    return std::make_pair(std::move(g), host<B>(acts.logits));
  };
  for (const bool few_rows : {true, false}) {
    CAPTURE(few_rows);
    const auto prompts = few_rows ? some_prompts() : twelve;
    const auto kn = run(rlhf::gemm_provider::onednn, prompts);
    const auto stored = run(rlhf::gemm_provider::eigen, prompts);
    rlhf::set_eigen_gemm_provider(before);
    check_logits(kn.second, stored.second, "logits, transposed vs stored weights");
    // A log-prob carries the rounding of the logits it is taken from, and a decode step's
    // that of every step before it through this model's ×6 weights: 1e-4 of the logits'
    // scale (a wrong layout or a stale copy is off by O(1)).
    double logit_scale = 1.0;
    for (const float x : stored.second) logit_scale = std::max(logit_scale, std::abs(double{x}));
    for (index_t b = 0; b < static_cast<index_t>(prompts.size()); ++b) {
      CAPTURE(b);
      CHECK(completion(kn.first, b) == completion(stored.first, b));
      const auto got = completion_logprobs(kn.first, b);
      const auto want = completion_logprobs(stored.first, b);
      REQUIRE(got.size() == want.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        CAPTURE(i);
        CHECK(std::abs(double{got[i]} - want[i]) <= 1e-4 * logit_scale);
      }
    }
  }
}
#endif

}  // namespace test_generate_cases
