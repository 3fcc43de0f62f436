// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// GPU timings of rlhf::thrust_backend<thrust::system::cuda::tag> (docs/cuda.md):
//
//   logprobs   ops::token_logprobs_fused (forward + gradient of the token-mean NLL) on
//              (B, T, V) = (8, 512, 32000) and (8, 512, 50257): each logits row is read
//              once and its gradient written once, so the floor is 2·B·T·V·4 bytes of HBM
//              traffic; reported as GB/s and as a fraction of the device's peak bandwidth
//   gae        rl::gae on (B, T) = (256, 1024), 3/4 of each row real tokens
//   train      one optimizer step of the bundled GPT (forward → SFT loss → zero_grads →
//              backward → AdamW) on random tokens: "small" (V=256, T=128, C=256, L=4, H=4,
//              B=8, as bench_model.cpp) and "gpt2" (GPT-2 124M: V=50257, T=1024, C=768,
//              L=12, H=12, B=8); bench/cuda/torch_cuda.py times PyTorch on the same shapes
//
//   bench_cuda [logprobs|gae|train|all] [--reps N]
//
// Times are CUDA-event medians over N repetitions after two warm-up calls. Prints one JSON
// object per line.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include <rlhf/backends/thrust.hpp>
#include <rlhf/losses/sft.hpp>
#include <rlhf/model/gpt.hpp>
#include <rlhf/model/optim.hpp>
#include <rlhf/ops/logprobs.hpp>
#include <rlhf/ops/random.hpp>
#include <rlhf/ops/tensor.hpp>
#include <rlhf/rl/gae.hpp>

namespace {

using B = rlhf::thrust_backend<thrust::system::cuda::tag>;
using tensor = B::tensor;
using rlhf::index_t;
using rlhf::shape;
namespace ops = rlhf::ops;
namespace model = rlhf::model;

int g_reps = 20;

/// Median milliseconds of f() over g_reps runs (CUDA events), after two warm-ups.
template <class F>
double median_ms(F&& f) {
  f();
  f();
  B::synchronize();
  cudaEvent_t start, stop;
  rlhf::detail::thrust_impl::check_cuda(cudaEventCreate(&start), "cudaEventCreate");
  rlhf::detail::thrust_impl::check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
  std::vector<double> ms;
  for (int i = 0; i < g_reps; ++i) {
    cudaEventRecord(start);
    f();
    cudaEventRecord(stop);
    rlhf::detail::thrust_impl::check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float t = 0.0f;
    cudaEventElapsedTime(&t, start, stop);
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

/// Theoretical peak DRAM bandwidth in GB/s: 2 (DDR) · memory clock · bus width.
double peak_gbps() {
  int dev = 0, khz = 0, bits = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&khz, cudaDevAttrMemoryClockRate, dev);
  cudaDeviceGetAttribute(&bits, cudaDevAttrGlobalMemoryBusWidth, dev);
  return 2.0 * static_cast<double>(khz) * 1e3 * (bits / 8.0) / 1e9;
}

B::index_tensor random_tokens(index_t b, index_t t, index_t vocab, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<std::int32_t> tok(0, static_cast<std::int32_t>(vocab - 1));
  std::vector<std::int32_t> ids(static_cast<std::size_t>(b * t));
  for (auto& y : ids) y = tok(gen);
  return ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{b, t});
}

void bench_logprobs() {
  const double peak = peak_gbps();
  for (const index_t v : {index_t{32000}, index_t{50257}}) {
    const index_t b = 8, t = 512;
    tensor logits(shape{b, t, v}), grad(shape{b, t, v}), mask(shape{b, t});
    rlhf::random_stream rs{1234, 0, 0};
    ops::random_normal<B>(logits, rs, 0.0f, 2.0f);
    ops::fill<B>(mask, 1.0f);
    const auto ids = random_tokens(b, t, v, 7);
    const ops::upstream::constant up{-1.0f / static_cast<float>(b * (t - 1))};
    const double ms = median_ms([&] {
      auto r = ops::token_logprobs_fused<B>(logits, ids, mask, grad, up);
      (void)r;
    });
    const double bytes = 2.0 * static_cast<double>(b * t * v) * sizeof(float);
    const double gbps = bytes / (ms * 1e-3) / 1e9;
    std::printf("{\"op\": \"logprobs_fused\", \"shape\": [%lld, %lld, %lld], \"ms\": %.4f, "
                "\"gbps\": %.1f, \"peak_gbps\": %.1f, \"fraction_of_peak\": %.3f}\n",
                static_cast<long long>(b), static_cast<long long>(t),
                static_cast<long long>(v), ms, gbps, peak, gbps / peak);
  }
}

void bench_gae() {
  const index_t b = 256, t = 1024;
  tensor r(shape{b, t}), v(shape{b, t}), adv(shape{b, t}), ret(shape{b, t});
  rlhf::random_stream rs{99, 0, 0};
  ops::random_normal<B>(r, rs);
  ops::random_normal<B>(v, rs);
  std::vector<float> m(static_cast<std::size_t>(b * t), 0.0f);
  for (index_t i = 0; i < b; ++i) std::fill_n(m.begin() + i * t, 3 * t / 4, 1.0f);
  const auto mask = ops::from_host<B>(m, shape{b, t});
  const double ms = median_ms([&] { rlhf::rl::gae<B>({r, v, mask}, {}, adv, ret); });
  std::printf("{\"op\": \"gae\", \"shape\": [%lld, %lld], \"ms\": %.4f}\n",
              static_cast<long long>(b), static_cast<long long>(t), ms);
}

void bench_train(const char* name, const model::gpt_config& cfg, index_t b) {
  const index_t t = cfg.max_seq_len;
  model::gpt<B> m(cfg);
  m.init(1234);
  model::gpt_activations<B> acts(cfg, b, t);
  model::adamw<B> opt(m.num_params(), model::adamw_config{});
  const auto ranges = model::decay_ranges(m);
  const tensor decay = model::make_decay_mask<B>(m.num_params(), ranges);
  const auto ids = random_tokens(b, t, cfg.vocab_size, 7);
  tensor ones(shape{b, t});
  ops::fill<B>(ones, 1.0f);
  tensor dlogits(acts.logits.shape());
  rlhf::losses::sft_config lc;
  lc.compute_entropy = false;
  float loss = 0.0f;
  const double ms = median_ms([&] {
    model::gpt_forward<B>(m, acts, ids);
    loss = rlhf::losses::sft_loss<B>({acts.logits, ids, ones}, dlogits, lc).loss;
    m.zero_grads();
    model::gpt_backward<B>(m, acts, ids, dlogits);
    opt.step(m.params(), m.grads(), decay);
  });
  const double params = static_cast<double>(
      m.num_params() - (cfg.padded_vocab_size() - cfg.vocab_size) * cfg.n_embd);
  const double tokens = static_cast<double>(b * t);
  std::printf("{\"op\": \"train_step\", \"config\": \"%s\", \"ms\": %.3f, "
              "\"tokens_per_second\": %.0f, \"tflops\": %.2f, \"params\": %.0f, "
              "\"loss\": %.4f}\n",
              name, ms, tokens / (ms * 1e-3), 6.0 * params * tokens / (ms * 1e-3) / 1e12,
              params, static_cast<double>(loss));
}

void bench_train_all() {
  bench_train("small", model::gpt_config::small(), 8);
  bench_train("gpt2", model::gpt_config::gpt2_124m(), 8);
}

}  // namespace

int main(int argc, char** argv) {
  std::string which = "all";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      g_reps = std::max(1, std::atoi(argv[++i]));
    } else {
      which = argv[i];
    }
  }
  try {
    cudaDeviceProp prop{};
    rlhf::detail::thrust_impl::check_cuda(cudaGetDeviceProperties(&prop, 0),
                                          "cudaGetDeviceProperties");
    std::printf("{\"device\": \"%s\", \"backend\": \"%s\"}\n", prop.name, B::name);
    if (which == "logprobs" || which == "all") bench_logprobs();
    if (which == "gae" || which == "all") bench_gae();
    if (which == "train" || which == "all") bench_train_all();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_cuda: %s\n", e.what());
    return 1;
  }
  return 0;
}
