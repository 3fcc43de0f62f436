// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// A language model as a preference judge (RLAIF; Bai et al. 2022 §4.1, Lee et al. 2023 §2):
// it is asked which of two responses better meets a principle drawn from the constitution,
// in both orders, to cancel its preference for a position (Lee et al. 2023 §2.1.1).
//
//   per query:  principle ~ uniform, seeded by (seed, prompt, {response_a, response_b})
//               order 1: A = response_a, B = response_b -> p1 = P("A")
//               order 2: A = response_b, B = response_a -> p2 = P("A") = P(response_b)
//               prob_a = (p1 + (1 − p2)) / 2; one order without a judgment: the other's
//               alone; neither: no judgment
//   P("A"):     option_scorer: softmax over the log-probs of "A" and "B" (both -inf: none)
//               text_generator (or a scorer without log-probs): the generated answer,
//               parsed by parse_judge_answer: 'A' -> 1, 'B' -> 0, anything else -> none
//
// The draw is symmetric in the two responses, so judging (b, a) gives 1 − judging (a, b).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rlhf/cai/constitution.hpp"
#include "rlhf/cai/detail/text.hpp"
#include "rlhf/cai/generator.hpp"
#include "rlhf/cai/judge.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {

/// Options of model_judge.
struct model_judge_options {
  /// The judge's prompt. Placeholders: {prompt}, {response_a}, {response_b}, {question}
  /// (the principle's judge_question, or else "Which response does better at this: " and
  /// its critique_request), {principle} (its name).
  std::string prompt_template =
      "You are comparing two replies to the same request.\n\nRequest:\n{prompt}\n\n"
      "Reply A:\n{response_a}\n\nReply B:\n{response_b}\n\n{question}\n"
      "Answer with one letter, A or B.";
  std::string option_a = "A";  ///< the option string scored for A
  std::string option_b = "B";  ///< the option string scored for B
  std::uint64_t seed = 0;      ///< principle draws
  /// How text answers are generated (greedy, short, by default).
  generation_options generation{
      .max_new_tokens = 16, .temperature = 0.0f, .top_p = 1.0f, .seed = 0};
};

/// Counts of a model_judge's work since construction (or reset_stats()).
struct judge_stats {
  std::size_t queries = 0;          ///< queries judged (or not)
  std::size_t judged = 0;           ///< queries with a judgment
  std::size_t no_judgment = 0;      ///< queries without: neither order gave one
  std::size_t one_order_only = 0;   ///< judgments from one order alone
  std::size_t scored_orders = 0;    ///< orders decided by option log-probs
  std::size_t parsed_orders = 0;    ///< orders decided by a parsed text answer
  std::size_t unparsed_orders = 0;  ///< orders whose text answer named neither A nor B
};

/// A judge over a model `S` (an option_scorer, a text_generator, or both: scores first, and
/// text for the orders the scores leave open); see the top of this header.
template <class S>
requires option_scorer<S> || text_generator<S>
class model_judge {
 public:
  /// `model` must outlive the judge. config_error when `c` has no principles or the
  /// template lacks {response_a} or {response_b}.
  model_judge(S& model, constitution c, model_judge_options o = {})
      : s_(model), c_(std::move(c)), o_(std::move(o)) {
    check_config(!c_.principles.empty(), "model_judge", "the constitution's principles",
                 "non-empty", 0);
    for (const char* p : {"response_a", "response_b"}) {
      check_config(detail::has_placeholder(o_.prompt_template, p), "model_judge", "prompt_template",
                   rlhf::detail::concat("a text holding {", p, "}"), o_.prompt_template);
    }
  }

  /// One judgment per query (reason: the principle and each order's outcome).
  std::vector<judgment> judge(const std::vector<judge_query>& queries) {
    const std::size_t n = queries.size();
    std::vector<std::string> prompts;  // 2n: order 1 of query i at 2i, order 2 at 2i + 1
    std::vector<const principle*> drawn;
    for (const auto& q : queries) {
      const std::uint64_t stream = detail::fnv1a64(q.prompt) ^
                                   (detail::fnv1a64(q.response_a) + detail::fnv1a64(q.response_b));
      principle_rng rng(o_.seed, stream);
      const principle& p = sample_principle(c_, rng);
      drawn.push_back(&p);
      prompts.push_back(judge_prompt(q.prompt, q.response_a, q.response_b, p));
      prompts.push_back(judge_prompt(q.prompt, q.response_b, q.response_a, p));
    }
    std::vector<std::optional<float>> p_a(2 * n);  // P("A") per prompt
    std::vector<std::string> how(2 * n);
    if constexpr (option_scorer<S>) {
      if (n > 0) {
        const std::vector<std::vector<float>> lp = s_.option_log_probs(
            prompts, std::vector<std::string>{o_.option_a, o_.option_b});
        if (lp.size() != prompts.size()) {
          throw data_error(rlhf::detail::concat("model_judge: option_log_probs returned ",
                                                lp.size(), " rows for ", prompts.size(),
                                                " prompts"));
        }
        for (std::size_t i = 0; i < lp.size(); ++i) {
          if (lp[i].size() != 2) {
            throw data_error(rlhf::detail::concat("model_judge: option_log_probs returned ",
                                                  lp[i].size(), " values for prompt ", i,
                                                  " (expected 2: A and B)"));
          }
          p_a[i] = two_way_softmax(lp[i][0], lp[i][1]);
          if (p_a[i]) {
            ++stats_.scored_orders;
            how[i] = rlhf::detail::concat("p(A)=", *p_a[i]);
          }
        }
      }
    }
    if constexpr (text_generator<S>) {
      std::vector<std::size_t> open;
      std::vector<std::string> ask;
      for (std::size_t i = 0; i < prompts.size(); ++i) {
        if (!p_a[i]) {
          open.push_back(i);
          ask.push_back(prompts[i]);
        }
      }
      if (!ask.empty()) {
        const std::vector<std::string> answers = s_.generate(ask, o_.generation);
        if (answers.size() != ask.size()) {
          throw data_error(rlhf::detail::concat("model_judge: generate returned ", answers.size(),
                                                " answers for ", ask.size(), " prompts"));
        }
        for (std::size_t k = 0; k < open.size(); ++k) {
          const auto choice = parse_judge_answer(answers[k]);
          std::string quoted = answers[k].substr(0, 40);
          if (choice) {
            p_a[open[k]] = *choice == 'A' ? 1.0f : 0.0f;
            ++stats_.parsed_orders;
          } else {
            ++stats_.unparsed_orders;
          }
          how[open[k]] = rlhf::detail::concat(choice ? "answered \"" : "unparsed \"", quoted,
                                              answers[k].size() > 40 ? "...\"" : "\"");
        }
      }
    }
    std::vector<judgment> out(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& first = p_a[2 * i];
      const auto& second = p_a[2 * i + 1];
      ++stats_.queries;
      if (first && second) {
        out[i].prob_a = (*first + (1.0f - *second)) / 2.0f;
      } else if (first) {
        out[i].prob_a = *first;
      } else if (second) {
        out[i].prob_a = 1.0f - *second;
      }
      if (out[i].prob_a) {
        ++stats_.judged;
        if (!(first && second)) ++stats_.one_order_only;
      } else {
        ++stats_.no_judgment;
      }
      out[i].reason = rlhf::detail::concat(
          "principle ", drawn[i]->name, "; A,B order: ", how[2 * i].empty() ? "none" : how[2 * i],
          "; B,A order: ", how[2 * i + 1].empty() ? "none" : how[2 * i + 1]);
    }
    return out;
  }

  /// What the judge has done so far.
  [[nodiscard]] const judge_stats& stats() const noexcept { return stats_; }
  /// Zeroes the counts.
  void reset_stats() noexcept { stats_ = {}; }

  /// The prompt asking which of `first` (as A) and `second` (as B) better meets `p`.
  [[nodiscard]] std::string judge_prompt(const std::string& prompt, const std::string& first,
                                         const std::string& second, const principle& p) const {
    const std::string question = p.judge_question.empty()
                                     ? "Which response does better at this: " + p.critique_request
                                     : p.judge_question;
    return detail::substitute(o_.prompt_template, {{"prompt", prompt},
                                                   {"response_a", first},
                                                   {"response_b", second},
                                                   {"question", question},
                                                   {"principle", p.name}});
  }

 private:
  /// exp(a) / (exp(a) + exp(b)); nullopt when both are -inf or either is NaN or +inf.
  static std::optional<float> two_way_softmax(float a, float b) {
    if (std::isnan(a) || std::isnan(b) || (std::isinf(a) && a > 0) || (std::isinf(b) && b > 0)) {
      return std::nullopt;
    }
    const bool a_none = std::isinf(a), b_none = std::isinf(b);  // -inf: unknown / impossible
    if (a_none && b_none) return std::nullopt;
    if (a_none) return 0.0f;
    if (b_none) return 1.0f;
    return static_cast<float>(1.0 / (1.0 + std::exp(static_cast<double>(b) - a)));
  }

  S& s_;
  constitution c_;
  model_judge_options o_;
  judge_stats stats_;
};

}  // namespace cai
}  // namespace v0
}  // namespace rlhf
