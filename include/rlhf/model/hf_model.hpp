// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Any supported Hugging Face causal-LM folder (docs/models.md): the architecture named by
// config.json's model_type picks the reader, GPT-2 (model/hf_gpt2.hpp) or the Llama family
// (model/hf_llama.hpp), and the model's blocks pick the writer.
//
//   hf_architecture_of(folder)        gpt2, llama or qwen2; config_error for anything else
//   load_hf_config(folder)            the folder's gpt_config
//   load_hf_model<B>(folder)          a gpt<B> of it, filled from its weights
//   save_hf_model(m, folder, dtype)   save_pretrained's layout, loadable by transformers'
//                                     AutoModelForCausalLM
#pragma once

#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <system_error>

#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/config.hpp"
#include "rlhf/model/detail/hf_folder.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/hf_gpt2.hpp"
#include "rlhf/model/hf_llama.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// The Hugging Face architectures the bundled model reads and writes.
enum class hf_architecture {
  gpt2,   ///< GPT2LMHeadModel (model_type "gpt2").
  llama,  ///< LlamaForCausalLM (model_type "llama").
  qwen2   ///< Qwen2ForCausalLM (model_type "qwen2").
};

}  // namespace model

/// The model_type strings of the Hugging Face architectures.
template <>
struct enum_names<model::hf_architecture> {
  /// Every architecture with its model_type, in declaration order.
  static constexpr std::array<enum_name<model::hf_architecture>, 3> values{{
      {model::hf_architecture::gpt2, "gpt2"},
      {model::hf_architecture::llama, "llama"},
      {model::hf_architecture::qwen2, "qwen2"},
  }};
};
static_assert(enum_table_covers<model::hf_architecture>(3));

namespace model {

/// The architecture's model_type string.
[[nodiscard]] inline const char* to_string(hf_architecture a) { return rlhf::to_string(a).data(); }

/// True when `folder` holds a config.json (a Hugging Face model folder, as opposed to one of
/// the bundled model's own checkpoint files).
[[nodiscard]] inline bool is_hf_model_folder(const std::filesystem::path& folder) {
  std::error_code ec;
  return std::filesystem::is_directory(folder, ec) &&
         std::filesystem::is_regular_file(folder / hf_detail::config_file, ec);
}

namespace hf_model_detail {
/// The architecture a parsed config.json names: model_type, else its first architecture.
inline hf_architecture architecture_of(const nlohmann::json& j, std::string_view where) {
  const hf_detail::config_reader r{j, "hf_architecture_of", where};
  if (!j.is_object()) r.fail("(root)", "must be a JSON object", j);
  std::string type;
  if (r.has("model_type")) {
    r.require_one_of("model_type", {"gpt2", "llama", "qwen2"},
                     "the architectures the bundled model computes");
    type = j.at("model_type").get<std::string>();
  } else {
    r.require_architectures({"GPT2LMHeadModel", "LlamaForCausalLM", "Qwen2ForCausalLM"});
    if (!r.has("architectures") || j.at("architectures").empty()) {
      r.fail("model_type", R"(must be given ("gpt2", "llama" or "qwen2"))", nlohmann::json());
    }
    const std::string a = j.at("architectures").at(0).get<std::string>();
    type = a == "GPT2LMHeadModel" ? "gpt2" : a == "LlamaForCausalLM" ? "llama" : "qwen2";
  }
  return type == "gpt2"    ? hf_architecture::gpt2
         : type == "llama" ? hf_architecture::llama
                           : hf_architecture::qwen2;
}
}  // namespace hf_model_detail

/// The architecture of `folder`/config.json; config_error naming model_type for one the
/// bundled model does not compute, io_error when the file is missing or not JSON.
[[nodiscard]] inline hf_architecture hf_architecture_of(const std::filesystem::path& folder) {
  return hf_model_detail::architecture_of(hf_detail::read_config(folder, "hf_architecture_of"),
                                          (folder / hf_detail::config_file).string());
}

/// The gpt_config of the folder (hf_gpt2_config or hf_llama_config, as model_type says).
[[nodiscard]] inline gpt_config load_hf_config(const std::filesystem::path& folder) {
  return hf_architecture_of(folder) == hf_architecture::gpt2 ? load_hf_gpt2_config(folder)
                                                             : load_hf_llama_config(folder);
}

/// A new `gpt<B>` of the folder's config filled from its weights (load_hf_gpt2 or
/// load_hf_llama, as model_type says).
template <class B>
[[nodiscard]] gpt<B> load_hf_model(const std::filesystem::path& folder, bool trainable = true,
                                   index_t vocab_multiple = gpt_config{}.vocab_multiple) {
  if (hf_architecture_of(folder) == hf_architecture::gpt2) {
    return load_hf_gpt2<B>(folder, trainable, vocab_multiple);
  }
  return load_hf_llama<B>(folder, trainable, vocab_multiple);
}

/// The architecture save_hf_model writes for `cfg`: GPT-2 for GPT-2's blocks (LayerNorm,
/// learned positions, GELU, biases), Llama or Qwen2 for the Llama blocks (Qwen2 when only
/// q/k/v have biases); config_error for a mix no Hugging Face architecture here holds.
[[nodiscard]] inline hf_architecture hf_architecture_for(const gpt_config& cfg) {
  const bool gpt2_blocks = cfg.norm == norm_type::layernorm &&
                           cfg.position == position_type::learned &&
                           cfg.mlp == mlp_type::gelu_tanh && cfg.qkv_bias && cfg.proj_bias &&
                           cfg.kv_heads() == cfg.n_head && cfg.mlp_width() % cfg.n_embd == 0;
  if (gpt2_blocks) return hf_architecture::gpt2;
  const bool llama_blocks = cfg.norm == norm_type::rmsnorm &&
                            cfg.position == position_type::rotary && cfg.mlp == mlp_type::swiglu;
  if (!llama_blocks) {
    throw config_error(
        "hf_architecture_for: the config mixes GPT-2 and Llama blocks (norm, position, mlp, "
        "biases, n_kv_head), which no supported Hugging Face architecture holds");
  }
  return default_hf_llama_family(cfg) == hf_llama_family::qwen2 ? hf_architecture::qwen2
                                                                : hf_architecture::llama;
}

/// Writes `m` in save_pretrained's layout (config.json + model.safetensors, each atomically)
/// as the architecture hf_architecture_for(m.config()) names; values in `dtype` (F32, BF16,
/// F16).
template <class B>
void save_hf_model(const gpt<B>& m, const std::filesystem::path& folder,
                   tensor_dtype dtype = tensor_dtype::f32) {
  const hf_architecture a = hf_architecture_for(m.config());
  if (a == hf_architecture::gpt2) {
    save_hf_gpt2(m, folder, dtype);
  } else {
    save_hf_llama(m, folder,
                  a == hf_architecture::qwen2 ? hf_llama_family::qwen2 : hf_llama_family::llama,
                  dtype);
  }
}

}  // namespace model
}  // namespace v0
}  // namespace rlhf
