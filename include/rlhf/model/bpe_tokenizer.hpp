// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Byte-level BPE tokenizers as Hugging Face `tokenizers` writes them (docs/models.md,
// "Tokenizers"): GPT-2 style, and Llama 3's and Qwen2's (a Split with their regex before
// ByteLevel; Qwen2's NFC normalizer), from tokenizer.json or from GPT-2's vocab.json +
// merges.txt.
//
//   bpe_tokenizer::from_file(tokenizer_json)       a `tokenizers` tokenizer.json
//   bpe_tokenizer::from_json(text)                 the same from the file's text
//   bpe_tokenizer::from_gpt2_files(vocab, merges)  GPT-2's two files
//   encode(text) / decode(ids)                     what Tokenizer.encode(text,
//                                                  add_special_tokens=False).ids and
//                                                  Tokenizer.decode(ids, skip_special_tokens=False)
//                                                  give
//
// The pipeline is `tokenizers`' own: added tokens are cut out of the text first (leftmost
// longest; tokens with normalized=false first, then, after NFC when the file asks for it,
// the others in what is left; lstrip and rstrip swallow the whitespace beside them), then
// every other piece is pre-tokenized by ByteLevel (optional prefix space; GPT-2's regex) or
// by Llama 3's / Qwen2's Split regex (hand-written, like GPT-2's), each pre-token's bytes
// become GPT-2's printable byte symbols, and BPE merges the lowest-ranked adjacent pair first
// (leftmost on a tie) until no pair has a merge. What the file asks for and this does not implement is a
// config_error naming the field, never a silently different tokenization.
//
// Text that is not valid UTF-8 still encodes (the `tokenizers` library cannot be given such
// text: it takes a Rust &str): every byte of an invalid sequence is one character of class
// "other" for the regex, and decode() gives the bytes back, so decode(encode(s)) == s for
// any bytes s that contain no added token's text.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/json_bounded.hpp"
#include "rlhf/model/detail/text_file.hpp"
#include "rlhf/model/detail/unicode_categories.hpp"
#include "rlhf/model/detail/unicode_nfc.hpp"
#include "rlhf/model/tokenizer.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// Names of the tokens bpe_tokenizer::bos_id(), eos_id() and pad_id() return; an empty name
/// takes the default (see bpe_tokenizer::from_file).
struct bpe_special_tokens {
  std::string bos;  ///< The BOS token's text, e.g. "<|endoftext|>".
  std::string eos;  ///< The EOS token's text.
  std::string pad;  ///< The PAD token's text.
};

namespace bpe_detail {

using rlhf::detail::concat;
using rlhf::detail::json_excerpt;
using unicode_detail::char_class;

/// Appends code point `cp` as UTF-8.
inline void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// One character of a text: its bytes [offset, offset + len) and its code point; an
/// invalid UTF-8 byte is a character of its own with valid = false.
struct utf8_char {
  std::size_t offset = 0;  ///< First byte.
  std::size_t len = 1;     ///< Number of bytes (1..4).
  std::uint32_t cp = 0;    ///< The code point (the byte itself when invalid).
  bool valid = true;       ///< False for a byte that starts no valid sequence.
};

/// The character starting at byte `i` of `s` (strict UTF-8: no overlong forms, surrogates
/// or code points above U+10FFFF).
inline utf8_char next_char(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  utf8_char c{i, 1, b0, true};
  if (b0 < 0x80) return c;
  std::size_t n = 0;
  std::uint32_t cp = 0;
  std::uint32_t min = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2, cp = b0 & 0x1Fu, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3, cp = b0 & 0x0Fu, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4, cp = b0 & 0x07u, min = 0x10000;
  } else {
    c.valid = false;
    return c;
  }
  if (i + n > s.size()) {
    c.valid = false;
    return c;
  }
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) {
      c.valid = false;
      return c;
    }
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    c.valid = false;
    return c;
  }
  c.len = n;
  c.cp = cp;
  return c;
}

/// The regex class of a character (an invalid byte is "other").
inline char_class class_of(const utf8_char& c) {
  return c.valid ? unicode_detail::classify(c.cp) : char_class::other;
}

/// GPT-2's byte <-> printable character table (bytes_to_unicode): bytes '!'..'~', '¡'..'¬'
/// and '®'..'ÿ' are their own code point, the others U+0100 onwards in byte order.
struct byte_symbols {
  std::array<std::string, 256> utf8;                         ///< The symbol of each byte, as UTF-8.
  std::unordered_map<std::uint32_t, unsigned char> byte_of;  ///< Symbol code point -> byte.
};

/// The table, built once.
inline const byte_symbols& symbols() {
  static const byte_symbols table = [] {
    byte_symbols t;
    std::uint32_t next = 256;
    for (std::uint32_t b = 0; b < 256; ++b) {
      const bool self = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const std::uint32_t cp = self ? b : next++;
      append_utf8(t.utf8[b], cp);
      t.byte_of.emplace(cp, static_cast<unsigned char>(b));
    }
    return t;
  }();
  return table;
}

/// GPT-2's pre-tokenizer regex,
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, by hand:
/// the pieces of `text` (which cover it) in order.
inline std::vector<std::string_view> gpt2_split(std::string_view text) {
  std::vector<utf8_char> cs;
  std::vector<char_class> cls;
  for (std::size_t i = 0; i < text.size();) {
    const auto c = next_char(text, i);
    cs.push_back(c);
    cls.push_back(class_of(c));
    i += c.len;
  }
  const std::size_t n = cs.size();
  const auto is = [&](std::size_t k, std::uint32_t cp) {
    return k < n && cs[k].valid && cs[k].cp == cp;
  };
  const auto run = [&](std::size_t k, auto pred) {
    while (k < n && pred(cls[k])) ++k;
    return k;
  };
  const auto letter = [](char_class c) { return c == char_class::letter; };
  const auto number = [](char_class c) { return c == char_class::number; };
  const auto other = [](char_class c) { return c == char_class::other; };
  const auto space = [](char_class c) { return c == char_class::whitespace; };
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < n) {
    std::size_t end = 0;  // one past the last character of the match (every branch sets it)
    const std::size_t after_space = is(i, ' ') ? i + 1 : i;
    if (is(i, '\'') && (is(i + 1, 's') || is(i + 1, 't') || is(i + 1, 'm') || is(i + 1, 'd'))) {
      end = i + 2;
    } else if (is(i, '\'') &&
               ((is(i + 1, 'r') && is(i + 2, 'e')) || (is(i + 1, 'v') && is(i + 2, 'e')) ||
                (is(i + 1, 'l') && is(i + 2, 'l')))) {
      end = i + 3;
    } else if (after_space < n && letter(cls[after_space])) {
      end = run(after_space, letter);
    } else if (after_space < n && number(cls[after_space])) {
      end = run(after_space, number);
    } else if (after_space < n && other(cls[after_space])) {
      end = run(after_space, other);
    } else {
      // cls[i] is whitespace: \s+(?!\S) takes the run, less its last character when a
      // non-space follows and the run is longer than one; else \s+ takes the one character.
      const std::size_t e = run(i, space);
      end = (e == n || e - i < 2) ? e : e - 1;
    }
    const std::size_t from = cs[i].offset;
    const std::size_t to = end < n ? cs[end].offset : text.size();
    out.push_back(text.substr(from, to - from));
    i = end;
  }
  return out;
}

/// The two Split patterns (behavior Isolated) recognised in a Sequence [Split, ByteLevel]
/// pre-tokenizer: Llama 3's and Qwen2's.
enum class split_pattern : std::uint8_t {
  llama3,  ///< Digits in runs of up to three (`\p{N}{1,3}`).
  qwen2,   ///< Digits one by one (`\p{N}`).
};

/// Llama 3's Split regex, exactly as tokenizer.json spells it.
inline constexpr std::string_view llama3_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
/// Qwen2's Split regex, exactly as tokenizer.json spells it.
inline constexpr std::string_view qwen2_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

/// Llama 3's / Qwen2's pre-tokenizer regex (see llama3_pattern, qwen2_pattern) by hand, with
/// Split's Isolated behavior: the pieces of `text` (which cover it) in order. The regex
/// matches at every character, so no text lies between matches.
inline std::vector<std::string_view> llama3_split(std::string_view text, split_pattern pattern) {
  std::vector<utf8_char> cs;
  std::vector<char_class> cls;
  for (std::size_t i = 0; i < text.size();) {
    const auto c = next_char(text, i);
    cs.push_back(c);
    cls.push_back(class_of(c));
    i += c.len;
  }
  const std::size_t n = cs.size();
  const auto is = [&](std::size_t k, std::uint32_t cp) {
    return k < n && cs[k].valid && cs[k].cp == cp;
  };
  // ASCII letter `lower` in either case (Oniguruma's (?i) also folds U+017F to s and
  // U+212A to k; see is_s below).
  const auto ci = [&](std::size_t k, char lower) {
    return is(k, static_cast<std::uint32_t>(lower)) ||
           is(k, static_cast<std::uint32_t>(lower - 'a' + 'A'));
  };
  const auto is_s = [&](std::size_t k) { return ci(k, 's') || is(k, 0x17F); };
  const auto newline = [&](std::size_t k) { return is(k, '\r') || is(k, '\n'); };
  const auto cls_at = [&](std::size_t k) { return k < n ? cls[k] : char_class::whitespace; };
  const auto run = [&](std::size_t k, char_class c) {
    while (k < n && cls[k] == c) ++k;
    return k;
  };
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < n) {
    std::size_t end = 0;  // one past the last character of the match (every branch sets it)
    if (is(i, '\'') && (is_s(i + 1) || ci(i + 1, 't') || ci(i + 1, 'm') || ci(i + 1, 'd'))) {
      end = i + 2;  // (?i:'s|'t|'m|'d)
    } else if (is(i, '\'') &&
               ((ci(i + 1, 'r') && ci(i + 2, 'e')) || (ci(i + 1, 'v') && ci(i + 2, 'e')) ||
                (ci(i + 1, 'l') && ci(i + 2, 'l')))) {
      end = i + 3;  // (?i:'re|'ve|'ll)
    } else if (cls[i] == char_class::letter) {
      end = run(i, char_class::letter);  // \p{L}+
    } else if (cls[i] != char_class::number && !newline(i) && cls_at(i + 1) == char_class::letter) {
      end = run(i + 1, char_class::letter);  // [^\r\n\p{L}\p{N}]\p{L}+
    } else if (cls[i] == char_class::number) {
      const std::size_t e = run(i, char_class::number);  // \p{N}{1,3} or \p{N}
      end = std::min(e, i + (pattern == split_pattern::llama3 ? 3 : 1));
    } else if (cls[i] == char_class::other || (is(i, ' ') && cls_at(i + 1) == char_class::other)) {
      // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
      end = run(cls[i] == char_class::other ? i : i + 1, char_class::other);
      while (newline(end)) ++end;
    } else {
      // cls[i] is whitespace. `\s*[\r\n]+` ends after the run's last \r or \n; else
      // `\s+(?!\S)` takes the run, less its last character when a non-space follows and the
      // run is longer than one; else `\s+` takes the run (of one).
      const std::size_t e = run(i, char_class::whitespace);
      std::size_t last_nl = e;
      for (std::size_t k = e; k > i; --k) {
        if (newline(k - 1)) {
          last_nl = k - 1;
          break;
        }
      }
      if (last_nl < e) {
        end = last_nl + 1;
      } else {
        end = (e == n || e - i < 2) ? e : e - 1;
      }
    }
    const std::size_t from = cs[i].offset;
    const std::size_t to = end < n ? cs[end].offset : text.size();
    out.push_back(text.substr(from, to - from));
    i = end;
  }
  return out;
}

/// Unicode normalization form C of `text` (`tokenizers`' NFC normalizer): canonical
/// decomposition, canonical reordering, canonical composition (Hangul algorithmically).
/// Invalid UTF-8 bytes stay as they are and block composition across them.
inline std::string nfc(std::string_view text) {
  bool ascii = true;
  for (const char ch : text) ascii = ascii && static_cast<unsigned char>(ch) < 0x80;
  if (ascii) return std::string(text);
  namespace u = unicode_detail;
  constexpr std::uint32_t s_base = 0xAC00, l_base = 0x1100, v_base = 0x1161, t_base = 0x11A7;
  constexpr std::uint32_t l_count = 19, v_count = 21, t_count = 28, n_count = v_count * t_count,
                          s_count = l_count * n_count;
  constexpr std::uint32_t invalid = 0x110000;  // invalid + byte: a byte of invalid UTF-8
  // Decompose.
  std::vector<std::uint32_t> cps;
  cps.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = next_char(text, i);
    i += c.len;
    if (!c.valid) {
      cps.push_back(invalid + c.cp);
    } else if (c.cp >= s_base && c.cp < s_base + s_count) {
      const std::uint32_t s = c.cp - s_base;
      cps.push_back(l_base + s / n_count);
      cps.push_back(v_base + (s % n_count) / t_count);
      if (s % t_count != 0) cps.push_back(t_base + s % t_count);
    } else if (const auto* d = u::find_decomposition(c.cp)) {
      for (std::size_t k = 0; k < d->len; ++k) cps.push_back(u::decomp_data[d->offset + k]);
    } else {
      cps.push_back(c.cp);
    }
  }
  const auto ccc = [](std::uint32_t cp) { return cp >= invalid ? 0 : u::combining_class(cp); };
  // Reorder: a stable sort of every run of non-starters by combining class.
  for (std::size_t i = 0; i < cps.size();) {
    if (ccc(cps[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < cps.size() && ccc(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<std::ptrdiff_t>(i),
                     cps.begin() + static_cast<std::ptrdiff_t>(j),
                     [&](std::uint32_t a, std::uint32_t b) { return ccc(a) < ccc(b); });
    i = j;
  }
  // Compose.
  const auto compose = [&](std::uint32_t a, std::uint32_t b) -> std::uint32_t {
    if (a >= invalid || b >= invalid) return 0;
    if (a >= l_base && a < l_base + l_count && b >= v_base && b < v_base + v_count) {
      return s_base + ((a - l_base) * v_count + (b - v_base)) * t_count;
    }
    if (a >= s_base && a < s_base + s_count && (a - s_base) % t_count == 0 && b > t_base &&
        b < t_base + t_count) {
      return a + (b - t_base);
    }
    return u::compose_table(a, b);
  };
  std::vector<std::uint32_t> res;
  res.reserve(cps.size());
  std::size_t starter = 0;
  int last = 256;  // class of the last character kept; 256 blocks (no starter yet)
  for (const std::uint32_t cp : cps) {
    const int c = ccc(cp);
    if (!res.empty() && (last < c || last == 0) && ccc(res[starter]) == 0) {
      if (const std::uint32_t comp = compose(res[starter], cp); comp != 0) {
        res[starter] = comp;
        continue;
      }
    }
    if (c == 0) starter = res.size();
    last = c;
    res.push_back(cp);
  }
  std::string out;
  out.reserve(text.size());
  for (const std::uint32_t cp : res) {
    if (cp >= invalid) {
      out.push_back(static_cast<char>(cp - invalid));
    } else {
      append_utf8(out, cp);
    }
  }
  return out;
}

/// Rust's char::is_whitespace (White_Space) for the character at byte `i`.
inline bool whitespace_at(std::string_view s, std::size_t i) {
  return class_of(next_char(s, i)) == char_class::whitespace;
}

/// An entry of tokenizer.json's "added_tokens".
struct added_token {
  std::string content;      ///< The text matched.
  std::int32_t id = 0;      ///< Its id.
  bool special = false;     ///< Skipped by decode(ids, skip_special = true).
  bool lstrip = false;      ///< Swallows the whitespace before it.
  bool rstrip = false;      ///< Swallows the whitespace after it.
  bool normalized = false;  ///< Matched in the second pass (after the non-normalized ones).
};

/// A piece of the text after the added tokens are cut out: text, or an added token's id.
struct segment {
  std::string_view text;  ///< The text (when id < 0).
  std::int32_t id = -1;   ///< The added token's id, or -1.
};

/// Leftmost-longest matcher over a set of added tokens, as `tokenizers`' AddedVocabulary.
class added_matcher {
 public:
  added_matcher() = default;
  explicit added_matcher(std::vector<added_token> tokens) : tokens_(std::move(tokens)) {
    std::vector<std::size_t> order(tokens_.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
    for (const std::size_t k : order) {
      first_[static_cast<unsigned char>(tokens_[k].content[0])].push_back(k);
    }
  }

  [[nodiscard]] bool empty() const noexcept { return tokens_.empty(); }

  /// Cuts the tokens out of `text`, appending the pieces to `out`.
  void split(std::string_view text, std::vector<segment>& out) const {
    if (tokens_.empty()) {
      out.push_back({text, -1});
      return;
    }
    std::size_t done = 0;  // text before this is in `out`
    std::size_t pos = 0;   // where the search goes on
    while (pos < text.size()) {
      const added_token* hit = nullptr;
      for (const std::size_t k : first_[static_cast<unsigned char>(text[pos])]) {
        if (text.substr(pos).starts_with(tokens_[k].content)) {
          hit = &tokens_[k];
          break;
        }
      }
      if (hit == nullptr) {
        ++pos;
        continue;
      }
      std::size_t start = pos;
      std::size_t stop = pos + hit->content.size();
      if (hit->lstrip) {
        std::size_t s = start;
        while (s > done) {
          std::size_t b = s - 1;  // the first byte of the character that ends at s
          while (b > done && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80 && s - b < 4) {
            --b;
          }
          const auto c = next_char(text, b);
          if (!(b + c.len == s && class_of(c) == char_class::whitespace)) break;
          s = b;
        }
        start = s;
      }
      if (hit->rstrip) {
        while (stop < text.size() && whitespace_at(text, stop)) stop += next_char(text, stop).len;
      }
      if (done < start) out.push_back({text.substr(done, start - done), -1});
      out.push_back({{}, hit->id});
      done = stop;
      pos = stop;
    }
    if (done < text.size() || text.empty()) out.push_back({text.substr(done), -1});
  }

 private:
  std::vector<added_token> tokens_;
  std::array<std::vector<std::size_t>, 256> first_{};
};

}  // namespace bpe_detail

/// A byte-level BPE tokenizer (GPT-2, RoBERTa, ... as Hugging Face `tokenizers` runs them)
/// that encodes and decodes exactly as `tokenizers` does for what it accepts; see the top of
/// this header and docs/models.md, "Tokenizers". Models model::tokenizer. Immutable after
/// loading, so one instance may encode from several threads.
class bpe_tokenizer {
 public:
  /// Loads a `tokenizers` tokenizer.json (model BPE; ByteLevel pre-tokenizer, or Llama 3's /
  /// Qwen2's Sequence [Split, ByteLevel]; normalizer null or NFC; ByteLevel decoder).
  /// BOS/EOS/PAD are, in order: the names in `specials`; bos_token / eos_token / pad_token
  /// of a tokenizer_config.json beside the file; "<|endoftext|>" when it is a token. A
  /// missing BOS or PAD falls back to the EOS token; no EOS at all is a config_error.
  /// io_error when the file cannot be read or is not JSON; config_error naming the field for
  /// anything not supported (docs/models.md lists what is).
  [[nodiscard]] static bpe_tokenizer from_file(const std::filesystem::path& tokenizer_json,
                                               const bpe_special_tokens& specials = {}) {
    const std::string text = rlhf::detail::read_text_file(tokenizer_json,
                                                          "bpe_tokenizer::from_file");
    bpe_special_tokens names = specials;
    const auto cfg_path = tokenizer_json.parent_path() / "tokenizer_config.json";
    std::error_code ec;
    if (std::filesystem::is_regular_file(cfg_path, ec)) {
      const auto cfg = rlhf::detail::parse_json_bounded<nlohmann::json>(
          rlhf::detail::read_text_file(cfg_path, "bpe_tokenizer::from_file"),
          "bpe_tokenizer::from_file", cfg_path.string());
      const auto name_of = [&](const char* k, std::string& dst) {
        if (!dst.empty() || !cfg.is_object() || !cfg.contains(k)) return;
        const auto& v = cfg.at(k);
        if (v.is_string()) {
          dst = v.get<std::string>();
        } else if (v.is_object() && v.contains("content") && v.at("content").is_string()) {
          dst = v.at("content").get<std::string>();
        }
      };
      name_of("bos_token", names.bos);
      name_of("eos_token", names.eos);
      name_of("pad_token", names.pad);
    }
    return from_json(text, names, tokenizer_json.string());
  }

  /// The same from tokenizer.json's text; `where` names it in errors. No tokenizer_config.json
  /// is read: BOS/EOS/PAD come from `specials` or default to "<|endoftext|>".
  [[nodiscard]] static bpe_tokenizer from_json(std::string_view text,
                                               const bpe_special_tokens& specials = {},
                                               std::string_view where = "tokenizer.json") {
    const auto j = rlhf::detail::parse_json_bounded<nlohmann::json>(text, "bpe_tokenizer", where);
    bpe_tokenizer t;
    t.load(j, std::string(where));
    t.resolve_specials(specials, std::string(where));
    return t;
  }

  /// GPT-2's vocab.json ({token: id}) and merges.txt ("#version" line, then "a b" per line,
  /// rank = line order), with GPT-2's ByteLevel pre-tokenizer (no prefix space, GPT-2's
  /// regex). Each of `special_tokens` that is in the vocabulary becomes a special added
  /// token (matched in the text, as GPT2TokenizerFast does with "<|endoftext|>").
  [[nodiscard]] static bpe_tokenizer from_gpt2_files(
      const std::filesystem::path& vocab_json, const std::filesystem::path& merges_txt,
      const std::vector<std::string>& special_tokens = {"<|endoftext|>"},
      const bpe_special_tokens& specials = {}) {
    constexpr std::string_view fn = "bpe_tokenizer::from_gpt2_files";
    const auto vocab = rlhf::detail::parse_json_bounded<nlohmann::json>(
        rlhf::detail::read_text_file(vocab_json, fn), fn, vocab_json.string());
    const std::string merges_text = rlhf::detail::read_text_file(merges_txt, fn);
    nlohmann::json merges = nlohmann::json::array();
    std::size_t line_no = 0;
    for (std::size_t p = 0; p < merges_text.size();) {
      std::size_t e = merges_text.find('\n', p);
      if (e == std::string::npos) e = merges_text.size();
      std::string_view line(merges_text.data() + p, e - p);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      ++line_no;
      if (!line.empty() && !(line_no == 1 && line.starts_with("#version"))) {
        merges.push_back(std::string(line));
      }
      p = e + 1;
    }
    nlohmann::json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}},
                        {"normalizer", nullptr},
                        {"pre_tokenizer",
                         {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
                        {"decoder", {{"type", "ByteLevel"}}},
                        {"added_tokens", nlohmann::json::array()}};
    if (vocab.is_object()) {
      for (const auto& s : special_tokens) {
        if (vocab.contains(s) && vocab.at(s).is_number_integer()) {
          j["added_tokens"].push_back({{"id", vocab.at(s)}, {"content", s}, {"special", true}});
        }
      }
    }
    bpe_tokenizer t;
    t.load(j, concat_paths(vocab_json, merges_txt));
    t.resolve_specials(specials, concat_paths(vocab_json, merges_txt));
    return t;
  }

  /// The ids of `text`: `tokenizers`' encode(text, add_special_tokens=False). Added tokens
  /// in the text (special or not) become their ids; no BOS/EOS is added.
  [[nodiscard]] std::vector<std::int32_t> encode(std::string_view text) const {
    namespace d = bpe_detail;
    std::vector<d::segment> first;
    first_pass_.split(text, first);
    std::vector<d::segment> segs;
    std::deque<std::string> normalized;  // NFC of the text pieces (segs point into them)
    for (const auto& s : first) {
      if (s.id >= 0) {
        segs.push_back(s);
      } else if (nfc_) {
        normalized.push_back(d::nfc(s.text));
        second_pass_.split(normalized.back(), segs);
      } else {
        second_pass_.split(s.text, segs);
      }
    }
    std::vector<std::int32_t> ids;
    std::string buf;
    for (const auto& s : segs) {
      if (s.id >= 0) {
        ids.push_back(s.id);
        continue;
      }
      if (s.text.empty()) continue;
      std::string_view piece = s.text;
      if (add_prefix_space_ && piece.front() != ' ') {
        buf.assign(" ").append(piece);
        piece = buf;
      }
      if (split_) {
        for (const auto w : d::llama3_split(piece, *split_)) encode_word(w, ids);
      } else if (use_regex_) {
        for (const auto w : d::gpt2_split(piece)) encode_word(w, ids);
      } else {
        encode_word(piece, ids);
      }
    }
    return ids;
  }

  /// The text of `ids`: `tokenizers`' decode(ids, skip_special_tokens=False), except that
  /// bytes which are not valid UTF-8 come back as they are (`tokenizers` replaces them with
  /// U+FFFD). An id that is no token is a data_error naming its position.
  [[nodiscard]] std::string decode(std::span<const std::int32_t> ids) const {
    return decode(ids, false);
  }
  /// The same; `skip_special` drops the special added tokens (skip_special_tokens=True).
  [[nodiscard]] std::string decode(std::span<const std::int32_t> ids, bool skip_special) const {
    const auto& sym = bpe_detail::symbols();
    std::string out;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::int32_t id = ids[i];
      if (id < 0 || id >= vocab_size() || !present_[static_cast<std::size_t>(id)]) {
        throw data_error(rlhf::detail::concat("bpe_tokenizer::decode: id at position ", i,
                                              " is not a token (vocab_size ", vocab_size(),
                                              "), got ", id));
      }
      const auto k = static_cast<std::size_t>(id);
      if (skip_special && special_[k]) continue;
      const std::string& tok = tokens_[k];
      // The ByteLevel decoder: a token whose characters are all byte symbols gives those
      // bytes, any other token its own text.
      std::string bytes;
      bool all = true;
      for (std::size_t p = 0; p < tok.size();) {
        const auto c = bpe_detail::next_char(tok, p);
        const auto it = c.valid ? sym.byte_of.find(c.cp) : sym.byte_of.end();
        if (it == sym.byte_of.end()) {
          all = false;
          break;
        }
        bytes.push_back(static_cast<char>(it->second));
        p += c.len;
      }
      out += all ? bytes : tok;
    }
    return out;
  }

  /// One more than the largest id (model vocabulary and added tokens): ids lie in
  /// [0, vocab_size()).
  [[nodiscard]] std::int32_t vocab_size() const noexcept {
    return static_cast<std::int32_t>(tokens_.size());
  }
  /// The BOS id (see from_file).
  [[nodiscard]] std::int32_t bos_id() const noexcept { return bos_; }
  /// The EOS id (see from_file).
  [[nodiscard]] std::int32_t eos_id() const noexcept { return eos_; }
  /// The PAD id (see from_file).
  [[nodiscard]] std::int32_t pad_id() const noexcept { return pad_; }

  /// The id of token `token` (an added token's text, or a vocabulary entry in byte symbols,
  /// e.g. "Ġthe"), if there is one.
  [[nodiscard]] std::optional<std::int32_t> token_to_id(std::string_view token) const {
    for (const auto& a : added_) {
      if (a.content == token) return a.id;
    }
    const auto it = vocab_.find(std::string(token));
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  /// The text of token `id` as stored (byte symbols for vocabulary entries); empty for an
  /// id that is no token.
  [[nodiscard]] std::string id_to_token(std::int32_t id) const {
    if (id < 0 || id >= vocab_size()) return {};
    return tokens_[static_cast<std::size_t>(id)];
  }
  /// True for the ids of special added tokens.
  [[nodiscard]] bool is_special(std::int32_t id) const noexcept {
    return id >= 0 && id < vocab_size() && special_[static_cast<std::size_t>(id)];
  }

 private:
  bpe_tokenizer() = default;

  static std::string concat_paths(const std::filesystem::path& a, const std::filesystem::path& b) {
    return a.string() + " + " + b.string();
  }

  [[noreturn]] static void fail(const std::string& where, std::string_view field,
                                std::string_view why) {
    throw config_error(
        rlhf::detail::concat("bpe_tokenizer: ", where, ": field '", field, "' ", why));
  }

  /// "type" of an optional component object, or "" when null/absent.
  static std::string type_of(const nlohmann::json& j, const char* k, const std::string& where) {
    if (!j.contains(k) || j.at(k).is_null()) return {};
    const auto& v = j.at(k);
    if (!v.is_object() || !v.contains("type") || !v.at("type").is_string()) {
      fail(where, std::string(k) + ".type",
           rlhf::detail::concat("is missing, got ", json_excerpt_(v)));
    }
    return v.at("type").get<std::string>();
  }

  static std::string json_excerpt_(const nlohmann::json& v) {
    return rlhf::detail::json_excerpt(v);
  }

  /// Boolean field `k` of `obj` (default `def`).
  static bool get_bool(const nlohmann::json& obj, const char* k, bool def, const std::string& where,
                       const std::string& field) {
    if (!obj.contains(k) || obj.at(k).is_null()) return def;
    if (!obj.at(k).is_boolean()) {
      fail(where, field,
           rlhf::detail::concat("must be true or false, got ", json_excerpt_(obj.at(k))));
    }
    return obj.at(k).get<bool>();
  }

  void load(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) fail(where, "(root)", "must be an object");
    // Top-level options that would change encode().
    for (const char* k : {"truncation", "padding"}) {
      if (j.contains(k) && !j.at(k).is_null()) {
        fail(where, k,
             rlhf::detail::concat("must be null (not supported), got ", json_excerpt_(j.at(k))));
      }
    }
    if (const auto t = type_of(j, "normalizer", where); t == "NFC") {
      nfc_ = true;
    } else if (!t.empty()) {
      fail(where, "normalizer",
           rlhf::detail::concat("must be null or NFC: normalizer '", t, "' is not supported"));
    }
    // Pre-tokenizer: ByteLevel, or Sequence [Split (Llama 3's / Qwen2's regex), ByteLevel].
    const auto pt = type_of(j, "pre_tokenizer", where);
    if (pt == "Sequence") {
      load_split_sequence(j.at("pre_tokenizer"), where);
    } else if (pt != "ByteLevel") {
      fail(where, "pre_tokenizer",
           pt.empty() ? std::string("must be ByteLevel or Sequence [Split, ByteLevel], got null")
                      : rlhf::detail::concat("must be ByteLevel or Sequence [Split, ByteLevel]: "
                                             "pre-tokenizer '",
                                             pt, "' is not supported"));
    } else {
      const auto& p = j.at("pre_tokenizer");
      add_prefix_space_ = get_bool(p, "add_prefix_space", true, where,
                                   "pre_tokenizer.add_prefix_space");
      use_regex_ = get_bool(p, "use_regex", true, where, "pre_tokenizer.use_regex");
    }
    // Decoder: ByteLevel.
    if (const auto t = type_of(j, "decoder", where); t != "ByteLevel") {
      fail(where, "decoder",
           t.empty()
               ? std::string("must be ByteLevel, got null")
               : rlhf::detail::concat("must be ByteLevel: decoder '", t, "' is not supported"));
    }
    // Post-processor: only used with add_special_tokens, which encode() never does.
    if (const auto t = type_of(j, "post_processor", where);
        !t.empty() && t != "ByteLevel" && t != "TemplateProcessing") {
      fail(where, "post_processor",
           rlhf::detail::concat("must be null, ByteLevel or TemplateProcessing: '", t,
                                "' is not supported"));
    }
    load_model(j, where);
    load_added(j, where);
  }

  /// Llama 3's / Qwen2's pre-tokenizer: Sequence [Split (one of the two regexes, Isolated,
  /// not inverted), ByteLevel (no prefix space, no regex)].
  void load_split_sequence(const nlohmann::json& p, const std::string& where) {
    const auto& seq = p.contains("pretokenizers") ? p.at("pretokenizers") : nlohmann::json();
    const auto type_is = [&](std::size_t k, const char* t) {
      return seq[k].is_object() && seq[k].contains("type") && seq[k].at("type") == t;
    };
    if (!seq.is_array() || seq.size() != 2 || !type_is(0, "Split") || !type_is(1, "ByteLevel")) {
      fail(where, "pre_tokenizer.pretokenizers",
           rlhf::detail::concat("must be [Split, ByteLevel]: pre-tokenizer 'Sequence' of ",
                                json_excerpt_(seq), " is not supported"));
    }
    const auto& split = seq[0];
    const std::string f = "pre_tokenizer.pretokenizers[0]";
    const auto& pat = split.contains("pattern") ? split.at("pattern") : nlohmann::json();
    const std::string regex = pat.is_object() && pat.contains("Regex") &&
                                      pat.at("Regex").is_string()
                                  ? pat.at("Regex").get<std::string>()
                                  : std::string();
    if (regex == bpe_detail::llama3_pattern) {
      split_ = bpe_detail::split_pattern::llama3;
    } else if (regex == bpe_detail::qwen2_pattern) {
      split_ = bpe_detail::split_pattern::qwen2;
    } else {
      fail(where, f + ".pattern",
           rlhf::detail::concat("must be Llama 3's or Qwen2's Split regex (no other pattern is "
                                "supported), got ",
                                json_excerpt_(pat)));
    }
    if (!split.contains("behavior") || split.at("behavior") != "Isolated") {
      fail(where, f + ".behavior",
           rlhf::detail::concat("must be \"Isolated\" (not supported otherwise), got ",
                                split.contains("behavior") ? json_excerpt_(split.at("behavior"))
                                                           : std::string("nothing")));
    }
    if (get_bool(split, "invert", false, where, f + ".invert")) {
      fail(where, f + ".invert", "must be false (an inverted Split is not supported)");
    }
    const std::string b = "pre_tokenizer.pretokenizers[1]";
    if (get_bool(seq[1], "add_prefix_space", true, where, b + ".add_prefix_space")) {
      fail(where, b + ".add_prefix_space", "must be false after a Split (not supported)");
    }
    if (get_bool(seq[1], "use_regex", true, where, b + ".use_regex")) {
      fail(where, b + ".use_regex", "must be false after a Split (not supported)");
    }
    add_prefix_space_ = false;
    use_regex_ = false;
  }

  void load_model(const nlohmann::json& j, const std::string& where) {
    if (!j.contains("model") || !j.at("model").is_object()) {
      fail(where, "model", "must be an object");
    }
    const auto& m = j.at("model");
    if (!m.contains("type") || m.at("type") != "BPE") {
      fail(where, "model.type",
           rlhf::detail::concat("must be \"BPE\", got ",
                                m.contains("type") ? json_excerpt_(m.at("type")) : "nothing"));
    }
    if (m.contains("dropout") && !m.at("dropout").is_null() &&
        !(m.at("dropout").is_number() && m.at("dropout").get<double>() == 0.0)) {
      fail(where, "model.dropout",
           rlhf::detail::concat("must be null (BPE dropout is not "
                                "supported), got ",
                                json_excerpt_(m.at("dropout"))));
    }
    if (get_bool(m, "byte_fallback", false, where, "model.byte_fallback")) {
      fail(where, "model.byte_fallback", "must be false (byte fallback is not supported)");
    }
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
      if (m.contains(k) && !m.at(k).is_null() &&
          !(m.at(k).is_string() && m.at(k).get<std::string>().empty())) {
        fail(where, std::string("model.") + k,
             rlhf::detail::concat("must be null (not supported), got ", json_excerpt_(m.at(k))));
      }
    }
    if (m.contains("unk_token") && !m.at("unk_token").is_null() && !m.at("unk_token").is_string()) {
      fail(where, "model.unk_token", "must be a string or null");
    }
    ignore_merges_ = get_bool(m, "ignore_merges", false, where, "model.ignore_merges");
    // Vocabulary.
    if (!m.contains("vocab") || !m.at("vocab").is_object()) {
      fail(where, "model.vocab", "must be an object {token: id}");
    }
    std::int64_t max_id = -1;
    for (const auto& [tok, v] : m.at("vocab").items()) {
      if (!v.is_number_integer() || v.get<std::int64_t>() < 0 ||
          v.get<std::int64_t>() >= std::numeric_limits<std::int32_t>::max()) {
        fail(where, "model.vocab",
             rlhf::detail::concat("entry '", tok, "' must have an id in [0, 2^31 - 1), got ",
                                  json_excerpt_(v)));
      }
      const auto id = static_cast<std::int32_t>(v.get<std::int64_t>());
      vocab_.emplace(tok, id);
      max_id = std::max<std::int64_t>(max_id, id);
    }
    grow(max_id, where);
    for (const auto& [tok, id] : vocab_) {
      tokens_[static_cast<std::size_t>(id)] = tok;
      present_[static_cast<std::size_t>(id)] = true;
    }
    const auto& sym = bpe_detail::symbols();
    for (std::size_t b = 0; b < 256; ++b) {
      const auto it = vocab_.find(sym.utf8[b]);
      if (it == vocab_.end()) {
        fail(where, "model.vocab",
             rlhf::detail::concat("lacks the symbol of byte ", b,
                                  " (a byte-level BPE vocabulary has all 256)"));
      }
      byte_id_[b] = it->second;
    }
    // Merges: "a b" strings or [a, b] pairs; rank = position (a repeated pair keeps the last).
    if (!m.contains("merges") || !m.at("merges").is_array()) {
      fail(where, "model.merges", "must be an array");
    }
    const auto& ms = m.at("merges");
    for (std::size_t r = 0; r < ms.size(); ++r) {
      const auto& e = ms[r];
      std::string a, b;
      if (e.is_string()) {
        const auto s = e.get<std::string>();
        const auto sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
          fail(where, rlhf::detail::concat("model.merges[", r, "]"),
               rlhf::detail::concat("must be \"a b\" (two tokens, one space), got ",
                                    json_excerpt_(e)));
        }
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
        a = e[0].get<std::string>();
        b = e[1].get<std::string>();
      } else {
        fail(where, rlhf::detail::concat("model.merges[", r, "]"),
             rlhf::detail::concat("must be \"a b\" or [a, b], got ", json_excerpt_(e)));
      }
      const auto ia = vocab_.find(a);
      const auto ib = vocab_.find(b);
      const auto iab = vocab_.find(a + b);
      if (ia == vocab_.end() || ib == vocab_.end() || iab == vocab_.end()) {
        fail(where, rlhf::detail::concat("model.merges[", r, "]"),
             rlhf::detail::concat("names a token not in model.vocab: ", json_excerpt_(e)));
      }
      merges_[key(ia->second, ib->second)] = {static_cast<std::int32_t>(r), iab->second};
    }
  }

  void grow(std::int64_t max_id, const std::string& where) {
    if (max_id < 0) return;
    const auto n = static_cast<std::size_t>(max_id) + 1;
    if (n > 2 * (vocab_.size() + added_.size()) + 4096) {
      fail(where, "model.vocab",
           rlhf::detail::concat("id ", max_id, " is far beyond the ", vocab_.size() + added_.size(),
                                " tokens (ids must be nearly dense)"));
    }
    if (n > tokens_.size()) {
      tokens_.resize(n);
      present_.resize(n, false);
      special_.resize(n, false);
    }
  }

  void load_added(const nlohmann::json& j, const std::string& where) {
    std::vector<bpe_detail::added_token> raw, norm;
    if (j.contains("added_tokens") && !j.at("added_tokens").is_null()) {
      const auto& at = j.at("added_tokens");
      if (!at.is_array()) fail(where, "added_tokens", "must be an array");
      for (std::size_t i = 0; i < at.size(); ++i) {
        const auto& e = at[i];
        const auto f = rlhf::detail::concat("added_tokens[", i, "]");
        if (!e.is_object() || !e.contains("id") || !e.at("id").is_number_integer() ||
            e.at("id").get<std::int64_t>() < 0 ||
            e.at("id").get<std::int64_t>() >= std::numeric_limits<std::int32_t>::max() ||
            !e.contains("content") || !e.at("content").is_string() ||
            e.at("content").get<std::string>().empty()) {
          fail(where, f,
               rlhf::detail::concat("must have an id >= 0 and a non-empty content, got ",
                                    json_excerpt_(e)));
        }
        bpe_detail::added_token a;
        a.content = e.at("content").get<std::string>();
        a.id = static_cast<std::int32_t>(e.at("id").get<std::int64_t>());
        a.special = get_bool(e, "special", false, where, f + ".special");
        a.lstrip = get_bool(e, "lstrip", false, where, f + ".lstrip");
        a.rstrip = get_bool(e, "rstrip", false, where, f + ".rstrip");
        a.normalized = get_bool(e, "normalized", !a.special, where, f + ".normalized");
        if (get_bool(e, "single_word", false, where, f + ".single_word")) {
          fail(where, f + ".single_word",
               rlhf::detail::concat("must be false (single_word added tokens are not "
                                    "supported), token ",
                                    json_excerpt_(e.at("content"))));
        }
        added_.push_back(a);
        (a.normalized ? norm : raw).push_back(a);
      }
    }
    std::int64_t max_id = static_cast<std::int64_t>(tokens_.size()) - 1;
    for (const auto& a : added_) max_id = std::max<std::int64_t>(max_id, a.id);
    grow(max_id, where);
    for (const auto& a : added_) {
      const auto k = static_cast<std::size_t>(a.id);
      tokens_[k] = a.content;
      present_[k] = true;
      special_[k] = a.special;
    }
    first_pass_ = bpe_detail::added_matcher(std::move(raw));
    second_pass_ = bpe_detail::added_matcher(std::move(norm));
  }

  void resolve_specials(const bpe_special_tokens& names, const std::string& where) {
    const auto find = [&](const std::string& name, const char* what) -> std::int32_t {
      if (name.empty()) return -1;
      const auto id = token_to_id(name);
      if (!id) {
        throw config_error(rlhf::detail::concat("bpe_tokenizer: ", where, ": the ", what,
                                                " token '", name, "' is not a token"));
      }
      return *id;
    };
    eos_ = find(names.eos, "EOS");
    if (eos_ < 0) {
      if (const auto id = token_to_id("<|endoftext|>")) eos_ = *id;
    }
    if (eos_ < 0) {
      throw config_error(rlhf::detail::concat(
          "bpe_tokenizer: ", where,
          ": no EOS token (no eos_token in tokenizer_config.json, no \"<|endoftext|>\" token); "
          "name one in bpe_special_tokens"));
    }
    bos_ = find(names.bos, "BOS");
    if (bos_ < 0) bos_ = eos_;
    pad_ = find(names.pad, "PAD");
    if (pad_ < 0) pad_ = eos_;
  }

  static std::uint64_t key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
           static_cast<std::uint32_t>(b);
  }

  /// BPE on one pre-token's bytes, appending the ids.
  void encode_word(std::string_view word, std::vector<std::int32_t>& ids) const {
    if (word.empty()) return;
    if (ignore_merges_) {
      std::string s;
      for (const char ch : word) s += bpe_detail::symbols().utf8[static_cast<unsigned char>(ch)];
      if (const auto it = vocab_.find(s); it != vocab_.end()) {
        ids.push_back(it->second);
        return;
      }
    }
    struct sym {
      std::int32_t id;
      std::int32_t prev;
      std::int32_t next;
      bool alive;
    };
    struct cand {
      std::int32_t rank;
      std::int32_t pos;
      std::int32_t left;
      std::int32_t right;
      std::int32_t merged;
    };
    const auto later = [](const cand& x, const cand& y) {
      return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
    };
    const auto n = static_cast<std::int32_t>(word.size());
    std::vector<sym> s(static_cast<std::size_t>(n));
    for (std::int32_t i = 0; i < n; ++i) {
      s[static_cast<std::size_t>(i)] = {
          byte_id_[static_cast<unsigned char>(word[static_cast<std::size_t>(i)])], i - 1,
          i + 1 < n ? i + 1 : -1, true};
    }
    std::priority_queue<cand, std::vector<cand>, decltype(later)> q(later);
    const auto push = [&](std::int32_t pos) {
      if (pos < 0) return;
      const auto& l = s[static_cast<std::size_t>(pos)];
      if (l.next < 0) return;
      const auto& r = s[static_cast<std::size_t>(l.next)];
      const auto it = merges_.find(key(l.id, r.id));
      if (it != merges_.end()) q.push({it->second.first, pos, l.id, r.id, it->second.second});
    };
    for (std::int32_t i = 0; i + 1 < n; ++i) push(i);
    while (!q.empty()) {
      const cand c = q.top();
      q.pop();
      auto& l = s[static_cast<std::size_t>(c.pos)];
      if (!l.alive || l.next < 0 || l.id != c.left) continue;
      auto& r = s[static_cast<std::size_t>(l.next)];
      if (r.id != c.right) continue;
      l.id = c.merged;
      r.alive = false;
      l.next = r.next;
      if (r.next >= 0) s[static_cast<std::size_t>(r.next)].prev = c.pos;
      push(l.prev);
      push(c.pos);
    }
    for (std::int32_t i = 0; i >= 0; i = s[static_cast<std::size_t>(i)].next) {
      ids.push_back(s[static_cast<std::size_t>(i)].id);
    }
  }

  std::unordered_map<std::string, std::int32_t> vocab_;  // model vocabulary
  std::unordered_map<std::uint64_t, std::pair<std::int32_t, std::int32_t>> merges_;  // -> rank, id
  std::array<std::int32_t, 256> byte_id_{};  // id of each byte's symbol
  std::vector<std::string> tokens_;          // id -> token text
  std::vector<bool> present_;                // id is a token
  std::vector<bool> special_;                // id is a special added token
  std::vector<bpe_detail::added_token> added_;
  bpe_detail::added_matcher first_pass_;   // normalized = false
  bpe_detail::added_matcher second_pass_;  // normalized = true
  bool add_prefix_space_ = false;
  bool use_regex_ = true;
  bool ignore_merges_ = false;
  bool nfc_ = false;                                // normalizer NFC
  std::optional<bpe_detail::split_pattern> split_;  // Sequence [Split, ByteLevel]
  std::int32_t bos_ = -1;
  std::int32_t eos_ = -1;
  std::int32_t pad_ = -1;
};

static_assert(tokenizer<bpe_tokenizer>);

}  // namespace model
}  // namespace v0
}  // namespace rlhf
