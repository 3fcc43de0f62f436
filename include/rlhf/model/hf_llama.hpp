// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Hugging Face Llama-family checkpoints (docs/models.md): `LlamaForCausalLM` and
// `Qwen2ForCausalLM` folders, as transformers' save_pretrained writes them, into and out of
// the bundled decoder (model/gpt.hpp) configured with the Llama blocks: RMSNorm, rotary
// positions, SwiGLU MLP, grouped-query attention, no biases except Qwen2's q/k/v.
//
//   hf_llama_config(config_json, where)   LlamaConfig / Qwen2Config -> gpt_config;
//                                         config_error naming the field for what the bundled
//                                         model cannot compute
//   load_hf_llama<B>(folder)              a gpt<B> from config.json + model.safetensors (or
//                                         model.safetensors.index.json and its shards)
//   save_hf_llama(m, folder, dtype)       config.json + model.safetensors, each atomically
//   hf_llama_tensor_map(cfg)              the one table of names and layouts both use
//
// Layout: transformers keeps q_proj, k_proj and v_proj (and gate_proj, up_proj) as separate
// nn.Linear weights, (out, in) like the arena; the arena packs them into c_attn's rows
// [q; k; v] and c_fc's rows [gate; up], so one GEMM computes each. embed_tokens holds
// vocab_size rows in the file and padded_vocab_size() in the arena (padded rows load as zero,
// are not saved). A tied lm_head.weight need not be in the file; when it is, it must equal
// embed_tokens. rotary_emb.inv_freq buffers of old checkpoints are ignored (the frequencies
// come from the config).
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/config.hpp"
#include "rlhf/model/detail/hf_folder.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/safetensors.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// The Hugging Face architectures hf_llama.hpp reads and writes.
enum class hf_llama_family {
  llama,  ///< LlamaForCausalLM (model_type "llama"; SmolLM, TinyLlama, Llama 2/3).
  qwen2   ///< Qwen2ForCausalLM (model_type "qwen2"; Qwen2, Qwen2.5): q/k/v biases.
};

/// One tensor of a Hugging Face Llama-family file and where it lives in the arena: rows
/// [row0, row0 + rows) of arena parameter `arena_name` (a bias: elements), each of `cols`
/// columns (0 for a 1-D tensor).
struct hf_tensor_slot {
  std::string hf_name;     ///< The name in the file, e.g. "model.layers.0.self_attn.k_proj.weight".
  std::string arena_name;  ///< The arena parameter, e.g. "h.0.attn.c_attn.weight".
  index_t row0 = 0;        ///< First row (element, for 1-D) inside the arena parameter.
  index_t rows = 0;        ///< Rows in the file (elements, for 1-D).
  index_t cols = 0;        ///< Columns; 0 for a 1-D tensor.
  /// The tensor's shape in the file.
  [[nodiscard]] shape file_shape() const { return cols == 0 ? shape{rows} : shape{rows, cols}; }
};

/// The names and layouts of a Llama-family checkpoint of `cfg`, in the arena's order: the
/// one table load_hf_llama and save_hf_llama both read. config_error unless cfg has the
/// Llama blocks (rmsnorm, rotary, swiglu).
inline std::vector<hf_tensor_slot> hf_llama_tensor_map(const gpt_config& cfg) {
  cfg.validate();
  if (cfg.norm != norm_type::rmsnorm || cfg.position != position_type::rotary ||
      cfg.mlp != mlp_type::swiglu) {
    throw config_error(
        "hf_llama_tensor_map: the config must have the Llama blocks (norm rmsnorm, position "
        "rotary, mlp swiglu)");
  }
  const index_t C = cfg.n_embd, KV = cfg.kv_width(), H = cfg.mlp_width(), V = cfg.vocab_size;
  std::vector<hf_tensor_slot> t;
  t.push_back({"model.embed_tokens.weight", "wte.weight", 0, V, C});
  for (index_t l = 0; l < cfg.n_layer; ++l) {
    const std::string h = "model.layers." + std::to_string(l) + ".";
    const std::string a = "h." + std::to_string(l) + ".";
    t.push_back({h + "input_layernorm.weight", a + "ln_1.weight", 0, C, 0});
    t.push_back({h + "self_attn.q_proj.weight", a + "attn.c_attn.weight", 0, C, C});
    t.push_back({h + "self_attn.k_proj.weight", a + "attn.c_attn.weight", C, KV, C});
    t.push_back({h + "self_attn.v_proj.weight", a + "attn.c_attn.weight", C + KV, KV, C});
    if (cfg.qkv_bias) {
      t.push_back({h + "self_attn.q_proj.bias", a + "attn.c_attn.bias", 0, C, 0});
      t.push_back({h + "self_attn.k_proj.bias", a + "attn.c_attn.bias", C, KV, 0});
      t.push_back({h + "self_attn.v_proj.bias", a + "attn.c_attn.bias", C + KV, KV, 0});
    }
    t.push_back({h + "self_attn.o_proj.weight", a + "attn.c_proj.weight", 0, C, C});
    if (cfg.proj_bias) t.push_back({h + "self_attn.o_proj.bias", a + "attn.c_proj.bias", 0, C, 0});
    t.push_back({h + "post_attention_layernorm.weight", a + "ln_2.weight", 0, C, 0});
    t.push_back({h + "mlp.gate_proj.weight", a + "mlp.c_fc.weight", 0, H, C});
    t.push_back({h + "mlp.up_proj.weight", a + "mlp.c_fc.weight", H, H, C});
    if (cfg.proj_bias) {
      t.push_back({h + "mlp.gate_proj.bias", a + "mlp.c_fc.bias", 0, H, 0});
      t.push_back({h + "mlp.up_proj.bias", a + "mlp.c_fc.bias", H, H, 0});
    }
    t.push_back({h + "mlp.down_proj.weight", a + "mlp.c_proj.weight", 0, C, H});
    if (cfg.proj_bias) t.push_back({h + "mlp.down_proj.bias", a + "mlp.c_proj.bias", 0, C, 0});
  }
  t.push_back({"model.norm.weight", "ln_f.weight", 0, C, 0});
  if (!cfg.tie_embeddings) t.push_back({"lm_head.weight", "lm_head.weight", 0, V, C});
  return t;
}

namespace hf_llama_detail {

using rlhf::detail::concat;

/// `model.layers.<digits>.self_attn.rotary_emb.inv_freq`: a buffer of old checkpoints.
inline bool is_rotary_buffer(std::string_view name) {
  return name.starts_with("model.layers.") && name.ends_with(".self_attn.rotary_emb.inv_freq");
}

/// The family a parsed config.json names (model_type, else architectures).
inline hf_llama_family family_of(const nlohmann::json& j, std::string_view where) {
  const hf_detail::config_reader r{j, "hf_llama_config", where};
  r.require_one_of("model_type", {"llama", "qwen2"}, "a Llama-family config");
  if (r.has("model_type")) {
    return j.at("model_type") == "qwen2" ? hf_llama_family::qwen2 : hf_llama_family::llama;
  }
  r.require_architectures({"LlamaForCausalLM", "Qwen2ForCausalLM"});
  if (!r.has("architectures") || j.at("architectures").empty()) {
    r.fail("model_type", R"(must be given ("llama" or "qwen2"))", nlohmann::json());
  }
  return j.at("architectures").at(0) == "Qwen2ForCausalLM" ? hf_llama_family::qwen2
                                                           : hf_llama_family::llama;
}

}  // namespace hf_llama_detail

/// The gpt_config of a LlamaConfig or Qwen2Config (`config_json`, the parsed config.json;
/// `where` names it in messages). Fields: vocab_size, hidden_size (C), intermediate_size
/// (mlp_hidden), num_hidden_layers, num_attention_heads, num_key_value_heads (default: the
/// attention heads), max_position_embeddings (max_seq_len), rms_norm_eps, rope_theta,
/// rope_scaling (null, or rope_type / type "default", "linear" with factor, "llama3" with
/// factor, low_freq_factor, high_freq_factor, original_max_position_embeddings),
/// tie_word_embeddings (default false), attention_bias and mlp_bias (Llama; both false, or
/// both true), head_dim (must be hidden_size / num_attention_heads). Qwen2 has q/k/v biases
/// and no others. What the bundled model cannot compute is a config_error naming the field:
/// hidden_act other than "silu", another rope type, attention_dropout > 0, Qwen2's
/// use_sliding_window true, attention_bias without mlp_bias (or the reverse). Fields that do
/// not change the function (token ids, initializer_range, pretraining_tp, use_cache,
/// torch_dtype, ...) are ignored. The result is validate()d.
[[nodiscard]] inline gpt_config hf_llama_config(const nlohmann::json& config_json,
                                                std::string_view where) {
  const auto& j = config_json;
  if (!j.is_object()) {
    throw config_error(rlhf::detail::concat("hf_llama_config: ", where,
                                            ": expected a JSON object, got ",
                                            rlhf::detail::json_excerpt(j)));
  }
  const hf_detail::config_reader r{j, "hf_llama_config", where};
  const hf_llama_family family = hf_llama_detail::family_of(j, where);
  const bool qwen2 = family == hf_llama_family::qwen2;
  r.require_architectures({"LlamaForCausalLM", "Qwen2ForCausalLM", "LlamaModel", "Qwen2Model"});
  r.require_one_of("hidden_act", {"silu"}, "the bundled SwiGLU uses SiLU");
  if (r.get_float("attention_dropout", 0.0f) != 0.0f) {
    r.fail("attention_dropout", "must be 0 (the bundled model has no attention-only dropout)",
           j.at("attention_dropout"));
  }
  constexpr index_t big = std::numeric_limits<index_t>::max();
  gpt_config c;
  c.norm = norm_type::rmsnorm;
  c.position = position_type::rotary;
  c.mlp = mlp_type::swiglu;
  c.dropout = 0.0f;
  c.vocab_size = r.get_int("vocab_size", 32000, 1, big);
  c.n_embd = r.get_int("hidden_size", 4096, 1, gpt_config::max_n_embd);
  c.mlp_hidden = r.get_int("intermediate_size", 11008, 1, gpt_config::max_mlp_hidden);
  c.n_layer = r.get_int("num_hidden_layers", 32, 1, big);
  c.n_head = r.get_int("num_attention_heads", 32, 1, big);
  c.n_kv_head = r.get_int("num_key_value_heads", c.n_head, 1, c.n_head);
  if (c.n_head % c.n_kv_head != 0) {
    r.fail("num_key_value_heads",
           rlhf::detail::concat("must divide num_attention_heads = ", c.n_head),
           j.at("num_key_value_heads"));
  }
  if (c.n_embd % c.n_head != 0) {
    r.fail("hidden_size",
           rlhf::detail::concat("must be a multiple of num_attention_heads = ", c.n_head),
           j.at("hidden_size"));
  }
  if (r.has("head_dim") && r.get_int("head_dim", 0, 1, big) != c.n_embd / c.n_head) {
    r.fail("head_dim",
           rlhf::detail::concat("must be hidden_size / num_attention_heads = ", c.n_embd / c.n_head,
                                " (the bundled attention's heads split the width)"),
           j.at("head_dim"));
  }
  c.max_seq_len = r.get_int("max_position_embeddings", qwen2 ? 32768 : 2048, 1,
                            gpt_config::max_max_seq_len);
  c.layernorm_eps = r.get_float("rms_norm_eps", 1e-6f);
  c.tie_embeddings = r.get_bool("tie_word_embeddings", false);
  c.rope.theta = r.get_float("rope_theta", 10000.0f);
  if (qwen2) {
    c.qkv_bias = true;
    c.proj_bias = false;
    r.require_bool("use_sliding_window", false, false,
                   "the bundled attention attends to the whole causal context");
  } else {
    const bool attention_bias = r.get_bool("attention_bias", false);
    const bool mlp_bias = r.get_bool("mlp_bias", false);
    if (attention_bias != mlp_bias) {
      const char* set = attention_bias ? "attention_bias" : "mlp_bias";
      r.fail(set,
             rlhf::detail::concat("must equal ", attention_bias ? "mlp_bias" : "attention_bias",
                                  " = false (the bundled model has biases on every projection "
                                  "or on none, or on q/k/v only as Qwen2)"),
             j.at(set));
    }
    c.qkv_bias = attention_bias;
    c.proj_bias = attention_bias;
  }
  if (r.has("rope_scaling")) {
    const auto& s = j.at("rope_scaling");
    if (!s.is_object()) r.fail("rope_scaling", "must be null or an object", s);
    const hf_detail::config_reader rs{s, "hf_llama_config", where};
    const char* type_key = rs.has("rope_type") ? "rope_type" : "type";
    rs.require_one_of(type_key, {"default", "linear", "llama3"},
                      "the rope types the bundled model computes");
    const std::string type = rs.has(type_key) ? s.at(type_key).get<std::string>() : "default";
    if (type == "linear" || type == "llama3") {
      c.rope.scaling = type == "linear" ? rope_scaling_type::linear : rope_scaling_type::llama3;
      if (!rs.has("factor"))
        rs.fail("factor", "must be given for this rope type", nlohmann::json());
      c.rope.factor = rs.get_float("factor", 1.0f);
    }
    if (type == "llama3") {
      c.rope.low_freq_factor = rs.get_float("low_freq_factor", 1.0f);
      c.rope.high_freq_factor = rs.get_float("high_freq_factor", 4.0f);
      c.rope.original_max_seq_len = rs.get_int("original_max_position_embeddings", 8192, 1, big);
    }
  }
  c.validate();
  return c;
}

/// The gpt_config of `folder`/config.json (hf_llama_config; io_error when the file is
/// missing or not JSON).
[[nodiscard]] inline gpt_config load_hf_llama_config(const std::filesystem::path& folder) {
  return hf_llama_config(hf_detail::read_config(folder, "load_hf_llama"),
                         (folder / hf_detail::config_file).string());
}

/// A new `gpt<B>` (trainable unless `trainable` is false) of the folder's config, filled from
/// its weights (model.safetensors, or the shards model.safetensors.index.json lists). A
/// missing tensor, one of another shape, an extra one (other than rotary_emb.inv_freq
/// buffers), or a tied lm_head.weight that differs from embed_tokens is an io_error naming
/// the tensor. `vocab_multiple` pads the embedding rows.
template <class B>
[[nodiscard]] gpt<B> load_hf_llama(const std::filesystem::path& folder, bool trainable = true,
                                   index_t vocab_multiple = gpt_config{}.vocab_multiple) {
  using rlhf::detail::concat;
  constexpr const char* fn = "load_hf_llama";
  gpt_config cfg = load_hf_llama_config(folder);
  cfg.vocab_multiple = vocab_multiple;
  cfg.validate();
  gpt<B> m(cfg, trainable);
  auto tensors = hf_detail::read_tensors(folder, fn, "");
  const auto fail = [&](const auto&... parts) {
    throw io_error(concat(fn, ": ", folder.string(), ": ", parts...));
  };
  std::vector<float> arena(static_cast<std::size_t>(m.num_params()), 0.0f);
  for (const auto& slot : hf_llama_tensor_map(cfg)) {
    const auto it = tensors.find(slot.hf_name);
    if (it == tensors.end()) fail("tensor '", slot.hf_name, "' is missing");
    const named_tensor& t = it->second;
    if (!(t.shape == slot.file_shape())) {
      fail("tensor '", t.name, "' has shape ", t.shape.str(), ", expected ",
           slot.file_shape().str());
    }
    const param_ref& p = find_param(m.table(), slot.arena_name);
    const index_t width = slot.cols == 0 ? 1 : slot.cols;
    std::copy(t.data.begin(), t.data.end(),
              arena.begin() + static_cast<std::ptrdiff_t>(p.offset + slot.row0 * width));
    tensors.erase(it);
  }
  if (cfg.tie_embeddings) {
    if (const auto it = tensors.find("lm_head.weight"); it != tensors.end()) {
      const auto& wte = find_param(m.table(), "wte.weight");
      const named_tensor& t = it->second;
      const auto n = static_cast<std::ptrdiff_t>(cfg.vocab_size * cfg.n_embd);
      const auto first = arena.begin() + static_cast<std::ptrdiff_t>(wte.offset);
      if (!(t.shape == shape{cfg.vocab_size, cfg.n_embd}) ||
          !std::equal(t.data.begin(), t.data.end(), first, first + n)) {
        fail(
            "tensor 'lm_head.weight' differs from model.embed_tokens.weight, but config.json "
            "ties them (tie_word_embeddings true): the checkpoint's head would be dropped");
      }
      tensors.erase(it);
    }
  }
  for (const auto& [name, t] : tensors) {
    if (!hf_llama_detail::is_rotary_buffer(name)) {
      fail("tensor '", name, "' is not a parameter of this Llama-family config");
    }
  }
  ops::copy_from_host<B>(std::span<const float>(arena), m.params());
  return m;
}

/// The config.json of `cfg` as transformers writes it for `family` (LlamaForCausalLM or
/// Qwen2ForCausalLM; torch_dtype names `dtype`). config_error when cfg lacks the Llama blocks
/// or has biases the family cannot hold (Qwen2: q/k/v only; Llama: all or none).
[[nodiscard]] inline nlohmann::json hf_llama_config_json(const gpt_config& cfg,
                                                         hf_llama_family family,
                                                         tensor_dtype dtype = tensor_dtype::f32) {
  (void)hf_llama_tensor_map(cfg);  // the Llama blocks
  const bool qwen2 = family == hf_llama_family::qwen2;
  if (qwen2 ? (!cfg.qkv_bias || cfg.proj_bias) : cfg.qkv_bias != cfg.proj_bias) {
    throw config_error(rlhf::detail::concat(
        "hf_llama_config_json: ", qwen2 ? "Qwen2" : "Llama", " checkpoints hold ",
        qwen2 ? "q/k/v biases and no others" : "all biases or none", "; the config has qkv_bias ",
        cfg.qkv_bias, " and proj_bias ", cfg.proj_bias));
  }
  using hf_detail::short_double;
  nlohmann::json rope_scaling;  // null unless scaled
  if (cfg.rope.scaling == rope_scaling_type::linear) {
    rope_scaling = {{"rope_type", "linear"}, {"factor", short_double(cfg.rope.factor)}};
  } else if (cfg.rope.scaling == rope_scaling_type::llama3) {
    rope_scaling = {{"rope_type", "llama3"},
                    {"factor", short_double(cfg.rope.factor)},
                    {"low_freq_factor", short_double(cfg.rope.low_freq_factor)},
                    {"high_freq_factor", short_double(cfg.rope.high_freq_factor)},
                    {"original_max_position_embeddings", cfg.rope.original_max_seq_len}};
  }
  nlohmann::json j{
      {"architectures", nlohmann::json::array({qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"})},
      {"attention_dropout", 0.0},
      {"hidden_act", "silu"},
      {"hidden_size", cfg.n_embd},
      {"intermediate_size", cfg.mlp_width()},
      {"max_position_embeddings", cfg.max_seq_len},
      {"model_type", qwen2 ? "qwen2" : "llama"},
      {"num_attention_heads", cfg.n_head},
      {"num_hidden_layers", cfg.n_layer},
      {"num_key_value_heads", cfg.kv_heads()},
      {"rms_norm_eps", short_double(cfg.layernorm_eps)},
      {"rope_scaling", rope_scaling},
      {"rope_theta", short_double(cfg.rope.theta)},
      {"tie_word_embeddings", cfg.tie_embeddings},
      {"torch_dtype", hf_detail::torch_dtype_name(dtype)},
      {"vocab_size", cfg.vocab_size}};
  if (qwen2) {
    j["use_sliding_window"] = false;
  } else {
    j["attention_bias"] = cfg.qkv_bias;
    j["mlp_bias"] = cfg.proj_bias;
  }
  return j;
}

/// The family save_hf_llama writes for `cfg` by default: Qwen2 when it has q/k/v biases and
/// no others, else Llama.
[[nodiscard]] inline hf_llama_family default_hf_llama_family(const gpt_config& cfg) {
  return cfg.qkv_bias && !cfg.proj_bias ? hf_llama_family::qwen2 : hf_llama_family::llama;
}

/// Writes `m` as a Hugging Face `family` folder that `AutoModelForCausalLM.from_pretrained`
/// loads: config.json (hf_llama_config_json) and model.safetensors (metadata
/// {"format": "pt"}; hf_llama_tensor_map's names and shapes; values in `dtype`: F32, BF16 or
/// F16, rounded to nearest even). Each file is written atomically. config_error for dtype I32
/// or a config the family cannot hold; io_error when a file cannot be written.
template <class B>
void save_hf_llama(const gpt<B>& m, const std::filesystem::path& folder, hf_llama_family family,
                   tensor_dtype dtype = tensor_dtype::f32) {
  if (dtype == tensor_dtype::i32) {
    throw config_error("save_hf_llama: dtype must be F32, BF16 or F16, got I32");
  }
  const gpt_config& cfg = m.config();
  const nlohmann::json config = hf_llama_config_json(cfg, family, dtype);
  std::vector<float> arena(static_cast<std::size_t>(m.num_params()));
  ops::copy_to_host<B>(m.params(), std::span<float>(arena));
  std::vector<named_tensor> tensors;
  for (const auto& slot : hf_llama_tensor_map(cfg)) {
    const param_ref& p = find_param(m.table(), slot.arena_name);
    const index_t width = slot.cols == 0 ? 1 : slot.cols;
    const float* src = arena.data() + p.offset + slot.row0 * width;
    named_tensor t;
    t.name = slot.hf_name;
    t.dtype = dtype;
    t.shape = slot.file_shape();
    t.data.assign(src, src + slot.rows * width);
    tensors.push_back(std::move(t));
  }
  hf_detail::write_folder(folder, tensors, config, "save_hf_llama");
}

/// The same in the family default_hf_llama_family(m.config()) names.
template <class B>
void save_hf_llama(const gpt<B>& m, const std::filesystem::path& folder,
                   tensor_dtype dtype = tensor_dtype::f32) {
  save_hf_llama(m, folder, default_hf_llama_family(m.config()), dtype);
}

}  // namespace model
}  // namespace v0
}  // namespace rlhf
