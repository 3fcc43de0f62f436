// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What Constitutional AI (Bai et al. 2022) and RLAIF (Lee et al. 2023) need from a language
// model, as two concepts: anything that turns prompts into completions, and anything that
// tells how likely each of a few answer strings is. The bundled transformer
// (cai/model_generator.hpp), an OpenAI-compatible server (cai/http_chat.hpp) and a plain
// lambda (callable_generator, below) all plug in.
//
//   text_generator   g.generate(prompts (P user messages), options) -> P completion texts
//   option_scorer    s.option_log_probs(prompts (P), options (K strings)) -> P × K log-probs
//                    of each option as the start of the answer (-infinity: unknown)
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace cai {

/// How a text_generator samples.
struct generation_options {
  std::size_t max_new_tokens = 256;  ///< new tokens at most
  float temperature = 1.0f;          ///< 0: greedy
  float top_p = 1.0f;                ///< nucleus mass; 1 = off
  std::uint64_t seed = 0;            ///< sampling seed
};

/// Batched prompts (each the text of one user message) to one completion text per prompt,
/// in order.
template <class G>
concept text_generator = requires(G& g, const std::vector<std::string>& prompts,
                                  const generation_options& o) {
  { g.generate(prompts, o) } -> std::convertible_to<std::vector<std::string>>;
};

/// For judges: per prompt, the log-probability of each option string as the start of the
/// answer (-infinity where unknown, e.g. an endpoint without log-probs).
template <class S>
concept option_scorer = requires(S& s, const std::vector<std::string>& prompts,
                                 const std::vector<std::string>& options) {
  { s.option_log_probs(prompts, options) } -> std::convertible_to<std::vector<std::vector<float>>>;
};

/// The signature a callable_generator wraps.
using generate_function = std::function<std::vector<std::string>(const std::vector<std::string>&,
                                                                 const generation_options&)>;

/// Any callable of the text_generator signature (a lambda, a std::function) as a
/// text_generator. generate() checks that one completion comes back per prompt (data_error
/// otherwise).
class callable_generator {
 public:
  /// Wraps `f`; config_error when it is empty.
  explicit callable_generator(generate_function f) : f_(std::move(f)) {
    check_config(static_cast<bool>(f_), "callable_generator", "f", "a callable", "empty");
  }

  /// f(prompts, o), checked for its length.
  std::vector<std::string> generate(const std::vector<std::string>& prompts,
                                    const generation_options& o) {
    auto out = f_(prompts, o);
    if (out.size() != prompts.size()) {
      throw data_error(rlhf::detail::concat("callable_generator: the callable returned ",
                                            out.size(), " completions for ", prompts.size(),
                                            " prompts"));
    }
    return out;
  }

 private:
  generate_function f_;
};

static_assert(text_generator<callable_generator>);

}  // namespace cai
}  // namespace v0
}  // namespace rlhf
