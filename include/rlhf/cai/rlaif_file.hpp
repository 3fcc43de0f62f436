// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// AI-labelled preference pairs (rlaif.hpp) appended to a JSONL file that a killed run
// continues, prompt by prompt:
//
//   per batch:   K samples of each prompt (rlaif_pairs' seeds), one judge() call for all
//                their pairs
//   per prompt:  its rows appended in one write and flushed, then one line in the done file
//                (`<output>.done`: {"prompt", "rows", "pairs", "identical", "no_judgment",
//                "ties", "low_confidence"}); a prompt without a row (identical answers, no
//                judgment, ties, low confidence) is done all the same
//   resume:      the prompts of the done file are skipped (keyed by the prompt text; a chat
//                row's key is its last user message); a torn last line of either file is
//                repaired (rows_file.hpp), and rows at the end of the output whose prompt
//                is not done (the prompt a kill interrupted) are cut off, so each prompt's
//                rows are all there or none are
//
// The output holds only preference rows, so the trainers read it as it is. A sample depends
// only on the seed, the prompt and the model (model_generator, a seeded server), and a
// judgment only on its query, so a run killed at any point and restarted with the same
// prompts and options ends with the rows of an uninterrupted run, in the same order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/cai/detail/rows_file.hpp"
#include "rlhf/cai/generator.hpp"
#include "rlhf/cai/judge.hpp"
#include "rlhf/cai/rlaif.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {

/// Options of rlaif_pairs_to_file.
struct rlaif_file_config {
  /// Samples per prompt, their sampling, prompts per batch, min_confidence (rlaif_pairs).
  rlaif_options rlaif{};
  /// Write chat rows: the prompt as [{"role": "user", ...}], each response as
  /// [{"role": "assistant", ...}] (preference_row_json); false: plain strings.
  bool chat_rows = false;
  /// The done file; empty: default_done_file(output).
  std::filesystem::path done_file{};
  bool fsync =
      false;  ///< fsync after each prompt's rows and its done line (flushing is always done)
  /// Called with (prompts done, prompts in all) at the start and after each batch; done
  /// counts prompts found done, given twice, and labelled by this run.
  std::function<void(std::size_t done, std::size_t total)> progress{};
  /// Called once, before any work, with the number of prompts found done (only when > 0).
  std::function<void(std::size_t already_done)> resumed{};
};

/// What an rlaif_pairs_to_file run did. The pair counts are this run's.
struct rlaif_file_summary {
  std::size_t total = 0;           ///< prompts given
  std::size_t labelled = 0;        ///< prompts sampled and judged by this run
  std::size_t skipped = 0;         ///< prompts already done (a resumed run)
  std::size_t duplicates = 0;      ///< prompts given more than once (done once)
  std::size_t rows = 0;            ///< rows written by this run
  std::size_t pairs = 0;           ///< pairs considered by this run
  std::size_t identical = 0;       ///< left out: both responses the same text
  std::size_t no_judgment = 0;     ///< left out: the judge gave none
  std::size_t ties = 0;            ///< left out: prob_a exactly 0.5
  std::size_t low_confidence = 0;  ///< left out: below min_confidence
  /// A torn last line (of the output or the done file) was removed or completed, or the
  /// rows of an interrupted prompt were cut off the output.
  bool repaired = false;
};

/// The done file of `output` by default: its name with ".done" appended
/// (ai_pairs.jsonl -> ai_pairs.jsonl.done).
[[nodiscard]] inline std::filesystem::path default_done_file(const std::filesystem::path& output) {
  std::filesystem::path p = output;
  p += ".done";
  return p;
}

/// The prompt of a preference row, as the key of a resumed run: its "prompt" string, or the
/// content of the last user message of a chat prompt (a list of {"role", "content"});
/// nullopt when it has neither.
[[nodiscard]] inline std::optional<std::string> preference_prompt_key(const nlohmann::json& row) {
  if (!row.is_object() || !row.contains("prompt")) return std::nullopt;
  const auto& p = row["prompt"];
  if (p.is_string()) return p.get<std::string>();
  if (!p.is_array()) return std::nullopt;
  std::optional<std::string> key;
  for (const auto& m : p) {
    if (m.is_object() && m.contains("role") && m["role"] == "user" && m.contains("content") &&
        m["content"].is_string()) {
      key = m["content"].get<std::string>();
    }
  }
  return key;
}

namespace detail {

/// A prompt, cut to 60 bytes, for messages.
[[nodiscard]] inline std::string short_prompt(const std::string& p) {
  return p.size() <= 60 ? p : p.substr(0, 57) + "...";
}

/// What recover_rlaif_file found.
struct rlaif_file_state {
  std::set<std::string> done;  ///< prompts done
  bool repaired = false;       ///< see rlaif_file_summary::repaired
};

/// Reads (and repairs) an rlaif_pairs_to_file output and its done file; see the top of this
/// header. A done file without its output is stale and removed. An output without a done
/// file (written by other means) counts its rows' prompts as done, and a done file listing
/// them is written. data_error when a row before the end belongs to no done prompt, or when
/// a done prompt's rows differ in number from those its done line records.
inline rlaif_file_state recover_rlaif_file(const std::filesystem::path& output,
                                           const std::filesystem::path& done_path, bool durable,
                                           const char* fn) {
  using rlhf::detail::concat;
  std::error_code ec;
  const bool had_output = std::filesystem::exists(output, ec);
  const bool had_done = std::filesystem::exists(done_path, ec);
  if (!had_output && had_done) {
    std::filesystem::remove(done_path, ec);
    if (ec) {
      throw io_error(concat(fn, ": ", done_path.string(),
                            ": cannot remove a stale done file: ", ec.message()));
    }
  }
  std::map<std::string, std::size_t> recorded;  // prompt -> rows its done line records
  const auto done = recover_rows(
      done_path,
      [&recorded](const nlohmann::json& j) -> std::optional<std::string> {
        if (!j.contains("prompt") || !j["prompt"].is_string()) return std::nullopt;
        auto p = j["prompt"].get<std::string>();
        if (j.contains("rows") && j["rows"].is_number_unsigned()) {
          recorded[p] = j["rows"].get<std::size_t>();
        }
        return p;
      },
      "field 'prompt' is missing or not a string", fn);
  const auto rows = recover_rows(
      output, [](const nlohmann::json& j) { return preference_prompt_key(j); },
      "field 'prompt' is missing, or neither a string nor chat messages with a user message", fn);
  rlaif_file_state out;
  out.repaired = done.repaired || rows.repaired;
  std::map<std::string, std::size_t> counts;
  if (!had_done) {
    if (rows.rows == 0) return out;
    // Rows without a done file: their prompts are done (whole, as nothing else writes
    // this output without its done file).
    for (const auto& k : rows.order) ++counts[k];
    row_appender d(done_path, durable, fn);
    for (const auto& k : rows.order) {
      if (!out.done.insert(k).second) continue;
      nlohmann::ordered_json line;
      line["prompt"] = k;
      line["rows"] = counts[k];
      d.append(line);
    }
    return out;
  }
  out.done = done.keys;
  // The rows at the end whose prompt is not done: the prompt a kill interrupted.
  std::size_t keep = rows.order.size();
  while (keep > 0 && !out.done.contains(rows.order[keep - 1])) --keep;
  for (std::size_t i = 0; i < keep; ++i) {
    if (!out.done.contains(rows.order[i])) {
      throw data_error(concat(output.string(), ": row ", i + 1, " (prompt '",
                              short_prompt(rows.order[i]), "') is of no prompt in ",
                              done_path.string(), "; remove both files to start over"));
    }
    ++counts[rows.order[i]];
  }
  if (keep < rows.order.size()) {
    truncate_rows(output, keep == 0 ? 0 : rows.ends[keep - 1], fn);
    out.repaired = true;
  }
  for (const auto& [p, n] : recorded) {
    const std::size_t have = counts.contains(p) ? counts.at(p) : 0;
    if (have != n) {
      throw data_error(concat(output.string(), ": ", have, " rows of prompt '", short_prompt(p),
                              "', but ", done_path.string(), " records ", n,
                              "; remove both files to start over"));
    }
  }
  return out;
}

}  // namespace detail

/// rlaif_pairs over `prompts`, appended to `output` prompt by prompt (see the top of this
/// header): a second run with the same output skips the prompts already done and finishes
/// the rest. Errors: config_error on a bad option (as rlaif_pairs); io_error when a file
/// cannot be written; data_error when the output or the done file holds a line that is not
/// a row (other than a torn last line), when they disagree, or when the generator or the
/// judge returns the wrong number of results. An exception from the generator or the judge
/// ends the run; the prompts finished before it stay done.
template <text_generator G, preference_judge J>
rlaif_file_summary rlaif_pairs_to_file(G& gen, J& judge, const std::vector<std::string>& prompts,
                                       const std::filesystem::path& output,
                                       const rlaif_file_config& cfg = {}) {
  constexpr const char* fn = "rlaif_pairs_to_file";
  const rlaif_options& o = cfg.rlaif;
  check_config(o.responses_per_prompt >= 2, fn, "rlaif.responses_per_prompt", ">= 2",
               o.responses_per_prompt);
  check_config(o.prompts_per_batch >= 1, fn, "rlaif.prompts_per_batch", ">= 1",
               o.prompts_per_batch);
  check_config(
      std::isfinite(o.min_confidence) && o.min_confidence >= 0.0f && o.min_confidence <= 0.5f, fn,
      "rlaif.min_confidence", "in [0, 0.5]", o.min_confidence);
  check_config(!output.empty(), fn, "output", "a file path", "\"\"");
  const auto done_path = cfg.done_file.empty() ? default_done_file(output) : cfg.done_file;
  check_config(done_path != output, fn, "done_file", "a file other than the output",
               done_path.string());

  rlaif_file_summary s;
  s.total = prompts.size();
  const auto found = detail::recover_rlaif_file(output, done_path, cfg.fsync, fn);
  s.repaired = found.repaired;
  std::vector<std::string> pending;
  std::set<std::string> seen;
  for (const auto& p : prompts) {
    if (found.done.contains(p)) {
      ++s.skipped;
    } else if (!seen.insert(p).second) {
      ++s.duplicates;
    } else {
      pending.push_back(p);
    }
  }
  if (cfg.resumed && s.skipped > 0) cfg.resumed(s.skipped);
  std::size_t done = s.skipped + s.duplicates;
  if (cfg.progress) cfg.progress(done, s.total);
  if (pending.empty()) return s;

  // The done file first: rows never exist without it (see recover_rlaif_file).
  detail::row_appender done_file(done_path, cfg.fsync, fn);
  detail::row_appender rows_file(output, cfg.fsync, fn);
  for (std::size_t first = 0; first < pending.size(); first += o.prompts_per_batch) {
    const std::size_t last = std::min(pending.size(), first + o.prompts_per_batch);
    const std::vector<std::string> batch(pending.begin() + static_cast<std::ptrdiff_t>(first),
                                         pending.begin() + static_cast<std::ptrdiff_t>(last));
    const auto responses = detail::rlaif_sample(gen, batch, o, fn);
    const auto labelled = detail::rlaif_label_batch(judge, batch, responses, 0, batch.size(), o,
                                                    fn);
    for (std::size_t k = 0; k < batch.size(); ++k) {
      const rlaif_result& r = labelled[k];
      std::vector<nlohmann::ordered_json> lines;
      lines.reserve(r.rows.size());
      for (const auto& row : r.rows) lines.push_back(preference_row_json(row, cfg.chat_rows));
      rows_file.append(lines);
      nlohmann::ordered_json d;
      d["prompt"] = batch[k];
      d["rows"] = r.rows.size();
      d["pairs"] = r.pairs;
      d["identical"] = r.identical;
      d["no_judgment"] = r.no_judgment;
      d["ties"] = r.ties;
      d["low_confidence"] = r.low_confidence;
      done_file.append(d);
      ++s.labelled;
      s.rows += r.rows.size();
      s.pairs += r.pairs;
      s.identical += r.identical;
      s.no_judgment += r.no_judgment;
      s.ties += r.ties;
      s.low_confidence += r.low_confidence;
    }
    done += batch.size();
    if (cfg.progress) cfg.progress(done, s.total);
  }
  return s;
}

}  // namespace cai
}  // namespace v0
}  // namespace rlhf
