// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The GPT-style decoder's configuration and the layout of its parameter arena
// (docs/model.md). Every parameter lives in one (P,) tensor; `gpt_param_table` gives each
// one's GPT-2 Hugging Face name, offset, shape and whether AdamW decays it. Weights are
// stored (out, in), as nn.Linear and llm.c do, so every projection is x · Wᵀ (the GEMM
// layout measured fastest in docs/benchmarks.md); checkpoints say so in their metadata.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "rlhf/core/config.hpp"
#include "rlhf/core/shape.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// The decoder's shape and training switches. The defaults are a small byte-level model;
/// the named presets below are the configurations docs/benchmarks.md measures.
struct gpt_config {
  index_t vocab_size = 259;     ///< Real vocabulary (byte_tokenizer: 256 bytes + 3 specials).
  index_t max_seq_len = 256;    ///< Context length (rows of the position table).
  index_t n_layer = 4;          ///< Transformer blocks L.
  index_t n_head = 4;           ///< Attention heads H per block.
  index_t n_embd = 256;         ///< Model width C.
  index_t mlp_ratio = 4;        ///< MLP hidden width = mlp_ratio · C.
  bool tie_embeddings = true;   ///< LM head reuses wte (GPT-2).
  float dropout = 0.0f;         ///< GPT-2's embd/attn/resid dropout probability; 0 = off.
  float layernorm_eps = 1e-5f;  ///< LayerNorm epsilon (torch.nn.LayerNorm's default).
  index_t vocab_multiple = 64;  ///< Embedding rows padded to a multiple of this (alignment).

  /// Embedding rows in the arena: vocab_size rounded up to vocab_multiple. The padded rows
  /// are zero and are never read as outputs (logits cover the real vocabulary).
  [[nodiscard]] index_t padded_vocab_size() const {
    return (vocab_size + vocab_multiple - 1) / vocab_multiple * vocab_multiple;
  }
  /// Width of one attention head: C / n_head.
  [[nodiscard]] index_t head_dim() const { return n_embd / n_head; }
  /// Same sizes and options (models with equal configs have interchangeable activations).
  friend bool operator==(const gpt_config&, const gpt_config&) = default;
  /// MLP hidden width: mlp_ratio · C.
  [[nodiscard]] index_t mlp_width() const { return mlp_ratio * n_embd; }

  // Named presets: the other fields keep their defaults (mlp_ratio 4, tied embeddings, no
  // dropout, layernorm_eps 1e-5, vocab_multiple 64). Parameter counts are gpt_num_params'
  // (the arena, padded embedding rows included).

  /// Benchmark "tiny": V=256, T=64, L=2, H=4, C=128 (437,760 parameters).
  [[nodiscard]] static gpt_config tiny() { return preset(256, 64, 2, 4, 128); }
  /// Benchmark "small": V=256, T=128, L=4, H=4, C=256 (3,257,856 parameters).
  [[nodiscard]] static gpt_config small() { return preset(256, 128, 4, 4, 256); }
  /// GPT-2 small (124M): V=50257, T=1024, L=12, H=12, C=768. 124,439,808 parameters as
  /// GPT-2 counts them; 124,475,904 in the arena (50257 rows padded to 50304).
  [[nodiscard]] static gpt_config gpt2_124m() { return preset(50257, 1024, 12, 12, 768); }

  // Upper bounds of validate(). Each keeps every size the model computes (the parameter
  // table, padded_vocab_size, mlp_width, the activations per row) far inside index_t; the
  // products with the batch and sequence length are checked where the tensors are made.
  /// Token ids are int32: at most 2^31 - 1 tokens.
  static constexpr index_t max_vocab_size = 2147483647;
  /// Rows of the position table: at most 2^24.
  static constexpr index_t max_max_seq_len = index_t{1} << 24;
  /// Model width C: at most 2^16 (GPT-3 175B has 12288); n_head <= n_embd follows.
  static constexpr index_t max_n_embd = index_t{1} << 16;
  /// MLP hidden width in units of C: at most 64.
  static constexpr index_t max_mlp_ratio = 64;
  /// Padding multiple of the embedding rows: at most 2^20.
  static constexpr index_t max_vocab_multiple = index_t{1} << 20;
  /// Layers: at most 349525, so the 3·n_layer + 1 dropout sites of a forward keep their
  /// Philox stream ids below 2^20 (see detail::dropout_key_of in model/gpt.hpp) and no two
  /// sites, or two forwards, share a dropout mask.
  static constexpr index_t max_n_layer = ((index_t{1} << 20) - 1) / 3;

  /// Throws config_error naming the first field outside its domain: vocab_size in
  /// [2, max_vocab_size], max_seq_len in [1, max_max_seq_len], n_layer in [1, max_n_layer],
  /// n_head >= 1, n_embd in [1, max_n_embd] and a multiple of n_head, mlp_ratio in
  /// [1, max_mlp_ratio], vocab_multiple in [1, max_vocab_multiple], dropout in [0, 1),
  /// layernorm_eps finite and > 0.
  void validate() const {
    constexpr const char* fn = "gpt_config";
    const auto in = [](index_t lo, index_t hi) {
      return rlhf::detail::concat("in [", lo, ", ", hi, "]");
    };
    check_config(vocab_size >= 2 && vocab_size <= max_vocab_size, fn, "vocab_size",
                 in(2, max_vocab_size) + " (token ids are int32)", vocab_size);
    check_config(max_seq_len >= 1 && max_seq_len <= max_max_seq_len, fn, "max_seq_len",
                 in(1, max_max_seq_len), max_seq_len);
    check_config(n_layer >= 1 && n_layer <= max_n_layer, fn, "n_layer",
                 in(1, max_n_layer) + " (dropout stream ids)", n_layer);
    check_config(n_head >= 1 && n_head <= max_n_embd, fn, "n_head", in(1, max_n_embd), n_head);
    check_config(n_embd >= 1 && n_embd % n_head == 0, fn, "n_embd", "a positive multiple of n_head",
                 n_embd);
    check_config(n_embd <= max_n_embd, fn, "n_embd", rlhf::detail::concat("<= ", max_n_embd),
                 n_embd);
    check_config(mlp_ratio >= 1 && mlp_ratio <= max_mlp_ratio, fn, "mlp_ratio",
                 in(1, max_mlp_ratio), mlp_ratio);
    check_config(vocab_multiple >= 1 && vocab_multiple <= max_vocab_multiple, fn, "vocab_multiple",
                 in(1, max_vocab_multiple), vocab_multiple);
    check_config(dropout >= 0.0f && dropout < 1.0f, fn, "dropout", "in [0, 1)", dropout);
    check_config(std::isfinite(layernorm_eps) && layernorm_eps > 0.0f, fn, "layernorm_eps",
                 "finite and > 0", layernorm_eps);
  }

 private:
  static gpt_config preset(index_t vocab, index_t ctx, index_t layers, index_t heads,
                           index_t width) {
    gpt_config c;
    c.vocab_size = vocab;
    c.max_seq_len = ctx;
    c.n_layer = layers;
    c.n_head = heads;
    c.n_embd = width;
    return c;
  }
};

/// One parameter of the arena.
struct param_ref {
  std::string name;  ///< GPT-2 Hugging Face name, e.g. "h.0.attn.c_attn.weight".
  index_t offset;    ///< First element in the (P,) arena.
  shape dims;        ///< Shape; (out, in) for projection weights.
  bool decays;       ///< AdamW weight decay applies (matrices and embeddings, not biases/LN).
  /// Number of elements: dims.numel().
  [[nodiscard]] index_t size() const { return dims.numel(); }
};

/// The arena layout, in arena order: wte, wpe, then per layer ln_1, attn.c_attn,
/// attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj, then ln_f and (untied only) lm_head.
inline std::vector<param_ref> gpt_param_table(const gpt_config& cfg) {
  cfg.validate();
  const index_t C = cfg.n_embd, V = cfg.padded_vocab_size(), H = cfg.mlp_width();
  std::vector<param_ref> t;
  index_t offset = 0;
  auto add = [&](std::string name, shape s, bool decays) {
    t.push_back({std::move(name), offset, s, decays});
    offset = rlhf::detail::size_add<config_error>(offset, s.numel(), "gpt_param_table",
                                                  "the parameter count");
  };
  add("wte.weight", shape{V, C}, true);                // (V_padded, C) token embeddings
  add("wpe.weight", shape{cfg.max_seq_len, C}, true);  // (max_seq_len, C) positions
  for (index_t l = 0; l < cfg.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    add(p + "ln_1.weight", shape{C}, false);
    add(p + "ln_1.bias", shape{C}, false);
    add(p + "attn.c_attn.weight", shape{3 * C, C}, true);  // rows: q, k, v
    add(p + "attn.c_attn.bias", shape{3 * C}, false);
    add(p + "attn.c_proj.weight", shape{C, C}, true);
    add(p + "attn.c_proj.bias", shape{C}, false);
    add(p + "ln_2.weight", shape{C}, false);
    add(p + "ln_2.bias", shape{C}, false);
    add(p + "mlp.c_fc.weight", shape{H, C}, true);
    add(p + "mlp.c_fc.bias", shape{H}, false);
    add(p + "mlp.c_proj.weight", shape{C, H}, true);
    add(p + "mlp.c_proj.bias", shape{C}, false);
  }
  add("ln_f.weight", shape{C}, false);
  add("ln_f.bias", shape{C}, false);
  if (!cfg.tie_embeddings) add("lm_head.weight", shape{V, C}, true);
  check_config(offset <= shape::max_numel, "gpt_param_table", "the parameter count",
               rlhf::detail::concat("at most shape::max_numel = ", shape::max_numel), offset);
  return t;
}

/// Total parameters P (the arena's size), padded embedding rows included.
inline index_t gpt_num_params(const gpt_config& cfg) {
  const auto t = gpt_param_table(cfg);
  return t.back().offset + t.back().size();
}

/// The entry named `name`; config_error if there is none.
inline const param_ref& find_param(const std::vector<param_ref>& table, const std::string& name) {
  for (const auto& p : table) {
    if (p.name == name) return p;
  }
  throw config_error(rlhf::detail::concat("find_param: no parameter named '", name, "'"));
}

}  // namespace model
}  // namespace v0
}  // namespace rlhf
