// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// A few DPO steps of the bundled GPT on custom::vector_backend (vector_backend.hpp): the
// whole training path of rlhf++ running on a backend written from docs/backends.md, with
// nothing but the standard library underneath.
//
//   pairs (prompt, chosen, rejected) → byte tokenizer + chat template → (2N, T) ids and
//   completion masks → policy and frozen reference GPT → sequence log-probs → DPO loss and
//   its gradient → back through the log-probs into gpt_backward → AdamW
//
// Prints the loss of every step and exits with 1 unless it went down.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <rlhf/core/functors.hpp>
#include <rlhf/losses/dpo.hpp>
#include <rlhf/model/gpt.hpp>
#include <rlhf/model/optim.hpp>
#include <rlhf/model/tokenizer.hpp>
#include <rlhf/ops/logprobs.hpp>
#include <rlhf/ops/tensor.hpp>

#include "vector_backend.hpp"

namespace {

using B = custom::vector_backend;
using tensor = B::tensor;
namespace model = rlhf::model;
namespace ops = rlhf::ops;
using rlhf::index_t;
using rlhf::shape;

struct preference {
  std::string prompt, chosen, rejected;
};

/// Sequence log-probs (2N,) of the padded batch under `m`: Σ over completion tokens.
struct sequence_pass {
  ops::token_logprobs_result<B> tokens;
  std::vector<float> chosen, rejected;  // (N,) each, on the host
};

sequence_pass sequence_logps(const model::gpt<B>& m, model::gpt_activations<B>& acts,
                             const B::index_tensor& ids, const tensor& mask, index_t pairs) {
  model::gpt_forward<B>(m, acts, ids);
  auto per_token = ops::token_logprobs<B>(acts.logits, ids, mask);
  const auto seq = ops::to_host<B>(
      ops::sequence_logprobs<B>(per_token.logps, mask, ops::logprob_columns::shifted));
  const auto half = static_cast<std::ptrdiff_t>(pairs);
  return {std::move(per_token), {seq.begin(), seq.begin() + half}, {seq.begin() + half, seq.end()}};
}

tensor on_backend(const std::vector<float>& v) {
  return ops::from_host<B>(std::span<const float>(v), shape{static_cast<index_t>(v.size())});
}

}  // namespace

int main() {
  // Rows 0..N-1 of the batch are the chosen responses, rows N..2N-1 the rejected ones.
  const std::vector<preference> data{
      {"What is 2 + 2?", "4", "5"},
      {"Capital of France?", "Paris.", "Rome."},
      {"Colour of a clear sky?", "Blue.", "Green."},
      {"Say hello.", "Hello!", "No."},
  };
  const auto pairs = static_cast<index_t>(data.size());

  const model::byte_tokenizer tok;
  const model::chat_template chat;
  std::vector<model::encoded_chat> rows;
  for (const auto& p : data) rows.push_back(chat.render(tok, p.prompt, p.chosen));
  for (const auto& p : data) rows.push_back(chat.render(tok, p.prompt, p.rejected));
  // Right padding; the completion mask is 0 on the prompt and on padding.
  const auto batch = model::pad_batch(rows, tok.pad_id());
  const auto ids = ops::index_from_host<B>(std::span<const std::int32_t>(batch.ids), batch.shape());
  const auto mask = ops::from_host<B>(std::span<const float>(batch.completion_mask), batch.shape());

  // A tiny GPT: 2 layers, width 32, byte vocabulary.
  model::gpt_config cfg;
  cfg.vocab_size = tok.vocab_size();
  cfg.max_seq_len = 64;
  cfg.n_layer = 2;
  cfg.n_head = 2;
  cfg.n_embd = 32;
  model::gpt<B> policy(cfg);
  policy.init(/*seed=*/2024);
  model::gpt<B> reference(cfg, /*trainable=*/false);  // frozen: no gradient arena
  ops::transform<B>(reference.params(), rlhf::fn::identity{}, policy.params());

  model::gpt_activations<B> acts(cfg, batch.rows, batch.cols);
  model::gpt_activations<B> ref_acts(cfg, batch.rows, batch.cols);
  // The reference never changes: its sequence log-probs are computed once.
  const auto ref = sequence_logps(reference, ref_acts, ids, mask, pairs);
  const tensor ref_chosen = on_backend(ref.chosen), ref_rejected = on_backend(ref.rejected);

  model::adamw_config opt_cfg;
  opt_cfg.lr = 2e-3f;
  model::adamw<B> opt(policy.num_params(), opt_cfg);
  const auto ranges = model::decay_ranges(policy);
  const tensor decay_mask = model::make_decay_mask<B>(policy.num_params(), ranges);
  rlhf::losses::dpo_config dpo_cfg;  // TRL's defaults: sigmoid loss, beta 0.1
  tensor dlogits(acts.logits.shape());

  std::printf("custom_backend: %s backend, %lld parameters, batch of %lld pairs, T = %lld\n",
              B::name, static_cast<long long>(policy.num_params()),
              static_cast<long long>(pairs), static_cast<long long>(batch.cols));
  constexpr int steps = 8;
  std::vector<float> losses;
  for (int step = 0; step < steps; ++step) {
    // Forward: policy sequence log-probs, then the DPO loss and d loss / d (lc, lr).
    const auto pol = sequence_logps(policy, acts, ids, mask, pairs);
    const tensor lc = on_backend(pol.chosen), lr = on_backend(pol.rejected);
    const auto r = rlhf::losses::dpo_loss<B>({.policy_chosen_logps = lc,
                                              .policy_rejected_logps = lr,
                                              .reference_chosen_logps = ref_chosen,
                                              .reference_rejected_logps = ref_rejected},
                                             dpo_cfg);
    losses.push_back(r.loss);
    std::printf("step %d: loss %.6f  reward margin %+.5f  accuracy %.2f\n", step, r.loss,
                r.metrics.rewards_margins, r.metrics.rewards_accuracies);

    // Backward: (2N,) sequence gradients → per-token → logits → the model's gradients.
    std::vector<float> grad_seq = ops::to_host<B>(r.grad_policy_chosen_logps);
    const auto g_rej = ops::to_host<B>(r.grad_policy_rejected_logps);
    grad_seq.insert(grad_seq.end(), g_rej.begin(), g_rej.end());
    const tensor grad_tokens = ops::sequence_logprobs_backward<B>(on_backend(grad_seq), mask,
                                                                  ops::logprob_columns::shifted);
    ops::token_logprobs_backward<B>(acts.logits, ids, mask, pol.tokens, grad_tokens, dlogits);
    policy.zero_grads();
    model::gpt_backward<B>(policy, acts, ids, dlogits);
    opt.step(policy.params(), policy.grads(), decay_mask);
  }

  const bool decreased = losses.back() < losses.front();
  if (!decreased) {
    std::printf("FAILED: the DPO loss did not decrease (%.6f -> %.6f)\n", losses.front(),
                losses.back());
    return 1;
  }
  std::printf("DPO loss decreased: %.6f -> %.6f\n", losses.front(), losses.back());
  return 0;
}
