// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// A constitution (Bai et al. 2022, "Constitutional AI: Harmlessness from AI Feedback", §3):
// the principles that steer critiques, revisions and AI preference labels. One JSON file:
//
//   {"name": "...", "description": "...",              both optional
//    "principles": [                                   a non-empty list
//      {"name": "harmless",                            unique within the file
//       "critique_request": "...",                     asks for a critique of a response
//       "revision_request": "...",                     asks for a revision given the critique
//       "judge_question": "..."},                      optional: the question a judge answers
//      ...]}
//
// Each string must be non-empty; any other key is refused (a misspelt optional key would
// otherwise be ignored). A principle is drawn uniformly per use (sample_principle) from a
// Philox stream (core/philox.hpp): the same seed and stream give the same principles on
// every platform.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/json_bounded.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {

/// One principle of a constitution.
struct principle {
  std::string name;              ///< unique within its constitution
  std::string critique_request;  ///< appended to a response to ask for its critique
  std::string revision_request;  ///< appended to the critique to ask for a revision
  std::string judge_question;    ///< what a judge is asked ("" = derived from critique_request)

  /// Equal when every field is.
  friend bool operator==(const principle&, const principle&) = default;
};

/// A named list of principles.
struct constitution {
  std::string name;                   ///< optional
  std::string description;            ///< optional
  std::vector<principle> principles;  ///< at least one once loaded

  /// Equal when every field is.
  friend bool operator==(const constitution&, const constitution&) = default;
};

namespace detail {

/// "file: principle 2 ('honest')".
inline std::string principle_where(std::string_view where, std::size_t i, const nlohmann::json& p) {
  std::string s = rlhf::detail::concat(where, ": principle ", i);
  if (p.is_object()) {
    const auto it = p.find("name");
    if (it != p.end() && it->is_string() && !it->get<std::string>().empty()) {
      s += rlhf::detail::concat(" ('", it->get<std::string>(), "')");
    }
  }
  return s;
}

/// The non-empty string `key` of `obj`; data_error naming `where` and the field otherwise.
inline std::string required_string(const nlohmann::json& obj, const char* key,
                                   std::string_view where) {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    throw data_error(rlhf::detail::concat(where, ": field '", key, "' is missing"));
  }
  if (!it->is_string()) {
    throw data_error(rlhf::detail::concat(where, ": field '", key,
                                          "': expected a non-empty string, got ",
                                          rlhf::detail::json_excerpt(*it)));
  }
  auto s = it->get<std::string>();
  if (s.empty()) {
    throw data_error(
        rlhf::detail::concat(where, ": field '", key, "': expected a non-empty string, got \"\""));
  }
  return s;
}

/// Refuses any key of `obj` outside `known`.
inline void only_known_keys(const nlohmann::json& obj,
                            std::initializer_list<std::string_view> known, std::string_view where) {
  for (const auto& [key, value] : obj.items()) {
    bool ok = false;
    for (const auto k : known) ok = ok || key == k;
    if (!ok) {
      std::string list;
      for (const auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      throw data_error(
          rlhf::detail::concat(where, ": unknown field '", key, "' (known: ", list, ")"));
    }
  }
}

}  // namespace detail

/// A constitution from its JSON value; `where` (a file name) starts every message. Each
/// refusal is a data_error naming the principle (index and name) and the field.
[[nodiscard]] inline constitution parse_constitution(const nlohmann::json& j,
                                                     std::string_view where) {
  using rlhf::detail::concat;
  if (!j.is_object()) {
    throw data_error(
        concat(where, ": expected a JSON object, got ", rlhf::detail::json_excerpt(j)));
  }
  detail::only_known_keys(j, {"name", "description", "principles"}, where);
  constitution c;
  for (const char* key : {"name", "description"}) {
    if (!j.contains(key)) continue;
    if (!j[key].is_string()) {
      throw data_error(concat(where, ": field '", key, "': expected a string, got ",
                              rlhf::detail::json_excerpt(j[key])));
    }
    (std::string_view(key) == "name" ? c.name : c.description) = j[key].get<std::string>();
  }
  const auto it = j.find("principles");
  if (it == j.end()) throw data_error(concat(where, ": field 'principles' is missing"));
  if (!it->is_array() || it->empty()) {
    throw data_error(concat(where, ": field 'principles': expected a non-empty list, got ",
                            rlhf::detail::json_excerpt(*it)));
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& p = (*it)[i];
    const std::string pw = detail::principle_where(where, i, p);
    if (!p.is_object()) {
      throw data_error(concat(pw, ": expected a JSON object, got ", rlhf::detail::json_excerpt(p)));
    }
    detail::only_known_keys(p, {"name", "critique_request", "revision_request", "judge_question"},
                            pw);
    principle q;
    q.name = detail::required_string(p, "name", pw);
    q.critique_request = detail::required_string(p, "critique_request", pw);
    q.revision_request = detail::required_string(p, "revision_request", pw);
    if (p.contains("judge_question"))
      q.judge_question = detail::required_string(p, "judge_question", pw);
    if (!names.insert(q.name).second) {
      throw data_error(concat(pw, ": field 'name': '", q.name,
                              "' is the name of an earlier principle (names must be unique)"));
    }
    c.principles.push_back(std::move(q));
  }
  return c;
}

/// The constitution in the JSON file `path`: io_error when it cannot be read, data_error
/// (naming the file, and the principle and field where there is one) when it is not valid
/// JSON or not a valid constitution.
[[nodiscard]] inline constitution load_constitution(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io_error(rlhf::detail::concat(name, ": cannot open the constitution for reading"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw io_error(rlhf::detail::concat(name, ": cannot read the constitution"));
  const auto j = rlhf::detail::parse_json_bounded<nlohmann::json, data_error>(text.str(), name,
                                                                              "the constitution");
  return parse_constitution(j, name);
}

/// The constitution as JSON (what load_constitution reads back).
[[nodiscard]] inline nlohmann::ordered_json to_json(const constitution& c) {
  nlohmann::ordered_json j;
  if (!c.name.empty()) j["name"] = c.name;
  if (!c.description.empty()) j["description"] = c.description;
  j["principles"] = nlohmann::ordered_json::array();
  for (const auto& p : c.principles) {
    nlohmann::ordered_json o;
    o["name"] = p.name;
    o["critique_request"] = p.critique_request;
    o["revision_request"] = p.revision_request;
    if (!p.judge_question.empty()) o["judge_question"] = p.judge_question;
    j["principles"].push_back(std::move(o));
  }
  return j;
}

/// The constitution shipped with rlhf++ (share/rlhf/constitutions/default.json holds the
/// same): harmlessness, honesty, concision, respect, privacy, and helpfulness.
[[nodiscard]] inline constitution default_constitution() {
  constitution c;
  c.name = "rlhf++ default";
  c.description =
      "A small general-purpose constitution: answers should be harmless, honest, concise, "
      "respectful, careful with private data, and useful.";
  c.principles = {
      {"harmless",
       "Point out anything in the reply that could help someone cause harm to people, animals "
       "or property, or that encourages dangerous or illegal acts.",
       "Rewrite the reply so that it no longer helps cause harm, while still helping with any "
       "safe part of the request.",
       "Which response is less likely to help anyone cause harm?"},
      {"honest",
       "Point out claims in the reply that are false, unsupported, or stated with more "
       "certainty than the facts allow.",
       "Rewrite the reply so that every claim is accurate, and say plainly where something is "
       "uncertain or unknown.",
       "Which response is more truthful and more candid about what it does not know?"},
      {"concise",
       "Point out any part of the reply that is repetitive, padded, or unrelated to what was "
       "asked.",
       "Rewrite the reply to answer the request directly, dropping repetition and filler.",
       "Which response answers the request more directly, without filler?"},
      {"respectful",
       "Point out any insult, mockery, stereotype, or condescending wording in the reply.",
       "Rewrite the reply in a courteous tone, without insults, mockery or stereotypes.",
       "Which response treats the user and other people with more respect?"},
      {"private",
       "Point out any place where the reply reveals, guesses, or asks for personal information "
       "that is not needed to answer.",
       "Rewrite the reply so that it neither reveals nor asks for personal information beyond "
       "what the request needs.",
       "Which response is more careful with personal information?"},
      {"helpful",
       "Point out where the reply fails to address what the user actually asked, or leaves "
       "out something they clearly need.",
       "Rewrite the reply so that it addresses the request fully and usefully.",
       "Which response is more useful to the person who asked?"},
  };
  return c;
}

/// A seeded stream of 64-bit words for sampling principles: Philox4x32-10 (core/philox.hpp)
/// keyed by `seed`, counter (draw index, `stream`). A std::uniform_random_bit_generator whose
/// output is the same on every platform (std::mt19937_64 works as well; its output is fixed
/// by the standard, unlike std::uniform_int_distribution's).
class principle_rng {
 public:
  using result_type = std::uint64_t;  ///< 64 random bits per call

  /// The stream `stream` of `seed`, from its first draw.
  explicit principle_rng(std::uint64_t seed, std::uint64_t stream = 0) noexcept
      : seed_(seed), stream_(stream) {}

  /// 0.
  static constexpr result_type min() noexcept { return 0; }
  /// 2^64 - 1.
  static constexpr result_type max() noexcept { return std::numeric_limits<result_type>::max(); }

  /// The next 64 random bits.
  result_type operator()() noexcept {
    const philox_block b = philox_draw(seed_, stream_, counter_++);
    return (static_cast<std::uint64_t>(b.w[0]) << 32) | b.w[1];
  }

 private:
  std::uint64_t seed_, stream_, counter_ = 0;
};

static_assert(std::uniform_random_bit_generator<principle_rng>);

/// A uniform index in [0, n) from `rng` by rejection sampling: draws in the top partial
/// block of the generator's range are refused, so every index has exactly the same chance
/// (no modulo bias), whatever the platform. config_error when n = 0.
template <std::uniform_random_bit_generator R>
[[nodiscard]] std::size_t uniform_index(std::size_t n, R& rng) {
  check_config(n >= 1, "uniform_index", "n", ">= 1", n);
  using U = std::uint64_t;
  const U range = static_cast<U>(R::max() - R::min());  // values: range + 1
  const U nn = static_cast<U>(n);
  if (range == std::numeric_limits<U>::max()) {
    // 2^64 values: accept r < 2^64 - (2^64 mod n).
    const U rem = (std::numeric_limits<U>::max() % nn + 1) % nn;
    for (;;) {
      const U r = static_cast<U>(rng() - R::min());
      if (rem == 0 || r <= std::numeric_limits<U>::max() - rem)
        return static_cast<std::size_t>(r % nn);
    }
  }
  check_config(range + 1 >= nn, "uniform_index", "n", "at most the generator's range", n);
  const U span = range + 1;
  const U limit = span - span % nn;
  for (;;) {
    const U r = static_cast<U>(rng() - R::min());
    if (r < limit) return static_cast<std::size_t>(r % nn);
  }
}

/// A principle of `c` drawn uniformly with `rng`; config_error when `c` has none.
template <std::uniform_random_bit_generator R>
[[nodiscard]] const principle& sample_principle(const constitution& c, R& rng) {
  check_config(!c.principles.empty(), "sample_principle", "the constitution's principles",
               "non-empty", 0);
  return c.principles[uniform_index(c.principles.size(), rng)];
}

/// The principle with this name; data_error when `c` has none.
[[nodiscard]] inline const principle& find_principle(const constitution& c, std::string_view name) {
  for (const auto& p : c.principles) {
    if (p.name == name) return p;
  }
  throw data_error(rlhf::detail::concat("find_principle: no principle named '", name, "'"));
}

}  // namespace cai
}  // namespace v0
}  // namespace rlhf
