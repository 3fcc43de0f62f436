// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Chat templates as Hugging Face models ship them (docs/models.md, "Chat templates"): the
// Jinja2 "chat_template" of tokenizer_config.json, rendered for a list of messages the way
// transformers' apply_chat_template(messages, tokenize=False, add_generation_prompt=...)
// renders it.
//
//   hf_chat_template::from_tokenizer_config(path)   the file's template (the "default" one of a
//                                                list) and its special tokens
//   hf_chat_template::parse(source)                 any template text
//   hf_chat_template::chatml()                      a built-in ChatML template
//   render(messages, add_generation_prompt)      the prompt text
//
// The engine (rlhf/model/detail/jinja.hpp) implements the subset of Jinja2 that role/content
// loop templates use; a template that needs more is a config_error naming the construct and
// its line:column when it is parsed, and a value-dependent case outside the subset a
// data_error when it is rendered: never a silently different text.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/jinja.hpp"
#include "rlhf/model/detail/text_file.hpp"
#include "rlhf/model/tokenizer.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// One turn of a conversation: its role ("system", "user", "assistant", ...) and its text.
struct chat_message {
  std::string role;     ///< The speaker, as the template tests it (message['role']).
  std::string content;  ///< The text of the turn (message['content']).
};

/// A parsed Jinja2 chat template plus the special tokens it can refer to (bos_token, ...).
/// Copies share the parsed template; rendering is const and thread-safe.
class hf_chat_template {
 public:
  /// Parses `source` (Jinja2 text); `where` names it in error messages. Throws config_error
  /// "chat_template: <where>:<line>:<col>: unsupported Jinja construct '<x>' (...)" for what
  /// the engine does not implement and for syntax errors.
  static hf_chat_template parse(const std::string& source, std::string where = "chat_template") {
    hf_chat_template t;
    auto impl = std::make_shared<state>();
    impl->where = std::move(where);
    impl->source = jinja_detail::normalize_newlines(source);
    jinja_detail::lexer lex(impl->source, impl->where);
    jinja_detail::parser p(lex.run(), impl->source, impl->where);
    impl->root = p.run();
    t.impl_ = std::move(impl);
    return t;
  }

  /// The template of a Hugging Face tokenizer_config.json: "chat_template" as a string, or a
  /// list of {"name", "template"} objects of which the one named "default" is used; with the
  /// special tokens the file names (bos_token, eos_token, unk_token, sep_token, pad_token,
  /// cls_token, mask_token; a string or an object {"content": ...}). io_error when the file
  /// cannot be read, config_error when it is not JSON, has no usable template, or the
  /// template is outside the supported subset.
  static hf_chat_template from_tokenizer_config(
      const std::filesystem::path& tokenizer_config_json) {
    constexpr std::string_view fn = "chat_template::from_tokenizer_config";
    const std::string path = tokenizer_config_json.string();
    const std::string text = rlhf::detail::read_text_file(tokenizer_config_json, fn);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw config_error(rlhf::detail::concat(fn, ": ", path, ": not valid JSON: ", e.what()));
    }
    if (!j.is_object())
      throw config_error(rlhf::detail::concat(fn, ": ", path, ": not a JSON object"));
    const auto it = j.find("chat_template");
    if (it == j.end() || it->is_null()) {
      throw config_error(
          rlhf::detail::concat(fn, ": ", path,
                               ": has no \"chat_template\" (pass a template of your own, "
                               "e.g. hf_chat_template::chatml())"));
    }
    hf_chat_template t;
    if (it->is_string()) {
      t = parse(it->get<std::string>(), path + ": chat_template");
    } else if (it->is_array()) {
      std::string names;
      const nlohmann::json* chosen = nullptr;
      for (const auto& entry : *it) {
        if (!entry.is_object() || !entry.contains("name") || !entry["name"].is_string() ||
            !entry.contains("template") || !entry["template"].is_string()) {
          throw config_error(rlhf::detail::concat(fn, ": ", path,
                                                  ": chat_template list entries must be "
                                                  "{\"name\": string, \"template\": string}"));
        }
        const auto name = entry["name"].get<std::string>();
        names += names.empty() ? name : ", " + name;
        if (name == "default") chosen = &entry;
      }
      if (chosen == nullptr) {
        throw config_error(rlhf::detail::concat(fn, ": ", path,
                                                ": chat_template has no template named \"default\" "
                                                "(names: ",
                                                names, ")"));
      }
      t = parse((*chosen)["template"].get<std::string>(), path + ": chat_template[default]");
    } else {
      throw config_error(
          rlhf::detail::concat(fn, ": ", path, ": chat_template must be a string or a list"));
    }
    for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                            "cls_token", "mask_token"}) {
      const auto tok = j.find(key);
      if (tok == j.end() || tok->is_null()) continue;
      if (tok->is_string()) {
        t.set_special_token(key, tok->get<std::string>());
      } else if (tok->is_object() && tok->contains("content") && (*tok)["content"].is_string()) {
        t.set_special_token(key, (*tok)["content"].get<std::string>());
      } else {
        throw config_error(rlhf::detail::concat(fn, ": ", path, ": ", key,
                                                " must be a string or an object with \"content\""));
      }
    }
    return t;
  }

  /// A built-in ChatML template (the format of Qwen2 and SmolLM, without a default system
  /// turn): "<|im_start|>{role}\n{content}<|im_end|>\n" per message, then
  /// "<|im_start|>assistant\n" when add_generation_prompt. For models without a template.
  static hf_chat_template chatml() { return parse(std::string(chatml_source()), "chatml"); }

  /// The Jinja2 text of chatml().
  static std::string_view chatml_source() {
    return "{%- for message in messages %}\n"
           "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
           "'\\n' }}\n"
           "{%- endfor %}\n"
           "{%- if add_generation_prompt %}\n"
           "{{- '<|im_start|>assistant\\n' }}\n"
           "{%- endif %}\n";
  }

  /// The text of `messages` as the template renders it, with the variables transformers
  /// passes: messages, add_generation_prompt, tools and documents (none), and the special
  /// tokens set here (bos_token, eos_token, ...; an unset one is undefined). Throws
  /// data_error "chat_template::render: <where>: raise_exception: <message>" when the
  /// template calls raise_exception(message), and a data_error naming the operation when a
  /// value meets an operation outside the subset (e.g. '+' on an undefined variable, which
  /// jinja2 refuses too).
  [[nodiscard]] std::string render(std::span<const chat_message> messages,
                                   bool add_generation_prompt) const {
    using jinja_detail::value;
    std::vector<value> list;
    list.reserve(messages.size());
    for (const auto& m : messages) {
      list.push_back(
          value::dict({{"role", value::string(m.role)}, {"content", value::string(m.content)}}));
    }
    std::map<std::string, value, std::less<>> globals;
    globals["messages"] = value::list(std::move(list));
    globals["add_generation_prompt"] = value::boolean(add_generation_prompt);
    globals["tools"] = value::none();
    globals["documents"] = value::none();
    for (const auto& [name, text] : special_) globals[name] = value::string(text);
    jinja_detail::evaluator ev(impl_->source, impl_->where, std::move(globals));
    return ev.render(impl_->root);
  }

  /// Sets (or, with nullopt, unsets) the special token variable `name` ("bos_token", ...).
  void set_special_token(const std::string& name, std::optional<std::string> text) {
    if (text) {
      special_[name] = std::move(*text);
    } else {
      special_.erase(name);
    }
  }
  /// The special token variable `name`, or nullopt when it is not set.
  [[nodiscard]] std::optional<std::string> special_token(const std::string& name) const {
    const auto it = special_.find(name);
    if (it == special_.end()) return std::nullopt;
    return it->second;
  }
  /// Sets or unsets bos_token.
  void set_bos_token(std::optional<std::string> text) {
    set_special_token("bos_token", std::move(text));
  }
  /// Sets or unsets eos_token.
  void set_eos_token(std::optional<std::string> text) {
    set_special_token("eos_token", std::move(text));
  }
  /// bos_token, or nullopt.
  [[nodiscard]] std::optional<std::string> bos_token() const { return special_token("bos_token"); }
  /// eos_token, or nullopt.
  [[nodiscard]] std::optional<std::string> eos_token() const { return special_token("eos_token"); }

  /// The template text (newlines normalised to \n, one trailing newline dropped, as jinja2
  /// reads it).
  [[nodiscard]] const std::string& source() const { return impl_->source; }
  /// The name given to parse() (the file and key for from_tokenizer_config).
  [[nodiscard]] const std::string& where() const { return impl_->where; }

 private:
  struct state {
    std::string where;
    std::string source;
    jinja_detail::body root;
  };
  hf_chat_template() = default;

  std::shared_ptr<const state> impl_;
  std::map<std::string, std::string> special_;
};

/// The markers of model::chat_template (model/tokenizer.hpp) under which a prompt renders as
/// `t` renders one user message with add_generation_prompt: user_prefix is the text before the
/// message, assistant_prefix the text after it (a default system turn, BOS text and the
/// assistant header included), found by rendering a sentinel message. The response then
/// follows, and the tokenizer's EOS id ends it. config_error when the template does not place
/// the message's text verbatim exactly once (e.g. it rewrites the content).
[[nodiscard]] inline chat_template prompt_markers(const hf_chat_template& t) {
  const std::string sentinel = "\x1f\x1erlhf-prompt\x1e\x1f";
  const chat_message user{"user", sentinel};
  const std::string text = t.render(std::span<const chat_message>(&user, 1), true);
  const auto at = text.find(sentinel);
  if (at == std::string::npos || text.find(sentinel, at + 1) != std::string::npos) {
    throw config_error(rlhf::detail::concat(
        "prompt_markers: ", t.where(),
        ": the template does not put a user message's text into its output verbatim exactly "
        "once; pass a template of your own (e.g. hf_chat_template::chatml())"));
  }
  chat_template m;
  m.user_prefix = text.substr(0, at);
  m.assistant_prefix = text.substr(at + sentinel.size());
  m.add_bos = false;  // BOS text in the template encodes as the BOS token
  m.add_eos = true;
  return m;
}

}  // namespace model
}  // namespace v0
}  // namespace rlhf
