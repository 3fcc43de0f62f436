// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <rlhf/data/batcher.hpp>
#include <rlhf/data/dataset.hpp>
#include <rlhf/data/formats.hpp>
#include <rlhf/data/jsonl.hpp>
#include <rlhf/data/tokenize.hpp>
#include <rlhf/model/tokenizer.hpp>

namespace test_data_cases {

namespace fs = std::filesystem;
using namespace rlhf::data;
using rlhf::model::byte_tokenizer;

namespace {

// A scratch directory per process, removed at exit.
struct scratch_dir {
  fs::path dir = fs::temp_directory_path() /
                 ("rlhf_test_data_" + std::to_string(static_cast<unsigned long>(::getpid())));
  scratch_dir() { fs::create_directories(dir); }
  ~scratch_dir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};
const scratch_dir& scratch() {
  static const scratch_dir d;
  return d;
}

fs::path write_file(const std::string& name, const std::string& bytes) {
  const fs::path p = scratch().dir / name;
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

std::vector<example> read_all(const fs::path& p, jsonl_options o = {}) {
  jsonl_dataset d(p, o);
  std::vector<example> out;
  for (std::size_t i = 0; i < d.size(); ++i) out.push_back(d.get(i));
  return out;
}

std::string error_of(const fs::path& p) {
  try {
    (void)read_all(p);
  } catch (const rlhf::data_error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string text_of(const std::vector<std::int32_t>& ids) {
  return byte_tokenizer{}.decode(ids, {.render_specials = true});
}

std::string masked_text(const rlhf::model::encoded_chat& c, float which) {
  std::vector<std::int32_t> ids;
  for (std::size_t i = 0; i < c.ids.size(); ++i) {
    if (c.completion_mask[i] == which) ids.push_back(c.ids[i]);
  }
  return text_of(ids);
}

}  // namespace

TEST_CASE("data formats: standard examples are detected and typed") {
  const auto p = write_file("std.jsonl",
                            "{\"text\": \"hello\"}\n"
                            "{\"prompt\": \"a\", \"completion\": \"b\", \"extra\": 1}\n"
                            "{\"prompt\": \"q\", \"chosen\": \"good\", \"rejected\": \"bad\","
                            " \"margin\": 0.5, \"soft_label\": 0.75}\n"
                            "{\"prompt\": \"q\", \"completion\": \"c\", \"label\": false}\n"
                            "{\"prompt\": \"only\"}\n");
  jsonl_reader r(p);
  nlohmann::json obj;
  std::vector<example> ex;
  while (r.next_object(obj)) ex.push_back(parse_example(obj, r.where()));
  REQUIRE(ex.size() == 5);
  CHECK(ex[0].kind == format::language_modeling);
  CHECK(ex[0].text.text == "hello");
  CHECK(ex[1].kind == format::prompt_completion);
  CHECK(ex[1].completion.text == "b");
  CHECK(ex[2].kind == format::preference);
  CHECK(ex[2].margin == 0.5);
  CHECK(ex[2].soft_label == 0.75);
  CHECK_FALSE(ex[1].soft_label.has_value());
  CHECK_FALSE(ex[2].implicit_prompt);
  CHECK(ex[3].kind == format::unpaired_preference);
  CHECK(ex[3].label == false);
  CHECK(ex[4].kind == format::prompt_only);
  for (const auto& e : ex) CHECK_FALSE(e.conversational);
}

TEST_CASE("data formats: a row with several formats' fields serves each expected format") {
  // As the critique/revision rows: messages (SFT) beside prompt/chosen/rejected (DPO).
  const auto obj = nlohmann::json::parse(
      R"({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
          "prompt": "q", "chosen": "good", "rejected": "bad", "init_response": "bad"})");
  CHECK(parse_example(obj, "x:1").kind == format::language_modeling);
  const auto pref = parse_example(obj, "x:1", format::preference);
  CHECK(pref.kind == format::preference);
  CHECK(pref.chosen.text == "good");
  CHECK(pref.rejected.text == "bad");
  CHECK(pref.prompt.text == "q");
  CHECK(parse_example(obj, "x:1", format::prompt_only).prompt.text == "q");
  CHECK(parse_example(obj, "x:1", format::language_modeling).text.conversational);
  // Without the expected format's fields it is still the detected format's error.
  CHECK_THROWS_WITH_AS((void)parse_example(obj, "x:1", format::unpaired_preference),
                       doctest::Contains("a language_modeling example, expected unpaired"),
                       rlhf::data_error);
}

TEST_CASE("data formats: conversational examples") {
  const std::string u = R"({"role": "user", "content": "hi"})";
  const std::string a = R"({"role": "assistant", "content": "yo"})";
  const std::string b = R"({"role": "assistant", "content": "no"})";
  const auto p = write_file(
      "chat.jsonl", "{\"messages\": [" + u + ", " + a + "]}\n" + "{\"prompt\": [" + u +
                        "], \"completion\": [" + a + "]}\n" + "{\"prompt\": [" + u +
                        "], \"chosen\": [" + a + "], \"rejected\": [" + b + "]}\n" +
                        "{\"chosen\": [" + u + ", " + a + "], \"rejected\": [" + u + ", " + b +
                        "]}\n" + "{\"prompt\": [" + u + "], \"completion\": [" + a +
                        "], \"label\": true}\n" + "{\"prompt\": [" + u + "]}\n");
  jsonl_reader r(p);
  nlohmann::json obj;
  std::vector<example> ex;
  while (r.next_object(obj)) ex.push_back(parse_example(obj, r.where()));
  REQUIRE(ex.size() == 6);
  for (const auto& e : ex) CHECK(e.conversational);
  CHECK(ex[0].kind == format::language_modeling);
  CHECK(ex[0].text.messages.size() == 2);
  CHECK(ex[1].kind == format::prompt_completion);
  CHECK(ex[2].kind == format::preference);
  CHECK(ex[3].kind == format::preference);
  CHECK(ex[3].implicit_prompt);
  REQUIRE(ex[3].prompt.messages.size() == 1);
  CHECK(ex[3].prompt.messages[0] == message{"user", "hi"});
  CHECK(ex[3].chosen.messages == std::vector<message>{{"assistant", "yo"}});
  CHECK(ex[3].rejected.messages == std::vector<message>{{"assistant", "no"}});
  CHECK(ex[4].kind == format::unpaired_preference);
  CHECK(ex[5].kind == format::prompt_only);

  // Rendering: a single pair is exactly chat_template::render.
  const byte_tokenizer tok;
  const rlhf::model::chat_template tmpl;
  const auto pc = tokenize(tok, ex[1]);
  const auto ref = tmpl.render(tok, "hi", "yo");
  CHECK(pc.sequence.ids == ref.ids);
  CHECK(pc.sequence.completion_mask == ref.completion_mask);
  CHECK(pc.sequence.prompt_length == ref.prompt_length);
  const auto pref = tokenize(tok, ex[3]);
  CHECK(pref.chosen.ids == ref.ids);
  CHECK(masked_text(pref.rejected, 1.0f) == "no<|eos|>");
  // LM on messages: all mask 1, multi-turn rendering.
  const auto lm = tokenize(tok, ex[0]);
  CHECK(text_of(lm.sequence.ids) == "<|user|>\nhi\n<|assistant|>\nyo<|eos|>");
  for (float m : lm.sequence.completion_mask) CHECK(m == 1.0f);
  // Prompt only: the generation prompt, all mask 0.
  const auto po = tokenize(tok, ex[5]);
  CHECK(text_of(po.sequence.ids) == "<|user|>\nhi\n<|assistant|>\n");
  for (float m : po.sequence.completion_mask) CHECK(m == 0.0f);
}

TEST_CASE("data formats: multi-turn and system messages") {
  example ex;
  ex.kind = format::prompt_completion;
  ex.conversational = true;
  ex.prompt = content{
      true, {}, {{"system", "be kind"}, {"user", "a"}, {"assistant", "b"}, {"user", "c"}}};
  ex.completion = content{true, {}, {{"assistant", "d"}}};
  const auto t = tokenize(byte_tokenizer{}, ex);
  CHECK(masked_text(t.sequence, 0.0f) ==
        "<|system|>\nbe kind\n<|user|>\na\n<|assistant|>\nb<|eos|><|user|>\nc\n<|assistant|>\n");
  CHECK(masked_text(t.sequence, 1.0f) == "d<|eos|>");
}

TEST_CASE("data formats: implicit prompt on strings") {
  content p, c{false, "Q: sky? A: blue", {}}, r{false, "Q: sky? A: green", {}};
  extract_prompt(p, c, r);
  CHECK(p.text == "Q: sky? A:");
  CHECK(c.text == " blue");
  CHECK(r.text == " green");
  // Never splits a UTF-8 character: "é" is C3 A9, "è" is C3 A8.
  content p2, c2{false, "caf\xC3\xA9", {}}, r2{false, "caf\xC3\xA8", {}};
  extract_prompt(p2, c2, r2);
  CHECK(p2.text == "caf");
  CHECK(c2.text == "\xC3\xA9");
}

TEST_CASE("data errors: raise names file, line and field") {
  const auto p = write_file("bad.jsonl",
                            "{\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"}\n"
                            "\n"
                            "{\"prompt\": \"q\", \"chosen\": 123, \"rejected\": \"b\"}\n");
  const std::string msg = error_of(p);
  CHECK(msg.find("bad.jsonl:3: field 'chosen': expected a string or a list of messages, "
                 "got 123") != std::string::npos);
  CHECK(error_of(write_file("b2.jsonl", "{\"text\": \"x\"}\n{\"text\": [1]}\n"))
            .find("b2.jsonl:2: field 'text': expected a string, got [1]") != std::string::npos);
  CHECK(error_of(write_file("b3.jsonl", "{\"text\": 5}\n")).find("b3.jsonl:1: field 'text'") !=
        std::string::npos);
  CHECK(error_of(write_file("b4.jsonl", "{\"messages\": [{\"role\": \"user\"}]}\n"))
            .find("b4.jsonl:1: field 'messages[0].content' is missing") != std::string::npos);
  CHECK(error_of(write_file("b5.jsonl",
                            "{\"prompt\": \"q\", \"completion\": \"c\", "
                            "\"label\": 1}\n"))
            .find("b5.jsonl:1: field 'label': expected a bool, got 1") != std::string::npos);
  CHECK(error_of(write_file("b6.jsonl", "{\"text\": \"a\"\n"))
            .find("b6.jsonl:1: the line is "
                  "not valid JSON") != std::string::npos);
  CHECK(error_of(write_file("b7.jsonl", "[1, 2]\n")).find("b7.jsonl:1: expected a JSON object") !=
        std::string::npos);
  CHECK(error_of(write_file("b8.jsonl", "{\"text\": \"a\", \"text\": \"b\"}\n"))
            .find("b8.jsonl:1: field '\"text\"' appears twice") != std::string::npos);
  CHECK(error_of(write_file("b9.jsonl", "{\"text\": \"a\"}\n{\"prompt\": \"b\"}\n"))
            .find("b9.jsonl:2: a prompt_only example, expected language_modeling") !=
        std::string::npos);
  CHECK(error_of(write_file("b10.jsonl",
                            "{\"prompt\": \"a\", \"chosen\": [], \"rejected\": "
                            "\"b\"}\n"))
            .find("b10.jsonl:1: field 'chosen' is a list of messages but field 'prompt' is a "
                  "string") != std::string::npos);
  CHECK(error_of(write_file("b11.jsonl", "{\"foo\": 1}\n")).find("b11.jsonl:1: no field") !=
        std::string::npos);
  CHECK(error_of(write_file("b12.jsonl",
                            "{\"chosen\": \"a\", \"rejected\": \"b\", \"margin\": "
                            "\"x\"}\n"))
            .find("b12.jsonl:1: field 'margin': expected a number") != std::string::npos);
  for (const char* bad : {"1.5", "-0.1", "\"0.5\""}) {
    CAPTURE(bad);
    CHECK(error_of(write_file("b13.jsonl", std::string("{\"chosen\": \"a\", \"rejected\": "
                                                       "\"b\", \"soft_label\": ") +
                                               bad + "}\n"))
              .find("b13.jsonl:1: field 'soft_label': expected a number in [0, 1]") !=
          std::string::npos);
  }
}

TEST_CASE("data errors: skip counts bad lines and keeps the first messages") {
  const auto p = write_file("skip.jsonl",
                            "{\"text\": \"a\"}\n"
                            "not json\n"
                            "{\"text\": 7}\n"
                            "{\"text\": \"b\"}\n"
                            "{\"prompt\": \"other format\"}\n"
                            "{\"text\": \"c\"}");
  jsonl_dataset d(p, jsonl_options{.errors = on_error::skip, .max_kept_messages = 2});
  CHECK(d.size() == 3);
  CHECK(d.skipped() == 3);
  REQUIRE(d.messages().size() == 2);
  CHECK(d.messages()[0].find("skip.jsonl:2:") != std::string::npos);
  CHECK(d.messages()[1].find("skip.jsonl:3: field 'text'") != std::string::npos);
  CHECK(d.get(2).text.text == "c");
  CHECK(d.position_of(1).line == 3);  // example 1 is line 4: 3 lines before it
  CHECK(d.position_of(2).line == 5);
}

TEST_CASE("jsonl reader: CRLF, blank lines, over-long lines, positions") {
  const auto p = write_file("crlf.jsonl",
                            "{\"text\": \"a\"}\r\n\r\n   \n{\"text\": \"b\"}\r\n"
                            "{\"text\": \"" +
                                std::string(300, 'x') +
                                "\"}\n"
                                "{\"text\": \"c\"}\r\n");
  jsonl_reader r(p, jsonl_options{.max_line_bytes = 100});
  nlohmann::json obj;
  REQUIRE(r.next_object(obj));
  CHECK(obj["text"] == "a");
  REQUIRE(r.next_object(obj));
  CHECK(obj["text"] == "b");
  CHECK(r.position().line == 4);
  const jsonl_position saved = r.position();
  try {
    (void)r.next_object(obj);
    FAIL("no error for the long line");
  } catch (const rlhf::data_error& e) {
    CHECK(std::string(e.what()).find("crlf.jsonl:5: line is longer than 100 bytes") !=
          std::string::npos);
  }
  REQUIRE(r.next_object(obj));  // reading goes on after the long line
  CHECK(obj["text"] == "c");
  CHECK(r.where() == p.string() + ":6");
  CHECK_FALSE(r.next_object(obj));

  // Restart at a saved position with a skipping reader.
  jsonl_reader r2(p, jsonl_options{.max_line_bytes = 100, .errors = on_error::skip}, saved);
  REQUIRE(r2.next_object(obj));
  CHECK(obj["text"] == "c");
  CHECK(r2.skipped() == 1);
  CHECK(r2.position().line == 6);
  r2.seek({});
  REQUIRE(r2.next_object(obj));
  CHECK(obj["text"] == "a");
  CHECK_THROWS_AS(r2.seek({1u << 20, 0}), rlhf::data_error);
  CHECK_THROWS_AS(jsonl_reader(scratch().dir / "missing.jsonl"), rlhf::io_error);
}

TEST_CASE("tokenize: masks, limits and truncation modes") {
  const byte_tokenizer tok;
  example ex;
  ex.kind = format::prompt_completion;
  ex.prompt.text = "abcdef";
  ex.completion.text = "XYZ";
  auto t = tokenize(tok, ex);
  CHECK(text_of(t.sequence.ids) == "abcdefXYZ<|eos|>");
  CHECK(t.sequence.prompt_length == 6);
  CHECK(masked_text(t.sequence, 1.0f) == "XYZ<|eos|>");

  tokenize_options o;
  o.max_prompt_length = 3;
  o.truncation = truncation_mode::keep_end;
  CHECK(text_of(tokenize(tok, ex, o).sequence.ids) == "defXYZ<|eos|>");
  o.truncation = truncation_mode::keep_start;
  CHECK(text_of(tokenize(tok, ex, o).sequence.ids) == "abcXYZ<|eos|>");
  o = {};
  o.max_completion_length = 2;
  CHECK(text_of(tokenize(tok, ex, o).sequence.ids) == "abcdefXY");
  o = {};
  o.max_length = 5;
  o.truncation = truncation_mode::keep_end;
  t = tokenize(tok, ex, o);
  CHECK(text_of(t.sequence.ids) == "fXYZ<|eos|>");
  CHECK(t.sequence.prompt_length == 1);
  CHECK(t.sequence.completion_mask == std::vector<float>{0, 1, 1, 1, 1});
  o.truncation = truncation_mode::keep_start;
  t = tokenize(tok, ex, o);
  CHECK(text_of(t.sequence.ids) == "abcde");
  CHECK(t.sequence.prompt_length == 5);
  o.template_text = true;
  o.max_length = 0;
  t = tokenize(tok, ex, o);
  CHECK(t.sequence.ids == rlhf::model::chat_template{}.render(tok, "abcdef", "XYZ").ids);

  example lm;
  lm.text.text = "hello";
  o = {};
  o.max_length = 3;
  o.truncation = truncation_mode::keep_start;
  t = tokenize(tok, lm, o);
  CHECK(text_of(t.sequence.ids) == "hel");
  CHECK(t.sequence.completion_mask == std::vector<float>{1, 1, 1});

  example pr;
  pr.kind = format::preference;
  pr.prompt.text = "pp";
  pr.chosen.text = "c";
  pr.rejected.text = "rrr";
  pr.margin = 2.0;
  const std::vector<tokenized_example> b{tokenize(tok, pr), tokenize(tok, pr)};
  const auto pb = collate_preferences(b, tok.pad_id());
  CHECK(pb.chosen.cols == 6);
  CHECK(pb.rejected.cols == 6);
  CHECK(pb.margins == std::vector<float>{2.0f, 2.0f});
  CHECK(pb.chosen.ids[4] == tok.pad_id());
}

TEST_CASE("batcher: seeded, resumable, and a deterministic split") {
  std::vector<std::uint64_t> items(103);
  for (std::uint64_t i = 0; i < items.size(); ++i) items[i] = 1000 + i;
  const batcher_options opt{.batch_size = 10, .seed = 42};
  batcher a(items, opt), b(items, opt);
  std::vector<std::vector<std::uint64_t>> run;
  for (int k = 0; k < 30; ++k) run.push_back(a.next());  // about 3 epochs
  for (int k = 0; k < 30; ++k) CHECK(b.next() == run[static_cast<std::size_t>(k)]);
  CHECK(run[10].size() == 3);  // short last batch of epoch 0
  // Each epoch is a permutation of the items, and epochs differ.
  std::multiset<std::uint64_t> e0, e1;
  for (int k = 0; k < 11; ++k)
    e0.insert(run[static_cast<std::size_t>(k)].begin(), run[static_cast<std::size_t>(k)].end());
  for (int k = 11; k < 22; ++k)
    e1.insert(run[static_cast<std::size_t>(k)].begin(), run[static_cast<std::size_t>(k)].end());
  CHECK(e0 == std::multiset<std::uint64_t>(items.begin(), items.end()));
  CHECK(e1 == e0);
  CHECK(run[0] != run[11]);

  // Resume mid-epoch (epoch 1, after 4 of its batches) on a fresh batcher.
  batcher c(items, opt);
  for (int k = 0; k < 15; ++k) (void)c.next();
  const batcher_state saved = c.state();
  CHECK(saved == batcher_state{1, 40});
  batcher d(items, opt);
  d.restore(saved);
  for (int k = 15; k < 30; ++k) CHECK(d.next() == run[static_cast<std::size_t>(k)]);

  batcher other(items, batcher_options{.batch_size = 10, .seed = 43});
  CHECK(other.next() != run[0]);

  batcher dl(items, batcher_options{.batch_size = 10, .seed = 42, .drop_last = true});
  CHECK(dl.batches_per_epoch() == 10);
  for (int k = 0; k < 25; ++k) CHECK(dl.next().size() == 10);
  CHECK(dl.state().epoch == 2);
  CHECK_THROWS_AS(batcher({}, opt), rlhf::config_error);

  // Pinned values: the order is a function of (seed, epoch) only, on every platform.
  CHECK(epoch_permutation(5, 7, 0) == epoch_permutation(5, 7, 0));
  CHECK(epoch_permutation(5, 7, 0) != epoch_permutation(5, 7, 1));

  const auto s1 = train_eval_split(10000, 5, 0.1);
  const auto s2 = train_eval_split(10000, 5, 0.1);
  CHECK(s1.eval == s2.eval);
  CHECK(s1.train.size() + s1.eval.size() == 10000);
  CHECK(s1.eval.size() > 850);
  CHECK(s1.eval.size() < 1150);
  std::set<std::uint64_t> all(s1.train.begin(), s1.train.end());
  for (auto i : s1.eval) CHECK_FALSE(all.count(i));
  const auto s3 = train_eval_split(20000, 5, 0.1);  // appending keeps the split
  CHECK(std::vector<std::uint64_t>(s3.eval.begin(),
                                   s3.eval.begin() + static_cast<std::ptrdiff_t>(s1.eval.size())) ==
        s1.eval);
  CHECK(train_eval_split(1000, 6, 0.1).eval != s1.eval);
  CHECK_THROWS_AS((void)in_eval_split(0, 0, 1.5), rlhf::config_error);
}

TEST_CASE("dataset: 200k lines streamed, indexed at 8 bytes per example, read by seek") {
  const fs::path p = scratch().dir / "big.jsonl";
  {
    std::ofstream f(p, std::ios::binary);
    for (int i = 0; i < 200000; ++i) {
      f << "{\"prompt\":\"p" << i << "\",\"completion\":\"c" << i << "\"}\n";
    }
  }
  jsonl_dataset d(p);
  REQUIRE(d.size() == 200000);
  CHECK(d.index_bytes() <= 200000 * 8 * 2);  // the offsets vector (capacity slack allowed)
  CHECK(d.get(123456).prompt.text == "p123456");
  CHECK(d.get(0).completion.text == "c0");
  CHECK(d.position_of(199999).line == 199999);

  const auto split = train_eval_split(d.size(), 1, 0.01);
  batcher bt(split.train, batcher_options{.batch_size = 4, .seed = 9});
  const byte_tokenizer tok;
  std::vector<tokenized_example> toks;
  for (auto i : bt.next()) toks.push_back(tokenize(tok, d.get(static_cast<std::size_t>(i))));
  const auto batch = collate(toks, tok.pad_id());
  CHECK(batch.rows == 4);
}

}  // namespace test_data_cases
