// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What every Hugging Face model folder reader shares (model/hf_gpt2.hpp, model/hf_llama.hpp):
// the file names of save_pretrained's layout, typed reads of config.json fields with errors
// naming the field, the folder's tensors from model.safetensors or a sharded index, and
// writing a folder (weights and config.json, each atomically).
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/atomic_file.hpp"
#include "rlhf/model/detail/json_bounded.hpp"
#include "rlhf/model/detail/text_file.hpp"
#include "rlhf/model/safetensors.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {
namespace hf_detail {

using rlhf::detail::concat;
using rlhf::detail::json_excerpt;

/// The file names of a Hugging Face model folder.
inline constexpr const char* config_file = "config.json";
inline constexpr const char* weights_file = "model.safetensors";
inline constexpr const char* index_file = "model.safetensors.index.json";

/// Typed reads of one config.json object; every error is a config_error
/// "<fn>: <where>: field '<k>' <why>, got <value>".
struct config_reader {
  const nlohmann::json& j;  ///< The parsed config.json.
  std::string_view fn;      ///< The reading function's name, for messages.
  std::string_view where;   ///< The file, for messages.

  [[noreturn]] void fail(std::string_view field, std::string_view why,
                         const nlohmann::json& v) const {
    throw config_error(
        concat(fn, ": ", where, ": field '", field, "' ", why, ", got ", json_excerpt(v)));
  }
  [[nodiscard]] bool has(const char* k) const { return j.contains(k) && !j.at(k).is_null(); }

  /// Integer field `k` (default `def` when absent or null) in [lo, hi].
  [[nodiscard]] std::int64_t get_int(const char* k, std::int64_t def, std::int64_t lo,
                                     std::int64_t hi) const {
    if (!has(k)) return def;
    const auto& v = j.at(k);
    if (!v.is_number_integer()) fail(k, "must be an integer", v);
    const bool too_big = v.is_number_unsigned() &&
                         v.get<std::uint64_t>() > static_cast<std::uint64_t>(hi < 0 ? 0 : hi);
    const std::int64_t x = too_big ? hi : v.get<std::int64_t>();
    if (too_big || x < lo || x > hi) fail(k, concat("must be in [", lo, ", ", hi, "]"), v);
    return x;
  }
  /// Number field `k` (default `def`) within float's finite range.
  [[nodiscard]] float get_float(const char* k, float def) const {
    if (!has(k)) return def;
    const auto& v = j.at(k);
    if (!v.is_number()) fail(k, "must be a number", v);
    const double d = v.get<double>();
    if (!(std::abs(d) <= static_cast<double>(std::numeric_limits<float>::max()))) {
      fail(k, "must be a number within float's finite range", v);
    }
    return static_cast<float>(d);
  }
  /// Boolean field `k` (default `def`).
  [[nodiscard]] bool get_bool(const char* k, bool def) const {
    if (!has(k)) return def;
    const auto& v = j.at(k);
    if (!v.is_boolean()) fail(k, "must be true or false", v);
    return v.get<bool>();
  }
  /// Boolean field `k` that must be `required` (the only value the bundled model computes).
  void require_bool(const char* k, bool def, bool required, std::string_view why) const {
    if (get_bool(k, def) != required) {
      fail(k, concat("must be ", required ? "true" : "false", " (", why, ")"), j.at(k));
    }
  }
  /// String field `k` that must be one of `allowed` when present.
  void require_one_of(const char* k, std::initializer_list<std::string_view> allowed,
                      std::string_view why) const {
    if (!has(k)) return;
    const auto& v = j.at(k);
    for (const auto a : allowed) {
      if (v.is_string() && v.get<std::string>() == a) return;
    }
    std::string names;
    for (const auto a : allowed) names += concat(names.empty() ? "" : " or ", "\"", a, "\"");
    fail(k, concat("must be ", names, " (", why, ")"), v);
  }
  /// "architectures", when present: an array whose every entry is one of `allowed`.
  void require_architectures(std::initializer_list<std::string_view> allowed) const {
    if (!has("architectures")) return;
    const auto& a = j.at("architectures");
    if (!a.is_array()) fail("architectures", "must be an array", a);
    std::string names;
    for (const auto n : allowed) names += concat(names.empty() ? "" : " or ", n);
    for (const auto& v : a) {
      bool ok = false;
      for (const auto n : allowed) ok = ok || (v.is_string() && v.get<std::string>() == n);
      if (!ok)
        fail("architectures", concat("must list ", names, " (other heads are not supported)"), a);
    }
  }
};

/// `x` as the double of its shortest decimal (0.1f -> 0.1), for config.json.
inline double short_double(float x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::stod(std::string(buf, r.ptr));
}

/// The parsed `folder`/config.json (io_error when it is missing or not JSON).
inline nlohmann::json read_config(const std::filesystem::path& folder, std::string_view fn) {
  const auto path = folder / config_file;
  return rlhf::detail::parse_json_bounded<nlohmann::json>(
      rlhf::detail::read_text_file(path, fn), fn, concat(path.string(), ": config.json"));
}

/// Every tensor of the folder's checkpoint (model.safetensors, else the sharded index),
/// keyed by its name without `prefix` (kept when a name lacks it). A shard holding a tensor
/// its index does not map to it, a mapped tensor missing from its shard, a name present
/// with and without the prefix, or an I32 tensor is an io_error naming it.
inline std::map<std::string, named_tensor> read_tensors(const std::filesystem::path& folder,
                                                        std::string_view fn,
                                                        std::string_view prefix) {
  std::vector<safetensors_file> files;
  const auto single = folder / weights_file;
  const auto index = folder / index_file;
  std::error_code ec;
  std::map<std::string, std::string> weight_map;  // only for a sharded checkpoint
  if (std::filesystem::exists(single, ec)) {
    files.push_back(load_safetensors(single));
  } else if (std::filesystem::exists(index, ec)) {
    const auto j = rlhf::detail::parse_json_bounded<nlohmann::json>(
        rlhf::detail::read_text_file(index, fn), fn, concat(index.string(), ": the index"));
    if (!j.is_object() || !j.contains("weight_map") || !j.at("weight_map").is_object()) {
      throw io_error(concat(fn, ": ", index.string(), ": expected {\"weight_map\": {...}}"));
    }
    std::set<std::string> shards;
    for (const auto& [name, v] : j.at("weight_map").items()) {
      const std::string* s = v.is_string() ? v.get_ptr<const std::string*>() : nullptr;
      if (s == nullptr || s->empty() || *s == "." || *s == ".." ||
          s->find_first_of("/\\") != std::string::npos) {
        throw io_error(concat(fn, ": ", index.string(), ": tensor '", name, "' maps to ",
                              json_excerpt(v), ", which is not a file name in the folder"));
      }
      weight_map[name] = *s;
      shards.insert(*s);
    }
    for (const auto& s : shards) {
      files.push_back(load_safetensors(folder / s));
      for (const auto& t : files.back().tensors) {
        const auto it = weight_map.find(t.name);
        if (it == weight_map.end() || it->second != s) {
          throw io_error(concat(fn, ": ", (folder / s).string(), ": tensor '", t.name,
                                "' is not mapped to this shard by ", index_file));
        }
      }
    }
  } else {
    throw io_error(concat(fn, ": ", folder.string(), ": neither ", weights_file, " nor ",
                          index_file, " is there"));
  }
  std::map<std::string, named_tensor> out;
  for (auto& f : files) {
    for (auto& t : f.tensors) {
      if (t.dtype == tensor_dtype::i32) {
        throw io_error(concat(fn, ": ", f.path, ": tensor '", t.name,
                              "' has dtype I32 (expected F32, BF16 or F16)"));
      }
      weight_map.erase(t.name);
      std::string key = t.name.starts_with(prefix) ? t.name.substr(prefix.size()) : t.name;
      const std::string original = t.name;
      if (!out.emplace(key, std::move(t)).second) {
        throw io_error(concat(fn, ": ", f.path, ": tensor '", original,
                              "' appears twice (with and without the \"", prefix, "\" prefix)"));
      }
    }
  }
  if (!weight_map.empty()) {
    throw io_error(concat(fn, ": ", (folder / weight_map.begin()->second).string(), ": tensor '",
                          weight_map.begin()->first, "' is missing (", index_file,
                          " maps it to this shard)"));
  }
  return out;
}

/// transformers' torch_dtype name of `dtype` (F32, BF16, F16).
inline const char* torch_dtype_name(tensor_dtype dtype) {
  return dtype == tensor_dtype::bf16  ? "bfloat16"
         : dtype == tensor_dtype::f16 ? "float16"
                                      : "float32";
}

/// Writes `tensors` as folder/model.safetensors (metadata {"format": "pt"}, no checksums, as
/// transformers writes it) and `config` as folder/config.json, each atomically; creates the
/// folder. config_error for dtype I32 is the caller's; io_error when a file cannot be written.
inline void write_folder(const std::filesystem::path& folder, std::span<const named_tensor> tensors,
                         const nlohmann::json& config, std::string_view fn) {
  std::error_code ec;
  std::filesystem::create_directories(folder, ec);
  if (ec) {
    throw io_error(concat(fn, ": ", folder.string(), ": cannot create the folder: ", ec.message()));
  }
  safetensors_save_options opts;
  opts.checksums = false;  // transformers' own files carry none
  save_safetensors(folder / weights_file, tensors, metadata_map{{"format", "pt"}}, opts);
  rlhf::detail::write_file_atomically(folder / config_file, config.dump(2) + "\n", fn);
}

}  // namespace hf_detail
}  // namespace model
}  // namespace v0
}  // namespace rlhf
