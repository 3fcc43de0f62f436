// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Checkpoints of a whole GPT (and optionally its AdamW state) as one safetensors file
// (docs/model.md, "Checkpoints of a model"):
//
//   tensors   every parameter under its GPT-2 name, in gpt_param_table order and the arena's
//             own shapes ((out, in) projections, padded embedding rows included);
//             with an optimizer: "optimizer.exp_avg", "optimizer.exp_avg_sq" (P,) each
//             with scalar heads (model/heads.hpp): "<prefix>.weight" (1, C) and
//             "<prefix>.bias" (1) per head, e.g. "v_head.*" or "score.*"
//   metadata  "config": gpt_config as JSON (field names as the struct)
//             "weight_layout": "out_in"
//             "format": "pt" (what Python's safetensors expects for torch tensors)
//             with an optimizer: "optimizer.step" (decimal, at most max_checkpoint_step),
//             "optimizer.config" (JSON)
//             with heads: "heads" (JSON list of {"prefix", "n_embd"})
//             plus whatever extra metadata the caller passes
//
// Written atomically (save_safetensors: temp file, fsync, rename, fsync of the directory).
// load(save(m)) is bit-exact for the parameters and the optimizer state. Every problem is an
// rlhf::io_error "<function>: <path>: <reason>" naming the field or tensor.
//
// Files are untrusted: every JSON text (configs, "config" and "heads" metadata, the header
// load_config reads) is parsed with rlhf::detail::parse_json_bounded's nesting limit; loaded
// parameters, head tensors and exp_avg must be finite, exp_avg_sq finite and >= 0, and
// "optimizer.step" a plain decimal integer (checkpoint_detail::parse_decimal); values from a
// file are quoted in messages cut to a few dozen characters.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/config.hpp"
#include "rlhf/model/detail/json_bounded.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/model/optim.hpp"
#include "rlhf/model/safetensors.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// The largest "optimizer.step" a checkpoint holds: 2^53 - 1. The step after it, 2^53, is
/// still exact in double (AdamW's bias corrections raise beta1 and beta2 to it) and far
/// from overflowing the int64 step counter. save_checkpoint refuses a larger step count and
/// load_checkpoint a larger stored step.
inline constexpr std::int64_t max_checkpoint_step = adamw_max_step;

namespace checkpoint_detail {

/// Characters of an untrusted value quoted in a message.
inline constexpr std::size_t excerpt_limit = 80;

/// At most `limit` characters of `s` (with "..." when cut), to quote a value from a file.
[[nodiscard]] inline std::string excerpt(std::string_view s, std::size_t limit = excerpt_limit) {
  if (s.size() <= limit) return std::string(s);
  return rlhf::detail::concat(s.substr(0, limit), "... (", s.size(), " characters)");
}

/// `text` as a strict decimal integer in [0, max]: ASCII digits only, no sign, no spaces and
/// no leading zero ("0" itself excepted); nullopt otherwise (overflow included). The one
/// parser of integers from text in checkpoints.
[[nodiscard]] inline std::optional<std::uint64_t> parse_decimal(std::string_view text,
                                                                std::uint64_t max) {
  if (text.empty() || (text.size() > 1 && text.front() == '0')) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (digit > max || value > (max - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

/// A JSON number as an integer in [lo, hi]; nullopt for a non-integer (7.5, 1e300, "7") or
/// one out of range.
[[nodiscard]] inline std::optional<std::int64_t> json_integer(const nlohmann::json& v,
                                                              std::int64_t lo, std::int64_t hi) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    const bool below = lo > 0 && u < static_cast<std::uint64_t>(lo);
    if (hi < 0 || u > static_cast<std::uint64_t>(hi) || below) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    if (i < lo || i > hi) return std::nullopt;
    return i;
  }
  return std::nullopt;
}

}  // namespace checkpoint_detail

// ---------------------------------------------------------------------------------------
// gpt_config <-> JSON

/// The config as a JSON object with gpt_config's field names (the rotary parameters as
/// rope_theta, rope_scaling, rope_factor, rope_low_freq_factor, rope_high_freq_factor,
/// rope_original_max_seq_len; the enums as their names).
[[nodiscard]] inline nlohmann::json to_json(const gpt_config& c) {
  return nlohmann::json{{"vocab_size", c.vocab_size},
                        {"max_seq_len", c.max_seq_len},
                        {"n_layer", c.n_layer},
                        {"n_head", c.n_head},
                        {"n_embd", c.n_embd},
                        {"mlp_ratio", c.mlp_ratio},
                        {"tie_embeddings", c.tie_embeddings},
                        {"dropout", c.dropout},
                        {"layernorm_eps", c.layernorm_eps},
                        {"vocab_multiple", c.vocab_multiple},
                        {"norm", rlhf::to_string(c.norm)},
                        {"position", rlhf::to_string(c.position)},
                        {"mlp", rlhf::to_string(c.mlp)},
                        {"n_kv_head", c.n_kv_head},
                        {"mlp_hidden", c.mlp_hidden},
                        {"qkv_bias", c.qkv_bias},
                        {"proj_bias", c.proj_bias},
                        {"rope_theta", c.rope.theta},
                        {"rope_scaling", rlhf::to_string(c.rope.scaling)},
                        {"rope_factor", c.rope.factor},
                        {"rope_low_freq_factor", c.rope.low_freq_factor},
                        {"rope_high_freq_factor", c.rope.high_freq_factor},
                        {"rope_original_max_seq_len", c.rope.original_max_seq_len}};
}

/// A gpt_config from a JSON object with gpt_config's field names. A missing field keeps its
/// default; an unknown field, a value of the wrong type, an integer field holding a
/// non-integer (7.5, 1e300) or one outside index_t, or a float field outside float's finite
/// range is a config_error naming the field; the result is validate()d. Values are quoted
/// cut to a few dozen characters.
[[nodiscard]] inline gpt_config gpt_config_from_json(const nlohmann::json& j) {
  constexpr const char* fn = "gpt_config_from_json";
  namespace cd = checkpoint_detail;
  using rlhf::detail::json_excerpt;
  if (!j.is_object()) {
    throw config_error(rlhf::detail::concat(fn, ": expected a JSON object, got ", json_excerpt(j)));
  }
  gpt_config c;
  static const std::set<std::string> known = {"vocab_size",
                                              "max_seq_len",
                                              "n_layer",
                                              "n_head",
                                              "n_embd",
                                              "mlp_ratio",
                                              "tie_embeddings",
                                              "dropout",
                                              "layernorm_eps",
                                              "vocab_multiple",
                                              "norm",
                                              "position",
                                              "mlp",
                                              "n_kv_head",
                                              "mlp_hidden",
                                              "qkv_bias",
                                              "proj_bias",
                                              "rope_theta",
                                              "rope_scaling",
                                              "rope_factor",
                                              "rope_low_freq_factor",
                                              "rope_high_freq_factor",
                                              "rope_original_max_seq_len"};
  for (const auto& [k, v] : j.items()) {
    if (!known.contains(k)) {
      throw config_error(rlhf::detail::concat(fn, ": unknown field '", cd::excerpt(k), "'"));
    }
    (void)v;
  }
  auto get_int = [&](const char* k, index_t& dst) {
    if (!j.contains(k)) return;
    const auto& v = j.at(k);
    if (!v.is_number_integer()) {
      throw config_error(
          rlhf::detail::concat(fn, ": field '", k, "' must be an integer, got ", json_excerpt(v)));
    }
    const auto value = cd::json_integer(v, std::numeric_limits<index_t>::min(),
                                        std::numeric_limits<index_t>::max());
    if (!value) {
      throw config_error(rlhf::detail::concat(
          fn, ": field '", k, "' must be an integer that fits index_t (at most ",
          std::numeric_limits<index_t>::max(), "), got ", json_excerpt(v)));
    }
    dst = static_cast<index_t>(*value);
  };
  auto get_float = [&](const char* k, float& dst) {
    if (!j.contains(k)) return;
    const auto& v = j.at(k);
    if (!v.is_number()) {
      throw config_error(
          rlhf::detail::concat(fn, ": field '", k, "' must be a number, got ", json_excerpt(v)));
    }
    const double d = v.get<double>();
    // A double outside float's range does not convert (undefined; inf in practice).
    if (!(std::abs(d) <= static_cast<double>(std::numeric_limits<float>::max()))) {
      throw config_error(rlhf::detail::concat(fn, ": field '", k,
                                              "' must be a number within float's finite range, "
                                              "got ",
                                              json_excerpt(v)));
    }
    dst = static_cast<float>(d);
  };
  get_int("vocab_size", c.vocab_size);
  get_int("max_seq_len", c.max_seq_len);
  get_int("n_layer", c.n_layer);
  get_int("n_head", c.n_head);
  get_int("n_embd", c.n_embd);
  get_int("mlp_ratio", c.mlp_ratio);
  get_int("vocab_multiple", c.vocab_multiple);
  auto get_bool = [&](const char* k, bool& dst) {
    if (!j.contains(k)) return;
    const auto& v = j.at(k);
    if (!v.is_boolean()) {
      throw config_error(rlhf::detail::concat(fn, ": field '", k, "' must be true or false, got ",
                                              json_excerpt(v)));
    }
    dst = v.get<bool>();
  };
  // An enum field: one of the names of its enum_names table.
  auto get_enum = [&]<class E>(const char* k, E& dst) {
    if (!j.contains(k)) return;
    const auto& v = j.at(k);
    std::string names;
    for (const auto& [e, name] : enum_names<E>::values) {
      if (v.is_string() && v.get<std::string>() == name) {
        dst = e;
        return;
      }
      names += names.empty() ? "" : ", ";
      names += rlhf::detail::concat("\"", name, "\"");
    }
    throw config_error(rlhf::detail::concat(fn, ": field '", k, "' must be one of ", names,
                                            ", got ", json_excerpt(v)));
  };
  get_bool("tie_embeddings", c.tie_embeddings);
  get_float("dropout", c.dropout);
  get_float("layernorm_eps", c.layernorm_eps);
  get_enum("norm", c.norm);
  get_enum("position", c.position);
  get_enum("mlp", c.mlp);
  get_int("n_kv_head", c.n_kv_head);
  get_int("mlp_hidden", c.mlp_hidden);
  get_bool("qkv_bias", c.qkv_bias);
  get_bool("proj_bias", c.proj_bias);
  get_float("rope_theta", c.rope.theta);
  get_enum("rope_scaling", c.rope.scaling);
  get_float("rope_factor", c.rope.factor);
  get_float("rope_low_freq_factor", c.rope.low_freq_factor);
  get_float("rope_high_freq_factor", c.rope.high_freq_factor);
  get_int("rope_original_max_seq_len", c.rope.original_max_seq_len);
  c.validate();
  return c;
}

namespace checkpoint_detail {

inline constexpr const char* exp_avg_name = "optimizer.exp_avg";
inline constexpr const char* exp_avg_sq_name = "optimizer.exp_avg_sq";
inline constexpr const char* step_key = "optimizer.step";
inline constexpr const char* optimizer_config_key = "optimizer.config";
inline constexpr const char* heads_key = "heads";

/// The head prefixes a file's "heads" metadata lists (empty when absent; io_error when
/// malformed).
inline std::vector<std::string> head_prefixes(std::string_view fn,
                                              const std::filesystem::path& path,
                                              const metadata_map& md);

[[noreturn]] inline void fail(std::string_view fn, const std::filesystem::path& path,
                              std::string_view reason) {
  throw io_error(rlhf::detail::concat(fn, ": ", path.string(), ": ", reason));
}

/// `text` (`what` of the file at `path`) parsed as JSON no deeper than
/// rlhf::detail::max_json_depth: io_error "fn: path: `<what>` is not valid JSON: ..." or "...
/// is nested deeper than 16 levels" otherwise, cut to a bounded length (nlohmann's message
/// quotes the token it stopped in, which a file can make megabytes long).
[[nodiscard]] inline nlohmann::json parse_json(std::string_view fn,
                                               const std::filesystem::path& path,
                                               std::string_view text, std::string_view what) {
  const std::string where = rlhf::detail::concat(fn, ": ", path.string());
  try {
    return rlhf::detail::parse_json_bounded<nlohmann::json, io_error>(text, where, what);
  } catch (const io_error& e) {
    throw io_error(excerpt(e.what(), where.size() + what.size() + 4 * excerpt_limit));
  }
}

/// `text`, the JSON `what` of the file at `path`, as a validated gpt_config (io_error naming
/// the file and the field otherwise).
[[nodiscard]] inline gpt_config config_from_text(std::string_view fn,
                                                 const std::filesystem::path& path,
                                                 std::string_view text, std::string_view what) {
  const nlohmann::json j = parse_json(fn, path, text, what);
  try {
    return gpt_config_from_json(j);
  } catch (const config_error& e) {
    fail(fn, path, rlhf::detail::concat("bad ", what, ": ", e.what()));
  }
}

/// The "config" metadata of a loaded file as a gpt_config (io_error if absent/malformed).
inline gpt_config config_of(std::string_view fn, const std::filesystem::path& path,
                            const metadata_map& md) {
  const auto it = md.find("config");
  if (it == md.end()) fail(fn, path, "no \"config\" in the metadata");
  return config_from_text(fn, path, it->second, "\"config\" metadata");
}

/// io_error naming `t` and its first value that is not finite (with `nonnegative`, also the
/// first below zero; -0 passes), with its flat index.
inline void check_values(std::string_view fn, const std::filesystem::path& path,
                         const named_tensor& t, bool nonnegative = false) {
  const std::span<const float> v(t.data);
  // One vectorised pass for the common, valid case; the loop below only names the culprit.
  if (nonnegative ? ops::detail::all_mask_weights(v) : ops::detail::all_finite(v)) return;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i]) || (nonnegative && v[i] < 0.0f)) {
      fail(fn, path,
           rlhf::detail::concat("tensor '", excerpt(t.name), "' holds ", v[i], " at flat index ", i,
                                nonnegative ? "; its values must be finite and >= 0"
                                            : "; its values must be finite"));
    }
  }
}

/// io_error naming the first field where the file's config differs from the model's.
inline void compare_configs(std::string_view fn, const std::filesystem::path& path,
                            const gpt_config& in_file, const gpt_config& in_model) {
  const auto a = model::to_json(in_file), b = model::to_json(in_model);
  for (const auto& [k, v] : b.items()) {
    if (a.at(k) != v) {
      // Both from validated configs: scalars, short.
      fail(fn, path, rlhf::detail::concat("config field '", k, "' is ", a.at(k).dump(),
                                          " in the file but ", v.dump(), " in the model"));
    }
  }
}

inline nlohmann::json optimizer_json(const adamw_config& c) {
  return nlohmann::json{{"lr", c.lr},   {"beta1", c.beta1},
                        {"beta2", c.beta2}, {"eps", c.eps},
                        {"weight_decay", c.weight_decay}};
}

}  // namespace checkpoint_detail

/// Options of load_checkpoint.
struct checkpoint_load_options {
  /// Accept (and ignore) tensors that are neither parameters nor optimizer state.
  bool allow_extra_tensors = false;
  /// Accept (and ignore) tensors whose name starts with one of these (an exact name is its
  /// own prefix), e.g. {"grad.", "input_ids", "logits"} for the golden fixtures.
  std::vector<std::string> extra_tensor_prefixes;
};

/// The config stored in a checkpoint, to build a model from the file:
///   `gpt<B> m(load_config(path)); load_checkpoint(path, m);`
/// `path` is a safetensors checkpoint (only its header is read) or, when its name ends in
/// ".json", a JSON file holding the config object itself. io_error on any problem (JSON
/// nested deeper than rlhf::detail::max_json_depth included), naming the file and the field.
[[nodiscard]] inline gpt_config load_config(const std::filesystem::path& path) {
  constexpr const char* fn = "load_config";
  namespace cd = checkpoint_detail;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) cd::fail(fn, path, "no such file");
  if (!std::filesystem::is_regular_file(path, ec)) cd::fail(fn, path, "not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in) cd::fail(fn, path, "cannot open the file");
  if (path.extension() == ".json") {
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) cd::fail(fn, path, "cannot read the file");
    return cd::config_from_text(fn, path, text, "config JSON");
  }
  const auto file_size = std::filesystem::file_size(path, ec);
  if (ec || file_size < 8) {
    cd::fail(fn, path, rlhf::detail::concat("truncated: the file has ", ec ? 0 : file_size,
                                            " bytes, fewer than the 8-byte header length"));
  }
  unsigned char len_bytes[8];
  in.read(reinterpret_cast<char*>(len_bytes), 8);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > file_size - 8 || n > safetensors_detail::safetensors_max_header) {
    cd::fail(fn, path, rlhf::detail::concat("truncated: header length ", n, " exceeds the ",
                                            file_size - 8, " bytes after the length prefix"));
  }
  std::string header(static_cast<std::size_t>(n), '\0');
  in.read(header.data(), static_cast<std::streamsize>(n));
  if (!in) cd::fail(fn, path, "cannot read the header");
  metadata_map md;
  const auto j = cd::parse_json(fn, path, header, "the JSON header");
  if (!j.is_object()) cd::fail(fn, path, "malformed header: expected a JSON object");
  if (const auto it = j.find("__metadata__"); it != j.end()) {
    if (!it->is_object()) cd::fail(fn, path, "malformed header: \"__metadata__\" is not an object");
    for (const auto& [k, v] : it->items()) {
      if (v.is_string()) md[k] = v.get<std::string>();
    }
  }
  return cd::config_of(fn, path, md);
}

/// Writes `m`, the scalar `heads` (each under its prefix; a value head beside its policy, or a
/// reward model's "score") and `optimizer`'s state when given to `path` atomically.
/// `extra_metadata` is stored beside the reserved keys ("config", "weight_layout", "format",
/// "optimizer.step", "optimizer.config", "heads"); reusing one of them, two heads with one
/// prefix, or a head prefix that names a parameter of the trunk is an io_error.
template <class B>
void save_checkpoint(const std::filesystem::path& path, const gpt<B>& m,
                     const std::vector<const scalar_head<B>*>& heads,
                     const adamw<B>* optimizer = nullptr, const metadata_map& extra_metadata = {}) {
  constexpr const char* fn = "save_checkpoint";
  namespace cd = checkpoint_detail;
  metadata_map md;
  md["config"] = to_json(m.config()).dump();
  md["weight_layout"] = "out_in";
  md["format"] = "pt";
  const std::vector<float> params = ops::to_host<B>(m.params());
  std::vector<float> m1, m2;
  std::vector<std::vector<float>> head_params;
  std::vector<std::vector<param_ref>> head_tables;  // the views name their entries
  std::vector<tensor_view> views;
  views.reserve(m.table().size() + 2 + 2 * heads.size());
  for (const auto& p : m.table()) {
    views.push_back(tensor_view::f32(
        p.name, p.dims,
        std::span<const float>(params).subspan(static_cast<std::size_t>(p.offset),
                                               static_cast<std::size_t>(p.size()))));
  }
  if (!heads.empty()) {
    std::set<std::string> taken;
    for (const auto& p : m.table()) taken.insert(p.name);
    auto listed = nlohmann::json::array();
    head_params.reserve(heads.size());
    head_tables.reserve(heads.size());  // no reallocation: views point into the names
    for (const scalar_head<B>* h : heads) {
      if (h == nullptr) cd::fail(fn, path, "a head pointer is null");
      head_params.push_back(ops::to_host<B>(h->params()));
      for (const auto& p : head_tables.emplace_back(h->table())) {
        if (!taken.insert(p.name).second) {
          cd::fail(fn, path, rlhf::detail::concat("head tensor '", p.name,
                                                  "' is written twice (two heads with prefix '",
                                                  h->prefix(), "', or a trunk parameter)"));
        }
        views.push_back(tensor_view::f32(
            p.name, p.dims,
            std::span<const float>(head_params.back())
                .subspan(static_cast<std::size_t>(p.offset), static_cast<std::size_t>(p.size()))));
      }
      listed.push_back({{"prefix", h->prefix()}, {"n_embd", h->n_embd()}});
    }
    md[cd::heads_key] = listed.dump();
  }
  if (optimizer != nullptr) {
    if (optimizer->num_params() != m.num_params()) {
      cd::fail(fn, path, rlhf::detail::concat("the optimizer holds ", optimizer->num_params(),
                                              " parameters, the model ", m.num_params()));
    }
    m1 = ops::to_host<B>(optimizer->exp_avg());
    m2 = ops::to_host<B>(optimizer->exp_avg_sq());
    const shape s{m.num_params()};
    views.push_back(tensor_view::f32(cd::exp_avg_name, s, m1));
    views.push_back(tensor_view::f32(cd::exp_avg_sq_name, s, m2));
    if (optimizer->step_count() > max_checkpoint_step) {
      cd::fail(fn, path,
               rlhf::detail::concat("the optimizer's step count ", optimizer->step_count(),
                                    " is over ", max_checkpoint_step, " (max_checkpoint_step)"));
    }
    md[cd::step_key] = std::to_string(optimizer->step_count());
    md[cd::optimizer_config_key] = cd::optimizer_json(optimizer->config()).dump();
  }
  for (const auto& [k, v] : extra_metadata) {
    if (md.contains(k) || k == cd::step_key || k == cd::optimizer_config_key ||
        k == cd::heads_key) {
      cd::fail(fn, path, rlhf::detail::concat("extra metadata key '", k, "' is reserved"));
    }
    md[k] = v;
  }
  save_safetensors(path, std::span<const tensor_view>(views), md);
}

/// Writes `m` (and `optimizer`'s state when given) to `path` atomically; no heads.
template <class B>
void save_checkpoint(const std::filesystem::path& path, const gpt<B>& m,
                     const adamw<B>* optimizer = nullptr, const metadata_map& extra_metadata = {}) {
  save_checkpoint(path, m, std::vector<const scalar_head<B>*>{}, optimizer, extra_metadata);
}

/// Fills `m`, the scalar `heads` (by prefix) and `optimizer`'s state (when given) from the
/// checkpoint at `path`; returns the file's metadata (extra keys included). io_error when the
/// file is unreadable, truncated or corrupt, its config differs from m.config() (naming the
/// field and both values), a parameter or an asked-for head is missing or has another shape
/// or dtype, a tensor is neither a parameter, nor a head the file lists, nor optimizer state,
/// nor allowed by `options`, or the optimizer state was asked for and is absent; also when a
/// loaded parameter, head tensor or exp_avg holds a NaN or ±Inf, exp_avg_sq a value that is
/// not finite and >= 0 (naming the tensor and the flat index), or "optimizer.step" is not a
/// plain decimal integer in [0, max_checkpoint_step] (digits only: no sign, spaces, leading
/// zeros or exponent). JSON metadata nested deeper than 16 levels is refused. Heads the
/// file holds but the caller did not ask for are skipped (a policy initialised from a reward
/// model's trunk). Nothing is modified unless everything checks out.
template <class B>
metadata_map load_checkpoint(const std::filesystem::path& path, gpt<B>& m,
                             const std::vector<scalar_head<B>*>& heads,
                             adamw<B>* optimizer = nullptr,
                             const checkpoint_load_options& options = {}) {
  constexpr const char* fn = "load_checkpoint";
  namespace cd = checkpoint_detail;
  const safetensors_file f = load_safetensors(path);
  cd::compare_configs(fn, path, cd::config_of(fn, path, f.metadata), m.config());
  std::vector<std::string> file_heads = cd::head_prefixes(fn, path, f.metadata);
  if (const auto it = f.metadata.find("weight_layout");
      it != f.metadata.end() && it->second != "out_in") {
    cd::fail(fn, path,
             rlhf::detail::concat("weight_layout is '", cd::excerpt(it->second),
                                  "', this model reads 'out_in'"));
  }
  // Every tensor must be accounted for.
  std::set<std::string_view> names;
  for (const auto& p : m.table()) names.insert(p.name);
  for (const auto& t : f.tensors) {
    if (names.contains(t.name) || t.name == cd::exp_avg_name || t.name == cd::exp_avg_sq_name) {
      continue;
    }
    bool of_a_head = false;
    for (const auto& prefix : file_heads) {
      of_a_head = of_a_head || t.name == prefix + ".weight" || t.name == prefix + ".bias";
    }
    if (of_a_head) continue;
    bool allowed = options.allow_extra_tensors;
    for (const auto& prefix : options.extra_tensor_prefixes) {
      allowed = allowed || std::string_view(t.name).starts_with(prefix);
    }
    if (!allowed) {
      cd::fail(fn, path,
               rlhf::detail::concat("tensor '", cd::excerpt(t.name),
                                    "' is not a parameter of this model (allow it with "
                                    "checkpoint_load_options)"));
    }
  }
  std::vector<float> arena(static_cast<std::size_t>(m.num_params()), 0.0f);
  for (const auto& p : m.table()) {
    const named_tensor& t = check_tensor(f, p.name, p.dims);
    cd::check_values(fn, path, t);
    std::copy(t.data.begin(), t.data.end(), arena.begin() + p.offset);
  }
  std::vector<std::vector<float>> head_arenas;
  for (const scalar_head<B>* h : heads) {
    if (h == nullptr) cd::fail(fn, path, "a head pointer is null");
    if (std::find(file_heads.begin(), file_heads.end(), h->prefix()) == file_heads.end()) {
      cd::fail(
          fn, path,
          rlhf::detail::concat(
              "no head '", h->prefix(), "' in the file (its \"heads\" metadata lists ",
              rlhf::detail::json_excerpt(nlohmann::json(file_heads), 2 * cd::excerpt_limit), ")"));
    }
    auto& host = head_arenas.emplace_back(static_cast<std::size_t>(h->num_params()), 0.0f);
    for (const auto& p : h->table()) {
      const named_tensor& t = check_tensor(f, p.name, p.dims);
      cd::check_values(fn, path, t);
      std::copy(t.data.begin(), t.data.end(), host.begin() + p.offset);
    }
  }
  const named_tensor* m1 = nullptr;
  const named_tensor* m2 = nullptr;
  std::int64_t step = 0;
  if (optimizer != nullptr) {
    if (optimizer->num_params() != m.num_params()) {
      cd::fail(fn, path, rlhf::detail::concat("the optimizer holds ", optimizer->num_params(),
                                              " parameters, the model ", m.num_params()));
    }
    if (f.find(cd::exp_avg_name) == nullptr || f.find(cd::exp_avg_sq_name) == nullptr ||
        !f.metadata.contains(cd::step_key)) {
      cd::fail(fn, path, "no optimizer state in the file (\"optimizer.exp_avg\", "
                         "\"optimizer.exp_avg_sq\", metadata \"optimizer.step\")");
    }
    const shape s{m.num_params()};
    m1 = &check_tensor(f, cd::exp_avg_name, s);
    m2 = &check_tensor(f, cd::exp_avg_sq_name, s);
    cd::check_values(fn, path, *m1);
    cd::check_values(fn, path, *m2, /*nonnegative=*/true);
    const std::string& st = f.metadata.at(cd::step_key);
    const auto parsed = cd::parse_decimal(st, static_cast<std::uint64_t>(max_checkpoint_step));
    if (!parsed) {
      cd::fail(fn, path,
               rlhf::detail::concat("metadata \"optimizer.step\" must be a decimal integer in [0, ",
                                    max_checkpoint_step,
                                    "] (digits only, no sign, spaces or leading zeros), got '",
                                    cd::excerpt(st), "'"));
    }
    step = static_cast<std::int64_t>(*parsed);
  }
  if (optimizer != nullptr) {
    const shape s{m.num_params()};
    try {
      optimizer->load_state(ops::from_host<B>(std::span<const float>(m1->data), s),
                            ops::from_host<B>(std::span<const float>(m2->data), s), step);
    } catch (const error& e) {
      cd::fail(fn, path, rlhf::detail::concat("bad optimizer state: ", e.what()));
    }
  }
  ops::copy_from_host<B>(std::span<const float>(arena), m.params());
  for (std::size_t i = 0; i < heads.size(); ++i) {
    ops::copy_from_host<B>(std::span<const float>(head_arenas[i]), heads[i]->params());
  }
  return f.metadata;
}

/// Fills `m` (and `optimizer`'s state when given) from the checkpoint at `path`; heads in
/// the file are skipped. See the overload above.
template <class B>
metadata_map load_checkpoint(const std::filesystem::path& path, gpt<B>& m,
                             adamw<B>* optimizer = nullptr,
                             const checkpoint_load_options& options = {}) {
  return load_checkpoint(path, m, std::vector<scalar_head<B>*>{}, optimizer, options);
}

namespace checkpoint_detail {

inline std::vector<std::string> head_prefixes(std::string_view fn,
                                              const std::filesystem::path& path,
                                              const metadata_map& md) {
  std::vector<std::string> out;
  const auto it = md.find(heads_key);
  if (it == md.end()) return out;
  const auto j = parse_json(fn, path, it->second, "\"heads\" metadata");
  if (!j.is_array()) fail(fn, path, "\"heads\" metadata must be a JSON list");
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& h = j[i];
    const auto prefix = h.is_object() ? h.find("prefix") : h.end();
    if (!h.is_object() || prefix == h.end() || !prefix->is_string()) {
      fail(fn, path,
           rlhf::detail::concat("\"heads\" metadata entry ", i,
                                " must be an object with a string \"prefix\""));
    }
    out.push_back(prefix->get<std::string>());
  }
  return out;
}

}  // namespace checkpoint_detail

}  // namespace model
}  // namespace v0
}  // namespace rlhf
