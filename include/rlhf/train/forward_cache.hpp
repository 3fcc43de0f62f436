// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Activations of one model, kept across micro-batches. Batches are padded to the longest
// sequence rounded up to a multiple of `pad_multiple` (at most the model's context), so a
// run reallocates only when a batch's padded shape changes. The dropout stream counter lives
// here, not in the activations, so it survives a reallocation and a checkpoint.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

#include "rlhf/core/config.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/config.hpp"
#include "rlhf/model/gpt.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// One model's activations for the current (N, T), and its dropout position.
template <class B>
class forward_cache {
 public:
  /// Activations of `cfg` for padded batches; dropout streams keyed by `dropout_seed`.
  forward_cache(const model::gpt_config& cfg, std::uint64_t dropout_seed, index_t pad_multiple = 16)
      : cfg_(cfg), seed_(dropout_seed), multiple_(pad_multiple) {}

  /// The padded length for a batch whose longest sequence has `longest` tokens; longer than
  /// the model's context is a data_error.
  [[nodiscard]] index_t padded_length(index_t longest) const {
    if (longest > cfg_.max_seq_len) {
      throw data_error(rlhf::detail::concat(
          "trainer: a sequence of ", longest, " tokens is longer than the model's context (",
          cfg_.max_seq_len, "); set max_length <= ", cfg_.max_seq_len));
    }
    const index_t rounded = (longest + multiple_ - 1) / multiple_ * multiple_;
    return std::min(std::max<index_t>(rounded, 1), cfg_.max_seq_len);
  }

  /// Activations for (n, t), carrying the dropout position in and `train` set.
  model::gpt_activations<B>& get(index_t n, index_t t, bool train) {
    if (!acts_ || acts_->batch != n || acts_->steps != t) acts_.emplace(cfg_, n, t);
    acts_->dropout_seed = seed_;
    acts_->dropout_forwards = forwards_;
    acts_->train = train;
    return *acts_;
  }

  /// Records the dropout position after a forward on get()'s activations.
  void commit() { forwards_ = acts_->dropout_forwards; }

  /// Dropout forwards so far (saved with checkpoints).
  [[nodiscard]] std::uint64_t forwards() const { return forwards_; }
  /// Continues from a saved dropout position.
  void set_forwards(std::uint64_t f) { forwards_ = f; }

 private:
  model::gpt_config cfg_;
  std::uint64_t seed_;
  index_t multiple_;
  std::uint64_t forwards_ = 0;
  std::optional<model::gpt_activations<B>> acts_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
