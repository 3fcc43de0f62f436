// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Google Benchmark timings of the alignment math on the Eigen backend; scripts/bench runs
// bench/torch_algorithms.py on the same shapes and prints the ratios.
//
//   BM_copy                 2-thread memcpy of a buffer (read + write): the machine's copy
//                           bandwidth, measured in the same run as the ops below
//   BM_logprobs_fused       sequence log-probs + gradient w.r.t. the logits in one pass
//                           (ops::token_logprobs_fused, upstream 1): (B, T, V) logits
//   BM_logprobs_forward     forward only (ops::token_logprobs)
//   BM_gae                  rl::gae on (N, T) rewards/values/mask → advantages, returns
//   BM_ppo                  losses::ppo_loss on (N, T) tensors: loss, two gradients, metrics
//   BM_dpo_sigmoid          losses::dpo_loss (sigmoid) on (N,) precomputed log-probs:
//                           loss, gradients and the six metrics
//
// Everything may run on OpenMP threads, so every case uses wall-clock (real) time.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/losses/dpo.hpp"
#include "rlhf/losses/ppo.hpp"
#include "rlhf/rl/gae.hpp"
#include "rlhf/ops/logprobs.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using B = rlhf::eigen_backend;
using tensor = B::tensor;
using rlhf::index_t;
using rlhf::shape;

void fill_uniform(tensor& t, float lo, float hi, unsigned seed) {
  // Fast fill (hundreds of MB): a linear congruential sequence is enough for timing.
  std::uint32_t s = seed * 2654435761u + 1u;
  const float scale = (hi - lo) / 4294967296.0f;
  for (float& v : t.span()) {
    s = s * 1664525u + 1013904223u;
    v = lo + scale * static_cast<float>(s);
  }
}

void set_bytes(benchmark::State& state, double bytes_per_iteration) {
  state.counters["bytes_per_second"] = benchmark::Counter(
      bytes_per_iteration * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

// Copy bandwidth: read n floats, write n floats, split over the OpenMP threads.
void BM_copy(benchmark::State& state) {
  const index_t n = state.range(0);
  tensor a(shape{n}), b(shape{n});
  fill_uniform(a, -1.f, 1.f, 1);
  for (auto _ : state) {
    float* dst = b.data();
    const float* src = a.data();
#pragma omp parallel
    {
#if defined(_OPENMP)
      const index_t th = omp_get_num_threads(), id = omp_get_thread_num();
#else
      const index_t th = 1, id = 0;
#endif
      const index_t per = (n + th - 1) / th, lo = id * per, hi = lo + per < n ? lo + per : n;
      if (lo < hi) std::memcpy(dst + lo, src + lo, static_cast<std::size_t>(hi - lo) * 4);
    }
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 2.0 * static_cast<double>(n) * sizeof(float));
}

struct logprob_case {
  tensor logits, mask, grad;
  B::index_tensor tokens;
  logprob_case(index_t b, index_t t, index_t v)
      : logits(shape{b, t, v}), mask(shape{b, t}), grad(shape{b, t, v}), tokens(shape{b, t}) {
    fill_uniform(logits, -8.f, 8.f, 3);
    std::mt19937 gen(4);
    std::uniform_int_distribution<std::int32_t> tok(0, static_cast<std::int32_t>(v - 1));
    for (auto& y : tokens.span()) y = tok(gen);
    for (float& m : mask.span()) m = 1.0f;  // every position (the PyTorch side does the same)
  }
};

// Traffic: the logits read once and the gradient written once.
void BM_logprobs_fused(benchmark::State& state) {
  const index_t b = state.range(0), t = state.range(1), v = state.range(2);
  logprob_case c(b, t, v);
  for (auto _ : state) {
    auto r = rlhf::ops::token_logprobs_fused<B>(c.logits, c.tokens, c.mask, c.grad,
                                                rlhf::ops::upstream::constant{1.0f});
    benchmark::DoNotOptimize(r.logps.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 2.0 * static_cast<double>(b * t * v) * sizeof(float));
}

void BM_logprobs_forward(benchmark::State& state) {
  const index_t b = state.range(0), t = state.range(1), v = state.range(2);
  logprob_case c(b, t, v);
  for (auto _ : state) {
    auto r = rlhf::ops::token_logprobs<B>(c.logits, c.tokens, c.mask);
    benchmark::DoNotOptimize(r.logps.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, static_cast<double>(b * t * v) * sizeof(float));
}

// Per-example inputs like summed log-probs of 100-token completions.
tensor logps_like(index_t n, unsigned seed) {
  tensor t(shape{n});
  fill_uniform(t, -300.f, -100.f, seed);
  return t;
}

void BM_dpo_sigmoid(benchmark::State& state) {
  const index_t n = state.range(0);
  const tensor lc = logps_like(n, 1), lr = logps_like(n, 2), rc = logps_like(n, 3),
               rr = logps_like(n, 4);
  const rlhf::losses::dpo_config cfg;
  for (auto _ : state) {
    auto r = rlhf::losses::dpo_loss<B>({lc, lr, rc, rr}, cfg);
    benchmark::DoNotOptimize(r.loss);
  }
  state.counters["ns_per_example"] = benchmark::Counter(
      static_cast<double>(n) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Traffic: rewards, values, mask read; advantages, returns written.
void BM_gae(benchmark::State& state) {
  const index_t n = state.range(0), t = state.range(1);
  tensor rewards(shape{n, t}), values(shape{n, t}), mask(shape{n, t});
  fill_uniform(rewards, -1.f, 1.f, 1);
  fill_uniform(values, -1.f, 1.f, 2);
  for (float& m : mask.span()) m = 1.0f;
  tensor adv(shape{n, t}), ret(shape{n, t});
  const rlhf::rl::gae_config cfg;
  for (auto _ : state) {
    rlhf::rl::gae<B>({rewards, values, mask}, cfg, adv, ret);
    benchmark::DoNotOptimize(adv.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 5.0 * static_cast<double>(n * t) * sizeof(float));
}

void BM_ppo(benchmark::State& state) {
  const index_t n = state.range(0), t = state.range(1);
  const shape s{n, t};
  tensor logp(s), old(s), adv(s), v(s), v_old(s), ret(s), mask(s);
  fill_uniform(logp, -3.f, -1.f, 1);
  fill_uniform(old, -3.f, -1.f, 2);
  fill_uniform(adv, -1.f, 1.f, 3);
  fill_uniform(v, -1.f, 1.f, 4);
  fill_uniform(v_old, -1.f, 1.f, 5);
  fill_uniform(ret, -1.f, 1.f, 6);
  for (float& m : mask.span()) m = 1.0f;
  const rlhf::losses::ppo_config cfg;
  for (auto _ : state) {
    auto r = rlhf::losses::ppo_loss<B>({logp, old, adv, v, v_old, ret, mask}, cfg);
    benchmark::DoNotOptimize(r.loss);
  }
}

void logprob_shapes(benchmark::internal::Benchmark* bm) {
  bm->ArgNames({"B", "T", "V"})
      ->Args({8, 512, 256})
      ->Args({8, 512, 32000})
      ->Args({8, 512, 50257})
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
}

}  // namespace

BENCHMARK(BM_copy)->ArgName("floats")->Arg(8 * 512 * 32000)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_logprobs_fused)->Apply(logprob_shapes);
BENCHMARK(BM_logprobs_forward)->Apply(logprob_shapes);
BENCHMARK(BM_gae)->ArgNames({"N", "T"})->Args({256, 1024})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ppo)->ArgNames({"N", "T"})->Args({64, 128})->Args({512, 128})->Args({4096, 128})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_dpo_sigmoid)->ArgName("N")->Arg(64)->Arg(512)->Arg(4096)->Unit(benchmark::kMicrosecond)->UseRealTime();

BENCHMARK_MAIN();
