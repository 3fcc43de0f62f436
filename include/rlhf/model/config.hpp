// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The decoder's configuration and the layout of its parameter arena (docs/model.md). The
// defaults are GPT-2's blocks (LayerNorm, learned positions, tanh-GELU MLP, biases); the
// block options give the Llama family's (RMSNorm, rotary positions, SwiGLU MLP, grouped-query
// attention, no biases; Qwen2: q/k/v biases). Every parameter lives in one (P,) tensor;
// `gpt_param_table` gives each one's GPT-2-style name, offset, shape and whether AdamW
// decays it. Weights are stored (out, in), as nn.Linear and llm.c do, so every projection is
// x · Wᵀ (the GEMM layout measured fastest in docs/benchmarks.md); checkpoints say so in
// their metadata.
#pragma once

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "rlhf/core/config.hpp"
#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/shape.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// Normalisation of the blocks and of the final hidden state.
enum class norm_type {
  layernorm,  ///< (x - mean) / sqrt(var + eps) · weight + bias (GPT-2).
  rmsnorm     ///< x / sqrt(mean(x²) + eps) · weight, no bias (Zhang & Sennrich 2019; Llama).
};
/// How positions enter the model.
enum class position_type {
  learned,  ///< A (max_seq_len, C) table added to the token embeddings (wpe; GPT-2).
  rotary    ///< Rotary embeddings of q and k in every layer (Su et al. 2021; Llama), no wpe.
};
/// The MLP's nonlinearity.
enum class mlp_type {
  gelu_tanh,  ///< c_proj(gelu(c_fc x)), GELU's tanh approximation (GPT-2).
  swiglu      ///< c_proj(silu(gate x) ⊙ (up x)) (Shazeer 2020; Llama); c_fc packs [gate; up].
};
/// How the rotary frequencies are rescaled for long contexts (transformers' rope_scaling).
enum class rope_scaling_type {
  none,    ///< inv_freq_i = theta^(-2i/hs).
  linear,  ///< Every frequency divided by `factor` (positions interpolated).
  llama3   ///< Llama 3.1's: low frequencies / factor, high kept, a smooth ramp between.
};

}  // namespace model

/// The names of norm_type's values, as the JSON form of gpt_config writes them.
template <>
struct enum_names<model::norm_type> {
  /// Every value with its name, in declaration order.
  static constexpr std::array<enum_name<model::norm_type>, 2> values{{
      {model::norm_type::layernorm, "layernorm"},
      {model::norm_type::rmsnorm, "rmsnorm"},
  }};
};
static_assert(enum_table_covers<model::norm_type>(2));

/// The names of position_type's values, as the JSON form of gpt_config writes them.
template <>
struct enum_names<model::position_type> {
  /// Every value with its name, in declaration order.
  static constexpr std::array<enum_name<model::position_type>, 2> values{{
      {model::position_type::learned, "learned"},
      {model::position_type::rotary, "rotary"},
  }};
};
static_assert(enum_table_covers<model::position_type>(2));

/// The names of mlp_type's values, as the JSON form of gpt_config writes them.
template <>
struct enum_names<model::mlp_type> {
  /// Every value with its name, in declaration order.
  static constexpr std::array<enum_name<model::mlp_type>, 2> values{{
      {model::mlp_type::gelu_tanh, "gelu_tanh"},
      {model::mlp_type::swiglu, "swiglu"},
  }};
};
static_assert(enum_table_covers<model::mlp_type>(2));

/// The names of rope_scaling_type's values (transformers' rope_type, "none" for no scaling).
template <>
struct enum_names<model::rope_scaling_type> {
  /// Every value with its name, in declaration order.
  static constexpr std::array<enum_name<model::rope_scaling_type>, 3> values{{
      {model::rope_scaling_type::none, "none"},
      {model::rope_scaling_type::linear, "linear"},
      {model::rope_scaling_type::llama3, "llama3"},
  }};
};
static_assert(enum_table_covers<model::rope_scaling_type>(3));

namespace model {

/// Rotary position embedding parameters (used when position == rotary).
struct rope_config {
  float theta = 10000.0f;                               ///< Base of the frequencies (rope_theta).
  rope_scaling_type scaling = rope_scaling_type::none;  ///< Frequency rescaling.
  float factor = 1.0f;                                  ///< linear and llama3: the scale factor.
  float low_freq_factor = 1.0f;                         ///< llama3: low_freq_factor.
  float high_freq_factor = 4.0f;                        ///< llama3: high_freq_factor.
  index_t original_max_seq_len = 8192;  ///< llama3: original_max_position_embeddings.
  /// Same parameters.
  friend bool operator==(const rope_config&, const rope_config&) = default;
};

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
  // Block options: the defaults are GPT-2's.
  norm_type norm = norm_type::layernorm;            ///< Block and final normalisation.
  position_type position = position_type::learned;  ///< Learned table or rotary.
  mlp_type mlp = mlp_type::gelu_tanh;               ///< MLP nonlinearity.
  index_t n_kv_head = 0;   ///< Key/value heads (grouped-query attention); 0 = n_head.
  index_t mlp_hidden = 0;  ///< MLP hidden width; 0 = mlp_ratio · C.
  bool qkv_bias = true;    ///< attn.c_attn has a bias (GPT-2, Qwen2).
  bool proj_bias = true;   ///< attn.c_proj, mlp.c_fc and mlp.c_proj have biases (GPT-2).
  rope_config rope;        ///< Rotary parameters (position == rotary).

  /// Embedding rows in the arena: vocab_size rounded up to vocab_multiple. The padded rows
  /// are zero and are never read as outputs (logits cover the real vocabulary).
  [[nodiscard]] index_t padded_vocab_size() const {
    return (vocab_size + vocab_multiple - 1) / vocab_multiple * vocab_multiple;
  }
  /// Width of one attention head: C / n_head.
  [[nodiscard]] index_t head_dim() const { return n_embd / n_head; }
  /// Same sizes and options (models with equal configs have interchangeable activations).
  friend bool operator==(const gpt_config&, const gpt_config&) = default;
  /// MLP hidden width H: mlp_hidden, or mlp_ratio · C when that is 0.
  [[nodiscard]] index_t mlp_width() const {
    return mlp_hidden > 0 ? mlp_hidden : mlp_ratio * n_embd;
  }
  /// Key/value heads: n_kv_head, or n_head when that is 0.
  [[nodiscard]] index_t kv_heads() const { return n_kv_head > 0 ? n_kv_head : n_head; }
  /// Width of the keys (and of the values): kv_heads · head_dim.
  [[nodiscard]] index_t kv_width() const { return kv_heads() * head_dim(); }
  /// Width of c_attn's output, q | k | v: C + 2 · kv_width.
  [[nodiscard]] index_t qkv_width() const { return n_embd + 2 * kv_width(); }
  /// Width of c_fc's output: H, or 2H for SwiGLU (gate | up).
  [[nodiscard]] index_t fc_width() const {
    return mlp == mlp_type::swiglu ? 2 * mlp_width() : mlp_width();
  }
  /// True when positions come from the learned wpe table (GPT-2), false for rotary.
  [[nodiscard]] bool has_learned_positions() const { return position == position_type::learned; }

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
  /// MLP hidden width set explicitly (mlp_hidden): at most 2^20.
  static constexpr index_t max_mlp_hidden = index_t{1} << 20;
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
  /// layernorm_eps finite and > 0; n_kv_head 0 or a divisor of n_head, mlp_hidden in
  /// [0, max_mlp_hidden], an even head_dim for rotary positions, rope.theta > 1, rope.factor
  /// >= 1, for llama3 scaling high_freq_factor > low_freq_factor > 0 and
  /// original_max_seq_len >= 1, and the enums within their values.
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
    check_config(norm == norm_type::layernorm || norm == norm_type::rmsnorm, fn, "norm",
                 "layernorm or rmsnorm", static_cast<int>(norm));
    check_config(position == position_type::learned || position == position_type::rotary, fn,
                 "position", "learned or rotary", static_cast<int>(position));
    check_config(mlp == mlp_type::gelu_tanh || mlp == mlp_type::swiglu, fn, "mlp",
                 "gelu_tanh or swiglu", static_cast<int>(mlp));
    check_config(
        n_kv_head >= 0 && n_kv_head <= n_head && (n_kv_head == 0 || n_head % n_kv_head == 0), fn,
        "n_kv_head", rlhf::detail::concat("0 or a divisor of n_head = ", n_head), n_kv_head);
    check_config(mlp_hidden >= 0 && mlp_hidden <= max_mlp_hidden, fn, "mlp_hidden",
                 in(0, max_mlp_hidden) + " (0 = mlp_ratio · n_embd)", mlp_hidden);
    if (position == position_type::rotary) {
      check_config(head_dim() % 2 == 0, fn, "n_embd / n_head",
                   "even (rotary embeddings rotate pairs of channels)", head_dim());
      check_config(std::isfinite(rope.theta) && rope.theta > 1.0f, fn, "rope.theta",
                   "finite and > 1", rope.theta);
      check_config(rope.scaling == rope_scaling_type::none ||
                       rope.scaling == rope_scaling_type::linear ||
                       rope.scaling == rope_scaling_type::llama3,
                   fn, "rope.scaling", "none, linear or llama3", static_cast<int>(rope.scaling));
      if (rope.scaling != rope_scaling_type::none) {
        check_config(std::isfinite(rope.factor) && rope.factor >= 1.0f, fn, "rope.factor",
                     "finite and >= 1", rope.factor);
      }
      if (rope.scaling == rope_scaling_type::llama3) {
        check_config(std::isfinite(rope.low_freq_factor) && rope.low_freq_factor > 0.0f, fn,
                     "rope.low_freq_factor", "finite and > 0", rope.low_freq_factor);
        check_config(
            std::isfinite(rope.high_freq_factor) && rope.high_freq_factor > rope.low_freq_factor,
            fn, "rope.high_freq_factor", "finite and > rope.low_freq_factor",
            rope.high_freq_factor);
        check_config(rope.original_max_seq_len >= 1, fn, "rope.original_max_seq_len", ">= 1",
                     rope.original_max_seq_len);
      }
    }
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

/// The arena layout, in arena order: wte, wpe (learned positions only), then per layer
/// ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj, then ln_f and (untied only)
/// lm_head. Norm biases exist for LayerNorm only; linear biases as qkv_bias and proj_bias
/// say. c_attn's rows are q (C), k (kv_width), v (kv_width); SwiGLU's c_fc rows are gate (H)
/// then up (H).
inline std::vector<param_ref> gpt_param_table(const gpt_config& cfg) {
  cfg.validate();
  const index_t C = cfg.n_embd, V = cfg.padded_vocab_size(), H = cfg.mlp_width();
  const index_t QKV = cfg.qkv_width(), FC = cfg.fc_width();
  const bool ln_bias = cfg.norm == norm_type::layernorm;
  std::vector<param_ref> t;
  index_t offset = 0;
  auto add = [&](std::string name, shape s, bool decays) {
    t.push_back({std::move(name), offset, s, decays});
    offset = rlhf::detail::size_add<config_error>(offset, s.numel(), "gpt_param_table",
                                                  "the parameter count");
  };
  add("wte.weight", shape{V, C}, true);  // (V_padded, C) token embeddings
  if (cfg.has_learned_positions()) {
    add("wpe.weight", shape{cfg.max_seq_len, C}, true);  // (max_seq_len, C) positions
  }
  for (index_t l = 0; l < cfg.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    add(p + "ln_1.weight", shape{C}, false);
    if (ln_bias) add(p + "ln_1.bias", shape{C}, false);
    add(p + "attn.c_attn.weight", shape{QKV, C}, true);  // rows: q, k, v
    if (cfg.qkv_bias) add(p + "attn.c_attn.bias", shape{QKV}, false);
    add(p + "attn.c_proj.weight", shape{C, C}, true);
    if (cfg.proj_bias) add(p + "attn.c_proj.bias", shape{C}, false);
    add(p + "ln_2.weight", shape{C}, false);
    if (ln_bias) add(p + "ln_2.bias", shape{C}, false);
    add(p + "mlp.c_fc.weight", shape{FC, C}, true);  // SwiGLU: rows gate, up
    if (cfg.proj_bias) add(p + "mlp.c_fc.bias", shape{FC}, false);
    add(p + "mlp.c_proj.weight", shape{C, H}, true);
    if (cfg.proj_bias) add(p + "mlp.c_proj.bias", shape{C}, false);
  }
  add("ln_f.weight", shape{C}, false);
  if (ln_bias) add("ln_f.bias", shape{C}, false);
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

/// The entry named `name`, or null when the table has none (an absent bias).
inline const param_ref* find_param_if(const std::vector<param_ref>& table,
                                      const std::string& name) {
  for (const auto& p : table) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

/// The rotary inverse frequencies inv_freq_i, i < head_dim / 2, of a rotary config:
/// theta^(-2i/hs), rescaled as rope.scaling says (transformers' default, linear and llama3
/// rope types). Computed in double, rounded once.
inline std::vector<float> rope_inverse_frequencies(const gpt_config& cfg) {
  cfg.validate();
  const index_t hs = cfg.head_dim(), half = hs / 2;
  const rope_config& r = cfg.rope;
  std::vector<float> out(static_cast<std::size_t>(half));
  constexpr double two_pi = 6.283185307179586476925286766559;
  for (index_t i = 0; i < half; ++i) {
    double f = std::pow(static_cast<double>(r.theta),
                        -static_cast<double>(2 * i) / static_cast<double>(hs));
    if (r.scaling == rope_scaling_type::linear) {
      f /= r.factor;
    } else if (r.scaling == rope_scaling_type::llama3) {
      const double old_len = static_cast<double>(r.original_max_seq_len);
      const double low_wavelen = old_len / r.low_freq_factor;
      const double high_wavelen = old_len / r.high_freq_factor;
      const double wavelen = two_pi / f;
      if (wavelen > low_wavelen) {
        f /= r.factor;                       // low frequencies: interpolated
      } else if (wavelen >= high_wavelen) {  // between: a smooth ramp
        const double smooth = (old_len / wavelen - r.low_freq_factor) /
                              (r.high_freq_factor - r.low_freq_factor);
        f = (1.0 - smooth) * f / r.factor + smooth * f;
      }
    }
    out[static_cast<std::size_t>(i)] = static_cast<float>(f);
  }
  return out;
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
