// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Examples (rlhf/data/formats.hpp) to token ids with completion masks, with TRL's length
// limits and truncation modes (docs/data.md, "Tokenization" and "Truncation").
//
// Every sequence is a model::encoded_chat: ids, completion_mask (0 on the prompt part, 1 on
// the completion; 1 everywhere for language modeling) and prompt_length.
//
// Rendering (tok = any model::tokenizer, t = options.chat, a model::chat_template):
//   standard text     [BOS] prompt completion [EOS]  (TRL: no template on plain text), or
//                     with template_text, exactly t.render(tok, prompt, completion)
//   conversations     [BOS] then per message: user → t.user_prefix + content; assistant →
//                     t.assistant_prefix + content + [EOS]; system → system_prefix + content
//                     + "\n". After a prompt, t.assistant_prefix opens the completion (the
//                     generation prompt); the completion's first assistant message then
//                     contributes only its content. A single user/assistant pair renders
//                     exactly as t.render(tok, user, assistant).
// [BOS] with t.add_bos, [EOS] with t.add_eos. Text between specials is encoded in one piece.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/data/formats.hpp"
#include "rlhf/model/tokenizer.hpp"

namespace rlhf {
inline namespace v0 {
namespace data {

/// Which end of an over-long sequence survives (TRL's truncation_mode).
enum class truncation_mode {
  keep_end,    ///< drop tokens from the start ("keep_end": TRL DPOConfig's default)
  keep_start,  ///< drop tokens from the end ("keep_start")
};

}  // namespace data

/// TRL's names of the truncation modes.
template <>
struct enum_names<data::truncation_mode> {
  /// Every mode with its name, in declaration order.
  static constexpr std::array<enum_name<data::truncation_mode>, 2> values{{
      {data::truncation_mode::keep_end, "keep_end"},
      {data::truncation_mode::keep_start, "keep_start"},
  }};
};
static_assert(enum_table_covers<data::truncation_mode>(2));

namespace data {

/// Rendering and length limits; a limit of 0 means none.
struct tokenize_options {
  model::chat_template chat{};                 ///< markers, BOS/EOS
  std::string system_prefix = "<|system|>\n";  ///< opens a system message
  /// Standard (text) prompt/completion pairs through chat.render instead of plain
  /// concatenation.
  bool template_text = false;
  /// Longest prompt part in tokens (preference, prompt_completion, unpaired, prompt_only);
  /// cut by `truncation`.
  std::size_t max_prompt_length = 0;
  /// Longest completion part in tokens; always cut at its end (the final EOS may go).
  std::size_t max_completion_length = 0;
  /// Longest whole sequence, applied last; cut by `truncation`.
  std::size_t max_length = 0;
  /// Which end of the prompt (max_prompt_length) and of the sequence (max_length) is kept.
  truncation_mode truncation = truncation_mode::keep_end;
};

/// An example as token sequences.
struct tokenized_example {
  format kind = format::language_modeling;  ///< the example's format
  /// language_modeling, prompt_completion, unpaired_preference: the sequence; prompt_only:
  /// the prompt part alone (all mask 0), what a sampler continues.
  model::encoded_chat sequence;
  model::encoded_chat chosen;        ///< preference: prompt + chosen
  model::encoded_chat rejected;      ///< preference: prompt + rejected
  std::optional<double> margin;      ///< preference: "margin" when given
  std::optional<double> soft_label;  ///< preference: "soft_label" when given
  std::optional<bool> label;         ///< unpaired_preference: "label"
};

namespace detail {

// Collects ids; text is buffered so that a run of text between specials is encoded at once.
template <model::tokenizer Tok>
class id_builder {
 public:
  explicit id_builder(const Tok& tok) : tok_(tok) {}
  void text(std::string_view s) { pending_.append(s); }
  void special(std::int32_t id) {
    flush();
    ids_.push_back(id);
  }
  std::vector<std::int32_t>& flush() {
    if (!pending_.empty()) {
      const auto enc = tok_.encode(pending_);
      ids_.insert(ids_.end(), enc.begin(), enc.end());
      pending_.clear();
    }
    return ids_;
  }

 private:
  const Tok& tok_;
  std::string pending_;
  std::vector<std::int32_t> ids_;
};

template <model::tokenizer Tok>
void render_messages(id_builder<Tok>& b, const Tok& tok, const tokenize_options& o,
                     const std::vector<message>& msgs, bool skip_first_assistant_prefix) {
  for (std::size_t i = 0; i < msgs.size(); ++i) {
    const auto& m = msgs[i];
    if (m.role == "assistant") {
      if (!(i == 0 && skip_first_assistant_prefix)) b.text(o.chat.assistant_prefix);
      b.text(m.content);
      if (o.chat.add_eos) b.special(static_cast<std::int32_t>(tok.eos_id()));
    } else if (m.role == "system") {
      b.text(o.system_prefix);
      b.text(m.content);
      b.text("\n");
    } else {
      b.text(o.chat.user_prefix);
      b.text(m.content);
    }
  }
}

// Prompt part ids: [BOS] + prompt (+ generation prompt for chats / templated text).
template <model::tokenizer Tok>
std::vector<std::int32_t> prompt_ids(const Tok& tok, const tokenize_options& o,
                                     const content& prompt) {
  id_builder<Tok> b(tok);
  if (o.chat.add_bos) b.special(static_cast<std::int32_t>(tok.bos_id()));
  if (prompt.conversational) {
    render_messages(b, tok, o, prompt.messages, false);
    b.text(o.chat.assistant_prefix);
  } else if (o.template_text) {
    b.text(o.chat.prompt_text(prompt.text));
  } else {
    b.text(prompt.text);
  }
  return std::move(b.flush());
}

// Completion part ids: completion [EOS] (chats: messages, the first one's prefix omitted when
// it is an assistant message, since the prompt part ends with the generation prompt).
template <model::tokenizer Tok>
std::vector<std::int32_t> completion_ids(const Tok& tok, const tokenize_options& o,
                                         const content& completion) {
  id_builder<Tok> b(tok);
  if (completion.conversational) {
    render_messages(b, tok, o, completion.messages, true);
  } else {
    b.text(completion.text);
    if (o.chat.add_eos) b.special(static_cast<std::int32_t>(tok.eos_id()));
  }
  return std::move(b.flush());
}

inline void keep(std::vector<std::int32_t>& ids, std::size_t limit, truncation_mode mode) {
  if (limit == 0 || ids.size() <= limit) return;
  if (mode == truncation_mode::keep_start) {
    ids.resize(limit);
  } else {
    ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(limit));
  }
}

// prompt (mask 0) + completion (mask 1), then max_length.
inline model::encoded_chat join(std::vector<std::int32_t> prompt,
                                std::vector<std::int32_t> completion, const tokenize_options& o) {
  keep(prompt, o.max_prompt_length, o.truncation);
  keep(completion, o.max_completion_length, truncation_mode::keep_start);
  model::encoded_chat r;
  r.ids = std::move(prompt);
  r.prompt_length = r.ids.size();
  r.ids.insert(r.ids.end(), completion.begin(), completion.end());
  r.completion_mask.assign(r.ids.size(), 0.0f);
  std::fill(r.completion_mask.begin() + static_cast<std::ptrdiff_t>(r.prompt_length),
            r.completion_mask.end(), 1.0f);
  if (o.max_length != 0 && r.ids.size() > o.max_length) {
    const std::size_t drop = r.ids.size() - o.max_length;
    if (o.truncation == truncation_mode::keep_start) {
      r.ids.resize(o.max_length);
      r.completion_mask.resize(o.max_length);
      r.prompt_length = std::min(r.prompt_length, o.max_length);
    } else {
      const auto d = static_cast<std::ptrdiff_t>(drop);
      r.ids.erase(r.ids.begin(), r.ids.begin() + d);
      r.completion_mask.erase(r.completion_mask.begin(), r.completion_mask.begin() + d);
      r.prompt_length = r.prompt_length > drop ? r.prompt_length - drop : 0;
    }
  }
  return r;
}

}  // namespace detail

/// The token sequences of `ex` (see the top of this header for the rendering). Lengths:
/// the prompt part is cut to max_prompt_length (which end survives: `truncation`), the
/// completion to max_completion_length (its start survives), then the whole sequence to
/// max_length (`truncation`). For language_modeling only max_length applies. An empty
/// result (e.g. an empty text without EOS) is allowed; pad_batch handles it.
template <model::tokenizer Tok>
[[nodiscard]] tokenized_example tokenize(const Tok& tok, const example& ex,
                                         const tokenize_options& o = {}) {
  tokenized_example t;
  t.kind = ex.kind;
  t.margin = ex.margin;
  t.soft_label = ex.soft_label;
  t.label = ex.label;
  switch (ex.kind) {
    case format::language_modeling: {
      detail::id_builder<Tok> b(tok);
      if (o.chat.add_bos) b.special(static_cast<std::int32_t>(tok.bos_id()));
      if (ex.text.conversational) {
        detail::render_messages(b, tok, o, ex.text.messages, false);
      } else {
        b.text(ex.text.text);
        if (o.chat.add_eos) b.special(static_cast<std::int32_t>(tok.eos_id()));
      }
      tokenize_options lm = o;
      lm.max_prompt_length = lm.max_completion_length = 0;
      t.sequence = detail::join({}, std::move(b.flush()), lm);
      break;
    }
    case format::prompt_completion:
    case format::unpaired_preference:
      t.sequence = detail::join(detail::prompt_ids(tok, o, ex.prompt),
                                detail::completion_ids(tok, o, ex.completion), o);
      break;
    case format::preference: {
      const auto p = detail::prompt_ids(tok, o, ex.prompt);
      t.chosen = detail::join(p, detail::completion_ids(tok, o, ex.chosen), o);
      t.rejected = detail::join(p, detail::completion_ids(tok, o, ex.rejected), o);
      break;
    }
    case format::prompt_only:
      t.sequence = detail::join(detail::prompt_ids(tok, o, ex.prompt), {}, o);
      break;
  }
  return t;
}

}  // namespace data
}  // namespace v0
}  // namespace rlhf
