// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// One translation unit that includes every public CPU header of the library and instantiates
// a few of its templates on the Eigen and xtensor backends, so that clang-tidy (the
// clang_tidy_headers test, tests/lint.cmake) sees the headers and real instantiations of
// their code. It is only analysed, never built into a binary.
#include <cstdint>
#include <span>
#include <vector>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/backends/eigen/gemm_provider.hpp"
#include "rlhf/backends/xtensor.hpp"
#include "rlhf/cai/constitution.hpp"
#include "rlhf/cai/critique_revise.hpp"
#include "rlhf/cai/generator.hpp"
#include "rlhf/cai/http_chat.hpp"
#include "rlhf/cai/judge.hpp"
#include "rlhf/cai/model_generator.hpp"
#include "rlhf/cai/model_judge.hpp"
#include "rlhf/cai/reward_model_judge.hpp"
#include "rlhf/cai/rlaif.hpp"
#include "rlhf/cai/rlaif_file.hpp"
#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/math.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/overrides.hpp"
#include "rlhf/core/validation.hpp"
#include "rlhf/data/batcher.hpp"
#include "rlhf/data/dataset.hpp"
#include "rlhf/data/formats.hpp"
#include "rlhf/data/jsonl.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/dist/communicator.hpp"
#include "rlhf/losses/bco.hpp"
#include "rlhf/losses/bco_running_mean.hpp"
#include "rlhf/losses/cpo.hpp"
#include "rlhf/losses/dpo.hpp"
#include "rlhf/losses/grpo.hpp"
#include "rlhf/losses/kto.hpp"
#include "rlhf/losses/orpo.hpp"
#include "rlhf/losses/ppo.hpp"
#include "rlhf/losses/reward.hpp"
#include "rlhf/losses/rloo.hpp"
#include "rlhf/losses/sft.hpp"
#include "rlhf/model/any_tokenizer.hpp"
#include "rlhf/model/bpe_tokenizer.hpp"
#include "rlhf/model/checkpoint.hpp"
#include "rlhf/model/config.hpp"
#include "rlhf/model/generate.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/model/hf_chat_template.hpp"
#include "rlhf/model/hf_gpt2.hpp"
#include "rlhf/model/hf_llama.hpp"
#include "rlhf/model/hf_model.hpp"
#include "rlhf/model/layers.hpp"
#include "rlhf/model/optim.hpp"
#include "rlhf/model/safetensors.hpp"
#include "rlhf/model/sampling.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/ops/checks.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/slice.hpp"
#include "rlhf/rl/gae.hpp"
#include "rlhf/rl/kl.hpp"
#include "rlhf/rl/kl_controller.hpp"
#include "rlhf/rl/rewards.hpp"
#include "rlhf/rl/running_moments.hpp"
#include "rlhf/rl/whiten.hpp"
#include "rlhf/rlhf.hpp"
#include "rlhf/testing/minimal_backend.hpp"
#include "rlhf/testing/reference.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/bco.hpp"
#include "rlhf/train/cpo.hpp"
#include "rlhf/train/dpo.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/kto.hpp"
#include "rlhf/train/limits.hpp"
#include "rlhf/train/method_base.hpp"
#include "rlhf/train/metrics_log.hpp"
#include "rlhf/train/orpo.hpp"
#include "rlhf/train/reward.hpp"
#include "rlhf/train/sft.hpp"
#include "rlhf/train/trainer.hpp"

namespace rlhf_lint {

// A DPO loss, a GRPO loss and a GAE pass on backend B.
template <class B>
float losses_on() {
  namespace ops = rlhf::ops;
  namespace losses = rlhf::losses;
  const rlhf::shape batch{4};
  const auto lc = ops::from_host<B>(std::vector<float>{-42.0f, -17.5f, -88.1f, -30.2f}, batch);
  const auto lr = ops::from_host<B>(std::vector<float>{-45.3f, -16.0f, -97.4f, -35.9f}, batch);
  const auto rc = ops::from_host<B>(std::vector<float>{-43.1f, -17.9f, -90.0f, -29.8f}, batch);
  const auto rr = ops::from_host<B>(std::vector<float>{-44.0f, -16.2f, -95.1f, -34.7f}, batch);
  const losses::dpo_config dc;
  const auto d = losses::dpo_loss<B>({.policy_chosen_logps = lc,
                                      .policy_rejected_logps = lr,
                                      .reference_chosen_logps = rc,
                                      .reference_rejected_logps = rr},
                                     dc);

  const rlhf::shape s{4, 3};
  const auto lp = ops::from_host<B>(std::vector<float>(12, -0.5f), s);
  const auto mask = ops::from_host<B>(std::vector<float>(12, 1.0f), s);
  typename B::tensor advantages(batch);
  losses::grpo_config gc;
  gc.num_generations = 2;
  (void)losses::grpo_advantages<B>({.rewards = lc}, gc, advantages);
  const auto g = losses::grpo_loss<B>(
      {.per_token_logps = lp, .advantages = advantages, .completion_mask = mask}, gc);

  const auto est = rlhf::rl::gae<B>({lp, lp, mask}, {.gamma = 1.0f, .lam = 0.95f});
  return d.loss + g.loss + ops::sum<B>(est.returns);
}

// One training step and a short generation of a tiny GPT on backend B.
template <class B>
float gpt_on() {
  namespace model = rlhf::model;
  model::gpt_config cfg;
  cfg.vocab_size = 16;
  cfg.max_seq_len = 8;
  cfg.n_layer = 1;
  cfg.n_head = 2;
  cfg.n_embd = 8;
  cfg.vocab_multiple = 8;
  model::gpt<B> m(cfg);
  m.init(1234);
  const rlhf::index_t b = 2, t = 4;
  model::gpt_activations<B> acts(cfg, b, t);
  const std::vector<std::int32_t> host{1, 2, 3, 4, 5, 6, 7, 8};
  typename B::index_tensor ids(rlhf::shape{b, t});
  rlhf::ops::copy_from_host<B>(std::span<const std::int32_t>(host), ids);
  typename B::tensor ones(ids.shape());
  rlhf::ops::fill<B>(ones, 1.0f);
  typename B::tensor dlogits(acts.logits.shape());

  model::gpt_forward<B>(m, acts, ids);
  const rlhf::losses::sft_config lc;
  const float loss = rlhf::losses::sft_loss<B>({acts.logits, ids, ones}, dlogits, lc).loss;
  m.zero_grads();
  model::gpt_backward<B>(m, acts, ids, dlogits);
  model::adamw<B> opt(m.num_params());
  const auto ranges = model::decay_ranges(m);
  opt.step(m.params(), m.grads(), std::span<const model::param_range>(ranges));

  model::generation_config gen;
  gen.max_new_tokens = 2;
  const auto r = model::generate<B>(m, {{1, 2}, {3}}, gen);
  return loss + static_cast<float>(r.lengths.size());
}

template float losses_on<rlhf::eigen_backend>();
template float losses_on<rlhf::xtensor_backend>();
template float gpt_on<rlhf::eigen_backend>();
template float gpt_on<rlhf::xtensor_backend>();

}  // namespace rlhf_lint
