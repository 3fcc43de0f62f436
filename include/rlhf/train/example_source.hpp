// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The examples a trainer reads: a training JSONL file and an optional evaluation file (or a
// seeded held-out share of the training file), indexed by one streaming pass each and
// tokenized on demand, so a file larger than memory trains without being loaded whole
// (8 bytes of index per example; docs/data.md).
//
// Indices: [0, n_train) are the training file's examples, [n_train, n_train + n_eval) the
// evaluation file's. With eval_fraction > 0 and no evaluation file, both splits are subsets
// of the training file (data::train_eval_split).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/data/batcher.hpp"
#include "rlhf/data/dataset.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/model/tokenizer.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// Where a trainer's examples come from.
struct data_files {
  std::filesystem::path train_file;  ///< JSONL, one example per line (required)
  std::filesystem::path eval_file;   ///< JSONL; empty: hold out eval_fraction of train_file
  data::jsonl_options reader{};      ///< bad-line policy and limits
};

/// Tokenized examples of a training (and evaluation) file, read on demand.
template <model::tokenizer Tok>
class example_source {
 public:
  /// Indexes the files; every example must have format `expected`. `seed` and
  /// `eval_fraction` choose the held-out share when there is no evaluation file.
  example_source(const data_files& files, data::format expected, Tok tokenizer,
                 data::tokenize_options tokenize, std::uint64_t seed, double eval_fraction)
      : tok_(std::move(tokenizer)), options_(std::move(tokenize)),
        train_(files.train_file, files.reader, expected) {
    if (train_.size() == 0) {
      throw data_error(rlhf::detail::concat("example_source: ", files.train_file.string(),
                                            " holds no ", data::format_name(expected), " example"));
    }
    const auto n_train = static_cast<std::uint64_t>(train_.size());
    if (!files.eval_file.empty()) {
      eval_.emplace(files.eval_file, files.reader, expected);
      for (std::uint64_t i = 0; i < n_train; ++i) train_idx_.push_back(i);
      for (std::uint64_t i = 0; i < eval_->size(); ++i) eval_idx_.push_back(n_train + i);
    } else {
      auto split = data::train_eval_split(n_train, seed, eval_fraction);
      train_idx_ = std::move(split.train);
      eval_idx_ = std::move(split.eval);
      if (train_idx_.empty()) {
        throw config_error(rlhf::detail::concat("example_source: eval_fraction ", eval_fraction,
                                                " leaves no training example"));
      }
    }
  }

  /// The training split's indices.
  [[nodiscard]] const std::vector<std::uint64_t>& train_indices() const { return train_idx_; }
  /// The evaluation split's indices (may be empty).
  [[nodiscard]] const std::vector<std::uint64_t>& eval_indices() const { return eval_idx_; }
  /// The tokenizer.
  [[nodiscard]] const Tok& tokenizer() const { return tok_; }
  /// The tokenization options.
  [[nodiscard]] const data::tokenize_options& tokenize_options() const { return options_; }
  /// Bad lines skipped while indexing (with the skip policy).
  [[nodiscard]] std::uint64_t skipped() const {
    return train_.skipped() + (eval_ ? eval_->skipped() : 0);
  }

  /// Example `i` (an index of either split) as read.
  [[nodiscard]] data::example raw(std::uint64_t i) {
    const auto n_train = static_cast<std::uint64_t>(train_.size());
    return i < n_train ? train_.get(static_cast<std::size_t>(i))
                       : eval_.value().get(static_cast<std::size_t>(i - n_train));
  }

  /// Example `i` (an index of either split), tokenized.
  [[nodiscard]] data::tokenized_example get(std::uint64_t i) {
    return data::tokenize(tok_, raw(i), options_);
  }

  /// The examples of `idx`, tokenized, in order.
  [[nodiscard]] std::vector<data::tokenized_example> get(std::span<const std::uint64_t> idx) {
    std::vector<data::tokenized_example> out;
    out.reserve(idx.size());
    for (const auto i : idx) out.push_back(get(i));
    return out;
  }

 private:
  Tok tok_;
  data::tokenize_options options_;
  data::jsonl_dataset train_;
  std::optional<data::jsonl_dataset> eval_;
  std::vector<std::uint64_t> train_idx_, eval_idx_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
