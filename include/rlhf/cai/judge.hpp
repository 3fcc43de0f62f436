// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// AI preference judges (RLAIF: Bai et al. 2022 §4, Lee et al. 2023): given a prompt and two
// responses, the probability that the first is better, or no judgment.
//
//   preference_judge     j.judge(queries (N)) -> N judgments {prob_a in [0, 1] or nullopt,
//                        reason}
//   parse_judge_answer   "A", "(b)", "Answer: B", "**A**", ... -> 'A' / 'B'; anything else
//                        (both, neither, prose, empty) -> nullopt: never a vote
//   rule_judge           user predicates ("follows rule r?"): more rules followed wins
//   judge_ensemble       mean prob_a over the members that judged
//
// The model judge (cai/model_judge.hpp), a reward-model judge (cai/reward_model_judge.hpp)
// and user types satisfy the same concept.
#pragma once

#include <cctype>
#include <concepts>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {

/// One comparison: which of two responses to `prompt` is better?
struct judge_query {
  std::string prompt;      ///< the user's prompt
  std::string response_a;  ///< the first response
  std::string response_b;  ///< the second response
};

/// A judge's verdict on one query.
struct judgment {
  std::optional<float> prob_a;  ///< P(response_a is better) in [0, 1]; nullopt: no judgment
  std::string reason;           ///< how it was reached (for logs)
};

/// Queries in, one judgment per query out, in order.
template <class J>
concept preference_judge = requires(J& j, const std::vector<judge_query>& q) {
  { j.judge(q) } -> std::convertible_to<std::vector<judgment>>;
};

/// Any judge behind one type (judge_ensemble's members).
using judge_function = std::function<std::vector<judgment>(const std::vector<judge_query>&)>;

/// `j` (kept by reference: it must outlive the result) as a judge_function.
template <preference_judge J>
[[nodiscard]] judge_function as_judge_function(J& j) {
  return [&j](const std::vector<judge_query>& q) -> std::vector<judgment> { return j.judge(q); };
}

/// The choice in a judge's text answer: 'A' or 'B', or nullopt. Its first non-blank line,
/// without markdown emphasis (* _ `), surrounding quotes and brackets, a leading "answer"
/// / "the answer is" / "response" / "option" (with a ':' or '-'), and trailing punctuation,
/// must be exactly the letter (either case). So "A", "(B)", "Response A", "Answer: b",
/// "a.", "**B**", "[A]" count; "A and B", "Both", "Neither", "A is better", "" do not.
[[nodiscard]] inline std::optional<char> parse_judge_answer(std::string_view answer) {
  // First non-blank line.
  std::string line;
  for (std::size_t start = 0; start <= answer.size();) {
    const std::size_t end = std::min(answer.find('\n', start), answer.size());
    const std::string_view l = answer.substr(start, end - start);
    if (l.find_first_not_of(" \t\r") != std::string_view::npos) {
      line = std::string(l);
      break;
    }
    start = end + 1;
  }
  std::string s;
  for (const char ch : line) {
    if (ch == '*' || ch == '_' || ch == '`') continue;
    s.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  }
  const auto trim = [&] {
    const auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) {
      s.clear();
      return;
    }
    s = s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
  };
  const auto strip_prefix = [&](std::string_view p) {
    if (s.size() >= p.size() && std::string_view(s).substr(0, p.size()) == p) {
      s.erase(0, p.size());
      trim();
      if (!s.empty() && (s.front() == ':' || s.front() == '-')) s.erase(0, 1);
      trim();
      return true;
    }
    return false;
  };
  trim();
  // Trailing punctuation, then brackets and quotes, repeatedly.
  for (bool changed = true; changed;) {
    changed = false;
    trim();
    while (!s.empty() && std::string_view(".,!:;").find(s.back()) != std::string_view::npos) {
      s.pop_back();
      changed = true;
    }
    trim();
    if (s.size() >= 2) {
      const char f = s.front(), b = s.back();
      if ((f == '(' && b == ')') || (f == '[' && b == ']') || (f == '"' && b == '"') ||
          (f == '\'' && b == '\'')) {
        s = s.substr(1, s.size() - 2);
        changed = true;
      }
    }
    if (strip_prefix("the answer is") || strip_prefix("final answer") || strip_prefix("answer") ||
        strip_prefix("response") || strip_prefix("option")) {
      changed = true;
    }
  }
  if (s == "a") return 'A';
  if (s == "b") return 'B';
  return std::nullopt;
}

/// One rule of a rule_judge: a name and a predicate on a response.
struct rule {
  std::string name;                                          ///< for reasons
  std::function<bool(const std::string& response)> follows;  ///< true: the response obeys
};

/// A judge from checkable rules (e.g. "never use the digit 7"): each response scores the
/// number of rules it follows; the one with more wins outright (prob_a 1 or 0). A tie (the
/// same count, which includes two responses that both follow or both break every rule) is
/// no judgment: a rule judge has no evidence then, and a 0.5 would teach a preference for
/// neither side as if it were a label.
class rule_judge {
 public:
  /// config_error on no rules, an unnamed rule or an empty predicate.
  explicit rule_judge(std::vector<rule> rules) : rules_(std::move(rules)) {
    check_config(!rules_.empty(), "rule_judge", "rules", "at least one", 0);
    for (std::size_t i = 0; i < rules_.size(); ++i) {
      check_config(!rules_[i].name.empty(), "rule_judge",
                   rlhf::detail::concat("rules[", i, "].name"), "not empty", "\"\"");
      check_config(static_cast<bool>(rules_[i].follows), "rule_judge",
                   rlhf::detail::concat("rules[", i, "].follows"), "a callable", "empty");
    }
  }

  /// One judgment per query; the reason lists the rules each response breaks.
  std::vector<judgment> judge(const std::vector<judge_query>& queries) {
    std::vector<judgment> out;
    out.reserve(queries.size());
    for (const auto& q : queries) {
      std::size_t a = 0, b = 0;
      std::string broken_a, broken_b;
      for (const auto& r : rules_) {
        if (r.follows(q.response_a)) {
          ++a;
        } else {
          broken_a += (broken_a.empty() ? "" : ", ") + r.name;
        }
        if (r.follows(q.response_b)) {
          ++b;
        } else {
          broken_b += (broken_b.empty() ? "" : ", ") + r.name;
        }
      }
      judgment j;
      j.reason = rlhf::detail::concat(
          "A follows ", a, "/", rules_.size(), " rules", broken_a.empty() ? "" : " (breaks ",
          broken_a, broken_a.empty() ? "" : ")", "; B follows ", b, "/", rules_.size(),
          broken_b.empty() ? "" : " (breaks ", broken_b, broken_b.empty() ? "" : ")");
      if (a != b) j.prob_a = a > b ? 1.0f : 0.0f;
      out.push_back(std::move(j));
    }
    return out;
  }

 private:
  std::vector<rule> rules_;
};

/// Several judges as one: per query, the mean prob_a of the members that judged it; none
/// judged: no judgment. config_error on no members or an empty one; data_error when a member
/// returns the wrong number of judgments or a prob_a outside [0, 1].
class judge_ensemble {
 public:
  /// The members, in order (their reasons are joined in this order).
  explicit judge_ensemble(std::vector<judge_function> members) : members_(std::move(members)) {
    check_config(!members_.empty(), "judge_ensemble", "members", "at least one", 0);
    for (std::size_t i = 0; i < members_.size(); ++i) {
      check_config(static_cast<bool>(members_[i]), "judge_ensemble",
                   rlhf::detail::concat("members[", i, "]"), "a callable", "empty");
    }
  }

  /// One judgment per query.
  std::vector<judgment> judge(const std::vector<judge_query>& queries) {
    std::vector<double> sum(queries.size(), 0.0);
    std::vector<std::size_t> n(queries.size(), 0);
    std::vector<std::string> reasons(queries.size());
    for (std::size_t m = 0; m < members_.size(); ++m) {
      const auto js = members_[m](queries);
      if (js.size() != queries.size()) {
        throw data_error(rlhf::detail::concat("judge_ensemble: member ", m, " returned ", js.size(),
                                              " judgments for ", queries.size(), " queries"));
      }
      for (std::size_t i = 0; i < js.size(); ++i) {
        if (js[i].prob_a) {
          const float p = *js[i].prob_a;
          if (!(p >= 0.0f && p <= 1.0f)) {
            throw data_error(rlhf::detail::concat("judge_ensemble: member ", m,
                                                  " returned prob_a = ", p, " for query ", i,
                                                  " (expected [0, 1])"));
          }
          sum[i] += p;
          ++n[i];
        }
        reasons[i] += rlhf::detail::concat(m == 0 ? "" : " | ", "[", m, "] ",
                                           js[i].prob_a ? "" : "(none) ", js[i].reason);
      }
    }
    std::vector<judgment> out(queries.size());
    for (std::size_t i = 0; i < queries.size(); ++i) {
      if (n[i] > 0) out[i].prob_a = static_cast<float>(sum[i] / static_cast<double>(n[i]));
      out[i].reason = std::move(reasons[i]);
    }
    return out;
  }

 private:
  std::vector<judge_function> members_;
};

static_assert(preference_judge<rule_judge>);
static_assert(preference_judge<judge_ensemble>);

}  // namespace cai
}  // namespace v0
}  // namespace rlhf
