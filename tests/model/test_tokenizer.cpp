// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::model tokenizer, chat template and batch padding (docs/model.md, "Tokenizer").
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/ops/tensor.hpp"

namespace test_tokenizer_cases {

namespace m = rlhf::model;
using ids_t = std::vector<std::int32_t>;

namespace {

// Another tokenizer plugging in: lower-case letters are ids 0..25, anything else is 26;
// specials 27..29.
struct letter_tokenizer {
  [[nodiscard]] std::vector<std::int32_t> encode(std::string_view s) const {
    std::vector<std::int32_t> out;
    for (char c : s) out.push_back(c >= 'a' && c <= 'z' ? std::int32_t{c - 'a'} : 26);
    return out;
  }
  [[nodiscard]] std::string decode(std::span<const std::int32_t> ids) const {
    std::string s;
    for (auto id : ids) {
      if (id < 26) s.push_back(static_cast<char>('a' + id));
      else if (id == 26) s.push_back('?');
    }
    return s;
  }
  [[nodiscard]] std::int32_t vocab_size() const { return 30; }
  [[nodiscard]] std::int32_t bos_id() const { return 27; }
  [[nodiscard]] std::int32_t eos_id() const { return 28; }
  [[nodiscard]] std::int32_t pad_id() const { return 29; }
};
static_assert(m::tokenizer<letter_tokenizer>);
static_assert(!m::tokenizer<int>);

}  // namespace

TEST_CASE("byte_tokenizer: ids, specials and vocabulary") {
  m::byte_tokenizer tok;
  CHECK(tok.vocab_size() == 259);
  CHECK(tok.bos_id() == 256);
  CHECK(tok.eos_id() == 257);
  CHECK(tok.pad_id() == 258);
  CHECK(m::byte_tokenizer::is_special(256));
  CHECK_FALSE(m::byte_tokenizer::is_special(255));
  CHECK_FALSE(m::byte_tokenizer::is_special(259));
}

TEST_CASE("byte_tokenizer: every byte round trips") {
  m::byte_tokenizer tok;
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(static_cast<unsigned char>(b)));
  const auto ids = tok.encode(all);
  REQUIRE(ids.size() == 256);
  for (int b = 0; b < 256; ++b) CHECK(ids[static_cast<std::size_t>(b)] == b);
  CHECK(tok.decode(ids) == all);

  const std::string utf8 = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";  // héllo € 😀
  const auto u = tok.encode(utf8);
  CHECK(u.size() == utf8.size());
  CHECK(u[1] == 0xC3);
  CHECK(tok.decode(u) == utf8);
  CHECK(tok.encode("").empty());
  CHECK(tok.decode(ids_t{}).empty());
}

TEST_CASE("byte_tokenizer: decode drops or renders specials, rejects bad ids") {
  m::byte_tokenizer tok;
  const ids_t ids{256, 'h', 'i', 257, 258, 258};
  CHECK(tok.decode(ids) == "hi");
  CHECK(tok.decode(ids, {.render_specials = true}) == "<|bos|>hi<|eos|><|pad|><|pad|>");
  CHECK_THROWS_AS((void)tok.decode(ids_t{'a', 259}), rlhf::data_error);
  CHECK_THROWS_WITH_AS((void)tok.decode(ids_t{'a', 'b', -1}),
                       "byte_tokenizer::decode: id at position 2 must be in [0, 259), got -1",
                       rlhf::data_error);
}

TEST_CASE("chat_template: exact text, ids and completion mask") {
  m::byte_tokenizer tok;
  m::chat_template tpl;
  CHECK(tpl.prompt_text("What is 2+2?") == "<|user|>\nWhat is 2+2?\n<|assistant|>\n");

  const auto r = tpl.render(tok, "hi", "ok!");
  const std::string prompt_part = "<|user|>\nhi\n<|assistant|>\n";
  REQUIRE(r.prompt_length == prompt_part.size());
  REQUIRE(r.ids.size() == prompt_part.size() + 3 + 1);
  REQUIRE(r.completion_mask.size() == r.ids.size());
  CHECK(tok.decode(r.ids) == prompt_part + "ok!");
  CHECK(tok.decode(r.ids, {.render_specials = true}) == prompt_part + "ok!<|eos|>");
  CHECK(r.ids.back() == tok.eos_id());
  for (std::size_t i = 0; i < r.ids.size(); ++i) {
    CAPTURE(i);
    CHECK(r.completion_mask[i] == (i < prompt_part.size() ? 0.0f : 1.0f));
  }
  // The prompt ids are a prefix of the rendered pair (what generation continues).
  const auto p = tpl.prompt_ids(tok, "hi");
  CHECK(p == ids_t(r.ids.begin(), r.ids.begin() + static_cast<std::ptrdiff_t>(p.size())));

  SUBCASE("empty response: only the EOS is a completion token") {
    const auto e = tpl.render(tok, "hi", "");
    CHECK(e.ids.size() == prompt_part.size() + 1);
    CHECK(e.completion_mask.back() == 1.0f);
    CHECK(e.completion_mask[e.completion_mask.size() - 2] == 0.0f);
  }
  SUBCASE("add_bos puts BOS first, in the prompt part") {
    m::chat_template b;
    b.add_bos = true;
    const auto e = b.render(tok, "hi", "ok!");
    CHECK(e.ids.front() == tok.bos_id());
    CHECK(e.prompt_length == prompt_part.size() + 1);
    CHECK(e.completion_mask[0] == 0.0f);
    CHECK(e.completion_mask[e.prompt_length] == 1.0f);
    CHECK(e.completion_mask[e.prompt_length - 1] == 0.0f);
  }
  SUBCASE("add_eos off") {
    m::chat_template b;
    b.add_eos = false;
    const auto e = b.render(tok, "hi", "ok!");
    CHECK(e.ids.back() == '!');
    CHECK(e.ids.size() == prompt_part.size() + 3);
  }
  SUBCASE("another tokenizer plugs in") {
    letter_tokenizer lt;
    const auto e = tpl.render(lt, "ab", "c");
    CHECK(e.ids.back() == 28);
    CHECK(e.ids[e.prompt_length] == 2);
    CHECK(e.completion_mask[e.prompt_length] == 1.0f);
    CHECK(e.completion_mask[e.prompt_length - 1] == 0.0f);
  }
}

TEST_CASE("pad_batch: right padding") {
  const std::vector<ids_t> seqs{{1, 2, 3}, {4}, {5, 6}};
  const std::vector<std::vector<float>> masks{{0, 1, 1}, {1}, {0, 0}};
  const auto b = m::pad_batch(seqs, 258, m::padding_side::right, masks);
  CHECK(b.shape() == rlhf::shape{3, 3});
  CHECK(b.ids == ids_t{1, 2, 3, 4, 258, 258, 5, 6, 258});
  CHECK(b.attention_mask == std::vector<float>{1, 1, 1, 1, 0, 0, 1, 1, 0});
  CHECK(b.completion_mask == std::vector<float>{0, 1, 1, 1, 0, 0, 0, 0, 0});
  CHECK(b.lengths == std::vector<rlhf::index_t>{3, 1, 2});
  CHECK(b.first_token(1) == 0);
  CHECK(b.last_token(0) == 2);
  CHECK(b.last_token(1) == 0);
  CHECK(b.last_token(2) == 1);
}

TEST_CASE("pad_batch: left padding, explicit length, no masks") {
  const std::vector<ids_t> seqs{{1, 2, 3}, {4}, {}};
  const auto b = m::pad_batch(seqs, 9, m::padding_side::left, {}, 4);
  CHECK(b.shape() == rlhf::shape{3, 4});
  CHECK(b.ids == ids_t{9, 1, 2, 3, 9, 9, 9, 4, 9, 9, 9, 9});
  CHECK(b.attention_mask == std::vector<float>{0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0});
  CHECK(b.completion_mask == std::vector<float>(12, 0.0f));
  CHECK(b.first_token(0) == 1);
  CHECK(b.first_token(1) == 3);
  CHECK(b.last_token(0) == 3);
  CHECK(b.last_token(1) == 3);
  CHECK(b.last_token(2) == -1);
}

TEST_CASE("pad_batch: chat pairs on both sides keep the mask on the response") {
  m::byte_tokenizer tok;
  m::chat_template tpl;
  const std::vector<m::encoded_chat> chats{tpl.render(tok, "a", "xyz"),
                                           tpl.render(tok, "long prompt", "q")};
  for (auto side : {m::padding_side::left, m::padding_side::right}) {
    CAPTURE(static_cast<int>(side));
    const auto b = m::pad_batch(chats, tok.pad_id(), side);
    REQUIRE(b.rows == 2);
    CHECK(b.cols == static_cast<rlhf::index_t>(chats[1].ids.size()));
    for (rlhf::index_t n = 0; n < 2; ++n) {
      const auto& c = chats[static_cast<std::size_t>(n)];
      const rlhf::index_t first = b.first_token(n);
      float ones = 0;
      for (rlhf::index_t t = 0; t < b.cols; ++t) {
        const auto k = static_cast<std::size_t>(n * b.cols + t);
        const bool real = t >= first && t < first + static_cast<rlhf::index_t>(c.ids.size());
        CHECK(b.attention_mask[k] == (real ? 1.0f : 0.0f));
        if (!real) {
          CHECK(b.ids[k] == tok.pad_id());
          CHECK(b.completion_mask[k] == 0.0f);
        } else {
          const auto i = static_cast<std::size_t>(t - first);
          CHECK(b.ids[k] == c.ids[i]);
          CHECK(b.completion_mask[k] == c.completion_mask[i]);
        }
        ones += b.completion_mask[k];
      }
      // response + EOS
      CHECK(ones == static_cast<float>(c.ids.size() - c.prompt_length));
      CHECK(b.ids[static_cast<std::size_t>(n * b.cols + b.last_token(n))] == tok.eos_id());
    }
  }
}

TEST_CASE("pad_batch: the host vectors feed the log-prob op of a backend") {
  using B = rlhf::eigen_backend;
  m::byte_tokenizer tok;
  m::chat_template tpl;
  const std::vector<m::encoded_chat> chats{tpl.render(tok, "a", "xy"), tpl.render(tok, "bb", "z")};
  const auto b = m::pad_batch(chats, tok.pad_id(), m::padding_side::right);
  const auto tokens = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(b.ids), b.shape());
  const auto mask = rlhf::ops::from_host<B>(std::span<const float>(b.completion_mask), b.shape());
  CHECK(tokens.shape() == rlhf::shape{2, b.cols});
  CHECK(mask.shape() == tokens.shape());
}

TEST_CASE("pad_batch: bad input") {
  const std::vector<ids_t> none;
  CHECK_THROWS_WITH_AS((void)m::pad_batch(none, 0), "pad_batch: batch is empty",
                       rlhf::shape_error);
  const std::vector<ids_t> seqs{{1, 2, 3}, {4}};
  CHECK_THROWS_WITH_AS((void)m::pad_batch(seqs, 0, m::padding_side::right, {}, 2),
                       "pad_batch: sequence 0 has 3 tokens, more than the padded length 2",
                       rlhf::shape_error);
  const std::vector<std::vector<float>> one{{0, 1, 1}};
  CHECK_THROWS_AS((void)m::pad_batch(seqs, 0, m::padding_side::right, one), rlhf::shape_error);
  const std::vector<std::vector<float>> wrong{{0, 1, 1}, {1, 1}};
  CHECK_THROWS_WITH_AS((void)m::pad_batch(seqs, 0, m::padding_side::right, wrong),
                       "pad_batch: completion_masks[1] has 2 values, sequence 1 has 1 tokens",
                       rlhf::shape_error);
}

TEST_CASE("padded_batch: first_token/last_token of a row outside the batch are shape_errors") {
  const std::vector<ids_t> one_row{{7, 8}};
  for (auto side : {m::padding_side::right, m::padding_side::left}) {
    const auto b = m::pad_batch(one_row, 0, side, {}, 4);
    CHECK(b.last_token(0) == (side == m::padding_side::left ? 3 : 1));
    // Row 5 of a 1-row batch read past `lengths` before.
    CHECK_THROWS_WITH_AS((void)b.last_token(5),
                         "padded_batch::last_token: n = 5 is not a row of the batch [0, 1)",
                         rlhf::shape_error);
    CHECK_THROWS_AS((void)b.last_token(-1), rlhf::shape_error);
    CHECK_THROWS_WITH_AS((void)b.first_token(1),
                         doctest::Contains("padded_batch::first_token: n = 1"), rlhf::shape_error);
  }
}

TEST_CASE("pad_batch: a padded size that overflows is a shape_error, not a wrapped buffer") {
  // 4 rows of 2^62 columns: rows * cols wraps to 0 in int64, so the buffers came out empty
  // and the rows were written out of bounds.
  const std::vector<ids_t> seqs{{1}, {2}, {3}, {4}};
  CHECK_THROWS_AS((void)m::pad_batch(seqs, 0, m::padding_side::right, {}, rlhf::index_t{1} << 62),
                  rlhf::shape_error);
}

}  // namespace test_tokenizer_cases
