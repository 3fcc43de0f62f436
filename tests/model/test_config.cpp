// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// gpt_config validation and the parameter-arena table (rlhf/model/config.hpp).
#include <doctest/doctest.h>

#include <limits>
#include <string>

#include "rlhf/model/config.hpp"

namespace test_config_cases {

namespace model = rlhf::model;

TEST_CASE("gpt_param_table: contiguous, GPT-2 names, counts match the formula") {
  model::gpt_config cfg;
  cfg.vocab_size = 259;
  cfg.n_layer = 2;
  cfg.n_embd = 32;
  cfg.n_head = 2;
  cfg.max_seq_len = 16;
  CHECK(cfg.padded_vocab_size() == 320);
  const auto t = model::gpt_param_table(cfg);
  REQUIRE(t.size() == 2 + 12 * 2 + 2);
  rlhf::index_t expect = 0;
  for (const auto& p : t) {
    CHECK(p.offset == expect);  // no gaps, no overlap
    expect += p.size();
  }
  const rlhf::index_t C = 32, V = 320, H = 128, L = 2, T = 16;
  // GPT-2's count: embeddings + per layer (2 LN + qkv + proj + 2 LN + fc + proj) + final LN.
  const rlhf::index_t per_layer = 2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C +
                                  (H * C + H) + (C * H + C);
  CHECK(model::gpt_num_params(cfg) == V * C + T * C + L * per_layer + 2 * C);
  CHECK(model::find_param(t, "h.1.attn.c_attn.weight").dims == rlhf::shape{3 * C, C});
  CHECK(model::find_param(t, "h.0.mlp.c_proj.weight").dims == rlhf::shape{C, H});
  CHECK_FALSE(model::find_param(t, "h.0.ln_1.bias").decays);
  CHECK(model::find_param(t, "wte.weight").decays);
  CHECK_THROWS_AS(model::find_param(t, "lm_head.weight"), rlhf::config_error);  // tied

  cfg.tie_embeddings = false;
  const auto u = model::gpt_param_table(cfg);
  CHECK(u.back().name == "lm_head.weight");
  model::gpt_config tied = cfg;
  tied.tie_embeddings = true;
  CHECK(model::gpt_num_params(cfg) == model::gpt_num_params(tied) + V * C);
}

TEST_CASE("gpt_config rejects impossible shapes with the field's name") {
  model::gpt_config cfg;
  cfg.n_embd = 30;
  cfg.n_head = 4;
  CHECK_THROWS_WITH_AS(cfg.validate(),
                       "gpt_config: n_embd must be a positive multiple of n_head, got 30",
                       rlhf::config_error);
  model::gpt_config drop;
  drop.dropout = 0.1f;
  CHECK_NOTHROW(drop.validate());
  for (float bad : {-0.5f, 1.0f, 2.0f}) {
    drop.dropout = bad;
    CHECK_THROWS_WITH_AS(drop.validate(), doctest::Contains("gpt_config: dropout must be in [0, 1)"),
                         rlhf::config_error);
  }
}

TEST_CASE("gpt_config presets: the documented shapes and parameter counts") {
  // Counted here from the GPT-2 layout, not with gpt_param_table: token and position
  // embeddings, per layer 12·C² + 13·C (qkv, proj, fc, proj weights and biases, two
  // layernorms), the final layernorm; tied LM head. V is the padded row count.
  auto count = [](rlhf::index_t V, rlhf::index_t T, rlhf::index_t L, rlhf::index_t C) {
    return V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C;
  };
  struct expected {
    const char* name;
    model::gpt_config cfg;
    rlhf::index_t vocab, ctx, layers, heads, width, params;
  };
  const expected presets[] = {
      {"tiny", model::gpt_config::tiny(), 256, 64, 2, 4, 128, 437'760},
      {"small", model::gpt_config::small(), 256, 128, 4, 4, 256, 3'257'856},
      // GPT-2 small's published 124,439,808 plus the 47 padding rows (50257 -> 50304).
      {"gpt2_124m", model::gpt_config::gpt2_124m(), 50257, 1024, 12, 12, 768,
       124'439'808 + (50304 - 50257) * 768},
  };
  for (const auto& p : presets) {
    CAPTURE(p.name);
    CHECK_NOTHROW(p.cfg.validate());
    CHECK(p.cfg.vocab_size == p.vocab);
    CHECK(p.cfg.max_seq_len == p.ctx);
    CHECK(p.cfg.n_layer == p.layers);
    CHECK(p.cfg.n_head == p.heads);
    CHECK(p.cfg.n_embd == p.width);
    CHECK(p.cfg.mlp_ratio == 4);
    CHECK(p.cfg.tie_embeddings);
    CHECK(p.cfg.dropout == 0.0f);
    CHECK(model::gpt_num_params(p.cfg) == p.params);
    CHECK(count(p.cfg.padded_vocab_size(), p.ctx, p.layers, p.width) == p.params);
  }
  // GPT-2's own count (unpadded vocabulary), as published for the 124M model.
  CHECK(count(50257, 1024, 12, 768) == 124'439'808);
}

TEST_CASE("gpt_config rejects sizes whose products would overflow, naming the field") {
  constexpr rlhf::index_t huge = rlhf::index_t{1} << 62;
  const auto rejects = [](model::gpt_config c, const char* field) {
    const std::string prefix = std::string("gpt_config: ") + field + " must be";
    // REQUIRE: without the check, building the table below could take forever.
    REQUIRE_THROWS_WITH_AS(c.validate(), doctest::Contains(prefix.c_str()), rlhf::config_error);
    // The table (and so the parameter count and the model) is never built from it.
    CHECK_THROWS_AS((void)model::gpt_num_params(c), rlhf::config_error);
  };
  model::gpt_config c;
  c.vocab_size = huge;  // num_params wrapped to a small number before
  rejects(c, "vocab_size");
  c = {};
  c.vocab_size = rlhf::index_t{1} << 31;  // one more than the largest int32 token id
  rejects(c, "vocab_size");
  c = {};
  c.mlp_ratio = huge;
  rejects(c, "mlp_ratio");
  c = {};
  c.vocab_multiple = huge;
  rejects(c, "vocab_multiple");
  c = {};
  c.max_seq_len = huge;
  rejects(c, "max_seq_len");
  c = {};
  c.n_embd = huge;  // a multiple of n_head = 4
  rejects(c, "n_embd");
  c = {};
  c.n_head = huge;
  rejects(c, "n_head");
  c = {};
  c.n_layer = huge;
  rejects(c, "n_layer");

  // The largest accepted values of each bound still validate.
  c = {};
  c.vocab_size = model::gpt_config::max_vocab_size;
  c.vocab_multiple = model::gpt_config::max_vocab_multiple;
  CHECK_NOTHROW(c.validate());
  CHECK(c.padded_vocab_size() == rlhf::index_t{1} << 31);
  c = {};
  c.mlp_ratio = model::gpt_config::max_mlp_ratio;
  c.max_seq_len = model::gpt_config::max_max_seq_len;
  c.n_embd = model::gpt_config::max_n_embd;
  CHECK_NOTHROW(c.validate());
}

TEST_CASE("gpt_config: n_layer is bounded by the dropout stream ids") {
  // Dropout site s of a forward is stream (forward << 20) | s with s <= 3 * n_layer, so
  // 3 * n_layer must stay below 2^20: with one layer more, the last site of a forward
  // would land in the next forward's streams.
  model::gpt_config c;
  c.n_layer = model::gpt_config::max_n_layer;
  CHECK(3 * c.n_layer < (rlhf::index_t{1} << 20));
  CHECK_NOTHROW(c.validate());
  c.n_layer += 1;
  CHECK(3 * c.n_layer >= (rlhf::index_t{1} << 20));
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("gpt_config: n_layer must be in [1, "),
                       rlhf::config_error);
}

TEST_CASE("gpt_config: layernorm_eps must be finite and positive") {
  model::gpt_config c;
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                    0.0f, -1e-5f}) {
    c.layernorm_eps = bad;
    CHECK_THROWS_WITH_AS(c.validate(),
                         doctest::Contains("gpt_config: layernorm_eps must be finite and > 0"),
                         rlhf::config_error);
  }
  c.layernorm_eps = 1e-5f;
  CHECK_NOTHROW(c.validate());
}

}  // namespace test_config_cases
