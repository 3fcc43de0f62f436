// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Seeded, resumable batching of example indices, the train/eval split, and collation of
// tokenized examples into padded batches (docs/data.md, "Batching and resume").
//
//   rlhf::data::epoch_permutation  the order of epoch e: Philox-driven Fisher-Yates
//   rlhf::data::batcher            next() → indices of the next batch; state()/restore()
//   rlhf::data::train_eval_split   example i is in eval iff hash(seed, i) < fraction
//   rlhf::data::collate            tokenized examples → model::padded_batch (right padding)
//
// Everything is a pure function of (seed, epoch, example count): the same on every platform
// and standard library (no std::shuffle, no <random> distributions). The batcher works on
// indices (8 bytes per example for its list, 8 for the epoch's permutation); the examples
// themselves are read on demand (rlhf/data/dataset.hpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/core/shape.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/model/tokenizer.hpp"

namespace rlhf {
inline namespace v0 {
namespace data {

namespace detail {

// Philox stream of the train/eval split hash (epochs use streams 0, 1, 2, ...).
inline constexpr std::uint64_t split_stream = 0x73706C6974000000ull;

// The k-th 64-bit random value of (seed, stream): two 32-bit words of a Philox block.
[[nodiscard]] inline std::uint64_t random64(std::uint64_t seed, std::uint64_t stream,
                                            std::uint64_t k) {
  const philox_block b = philox_draw(seed, stream, k / 2);
  const unsigned j = static_cast<unsigned>(k % 2) * 2;
  return (static_cast<std::uint64_t>(b.w[j]) << 32) | b.w[j + 1];
}

// Uniform in [0, bound) without modulo bias: values below 2^64 mod bound are redrawn.
[[nodiscard]] inline std::uint64_t uniform_below(std::uint64_t seed, std::uint64_t stream,
                                                 std::uint64_t& counter, std::uint64_t bound) {
  const std::uint64_t reject_below = (0 - bound) % bound;  // 2^64 mod bound
  for (;;) {
    const std::uint64_t r = random64(seed, stream, counter++);
    if (r >= reject_below) return r % bound;
  }
}

}  // namespace detail

/// The order of `n` items in epoch `epoch` under `seed`: a permutation of [0, n), by
/// Fisher-Yates with unbiased draws from Philox stream `epoch`.
[[nodiscard]] inline std::vector<std::uint64_t> epoch_permutation(std::uint64_t n,
                                                                  std::uint64_t seed,
                                                                  std::uint64_t epoch) {
  std::vector<std::uint64_t> p(n);
  for (std::uint64_t i = 0; i < n; ++i) p[i] = i;
  std::uint64_t counter = 0;
  for (std::uint64_t i = n; i > 1; --i) {
    const std::uint64_t j = detail::uniform_below(seed, epoch, counter, i);
    std::swap(p[i - 1], p[j]);
  }
  return p;
}

/// Whether example `index` belongs to the eval split: a hash of (seed, index) below
/// eval_fraction · 2^64. It depends on nothing else, so appending examples to a dataset
/// never moves existing ones between splits. eval_fraction outside [0, 1] is a config_error.
[[nodiscard]] inline bool in_eval_split(std::uint64_t index, std::uint64_t seed,
                                        double eval_fraction) {
  if (!(eval_fraction >= 0.0 && eval_fraction <= 1.0)) {
    throw config_error(
        rlhf::detail::concat("in_eval_split: eval_fraction must be in [0, 1], "
                             "got ",
                             eval_fraction));
  }
  if (eval_fraction == 1.0) return true;
  const auto threshold = static_cast<std::uint64_t>(std::ldexp(eval_fraction, 64));
  return detail::random64(seed, detail::split_stream, index) < threshold;
}

/// Example indices of a train/eval split: disjoint, together [0, n), each ascending.
struct split_indices {
  std::vector<std::uint64_t> train;  ///< indices not in eval
  std::vector<std::uint64_t> eval;   ///< indices with in_eval_split(i, seed, fraction)
};

/// Splits [0, n) by in_eval_split. The eval share is eval_fraction on average, not exactly.
[[nodiscard]] inline split_indices train_eval_split(std::uint64_t n, std::uint64_t seed,
                                                    double eval_fraction) {
  split_indices s;
  for (std::uint64_t i = 0; i < n; ++i) {
    (in_eval_split(i, seed, eval_fraction) ? s.eval : s.train).push_back(i);
  }
  return s;
}

/// Where a batcher stands: the epoch and how many of its examples were handed out.
struct batcher_state {
  std::uint64_t epoch = 0;  ///< current epoch (0-based)
  std::uint64_t index = 0;  ///< examples of this epoch already handed out
  /// Equal when both members are.
  friend bool operator==(const batcher_state&, const batcher_state&) = default;
};

/// Options of batcher.
struct batcher_options {
  std::size_t batch_size = 8;  ///< examples per batch (> 0)
  std::uint64_t seed = 0;      ///< the permutation seed
  bool shuffle = true;         ///< false: every epoch in list order
  bool drop_last = false;      ///< drop an epoch's last, short batch
};

/// Hands out batches of example indices, epoch after epoch, in a seeded order. Saving
/// state() and later restore()-ing it (on a batcher over the same list and options) gives
/// exactly the batches the uninterrupted run would have given.
class batcher {
 public:
  /// Batches over `examples` (e.g. split_indices::train). An empty list or a batch size of
  /// 0 is a config_error.
  batcher(std::vector<std::uint64_t> examples, batcher_options options)
      : examples_(std::move(examples)), options_(options) {
    if (examples_.empty()) throw config_error("batcher: the example list is empty");
    if (options_.batch_size == 0) throw config_error("batcher: batch_size must be > 0, got 0");
    if (options_.drop_last && examples_.size() < options_.batch_size) {
      throw config_error(rlhf::detail::concat("batcher: drop_last with ", examples_.size(),
                                              " examples and batch_size ", options_.batch_size,
                                              " gives no batch"));
    }
    load_epoch(0);
  }

  /// The indices of the next batch (from the list given at construction). The last batch of
  /// an epoch is short unless drop_last; the next call starts the next epoch.
  [[nodiscard]] std::vector<std::uint64_t> next() {
    const std::uint64_t n = examples_.size();
    if (state_.index >= n || (options_.drop_last && n - state_.index < options_.batch_size)) {
      load_epoch(state_.epoch + 1);
    }
    const std::uint64_t take = std::min<std::uint64_t>(options_.batch_size, n - state_.index);
    std::vector<std::uint64_t> out;
    out.reserve(take);
    for (std::uint64_t k = 0; k < take; ++k) out.push_back(examples_[order(state_.index + k)]);
    state_.index += take;
    return out;
  }

  /// Where it stands; save it with a checkpoint.
  [[nodiscard]] batcher_state state() const noexcept { return state_; }

  /// Continues from a saved state. An index past the list's end is a config_error.
  void restore(batcher_state s) {
    if (s.index > examples_.size()) {
      throw config_error(rlhf::detail::concat("batcher::restore: index ", s.index, " is past the ",
                                              examples_.size(), " examples of an epoch"));
    }
    load_epoch(s.epoch);
    state_.index = s.index;
  }

  /// Batches per epoch.
  [[nodiscard]] std::size_t batches_per_epoch() const noexcept {
    const std::size_t n = examples_.size(), b = options_.batch_size;
    return options_.drop_last ? n / b : (n + b - 1) / b;
  }

 private:
  void load_epoch(std::uint64_t e) {
    state_ = batcher_state{e, 0};
    if (options_.shuffle) {
      perm_ = epoch_permutation(examples_.size(), options_.seed, e);
    }
  }
  [[nodiscard]] std::uint64_t order(std::uint64_t k) const {
    return options_.shuffle ? perm_[k] : k;
  }

  std::vector<std::uint64_t> examples_;  // (N,) example indices
  batcher_options options_;
  std::vector<std::uint64_t> perm_;  // (N,) positions in examples_, this epoch's order
  batcher_state state_;
};

/// The `sequence` of each example, right-padded to (N, T) with `pad_id` (T = `length`, or
/// the longest when 0); the completion masks travel along. Errors: those of pad_batch.
[[nodiscard]] inline model::padded_batch collate(std::span<const tokenized_example> batch,
                                                 std::int32_t pad_id, index_t length = 0) {
  std::vector<model::encoded_chat> seqs;
  seqs.reserve(batch.size());
  for (const auto& t : batch) seqs.push_back(t.sequence);
  return model::pad_batch(std::span<const model::encoded_chat>(seqs), pad_id,
                          model::padding_side::right, length);
}

/// The (N,) "soft_label" values of a batch of preference examples (the probability that
/// chosen is the better response), for a trainer asked to train on soft labels. An example
/// without one is a data_error naming `who` and the example's dataset index from `ids`.
[[nodiscard]] inline std::vector<float> soft_labels(std::span<const tokenized_example> batch,
                                                    std::span<const std::uint64_t> ids,
                                                    std::string_view who) {
  std::vector<float> out;
  out.reserve(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].soft_label) {
      throw data_error(rlhf::detail::concat(who, ": soft labels were asked for, but example ",
                                            i < ids.size() ? ids[i] : i,
                                            " has no \"soft_label\" field (a number in [0, 1])"));
    }
    out.push_back(static_cast<float>(*batch[i].soft_label));
  }
  return out;
}

/// A batch of preference pairs: chosen and rejected, each (N, T) with the same T (so the two
/// can be stacked into one (2N, T) forward pass), and the margins.
struct preference_batch {
  model::padded_batch chosen;    ///< (N, T)
  model::padded_batch rejected;  ///< (N, T)
  std::vector<float> margins;    ///< (N,), 0 where an example has no "margin"
};

/// Collates preference examples; T = `length`, or the longest of both sides when 0.
[[nodiscard]] inline preference_batch collate_preferences(std::span<const tokenized_example> batch,
                                                          std::int32_t pad_id, index_t length = 0) {
  std::vector<model::encoded_chat> chosen, rejected;
  preference_batch out;
  index_t longest = 0;
  for (const auto& t : batch) {
    chosen.push_back(t.chosen);
    rejected.push_back(t.rejected);
    out.margins.push_back(static_cast<float>(t.margin.value_or(0.0)));
    longest = std::max({longest, static_cast<index_t>(t.chosen.ids.size()),
                        static_cast<index_t>(t.rejected.ids.size())});
  }
  const index_t t_len = length == 0 ? longest : length;
  out.chosen = model::pad_batch(std::span<const model::encoded_chat>(chosen), pad_id,
                                model::padding_side::right, t_len);
  out.rejected = model::pad_batch(std::span<const model::encoded_chat>(rejected), pad_id,
                                  model::padding_side::right, t_len);
  return out;
}

}  // namespace data
}  // namespace v0
}  // namespace rlhf
