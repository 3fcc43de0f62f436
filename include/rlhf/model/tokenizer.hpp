// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Tokenizers of the bundled model (docs/model.md, "Tokenizer").
//
//   rlhf::model::tokenizer       the concept another tokenizer satisfies to plug in
//   rlhf::model::byte_tokenizer  ids 0..255 are the bytes, 256 = BOS, 257 = EOS, 258 = PAD
//   rlhf::model::chat_template   prompt/response → ids + completion mask (0 prompt, 1 response)
//   rlhf::model::pad_batch       sequences → (N, T) ids, attention mask, completion mask
//
// Everything here is host code on std::vector; the caller copies the result to a backend
// (ops::from_host<B>). Masks are float 0/1, the form the losses of rlhf/losses/*.hpp and
// ops/logprobs.hpp take: mask[n, t] weighs the token at position t (the logits of position
// t-1 predict it).
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/shape.hpp"
#include "rlhf/core/validate.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// What the model, the data pipeline and the samplers need from a tokenizer. encode() adds
/// no special tokens (the chat template does); decode() of ids it produced gives the text
/// back. Ids lie in [0, vocab_size()).
template <class T>
concept tokenizer = requires(const T& t, std::string_view text, std::span<const std::int32_t> ids) {
  { t.encode(text) } -> std::same_as<std::vector<std::int32_t>>;
  { t.decode(ids) } -> std::same_as<std::string>;
  { t.vocab_size() } -> std::convertible_to<std::int32_t>;
  { t.bos_id() } -> std::convertible_to<std::int32_t>;
  { t.eos_id() } -> std::convertible_to<std::int32_t>;
  { t.pad_id() } -> std::convertible_to<std::int32_t>;
};

/// Options of byte_tokenizer::decode.
struct decode_options {
  /// false: BOS/EOS/PAD are dropped. true: they are written as "<|bos|>", "<|eos|>",
  /// "<|pad|>".
  bool render_specials = false;
};

/// Byte-level tokenizer: every byte of the UTF-8 (or any) text is one id, so every string
/// round trips and there is no unknown token. vocab_size() = 259; a model config pads its
/// embedding table further (to a multiple of 64) without changing these ids.
class byte_tokenizer {
 public:
  static constexpr std::int32_t bos = 256;    ///< The BOS id.
  static constexpr std::int32_t eos = 257;    ///< The EOS id.
  static constexpr std::int32_t pad = 258;    ///< The PAD id.
  static constexpr std::int32_t vocab = 259;  ///< The vocabulary size: 256 bytes + 3 specials.

  /// The vocabulary size, 259.
  [[nodiscard]] static constexpr std::int32_t vocab_size() noexcept { return vocab; }
  /// The BOS id, 256.
  [[nodiscard]] static constexpr std::int32_t bos_id() noexcept { return bos; }
  /// The EOS id, 257.
  [[nodiscard]] static constexpr std::int32_t eos_id() noexcept { return eos; }
  /// The PAD id, 258.
  [[nodiscard]] static constexpr std::int32_t pad_id() noexcept { return pad; }
  /// True for BOS, EOS and PAD (ids 256..258).
  [[nodiscard]] static constexpr bool is_special(std::int32_t id) noexcept {
    return id >= bos && id < vocab;
  }

  /// One id per byte, in [0, 255]. No BOS/EOS is added.
  [[nodiscard]] std::vector<std::int32_t> encode(std::string_view text) const {
    std::vector<std::int32_t> ids(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
      ids[i] = static_cast<std::int32_t>(static_cast<unsigned char>(text[i]));
    }
    return ids;
  }

  /// Bytes back to text; specials dropped or rendered (decode_options). An id outside
  /// [0, 259) is a data_error naming its position.
  [[nodiscard]] std::string decode(std::span<const std::int32_t> ids) const {
    return decode(ids, decode_options{});
  }
  /// The same with explicit options: `opt.render_specials` writes the specials' text.
  [[nodiscard]] std::string decode(std::span<const std::int32_t> ids,
                                   const decode_options& opt) const {
    std::string out;
    out.reserve(ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::int32_t id = ids[i];
      if (id >= 0 && id < 256) {
        out.push_back(static_cast<char>(static_cast<unsigned char>(id)));
      } else if (is_special(id)) {
        if (opt.render_specials) out += special_text(id);
      } else {
        throw data_error(rlhf::detail::concat("byte_tokenizer::decode: id at position ", i,
                                        " must be in [0, ", vocab, "), got ", id));
      }
    }
    return out;
  }

  /// "<|bos|>", "<|eos|>", "<|pad|>" (what decode renders); empty for a byte.
  [[nodiscard]] static std::string_view special_text(std::int32_t id) noexcept {
    switch (id) {
      case bos: return "<|bos|>";
      case eos: return "<|eos|>";
      case pad: return "<|pad|>";
      default: return {};
    }
  }
};

static_assert(tokenizer<byte_tokenizer>);

/// A prompt/response pair as ids, with the completion mask the losses take.
struct encoded_chat {
  std::vector<std::int32_t> ids;  ///< The prompt part, then the response ids (and EOS).
  /// Same length as ids: 0 on the prompt part (BOS, template text, prompt), 1 on every
  /// response token and on the final EOS.
  std::vector<float> completion_mask;
  /// Number of leading ids that belong to the prompt part (= index of the first response id).
  std::size_t prompt_length = 0;
};

/// The chat template. With the defaults the text of a pair is exactly
///
///   `"<|user|>\n" + prompt + "\n<|assistant|>\n" + response`
///
/// encoded with the tokenizer, followed by the EOS id. The markers "<|user|>" and
/// "<|assistant|>" are plain text (with byte_tokenizer, their bytes), not special ids. With
/// add_bos the BOS id comes first (default off). The prompt part (everything up to and
/// including `"<|assistant|>\n"`) has mask 0; the response tokens and the EOS have mask 1.
/// Generation starts from prompt_ids(): the prompt part alone.
struct chat_template {
  std::string user_prefix = "<|user|>\n";              ///< Text before the prompt.
  std::string assistant_prefix = "\n<|assistant|>\n";  ///< Text between prompt and response.
  bool add_bos = false;                                ///< Put the BOS id first.
  bool add_eos = true;                                 ///< End the response with the EOS id.

  /// The prompt part as text: user_prefix + prompt + assistant_prefix.
  [[nodiscard]] std::string prompt_text(std::string_view prompt) const {
    std::string s;
    s.reserve(user_prefix.size() + prompt.size() + assistant_prefix.size());
    s.append(user_prefix).append(prompt).append(assistant_prefix);
    return s;
  }

  /// The ids of the prompt part (BOS first if add_bos): what a sampler continues.
  template <tokenizer Tok>
  [[nodiscard]] std::vector<std::int32_t> prompt_ids(const Tok& tok,
                                                     std::string_view prompt) const {
    std::vector<std::int32_t> ids;
    if (add_bos) ids.push_back(static_cast<std::int32_t>(tok.bos_id()));
    const auto body = tok.encode(prompt_text(prompt));
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
  }

  /// Prompt part (mask 0) + response tokens and EOS (mask 1).
  template <tokenizer Tok>
  [[nodiscard]] encoded_chat render(const Tok& tok, std::string_view prompt,
                                    std::string_view response) const {
    encoded_chat r;
    r.ids = prompt_ids(tok, prompt);
    r.prompt_length = r.ids.size();
    const auto resp = tok.encode(response);
    r.ids.insert(r.ids.end(), resp.begin(), resp.end());
    if (add_eos) r.ids.push_back(static_cast<std::int32_t>(tok.eos_id()));
    r.completion_mask.assign(r.ids.size(), 0.0f);
    std::fill(r.completion_mask.begin() + static_cast<std::ptrdiff_t>(r.prompt_length),
              r.completion_mask.end(), 1.0f);
    return r;
  }
};

/// Where pad_batch puts the padding of a short row: left (before the tokens) or right.
enum class padding_side { left, right };

/// A batch of N sequences padded to (N, T), row-major, on the host.
struct padded_batch {
  index_t rows = 0;                         ///< N, the number of sequences.
  index_t cols = 0;                         ///< T, the padded length.
  std::vector<std::int32_t> ids;            ///< (N, T), PAD where there is no token.
  std::vector<float> attention_mask;        ///< (N, T), 1 on real tokens, 0 on padding.
  std::vector<float> completion_mask;       ///< (N, T), the rows' completion masks, 0 on padding.
  std::vector<index_t> lengths;             ///< (N,), real tokens per row.
  padding_side side = padding_side::right;  ///< Which side the padding is on.

  /// (N, T) as a shape (a shape_error when N·T exceeds shape::max_numel).
  [[nodiscard]] rlhf::shape shape() const { return rlhf::shape{rows, cols}; }
  /// Column of the first real token of row n (left padding: T - length; right: 0); a row
  /// outside [0, N) is a shape_error naming `n`.
  [[nodiscard]] index_t first_token(index_t n) const {
    const index_t len = length_of("first_token", n);
    return side == padding_side::left ? cols - len : 0;
  }
  /// Column of the last real token of row n (-1 for an empty row); a row outside [0, N) is
  /// a shape_error naming `n`.
  [[nodiscard]] index_t last_token(index_t n) const {
    const index_t len = length_of("last_token", n);
    return len == 0 ? -1 : first_token(n) + len - 1;
  }

 private:
  [[nodiscard]] index_t length_of(std::string_view fn, index_t n) const {
    if (n < 0 || n >= static_cast<index_t>(lengths.size())) {
      throw shape_error(rlhf::detail::concat("padded_batch::", fn, ": n = ", n,
                                             " is not a row of the batch [0, ", lengths.size(),
                                             ")"));
    }
    return lengths[static_cast<std::size_t>(n)];
  }
};

/// Pads `sequences` with `pad_id` to (N, T), T = `length` or, when `length` is 0, the
/// longest sequence. `completion_masks` is empty (completion mask = 0 everywhere) or one
/// mask per sequence of the same length. Left padding puts the tokens at the end of each
/// row (what batched generation wants), right padding at the start (training).
/// An empty batch, a sequence longer than `length`, or a mask of the wrong length is a
/// shape_error.
[[nodiscard]] inline padded_batch pad_batch(
    std::span<const std::vector<std::int32_t>> sequences, std::int32_t pad_id,
    padding_side side = padding_side::right,
    std::span<const std::vector<float>> completion_masks = {}, index_t length = 0) {
  constexpr std::string_view fn = "pad_batch";
  if (sequences.empty()) throw shape_error("pad_batch: batch is empty");
  if (!completion_masks.empty() && completion_masks.size() != sequences.size()) {
    throw shape_error(rlhf::detail::concat(fn, ": completion_masks has ", completion_masks.size(),
                                     " masks, expected ", sequences.size(),
                                     " (one per sequence)"));
  }
  if (length < 0) {
    throw shape_error(rlhf::detail::concat(fn, ": length must be >= 0, got ", length));
  }
  index_t longest = 0;
  for (const auto& s : sequences) longest = std::max(longest, static_cast<index_t>(s.size()));
  const index_t t_len = length == 0 ? longest : length;
  padded_batch b;
  b.rows = static_cast<index_t>(sequences.size());
  b.cols = t_len;
  b.side = side;
  // shape() checks rows·cols against shape::max_numel (a shape_error naming the shape).
  const auto total = static_cast<std::size_t>(b.shape().numel());
  b.ids.assign(total, pad_id);
  b.attention_mask.assign(total, 0.0f);
  b.completion_mask.assign(total, 0.0f);
  b.lengths.resize(sequences.size());
  for (std::size_t n = 0; n < sequences.size(); ++n) {
    const auto& seq = sequences[n];
    const auto len = static_cast<index_t>(seq.size());
    if (len > t_len) {
      throw shape_error(rlhf::detail::concat(fn, ": sequence ", n, " has ", len,
                                       " tokens, more than the padded length ", t_len));
    }
    if (!completion_masks.empty() && completion_masks[n].size() != seq.size()) {
      throw shape_error(rlhf::detail::concat(fn, ": completion_masks[", n, "] has ",
                                       completion_masks[n].size(), " values, sequence ", n,
                                       " has ", seq.size(), " tokens"));
    }
    b.lengths[n] = len;
    const index_t start = side == padding_side::left ? t_len - len : 0;
    const auto row = static_cast<std::size_t>(static_cast<index_t>(n) * t_len + start);
    for (std::size_t i = 0; i < seq.size(); ++i) {
      b.ids[row + i] = seq[i];
      b.attention_mask[row + i] = 1.0f;
      if (!completion_masks.empty()) b.completion_mask[row + i] = completion_masks[n][i];
    }
  }
  return b;
}

/// Pads rendered chat pairs (ids and completion masks) with `pad_id`.
[[nodiscard]] inline padded_batch pad_batch(std::span<const encoded_chat> chats,
                                            std::int32_t pad_id,
                                            padding_side side = padding_side::right,
                                            index_t length = 0) {
  std::vector<std::vector<std::int32_t>> ids;
  std::vector<std::vector<float>> masks;
  ids.reserve(chats.size());
  masks.reserve(chats.size());
  for (const auto& c : chats) {
    ids.push_back(c.ids);
    masks.push_back(c.completion_mask);
  }
  return pad_batch(ids, pad_id, side, masks, length);
}

}  // namespace model
}  // namespace v0
}  // namespace rlhf
