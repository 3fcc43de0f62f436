// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Chat templates (rlhf/model/hf_chat_template.hpp) against transformers' apply_chat_template
// (tools/reference/chat_template.py): every template of the fixture renders every
// conversation byte for byte as transformers does, with and without add_generation_prompt,
// and raise_exception gives a data_error with its message; templates outside the subset are
// config_errors naming the construct; tokenizer_config.json loads (string and list forms,
// special tokens as strings and as objects).
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "rlhf/model/hf_chat_template.hpp"

namespace test_chat_template_cases {

using namespace rlhf_test;
namespace model = rlhf::model;
namespace fs = std::filesystem;

namespace {

std::vector<model::chat_message> messages_of(const nlohmann::json& conv) {
  std::vector<model::chat_message> out;
  for (const auto& m : conv) {
    out.push_back({m.at("role").get<std::string>(), m.at("content").get<std::string>()});
  }
  return out;
}

/// The config_error message of parsing `source`, or "" when it parses.
std::string parse_error(const std::string& source) {
  try {
    (void)model::hf_chat_template::parse(source, "test");
  } catch (const rlhf::config_error& e) {
    return e.what();
  }
  return {};
}

/// The data_error message of rendering `source` for one user turn, or "" when it renders.
std::string render_error(const std::string& source) {
  const auto t = model::hf_chat_template::parse(source, "test");
  const std::vector<model::chat_message> msgs{{"user", "hi"}};
  try {
    (void)t.render(msgs, false);
  } catch (const rlhf::data_error& e) {
    return e.what();
  }
  return {};
}

std::string render(const std::string& source, bool agp = false) {
  const std::vector<model::chat_message> msgs{{"system", "s"}, {"user", "hi"}};
  return model::hf_chat_template::parse(source).render(msgs, agp);
}

fs::path write_config(const std::string& name, const nlohmann::json& j) {
  const fs::path dir = fs::temp_directory_path() / "rlhf_test_chat_template";
  fs::create_directories(dir);
  const fs::path p = dir / name;
  std::ofstream(p) << j.dump(2);
  return p;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("chat_template: renders the fixture as transformers does") {
  const auto cases = load_fixture("chat_template.json");
  REQUIRE(cases.size() >= 8);
  std::size_t rendered = 0;
  std::size_t raised = 0;
  std::size_t refused = 0;
  for (const auto& c : cases) {
    CAPTURE(c.name());
    const auto source = c.config().at("template").get<std::string>();
    if (!c.config().at("refuse").is_null()) {
      const auto construct = c.config().at("refuse").get<std::string>();
      const auto msg = parse_error(source);
      CAPTURE(msg);
      CHECK(contains(msg, "unsupported Jinja construct '" + construct + "'"));
      CHECK(contains(msg, "test:1:"));
      ++refused;
      continue;
    }
    auto t = model::hf_chat_template::parse(source, c.name());
    t.set_bos_token(c.config().at("bos_token").get<std::string>());
    t.set_eos_token(c.config().at("eos_token").get<std::string>());
    t.set_special_token("unk_token", c.config().at("unk_token").get<std::string>());
    const auto& convs = c.j.at("inputs").at("conversations");
    const auto& outs = c.j.at("outputs").at("rendered");
    REQUIRE(convs.size() == outs.size());
    for (std::size_t i = 0; i < convs.size(); ++i) {
      const auto msgs = messages_of(convs[i]);
      for (const bool agp : {false, true}) {
        CAPTURE(i);
        CAPTURE(agp);
        const auto& want = outs[i][agp ? 1 : 0];
        if (want.contains("raise")) {
          const auto message = want.at("raise").get<std::string>();
          std::string got;
          try {
            (void)t.render(msgs, agp);
          } catch (const rlhf::data_error& e) {
            got = e.what();
          }
          CHECK(got == "hf_chat_template::render: " + c.name() + ": raise_exception: " + message);
          ++raised;
        } else {
          CHECK(t.render(msgs, agp) == want.at("text").get<std::string>());
          ++rendered;
        }
      }
    }
  }
  CHECK(raised > 0);
  CHECK(refused >= 5);
  MESSAGE(rendered << " renderings equal, " << raised << " raise_exception, " << refused
                   << " templates refused");
}

TEST_CASE("chat_template: chatml() is the fixture's built-in template") {
  const auto cases = load_fixture("chat_template.json");
  bool found = false;
  for (const auto& c : cases) {
    if (c.name() != "chatml_builtin") continue;
    found = true;
    CHECK(std::string(model::hf_chat_template::chatml_source()) ==
          c.config().at("template").get<std::string>());
    const auto msgs = messages_of(c.j.at("inputs").at("conversations")[0]);
    CHECK(model::hf_chat_template::chatml().render(msgs, true) ==
          c.j.at("outputs").at("rendered")[0][1].at("text").get<std::string>());
  }
  CHECK(found);
}

TEST_CASE("chat_template: unsupported constructs are config_errors naming them") {
  const std::vector<std::pair<std::string, std::string>> refused{
      {"{% macro m() %}{% endmacro %}", "'{% macro %}'"},
      {"{% raw %}x{% endraw %}", "'{% raw %}'"},
      {"{% for m in messages %}{% break %}{% endfor %}", "'{% break %}'"},
      {"{% generation %}x{% endgeneration %}", "'{% generation %}'"},
      {"{{ x | tojson }}", "'| tojson'"},
      {"{{ 2 * 3 }}", "'*'"},
      {"{{ 6 / 3 }}", "'/'"},
      {"{{ 2 ** 3 }}", "'**'"},
      {"{{ 1.5 }}", "'float literal'"},
      {"{{ {'a': 1} }}", "'{...}'"},
      {"{{ (1, 2) }}", "','"},
      {"{{ range(3) }}", "'range()'"},
      {"{{ strftime_now('%Y') }}", "'strftime_now()'"},
      {"{% set ns = namespace(a=1) %}", "'namespace()'"},
      {"{% set ns.a = 1 %}", "'set a.b = ...'"},
      {"{% set x %}a{% endset %}", "'{% set name %}...{% endset %}'"},
      {"{% for a, b in x %}{% endfor %}", "'for a, b in ...'"},
      {"{% for m in messages if m %}{% endfor %}", "'for ... if ...'"},
      {"{{ x is divisibleby 3 }}", "'is divisibleby'"},
      {"{{ x is defined 3 }}", "'is defined <argument>'"},
      {"{{ m.items }}", "'.items'"},
      {"{{ m.content.split() }}", "'.split()'"},
      {"{{ m.content.strip('x') }}", "'.strip() with 1 arguments'"},
      {"{{ x | default(d=1) }}", "'| default(d=...)'"},
      {"{{ messages[1:2:1] }}", "'[a:b:step]'"},
      {"{{ raise_exception }}", "'raise_exception'"},
      {"{{ x.__class__ }}", "'.__class__'"},
  };
  for (const auto& [source, construct] : refused) {
    CAPTURE(source);
    const auto msg = parse_error(source);
    CAPTURE(msg);
    CHECK(contains(msg, "chat_template: test:1:"));
    CHECK(contains(msg, "unsupported Jinja construct " + construct));
  }
  // Syntax errors are config_errors with a position too.
  const auto e1 = parse_error("a\n{% if x %}b");
  CHECK(contains(e1, "test:"));
  CHECK(contains(e1, "endif"));
  CHECK(contains(parse_error("x\n  {{ 'a' "), "test:2:3: unclosed '{{'"));
  CHECK(contains(parse_error("{# c"), "unclosed comment"));
  CHECK(contains(parse_error("{% endfor %}"), "unexpected '{% endfor %}'"));
  CHECK(contains(parse_error("{{ }}"), "expected an expression"));
}

TEST_CASE("chat_template: value-dependent cases outside the subset are data_errors") {
  CHECK(contains(render_error("{{ [1, 2] }}"), "printing a list"));
  CHECK(contains(render_error("{{ x.y }}"), "'x' is undefined"));
  CHECK(contains(render_error("{{ 'a' + x }}"), "'x' is undefined"));
  CHECK(contains(render_error("{{ 1 + 'a' }}"), "'+' between a int and a string"));
  CHECK(contains(render_error("{{ messages[0].content[0] }}"), "subscripting a string"));
  CHECK(contains(render_error("{{ 'É' | lower }}"), "non-ASCII"));
  CHECK(contains(render_error("{{ 1 % 0 }}"), "modulo by zero"));
  CHECK(contains(render_error("{{ 9223372036854775807 + 1 }}"), "integer overflow"));
  CHECK(contains(render_error("{{ -9223372036854775807 - 2 }}"), "integer overflow"));
  CHECK(contains(parse_error("{{ 99999999999999999999 }}"), "out of the 64-bit range"));
  CHECK(contains(render_error("{% for m in messages %}{{ loop.cycle }}{% endfor %}"),
                 "loop.cycle is not supported"));
  CHECK(contains(render_error("{{ raise_exception('no ' ~ messages[0].role) }}"),
                 "hf_chat_template::render: test: raise_exception: no user"));
}

TEST_CASE("chat_template: jinja2 semantics of the subset") {
  // Undefined prints as nothing and is falsy; ~ stringifies; and/or return operands.
  CHECK(render("[{{ nothing }}]{{ 'y' if nothing else 'n' }}{{ 1 ~ true ~ none }}") ==
        "[]n1TrueNone");
  CHECK(render("{{ nothing or 'd' }}{{ 0 and 5 }}{{ -7 % 3 }}{{ 1 < 2 < 3 }}") == "d02True");
  // trim_blocks, lstrip_blocks, and the dropped trailing newline.
  CHECK(render("  {% if true %}\n  x\n  {% endif %}\n") == "  x\n");
  CHECK(render("a\r\nb\r{{ 'c' }}\n") == "a\nb\nc");
  // A set inside a for loop stays in its iteration; one inside an if does not.
  CHECK(render("{% set y = 0 %}{% for m in messages %}{{ y }}{% set y = 5 %}{{ y }}{% endfor %}"
               "{{ y }}{% if true %}{% set y = 7 %}{% endif %}{{ y }}") == "050507");
  CHECK(render("{{ messages[1:] | length }}{{ messages[-1].role }}{{ messages[9] }}|") == "1user|");
  CHECK(render("{{ ' \\u3000x\\u00a0' | trim }}{{ 'é' | length }}{{ '\\x41\\101' }}") == "x1AA");
}

TEST_CASE("chat_template: from_tokenizer_config") {
  const std::vector<model::chat_message> msgs{{"user", "Hi"}, {"assistant", "Yo"}};
  const std::string tpl =
      "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}{{ eos_token }}\n"
      "{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";
  SUBCASE("string template, tokens as strings") {
    const auto p = write_config("string.json", {{"chat_template", tpl},
                                                {"bos_token", "<s>"},
                                                {"eos_token", "</s>"},
                                                {"pad_token", nullptr}});
    const auto t = model::hf_chat_template::from_tokenizer_config(p);
    CHECK(t.bos_token() == "<s>");
    CHECK(t.eos_token() == "</s>");
    CHECK(!t.special_token("pad_token"));
    CHECK(t.render(msgs, true) == "<s>user: Hi</s>\nassistant: Yo</s>\nassistant:");
    CHECK(contains(t.where(), "string.json: chat_template"));
  }
  SUBCASE("list template, tokens as objects") {
    const nlohmann::json list = nlohmann::json::array(
        {{{"name", "tool_use"}, {"template", "{{ tools }}"}},
         {{"name", "default"}, {"template", tpl}}});
    const auto p = write_config(
        "list.json", {{"chat_template", list},
                      {"bos_token", {{"content", "<|begin|>"}, {"lstrip", false}}},
                      {"eos_token", {{"__type", "AddedToken"}, {"content", "<|end|>"}}}});
    auto t = model::hf_chat_template::from_tokenizer_config(p);
    CHECK(t.render(msgs, false) == "<|begin|>user: Hi<|end|>\nassistant: Yo<|end|>\n");
    t.set_bos_token(std::nullopt);
    CHECK(t.render(msgs, false) == "user: Hi<|end|>\nassistant: Yo<|end|>\n");
  }
  SUBCASE("errors") {
    const auto none = write_config("none.json", {{"bos_token", "<s>"}});
    CHECK_THROWS_WITH_AS(model::hf_chat_template::from_tokenizer_config(none),
                         doctest::Contains("has no \"chat_template\""), rlhf::config_error);
    const auto nodefault = write_config(
        "nodefault.json",
        {{"chat_template", nlohmann::json::array({{{"name", "rag"}, {"template", "x"}}})}});
    CHECK_THROWS_WITH_AS(model::hf_chat_template::from_tokenizer_config(nodefault),
                         doctest::Contains("no template named \"default\" (names: rag)"),
                         rlhf::config_error);
    const auto bad = write_config("bad.json", {{"chat_template", "{{ 2 * 3 }}"}});
    CHECK_THROWS_WITH_AS(model::hf_chat_template::from_tokenizer_config(bad),
                         doctest::Contains("bad.json: chat_template:1:6: unsupported Jinja "
                                           "construct '*'"),
                         rlhf::config_error);
    CHECK_THROWS_AS(model::hf_chat_template::from_tokenizer_config(
                        fs::temp_directory_path() / "rlhf_test_chat_template" / "missing.json"),
                    rlhf::io_error);
  }
}

TEST_CASE("chat_template: nesting deeper than the limit is refused, not a stack overflow") {
  const std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  CHECK(contains(parse_error(deep), "nested deeper than"));
  std::string blocks;
  for (int i = 0; i < 1000; ++i) blocks += "{% if true %}";
  CHECK(contains(parse_error(blocks), "nested deeper than"));
  CHECK(contains(parse_error("{{ " + std::string(3000, '-') + "1 }}"), "nested deeper than"));
  std::string nots;
  for (int i = 0; i < 3000; ++i) nots += "not ";
  CHECK(contains(parse_error("{{ " + nots + "x }}"), "nested deeper than"));
  CHECK(render("{{ ((((1)))) }}{{ not not not false }}") == "1True");
}

TEST_CASE("prompt_markers: the text around one user message, or an error naming the template") {
  const auto chatml = model::prompt_markers(model::hf_chat_template::chatml());
  CHECK(chatml.user_prefix == "<|im_start|>user\n");
  CHECK(chatml.assistant_prefix == "<|im_end|>\n<|im_start|>assistant\n");
  CHECK_FALSE(chatml.add_bos);
  CHECK(chatml.add_eos);
  // A default system turn and the BOS text belong to the prefix.
  auto sys = model::hf_chat_template::parse(
      "{{ bos_token }}{% if messages[0]['role'] != 'system' %}<s>be brief</s>{% endif %}"
      "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
      "{% if add_generation_prompt %}[assistant] {% endif %}",
      "sys");
  sys.set_bos_token("<B>");
  const auto m = model::prompt_markers(sys);
  CHECK(m.user_prefix == "<B><s>be brief</s>[user] ");
  CHECK(m.assistant_prefix == "\n[assistant] ");
  CHECK(m.prompt_text("hi") == "<B><s>be brief</s>[user] hi\n[assistant] ");
  // A template that rewrites the content (or prints it twice) cannot give markers.
  for (const char* src :
       {"{% for m in messages %}{{ m['content'] | upper }}{% endfor %}",
        "{% for m in messages %}{{ m['content'] }}{{ m['content'] }}{% endfor %}"}) {
    CAPTURE(src);
    CHECK_THROWS_WITH_AS((void)model::prompt_markers(model::hf_chat_template::parse(src, "bad")),
                         doctest::Contains("prompt_markers: bad: the template does not put"),
                         rlhf::config_error);
  }
}

}  // namespace test_chat_template_cases
