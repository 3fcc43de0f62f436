// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: rlhf::model::load_config on arbitrary bytes, read both ways it reads a
// file: as a ".json" config object and as a safetensors checkpoint (its header's "config"
// metadata). Expected outcomes: a validated gpt_config or an rlhf::error; anything else is
// a finding.
#include <cstddef>
#include <cstdint>

#include "fuzz_input_file.hpp"
#include "rlhf/model/checkpoint.hpp"

namespace {

void load(const std::filesystem::path& path) {
  try {
    const rlhf::model::gpt_config c = rlhf::model::load_config(path);
    // What load_config returns has passed validate(): its derived sizes must be sane.
    if (c.vocab_size <= 0 || c.n_embd <= 0 || c.n_head <= 0 ||
        c.padded_vocab_size() < c.vocab_size) {
      __builtin_trap();
    }
  } catch (const rlhf::error&) {
    // A typed rejection of bad input: expected.
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const rlhf_fuzz::input_file json("config", ".json");
  static const rlhf_fuzz::input_file checkpoint("config", ".safetensors");
  load(json.write(data, size));
  load(checkpoint.write(data, size));
  return 0;
}
