// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// AI-labelled preference data (RLAIF; Bai et al. 2022 §4, Lee et al. 2023): several
// responses per prompt, every pair of them judged, each judged pair a preference row whose
// soft label is the judge's confidence in the chosen response (Lee et al. 2023 train reward
// models on these soft labels).
//
//   rlaif_label(judge, prompts (P), responses (P lists of K))
//       pairs (i < j) of each prompt's responses -> judge -> rows {prompt, chosen,
//       rejected, soft_label = P(chosen better) in (0.5, 1]}; pairs with no judgment,
//       exactly 0.5, identical responses or a confidence below min_confidence are counted
//       and left out
//   rlaif_pairs(generator, judge, prompts)   samples K responses per prompt (seed mixed
//       with k), then rlaif_label
//   write_preference_rows(path, rows)        JSONL, written atomically
//
// rlaif_file.hpp runs rlaif_pairs into a file that a killed run continues.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/cai/critique_revise.hpp"
#include "rlhf/cai/generator.hpp"
#include "rlhf/cai/judge.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/atomic_file.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {

/// One AI-labelled preference pair.
struct preference_row {
  std::string prompt;       ///< the prompt
  std::string chosen;       ///< the response the judge preferred
  std::string rejected;     ///< the other one
  float soft_label = 1.0f;  ///< P(chosen is better) per the judge, in (0.5, 1]
  std::string reason;       ///< the judge's reason
};

/// Options of rlaif_label and rlaif_pairs.
struct rlaif_options {
  std::size_t responses_per_prompt = 2;  ///< K >= 2 (rlaif_pairs); K(K-1)/2 pairs per prompt
  /// Sampling of the responses (rlaif_pairs): response k uses the seed mixed with k.
  generation_options generation{};
  std::size_t prompts_per_batch = 16;  ///< prompts per generate() / judge() call
  /// Pairs whose |prob_a − 0.5| is below this are left out (0: keep all but exact ties).
  float min_confidence = 0.0f;
};

/// What rlaif_label produced.
struct rlaif_result {
  std::vector<preference_row> rows;  ///< the labelled pairs
  std::size_t pairs = 0;             ///< pairs considered
  std::size_t identical = 0;         ///< left out: both responses the same text
  std::size_t no_judgment = 0;       ///< left out: the judge gave none
  std::size_t ties = 0;              ///< left out: prob_a exactly 0.5
  std::size_t low_confidence = 0;    ///< left out: below min_confidence
};

namespace detail {

/// Adds the counts of `r` (not its rows) to `into`.
inline void add_counts(rlaif_result& into, const rlaif_result& r) {
  into.pairs += r.pairs;
  into.identical += r.identical;
  into.no_judgment += r.no_judgment;
  into.ties += r.ties;
  into.low_confidence += r.low_confidence;
}

/// Labels the pairs of prompts [first, last) with one judge() call: `out[p - first]` gets
/// prompt p's rows and counts. data_error as rlaif_label.
template <preference_judge J>
std::vector<rlaif_result> rlaif_label_batch(J& judge, const std::vector<std::string>& prompts,
                                            const std::vector<std::vector<std::string>>& responses,
                                            std::size_t first, std::size_t last,
                                            const rlaif_options& o, const char* fn) {
  std::vector<rlaif_result> out(last - first);
  std::vector<judge_query> queries;
  std::vector<std::size_t> owner;  // the prompt of each query (index into out)
  for (std::size_t p = first; p < last; ++p) {
    const auto& rs = responses[p];
    for (std::size_t i = 0; i < rs.size(); ++i) {
      for (std::size_t j = i + 1; j < rs.size(); ++j) {
        ++out[p - first].pairs;
        if (rs[i] == rs[j]) {
          ++out[p - first].identical;
          continue;
        }
        queries.push_back({prompts[p], rs[i], rs[j]});
        owner.push_back(p - first);
      }
    }
  }
  if (queries.empty()) return out;
  const std::vector<judgment> js = judge.judge(queries);
  if (js.size() != queries.size()) {
    throw data_error(rlhf::detail::concat(fn, ": the judge returned ", js.size(), " judgments for ",
                                          queries.size(), " pairs"));
  }
  for (std::size_t k = 0; k < js.size(); ++k) {
    rlaif_result& r = out[owner[k]];
    if (!js[k].prob_a) {
      ++r.no_judgment;
      continue;
    }
    const float p = *js[k].prob_a;
    if (!(p >= 0.0f && p <= 1.0f)) {
      throw data_error(
          rlhf::detail::concat(fn, ": the judge returned prob_a = ", p, " (expected [0, 1])"));
    }
    if (p == 0.5f) {
      ++r.ties;
      continue;
    }
    if (std::fabs(p - 0.5f) < o.min_confidence) {
      ++r.low_confidence;
      continue;
    }
    const auto& q = queries[k];
    const bool a = p > 0.5f;
    r.rows.push_back({q.prompt, a ? q.response_a : q.response_b, a ? q.response_b : q.response_a,
                      a ? p : 1.0f - p, js[k].reason});
  }
  return out;
}

/// responses_per_prompt samples of each prompt of `batch` (one generate() call per k; seed
/// = generation.seed mixed with k): out[i][k]. data_error when a call returns the wrong
/// number of completions.
template <text_generator G>
std::vector<std::vector<std::string>> rlaif_sample(G& gen, const std::vector<std::string>& batch,
                                                   const rlaif_options& o, const char* fn) {
  std::vector<std::vector<std::string>> out(batch.size());
  for (std::size_t k = 0; k < o.responses_per_prompt; ++k) {
    generation_options g = o.generation;
    g.seed = mix_seed(o.generation.seed, 0x726c6169u /* "rlai" */, k);
    const std::vector<std::string> r = gen.generate(batch, g);
    if (r.size() != batch.size()) {
      throw data_error(rlhf::detail::concat(fn, ": the generator returned ", r.size(),
                                            " completions for ", batch.size(), " prompts"));
    }
    for (std::size_t i = 0; i < batch.size(); ++i) out[i].push_back(r[i]);
  }
  return out;
}

}  // namespace detail

/// Judges every pair (i < j) of each prompt's responses; see the top of this header.
/// config_error on a bad option or when responses and prompts differ in number; data_error
/// when the judge returns the wrong number of judgments or a prob_a outside [0, 1].
template <preference_judge J>
rlaif_result rlaif_label(J& judge, const std::vector<std::string>& prompts,
                         const std::vector<std::vector<std::string>>& responses,
                         const rlaif_options& o = {}) {
  constexpr const char* fn = "rlaif_label";
  check_config(responses.size() == prompts.size(), fn, "responses' length",
               rlhf::detail::concat("the number of prompts (", prompts.size(), ")"),
               responses.size());
  check_config(o.prompts_per_batch >= 1, fn, "prompts_per_batch", ">= 1", o.prompts_per_batch);
  check_config(
      std::isfinite(o.min_confidence) && o.min_confidence >= 0.0f && o.min_confidence <= 0.5f, fn,
      "min_confidence", "in [0, 0.5]", o.min_confidence);
  rlaif_result out;
  for (std::size_t first = 0; first < prompts.size(); first += o.prompts_per_batch) {
    const std::size_t last = std::min(prompts.size(), first + o.prompts_per_batch);
    for (auto& r : detail::rlaif_label_batch(judge, prompts, responses, first, last, o, fn)) {
      detail::add_counts(out, r);
      for (auto& row : r.rows) out.rows.push_back(std::move(row));
    }
  }
  return out;
}

/// Samples responses_per_prompt responses of each prompt with `gen` (one generate() call per
/// batch and k; seed = generation.seed mixed with k), then labels every pair with `judge`
/// (rlaif_label). config_error when responses_per_prompt < 2.
template <text_generator G, preference_judge J>
rlaif_result rlaif_pairs(G& gen, J& judge, const std::vector<std::string>& prompts,
                         const rlaif_options& o = {}) {
  constexpr const char* fn = "rlaif_pairs";
  check_config(o.responses_per_prompt >= 2, fn, "responses_per_prompt", ">= 2",
               o.responses_per_prompt);
  check_config(o.prompts_per_batch >= 1, fn, "prompts_per_batch", ">= 1", o.prompts_per_batch);
  std::vector<std::vector<std::string>> responses;
  responses.reserve(prompts.size());
  for (std::size_t first = 0; first < prompts.size(); first += o.prompts_per_batch) {
    const std::size_t last = std::min(prompts.size(), first + o.prompts_per_batch);
    const std::vector<std::string> batch(prompts.begin() + static_cast<std::ptrdiff_t>(first),
                                         prompts.begin() + static_cast<std::ptrdiff_t>(last));
    for (auto& r : detail::rlaif_sample(gen, batch, o, fn)) responses.push_back(std::move(r));
  }
  return rlaif_label(judge, prompts, responses, o);
}

/// One preference_row as a JSON object: {"prompt", "chosen", "rejected", "soft_label",
/// "judge_reason"}; with `chat`, the prompt is [{"role": "user", "content": prompt}] and each
/// response [{"role": "assistant", "content": response}] (chat rows, which the trainers put
/// through the chat template).
[[nodiscard]] inline nlohmann::ordered_json preference_row_json(const preference_row& r,
                                                                bool chat = false) {
  using nlohmann::ordered_json;
  const auto turn = [chat](const char* role, const std::string& text) {
    return chat ? ordered_json::array({{{"role", role}, {"content", text}}}) : ordered_json(text);
  };
  ordered_json j;
  j["prompt"] = turn("user", r.prompt);
  j["chosen"] = turn("assistant", r.chosen);
  j["rejected"] = turn("assistant", r.rejected);
  j["soft_label"] = r.soft_label;
  j["judge_reason"] = r.reason;
  return j;
}

/// Writes `rows` as JSONL, atomically: {"prompt", "chosen", "rejected", "soft_label",
/// "judge_reason"} per line (the preference format of docs/data.md; the data readers ignore
/// the last two fields). io_error naming the file.
inline void write_preference_rows(const std::filesystem::path& path,
                                  const std::vector<preference_row>& rows) {
  std::string text;
  for (const auto& r : rows) {
    text += preference_row_json(r).dump(-1, ' ', false,
                                        nlohmann::ordered_json::error_handler_t::replace);
    text += '\n';
  }
  rlhf::detail::write_file_atomically(path, text, "write_preference_rows");
}

}  // namespace cai
}  // namespace v0
}  // namespace rlhf
