// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// What every training method over one example_source and one trained trunk shares: the
// trunk, the two splits, the activations cache and its resumable dropout position, and the
// defaults "no heads", "no advice" and "log the means as they are". A method derives from it and adds
// train_micro_batch / eval_batch (and heads() / warnings() when it has them), which is what
// trainer<B, M> asks for (train/trainer.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
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
  /// The dropout position.
  [[nodiscard]] nlohmann::json state() const { return {{"dropout_forwards", cache_.forwards()}}; }
  /// Continues from state(); anything else is an io_error.
  void restore(const nlohmann::json& j) {
    if (!j.is_object() || !j.contains("dropout_forwards") ||
        !j["dropout_forwards"].is_number_unsigned()) {
      throw io_error(
          rlhf::detail::concat(name_, ": trainer_state.method must hold ", "dropout_forwards"));
    }
    cache_.set_forwards(j["dropout_forwards"].template get<std::uint64_t>());
  }
  /// Advice before training starts: none unless the method says otherwise.
  [[nodiscard]] std::vector<std::string> start_warnings() const { return {}; }
  /// Turns a logging window's means into the logged values: as they are, unless the method
  /// logs ratios of sums (KTO, BCO).
  void finish_log(metric_means&) const {}
  /// Advice after training: none unless the method says otherwise.
  [[nodiscard]] std::vector<std::string> warnings(const nlohmann::ordered_json&) const {
    return {};
  }

 protected:
  /// `policy` and `source` are kept by reference; dropout streams are keyed by `seed`.
  method_base(std::string_view name, model::gpt<B>& policy, example_source<Tok>& source,
              std::uint64_t seed)
      : policy_(policy), source_(source), cache_(policy.config(), seed), name_(name) {}

  model::gpt<B>& policy_;        ///< the trunk
  example_source<Tok>& source_;  ///< the examples
  forward_cache<B> cache_;       ///< the trunk's activations and dropout position
  std::string name_;             ///< for messages
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
