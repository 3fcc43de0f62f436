// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The small Jinja2 engine behind rlhf/model/hf_chat_template.hpp: a lexer, a parser and a
// tree-walking evaluator for the subset of Jinja2 that chat templates use, with the settings
// Hugging Face transformers renders them with (trim_blocks, lstrip_blocks, the default
// Undefined, no trailing newline kept). Everything outside the subset is refused when the
// template is parsed (config_error) or, for what depends on the values, when it is rendered
// (data_error): never a silently different rendering. Internal; see hf_chat_template.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/detail/checked.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"  // rlhf::detail::concat

namespace rlhf {
inline namespace v0 {
namespace model {
namespace jinja_detail {

// ---------------------------------------------------------------------------------------------
// Text helpers: Python's str.isspace() set, on UTF-8.

/// The code point at s[i] and its byte length (an invalid byte is one "character" 0xFFFFFFFF).
inline std::pair<std::uint32_t, std::size_t> decode_at(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  auto cont = [&](std::size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0U) == 0x80U;
  };
  auto byte = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[i + k]) & 0x3FU);
  };
  if (c < 0x80U) return {c, 1};
  if ((c & 0xE0U) == 0xC0U && cont(1)) return {((c & 0x1FU) << 6U) | byte(1), 2};
  if ((c & 0xF0U) == 0xE0U && cont(1) && cont(2)) {
    return {((c & 0x0FU) << 12U) | (byte(1) << 6U) | byte(2), 3};
  }
  if ((c & 0xF8U) == 0xF0U && cont(1) && cont(2) && cont(3)) {
    return {((c & 0x07U) << 18U) | (byte(1) << 12U) | (byte(2) << 6U) | byte(3), 4};
  }
  return {0xFFFFFFFFU, 1};
}

/// Python's str.isspace() (and re's \s) for one code point.
inline bool py_space(std::uint32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

/// Byte length of the leading Python whitespace of s.
inline std::size_t leading_space(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto [c, n] = decode_at(s, i);
    if (!py_space(c)) break;
    i += n;
  }
  return i;
}

/// s without its trailing Python whitespace (str.rstrip()).
inline std::string_view rstrip(std::string_view s) {
  std::size_t end = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto [c, n] = decode_at(s, i);
    i += n;
    if (!py_space(c)) end = i;
  }
  return s.substr(0, end);
}

/// str.strip() / lstrip() / rstrip().
inline std::string_view lstrip(std::string_view s) { return s.substr(leading_space(s)); }
/// str.strip().
inline std::string_view strip(std::string_view s) { return rstrip(lstrip(s)); }

/// Number of code points (len() of the Python string).
inline std::int64_t code_points(std::string_view s) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    i += decode_at(s, i).second;
    ++n;
  }
  return n;
}

/// out = a - b; false when the difference overflows.
inline bool checked_sub(std::int64_t a, std::int64_t b, std::int64_t& out) {
  if (b == std::numeric_limits<std::int64_t>::min()) {
    if (a >= 0) return false;
    out = a - b;
    return true;
  }
  return rlhf::detail::checked_add(a, -b, out);
}

// ---------------------------------------------------------------------------------------------
// Values.

/// A Jinja value: undefined, none, bool, int, string, list, mapping or a for loop's `loop`.
struct value {
  /// The type of the value.
  enum class kind { undefined, none, boolean, integer, string, list, dict, loop };
  kind k = kind::undefined;  ///< The type.
  bool b = false;            ///< kind::boolean.
  std::int64_t i = 0;        ///< kind::integer.
  std::string s;             ///< kind::string; for kind::undefined what was undefined.
  std::shared_ptr<const std::vector<value>> items;  ///< kind::list.
  /// kind::dict and kind::loop: the keys and values in order.
  std::shared_ptr<const std::vector<std::pair<std::string, value>>> fields;

  static value undef(std::string what) {
    value v;
    v.s = std::move(what);
    return v;
  }
  static value none() {
    value v;
    v.k = kind::none;
    return v;
  }
  static value boolean(bool x) {
    value v;
    v.k = kind::boolean;
    v.b = x;
    return v;
  }
  static value integer(std::int64_t x) {
    value v;
    v.k = kind::integer;
    v.i = x;
    return v;
  }
  static value string(std::string x) {
    value v;
    v.k = kind::string;
    v.s = std::move(x);
    return v;
  }
  static value list(std::vector<value> x) {
    value v;
    v.k = kind::list;
    v.items = std::make_shared<const std::vector<value>>(std::move(x));
    return v;
  }
  static value dict(std::vector<std::pair<std::string, value>> x, kind k = kind::dict) {
    value v;
    v.k = k;
    v.fields = std::make_shared<const std::vector<std::pair<std::string, value>>>(std::move(x));
    return v;
  }
  [[nodiscard]] bool is_number() const { return k == kind::integer || k == kind::boolean; }
  [[nodiscard]] std::int64_t number() const { return k == kind::boolean ? (b ? 1 : 0) : i; }
};

// ---------------------------------------------------------------------------------------------
// Syntax tree.

/// An expression node.
struct expr {
  /// The node type.
  enum class op {
    literal,  // lit
    name,     // text
    list,     // args
    attr,     // args[0].text
    item,     // args[0][args[1]]
    slice,    // args[0][args[1]:args[2]] (null: omitted)
    add,      // args[0] + args[1]
    sub,      // -
    mod,      // %
    neg,      // -args[0]
    pos,      // +args[0]
    concat,   // args joined with ~
    compare,  // args[0] cmps[0] args[1] cmps[1] ...
    and_,     // args[0] and args[1]
    or_,      // or
    not_,     // not args[0]
    cond,     // args[0] if args[1] else args[2] (null: undefined)
    filter,   // args[0] | text(args[1:])
    test,     // args[0] is [not] text
    raise,    // raise_exception(args[0])
    method,   // args[0].text(args[1:])
  };
  op o = op::literal;                       ///< The node type.
  value lit;                                ///< op::literal.
  std::string text;                         ///< Name, attribute, filter, test or method.
  std::vector<std::unique_ptr<expr>> args;  ///< Operands.
  std::vector<std::string> cmps;            ///< op::compare: "==", "!=", "<", ..., "in", "not in".
  bool negated = false;                     ///< op::test: `is not`.
  std::size_t at = 0;                       ///< Offset in the source, for messages.
};
using expr_ptr = std::unique_ptr<expr>;

struct node;
using body = std::vector<node>;

/// A statement node: text, {{ output }}, if, for or set.
struct node {
  /// The node type.
  enum class op { text, output, if_, for_, set };
  op o = op::text;                                  ///< The node type.
  std::string text;                                 ///< op::text; for/set: the variable.
  expr_ptr e;                                       ///< output/set value, for iterable.
  std::vector<std::pair<expr_ptr, body>> branches;  ///< if/elif tests and bodies.
  body main;                                        ///< for body.
  body otherwise;                                   ///< if else / for else.
  std::size_t at = 0;                               ///< Offset in the source.
};

// ---------------------------------------------------------------------------------------------
// Lexer.

/// A token inside {{ }} or {% %}.
struct token {
  /// The token type.
  enum class type { name, string, integer, op, end };
  type t = type::end;    ///< The token type.
  std::string text;      ///< Name, operator, or the decoded string literal.
  std::int64_t num = 0;  ///< type::integer.
  std::size_t at = 0;    ///< Offset in the source.
};

/// A piece of the template: text, a {{ }} tag or a {% %} tag (with its tokens).
struct piece {
  /// The piece type.
  enum class type { text, var, block };
  type t = type::text;        ///< The piece type.
  std::string text;           ///< type::text.
  std::vector<token> tokens;  ///< type::var / block (ends with a type::end token).
  std::size_t at = 0;         ///< Offset in the source.
};

/// "where:line:col" of an offset of src.
inline std::string position(std::string_view where, std::string_view src, std::size_t at) {
  std::size_t line = 1;
  std::size_t col = 1;
  for (std::size_t i = 0; i < at && i < src.size(); ++i) {
    if (src[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return rlhf::detail::concat(where, ":", line, ":", col);
}

/// Jinja2's source normalisation: \r\n and \r become \n; one trailing newline is dropped.
inline std::string normalize_newlines(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < s.size() && s[i + 1] == '\n') ++i;
    } else {
      out.push_back(s[i]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

/// Splits the (normalised) source into pieces, applying whitespace control.
class lexer {
 public:
  lexer(std::string_view src, std::string_view where) : src_(src), where_(where) {}

  std::vector<piece> run() {
    std::vector<piece> out;
    std::size_t pos = 0;
    bool line_starting = true;
    while (pos <= src_.size()) {
      const std::size_t start = next_tag(pos);
      std::string text(src_.substr(pos, (start == npos ? src_.size() : start) - pos));
      if (start == npos) {
        if (!text.empty()) out.push_back(piece{piece::type::text, std::move(text), {}, pos});
        break;
      }
      const char kind = src_[start + 1];  // '{', '%' or '#'
      char sign = 0;
      if (start + 2 < src_.size() && (src_[start + 2] == '-' || src_[start + 2] == '+')) {
        sign = src_[start + 2];
      }
      if (sign == '-') {
        text = std::string(rstrip(text));
      } else if (sign != '+' && kind != '{') {  // lstrip_blocks
        const auto nl = text.rfind('\n');
        const std::size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size() &&
            leading_space(std::string_view(text).substr(l_pos)) == text.size() - l_pos) {
          text.resize(l_pos);
        }
      }
      if (!text.empty()) out.push_back(piece{piece::type::text, std::move(text), {}, pos});
      std::size_t p = start + 2 + (sign != 0 ? 1 : 0);
      if (kind == '#') {
        pos = comment_end(p, start, line_starting);
        continue;
      }
      piece pc;
      pc.t = kind == '{' ? piece::type::var : piece::type::block;
      pc.at = start;
      pos = tag_tokens(p, kind, pc.tokens, line_starting, start);
      out.push_back(std::move(pc));
    }
    return out;
  }

 private:
  static constexpr std::size_t npos = std::string_view::npos;

  [[noreturn]] void fail(std::size_t at, std::string_view what) const {
    throw config_error(
        rlhf::detail::concat("chat_template: ", position(where_, src_, at), ": ", what));
  }

  [[nodiscard]] std::size_t next_tag(std::size_t pos) const {
    for (std::size_t i = pos; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) {
        return i;
      }
    }
    return npos;
  }

  // After an end marker: "-" strips all whitespace, a plain block/comment end one newline.
  std::size_t after_end(std::size_t p, char sign, bool trim, bool& line_starting) const {
    if (sign == '-') {
      const std::size_t n = leading_space(src_.substr(p));
      line_starting = n > 0 ? src_[p + n - 1] == '\n' : false;
      return p + n;
    }
    if (sign == 0 && trim && p < src_.size() && src_[p] == '\n') {
      line_starting = true;
      return p + 1;
    }
    line_starting = false;
    return p;
  }

  std::size_t comment_end(std::size_t p, std::size_t start, bool& line_starting) const {
    for (std::size_t q = p; q + 1 < src_.size(); ++q) {
      if ((src_[q] == '+' || src_[q] == '-') && src_.substr(q + 1, 2) == "#}") {
        return after_end(q + 3, src_[q], true, line_starting);
      }
      if (src_.substr(q, 2) == "#}") return after_end(q + 2, 0, true, line_starting);
    }
    fail(start, "unclosed comment '{#' (no '#}')");
  }

  static bool name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }

  std::size_t tag_tokens(std::size_t p, char kind, std::vector<token>& toks, bool& line_starting,
                         std::size_t start) const {
    int depth = 0;
    const char close = kind == '{' ? '}' : '%';
    for (;;) {
      while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t' || src_[p] == '\n' ||
                                 src_[p] == '\r' || src_[p] == '\f' || src_[p] == '\v')) {
        ++p;
      }
      if (p >= src_.size()) {
        fail(start, kind == '{' ? "unclosed '{{' (no '}}')" : "unclosed '{%' (no '%}')");
      }
      if (depth == 0) {
        const auto rest = src_.substr(p);
        const std::string end{close, '}'};
        if (kind == '%' && rest.substr(0, 3) == "+%}") {
          toks.push_back(token{token::type::end, "", 0, p});
          return after_end(p + 3, '+', true, line_starting);
        }
        if (rest.substr(0, 3) == "-" + end) {
          toks.push_back(token{token::type::end, "", 0, p});
          return after_end(p + 3, '-', true, line_starting);
        }
        if (rest.substr(0, 2) == end) {
          toks.push_back(token{token::type::end, "", 0, p});
          return after_end(p + 2, 0, kind == '%', line_starting);
        }
      }
      const char c = src_[p];
      token t;
      t.at = p;
      if (name_start(c)) {
        std::size_t q = p;
        while (q < src_.size() && (name_start(src_[q]) || digit(src_[q]))) ++q;
        t.t = token::type::name;
        t.text = std::string(src_.substr(p, q - p));
        p = q;
      } else if (digit(c)) {
        p = lex_integer(p, t);
      } else if (c == '\'' || c == '"') {
        p = lex_string(p, t);
      } else {
        static constexpr std::string_view two[] = {"//", "**", "==", "!=", ">=", "<="};
        std::string op(1, c);
        for (const auto o : two) {
          if (src_.substr(p, 2) == o) op = std::string(o);
        }
        static constexpr std::string_view known = "+-/*%~[](){}=.:|,;<>";
        if (op.size() == 1 && known.find(c) == std::string_view::npos) {
          fail(p, rlhf::detail::concat("unexpected character '", std::string(1, c), "'"));
        }
        if (op == "(" || op == "[" || op == "{") ++depth;
        if (op == ")" || op == "]" || op == "}") {
          if (depth == 0) fail(p, rlhf::detail::concat("unexpected '", op, "'"));
          --depth;
        }
        t.t = token::type::op;
        t.text = op;
        p += op.size();
      }
      toks.push_back(std::move(t));
    }
  }

  std::size_t lex_integer(std::size_t p, token& t) const {
    std::size_t q = p;
    while (q < src_.size() && (digit(src_[q]) || src_[q] == '_')) ++q;
    if (q < src_.size() && (src_[q] == '.' || src_[q] == 'e' || src_[q] == 'E') &&
        q + 1 < src_.size() && (digit(src_[q + 1]) || src_[q] == 'e' || src_[q] == 'E')) {
      fail(p, "unsupported Jinja construct 'float literal' (only integers are supported)");
    }
    const auto lit = src_.substr(p, q - p);
    if (lit.back() == '_' || lit.find("__") != npos || (lit.size() > 1 && lit[0] == '0') ||
        (q < src_.size() && name_start(src_[q]))) {
      fail(p, rlhf::detail::concat("unsupported Jinja construct 'integer literal ",
                                   std::string(lit), "' (plain decimal integers only)"));
    }
    std::int64_t v = 0;
    for (const char ch : lit) {
      if (ch == '_') continue;
      if (!rlhf::detail::checked_mul(v, std::int64_t{10}, v) ||
          !rlhf::detail::checked_add(v, static_cast<std::int64_t>(ch - '0'), v)) {
        fail(p, "unsupported Jinja construct 'integer literal' (out of the 64-bit range)");
      }
    }
    t.t = token::type::integer;
    t.num = v;
    return q;
  }

  static void put_utf8(std::string& out, std::uint32_t c) {
    if (c < 0x80U) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800U) {
      out.push_back(static_cast<char>(0xC0U | (c >> 6U)));
      out.push_back(static_cast<char>(0x80U | (c & 0x3FU)));
    } else if (c < 0x10000U) {
      out.push_back(static_cast<char>(0xE0U | (c >> 12U)));
      out.push_back(static_cast<char>(0x80U | ((c >> 6U) & 0x3FU)));
      out.push_back(static_cast<char>(0x80U | (c & 0x3FU)));
    } else {
      out.push_back(static_cast<char>(0xF0U | (c >> 18U)));
      out.push_back(static_cast<char>(0x80U | ((c >> 12U) & 0x3FU)));
      out.push_back(static_cast<char>(0x80U | ((c >> 6U) & 0x3FU)));
      out.push_back(static_cast<char>(0x80U | (c & 0x3FU)));
    }
  }

  // Python's "unicode-escape" decoding of the literal's body (what Jinja2 does).
  std::size_t lex_string(std::size_t p, token& t) const {
    const char quote = src_[p];
    std::string out;
    std::size_t q = p + 1;
    auto hex = [&](std::size_t at, std::size_t n) {
      std::uint32_t v = 0;
      for (std::size_t k = 0; k < n; ++k) {
        const char h = at + k < src_.size() ? src_[at + k] : '\0';
        std::uint32_t d = 0;
        if (h >= '0' && h <= '9') {
          d = static_cast<std::uint32_t>(h - '0');
        } else if (h >= 'a' && h <= 'f') {
          d = static_cast<std::uint32_t>(h - 'a' + 10);
        } else if (h >= 'A' && h <= 'F') {
          d = static_cast<std::uint32_t>(h - 'A' + 10);
        } else {
          fail(at - 2, "invalid escape in string literal");
        }
        v = v * 16U + d;
      }
      if (v > 0x10FFFFU || (v >= 0xD800U && v <= 0xDFFFU)) {
        fail(at - 2, "unsupported escape in string literal (surrogate or out of range)");
      }
      return v;
    };
    for (;;) {
      if (q >= src_.size()) fail(p, "unterminated string literal");
      const char c = src_[q];
      if (c == quote) break;
      if (c != '\\') {
        out.push_back(c);
        ++q;
        continue;
      }
      if (q + 1 >= src_.size()) fail(p, "unterminated string literal");
      const char e = src_[q + 1];
      q += 2;
      switch (e) {
        case '\n': break;
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'v': out.push_back('\v'); break;
        case 'x':
          put_utf8(out, hex(q, 2));
          q += 2;
          break;
        case 'u':
          put_utf8(out, hex(q, 4));
          q += 4;
          break;
        case 'U':
          put_utf8(out, hex(q, 8));
          q += 8;
          break;
        case 'N': fail(q - 2, "unsupported Jinja construct '\\N{...}' escape in string literal");
        default:
          if (e >= '0' && e <= '7') {
            std::uint32_t v = static_cast<std::uint32_t>(e - '0');
            for (int k = 0; k < 2 && q < src_.size() && src_[q] >= '0' && src_[q] <= '7'; ++k) {
              v = v * 8U + static_cast<std::uint32_t>(src_[q++] - '0');
            }
            put_utf8(out, v);
          } else {
            out.push_back('\\');  // unknown escapes stay as they are
            out.push_back(e);
          }
      }
    }
    t.t = token::type::string;
    t.text = std::move(out);
    return q + 1;
  }

  std::string_view src_;
  std::string_view where_;
};

/// A method name of Python's dict (jinja2 would find the method, not the key).
inline bool python_method_name(std::string_view n) {
  static constexpr std::string_view names[] = {"items", "keys",       "values",  "get",
                                               "pop",   "popitem",    "update",  "copy",
                                               "clear", "setdefault", "fromkeys"};
  return std::ranges::find(names, n) != std::end(names);
}

// ---------------------------------------------------------------------------------------------
// Parser.

// The parser and the evaluator recurse over the template's nesting (a recursive-descent
// parser and a tree walk, as jinja2's own); the parser bounds the depth (max_depth), so the
// evaluator's recursion over the tree it built is bounded too.
// NOLINTBEGIN(misc-no-recursion)

/// Deepest nesting of blocks plus expressions a template may have.
inline constexpr int max_depth = 200;

/// Builds the statement tree from the pieces; refuses what the engine does not implement.
class parser {
 public:
  parser(std::vector<piece> pieces, std::string_view src, std::string_view where)
      : pieces_(std::move(pieces)), src_(src), where_(where) {}

  body run() {
    std::string end;
    body b = parse_body({}, end);
    return b;
  }

 private:
  [[noreturn]] void fail(std::size_t at, std::string_view what) const {
    throw config_error(
        rlhf::detail::concat("chat_template: ", position(where_, src_, at), ": ", what));
  }
  [[noreturn]] void unsupported(std::size_t at, std::string_view construct,
                                std::string_view why = {}) const {
    fail(at, rlhf::detail::concat("unsupported Jinja construct '", construct, "'",
                                  why.empty() ? "" : " (", why, why.empty() ? "" : ")"));
  }

  // Counts one level of nesting for as long as it lives; refuses templates nested too deep.
  class depth_guard {
   public:
    depth_guard(parser& p, std::size_t at) : p_(p) {
      if (++p_.depth_ > max_depth) {
        p_.fail(at, rlhf::detail::concat("nested deeper than ", max_depth, " levels"));
      }
    }
    depth_guard(const depth_guard&) = delete;
    depth_guard& operator=(const depth_guard&) = delete;
    depth_guard(depth_guard&&) = delete;
    depth_guard& operator=(depth_guard&&) = delete;
    ~depth_guard() { --p_.depth_; }

   private:
    parser& p_;
  };

  // --- statements ---
  body parse_body(const std::vector<std::string>& ends, std::string& found) {
    body out;
    while (pi_ < pieces_.size()) {
      piece& pc = pieces_[pi_];
      if (pc.t == piece::type::text) {
        node n;
        n.o = node::op::text;
        n.text = std::move(pc.text);
        n.at = pc.at;
        out.push_back(std::move(n));
        ++pi_;
        continue;
      }
      toks_ = &pc.tokens;
      ti_ = 0;
      if (pc.t == piece::type::var) {
        node n;
        n.o = node::op::output;
        n.at = pc.at;
        n.e = parse_tuple(true);
        expect_end();
        out.push_back(std::move(n));
        ++pi_;
        continue;
      }
      const token& kw = cur();
      if (kw.t != token::type::name) fail(kw.at, "expected a tag name after '{%'");
      for (const auto& e : ends) {
        if (kw.text == e) {
          found = e;
          return out;  // the caller consumes the tag
        }
      }
      if (kw.text == "if") {
        out.push_back(parse_if());
      } else if (kw.text == "for") {
        out.push_back(parse_for());
      } else if (kw.text == "set") {
        out.push_back(parse_set());
      } else if (kw.text == "endif" || kw.text == "endfor" || kw.text == "elif" ||
                 kw.text == "else") {
        fail(kw.at, rlhf::detail::concat("unexpected '{% ", kw.text, " %}'"));
      } else {
        unsupported(kw.at, rlhf::detail::concat("{% ", kw.text, " %}"),
                    "supported tags: if/elif/else/endif, for/else/endfor, set");
      }
    }
    if (!ends.empty()) {
      fail(src_.size(),
           rlhf::detail::concat("unexpected end of template, expected '{% ", ends.back(), " %}'"));
    }
    return out;
  }

  node parse_if() {
    const depth_guard guard(*this, cur().at);
    node n;
    n.o = node::op::if_;
    n.at = cur().at;
    next();
    for (;;) {
      expr_ptr test = parse_tuple(false);
      expect_end();
      ++pi_;
      std::string found;
      body b = parse_body({"elif", "else", "endif"}, found);
      n.branches.emplace_back(std::move(test), std::move(b));
      toks_ = &pieces_[pi_].tokens;
      ti_ = 1;
      if (found == "elif") continue;
      if (found == "else") {
        expect_end();
        ++pi_;
        std::string f2;
        n.otherwise = parse_body({"endif"}, f2);
        toks_ = &pieces_[pi_].tokens;
        ti_ = 1;
      }
      expect_end();
      ++pi_;
      return n;
    }
  }

  node parse_for() {
    const depth_guard guard(*this, cur().at);
    node n;
    n.o = node::op::for_;
    n.at = cur().at;
    next();
    const token& target = cur();
    if (target.t != token::type::name) fail(target.at, "expected a loop variable after 'for'");
    n.text = target.text;
    next();
    if (is_op(",")) unsupported(cur().at, "for a, b in ...", "tuple unpacking");
    if (!is_name("in")) fail(cur().at, "expected 'in' in '{% for %}'");
    next();
    n.e = parse_or();
    if (is_name("if")) unsupported(cur().at, "for ... if ...", "loop filters");
    if (is_name("recursive")) unsupported(cur().at, "for ... recursive");
    expect_end();
    ++pi_;
    std::string found;
    n.main = parse_body({"else", "endfor"}, found);
    toks_ = &pieces_[pi_].tokens;
    ti_ = 1;
    if (found == "else") {
      expect_end();
      ++pi_;
      n.otherwise = parse_body({"endfor"}, found);
      toks_ = &pieces_[pi_].tokens;
      ti_ = 1;
    }
    expect_end();
    ++pi_;
    return n;
  }

  node parse_set() {
    node n;
    n.o = node::op::set;
    n.at = cur().at;
    next();
    const token& target = cur();
    if (target.t != token::type::name) fail(target.at, "expected a variable name after 'set'");
    n.text = target.text;
    next();
    if (is_op(".")) unsupported(cur().at, "set a.b = ...", "attribute assignment");
    if (is_op(",")) unsupported(cur().at, "set a, b = ...", "tuple unpacking");
    if (!is_op("=")) unsupported(cur().at, "{% set name %}...{% endset %}", "block assignment");
    next();
    n.e = parse_tuple(true);
    expect_end();
    ++pi_;
    return n;
  }

  // --- tokens ---
  [[nodiscard]] const token& cur() const { return (*toks_)[ti_]; }
  void next() {
    if (ti_ + 1 < toks_->size()) ++ti_;
  }
  [[nodiscard]] bool is_op(std::string_view o) const {
    return cur().t == token::type::op && cur().text == o;
  }
  [[nodiscard]] bool is_name(std::string_view n) const {
    return cur().t == token::type::name && cur().text == n;
  }
  void expect_op(std::string_view o) {
    if (!is_op(o)) fail(cur().at, rlhf::detail::concat("expected '", o, "', found ", describe()));
    next();
  }
  [[nodiscard]] std::string describe() const {
    const token& t = cur();
    switch (t.t) {
      case token::type::end: return "the end of the tag";
      case token::type::string: return "a string literal";
      case token::type::integer: return "an integer";
      default: return rlhf::detail::concat("'", t.text, "'");
    }
  }
  void expect_end() {
    if (cur().t == token::type::end) return;
    if (cur().t == token::type::op) {
      const std::string& o = cur().text;
      if (o == "*" || o == "/" || o == "//" || o == "**" || o == "{" || o == ";") {
        unsupported(cur().at, o);
      }
    }
    if (is_op(",")) unsupported(cur().at, ",", "tuples");
    fail(cur().at, rlhf::detail::concat("unexpected ", describe()));
  }

  expr_ptr make(expr::op o, std::size_t at) {
    auto e = std::make_unique<expr>();
    e->o = o;
    e->at = at;
    return e;
  }
  expr_ptr binary(expr::op o, std::size_t at, expr_ptr a, expr_ptr b) {
    auto e = make(o, at);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return e;
  }

  // --- expressions (Jinja2's parser, level by level) ---
  expr_ptr parse_tuple(bool condexpr) {
    expr_ptr e = condexpr ? parse_condexpr() : parse_or();
    if (is_op(",")) unsupported(cur().at, ",", "tuples");
    return e;
  }
  expr_ptr parse_condexpr() {
    expr_ptr e = parse_or();
    while (is_name("if")) {
      const std::size_t at = cur().at;
      next();
      auto c = make(expr::op::cond, at);
      c->args.push_back(std::move(e));
      c->args.push_back(parse_or());
      if (is_name("else")) {
        next();
        c->args.push_back(parse_condexpr());
      } else {
        c->args.push_back(nullptr);
      }
      e = std::move(c);
    }
    return e;
  }
  expr_ptr parse_or() {
    expr_ptr e = parse_and();
    while (is_name("or")) {
      const std::size_t at = cur().at;
      next();
      e = binary(expr::op::or_, at, std::move(e), parse_and());
    }
    return e;
  }
  expr_ptr parse_and() {
    expr_ptr e = parse_not();
    while (is_name("and")) {
      const std::size_t at = cur().at;
      next();
      e = binary(expr::op::and_, at, std::move(e), parse_not());
    }
    return e;
  }
  expr_ptr parse_not() {
    const depth_guard guard(*this, cur().at);
    if (is_name("not")) {
      auto e = make(expr::op::not_, cur().at);
      next();
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }
  expr_ptr parse_compare() {
    const std::size_t at = cur().at;
    expr_ptr first = parse_math1();
    expr_ptr c;
    for (;;) {
      std::string o;
      if (cur().t == token::type::op &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == ">" ||
           cur().text == "<=" || cur().text == ">=")) {
        o = cur().text;
        next();
      } else if (is_name("in")) {
        o = "in";
        next();
      } else if (is_name("not") && ti_ + 1 < toks_->size() &&
                 (*toks_)[ti_ + 1].t == token::type::name && (*toks_)[ti_ + 1].text == "in") {
        o = "not in";
        next();
        next();
      } else {
        break;
      }
      if (!c) {
        c = make(expr::op::compare, at);
        c->args.push_back(std::move(first));
      }
      c->cmps.push_back(o);
      c->args.push_back(parse_math1());
    }
    return c ? std::move(c) : std::move(first);
  }
  expr_ptr parse_math1() {
    expr_ptr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const auto o = cur().text == "+" ? expr::op::add : expr::op::sub;
      const std::size_t at = cur().at;
      next();
      e = binary(o, at, std::move(e), parse_concat());
    }
    return e;
  }
  expr_ptr parse_concat() {
    const std::size_t at = cur().at;
    expr_ptr e = parse_math2();
    if (!is_op("~")) return e;
    auto c = make(expr::op::concat, at);
    c->args.push_back(std::move(e));
    while (is_op("~")) {
      next();
      c->args.push_back(parse_math2());
    }
    return c;
  }
  expr_ptr parse_math2() {
    expr_ptr e = parse_pow();
    for (;;) {
      if (is_op("*") || is_op("/") || is_op("//")) {
        unsupported(cur().at, cur().text, "only +, -, % and ~ are supported");
      }
      if (!is_op("%")) return e;
      const std::size_t at = cur().at;
      next();
      e = binary(expr::op::mod, at, std::move(e), parse_pow());
    }
  }
  expr_ptr parse_pow() {
    expr_ptr e = parse_unary(true);
    if (is_op("**")) unsupported(cur().at, "**");
    return e;
  }
  expr_ptr parse_unary(bool with_filter) {
    const depth_guard guard(*this, cur().at);
    expr_ptr e;
    if (is_op("-") || is_op("+")) {
      e = make(cur().text == "-" ? expr::op::neg : expr::op::pos, cur().at);
      next();
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }
  expr_ptr parse_primary() {
    const token& t = cur();
    const std::size_t at = t.at;
    switch (t.t) {
      case token::type::name: {
        auto e = make(expr::op::literal, at);
        if (t.text == "true" || t.text == "True") {
          e->lit = value::boolean(true);
        } else if (t.text == "false" || t.text == "False") {
          e->lit = value::boolean(false);
        } else if (t.text == "none" || t.text == "None") {
          e->lit = value::none();
        } else {
          e->o = expr::op::name;
          e->text = t.text;
        }
        next();
        return e;
      }
      case token::type::string: {
        std::string s;
        while (cur().t == token::type::string) {
          s += cur().text;
          next();
        }
        auto e = make(expr::op::literal, at);
        e->lit = value::string(std::move(s));
        return e;
      }
      case token::type::integer: {
        auto e = make(expr::op::literal, at);
        e->lit = value::integer(t.num);
        next();
        return e;
      }
      case token::type::op:
        if (t.text == "(") {
          next();
          if (is_op(")")) unsupported(at, "()", "tuples");
          expr_ptr e = parse_condexpr();
          if (is_op(",")) unsupported(cur().at, ",", "tuples");
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          next();
          auto e = make(expr::op::list, at);
          while (!is_op("]")) {
            e->args.push_back(parse_condexpr());
            if (!is_op(",")) break;
            next();
          }
          expect_op("]");
          return e;
        }
        if (t.text == "{") unsupported(at, "{...}", "dict literals");
        break;
      default: break;
    }
    fail(at, rlhf::detail::concat("expected an expression, found ", describe()));
  }

  std::vector<expr_ptr> call_args(std::string_view what) {
    std::vector<expr_ptr> out;
    expect_op("(");
    while (!is_op(")")) {
      if (cur().t == token::type::name && ti_ + 1 < toks_->size() &&
          (*toks_)[ti_ + 1].t == token::type::op && (*toks_)[ti_ + 1].text == "=") {
        unsupported(cur().at, rlhf::detail::concat(what, "(", cur().text, "=...)"),
                    "keyword arguments");
      }
      if (is_op("*") || is_op("**")) unsupported(cur().at, rlhf::detail::concat(what, "(*args)"));
      out.push_back(parse_condexpr());
      if (!is_op(",")) break;
      next();
    }
    expect_op(")");
    return out;
  }

  expr_ptr parse_postfix(expr_ptr e) {
    for (;;) {
      if (is_op(".")) {
        next();
        const token& t = cur();
        if (t.t != token::type::name) unsupported(t.at, ".<integer>", "use [n]");
        const std::string name = t.text;
        const std::size_t at = t.at;
        next();
        if (name.rfind('_', 0) == 0) unsupported(at, rlhf::detail::concat(".", name));
        if (is_op("(")) {
          static constexpr std::pair<std::string_view, std::size_t> methods[] = {
              {"strip", 0}, {"lstrip", 0},     {"rstrip", 0},  {"upper", 0},
              {"lower", 0}, {"startswith", 1}, {"endswith", 1}};
          std::optional<std::size_t> arity;
          for (const auto& [m, n] : methods) {
            if (m == name) arity = n;
          }
          if (!arity) unsupported(at, rlhf::detail::concat(".", name, "()"), "method call");
          auto args = call_args(rlhf::detail::concat(".", name));
          if (args.size() != *arity) {
            unsupported(at, rlhf::detail::concat(".", name, "() with ", args.size(), " arguments"));
          }
          auto m = make(expr::op::method, at);
          m->text = name;
          m->args.push_back(std::move(e));
          for (auto& a : args) m->args.push_back(std::move(a));
          e = std::move(m);
          continue;
        }
        if (python_method_name(name)) {
          unsupported(at, rlhf::detail::concat(".", name),
                      rlhf::detail::concat("names a Python method; use ['", name, "'] for a key"));
        }
        auto a = make(expr::op::attr, at);
        a->text = name;
        a->args.push_back(std::move(e));
        e = std::move(a);
      } else if (is_op("[")) {
        const std::size_t at = cur().at;
        next();
        expr_ptr start;
        if (!is_op(":")) start = parse_condexpr();
        if (is_op(":")) {
          next();
          expr_ptr stop;
          if (!is_op("]") && !is_op(":")) stop = parse_condexpr();
          if (is_op(":")) unsupported(cur().at, "[a:b:step]", "slice steps");
          auto s = make(expr::op::slice, at);
          s->args.push_back(std::move(e));
          s->args.push_back(std::move(start));
          s->args.push_back(std::move(stop));
          e = std::move(s);
        } else {
          if (is_op(",")) unsupported(cur().at, ",", "tuple subscripts");
          e = binary(expr::op::item, at, std::move(e), std::move(start));
        }
        expect_op("]");
      } else if (is_op("(")) {
        if (e->o == expr::op::name && e->text == "raise_exception") {
          const std::size_t at = e->at;
          auto args = call_args("raise_exception");
          if (args.size() != 1) unsupported(at, "raise_exception() without one argument");
          auto r = make(expr::op::raise, at);
          r->args.push_back(std::move(args[0]));
          e = std::move(r);
        } else {
          unsupported(cur().at,
                      e->o == expr::op::name ? rlhf::detail::concat(e->text, "()") : "(...)",
                      "function call; only raise_exception() is supported");
        }
      } else {
        if (e->o == expr::op::name && global_function(e->text)) {
          unsupported(e->at, e->text,
                      "a Jinja2 global function; only raise_exception(...) is "
                      "supported");
        }
        return e;
      }
    }
  }

  static bool global_function(std::string_view n) {
    static constexpr std::string_view names[] = {"raise_exception", "range",       "dict",
                                                 "namespace",       "lipsum",      "cycler",
                                                 "joiner",          "strftime_now"};
    return std::ranges::find(names, n) != std::end(names);
  }

  expr_ptr parse_filter_expr(expr_ptr e) {
    for (;;) {
      if (is_op("|")) {
        next();
        const token& t = cur();
        if (t.t != token::type::name) fail(t.at, "expected a filter name after '|'");
        const std::string name = t.text;
        const std::size_t at = t.at;
        next();
        if (is_op("."))
          unsupported(at, rlhf::detail::concat("| ", name, "."), "dotted filter names");
        std::size_t lo = 0;
        std::size_t hi = 0;
        if (name == "default" || name == "d") {
          hi = 2;
        } else if (name != "trim" && name != "length" && name != "count" && name != "upper" &&
                   name != "lower" && name != "string") {
          unsupported(at, rlhf::detail::concat("| ", name),
                      "supported filters: trim, length, count, upper, lower, string, default");
        }
        auto f = make(expr::op::filter, at);
        f->text = name == "d" ? "default" : name == "count" ? "length" : name;
        f->args.push_back(std::move(e));
        if (is_op("(")) {
          auto args = call_args(rlhf::detail::concat("| ", name));
          if (args.size() < lo || args.size() > hi) {
            unsupported(at, rlhf::detail::concat("| ", name, " with ", args.size(), " arguments"));
          }
          for (auto& a : args) f->args.push_back(std::move(a));
        }
        e = std::move(f);
      } else if (is_name("is")) {
        next();
        auto te = make(expr::op::test, cur().at);
        if (is_name("not")) {
          te->negated = true;
          next();
        }
        const token& t = cur();
        if (t.t != token::type::name) fail(t.at, "expected a test name after 'is'");
        te->text = t.text;
        te->at = t.at;
        static constexpr std::string_view tests[] = {"defined", "undefined", "none", "string",
                                                     "number",  "boolean",   "true", "false"};
        bool known = false;
        for (const auto n : tests) known = known || n == t.text;
        if (!known) {
          unsupported(t.at, rlhf::detail::concat("is ", t.text),
                      "supported tests: defined, undefined, none, string, number, boolean, "
                      "true, false");
        }
        next();
        const token& a = cur();
        if (a.t == token::type::string || a.t == token::type::integer ||
            (a.t == token::type::op && (a.text == "(" || a.text == "[" || a.text == "{")) ||
            (a.t == token::type::name && a.text != "else" && a.text != "or" && a.text != "and")) {
          unsupported(a.at, rlhf::detail::concat("is ", te->text, " <argument>"), "test arguments");
        }
        te->args.push_back(std::move(e));
        e = std::move(te);
      } else if (is_op("(")) {
        unsupported(cur().at, "(...)", "calling the result of a filter or test");
      } else {
        return e;
      }
    }
  }

  std::vector<piece> pieces_;
  std::string_view src_;
  std::string_view where_;
  std::size_t pi_ = 0;
  const std::vector<token>* toks_ = nullptr;
  std::size_t ti_ = 0;
  int depth_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Evaluator.

/// Renders a parsed template for one set of global variables.
class evaluator {
 public:
  evaluator(std::string_view src, std::string_view where,
            std::map<std::string, value, std::less<>> globals)
      : src_(src), where_(where), globals_(std::move(globals)) {}

  std::string render(const body& b) {
    scopes_.emplace_back();
    exec(b);
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(std::size_t at, std::string_view what) const {
    throw data_error(
        rlhf::detail::concat("hf_chat_template::render: ", position(where_, src_, at), ": ", what));
  }
  [[noreturn]] void undefined_error(std::size_t at, const value& v) const {
    fail(at, rlhf::detail::concat(v.s.empty() ? std::string("a value") : v.s,
                                  " is undefined (jinja2 raises UndefinedError here)"));
  }
  static std::string_view type_name(const value& v) {
    switch (v.k) {
      case value::kind::undefined: return "undefined";
      case value::kind::none: return "none";
      case value::kind::boolean: return "bool";
      case value::kind::integer: return "int";
      case value::kind::string: return "string";
      case value::kind::list: return "list";
      case value::kind::dict: return "mapping";
      case value::kind::loop: return "loop";
    }
    return "?";
  }

  void exec(const body& b) {
    for (const node& n : b) exec(n);
  }

  void exec(const node& n) {
    switch (n.o) {
      case node::op::text: out_ += n.text; break;
      case node::op::output: out_ += str(eval(*n.e), n.e->at); break;
      case node::op::set: scopes_.back()[n.text] = eval(*n.e); break;
      case node::op::if_:
        for (const auto& br : n.branches) {
          if (truthy(eval(*br.first))) {
            exec(br.second);
            return;
          }
        }
        exec(n.otherwise);
        break;
      case node::op::for_: exec_for(n); break;
    }
  }

  void exec_for(const node& n) {
    const value seq = eval(*n.e);
    std::vector<value> items;
    switch (seq.k) {
      case value::kind::undefined: break;  // iterating Undefined gives nothing
      case value::kind::list: items = *seq.items; break;
      case value::kind::dict:
        for (const auto& kv : *seq.fields) items.push_back(value::string(kv.first));
        break;
      default:
        fail(n.e->at, rlhf::detail::concat("cannot iterate over a ", type_name(seq),
                                           " (only lists and mappings are supported)"));
    }
    const auto len = static_cast<std::int64_t>(items.size());
    for (std::int64_t k = 0; k < len; ++k) {
      scopes_.emplace_back();
      auto& sc = scopes_.back();
      sc[n.text] = items[static_cast<std::size_t>(k)];
      sc["loop"] = value::dict({{"index0", value::integer(k)},
                                {"index", value::integer(k + 1)},
                                {"first", value::boolean(k == 0)},
                                {"last", value::boolean(k == len - 1)},
                                {"length", value::integer(len)},
                                {"revindex", value::integer(len - k)},
                                {"revindex0", value::integer(len - k - 1)}},
                               value::kind::loop);
      exec(n.main);
      scopes_.pop_back();
    }
    if (len == 0) {
      scopes_.emplace_back();
      exec(n.otherwise);
      scopes_.pop_back();
    }
  }

  [[nodiscard]] value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      const auto f = it->find(name);
      if (f != it->end()) return f->second;
    }
    const auto g = globals_.find(name);
    if (g != globals_.end()) return g->second;
    return value::undef(rlhf::detail::concat("'", name, "'"));
  }

  static bool truthy(const value& v) {
    switch (v.k) {
      case value::kind::undefined:
      case value::kind::none: return false;
      case value::kind::boolean: return v.b;
      case value::kind::integer: return v.i != 0;
      case value::kind::string: return !v.s.empty();
      case value::kind::list: return !v.items->empty();
      case value::kind::dict: return !v.fields->empty();
      case value::kind::loop: return true;
    }
    return false;
  }

  // Python's str() of the value.
  [[nodiscard]] std::string str(const value& v, std::size_t at) const {
    switch (v.k) {
      case value::kind::undefined: return {};
      case value::kind::none: return "None";
      case value::kind::boolean: return v.b ? "True" : "False";
      case value::kind::integer: return std::to_string(v.i);
      case value::kind::string: return v.s;
      default:
        fail(at, rlhf::detail::concat("printing a ", type_name(v),
                                      " is not supported (Python's repr formatting)"));
    }
  }

  [[nodiscard]] bool equal(const value& a, const value& b, std::size_t at) const {
    if (a.is_number() && b.is_number()) return a.number() == b.number();
    if (a.k != b.k) return false;
    switch (a.k) {
      case value::kind::undefined:
      case value::kind::none: return true;
      case value::kind::string: return a.s == b.s;
      case value::kind::list:
        if (a.items->size() != b.items->size()) return false;
        for (std::size_t k = 0; k < a.items->size(); ++k) {
          if (!equal((*a.items)[k], (*b.items)[k], at)) return false;
        }
        return true;
      case value::kind::dict: {
        if (a.fields->size() != b.fields->size()) return false;
        for (const auto& kv : *a.fields) {
          bool found = false;
          for (const auto& kw : *b.fields) {
            if (kw.first == kv.first) {
              found = equal(kv.second, kw.second, at);
              break;
            }
          }
          if (!found) return false;
        }
        return true;
      }
      default: fail(at, "comparing loop objects is not supported");
    }
  }

  [[nodiscard]] bool compare(const value& a, std::string_view o, const value& b,
                             std::size_t at) const {
    if (o == "==") return equal(a, b, at);
    if (o == "!=") return !equal(a, b, at);
    if (o == "in" || o == "not in") {
      bool r = false;
      switch (b.k) {
        case value::kind::undefined: r = false; break;
        case value::kind::string:
          if (a.k == value::kind::undefined) undefined_error(at, a);
          if (a.k != value::kind::string) {
            fail(at, rlhf::detail::concat("'in <string>' needs a string on the left, not a ",
                                          type_name(a)));
          }
          r = b.s.find(a.s) != std::string::npos;
          break;
        case value::kind::list:
          for (const auto& x : *b.items) r = r || equal(a, x, at);
          break;
        case value::kind::dict:
          for (const auto& kv : *b.fields) {
            r = r || (a.k == value::kind::string && kv.first == a.s);
          }
          break;
        default: fail(at, rlhf::detail::concat("'in' on a ", type_name(b), " is not supported"));
      }
      return o == "in" ? r : !r;
    }
    int c = 0;
    if (a.is_number() && b.is_number()) {
      c = a.number() < b.number() ? -1 : a.number() > b.number() ? 1 : 0;
    } else if (a.k == value::kind::string && b.k == value::kind::string) {
      c = a.s.compare(b.s) < 0 ? -1 : a.s == b.s ? 0 : 1;  // UTF-8 order = code point order
    } else {
      if (a.k == value::kind::undefined) undefined_error(at, a);
      if (b.k == value::kind::undefined) undefined_error(at, b);
      fail(at, rlhf::detail::concat("'", o, "' between a ", type_name(a), " and a ", type_name(b),
                                    " is not supported"));
    }
    if (o == "<") return c < 0;
    if (o == ">") return c > 0;
    if (o == "<=") return c <= 0;
    return c >= 0;
  }

  [[nodiscard]] std::int64_t int_operand(const value& v, std::string_view o, std::size_t at) const {
    if (v.k == value::kind::undefined) undefined_error(at, v);
    if (!v.is_number()) {
      fail(at, rlhf::detail::concat("'", o, "' on a ", type_name(v), " is not supported"));
    }
    return v.number();
  }

  [[nodiscard]] value getattr(const value& obj, const std::string& name, std::size_t at) const {
    switch (obj.k) {
      case value::kind::undefined: undefined_error(at, obj);
      case value::kind::none: return value::undef(rlhf::detail::concat("attribute '", name, "'"));
      case value::kind::dict:
      case value::kind::loop:
        for (const auto& kv : *obj.fields) {
          if (kv.first == name) return kv.second;
        }
        if (obj.k == value::kind::loop) {
          fail(at, rlhf::detail::concat("loop.", name, " is not supported"));
        }
        return value::undef(rlhf::detail::concat("key '", name, "'"));
      default:
        fail(at, rlhf::detail::concat("attribute '", name, "' of a ", type_name(obj),
                                      " is not supported"));
    }
  }

  [[nodiscard]] value getitem(const value& obj, const value& key, std::size_t at) const {
    switch (obj.k) {
      case value::kind::undefined: undefined_error(at, obj);
      case value::kind::none: return value::undef("an item of none");
      case value::kind::dict:
      case value::kind::loop:
        if (key.k == value::kind::string) {
          if (obj.k == value::kind::dict && python_method_name(key.s)) {
            bool present = false;
            for (const auto& kv : *obj.fields) present = present || kv.first == key.s;
            if (!present) {
              fail(at, rlhf::detail::concat("missing key '", key.s,
                                            "' names a Python method (jinja2 would return it)"));
            }
          }
          return getattr(obj, key.s, at);
        }
        return value::undef("a non-string key");
      case value::kind::list: {
        if (!key.is_number()) {
          fail(at, rlhf::detail::concat("a list index must be an integer, not a ", type_name(key)));
        }
        const auto n = static_cast<std::int64_t>(obj.items->size());
        std::int64_t k = key.number();
        if (k < 0) k += n;
        if (k < 0 || k >= n) return value::undef("a list index out of range");
        return (*obj.items)[static_cast<std::size_t>(k)];
      }
      default:
        fail(at, rlhf::detail::concat("subscripting a ", type_name(obj), " is not supported"));
    }
  }

  value eval(const expr& e) {
    switch (e.o) {
      case expr::op::literal: return e.lit;
      case expr::op::name: return lookup(e.text);
      case expr::op::list: {
        std::vector<value> items;
        for (const auto& a : e.args) items.push_back(eval(*a));
        return value::list(std::move(items));
      }
      case expr::op::attr: return getattr(eval(*e.args[0]), e.text, e.at);
      case expr::op::item: {
        const value obj = eval(*e.args[0]);
        return getitem(obj, eval(*e.args[1]), e.at);
      }
      case expr::op::slice: return eval_slice(e);
      case expr::op::add: {
        const value a = eval(*e.args[0]);
        const value b = eval(*e.args[1]);
        if (a.k == value::kind::string && b.k == value::kind::string) {
          return value::string(a.s + b.s);
        }
        if (a.k == value::kind::list && b.k == value::kind::list) {
          std::vector<value> items = *a.items;
          items.insert(items.end(), b.items->begin(), b.items->end());
          return value::list(std::move(items));
        }
        if (a.k == value::kind::string || b.k == value::kind::string) {
          if (a.k == value::kind::undefined) undefined_error(e.at, a);
          if (b.k == value::kind::undefined) undefined_error(e.at, b);
          fail(e.at, rlhf::detail::concat("'+' between a ", type_name(a), " and a ", type_name(b),
                                          " (use ~ to join as text)"));
        }
        std::int64_t r = 0;
        if (!rlhf::detail::checked_add(int_operand(a, "+", e.at), int_operand(b, "+", e.at), r)) {
          fail(e.at, "integer overflow");
        }
        return value::integer(r);
      }
      case expr::op::sub: {
        const value a = eval(*e.args[0]);
        const value b = eval(*e.args[1]);
        std::int64_t r = 0;
        if (!checked_sub(int_operand(a, "-", e.at), int_operand(b, "-", e.at), r)) {
          fail(e.at, "integer overflow");
        }
        return value::integer(r);
      }
      case expr::op::mod: {
        const value a = eval(*e.args[0]);
        const value b = eval(*e.args[1]);
        const std::int64_t x = int_operand(a, "%", e.at);
        const std::int64_t y = int_operand(b, "%", e.at);
        if (y == 0) fail(e.at, "integer modulo by zero");
        if (y == -1) return value::integer(0);
        std::int64_t r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) r += y;  // Python's floored modulo
        return value::integer(r);
      }
      case expr::op::neg:
      case expr::op::pos: {
        const value a = eval(*e.args[0]);
        const std::int64_t x = int_operand(a, e.o == expr::op::neg ? "-" : "+", e.at);
        if (e.o == expr::op::pos) return value::integer(x);
        std::int64_t r = 0;
        if (!checked_sub(std::int64_t{0}, x, r)) fail(e.at, "integer overflow");
        return value::integer(r);
      }
      case expr::op::concat: {
        std::string s;
        for (const auto& a : e.args) s += str(eval(*a), a->at);
        return value::string(std::move(s));
      }
      case expr::op::compare: {
        value left = eval(*e.args[0]);
        for (std::size_t k = 0; k < e.cmps.size(); ++k) {
          value right = eval(*e.args[k + 1]);
          if (!compare(left, e.cmps[k], right, e.args[k + 1]->at)) return value::boolean(false);
          left = std::move(right);
        }
        return value::boolean(true);
      }
      case expr::op::and_: {
        value a = eval(*e.args[0]);
        return truthy(a) ? eval(*e.args[1]) : a;
      }
      case expr::op::or_: {
        value a = eval(*e.args[0]);
        return truthy(a) ? a : eval(*e.args[1]);
      }
      case expr::op::not_: return value::boolean(!truthy(eval(*e.args[0])));
      case expr::op::cond:
        if (truthy(eval(*e.args[1]))) return eval(*e.args[0]);
        return e.args[2] ? eval(*e.args[2]) : value::undef("a conditional without else");
      case expr::op::filter: return eval_filter(e);
      case expr::op::test: {
        const value v = eval(*e.args[0]);
        bool r = false;
        if (e.text == "defined") r = v.k != value::kind::undefined;
        if (e.text == "undefined") r = v.k == value::kind::undefined;
        if (e.text == "none") r = v.k == value::kind::none;
        if (e.text == "string") r = v.k == value::kind::string;
        if (e.text == "number") r = v.is_number();
        if (e.text == "boolean") r = v.k == value::kind::boolean;
        if (e.text == "true") r = v.k == value::kind::boolean && v.b;
        if (e.text == "false") r = v.k == value::kind::boolean && !v.b;
        return value::boolean(e.negated ? !r : r);
      }
      case expr::op::raise: {
        const value m = eval(*e.args[0]);
        throw data_error(rlhf::detail::concat("hf_chat_template::render: ", where_,
                                              ": raise_exception: ", str(m, e.at)));
      }
      case expr::op::method: return eval_method(e);
    }
    fail(e.at, "internal error: unknown expression");
  }

  value eval_slice(const expr& e) {
    const value obj = eval(*e.args[0]);
    if (obj.k == value::kind::undefined) undefined_error(e.at, obj);
    if (obj.k != value::kind::list) {
      fail(e.at, rlhf::detail::concat("slicing a ", type_name(obj), " is not supported"));
    }
    const auto n = static_cast<std::int64_t>(obj.items->size());
    auto bound = [&](const expr_ptr& p, std::int64_t dflt) {
      if (!p) return dflt;
      const value v = eval(*p);
      if (v.k == value::kind::none) return dflt;
      std::int64_t k = int_operand(v, "[:]", p->at);
      if (k < 0) k = std::max<std::int64_t>(k + n, 0);
      return std::min(k, n);
    };
    const std::int64_t lo = bound(e.args[1], 0);
    const std::int64_t hi = bound(e.args[2], n);
    std::vector<value> items;
    for (std::int64_t k = lo; k < hi; ++k)
      items.push_back((*obj.items)[static_cast<std::size_t>(k)]);
    return value::list(std::move(items));
  }

  static std::string ascii_case(std::string s, bool upper) {
    for (char& c : s) {
      if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return s;
  }
  void require_ascii(const std::string& s, std::string_view what, std::size_t at) const {
    for (const char c : s) {
      if (static_cast<unsigned char>(c) >= 0x80U) {
        fail(at, rlhf::detail::concat(what, " of non-ASCII text is not supported"));
      }
    }
  }

  value eval_filter(const expr& e) {
    value v = eval(*e.args[0]);
    if (e.text == "trim") return value::string(std::string(strip(str(v, e.at))));
    if (e.text == "string") return value::string(str(v, e.at));
    if (e.text == "upper" || e.text == "lower") {
      std::string s = str(v, e.at);
      require_ascii(s, e.text, e.at);
      return value::string(ascii_case(std::move(s), e.text == "upper"));
    }
    if (e.text == "length") {
      switch (v.k) {
        case value::kind::undefined: return value::integer(0);
        case value::kind::string: return value::integer(code_points(v.s));
        case value::kind::list: return value::integer(static_cast<std::int64_t>(v.items->size()));
        case value::kind::dict: return value::integer(static_cast<std::int64_t>(v.fields->size()));
        default:
          fail(e.at, rlhf::detail::concat("length of a ", type_name(v), " is not supported"));
      }
    }
    // default(value, default_value='', boolean=false)
    const bool boolean = e.args.size() > 2 && truthy(eval(*e.args[2]));
    if (v.k == value::kind::undefined || (boolean && !truthy(v))) {
      return e.args.size() > 1 ? eval(*e.args[1]) : value::string("");
    }
    return v;
  }

  value eval_method(const expr& e) {
    const value v = eval(*e.args[0]);
    if (v.k == value::kind::undefined) undefined_error(e.at, v);
    if (v.k != value::kind::string) {
      fail(e.at, rlhf::detail::concat(".", e.text, "() on a ", type_name(v), " is not supported"));
    }
    if (e.text == "strip") return value::string(std::string(strip(v.s)));
    if (e.text == "lstrip") return value::string(std::string(lstrip(v.s)));
    if (e.text == "rstrip") return value::string(std::string(rstrip(v.s)));
    if (e.text == "upper" || e.text == "lower") {
      require_ascii(v.s, rlhf::detail::concat(".", e.text, "()"), e.at);
      return value::string(ascii_case(v.s, e.text == "upper"));
    }
    const value arg = eval(*e.args[1]);
    if (arg.k != value::kind::string) {
      fail(e.at,
           rlhf::detail::concat(".", e.text, "() needs a string argument, not a ", type_name(arg)));
    }
    if (e.text == "startswith") return value::boolean(v.s.rfind(arg.s, 0) == 0);
    return value::boolean(v.s.size() >= arg.s.size() &&
                          v.s.compare(v.s.size() - arg.s.size(), arg.s.size(), arg.s) == 0);
  }

  std::string_view src_;
  std::string_view where_;
  std::map<std::string, value, std::less<>> globals_;
  std::vector<std::map<std::string, value, std::less<>>> scopes_;
  std::string out_;
};

// NOLINTEND(misc-no-recursion)

}  // namespace jinja_detail
}  // namespace model
}  // namespace v0
}  // namespace rlhf
