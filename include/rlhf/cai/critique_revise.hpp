// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The supervised stage of Constitutional AI (Bai et al. 2022, §3): a model answers a prompt,
// critiques its answer against a principle drawn from the constitution, and revises it; the
// revisions are SFT data, and (revision, first answer) pairs preference data.
//
//   per prompt:  response_0 = generate(prompt)
//                round r = 1..R:  principle_r ~ uniform (seeded by (seed, prompt))
//                                 critique_r  = generate(critique template: prompt,
//                                               response_{r-1}, principle_r.critique_request)
//                                 response_r  = generate(revision template: ... critique_r,
//                                               principle_r.revision_request)
//   batched:     one generate() call per phase (initial, critique r, revision r) per batch
//   rows:        one JSONL row per prompt (fields: docs/cai.md), appended and flushed as
//                soon as its batch is done; a restarted run skips the prompts already in
//                the file (keyed by the prompt text) and repairs a torn last line
//   failures:    a generate() call that throws is retried (max_attempts in all); then the
//                batch's prompts go to the failures file and the run goes on
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/cai/constitution.hpp"
#include "rlhf/cai/detail/rows_file.hpp"
#include "rlhf/cai/detail/text.hpp"
#include "rlhf/cai/generator.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/atomic_file.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {

/// The prompts of the critique and revision steps. Placeholders, replaced in one pass
/// (substituted text is never scanned again; braces naming nothing stay):
///
///   {prompt}            the user's prompt
///   {response}          the response under critique (the previous round's revision)
///   {principle}         the drawn principle's name
///   {critique_request}  its critique_request
///   {critique}          the critique (revision template only)
///   {revision_request}  its revision_request (revision template only)
///
/// The critique template must hold {response}; the revision template {response} and
/// {critique}.
struct critique_revise_templates {
  /// Asks for a critique of the response.
  std::string critique =
      "Here is a request and a reply to it.\n\nRequest:\n{prompt}\n\nReply:\n{response}\n\n"
      "{critique_request}";
  /// Asks for a better response, given the critique.
  std::string revision =
      "Here is a request, a reply to it, and a critique of the reply.\n\nRequest:\n{prompt}\n\n"
      "Reply:\n{response}\n\nCritique:\n{critique}\n\n{revision_request} Give only the new "
      "reply.";
};

/// Options of critique_revise.
struct critique_revise_config {
  std::size_t rounds = 1;             ///< critique + revision rounds per prompt (>= 1)
  std::size_t prompts_per_batch = 8;  ///< prompts per generate() call (>= 1)
  /// Sampling of every phase; its seed is mixed with the phase and round per call.
  generation_options generation{};
  std::uint64_t seed = 0;                 ///< principle draws (with each prompt's hash)
  critique_revise_templates templates{};  ///< the prompts of each phase (replaceable)
  std::size_t max_attempts = 3;           ///< tries of one generate() call (>= 1)
  /// Wait before the second try; doubled before each further one.
  std::chrono::milliseconds retry_delay{500};
  /// Where failed prompts go; empty: the output's name with ".failures.jsonl" for ".jsonl"
  /// (rows.jsonl -> rows.failures.jsonl).
  std::filesystem::path failures_file{};
  bool fsync = false;  ///< fsync each row (flushing is always done)
  /// Called with (prompts done, prompts in all) at the start and after each batch; done
  /// counts prompts found in the output, written, and failed.
  std::function<void(std::size_t done, std::size_t total)> progress{};
};

/// What a critique_revise run did.
struct critique_revise_summary {
  std::size_t total = 0;       ///< prompts given
  std::size_t written = 0;     ///< rows written by this run
  std::size_t skipped = 0;     ///< prompts already in the output (a resumed run)
  std::size_t duplicates = 0;  ///< prompts given more than once (done once)
  std::size_t failed = 0;      ///< prompts recorded in the failures file
  bool repaired = false;       ///< the output's torn last line was removed or completed
};

/// The failures file of `output` by default (see critique_revise_config::failures_file).
[[nodiscard]] inline std::filesystem::path default_failures_file(
    const std::filesystem::path& output) {
  std::filesystem::path p = output;
  if (p.extension() == ".jsonl") p.replace_extension();
  p += ".failures.jsonl";
  return p;
}

namespace detail {

/// A 64-bit seed from (seed, tag, counter) (Philox).
[[nodiscard]] inline std::uint64_t mix_seed(std::uint64_t seed, std::uint32_t tag,
                                            std::uint64_t counter) {
  const philox_block b = philox_draw(seed, tag, counter);
  return (static_cast<std::uint64_t>(b.w[0]) << 32) | b.w[1];
}

/// g.generate(prompts, o), tried up to `attempts` times; the last error's text is left in
/// `error` when every try failed (and the result is then empty). A result of the wrong
/// length counts as a failed try.
template <text_generator G>
bool generate_with_retries(G& g, const std::vector<std::string>& prompts,
                           const generation_options& o, std::size_t attempts,
                           std::chrono::milliseconds delay, std::vector<std::string>& out,
                           std::string& error) {
  for (std::size_t a = 0; a < attempts; ++a) {
    if (a > 0 && delay.count() > 0) {
      std::this_thread::sleep_for(delay);
      delay *= 2;
    }
    try {
      std::vector<std::string> r = g.generate(prompts, o);
      if (r.size() != prompts.size()) {
        error = rlhf::detail::concat("the generator returned ", r.size(), " completions for ",
                                     prompts.size(), " prompts");
        continue;
      }
      out = std::move(r);
      return true;
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  return false;
}

/// One round of one prompt.
struct cr_round {
  std::string principle, critic_prompt, critic_response, revision_prompt, revision_response;
};

}  // namespace detail

/// Runs the critique → revision loop (see the top of this header) over `prompts`, writing
/// one row per prompt to `output` (JSONL, appended; rows already there are kept and their
/// prompts skipped). Errors: config_error on a bad config, an empty constitution or an
/// empty prompt (naming its index); io_error when a file cannot be written; data_error when
/// the output holds a line that is not a row (other than a torn last line). A generator
/// that keeps failing is not an error: its prompts are counted in `failed`.
template <text_generator G>
critique_revise_summary critique_revise(G& gen, const constitution& c,
                                        const std::vector<std::string>& prompts,
                                        const std::filesystem::path& output,
                                        const critique_revise_config& cfg) {
  constexpr const char* fn = "critique_revise";
  using nlohmann::ordered_json;
  check_config(!c.principles.empty(), fn, "the constitution's principles", "non-empty", 0);
  check_config(cfg.rounds >= 1, fn, "rounds", ">= 1", cfg.rounds);
  check_config(cfg.prompts_per_batch >= 1, fn, "prompts_per_batch", ">= 1", cfg.prompts_per_batch);
  check_config(cfg.max_attempts >= 1, fn, "max_attempts", ">= 1", cfg.max_attempts);
  check_config(!output.empty(), fn, "output", "a file path", "\"\"");
  check_config(detail::has_placeholder(cfg.templates.critique, "response"), fn,
               "templates.critique", "a text holding {response}", cfg.templates.critique);
  for (const char* p : {"response", "critique"}) {
    check_config(detail::has_placeholder(cfg.templates.revision, p), fn, "templates.revision",
                 rlhf::detail::concat("a text holding {", p, "}"), cfg.templates.revision);
  }
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    check_config(!prompts[i].empty(), fn, rlhf::detail::concat("prompts[", i, "]"), "not empty",
                 "\"\"");
  }
  const auto failures_path = cfg.failures_file.empty() ? default_failures_file(output)
                                                       : cfg.failures_file;

  critique_revise_summary s;
  s.total = prompts.size();
  const auto found = detail::recover_rows(output, "prompt", fn);
  s.repaired = found.repaired;
  std::vector<std::size_t> pending;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (found.keys.contains(prompts[i])) {
      ++s.skipped;
    } else if (!seen.insert(prompts[i]).second) {
      ++s.duplicates;
    } else {
      pending.push_back(i);
    }
  }
  std::size_t done = s.skipped + s.duplicates;
  if (cfg.progress) cfg.progress(done, s.total);
  if (pending.empty()) return s;

  detail::row_appender rows(output, cfg.fsync, fn);
  const auto phase_options = [&](std::uint32_t tag, std::uint64_t round) {
    generation_options o = cfg.generation;
    o.seed = detail::mix_seed(cfg.generation.seed, tag, round);
    return o;
  };
  for (std::size_t first = 0; first < pending.size(); first += cfg.prompts_per_batch) {
    const std::size_t count = std::min(cfg.prompts_per_batch, pending.size() - first);
    std::vector<std::string> batch;
    std::vector<principle_rng> rngs;
    for (std::size_t k = 0; k < count; ++k) {
      const std::string& p = prompts[pending[first + k]];
      batch.push_back(p);
      rngs.emplace_back(detail::mix_seed(cfg.seed, 0x63616900u /* "cai" */, 0), detail::fnv1a64(p));
    }
    std::string error, phase = "initial response";
    std::vector<std::string> initial, current;
    std::vector<std::vector<detail::cr_round>> trace(count);
    bool ok = detail::generate_with_retries(gen, batch, phase_options(0x696e6974u, 0),
                                            cfg.max_attempts, cfg.retry_delay, initial, error);
    current = initial;
    for (std::size_t r = 0; ok && r < cfg.rounds; ++r) {
      std::vector<std::string> crit_prompts, crits, rev_prompts, revs;
      std::vector<const principle*> drawn;
      for (std::size_t k = 0; k < count; ++k) {
        const principle& pr = sample_principle(c, rngs[k]);
        drawn.push_back(&pr);
        crit_prompts.push_back(detail::substitute(cfg.templates.critique,
                                                  {{"prompt", batch[k]},
                                                   {"response", current[k]},
                                                   {"principle", pr.name},
                                                   {"critique_request", pr.critique_request}}));
      }
      phase = rlhf::detail::concat("critique (round ", r + 1, ")");
      ok = detail::generate_with_retries(gen, crit_prompts, phase_options(0x63726974u, r),
                                         cfg.max_attempts, cfg.retry_delay, crits, error);
      if (!ok) break;
      for (std::size_t k = 0; k < count; ++k) {
        rev_prompts.push_back(detail::substitute(
            cfg.templates.revision, {{"prompt", batch[k]},
                                     {"response", current[k]},
                                     {"principle", drawn[k]->name},
                                     {"critique_request", drawn[k]->critique_request},
                                     {"critique", crits[k]},
                                     {"revision_request", drawn[k]->revision_request}}));
      }
      phase = rlhf::detail::concat("revision (round ", r + 1, ")");
      ok = detail::generate_with_retries(gen, rev_prompts, phase_options(0x72657669u, r),
                                         cfg.max_attempts, cfg.retry_delay, revs, error);
      if (!ok) break;
      for (std::size_t k = 0; k < count; ++k) {
        trace[k].push_back({drawn[k]->name, crit_prompts[k], crits[k], rev_prompts[k], revs[k]});
      }
      current = std::move(revs);
    }
    if (!ok) {
      detail::row_appender failures(failures_path, cfg.fsync, fn);
      for (std::size_t k = 0; k < count; ++k) {
        ordered_json f;
        f["prompt_id"] = detail::hex16(detail::fnv1a64(batch[k]));
        f["prompt"] = batch[k];
        f["failed"] = true;
        f["phase"] = phase;
        f["attempts"] = cfg.max_attempts;
        f["error"] = error;
        failures.append(f);
      }
      s.failed += count;
    } else {
      for (std::size_t k = 0; k < count; ++k) {
        const auto& last = trace[k].back();
        ordered_json row;
        row["prompt_id"] = detail::hex16(detail::fnv1a64(batch[k]));
        row["prompt"] = batch[k];
        row["init_prompt"] = batch[k];
        row["init_response"] = initial[k];
        row["principle"] = last.principle;
        row["principles"] = ordered_json::array();
        for (const auto& t : trace[k]) row["principles"].push_back(t.principle);
        row["critic_prompt"] = last.critic_prompt;
        row["critic_response"] = last.critic_response;
        row["revision_prompt"] = last.revision_prompt;
        row["revision_response"] = last.revision_response;
        row["rounds"] = ordered_json::array();
        for (const auto& t : trace[k]) {
          row["rounds"].push_back({{"principle", t.principle},
                                   {"critic_prompt", t.critic_prompt},
                                   {"critic_response", t.critic_response},
                                   {"revision_prompt", t.revision_prompt},
                                   {"revision_response", t.revision_response}});
        }
        row["chosen"] = last.revision_response;
        row["rejected"] = initial[k];
        row["messages"] = ordered_json::array(
            {{{"role", "user"}, {"content", batch[k]}},
             {{"role", "assistant"}, {"content", last.revision_response}}});
        rows.append(row);
        ++s.written;
      }
    }
    done += count;
    if (cfg.progress) cfg.progress(done, s.total);
  }
  return s;
}

/// What export_preference_rows wrote.
struct export_summary {
  std::size_t written = 0;    ///< preference rows written
  std::size_t identical = 0;  ///< rows left out: the revision equals the first response
};

/// The rows of a critique_revise output as a preference file for the DPO and reward trainers:
/// {"prompt", "chosen", "rejected"} per row (the combined rows also hold "messages", which
/// makes the data readers take them for language-modeling examples). Rows whose revision
/// equals the first response carry no preference and are left out. The output is written
/// atomically. io_error / data_error naming the file and line.
inline export_summary export_preference_rows(const std::filesystem::path& rows_file,
                                             const std::filesystem::path& output) {
  constexpr const char* fn = "export_preference_rows";
  std::ifstream in(rows_file, std::ios::binary);
  if (!in)
    throw io_error(rlhf::detail::concat(fn, ": ", rows_file.string(), ": cannot open for reading"));
  export_summary s;
  std::string text, line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto where = rlhf::detail::concat(rows_file.string(), ":", number);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw data_error(rlhf::detail::concat(where, ": not valid JSON"));
    }
    for (const char* k : {"prompt", "chosen", "rejected"}) {
      if (!j.is_object() || !j.contains(k) || !j[k].is_string()) {
        throw data_error(
            rlhf::detail::concat(where, ": field '", k, "' is missing or not a string"));
      }
    }
    if (j["chosen"] == j["rejected"]) {
      ++s.identical;
      continue;
    }
    nlohmann::ordered_json o;
    o["prompt"] = j["prompt"];
    o["chosen"] = j["chosen"];
    o["rejected"] = j["rejected"];
    text += o.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    text += '\n';
    ++s.written;
  }
  rlhf::detail::write_file_atomically(output, text, fn);
  return s;
}

}  // namespace cai
}  // namespace v0
}  // namespace rlhf
