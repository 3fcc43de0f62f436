// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What every training method over one example_source and one trained trunk shares: the
// trunk, the two splits, the activations cache and its resumable dropout position, TRL's
// cumulative num_tokens (for the methods whose TRL trainer logs it), and the defaults "no
// heads", "no advice" and "log the means as they are". A method derives from it and adds
// train_micro_batch / eval_batch (and heads() / warnings() when it has them), which is what
// trainer<B, M> asks for (train/trainer.hpp).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/json_bounded.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/metrics_log.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// The trunk, the data and the dropout position of a method named `name` (for messages).
template <class B, model::tokenizer Tok>
class method_base {
 public:
  /// The trained trunk.
  model::gpt<B>& policy() { return policy_; }
  /// Trained heads besides the trunk: none unless the method says otherwise.
  std::vector<model::scalar_head<B>*> heads() { return {}; }
  /// The training split.
  [[nodiscard]] const std::vector<std::uint64_t>& train_indices() const {
    return source_.train_indices();
  }
  /// The evaluation split.
  [[nodiscard]] const std::vector<std::uint64_t>& eval_indices() const {
    return source_.eval_indices();
  }
  /// The dropout position and the training input tokens seen so far (num_tokens).
  [[nodiscard]] nlohmann::json state() const {
    return {{"dropout_forwards", cache_.forwards()}, {"num_tokens", num_tokens_}};
  }
  /// Continues from state(); anything else is an io_error. A state without "num_tokens"
  /// (a checkpoint written before it was kept) restarts the count at 0.
  void restore(const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("dropout_forwards") ||
        !j["dropout_forwards"].is_number_unsigned()) {
      throw io_error(
          rlhf::detail::concat(name_, ": trainer_state.method must hold ", "dropout_forwards"));
    }
    if (j.contains("num_tokens") && !j["num_tokens"].is_number_unsigned()) {
      throw io_error(rlhf::detail::concat(
          name_, ": trainer_state.method num_tokens must be a non-negative integer, got ",
          rlhf::detail::json_excerpt(j["num_tokens"])));
    }
    cache_.set_forwards(j["dropout_forwards"].template get<std::uint64_t>());
    num_tokens_ = j.value("num_tokens", std::uint64_t{0});
  }
  /// TRL's num_tokens: the non-padding input tokens of every training micro-batch so far
  /// (TRL's _total_train_tokens; evaluation adds none).
  [[nodiscard]] std::uint64_t num_tokens() const { return num_tokens_; }
  /// Advice before training starts: none unless the method says otherwise.
  [[nodiscard]] std::vector<std::string> start_warnings() const { return {}; }
  /// Turns a logging window's means into the logged values: as they are, except
  /// "num_tokens" of a method that counts it with report_input_tokens, which becomes the
  /// running total at the end of the window, as TRL logs it (its list is replaced, not
  /// averaged): for a training window and for an evaluation (TRL logs eval_num_tokens, the
  /// training total so far) alike.
  void finish_log(metric_means& means) const {
    if (!counts_tokens_) return;
    for (auto& [name, v] : means) {
      if (name == "num_tokens") v = static_cast<double>(num_tokens_);
    }
  }
  /// Advice after training: none unless the method says otherwise.
  [[nodiscard]] std::vector<std::string> warnings(const nlohmann::ordered_json&) const {
    return {};
  }

 protected:
  /// `policy` and `source` are kept by reference; dropout streams are keyed by `seed`.
  method_base(std::string_view name, model::gpt<B>& policy, example_source<Tok>& source,
              std::uint64_t seed)
      : policy_(policy), source_(source), cache_(policy.config(), seed), name_(name) {}

  /// TRL's num_tokens of a micro-batch whose input attention mask (real tokens 1, padding
  /// 0) is `attention_mask`: in training the count is added to the running total; either way
  /// "num_tokens" (the running total; finish_log logs it exactly) is appended to `out`.
  void report_input_tokens(std::span<const float> attention_mask, bool train, named_metrics& out) {
    counts_tokens_ = true;
    if (train) {
      double tokens = 0.0;
      for (const float m : attention_mask) tokens += static_cast<double>(m);
      num_tokens_ += static_cast<std::uint64_t>(tokens);
    }
    out.emplace_back("num_tokens", static_cast<float>(num_tokens_));
  }

  model::gpt<B>& policy_;         ///< the trunk
  example_source<Tok>& source_;   ///< the examples
  forward_cache<B> cache_;        ///< the trunk's activations and dropout position
  std::string name_;              ///< for messages
  std::uint64_t num_tokens_ = 0;  ///< training input tokens so far (TRL's num_tokens)
  bool counts_tokens_ = false;    ///< report_input_tokens was called: finish_log sets it
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
