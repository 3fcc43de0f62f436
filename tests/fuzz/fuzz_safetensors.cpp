// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: rlhf::model::load_safetensors on arbitrary bytes.
// Expected outcomes: a safetensors_file, or an rlhf::error (io_error). Anything else is a
// finding: a sanitizer report, a crash, or another exception escaping (std::terminate).
#include <cstddef>
#include <cstdint>

#include "fuzz_input_file.hpp"
#include "rlhf/model/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const rlhf_fuzz::input_file file("safetensors", ".safetensors");
  const auto& path = file.write(data, size);
  try {
    const rlhf::model::safetensors_file f = rlhf::model::load_safetensors(path);
    // Touch what was loaded: every tensor's values must match its shape and dtype.
    for (const auto& t : f.tensors) {
      const auto n = static_cast<std::size_t>(t.shape.numel());
      const auto have = t.dtype != rlhf::model::tensor_dtype::i32 ? t.data.size()
                                                                  : t.int_data.size();
      if (have != n) __builtin_trap();
      (void)rlhf::model::check_tensor(f, t.name, t.shape);
    }
  } catch (const rlhf::error&) {
    // A typed rejection of bad input: expected.
  }
  return 0;
}
