// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The byte-level BPE tokenizer (rlhf/model/bpe_tokenizer.hpp) against Hugging Face
// `tokenizers` itself (tools/reference/bpe_tokenizer.py): every corpus string encodes to the
// ids `tokenizers` gives and decodes to its text, for the trained tokenizer.json and four
// pre-tokenizer variants (two of them Llama 3's and Qwen2's Split + ByteLevel, Qwen2's with
// NFC); GPT-2's vocab.json + merges.txt give the same ids; unsupported
// fields are config_errors naming them; invalid UTF-8 and random bytes encode and round trip.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "rlhf/model/any_tokenizer.hpp"
#include "rlhf/model/bpe_tokenizer.hpp"

namespace test_bpe_tokenizer_cases {

using namespace rlhf_test;
namespace model = rlhf::model;
namespace fs = std::filesystem;

namespace {

const fs::path tiny = fs::path(RLHF_FIXTURE_DIR) / "bpe_tokenizer_tiny";

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

nlohmann::json tokenizer_json() { return nlohmann::json::parse(read_all(tiny / "tokenizer.json")); }

model::bpe_tokenizer variant(const std::string& name) {
  auto j = tokenizer_json();
  if (name == "prefix_space") j["pre_tokenizer"]["add_prefix_space"] = true;
  if (name == "no_regex") j["pre_tokenizer"]["use_regex"] = false;
  if (name == "llama3_split" || name == "qwen2_split") {
    const std::string_view pattern = name == "llama3_split" ? model::bpe_detail::llama3_pattern
                                                            : model::bpe_detail::qwen2_pattern;
    j["pre_tokenizer"] = {
        {"type", "Sequence"},
        {"pretokenizers", nlohmann::json::array({{{"type", "Split"},
                                                  {"pattern", {{"Regex", std::string(pattern)}}},
                                                  {"behavior", "Isolated"},
                                                  {"invert", false}},
                                                 {{"type", "ByteLevel"},
                                                  {"add_prefix_space", false},
                                                  {"trim_offsets", false},
                                                  {"use_regex", false}}})}};
    if (name == "qwen2_split") j["normalizer"] = {{"type", "NFC"}};
  }
  return model::bpe_tokenizer::from_json(j.dump());
}

/// The config_error message of loading `j`, or "" when it loads.
std::string error_of(const nlohmann::json& j) {
  try {
    (void)model::bpe_tokenizer::from_json(j.dump());
  } catch (const rlhf::config_error& e) {
    return e.what();
  }
  return {};
}

bool valid_utf8(const std::string& s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = model::bpe_detail::next_char(s, i);
    if (!c.valid) return false;
    i += c.len;
  }
  return true;
}

}  // namespace

TEST_CASE("bpe_tokenizer: encode and decode match tokenizers on the corpus") {
  const auto cases = load_fixture("bpe_tokenizer.json");
  REQUIRE(cases.size() == 5);
  for (const auto& c : cases) {
    const auto tok = variant(c.config().at("variant").get<std::string>());
    CAPTURE(c.name());
    CHECK(tok.vocab_size() == c.config().at("vocab_size").get<std::int32_t>());
    const auto texts = c.j.at("inputs").at("texts").get<std::vector<std::string>>();
    const auto ids = c.j.at("outputs").at("ids").get<std::vector<std::vector<std::int32_t>>>();
    const auto decoded = c.j.at("outputs").at("decoded").get<std::vector<std::string>>();
    REQUIRE(texts.size() == ids.size());
    std::size_t matched = 0;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      CAPTURE(texts[i]);
      const auto got = tok.encode(texts[i]);
      CHECK(got == ids[i]);
      CHECK(tok.decode(ids[i]) == decoded[i]);
      if (got == ids[i]) ++matched;
    }
    MESSAGE(c.name() << ": " << matched << "/" << texts.size() << " strings match tokenizers");
  }
}

TEST_CASE("bpe_tokenizer: decode(encode(s)) == s without strip flags in play") {
  const auto tok = model::bpe_tokenizer::from_file(tiny / "tokenizer.json");
  const auto texts = load_fixture("bpe_tokenizer.json")[0]
                         .j.at("inputs")
                         .at("texts")
                         .get<std::vector<std::string>>();
  for (const auto& s : texts) {
    if (s.find("<mask>") != std::string::npos || s.find("rlhf++") != std::string::npos) continue;
    CAPTURE(s);
    CHECK(tok.decode(tok.encode(s)) == s);
  }
  // Specials: ids and skipping.
  CHECK(tok.eos_id() == 0);
  CHECK(tok.bos_id() == 0);
  CHECK(tok.pad_id() == 0);
  CHECK(tok.is_special(0));
  CHECK_FALSE(tok.is_special(601));
  const auto ids = tok.encode("hi<|im_end|>");
  CHECK(tok.decode(ids, /*skip_special=*/true) == "hi");
  CHECK(tok.token_to_id("<|im_start|>") == 1);
  CHECK(tok.id_to_token(600) == "<mask>");
  CHECK_THROWS_AS((void)tok.decode(std::vector<std::int32_t>{5, 602}), rlhf::data_error);
  CHECK_THROWS_AS((void)tok.decode(std::vector<std::int32_t>{-1}), rlhf::data_error);
}

TEST_CASE("bpe_tokenizer: vocab.json + merges.txt give the same ids") {
  const auto from_json = model::bpe_tokenizer::from_file(tiny / "tokenizer.json");
  const auto gpt2 = model::bpe_tokenizer::from_gpt2_files(
      tiny / "vocab.json", tiny / "merges.txt", {"<|endoftext|>", "<|im_start|>", "<|im_end|>"});
  const auto texts = load_fixture("bpe_tokenizer.json")[0]
                         .j.at("inputs")
                         .at("texts")
                         .get<std::vector<std::string>>();
  std::size_t compared = 0;
  for (const auto& s : texts) {
    // <mask> and rlhf++ are added after training: not in vocab.json.
    if (s.find("<mask>") != std::string::npos || s.find("rlhf++") != std::string::npos) continue;
    CAPTURE(s);
    CHECK(gpt2.encode(s) == from_json.encode(s));
    ++compared;
  }
  CHECK(compared >= 30);
  CHECK(gpt2.eos_id() == 0);
  CHECK(gpt2.vocab_size() == 600);
  // Only <|endoftext|> is special by default: <|im_start|> is then plain text.
  const auto plain = model::bpe_tokenizer::from_gpt2_files(tiny / "vocab.json",
                                                           tiny / "merges.txt");
  CHECK(plain.encode("<|im_start|>").size() > 1);
  CHECK(plain.encode("<|endoftext|>") == std::vector<std::int32_t>{0});
}

TEST_CASE("bpe_tokenizer: special token names") {
  const auto j = tokenizer_json();
  const auto t = model::bpe_tokenizer::from_json(j.dump(), {"<|im_start|>", "<|im_end|>", ""});
  CHECK(t.bos_id() == 1);
  CHECK(t.eos_id() == 2);
  CHECK(t.pad_id() == 2);
  CHECK_THROWS_WITH_AS((void)model::bpe_tokenizer::from_json(j.dump(), {"", "<nope>", ""}),
                       doctest::Contains("EOS token '<nope>'"), rlhf::config_error);
  // tokenizer_config.json beside tokenizer.json names them.
  const fs::path dir = fs::temp_directory_path() / "rlhf_bpe_cfg_test";
  fs::create_directories(dir);
  fs::copy_file(tiny / "tokenizer.json", dir / "tokenizer.json",
                fs::copy_options::overwrite_existing);
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}, "pad_token": null})";
  const auto c = model::bpe_tokenizer::from_file(dir / "tokenizer.json");
  CHECK(c.bos_id() == 1);
  CHECK(c.eos_id() == 2);
  CHECK(c.pad_id() == 2);
  fs::remove_all(dir);
  CHECK_THROWS_AS((void)model::bpe_tokenizer::from_file(tiny / "missing.json"), rlhf::io_error);
}

TEST_CASE("bpe_tokenizer: unsupported fields are config_errors naming them") {
  const auto base = tokenizer_json();
  const auto with = [&](auto edit) {
    auto j = base;
    edit(j);
    return error_of(j);
  };
  CHECK(error_of(base).empty());
  using J = nlohmann::json;
  CHECK(with([](J& j) { j["model"]["type"] = "WordPiece"; }).find("'model.type'") !=
        std::string::npos);
  CHECK(with([](J& j) { j["model"]["dropout"] = 0.1; }).find("'model.dropout'") !=
        std::string::npos);
  CHECK(with([](J& j) { j["model"]["byte_fallback"] = true; }).find("'model.byte_fallback'") !=
        std::string::npos);
  CHECK(with([](J& j) {
          j["model"]["continuing_subword_prefix"] = "##";
        }).find("'model.continuing_subword_prefix'") != std::string::npos);
  CHECK(with([](J& j) {
          j["normalizer"] = {{"type", "NFKC"}};
        }).find("'normalizer'") != std::string::npos);
  CHECK(with([](J& j) { j["normalizer"] = {{"type", "NFC"}}; }).empty());
  CHECK(with([](J& j) {
          j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", J::array()}};
        }).find("pre-tokenizer 'Sequence'") != std::string::npos);
  // Sequence [Split, ByteLevel]: only Llama 3's and Qwen2's regexes, Isolated, not inverted,
  // a ByteLevel without prefix space or regex.
  const J split_seq = {
      {"type", "Sequence"},
      {"pretokenizers",
       J::array({{{"type", "Split"},
                  {"pattern", {{"Regex", std::string(model::bpe_detail::qwen2_pattern)}}},
                  {"behavior", "Isolated"},
                  {"invert", false}},
                 {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}})}};
  const auto with_split = [&](auto edit) {
    return with([&](J& j) {
      j["pre_tokenizer"] = split_seq;
      edit(j["pre_tokenizer"]["pretokenizers"]);
    });
  };
  CHECK(with_split([](J&) {}).empty());
  CHECK(with_split([](J& p) {
          p[0]["pattern"]["Regex"] = "\\s+";
        }).find("'pre_tokenizer.pretokenizers[0].pattern'") != std::string::npos);
  CHECK(with_split([](J& p) {
          p[0]["pattern"] = {{"String", " "}};
        }).find("'pre_tokenizer.pretokenizers[0].pattern'") != std::string::npos);
  CHECK(with_split([](J& p) {
          p[0]["behavior"] = "Removed";
        }).find("'pre_tokenizer.pretokenizers[0].behavior'") != std::string::npos);
  CHECK(with_split([](J& p) {
          p[0]["invert"] = true;
        }).find("'pre_tokenizer.pretokenizers[0].invert'") != std::string::npos);
  CHECK(with_split([](J& p) {
          p[1]["add_prefix_space"] = true;
        }).find("'pre_tokenizer.pretokenizers[1].add_prefix_space'") != std::string::npos);
  CHECK(with_split([](J& p) {
          p[1]["use_regex"] = true;
        }).find("'pre_tokenizer.pretokenizers[1].use_regex'") != std::string::npos);
  CHECK(with_split([](J& p) { p.erase(1); }).find("pre-tokenizer 'Sequence'") != std::string::npos);
  CHECK(with([](J& j) { j["pre_tokenizer"] = nullptr; }).find("'pre_tokenizer'") !=
        std::string::npos);
  CHECK(with([](J& j) {
          j["decoder"] = {{"type", "WordPiece"}};
        }).find("'decoder'") != std::string::npos);
  CHECK(with([](J& j) {
          j["post_processor"] = {{"type", "BertProcessing"}};
        }).find("'post_processor'") != std::string::npos);
  CHECK(with([](J& j) {
          j["truncation"] = {{"max_length", 8}};
        }).find("'truncation'") != std::string::npos);
  CHECK(with([](J& j) { j["padding"] = {{"length", 8}}; }).find("'padding'") != std::string::npos);
  CHECK(with([](J& j) {
          j["added_tokens"][0]["single_word"] = true;
        }).find("'added_tokens[0].single_word'") != std::string::npos);
  CHECK(with([](J& j) { j["model"]["merges"][3] = "a b c"; }).find("'model.merges[3]'") !=
        std::string::npos);
  CHECK(with([](J& j) {
          j["model"]["merges"][4] = J::array({"zzz", "q"});
        }).find("'model.merges[4]'") != std::string::npos);
  CHECK(with([](J& j) { j["model"]["vocab"].erase("a"); }).find("'model.vocab'") !=
        std::string::npos);
  // The "a b" string form of merges gives the same tokenizer as the pair form.
  auto strings = base;
  for (auto& m : strings["model"]["merges"]) {
    m = m[0].get<std::string>() + " " + m[1].get<std::string>();
  }
  const auto a = model::bpe_tokenizer::from_json(base.dump());
  const auto b = model::bpe_tokenizer::from_json(strings.dump());
  CHECK(a.encode("The quick brown fox didn't") == b.encode("The quick brown fox didn't"));
  // A tokenizer without "<|endoftext|>" needs its EOS named.
  auto no_eot = base;
  no_eot["added_tokens"].erase(0);
  no_eot["model"]["vocab"].erase("<|endoftext|>");
  CHECK(error_of(no_eot).find("no EOS token") != std::string::npos);
}

TEST_CASE("bpe_tokenizer: invalid UTF-8 and random bytes encode and round trip") {
  const auto tok = model::bpe_tokenizer::from_file(tiny / "tokenizer.json");
  const std::vector<std::string> bad = {std::string("\xff"),
                                        std::string("abc\xc3"),
                                        std::string("\xc3("),
                                        std::string("\xe2\x82"),
                                        std::string("\xed\xa0\x80 surrogate"),
                                        std::string("\xc0\xaf overlong"),
                                        std::string("\xf4\x90\x80\x80 too big"),
                                        std::string(" \x80\x81\x82 cont"),
                                        std::string("\0nul\0", 5)};
  for (const auto& s : bad) {
    CAPTURE(s);
    const auto ids = tok.encode(s);
    CHECK(tok.decode(ids) == s);
  }
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> len(0, 40);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> pick(0, 9);
  const std::vector<std::string> pieces = {
      " ", "  ", "\n", "\t", "é", "日本", "🙂", "'s", "7", "ab", "<|endoftext|>", "<|im", "\xff"};
  std::size_t valid = 0;
  for (int n = 0; n < 3000; ++n) {
    std::string s;
    const int l = len(rng);
    for (int i = 0; i < l; ++i) {
      if (pick(rng) < 4) {
        s += static_cast<char>(byte(rng));
      } else {
        s += pieces[static_cast<std::size_t>(byte(rng)) % pieces.size()];
      }
    }
    const auto ids = tok.encode(s);
    for (const auto id : ids) REQUIRE((id >= 0 && id < tok.vocab_size()));
    CAPTURE(s);
    // No strip flags are in play without <mask> / rlhf++: every string round trips.
    CHECK(tok.decode(ids) == s);
    if (valid_utf8(s)) ++valid;
  }
  CHECK(valid > 100);
}

TEST_CASE("bpe_tokenizer: NFC") {
  using model::bpe_detail::nfc;
  CHECK(nfc("plain ascii") == "plain ascii");
  CHECK(nfc("e\u0301") == "\u00e9");
  CHECK(nfc("\u00e9") == "\u00e9");
  CHECK(nfc("\u212b") == "\u00c5");               // singleton decomposition
  CHECK(nfc("a\u0307\u0323") == "\u1ea1\u0307");  // reordered, then composed
  CHECK(nfc("\u1100\u1161\u11a8") == "\uac01");   // Hangul L V T
  CHECK(nfc("\uac00\u11a8") == "\uac01");         // Hangul LV T
  CHECK(nfc("\u0958") == "\u0915\u093c");         // composition exclusion
  CHECK(nfc("\u0301a") == "\u0301a");             // leading non-starter
  CHECK(nfc("\ufb01") == "\ufb01");               // compatibility: unchanged
  // Invalid bytes stay and block composition.
  CHECK(nfc(std::string("e\xff\xcc\x81")) == std::string("e\xff\xcc\x81"));
  CHECK(nfc(std::string("\xff\xc3")) == std::string("\xff\xc3"));
}

TEST_CASE("bpe_tokenizer: the Split variants round trip random text") {
  for (const char* name : {"llama3_split", "qwen2_split"}) {
    const auto tok = variant(name);
    std::mt19937 rng(11);
    std::uniform_int_distribution<int> len(0, 30);
    std::uniform_int_distribution<int> pick(0, 255);
    const std::vector<std::string> pieces = {
        " ",      "  ",          "\n", "\r\n", "\t", "é",  "日本",          "🙂",
        "'s",     "'LL",         "7",  "123",  "ab", "!!", "<|endoftext|>", "\xff",
        "\u0301", "\u1100\u1161"};
    for (int n = 0; n < 1000; ++n) {
      std::string s;
      const int l = len(rng);
      for (int i = 0; i < l; ++i) s += pieces[static_cast<std::size_t>(pick(rng)) % pieces.size()];
      const auto ids = tok.encode(s);
      CAPTURE(s);
      if (std::string(name) == "llama3_split") {
        CHECK(tok.decode(ids) == s);
      } else {
        CHECK(tok.decode(ids) == model::bpe_detail::nfc(s));
      }
    }
  }
}

TEST_CASE("bpe_tokenizer: models the tokenizer concept for the chat template") {
  const auto tok = model::bpe_tokenizer::from_file(tiny / "tokenizer.json");
  static_assert(model::tokenizer<model::bpe_tokenizer>);
  const model::chat_template tmpl;
  const auto r = tmpl.render(tok, "Hello there!", "Hi!");
  REQUIRE(!r.ids.empty());
  CHECK(r.ids.back() == tok.eos_id());
  CHECK(tok.decode(r.ids) == "<|user|>\nHello there!\n<|assistant|>\nHi!<|endoftext|>");
}

TEST_CASE("any_tokenizer: the byte tokenizer by default, a model folder's BPE on request") {
  const model::any_tokenizer bytes;
  const model::byte_tokenizer b;
  CHECK_FALSE(bytes.is_bpe());
  CHECK(bytes.encode("héllo") == b.encode("héllo"));
  CHECK(bytes.vocab_size() == b.vocab_size());
  CHECK(bytes.eos_id() == b.eos_id());
  CHECK(bytes.pad_id() == b.pad_id());
  const auto folder = std::filesystem::path(RLHF_FIXTURE_DIR) / "bpe_tokenizer_tiny";
  const auto bpe = model::any_tokenizer::from_model_folder(folder);
  const auto direct = model::bpe_tokenizer::from_file(folder / "tokenizer.json");
  CHECK(bpe.is_bpe());
  const std::string text = "<|im_start|>user\nThe quick brown fox, naïve café 🙂<|im_end|>";
  CHECK(bpe.encode(text) == direct.encode(text));
  const auto ids = bpe.encode(text);
  CHECK(bpe.decode(ids) == direct.decode(ids));
  CHECK(bpe.vocab_size() == direct.vocab_size());
  CHECK(bpe.eos_id() == direct.eos_id());
  CHECK(bpe.bos_id() == direct.bos_id());
  CHECK(bpe.pad_id() == direct.pad_id());
  const auto copy = bpe;  // copies share the tables
  CHECK(copy.encode(text) == ids);
  CHECK_THROWS_WITH_AS((void)model::any_tokenizer::from_model_folder(folder / "nowhere"),
                       doctest::Contains("no tokenizer.json (nor vocab.json + merges.txt)"),
                       rlhf::io_error);
}

}  // namespace test_bpe_tokenizer_cases
