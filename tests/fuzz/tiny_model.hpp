// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The tiny GPT shared by the checkpoint fuzz target and the corpus generator: small enough
// that a checkpoint with optimizer state stays a few kilobytes.
#pragma once

#include "rlhf/model/config.hpp"

namespace rlhf_fuzz {

[[nodiscard]] inline rlhf::model::gpt_config tiny_config() {
  rlhf::model::gpt_config c;
  c.vocab_size = 16;
  c.max_seq_len = 4;
  c.n_layer = 1;
  c.n_head = 2;
  c.n_embd = 8;
  c.mlp_ratio = 2;
  c.vocab_multiple = 8;
  c.tie_embeddings = true;
  return c;
}

inline constexpr const char* head_prefix = "v_head";

}  // namespace rlhf_fuzz
