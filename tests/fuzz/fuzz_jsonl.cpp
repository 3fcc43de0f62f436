// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: the JSONL data layer on arbitrary bytes. The input is read as a dataset
// file twice: with on_error::skip (every line either indexed or skipped; every indexed
// example must read back and tokenize) and with on_error::raise (an rlhf::error or a
// dataset). Expected outcomes: examples and typed rejections; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <optional>

#include "fuzz_input_file.hpp"
#include "rlhf/data/dataset.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/model/tokenizer.hpp"

namespace {

void check(const rlhf::data::tokenized_example& t) {
  for (const auto* c : {&t.sequence, &t.chosen, &t.rejected}) {
    if (c->ids.size() != c->completion_mask.size() || c->prompt_length > c->ids.size()) {
      __builtin_trap();
    }
    for (const auto id : c->ids) {
      if (id < 0 || id >= rlhf::model::byte_tokenizer::vocab) __builtin_trap();
    }
  }
}

void read(const std::filesystem::path& path, rlhf::data::on_error policy) {
  try {
    // Small limits keep each run short: a 256-byte line limit, a 9-token sequence limit.
    rlhf::data::jsonl_dataset d(path, {.max_line_bytes = 256, .errors = policy});
    const rlhf::model::byte_tokenizer tok;
    rlhf::data::tokenize_options o;
    o.max_prompt_length = 4;
    o.max_length = 9;
    std::uint64_t last = 0;
    for (std::size_t i = 0; i < d.size(); ++i) {
      const auto pos = d.position_of(i);
      if (i > 0 && pos.byte_offset <= last) __builtin_trap();  // offsets ascend
      last = pos.byte_offset;
      // Indexed lines were checked: reading them back must not fail.
      const auto ex = d.get(i);
      if (ex.kind != d.format()) __builtin_trap();
      const auto t = rlhf::data::tokenize(tok, ex, o);
      check(t);
      if (t.sequence.ids.size() > 9 || t.chosen.ids.size() > 9) __builtin_trap();
      check(rlhf::data::tokenize(tok, ex));
    }
  } catch (const rlhf::error&) {
    if (policy == rlhf::data::on_error::skip) {
      // Only the file itself can fail under skip (opening it); lines are skipped.
      __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const rlhf_fuzz::input_file file("jsonl", ".jsonl");
  const auto& path = file.write(data, size);
  read(path, rlhf::data::on_error::skip);
  read(path, rlhf::data::on_error::raise);
  return 0;
}
