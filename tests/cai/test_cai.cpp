// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Constitutional AI and RLAIF (rlhf/cai/): constitution validation and seeded uniform
// principle draws; the critique → revision loop's rows, batching, seeding, resume after a
// SIGKILL (no row lost or duplicated), torn-line repair and failure handling; judge answer
// parsing, position-bias cancellation, rule / reward-model / ensemble judges, RLAIF pairs and
// their resumable file (resume after an exception, a torn file or a SIGKILL: the rows of an
// uninterrupted run); and the bundled transformer as a generator and option scorer.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/cai/constitution.hpp"
#include "rlhf/cai/critique_revise.hpp"
#include "rlhf/cai/generator.hpp"
#include "rlhf/cai/judge.hpp"
#include "rlhf/cai/model_generator.hpp"
#include "rlhf/cai/model_judge.hpp"
#include "rlhf/cai/reward_model_judge.hpp"
#include "rlhf/cai/rlaif.hpp"
#include "rlhf/cai/rlaif_file.hpp"
#include "rlhf/data/dataset.hpp"
#include "rlhf/model/generate.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/tokenizer.hpp"

namespace test_cai_cases {

namespace {

namespace fs = std::filesystem;
namespace cai = rlhf::cai;
using json = nlohmann::json;
using B = rlhf::eigen_backend;

/// `name` in this process's scratch folder (removed at exit).
fs::path scratch(const std::string& name) {
  static const fs::path root = [] {
    const fs::path p = fs::temp_directory_path() / ("rlhf_cai_" + std::to_string(::getpid()));
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  static const struct cleanup {
    fs::path p;
    ~cleanup() {
      std::error_code ec;
      if (p.filename().string().find(std::to_string(::getpid())) != std::string::npos) {
        fs::remove_all(p, ec);
      }
    }
  } c{root};
  const fs::path f = root / name;
  fs::remove(f);
  return f;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Waits (30 s at most) until `file` holds `n` complete lines, then SIGKILLs `child` and
/// reaps it; returns the lines seen (a simulated crash mid-run).
std::size_t kill_after_lines(pid_t child, const fs::path& file, std::size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::size_t lines = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto text = read_text(file);
    lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    if (lines >= n) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  return lines;
}

std::vector<json> read_rows(const fs::path& p) {
  std::vector<json> rows;
  std::ifstream in(p, std::ios::binary);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

/// The message of the exception `f` throws as E (empty when it throws nothing).
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return {};
}

// ---- constitution -------------------------------------------------------------------------

const char* const two_principles = R"({"name": "t", "principles": [
  {"name": "kind", "critique_request": "Is it kind?", "revision_request": "Make it kind."},
  {"name": "short", "critique_request": "Is it short?", "revision_request": "Shorten it.",
   "judge_question": "Which is shorter?"}]})";

TEST_CASE("the shipped default constitution loads and equals default_constitution()") {
  const auto c = cai::load_constitution(fs::path(RLHF_SOURCE_DIR) /
                                        "share/rlhf/constitutions/default.json");
  CHECK(c == cai::default_constitution());
  CHECK(c.principles.size() >= 4);
  const auto back = scratch("roundtrip.json");
  write_text(back, cai::to_json(c).dump(2));
  CHECK(cai::load_constitution(back) == c);
  const auto t = scratch("two.json");
  write_text(t, two_principles);
  const auto c2 = cai::load_constitution(t);
  REQUIRE(c2.principles.size() == 2);
  CHECK(c2.name == "t");
  CHECK(c2.principles[0].judge_question.empty());
  CHECK(c2.principles[1].judge_question == "Which is shorter?");
  CHECK(cai::find_principle(c2, "short").revision_request == "Shorten it.");
  CHECK(message_of<rlhf::data_error>([&] { (void)cai::find_principle(c2, "x"); }).find("'x'") !=
        std::string::npos);
}

TEST_CASE("constitution errors name the file, the principle and the field") {
  const auto f = scratch("bad.json");
  const std::string file = f.string();
  struct bad_case {
    const char* text;
    std::vector<std::string> says;  // every fragment must be in the message
  };
  const std::vector<bad_case> cases = {
      {R"({"principles": [{"name": "a", "revision_request": "r"}]})",
       {file, "principle 0 ('a')", "'critique_request' is missing"}},
      {R"({"principles": [{"name": "a", "critique_request": "c", "revision_request": 3}]})",
       {file, "principle 0 ('a')", "'revision_request'", "non-empty string", "got 3"}},
      {R"({"principles": [{"name": "a", "critique_request": "c", "revision_request": "r"},
                          {"name": "b", "critique_request": "", "revision_request": "r"}]})",
       {file, "principle 1 ('b')", "'critique_request'", "got \"\""}},
      {R"({"principles": [{"name": "a", "critique_request": "c", "revision_request": "r"},
                          {"name": "a", "critique_request": "d", "revision_request": "s"}]})",
       {file, "principle 1 ('a')", "'name'", "unique"}},
      {R"({"principles": [{"critique_request": "c", "revision_request": "r"}]})",
       {file, "principle 0", "'name' is missing"}},
      {R"({"principles": [{"name": "a", "critique_request": "c", "revision_request": "r",
                           "judge_question": ""}]})",
       {file, "principle 0 ('a')", "'judge_question'"}},
      {R"({"principles": [{"name": "a", "critique_request": "c", "revision_request": "r",
                           "judge_questoin": "q"}]})",
       {file, "principle 0 ('a')", "unknown field 'judge_questoin'"}},
      {R"({"principles": []})", {file, "'principles'", "non-empty list"}},
      {R"({"principles": {"name": "a"}})", {file, "'principles'", "non-empty list"}},
      {R"({"name": "x"})", {file, "'principles' is missing"}},
      {R"({"name": 5, "principles": []})", {file, "'name'", "expected a string"}},
      {R"({"principles": ["a"]})", {file, "principle 0", "expected a JSON object"}},
      {R"([1, 2])", {file, "expected a JSON object"}},
      {R"({"principles": [)", {file, "not valid JSON"}},
      {"", {file, "not valid JSON"}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    write_text(f, c.text);
    const auto m = message_of<rlhf::data_error>([&] { (void)cai::load_constitution(f); });
    REQUIRE_FALSE(m.empty());
    for (const auto& s : c.says) {
      CAPTURE(m);
      CHECK(m.find(s) != std::string::npos);
    }
  }
  const auto missing = scratch("does_not_exist.json");
  const auto m = message_of<rlhf::io_error>([&] { (void)cai::load_constitution(missing); });
  CHECK(m.find(missing.string()) != std::string::npos);
  CHECK(m.find("cannot open") != std::string::npos);
}

// ---- principle sampling -------------------------------------------------------------------

TEST_CASE("principle draws are seeded, stream-separated and uniform") {
  const auto c = cai::default_constitution();
  const auto draw = [&](std::uint64_t seed, std::uint64_t stream, int n) {
    cai::principle_rng rng(seed, stream);
    std::vector<std::string> names;
    for (int i = 0; i < n; ++i) names.push_back(cai::sample_principle(c, rng).name);
    return names;
  };
  CHECK(draw(7, 1, 50) == draw(7, 1, 50));
  CHECK(draw(7, 1, 50) != draw(8, 1, 50));
  CHECK(draw(7, 1, 50) != draw(7, 2, 50));
  // Pinned words: Philox is the same everywhere, so these are too.
  cai::principle_rng a(0, 0), b(0, 0);
  const auto first = a();
  CHECK(first == b());
  CHECK(a() != first);

  // Chi-square over 60000 draws of 6 principles with a fixed seed: df = 5, the 0.1% critical
  // value is 20.52 (a fair draw fails this one time in a thousand seeds; this seed is fixed).
  const std::size_t n = c.principles.size();
  REQUIRE(n == 6);
  std::vector<double> count(n, 0.0);
  cai::principle_rng rng(12345, 0);
  const int draws = 60000;
  for (int i = 0; i < draws; ++i) count[cai::uniform_index(n, rng)] += 1;
  const double expected = draws / static_cast<double>(n);
  double chi2 = 0;
  for (const double k : count) chi2 += (k - expected) * (k - expected) / expected;
  CHECK(chi2 < 20.52);
  // And not suspiciously perfect: a draw that cycles through the indices would give 0.
  CHECK(chi2 > 0.0);
}

/// A generator of 0, 1, ..., 7, 0, 1, ... (range 8): shows the rejection of the top block.
struct counting_rng {
  using result_type = std::uint32_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return 7; }
  result_type next = 0;
  result_type operator()() { return next++ % 8; }
};

TEST_CASE("uniform_index rejects the partial top block instead of folding it") {
  counting_rng r;
  std::vector<std::size_t> got;
  for (int i = 0; i < 8; ++i) got.push_back(cai::uniform_index(3, r));
  // 0..5 map to 0,1,2,0,1,2; 6 and 7 are refused; then 0,1 again.
  CHECK(got == std::vector<std::size_t>{0, 1, 2, 0, 1, 2, 0, 1});
  CHECK(r.next == 10);
  CHECK_THROWS_AS((void)cai::uniform_index(0, r), rlhf::config_error);
  CHECK_THROWS_AS((void)cai::uniform_index(9, r), rlhf::config_error);
}

// ---- the critique → revision loop ---------------------------------------------------------

/// A deterministic fake model: recognises the phase from the default templates.
struct fake_model {
  std::size_t calls = 0;
  std::vector<std::size_t> batch_sizes;
  std::vector<std::uint64_t> seeds;
  std::vector<std::string> generate(const std::vector<std::string>& prompts,
                                    const cai::generation_options& o) {
    ++calls;
    batch_sizes.push_back(prompts.size());
    seeds.push_back(o.seed);
    std::vector<std::string> out;
    for (const auto& p : prompts) out.push_back(answer(p));
    return out;
  }
  static std::string answer(const std::string& p) {
    if (p.rfind("Here is a request and a reply", 0) == 0) {
      return "CRITIQUE of [" + between(p, "Reply:\n", "\n\n") + "]";
    }
    if (p.rfind("Here is a request, a reply", 0) == 0) {
      return "REVISED " + between(p, "Reply:\n", "\n\n");
    }
    return "first answer to " + p;
  }
  static std::string between(const std::string& s, const std::string& a, const std::string& b) {
    const auto i = s.find(a);
    if (i == std::string::npos) return "?";
    const auto j = s.find(b, i + a.size());
    return s.substr(i + a.size(), j - i - a.size());
  }
};

std::vector<std::string> some_prompts(int n) {
  std::vector<std::string> p;
  for (int i = 0; i < n; ++i) p.push_back("question number " + std::to_string(i) + "?");
  return p;
}

TEST_CASE("critique_revise writes one complete, consistent row per prompt") {
  const auto c = cai::default_constitution();
  const auto prompts = some_prompts(5);
  const auto out = scratch("rows.jsonl");
  fake_model m;
  cai::critique_revise_config cfg;
  cfg.prompts_per_batch = 2;
  std::vector<std::pair<std::size_t, std::size_t>> progress;
  cfg.progress = [&](std::size_t d, std::size_t t) { progress.emplace_back(d, t); };
  const auto s = cai::critique_revise(m, c, prompts, out, cfg);
  CHECK(s.total == 5);
  CHECK(s.written == 5);
  CHECK(s.skipped == 0);
  CHECK(s.failed == 0);
  // 3 batches (2, 2, 1) × 3 phases, one generate() call each.
  CHECK(m.calls == 9);
  CHECK(m.batch_sizes == std::vector<std::size_t>{2, 2, 2, 2, 2, 2, 1, 1, 1});
  CHECK(progress ==
        std::vector<std::pair<std::size_t, std::size_t>>{{0, 5}, {2, 5}, {4, 5}, {5, 5}});
  // Each phase gets its own seed; batches of one phase share it.
  CHECK(m.seeds[0] != m.seeds[1]);
  CHECK(m.seeds[1] != m.seeds[2]);
  CHECK(m.seeds[0] == m.seeds[3]);

  const auto rows = read_rows(out);
  REQUIRE(rows.size() == 5);
  std::set<std::string> ids;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    CAPTURE(r.dump());
    for (const char* k : {"prompt_id", "prompt", "init_prompt", "init_response", "principle",
                          "principles", "critic_prompt", "critic_response", "revision_prompt",
                          "revision_response", "rounds", "chosen", "rejected", "messages"}) {
      CHECK(r.contains(k));
    }
    const std::string p = prompts[i];
    CHECK(r["prompt"] == p);
    CHECK(r["init_prompt"] == p);
    CHECK(r["prompt_id"].get<std::string>().size() == 16);
    ids.insert(r["prompt_id"].get<std::string>());
    CHECK(r["init_response"] == "first answer to " + p);
    const auto& pr = cai::find_principle(c, r["principle"].get<std::string>());
    CHECK(r["principles"] == json::array({pr.name}));
    const std::string crit_prompt = r["critic_prompt"];
    CHECK(crit_prompt.find(p) != std::string::npos);
    CHECK(crit_prompt.find("first answer to " + p) != std::string::npos);
    CHECK(crit_prompt.find(pr.critique_request) != std::string::npos);
    CHECK(r["critic_response"] == "CRITIQUE of [first answer to " + p + "]");
    const std::string rev_prompt = r["revision_prompt"];
    CHECK(rev_prompt.find(r["critic_response"].get<std::string>()) != std::string::npos);
    CHECK(rev_prompt.find(pr.revision_request) != std::string::npos);
    CHECK(r["revision_response"] == "REVISED first answer to " + p);
    CHECK(r["chosen"] == r["revision_response"]);
    CHECK(r["rejected"] == r["init_response"]);
    CHECK(r["messages"] == json::array({{{"role", "user"}, {"content", p}},
                                        {{"role", "assistant"}, {"content", r["chosen"]}}}));
    REQUIRE(r["rounds"].size() == 1);
    CHECK(r["rounds"][0]["revision_response"] == r["revision_response"]);
  }
  CHECK(ids.size() == 5);

  // The rows file is SFT data as it is (language-modeling via "messages").
  rlhf::data::jsonl_dataset sft(out);
  CHECK(sft.format() == rlhf::data::format::language_modeling);
  CHECK(sft.size() == 5);
  CHECK(sft.get(0).text.messages.size() == 2);
  // Exported, it is DPO / reward data.
  const auto pref = scratch("pref.jsonl");
  const auto e = cai::export_preference_rows(out, pref);
  CHECK(e.written == 5);
  rlhf::data::jsonl_dataset dpo(pref, {}, rlhf::data::format::preference);
  REQUIRE(dpo.size() == 5);
  CHECK(dpo.get(2).chosen.text == rows[2]["chosen"].get<std::string>());
  CHECK(dpo.get(2).rejected.text == rows[2]["rejected"].get<std::string>());
  CHECK(dpo.get(2).prompt.text == prompts[2]);
}

TEST_CASE("critique_revise: principles depend on the prompt, not on batching or order") {
  const auto c = cai::default_constitution();
  auto prompts = some_prompts(12);
  std::map<std::string, std::string> first;
  {
    fake_model m;
    cai::critique_revise_config cfg;
    cfg.prompts_per_batch = 5;
    const auto out = scratch("order_a.jsonl");
    (void)cai::critique_revise(m, c, prompts, out, cfg);
    for (const auto& r : read_rows(out)) first[r["prompt"]] = r["principle"];
  }
  std::reverse(prompts.begin(), prompts.end());
  fake_model m;
  cai::critique_revise_config cfg;
  cfg.prompts_per_batch = 1;
  const auto out = scratch("order_b.jsonl");
  (void)cai::critique_revise(m, c, prompts, out, cfg);
  std::set<std::string> distinct;
  for (const auto& r : read_rows(out)) {
    CHECK(first.at(r["prompt"]) == r["principle"]);
    distinct.insert(r["principle"]);
  }
  CHECK(distinct.size() > 1);  // not one principle for everything
  // Another seed draws other principles for some prompt.
  fake_model m2;
  cfg.seed = 99;
  const auto out2 = scratch("order_c.jsonl");
  (void)cai::critique_revise(m2, c, prompts, out2, cfg);
  std::size_t differ = 0;
  for (const auto& r : read_rows(out2)) differ += first.at(r["prompt"]) != r["principle"] ? 1 : 0;
  CHECK(differ > 0);
}

TEST_CASE("critique_revise: several rounds revise the previous revision") {
  const auto c = cai::default_constitution();
  fake_model m;
  cai::critique_revise_config cfg;
  cfg.rounds = 3;
  const auto out = scratch("rounds.jsonl");
  const auto s = cai::critique_revise(m, c, some_prompts(2), out, cfg);
  CHECK(s.written == 2);
  CHECK(m.calls == 7);  // 1 + 3 × 2
  const auto rows = read_rows(out);
  REQUIRE(rows.size() == 2);
  const auto& r = rows[0];
  REQUIRE(r["rounds"].size() == 3);
  REQUIRE(r["principles"].size() == 3);
  const std::string p = r["prompt"];
  CHECK(r["rounds"][0]["revision_response"] == "REVISED first answer to " + p);
  CHECK(r["rounds"][1]["revision_response"] == "REVISED REVISED first answer to " + p);
  CHECK(r["revision_response"] == "REVISED REVISED REVISED first answer to " + p);
  CHECK(r["critic_prompt"] == r["rounds"][2]["critic_prompt"]);
  CHECK(r["principle"] == r["principles"][2]);
  CHECK(r["chosen"] == r["revision_response"]);
  CHECK(r["rejected"] == "first answer to " + p);
}

TEST_CASE("critique_revise: custom templates, placeholders substituted once") {
  const auto c = cai::default_constitution();
  cai::critique_revise_config cfg;
  cfg.templates.critique = "CRIT<{principle}|{response}|{unknown}>";
  cfg.templates.revision = "REV<{critique}|{response}|{revision_request}>";
  std::vector<std::string> seen;
  cai::callable_generator g([&](const std::vector<std::string>& p, const cai::generation_options&) {
    std::vector<std::string> out;
    for (const auto& x : p) {
      seen.push_back(x);
      out.push_back(x.rfind("CRIT", 0) == 0 ? "crit {response}" : "resp {critique}");
    }
    return out;
  });
  const auto out = scratch("templates.jsonl");
  (void)cai::critique_revise(g, c, {"P {prompt}"}, out, cfg);
  const auto rows = read_rows(out);
  REQUIRE(rows.size() == 1);
  const auto& pr = cai::find_principle(c, rows[0]["principle"].get<std::string>());
  CHECK(rows[0]["critic_prompt"] == "CRIT<" + pr.name + "|resp {critique}|{unknown}>");
  CHECK(rows[0]["revision_prompt"] ==
        "REV<crit {response}|resp {critique}|" + pr.revision_request + ">");
  cfg.templates.critique = "no response placeholder";
  CHECK(message_of<rlhf::config_error>([&] {
          (void)cai::critique_revise(g, c, {"x"}, scratch("t2.jsonl"), cfg);
        }).find("templates.critique") != std::string::npos);
  cfg.templates = {};
  CHECK(message_of<rlhf::config_error>([&] {
          (void)cai::critique_revise(g, c, {"x", ""}, scratch("t3.jsonl"), cfg);
        }).find("prompts[1]") != std::string::npos);
  cfg.rounds = 0;
  CHECK_THROWS_AS((void)cai::critique_revise(g, c, {"x"}, scratch("t4.jsonl"), cfg),
                  rlhf::config_error);
}

TEST_CASE("critique_revise resumes after SIGKILL without losing or duplicating a row") {
  const auto c = cai::default_constitution();
  const auto prompts = some_prompts(40);  // ≈ 2.4 s for the child: killed long before
  const auto out = scratch("killed.jsonl");
  cai::critique_revise_config cfg;
  cfg.prompts_per_batch = 1;
  std::fflush(nullptr);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child: a slow model (≈ 60 ms a row), killed part-way.
    try {
      cai::callable_generator slow(
          [](const std::vector<std::string>& p, const cai::generation_options& o) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            fake_model m;
            return m.generate(p, o);
          });
      (void)cai::critique_revise(slow, c, prompts, out, cfg);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  REQUIRE(kill_after_lines(child, out, 3) >= 3);  // at least 3 complete rows, then killed
  const auto before = read_rows(out).size();
  CHECK(before < prompts.size());  // it was killed before the end

  fake_model m;
  const auto s = cai::critique_revise(m, c, prompts, out, cfg);
  CHECK(s.skipped == before);
  CHECK(s.written == prompts.size() - before);
  const auto rows = read_rows(out);
  std::map<std::string, int> seen;
  for (const auto& r : rows) seen[r["prompt"]]++;
  CHECK(rows.size() == prompts.size());
  for (const auto& p : prompts) CHECK(seen[p] == 1);
  // A third run has nothing to do.
  const auto again = cai::critique_revise(m, c, prompts, out, cfg);
  CHECK(again.skipped == prompts.size());
  CHECK(again.written == 0);
}

TEST_CASE("critique_revise repairs a torn last line and refuses a corrupt middle line") {
  const auto c = cai::default_constitution();
  const auto prompts = some_prompts(4);
  const auto out = scratch("torn.jsonl");
  fake_model m;
  cai::critique_revise_config cfg;
  (void)cai::critique_revise(m, c, {prompts[0], prompts[1]}, out, cfg);
  const std::string two = read_text(out);
  // Cut in the middle of a third row (a kill during its write).
  const auto third_file = scratch("third.jsonl");
  (void)cai::critique_revise(m, c, {prompts[2]}, third_file, cfg);
  const std::string third = read_text(third_file);
  write_text(out, two + third.substr(0, third.size() / 2));
  auto s = cai::critique_revise(m, c, prompts, out, cfg);
  CHECK(s.repaired);
  CHECK(s.skipped == 2);
  CHECK(s.written == 2);
  auto rows = read_rows(out);
  REQUIRE(rows.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) CHECK(rows[i]["prompt"] == prompts[i]);

  // A whole last row without its newline is kept (and completed).
  write_text(out, two + third.substr(0, third.size() - 1));
  s = cai::critique_revise(m, c, prompts, out, cfg);
  CHECK(s.repaired);
  CHECK(s.skipped == 3);
  CHECK(s.written == 1);
  CHECK(read_rows(out).size() == 4);

  // Garbage before a good line is not a torn end: refused, file untouched.
  const std::string corrupt = "{\"prompt\": \"a\"}\nnot json\n" + two;
  write_text(out, corrupt);
  const auto msg = message_of<rlhf::data_error>(
      [&] { (void)cai::critique_revise(m, c, prompts, out, cfg); });
  CHECK(msg.find(out.string() + ":2") != std::string::npos);
  CHECK(read_text(out) == corrupt);
  // A row without the key field is refused as well (when it is not last).
  write_text(out, "{\"x\": 1}\n" + two);
  CHECK(message_of<rlhf::data_error>([&] {
          (void)cai::critique_revise(m, c, prompts, out, cfg);
        }).find("'prompt'") != std::string::npos);
}

TEST_CASE("critique_revise retries a failing generator, then records the batch as failed") {
  const auto c = cai::default_constitution();
  cai::critique_revise_config cfg;
  cfg.prompts_per_batch = 2;
  cfg.retry_delay = std::chrono::milliseconds(0);
  cfg.max_attempts = 3;
  SUBCASE("transient failures are retried") {
    int failures_left = 2;
    std::size_t calls = 0;
    cai::callable_generator flaky(
        [&](const std::vector<std::string>& p, const cai::generation_options& o) {
          ++calls;
          if (p[0].rfind("Here is a request and a reply", 0) == 0 && failures_left > 0) {
            --failures_left;
            throw std::runtime_error("connection reset");
          }
          fake_model m;
          return m.generate(p, o);
        });
    const auto out = scratch("flaky.jsonl");
    const auto s = cai::critique_revise(flaky, c, some_prompts(2), out, cfg);
    CHECK(s.written == 2);
    CHECK(s.failed == 0);
    CHECK(calls == 5);
    CHECK(!fs::exists(cai::default_failures_file(out)));
  }
  SUBCASE("persistent failures go to the failures file and the run goes on") {
    std::size_t calls = 0;
    cai::callable_generator broken(
        [&](const std::vector<std::string>& p, const cai::generation_options& o) {
          ++calls;
          for (const auto& x : p) {
            if (x.find("REVISE-ME-NOT") != std::string::npos &&
                x.rfind("Here is a request, a reply", 0) == 0) {
              throw std::runtime_error("server error 500");
            }
          }
          fake_model m;
          return m.generate(p, o);
        });
    const std::vector<std::string> prompts = {"a", "b", "REVISE-ME-NOT", "c", "d"};
    const auto out = scratch("broken.jsonl");
    const auto s = cai::critique_revise(broken, c, prompts, out, cfg);
    CHECK(s.written == 3);
    CHECK(s.failed == 2);  // the batch {REVISE-ME-NOT, c}
    CHECK(calls == 3 + (2 + 3) + 3);
    const auto rows = read_rows(out);
    REQUIRE(rows.size() == 3);
    CHECK(rows[2]["prompt"] == "d");
    const auto failed = read_rows(cai::default_failures_file(out));
    REQUIRE(failed.size() == 2);
    CHECK(cai::default_failures_file(out).filename() == "broken.failures.jsonl");
    CHECK(failed[0]["prompt"] == "REVISE-ME-NOT");
    CHECK(failed[1]["prompt"] == "c");
    CHECK(failed[0]["failed"] == true);
    CHECK(failed[0]["error"] == "server error 500");
    CHECK(failed[0]["phase"] == "revision (round 1)");
    CHECK(failed[0]["attempts"] == 3);
    // A rerun retries the failed prompts (they are not in the rows file).
    fake_model m;
    const auto again = cai::critique_revise(m, c, prompts, out, cfg);
    CHECK(again.skipped == 3);
    CHECK(again.written == 2);
    CHECK(read_rows(out).size() == 5);
  }
  SUBCASE("a generator returning the wrong number of completions counts as failing") {
    cai::critique_revise_config one = cfg;
    one.max_attempts = 1;
    auto short_gen = [](const std::vector<std::string>&, const cai::generation_options&) {
      return std::vector<std::string>{};
    };
    struct raw {
      decltype(short_gen) f;
      std::vector<std::string> generate(const std::vector<std::string>& p,
                                        const cai::generation_options& o) {
        return f(p, o);
      }
    } g{short_gen};
    const auto out = scratch("short.jsonl");
    const auto s = cai::critique_revise(g, c, {"x"}, out, one);
    CHECK(s.failed == 1);
    const auto failed = read_rows(cai::default_failures_file(out));
    REQUIRE(failed.size() == 1);
    CHECK(failed[0]["error"].get<std::string>().find("0 completions for 1") != std::string::npos);
  }
}

// ---- judges ---------------------------------------------------------------------------------

TEST_CASE("parse_judge_answer accepts the letter in common wrappings and nothing else") {
  const std::vector<std::pair<std::string, char>> yes = {
      {"A", 'A'},
      {"B", 'B'},
      {"a", 'A'},
      {"b.", 'B'},
      {"(A)", 'A'},
      {"[B]", 'B'},
      {"Response A", 'A'},
      {"response b", 'B'},
      {"Answer: B", 'B'},
      {"answer - a", 'A'},
      {"**B**", 'B'},
      {"*A*.", 'A'},
      {"`A`", 'A'},
      {"  B  \n", 'B'},
      {"\n\nA\nbecause it is kind", 'A'},
      {"The answer is (B).", 'B'},
      {"Option A", 'A'},
      {"\"B\"", 'B'},
      {"Answer: **(A)**", 'A'},
  };
  for (const auto& [text, want] : yes) {
    CAPTURE(text);
    const auto got = cai::parse_judge_answer(text);
    REQUIRE(got.has_value());
    CHECK(*got == want);
  }
  const std::vector<std::string> no = {
      "",   "   ",          "Both",    "neither", "A and B",   "A or B", "A is better", "C",
      "AB", "I cannot say", "Answer:", "(A) (B)", "responses", "a lot",  "\xff\xfe"};
  for (const auto& text : no) {
    CAPTURE(text);
    CHECK_FALSE(cai::parse_judge_answer(text).has_value());
  }
}

/// An option scorer with a fixed preference for the first position: log P(A) = quality of
/// the reply shown as A + bonus, log P(B) = quality of the reply shown as B (unnormalised
/// log-weights; the judge's softmax normalises). Quality: the count of '+' in the reply.
struct biased_scorer {
  float bonus = 2.0f;
  std::size_t calls = 0;
  static float quality(const std::string& s) {
    return static_cast<float>(std::count(s.begin(), s.end(), '+'));
  }
  std::vector<std::vector<float>> option_log_probs(const std::vector<std::string>& prompts,
                                                   const std::vector<std::string>& options) {
    ++calls;
    REQUIRE(options == std::vector<std::string>{"A", "B"});
    std::vector<std::vector<float>> out;
    for (const auto& p : prompts) {
      const auto a = fake_model::between(p, "Reply A:\n", "\n\n");
      const auto b = fake_model::between(p, "Reply B:\n", "\n\n");
      out.push_back({quality(a) + bonus, quality(b)});
    }
    return out;
  }
};

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

TEST_CASE("model_judge: asking in both orders cancels a position bias") {
  biased_scorer s;
  cai::model_judge<biased_scorer> judge(s, cai::default_constitution());
  const std::vector<cai::judge_query> q = {
      {"p", "same+", "other+"},  // equal quality
      {"p", "good++", "bad"},    // A better by 2
      {"p", "bad", "good+"},     // B better by 1
  };
  const auto j = judge.judge(q);
  CHECK(s.calls == 1);  // one scorer call for all queries and both orders
  REQUIRE(j.size() == 3);
  REQUIRE(j[0].prob_a.has_value());
  CHECK(*j[0].prob_a == doctest::Approx(0.5).epsilon(1e-6));
  // (σ(d + β) + 1 − σ(−d + β)) / 2 with β = 2.
  const auto expect = [](double d) { return (sigmoid(d + 2) + 1 - sigmoid(-d + 2)) / 2; };
  CHECK(*j[1].prob_a == doctest::Approx(expect(2)).epsilon(1e-5));
  CHECK(*j[1].prob_a > 0.5f);
  CHECK(*j[2].prob_a == doctest::Approx(expect(-1)).epsilon(1e-5));
  CHECK(*j[2].prob_a < 0.5f);
  // A single order would have been fooled: σ(0 − 1 + 2) > 0.5 although B is better.
  CHECK(sigmoid(1) > 0.5);
  // Swapping the responses mirrors the judgment (same principle drawn).
  const auto swapped = judge.judge({{"p", "bad", "good++"}});
  CHECK(*swapped[0].prob_a == doctest::Approx(1.0 - *j[1].prob_a).epsilon(1e-6));
  CHECK(judge.stats().queries == 4);
  CHECK(judge.stats().judged == 4);
  CHECK(judge.stats().scored_orders == 8);
  CHECK(j[1].reason.find("principle ") == 0);
}

/// A text judge: answers from a script keyed by which reply is shown first.
struct scripted_generator {
  std::map<std::string, std::string> answer_when_a_is;  // reply shown as A -> answer
  std::vector<std::string> prompts_seen;
  cai::generation_options last{};
  std::vector<std::string> generate(const std::vector<std::string>& prompts,
                                    const cai::generation_options& o) {
    last = o;
    std::vector<std::string> out;
    for (const auto& p : prompts) {
      prompts_seen.push_back(p);
      const auto a = fake_model::between(p, "Reply A:\n", "\n\n");
      const auto it = answer_when_a_is.find(a);
      out.push_back(it == answer_when_a_is.end() ? "" : it->second);
    }
    return out;
  }
};

TEST_CASE("model_judge on text answers: both orders, one order, none") {
  scripted_generator g;
  // x vs y: both orders say x is better -> 1.
  g.answer_when_a_is = {{"x", "Answer: A"},
                        {"y", "(B)"},
                        // u vs v: always "A" (pure position bias) -> 0.5.
                        {"u", "A"},
                        {"v", "A"},
                        // s vs t: order (s, t) garbage, order (t, s) says A = t -> 0.
                        {"s", "Both are fine"},
                        {"t", "**A**"},
                        // m vs n: neither order parses -> no judgment.
                        {"m", "I cannot decide"},
                        {"n", ""}};
  cai::model_judge<scripted_generator> judge(g, cai::default_constitution());
  const auto j = judge.judge({{"p", "x", "y"}, {"p", "u", "v"}, {"p", "s", "t"}, {"p", "m", "n"}});
  REQUIRE(j.size() == 4);
  CHECK(j[0].prob_a == std::optional<float>(1.0f));
  CHECK(j[1].prob_a == std::optional<float>(0.5f));
  CHECK(j[2].prob_a == std::optional<float>(0.0f));
  CHECK_FALSE(j[3].prob_a.has_value());
  CHECK(j[3].reason.find("unparsed") != std::string::npos);
  CHECK(g.prompts_seen.size() == 8);
  CHECK(g.last.temperature == 0.0f);
  const auto& st = judge.stats();
  CHECK(st.queries == 4);
  CHECK(st.judged == 3);
  CHECK(st.no_judgment == 1);
  CHECK(st.one_order_only == 1);
  CHECK(st.parsed_orders == 5);
  CHECK(st.unparsed_orders == 3);
  // The prompt holds the principle's question.
  bool has_question = false;
  for (const auto& p : cai::default_constitution().principles) {
    has_question = has_question || g.prompts_seen[0].find(p.judge_question) != std::string::npos;
  }
  CHECK(has_question);
}

/// Both concepts: log-probs unknown (-inf) for prompts mentioning "nolp", then text.
struct mixed_model {
  std::size_t generated = 0;
  std::vector<std::vector<float>> option_log_probs(const std::vector<std::string>& prompts,
                                                   const std::vector<std::string>&) {
    std::vector<std::vector<float>> out;
    const float ninf = -std::numeric_limits<float>::infinity();
    for (const auto& p : prompts) {
      if (p.find("nolp") != std::string::npos) {
        out.push_back({ninf, ninf});
      } else if (p.find("onlyA") != std::string::npos) {
        out.push_back({-0.1f, ninf});  // B unknown: A certain
      } else {
        out.push_back({std::log(0.75f), std::log(0.25f)});
      }
    }
    return out;
  }
  std::vector<std::string> generate(const std::vector<std::string>& prompts,
                                    const cai::generation_options&) {
    generated += prompts.size();
    return std::vector<std::string>(prompts.size(), "B");
  }
};

TEST_CASE("model_judge with scores and text: text only where the scores are unknown") {
  mixed_model m;
  cai::model_judge<mixed_model> judge(m, cai::default_constitution());
  const auto j = judge.judge({{"p", "r1", "r2"}, {"nolp", "r1", "r2"}, {"onlyA", "r1", "r2"}});
  CHECK(*j[0].prob_a == doctest::Approx(0.5));  // 0.75 and 1 − 0.75: bias only
  CHECK(*j[1].prob_a == doctest::Approx(0.5));  // "B" in both orders
  CHECK(*j[2].prob_a == doctest::Approx(0.5));  // 1 and 1 − 1
  CHECK(m.generated == 2);
  CHECK(judge.stats().scored_orders == 4);
  CHECK(judge.stats().parsed_orders == 2);
}

TEST_CASE("rule_judge: more rules followed wins, a tie is no judgment") {
  cai::rule_judge judge(
      {{"no_digit_7", [](const std::string& s) { return s.find('7') == std::string::npos; }},
       {"ends_with_period", [](const std::string& s) { return !s.empty() && s.back() == '.'; }},
       {"lowercase", [](const std::string& s) {
          return std::none_of(s.begin(), s.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; });
        }}});
  const auto j = judge.judge({{"p", "it is six.", "It is 7"},
                              {"p", "It is 7.", "it is six."},
                              {"p", "a.", "b."},
                              {"p", "A7", "B7"},
                              {"p", "a7.", "B."}});
  CHECK(j[0].prob_a == std::optional<float>(1.0f));
  CHECK(j[1].prob_a == std::optional<float>(0.0f));
  CHECK_FALSE(j[2].prob_a.has_value());
  CHECK_FALSE(j[3].prob_a.has_value());
  CHECK_FALSE(j[4].prob_a.has_value());  // each breaks one rule
  CHECK(j[0].reason.find("B follows 0/3") != std::string::npos);
  CHECK(j[1].reason.find("breaks no_digit_7, lowercase") != std::string::npos);
  CHECK_THROWS_AS(cai::rule_judge({}), rlhf::config_error);
  CHECK_THROWS_AS(cai::rule_judge({{"x", nullptr}}), rlhf::config_error);
}

TEST_CASE("judge_ensemble averages the members that judged") {
  const auto constant = [](std::optional<float> p) {
    return cai::judge_function([p](const std::vector<cai::judge_query>& q) {
      return std::vector<cai::judgment>(q.size(), cai::judgment{p, "c"});
    });
  };
  cai::judge_ensemble e({constant(1.0f), constant(std::nullopt), constant(0.25f)});
  const auto j = e.judge({{"p", "a", "b"}, {"p", "c", "d"}});
  REQUIRE(j.size() == 2);
  CHECK(*j[0].prob_a == doctest::Approx(0.625));
  CHECK(j[0].reason == "[0] c | [1] (none) c | [2] c");
  cai::judge_ensemble none({constant(std::nullopt), constant(std::nullopt)});
  CHECK_FALSE(none.judge({{"p", "a", "b"}})[0].prob_a.has_value());
  cai::rule_judge r(
      {{"has_x", [](const std::string& s) { return s.find('x') != std::string::npos; }}});
  cai::judge_ensemble with_rule({cai::as_judge_function(r), constant(0.5f)});
  CHECK(*with_rule.judge({{"p", "x", "y"}})[0].prob_a == doctest::Approx(0.75));
  cai::judge_ensemble wrong(
      {[](const std::vector<cai::judge_query>&) { return std::vector<cai::judgment>{}; }});
  CHECK_THROWS_AS((void)wrong.judge({{"p", "a", "b"}}), rlhf::data_error);
  cai::judge_ensemble out_of_range({constant(1.5f)});
  CHECK_THROWS_AS((void)out_of_range.judge({{"p", "a", "b"}}), rlhf::data_error);
}

TEST_CASE("reward_model_judge: sigmoid of the reward difference") {
  cai::reward_model_judge judge(
      [](const std::vector<std::string>&, const std::vector<std::string>& r) {
        std::vector<float> out;
        for (const auto& s : r)
          out.push_back(s == "nan" ? std::nanf("") : static_cast<float>(s.size()));
        return out;
      });
  const auto j = judge.judge({{"p", "aaaa", "a"}, {"p", "a", "aa"}, {"p", "nan", "a"}});
  CHECK(*j[0].prob_a == doctest::Approx(sigmoid(3.0)));
  CHECK(*j[1].prob_a == doctest::Approx(sigmoid(-1.0)));
  CHECK_FALSE(j[2].prob_a.has_value());
  // A train::reward_function through the chat template: rows as the trainers build them.
  rlhf::train::reward_function f{
      "len", 1.0f, [](const rlhf::train::completion_batch& b) {
        std::vector<float> s;
        for (std::size_t i = 0; i < b.size(); ++i) {
          CHECK(b.completion_ids[i].back() == rlhf::model::byte_tokenizer::eos);
          CHECK(b.prompt_ids[i].size() ==
                rlhf::model::chat_template{}.prompt_text(b.prompts[i].text).size());
          s.push_back(static_cast<float>(b.completion_ids[i].size()));
        }
        return s;
      }};
  cai::reward_model_judge rm(cai::reward_function_scorer(f));
  const auto k = rm.judge({{"hello", "abc", "abcde"}});
  CHECK(*k[0].prob_a == doctest::Approx(sigmoid(-2.0)));
}

TEST_CASE("rlaif_pairs: every pair judged, soft labels, ties and no-judgments left out") {
  cai::rule_judge judge(
      {{"has_plus", [](const std::string& s) { return s.find('+') != std::string::npos; }}});
  const std::vector<std::string> prompts = {"p0", "p1"};
  const std::vector<std::vector<std::string>> responses = {{"a+", "b", "c"}, {"x", "x", "y"}};
  const auto r = cai::rlaif_label(judge, prompts, responses);
  CHECK(r.pairs == 6);
  CHECK(r.identical == 1);
  CHECK(r.no_judgment == 3);  // (b, c), (x, y) twice: ties for a rule judge
  REQUIRE(r.rows.size() == 2);
  CHECK(r.rows[0].prompt == "p0");
  CHECK(r.rows[0].chosen == "a+");
  CHECK(r.rows[0].rejected == "b");
  CHECK(r.rows[0].soft_label == 1.0f);
  CHECK(r.rows[1].rejected == "c");

  // With a generator: K samples per prompt, each k with its own seed; soft labels >= 0.5.
  std::vector<std::uint64_t> seeds;
  cai::callable_generator g(
      [&](const std::vector<std::string>& p, const cai::generation_options& o) {
        seeds.push_back(o.seed);
        std::vector<std::string> out;
        for (const auto& x : p)
          out.push_back(x + std::string(static_cast<std::size_t>(o.seed % 5), '+'));
        return out;
      });
  cai::reward_model_judge rm(
      [](const std::vector<std::string>&, const std::vector<std::string>& rs) {
        std::vector<float> out;
        for (const auto& s : rs)
          out.push_back(static_cast<float>(std::count(s.begin(), s.end(), '+')));
        return out;
      });
  cai::rlaif_options o;
  o.responses_per_prompt = 3;
  o.prompts_per_batch = 1;
  const auto res = cai::rlaif_pairs(g, rm, prompts, o);
  CHECK(seeds.size() == 6);
  CHECK(seeds[0] != seeds[1]);
  CHECK(seeds[0] == seeds[3]);  // k = 0 of every batch
  CHECK(res.pairs == 6);
  for (const auto& row : res.rows) {
    CHECK(row.soft_label > 0.5f);
    CHECK(std::count(row.chosen.begin(), row.chosen.end(), '+') >
          std::count(row.rejected.begin(), row.rejected.end(), '+'));
  }
  CHECK(res.rows.size() + res.ties + res.identical == 6);
  const auto file = scratch("rlaif.jsonl");
  cai::write_preference_rows(file, res.rows);
  rlhf::data::jsonl_dataset d(file, {}, rlhf::data::format::preference);
  REQUIRE(d.size() == res.rows.size());
  CHECK(d.get(0).chosen.text == res.rows[0].chosen);
  const auto raw = read_rows(file);
  CHECK(raw[0]["soft_label"].get<float>() == doctest::Approx(res.rows[0].soft_label));
  o.min_confidence = 0.49f;
  const auto confident = cai::rlaif_pairs(g, rm, prompts, o);
  CHECK(confident.low_confidence > 0);
  CHECK(confident.rows.size() < res.rows.size());
  o.responses_per_prompt = 1;
  CHECK_THROWS_AS((void)cai::rlaif_pairs(g, rm, prompts, o), rlhf::config_error);
}

// ---- RLAIF into a resumable file ------------------------------------------------------------

/// K samples per prompt that depend only on (prompt, seed), as model_generator's do; prompts
/// holding "same" get one answer whatever the seed (identical pairs: no row). Throws on call
/// number `throw_at` (1-based; 0: never), as a run killed part-way stops.
struct plus_sampler {
  std::size_t calls = 0;
  std::size_t throw_at = 0;
  std::chrono::milliseconds delay{0};
  std::vector<std::string> generate(const std::vector<std::string>& prompts,
                                    const cai::generation_options& o) {
    ++calls;
    if (throw_at != 0 && calls == throw_at) throw std::runtime_error("killed");
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    std::vector<std::string> out;
    for (const auto& p : prompts) {
      if (p.find("same") != std::string::npos) {
        out.push_back("always the same");
        continue;
      }
      const std::uint64_t h = cai::detail::fnv1a64(p) ^ o.seed;
      out.push_back("answer " + std::string(static_cast<std::size_t>(h % 4), '+') +
                    std::to_string(h % 1000));
    }
    return out;
  }
};

/// A judge preferring more '+' (soft labels σ(Δ); equal counts: a tie, no row).
cai::reward_model_judge plus_judge() {
  return cai::reward_model_judge(
      [](const std::vector<std::string>&, const std::vector<std::string>& rs) {
        std::vector<float> out;
        for (const auto& s : rs)
          out.push_back(static_cast<float>(std::count(s.begin(), s.end(), '+')));
        return out;
      });
}

std::vector<std::string> judge_prompts() {
  std::vector<std::string> p;
  for (int i = 0; i < 12; ++i) {
    p.push_back((i % 4 == 0 ? "same question " : "question number ") + std::to_string(i) + "?");
  }
  return p;
}

cai::rlaif_file_config judge_file_config() {
  cai::rlaif_file_config cfg;
  cfg.rlaif.responses_per_prompt = 3;
  cfg.rlaif.prompts_per_batch = 3;
  cfg.rlaif.generation.seed = 7;
  cfg.chat_rows = true;
  return cfg;
}

/// The lines of a file, each with its "\n".
std::vector<std::string> lines_of(const fs::path& p) {
  std::vector<std::string> out;
  std::ifstream in(p, std::ios::binary);
  for (std::string l; std::getline(in, l);) out.push_back(l + "\n");
  return out;
}

std::string joined(const std::vector<std::string>& lines, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n && i < lines.size(); ++i) s += lines[i];
  return s;
}

TEST_CASE("rlaif_pairs_to_file: rows per prompt, a done line per prompt, rows as rlaif_pairs'") {
  const auto prompts = judge_prompts();
  const auto cfg = judge_file_config();
  const auto out = scratch("judged.jsonl");
  (void)scratch("judged.jsonl.done");
  plus_sampler g;
  auto judge = plus_judge();
  const auto s = cai::rlaif_pairs_to_file(g, judge, prompts, out, cfg);
  CHECK(s.total == 12);
  CHECK(s.labelled == 12);
  CHECK(s.skipped == 0);
  CHECK(s.pairs == 36);
  CHECK(s.identical >= 9);  // the 3 "same" prompts: 3 identical pairs each
  CHECK(s.rows > 0);
  CHECK(s.rows + s.identical + s.ties + s.no_judgment == 36);
  CHECK(g.calls == 12);  // 4 batches × 3 samples
  CHECK_FALSE(s.repaired);

  // The same rows as rlaif_pairs, as chat rows.
  plus_sampler g2;
  const auto r = cai::rlaif_pairs(g2, judge, prompts, cfg.rlaif);
  const auto rows = read_rows(out);
  REQUIRE(rows.size() == r.rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CHECK(rows[i]["prompt"][0]["content"] == r.rows[i].prompt);
    CHECK(rows[i]["chosen"][0]["content"] == r.rows[i].chosen);
    CHECK(rows[i]["rejected"][0]["role"] == "assistant");
    CHECK(rows[i]["soft_label"].get<float>() == doctest::Approx(r.rows[i].soft_label));
  }
  rlhf::data::jsonl_dataset d(out, {}, rlhf::data::format::preference);
  CHECK(d.size() == rows.size());

  // Every prompt has its done line, those without a row too.
  const auto done = read_rows(cai::default_done_file(out));
  REQUIRE(done.size() == 12);
  for (std::size_t i = 0; i < 12; ++i) {
    CHECK(done[i]["prompt"] == prompts[i]);
    if (i % 4 == 0) CHECK(done[i]["rows"] == 0);
  }

  // A second run does nothing (the generator is not called).
  plus_sampler idle;
  std::size_t resumed = 0;
  auto again_cfg = cfg;
  again_cfg.resumed = [&](std::size_t k) { resumed = k; };
  const auto again = cai::rlaif_pairs_to_file(idle, judge, prompts, out, again_cfg);
  CHECK(again.skipped == 12);
  CHECK(again.labelled == 0);
  CHECK(resumed == 12);
  CHECK(idle.calls == 0);
  CHECK(read_rows(out).size() == rows.size());
}

TEST_CASE("rlaif_pairs_to_file resumes a killed run: the rows of an uninterrupted run") {
  const auto prompts = judge_prompts();
  const auto cfg = judge_file_config();
  auto judge = plus_judge();
  const auto ref = scratch("judge_ref.jsonl");
  (void)scratch("judge_ref.jsonl.done");
  {
    plus_sampler g;
    (void)cai::rlaif_pairs_to_file(g, judge, prompts, ref, cfg);
  }
  const std::string want = read_text(ref);
  const auto want_done = read_rows(cai::default_done_file(ref));
  const auto ref_lines = lines_of(ref);
  const auto ref_done_lines = lines_of(cai::default_done_file(ref));
  REQUIRE(ref_lines.size() >= 6);
  const auto out = scratch("judge_resumed.jsonl");
  const auto done_path = scratch(cai::default_done_file(out).filename().string());
  // Rows of the first `n` prompts of the reference.
  const auto rows_upto = [&](std::size_t n) {
    std::size_t k = 0;
    for (std::size_t i = 0; i < n; ++i) k += want_done[i]["rows"].get<std::size_t>();
    return k;
  };
  const auto finish = [&](std::size_t want_skipped) {
    plus_sampler g;
    const auto s = cai::rlaif_pairs_to_file(g, judge, prompts, out, cfg);
    CHECK(s.skipped == want_skipped);
    CHECK(s.labelled == prompts.size() - want_skipped);
    CHECK(read_text(out) == want);  // same rows, same order: none lost, none twice
    CHECK(read_rows(done_path).size() == prompts.size());
    return s;
  };

  SUBCASE("the generator stops the run part-way (an exception)") {
    plus_sampler g;
    g.throw_at = 7;  // the first call of the third batch
    CHECK_THROWS_AS((void)cai::rlaif_pairs_to_file(g, judge, prompts, out, cfg),
                    std::runtime_error);
    CHECK(read_rows(done_path).size() == 6);
    CHECK(read_rows(out).size() == rows_upto(6));
    CHECK_FALSE(finish(6).repaired);
  }
  // A prompt after the first batches with at least 2 rows in the reference.
  std::size_t p = 4;
  while (p < prompts.size() && want_done[p]["rows"].get<std::size_t>() < 2) ++p;
  REQUIRE(p < prompts.size());
  SUBCASE("killed inside a prompt's rows: a torn line, whole rows of an unfinished prompt") {
    const std::size_t before = rows_upto(p);
    const std::string half = ref_lines[before + 1].substr(0, ref_lines[before + 1].size() / 2);
    write_text(out, joined(ref_lines, before + 1) + half);
    write_text(done_path, joined(ref_done_lines, p));
    CHECK(finish(p).repaired);
  }
  SUBCASE("killed between a prompt's rows and its done line") {
    write_text(out, joined(ref_lines, rows_upto(p + 1)));
    write_text(done_path, joined(ref_done_lines, p));
    CHECK(finish(p).repaired);
  }
  SUBCASE("killed inside a done line") {
    write_text(out, joined(ref_lines, rows_upto(p + 1)));
    write_text(done_path, joined(ref_done_lines, p) +
                              ref_done_lines[p].substr(0, ref_done_lines[p].size() - 5));
    CHECK(finish(p).repaired);
  }
  SUBCASE("a done file without its output is stale: all is done again") {
    write_text(done_path, joined(ref_done_lines, 6));
    (void)finish(0);
  }
  SUBCASE("an output without a done file: its prompts count as done") {
    write_text(out, joined(ref_lines, rows_upto(6)));
    // Prompts 0 and 4 have no row, so only the prompts with rows among the first 6 are known.
    std::size_t known = 0;
    for (std::size_t i = 0; i < 6; ++i) known += want_done[i]["rows"].get<std::size_t>() > 0;
    plus_sampler g;
    const auto s = cai::rlaif_pairs_to_file(g, judge, prompts, out, cfg);
    CHECK(s.skipped == known);
    CHECK(read_rows(out).size() == ref_lines.size());
    CHECK(read_rows(done_path).size() == prompts.size());
  }
  SUBCASE("an output and a done file that disagree are refused, untouched") {
    REQUIRE(rows_upto(6) >= 2);
    std::vector<std::string> lines(ref_lines.begin(),
                                   ref_lines.begin() + static_cast<std::ptrdiff_t>(rows_upto(6)));
    lines.erase(lines.begin());  // a row of a done prompt lost
    const std::string text = joined(lines, lines.size());
    write_text(out, text);
    write_text(done_path, joined(ref_done_lines, 6));
    plus_sampler g;
    const auto msg = message_of<rlhf::data_error>(
        [&] { (void)cai::rlaif_pairs_to_file(g, judge, prompts, out, cfg); });
    CHECK(msg.find("remove both files to start over") != std::string::npos);
    CHECK(read_text(out) == text);
    CHECK(g.calls == 0);
  }
}

TEST_CASE("rlaif_pairs_to_file resumes after SIGKILL with the rows of an uninterrupted run") {
  const auto prompts = judge_prompts();
  auto cfg = judge_file_config();
  cfg.rlaif.prompts_per_batch = 1;
  auto judge = plus_judge();
  const auto ref = scratch("judge_kill_ref.jsonl");
  (void)scratch("judge_kill_ref.jsonl.done");
  {
    plus_sampler g;
    (void)cai::rlaif_pairs_to_file(g, judge, prompts, ref, cfg);
  }
  const auto out = scratch("judge_killed.jsonl");
  const auto done_path = scratch(cai::default_done_file(out).filename().string());
  std::fflush(nullptr);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {  // ≈ 60 ms a prompt: killed long before the end
      plus_sampler slow;
      slow.delay = std::chrono::milliseconds(20);
      (void)cai::rlaif_pairs_to_file(slow, judge, prompts, out, cfg);
    } catch (...) {
      ::_exit(3);
    }
    ::_exit(0);
  }
  REQUIRE(kill_after_lines(child, done_path, 3) >= 3);  // 3 prompts done, then killed
  plus_sampler g;
  const auto s = cai::rlaif_pairs_to_file(g, judge, prompts, out, cfg);
  CHECK(s.skipped >= 3);
  CHECK(s.skipped < prompts.size());  // it was killed before the end
  CHECK(s.skipped + s.labelled == prompts.size());
  CHECK(read_text(out) == read_text(ref));
  CHECK(read_text(done_path) == read_text(cai::default_done_file(ref)));
}

// ---- the bundled transformer ------------------------------------------------------------------

rlhf::model::gpt_config small_config() {
  rlhf::model::gpt_config c;
  c.vocab_size = rlhf::model::byte_tokenizer::vocab;
  c.max_seq_len = 96;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 32;
  return c;
}

TEST_CASE("model_generator: batched equals one by one, seeded, reproducible") {
  rlhf::model::gpt<B> m(small_config(), /*trainable=*/false);
  m.init(3);
  cai::model_generator<B> batched(m, {}, {}, /*batch_size=*/8);
  cai::model_generator<B> single(m, {}, {}, /*batch_size=*/1);
  const std::vector<std::string> prompts = {"hi", "a longer prompt here", "x", "hello there"};
  for (const float temperature : {0.0f, 1.0f}) {
    CAPTURE(temperature);
    cai::generation_options o{
        .max_new_tokens = 12, .temperature = temperature, .top_p = 1.0f, .seed = 5};
    const auto all = batched.generate(prompts, o);
    REQUIRE(all.size() == prompts.size());
    std::vector<std::string> one;
    for (const auto& p : prompts) one.push_back(single.generate({p}, o)[0]);
    CHECK(all == one);
    // Order does not matter either.
    std::vector<std::string> rev(prompts.rbegin(), prompts.rend());
    auto back = batched.generate(rev, o);
    std::reverse(back.begin(), back.end());
    CHECK(back == all);
    CHECK(batched.generate(prompts, o) == all);
    if (temperature > 0) {
      o.seed = 6;
      CHECK(batched.generate(prompts, o) != all);
    }
  }
  // A prompt longer than the context is cut at its start.
  const std::string long_prompt(500, 'z');
  CHECK(batched.generate({long_prompt}, {.max_new_tokens = 4, .temperature = 0.0f}).size() == 1);
  CHECK_THROWS_AS((void)batched.generate({"x"}, {.max_new_tokens = 96}), rlhf::config_error);
  CHECK_THROWS_AS((void)batched.generate({"x"}, {.max_new_tokens = 4, .temperature = -1.0f}),
                  rlhf::config_error);
}

TEST_CASE("model_generator: option log-probs are the model's, batched or not") {
  using Tok = rlhf::model::byte_tokenizer;
  rlhf::model::gpt<B> m(small_config(), /*trainable=*/false);
  m.init(11);
  cai::model_generator<B> batched(m, {}, {}, 8);
  cai::model_generator<B> single(m, {}, {}, 1);
  const std::vector<std::string> prompts = {"which?", "a or b"};
  const std::vector<std::string> options = {"A", "B", "AB", ""};
  const auto lp = batched.option_log_probs(prompts, options);
  const auto lp1 = single.option_log_probs(prompts, options);
  REQUIRE(lp.size() == 2);
  for (std::size_t p = 0; p < 2; ++p) {
    REQUIRE(lp[p].size() == 4);
    for (std::size_t k = 0; k < 4; ++k) CHECK(lp[p][k] == doctest::Approx(lp1[p][k]).epsilon(1e-5));
    CHECK(lp[p][0] < 0.0f);
    CHECK(lp[p][2] < lp[p][0]);  // "AB" is "A" then more
    CHECK(lp[p][3] == 0.0f);     // the empty option
  }
  // Against generate()'s own log-probs: sample continuations, score their text.
  const rlhf::model::chat_template tmpl;
  const Tok tok;
  std::size_t compared = 0;
  for (std::uint64_t seed = 0; seed < 40 && compared < 3; ++seed) {
    rlhf::model::generation_config gc;
    gc.max_new_tokens = 3;
    gc.sampling.seed = seed;
    gc.pad_token = Tok::pad;
    const auto res = rlhf::model::generate<B>(m, {tmpl.prompt_ids(tok, prompts[0])}, gc);
    const auto ids = rlhf::ops::to_host<B>(res.tokens);
    const auto lps = rlhf::ops::to_host<B>(res.logprobs);
    std::string text;
    double sum = 0;
    bool bytes_only = true;
    for (rlhf::index_t t = 0; t < res.lengths[0]; ++t) {
      const auto id = ids[static_cast<std::size_t>(res.prompt_width + t)];
      bytes_only = bytes_only && id < 256;
      text.push_back(static_cast<char>(id));
      sum += lps[static_cast<std::size_t>(res.prompt_width + t)];
    }
    if (!bytes_only || res.lengths[0] != 3) continue;
    const auto got = batched.option_log_probs({prompts[0]}, {text});
    CHECK(got[0][0] == doctest::Approx(sum).epsilon(1e-4));
    ++compared;
  }
  CHECK(compared >= 1);
  // And it drives a model judge end to end: probabilities, mirrored under a swap.
  cai::model_judge<cai::model_generator<B>> judge(
      batched, cai::default_constitution(), {.prompt_template = "{response_a}|{response_b}?"});
  const auto j = judge.judge({{"p", "yes", "no"}, {"p", "no", "yes"}});
  REQUIRE(j[0].prob_a.has_value());
  CHECK(*j[0].prob_a > 0.0f);
  CHECK(*j[0].prob_a < 1.0f);
  CHECK(*j[1].prob_a == doctest::Approx(1.0f - *j[0].prob_a).epsilon(1e-5));
  static_assert(cai::text_generator<cai::model_generator<B>>);
  static_assert(cai::option_scorer<cai::model_generator<B>>);
}

TEST_CASE("critique_revise with the bundled model runs end to end") {
  rlhf::model::gpt<B> m(small_config(), /*trainable=*/false);
  m.init(5);
  cai::model_generator<B> gen(m);
  cai::critique_revise_config cfg;
  cfg.generation = {.max_new_tokens = 6, .temperature = 1.0f, .top_p = 1.0f, .seed = 1};
  cfg.templates.critique = "{response}{critique_request}";
  cfg.templates.revision = "{response}{critique}";
  const auto out = scratch("model_rows.jsonl");
  const auto s = cai::critique_revise(gen, cai::default_constitution(), {"one", "two", "three"},
                                      out, cfg);
  CHECK(s.written == 3);
  const auto rows = read_rows(out);  // random bytes, invalid UTF-8 replaced: still JSON
  REQUIRE(rows.size() == 3);
  const auto again = scratch("model_rows2.jsonl");
  (void)cai::critique_revise(gen, cai::default_constitution(), {"three", "one", "two"}, again, cfg);
  const auto rows2 = read_rows(again);
  CHECK(rows2[1]["chosen"] == rows[0]["chosen"]);  // "one": same text in another batch order
  CHECK(rows2[0]["chosen"] == rows[2]["chosen"]);
}

}  // namespace

}  // namespace test_cai_cases
