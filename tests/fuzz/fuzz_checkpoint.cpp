// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: rlhf::model::load_checkpoint into a tiny gpt<eigen_backend> on
// arbitrary bytes. Each input is loaded twice: with a value head and AdamW state (the full
// path: heads metadata, optimizer tensors and step), then the trunk alone with extra tensors
// allowed. Expected outcomes: success or an rlhf::error; anything else is a finding.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_input_file.hpp"
#include "rlhf/backends/eigen.hpp"
#include "rlhf/model/checkpoint.hpp"
#include "tiny_model.hpp"

namespace {

using B = rlhf::eigen_backend;

struct models {
  rlhf::model::gpt<B> m{rlhf_fuzz::tiny_config()};
  rlhf::model::adamw<B> opt{m.num_params()};
  rlhf::model::scalar_head<B> head{rlhf_fuzz::tiny_config().n_embd, rlhf_fuzz::head_prefix};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const rlhf_fuzz::input_file file("checkpoint", ".safetensors");
  static models s;
  const auto& path = file.write(data, size);
  try {
    std::vector<rlhf::model::scalar_head<B>*> heads{&s.head};
    (void)rlhf::model::load_checkpoint<B>(path, s.m, heads, &s.opt);
  } catch (const rlhf::error&) {
    // A typed rejection of bad input: expected.
  }
  try {
    rlhf::model::checkpoint_load_options options;
    options.allow_extra_tensors = true;
    (void)rlhf::model::load_checkpoint<B>(path, s.m, nullptr, options);
  } catch (const rlhf::error&) {
  }
  return 0;
}
