// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Every public CPU header of rlhf++, and a representative set of instantiations, compiled
// by a consumer under -Wall -Wextra -Wpedantic -Werror with g++ and clang++ (also with
// -fopenmp-simd -DRLHF_OPENMP_SIMD, -DRLHF_EIGEN_USE_CBLAS, -DXTENSOR_USE_XSIMD): no
// warning may escape the headers. Third-party headers (Eigen, xtensor, Thrust) are system
// headers to a consumer and are not held to this. The program runs a few tiny steps and
// returns non-zero when a result is not finite.
#include <rlhf/rlhf.hpp>
#include <rlhf/version.hpp>

#include <rlhf/core/config.hpp>
#include <rlhf/core/errors.hpp>
#include <rlhf/core/functors.hpp>
#include <rlhf/core/host_tensor.hpp>
#include <rlhf/core/math.hpp>
#include <rlhf/core/metrics.hpp>
#include <rlhf/core/philox.hpp>
#include <rlhf/core/shape.hpp>
#include <rlhf/core/tensor_backend.hpp>
#include <rlhf/core/validate.hpp>

#include <rlhf/ops/checks.hpp>
#include <rlhf/ops/elementwise.hpp>
#include <rlhf/ops/gather.hpp>
#include <rlhf/ops/gemm.hpp>
#include <rlhf/ops/logprobs.hpp>
#include <rlhf/ops/random.hpp>
#include <rlhf/ops/reductions.hpp>
#include <rlhf/ops/scan.hpp>
#include <rlhf/ops/softmax.hpp>
#include <rlhf/ops/tensor.hpp>

#include <rlhf/losses/bco.hpp>
#include <rlhf/losses/cpo.hpp>
#include <rlhf/losses/dpo.hpp>
#include <rlhf/losses/grpo.hpp>
#include <rlhf/losses/kto.hpp>
#include <rlhf/losses/orpo.hpp>
#include <rlhf/losses/ppo.hpp>
#include <rlhf/losses/reward.hpp>
#include <rlhf/losses/rloo.hpp>
#include <rlhf/losses/sft.hpp>

#include <rlhf/rl/gae.hpp>
#include <rlhf/rl/kl.hpp>
#include <rlhf/rl/kl_controller.hpp>
#include <rlhf/rl/rewards.hpp>
#include <rlhf/rl/running_moments.hpp>
#include <rlhf/rl/whiten.hpp>

#include <rlhf/model/bpe_tokenizer.hpp>
#include <rlhf/model/checkpoint.hpp>
#include <rlhf/model/config.hpp>
#include <rlhf/model/generate.hpp>
#include <rlhf/model/gpt.hpp>
#include <rlhf/model/heads.hpp>
#include <rlhf/model/hf_gpt2.hpp>
#include <rlhf/model/layers.hpp>
#include <rlhf/model/optim.hpp>
#include <rlhf/model/safetensors.hpp>
#include <rlhf/model/sampling.hpp>
#include <rlhf/model/tokenizer.hpp>

#include <rlhf/backends/eigen.hpp>
#include <rlhf/backends/eigen/eigen_backend.hpp>
#include <rlhf/backends/thrust.hpp>
#include <rlhf/backends/thrust/testing.hpp>
#include <rlhf/backends/thrust/thrust_backend.hpp>
#include <rlhf/backends/xtensor.hpp>
#include <rlhf/backends/xtensor/xtensor_backend.hpp>

#include <rlhf/testing/minimal_backend.hpp>
#include <rlhf/testing/reference.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

namespace {

namespace losses = rlhf::losses;
namespace model = rlhf::model;
namespace ops = rlhf::ops;
using rlhf::index_t;
using rlhf::shape;

bool finite(float x) { return std::isfinite(x); }

/// Row softmax, log-probs of tokens and a row sum: the basic op path of a backend.
template <class B>
float basic_ops() {
  typename B::tensor logits(shape{2, 3, 5}), logp(shape{2, 3, 5}), tok_logp(shape{2, 3}),
      sums(shape{2});
  rlhf::random_stream rng{/*seed=*/7, /*stream=*/0};
  ops::random_normal<B>(logits, rng, 0.0f, 1.0f);
  ops::log_softmax_rows<B>(logits, logp);
  const auto ids = ops::index_from_host<B>(std::vector<std::int32_t>{0, 1, 2, 3, 4, 0},
                                           shape{6});
  ops::gather_last<B>(logp, ids, tok_logp);  // (2, 3)
  ops::row_sum<B>(tok_logp, sums);           // (2)
  const auto host = ops::to_host<B>(sums);
  return host[0] + host[1];
}

/// DPO (sigmoid) on four pairs.
template <class B>
float dpo() {
  const shape n{4};
  const auto lc = ops::from_host<B>(std::vector<float>{-4.0f, -1.5f, -8.1f, -3.2f}, n);
  const auto lr = ops::from_host<B>(std::vector<float>{-4.3f, -1.0f, -9.4f, -3.9f}, n);
  const auto rc = ops::from_host<B>(std::vector<float>{-4.1f, -1.7f, -9.0f, -2.8f}, n);
  const auto rr = ops::from_host<B>(std::vector<float>{-4.0f, -1.2f, -9.1f, -3.7f}, n);
  const auto r = losses::dpo_loss<B>({.policy_chosen_logps = lc,
                                      .policy_rejected_logps = lr,
                                      .reference_chosen_logps = rc,
                                      .reference_rejected_logps = rr});
  return r.loss;
}

/// GAE over a (2, 4) batch.
template <class B>
float gae() {
  const shape s{2, 4};
  const auto rewards = ops::from_host<B>(std::vector<float>{0, 0, 0, 1, 0, 0, 1, 0}, s);
  const auto values = ops::from_host<B>(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f,  //
                                                           0.5f, 0.4f, 0.3f, 0.0f},
                                        s);
  const auto mask = ops::from_host<B>(std::vector<float>{1, 1, 1, 1, 1, 1, 1, 0}, s);
  const auto r = rlhf::rl::gae<B>({rewards, values, mask});
  return ops::to_host<B>(r.advantages)[0];
}

/// One GPT training step (forward, SFT loss, backward, AdamW) on a two-layer model.
template <class B>
float gpt_step() {
  model::gpt_config cfg;
  cfg.vocab_size = 37;
  cfg.max_seq_len = 8;
  cfg.n_layer = 2;
  cfg.n_head = 2;
  cfg.n_embd = 16;
  const index_t batch = 2;
  model::gpt<B> m(cfg);
  m.init(1234);
  model::gpt_activations<B> acts(cfg, batch, cfg.max_seq_len);
  model::adamw<B> opt(m.num_params());
  const auto ranges = model::decay_ranges(m);
  std::vector<std::int32_t> host(static_cast<std::size_t>(batch * cfg.max_seq_len));
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<std::int32_t>(i % 37);
  const auto ids = ops::index_from_host<B>(host, shape{batch, cfg.max_seq_len});
  typename B::tensor ones(ids.shape()), dlogits(acts.logits.shape());
  ops::fill<B>(ones, 1.0f);
  model::gpt_forward<B>(m, acts, ids);
  const float loss = losses::sft_loss<B>({acts.logits, ids, ones}, dlogits).loss;
  m.zero_grads();
  model::gpt_backward<B>(m, acts, ids, dlogits);
  opt.step(m.params(), m.grads(), std::span<const model::param_range>(ranges));
  return loss;
}

}  // namespace

int main() {
  using E = rlhf::eigen_backend;
  const float results[] = {
      basic_ops<E>(),
      basic_ops<rlhf::xtensor_backend>(),
      basic_ops<rlhf::thrust_omp_backend>(),
      basic_ops<rlhf::testing::minimal_backend>(),
      dpo<E>(),
      gae<E>(),
      gpt_step<E>(),
  };
  int bad = 0;
  for (float r : results) bad += finite(r) ? 0 : 1;
  std::printf("rlhf++ %s: %d of %zu results finite\n", rlhf::version_string,
              static_cast<int>(sizeof results / sizeof results[0]) - bad,
              sizeof results / sizeof results[0]);
  return bad == 0 ? 0 : 1;
}
