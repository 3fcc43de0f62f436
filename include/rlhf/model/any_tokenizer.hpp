// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// A tokenizer chosen at run time (docs/models.md): the byte tokenizer of the bundled demos or
// a model folder's byte-level BPE, behind one value type that satisfies model::tokenizer, so
// that code templated on the tokenizer (the trainers, the data readers) is compiled once and
// serves both.
//
//   any_tokenizer tok;                                   the byte tokenizer
//   any_tokenizer tok(bpe_tokenizer::from_file(path));   a Hugging Face tokenizer.json
//   any_tokenizer::from_model_folder(folder)             folder/tokenizer.json (or GPT-2's
//                                                        vocab.json + merges.txt)
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/bpe_tokenizer.hpp"
#include "rlhf/model/tokenizer.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// The byte tokenizer or a byte-level BPE one. Copies share the BPE tables (immutable).
class any_tokenizer {
 public:
  /// The byte tokenizer.
  any_tokenizer() = default;
  /// A BPE tokenizer.
  explicit any_tokenizer(bpe_tokenizer bpe)
      : bpe_(std::make_shared<const bpe_tokenizer>(std::move(bpe))) {}

  /// The tokenizer of a Hugging Face model folder: tokenizer.json (with the BOS/EOS/PAD names
  /// of tokenizer_config.json beside it), else GPT-2's vocab.json + merges.txt; io_error when
  /// the folder has neither.
  [[nodiscard]] static any_tokenizer from_model_folder(const std::filesystem::path& folder) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(folder / "tokenizer.json", ec)) {
      return any_tokenizer(bpe_tokenizer::from_file(folder / "tokenizer.json"));
    }
    if (std::filesystem::is_regular_file(folder / "vocab.json", ec) &&
        std::filesystem::is_regular_file(folder / "merges.txt", ec)) {
      return any_tokenizer(
          bpe_tokenizer::from_gpt2_files(folder / "vocab.json", folder / "merges.txt"));
    }
    throw io_error(rlhf::detail::concat("any_tokenizer::from_model_folder: ", folder.string(),
                                        ": no tokenizer.json (nor vocab.json + merges.txt)"));
  }

  /// True for a BPE tokenizer, false for the byte tokenizer.
  [[nodiscard]] bool is_bpe() const noexcept { return bpe_ != nullptr; }
  /// The ids of `text`.
  [[nodiscard]] std::vector<std::int32_t> encode(std::string_view text) const {
    return bpe_ ? bpe_->encode(text) : byte_.encode(text);
  }
  /// The text of `ids` (special tokens kept as their text by BPE, dropped by the byte
  /// tokenizer).
  [[nodiscard]] std::string decode(std::span<const std::int32_t> ids) const {
    return bpe_ ? bpe_->decode(ids) : byte_.decode(ids);
  }
  /// Ids are in [0, vocab_size()).
  [[nodiscard]] std::int32_t vocab_size() const noexcept {
    return bpe_ ? bpe_->vocab_size() : byte_tokenizer::vocab_size();
  }
  /// The BOS id.
  [[nodiscard]] std::int32_t bos_id() const noexcept {
    return bpe_ ? bpe_->bos_id() : byte_tokenizer::bos_id();
  }
  /// The EOS id (generation stops there).
  [[nodiscard]] std::int32_t eos_id() const noexcept {
    return bpe_ ? bpe_->eos_id() : byte_tokenizer::eos_id();
  }
  /// The PAD id.
  [[nodiscard]] std::int32_t pad_id() const noexcept {
    return bpe_ ? bpe_->pad_id() : byte_tokenizer::pad_id();
  }

 private:
  std::shared_ptr<const bpe_tokenizer> bpe_;
  byte_tokenizer byte_;
};

static_assert(tokenizer<any_tokenizer>);

}  // namespace model
}  // namespace v0
}  // namespace rlhf
