// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// One optimizer step of the bundled GPT on random tokens, shared by bench_model.cpp and
// bench_backends.cpp: gpt_forward → sft_loss (next-token cross-entropy, mask of ones) →
// zero_grads → gpt_backward → AdamW with the decay taken from the parameter ranges.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "rlhf/losses/sft.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/optim.hpp"
#include "rlhf/ops/elementwise.hpp"

namespace bench {

template <class B>
struct train_step {
  using tensor = typename B::tensor;
  rlhf::model::gpt<B> m;
  rlhf::model::gpt_activations<B> acts;
  rlhf::model::adamw<B> opt;
  std::vector<rlhf::model::param_range> ranges;  // AdamW decays by range: no (P,) mask
  typename B::index_tensor ids;
  tensor ones, dlogits;
  rlhf::losses::sft_config lc;

  train_step(const rlhf::model::gpt_config& cfg, rlhf::index_t batch)
      : m(cfg), acts(cfg, batch, cfg.max_seq_len), opt(m.num_params()),
        ids(rlhf::shape{batch, cfg.max_seq_len}), ones(ids.shape()),
        dlogits(acts.logits.shape()) {
    m.init(1234);
    ranges = rlhf::model::decay_ranges(m);
    std::mt19937 gen(7);
    std::uniform_int_distribution<std::int32_t> tok(
        0, static_cast<std::int32_t>(cfg.vocab_size - 1));
    std::vector<std::int32_t> host(static_cast<std::size_t>(ids.size()));
    for (auto& y : host) y = tok(gen);
    rlhf::ops::copy_from_host<B>(std::span<const std::int32_t>(host), ids);
    rlhf::ops::fill<B>(ones, 1.0f);
    lc.compute_entropy = false;
  }

  /// One step; returns the loss before it.
  float operator()() {
    rlhf::model::gpt_forward<B>(m, acts, ids);
    const float loss = rlhf::losses::sft_loss<B>({acts.logits, ids, ones}, dlogits, lc).loss;
    m.zero_grads();
    rlhf::model::gpt_backward<B>(m, acts, ids, dlogits);
    opt.step(m.params(), m.grads(), std::span<const rlhf::model::param_range>(ranges));
    return loss;
  }
};

}  // namespace bench
