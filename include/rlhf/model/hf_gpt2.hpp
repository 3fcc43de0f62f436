// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Hugging Face GPT-2 checkpoints (docs/models.md): a `GPT2LMHeadModel` folder, as
// transformers' save_pretrained writes it, into and out of the bundled GPT (model/gpt.hpp).
//
//   hf_gpt2_config(config_json, where)   GPT2Config -> gpt_config; config_error naming the
//                                        field for what the bundled model cannot compute
//   load_hf_gpt2_config(folder)          the same, from folder/config.json
//   load_hf_gpt2<B>(folder)              a gpt<B> from config.json + model.safetensors (or
//                                        model.safetensors.index.json and its shards)
//   load_hf_gpt2(folder, m)              fills an existing gpt<B> of the folder's config
//   save_hf_gpt2(m, folder, dtype)       config.json + model.safetensors, each atomically
//
// Layout: transformers' GPT-2 uses Conv1D, whose weights are stored (in, out); the arena
// stores (out, in) (config.hpp), so c_attn, c_proj and c_fc weights are transposed both
// ways. Tensor names are read with or without the "transformer." prefix and written with
// it, as save_pretrained does; a tied "lm_head.weight" is not written (save_pretrained drops
// tied weights) and, when a file has one, must equal wte. wte holds vocab_size rows in the
// file and padded_vocab_size() in the arena: the padded rows load as zero and are not saved.
// The causal-mask buffers "h.<l>.attn.bias" / "h.<l>.attn.masked_bias" of old checkpoints
// are ignored. BF16 and F16 tensors are widened to float32 on load; save writes F32, BF16
// or F16 (rounded to nearest even).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <sstream>
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

namespace hf_gpt2_detail {

using rlhf::detail::concat;
using rlhf::detail::json_excerpt;

using hf_detail::config_file;
using hf_detail::index_file;
using hf_detail::weights_file;
inline constexpr std::string_view prefix = "transformer.";

/// `h.<digits>.attn.bias` / `h.<digits>.attn.masked_bias`: the causal-mask buffers.
inline bool is_mask_buffer(std::string_view name) {
  if (!name.starts_with("h.")) return false;
  std::size_t i = 2;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') ++i;
  if (i == 2 || i >= name.size() || name[i] != '.') return false;
  const std::string_view rest = name.substr(i + 1);
  return rest == "attn.bias" || rest == "attn.masked_bias";
}

/// Conv1D weights ((in, out) in the file, (out, in) in the arena).
inline bool is_conv1d(std::string_view name) {
  return name.ends_with("attn.c_attn.weight") || name.ends_with("attn.c_proj.weight") ||
         name.ends_with("mlp.c_fc.weight") || name.ends_with("mlp.c_proj.weight");
}

/// Every tensor of the folder's checkpoint, keyed by its name without "transformer.".
inline std::map<std::string, named_tensor> read_tensors(const std::filesystem::path& folder) {
  return hf_detail::read_tensors(folder, "load_hf_gpt2", prefix);
}

/// The host arena of `cfg` from the folder's tensors (padded wte rows zero).
inline std::vector<float> arena_from(const gpt_config& cfg, const std::vector<param_ref>& table,
                                     std::map<std::string, named_tensor> tensors,
                                     const std::filesystem::path& folder) {
  constexpr const char* fn = "load_hf_gpt2";
  const auto fail = [&](const auto&... parts) {
    throw io_error(concat(fn, ": ", folder.string(), ": ", parts...));
  };
  std::vector<float> arena(static_cast<std::size_t>(gpt_num_params(cfg)), 0.0f);
  for (const auto& p : table) {
    const auto it = tensors.find(p.name);
    if (it == tensors.end()) fail("tensor '", p.name, "' is missing");
    const named_tensor& t = it->second;
    // The file's shape: Conv1D weights transposed, embeddings of the real vocabulary.
    shape want = p.dims;
    const bool conv = is_conv1d(p.name);
    if (conv) want = shape{p.dims[1], p.dims[0]};
    if (p.name == "wte.weight" || p.name == "lm_head.weight") {
      want = shape{cfg.vocab_size, p.dims[1]};
    }
    if (!(t.shape == want)) {
      fail("tensor '", t.name, "' has shape ", t.shape.str(), ", expected ", want.str());
    }
    float* dst = arena.data() + p.offset;
    if (conv) {
      const index_t in = want[0], out = want[1];  // file (in, out) -> arena (out, in)
      for (index_t i = 0; i < in; ++i) {
        for (index_t o = 0; o < out; ++o)
          dst[o * in + i] = t.data[static_cast<std::size_t>(i * out + o)];
      }
    } else {
      std::copy(t.data.begin(), t.data.end(), dst);
    }
    tensors.erase(it);
  }
  if (cfg.tie_embeddings) {
    if (const auto it = tensors.find("lm_head.weight"); it != tensors.end()) {
      const auto& wte = find_param(table, "wte.weight");
      const named_tensor& t = it->second;
      const auto n = static_cast<std::size_t>(cfg.vocab_size * cfg.n_embd);
      // Values compared as floats: a BF16 head equals a BF16 wte.
      const bool same = t.shape == shape{cfg.vocab_size, cfg.n_embd} &&
                        std::equal(t.data.begin(), t.data.end(), arena.begin() + wte.offset,
                                   arena.begin() + wte.offset + static_cast<std::ptrdiff_t>(n));
      if (!same) {
        fail("tensor '", t.name, "' differs from wte.weight, but config.json ties them ",
             "(tie_word_embeddings true): the checkpoint's head would be dropped");
      }
      tensors.erase(it);
    }
  }
  for (const auto& [name, t] : tensors) {
    if (!is_mask_buffer(name)) {
      fail("tensor '", t.name, "' is not a parameter of GPT2LMHeadModel with this config");
    }
  }
  return arena;
}

/// The arena entry names in the names transformers' save_pretrained writes.
inline std::string hf_name(const std::string& name) {
  return name == "lm_head.weight" ? name : std::string(prefix) + name;
}

}  // namespace hf_gpt2_detail

/// The gpt_config of a GPT2Config (`config_json`, the parsed config.json; `where` names it in
/// messages). Fields: vocab_size, n_positions (-> max_seq_len), n_layer, n_head, n_embd,
/// n_inner (null = 4·n_embd; else a multiple of n_embd -> mlp_ratio), layer_norm_epsilon,
/// tie_word_embeddings, and resid_pdrop = embd_pdrop = attn_pdrop (-> dropout); a missing
/// field takes GPT2Config's default. What the bundled model cannot compute is a config_error
/// naming the field and its value: model_type other than "gpt2", architectures other than
/// GPT2LMHeadModel / GPT2Model, activation_function other than the tanh GELU ("gelu_new",
/// "gelu_pytorch_tanh"), scale_attn_weights false, scale_attn_by_inverse_layer_idx true,
/// add_cross_attention true, unequal dropout probabilities. reorder_and_upcast_attn only
/// changes how half-precision attention is computed, and is accepted (the bundled model
/// computes in float32). Other fields (token ids, summary_*, use_cache, ...) are ignored.
/// vocab_multiple keeps gpt_config's default; the result is validate()d.
[[nodiscard]] inline gpt_config hf_gpt2_config(const nlohmann::json& config_json,
                                               std::string_view where) {
  const auto& j = config_json;
  if (!j.is_object()) {
    throw config_error(rlhf::detail::concat("hf_gpt2_config: ", where,
                                            ": expected a JSON object, got ",
                                            rlhf::detail::json_excerpt(j)));
  }
  const hf_detail::config_reader r{j, "hf_gpt2_config", where};
  r.require_one_of("model_type", {"gpt2"}, "a GPT-2 config");
  r.require_architectures({"GPT2LMHeadModel", "GPT2Model"});
  r.require_one_of("activation_function", {"gelu_new", "gelu_pytorch_tanh"},
                   "the bundled model's GELU is the tanh approximation");
  r.require_bool("scale_attn_weights", true, true,
                 "the bundled attention always scales by 1/sqrt(head_dim)");
  r.require_bool("scale_attn_by_inverse_layer_idx", false, false,
                 "not supported by the bundled attention");
  r.require_bool("add_cross_attention", false, false,
                 "the bundled model is a decoder without cross-attention");
  (void)r.get_bool("reorder_and_upcast_attn", false);

  constexpr index_t big = std::numeric_limits<index_t>::max();
  gpt_config c;
  c.vocab_size = r.get_int("vocab_size", 50257, 1, big);
  c.max_seq_len = r.get_int("n_positions", 1024, 1, big);
  c.n_layer = r.get_int("n_layer", 12, 1, big);
  c.n_head = r.get_int("n_head", 12, 1, big);
  c.n_embd = r.get_int("n_embd", 768, 1, gpt_config::max_n_embd);
  c.mlp_ratio = 4;
  if (r.has("n_inner")) {
    const index_t inner = r.get_int("n_inner", 0, 1, big);
    if (inner % c.n_embd != 0) {
      r.fail("n_inner",
             rlhf::detail::concat("must be null or a multiple of n_embd = ", c.n_embd,
                                  " (the bundled MLP width is mlp_ratio · n_embd)"),
             j.at("n_inner"));
    }
    c.mlp_ratio = inner / c.n_embd;
  }
  c.layernorm_eps = r.get_float("layer_norm_epsilon", 1e-5f);
  c.tie_embeddings = r.get_bool("tie_word_embeddings", true);
  const float resid = r.get_float("resid_pdrop", 0.1f);
  for (const char* k : {"embd_pdrop", "attn_pdrop"}) {
    if (r.get_float(k, 0.1f) != resid) {
      r.fail(k,
             rlhf::detail::concat("must equal resid_pdrop = ", resid,
                                  " (the bundled model has one dropout probability)"),
             j.at(k));
    }
  }
  c.dropout = resid;
  c.validate();
  return c;
}

/// The gpt_config of `folder`/config.json (hf_gpt2_config; io_error when the file is missing
/// or not JSON).
[[nodiscard]] inline gpt_config load_hf_gpt2_config(const std::filesystem::path& folder) {
  return hf_gpt2_config(hf_detail::read_config(folder, "load_hf_gpt2"),
                        (folder / hf_detail::config_file).string());
}

/// Fills `m` from the Hugging Face GPT-2 folder: config.json must describe m's model
/// (vocab_multiple aside, which is the arena's choice), else config_error naming the first
/// differing field; the weights come from model.safetensors, or from the shards that
/// model.safetensors.index.json lists. A missing tensor, one of another shape, an extra one
/// (other than the attention-mask buffers), a tied lm_head.weight that differs from wte, or
/// a shard holding tensors the index does not map to it is an io_error naming the tensor.
template <class B>
void load_hf_gpt2(const std::filesystem::path& folder, gpt<B>& m) {
  gpt_config cfg = load_hf_gpt2_config(folder);
  cfg.vocab_multiple = m.config().vocab_multiple;
  if (!(cfg == m.config())) {
    const gpt_config& mc = m.config();
    const auto field = [&]() -> std::string {
      using rlhf::detail::concat;
      const auto diff = [](const char* k, const auto& a, const auto& b) {
        return concat(k, " (folder ", a, ", model ", b, ")");
      };
      if (cfg.vocab_size != mc.vocab_size) return diff("vocab_size", cfg.vocab_size, mc.vocab_size);
      if (cfg.max_seq_len != mc.max_seq_len)
        return diff("max_seq_len", cfg.max_seq_len, mc.max_seq_len);
      if (cfg.n_layer != mc.n_layer) return diff("n_layer", cfg.n_layer, mc.n_layer);
      if (cfg.n_head != mc.n_head) return diff("n_head", cfg.n_head, mc.n_head);
      if (cfg.n_embd != mc.n_embd) return diff("n_embd", cfg.n_embd, mc.n_embd);
      if (cfg.mlp_ratio != mc.mlp_ratio) return diff("mlp_ratio", cfg.mlp_ratio, mc.mlp_ratio);
      if (cfg.tie_embeddings != mc.tie_embeddings) {
        return diff("tie_embeddings", cfg.tie_embeddings, mc.tie_embeddings);
      }
      if (cfg.dropout != mc.dropout) return diff("dropout", cfg.dropout, mc.dropout);
      return diff("layernorm_eps", cfg.layernorm_eps, mc.layernorm_eps);
    }();
    throw config_error(rlhf::detail::concat("load_hf_gpt2: ", folder.string(),
                                            ": config.json differs from the model's config in ",
                                            field));
  }
  const auto arena = hf_gpt2_detail::arena_from(cfg, m.table(),
                                                hf_gpt2_detail::read_tensors(folder), folder);
  ops::copy_from_host<B>(std::span<const float>(arena), m.params());
}

/// A new `gpt<B>` (trainable unless `trainable` is false) of the folder's config, filled from
/// its weights: see load_hf_gpt2(folder, m). `vocab_multiple` pads the embedding rows.
template <class B>
[[nodiscard]] gpt<B> load_hf_gpt2(const std::filesystem::path& folder, bool trainable = true,
                                  index_t vocab_multiple = gpt_config{}.vocab_multiple) {
  gpt_config cfg = load_hf_gpt2_config(folder);
  cfg.vocab_multiple = vocab_multiple;
  cfg.validate();
  gpt<B> m(cfg, trainable);
  const auto arena = hf_gpt2_detail::arena_from(cfg, m.table(),
                                                hf_gpt2_detail::read_tensors(folder), folder);
  ops::copy_from_host<B>(std::span<const float>(arena), m.params());
  return m;
}

/// The config.json of `cfg` as transformers writes it for GPT2LMHeadModel (model_type gpt2,
/// the fields hf_gpt2_config reads; torch_dtype names `dtype`).
[[nodiscard]] inline nlohmann::json hf_gpt2_config_json(const gpt_config& cfg,
                                                        tensor_dtype dtype = tensor_dtype::f32) {
  const double p = hf_detail::short_double(cfg.dropout);
  return nlohmann::json{{"activation_function", "gelu_new"},
                        {"add_cross_attention", false},
                        {"architectures", nlohmann::json::array({"GPT2LMHeadModel"})},
                        {"attn_pdrop", p},
                        {"embd_pdrop", p},
                        {"layer_norm_epsilon", hf_detail::short_double(cfg.layernorm_eps)},
                        {"model_type", "gpt2"},
                        {"n_embd", cfg.n_embd},
                        {"n_head", cfg.n_head},
                        {"n_inner", cfg.mlp_width()},
                        {"n_layer", cfg.n_layer},
                        {"n_positions", cfg.max_seq_len},
                        {"reorder_and_upcast_attn", false},
                        {"resid_pdrop", p},
                        {"scale_attn_by_inverse_layer_idx", false},
                        {"scale_attn_weights", true},
                        {"tie_word_embeddings", cfg.tie_embeddings},
                        {"torch_dtype", hf_detail::torch_dtype_name(dtype)},
                        {"vocab_size", cfg.vocab_size}};
}

/// Writes `m` as a Hugging Face GPT-2 folder that `GPT2LMHeadModel.from_pretrained(folder)`
/// loads: config.json (hf_gpt2_config_json) and model.safetensors (metadata {"format": "pt"};
/// names `transformer.<name>`, Conv1D weights (in, out), wte of vocab_size rows, no
/// lm_head.weight when tied; values in `dtype`: F32, BF16 or F16, rounded to nearest even).
/// The folder is created if needed; each file is written atomically (a temporary file
/// renamed over it). config_error for dtype I32; io_error when a file cannot be written.
template <class B>
void save_hf_gpt2(const gpt<B>& m, const std::filesystem::path& folder,
                  tensor_dtype dtype = tensor_dtype::f32) {
  namespace d = hf_gpt2_detail;
  if (dtype == tensor_dtype::i32) {
    throw config_error("save_hf_gpt2: dtype must be F32, BF16 or F16, got I32");
  }
  const gpt_config& cfg = m.config();
  std::vector<float> arena(static_cast<std::size_t>(m.num_params()));
  ops::copy_to_host<B>(m.params(), std::span<float>(arena));
  std::vector<named_tensor> tensors;
  tensors.reserve(m.table().size());
  for (const auto& p : m.table()) {
    named_tensor t;
    t.name = d::hf_name(p.name);
    t.dtype = dtype;
    const float* src = arena.data() + p.offset;
    if (d::is_conv1d(p.name)) {
      const index_t out = p.dims[0], in = p.dims[1];  // arena (out, in) -> file (in, out)
      t.shape = shape{in, out};
      t.data.resize(static_cast<std::size_t>(p.size()));
      for (index_t o = 0; o < out; ++o) {
        for (index_t i = 0; i < in; ++i)
          t.data[static_cast<std::size_t>(i * out + o)] = src[o * in + i];
      }
    } else if (p.name == "wte.weight" || p.name == "lm_head.weight") {
      t.shape = shape{cfg.vocab_size, cfg.n_embd};
      t.data.assign(src, src + cfg.vocab_size * cfg.n_embd);
    } else {
      t.shape = p.dims;
      t.data.assign(src, src + p.size());
    }
    tensors.push_back(std::move(t));
  }
  hf_detail::write_folder(folder, tensors, hf_gpt2_config_json(cfg, dtype), "save_hf_gpt2");
}

}  // namespace model
}  // namespace v0
}  // namespace rlhf
