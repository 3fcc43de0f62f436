// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Google Benchmark: the two CPU backends side by side, each case templated on the backend
// (<eigen_backend> and <xtensor_backend> in the names).
//
//   BM_gemm<B>/n            ops::gemm n×n×n, no transposes (n = 256, 512, 1024)
//   BM_gemm_linear<B>       the linear-layer layout x · Wᵀ (trans_b) of the "small" model's
//                           MLP: x (B·T = 1024, C = 256), W (4C = 1024, C = 256)
//   BM_softmax_rows<B>      ops::softmax_rows on (2048, 32000) logits
//   BM_logprobs_fused<B>    ops::token_logprobs_fused (log-probs + gradient w.r.t. the
//                           logits in one pass, upstream 1) on (B, T, V) = (8, 256, 32000),
//                           i.e. B·T = 2048 rows of V = 32000
//   BM_train_step<B>/config one optimizer step of the bundled GPT on random tokens:
//                           gpt_forward → sft_loss → zero_grads → gpt_backward → adamw
//                           config 0 "tiny":  V=256, T=64,  C=128, L=2, H=4, B=8
//                           config 1 "small": V=256, T=128, C=256, L=4, H=4, B=8
//                           (the shapes of bench_model.cpp)
//
// Everything may run on OpenMP (and BLAS) threads, so every case uses wall-clock time.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/backends/xtensor.hpp"
#include "rlhf/losses/sft.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/optim.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/gemm.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/softmax.hpp"
#include "train_step.hpp"

namespace {

using rlhf::index_t;
using rlhf::shape;
namespace model = rlhf::model;

/// Uniform values in [lo, hi) from a linear congruential sequence (fast for big buffers).
template <class B>
void fill_uniform(typename B::tensor& t, float lo, float hi, unsigned seed) {
  std::uint32_t s = seed * 2654435761u + 1u;
  const float scale = (hi - lo) / 4294967296.0f;
  float* p = B::data(t);
  for (index_t i = 0; i < t.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = lo + scale * static_cast<float>(s);
  }
}

void set_flops(benchmark::State& state, double per_iteration) {
  state.counters["FLOPS"] = benchmark::Counter(
      per_iteration * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

/// c (m, n) = a (m, k) · op(b), b stored (k, n) or, with tb, (n, k).
template <class B>
void run_gemm(benchmark::State& state, index_t m, index_t n, index_t k, rlhf::transpose tb) {
  using tensor = typename B::tensor;
  tensor a(shape{m, k}), c(shape{m, n});
  tensor b(tb == rlhf::transpose::yes ? shape{n, k} : shape{k, n});
  fill_uniform<B>(a, -1.f, 1.f, 1);
  fill_uniform<B>(b, -1.f, 1.f, 2);
  for (auto _ : state) {
    rlhf::ops::gemm<B>(rlhf::transpose::no, tb, 1.0f, a, b, 0.0f, c);
    benchmark::DoNotOptimize(B::data(c));
    benchmark::ClobberMemory();
  }
  set_flops(state, 2.0 * static_cast<double>(m) * static_cast<double>(n) *
                       static_cast<double>(k));
}

template <class B>
void BM_gemm(benchmark::State& state) {
  const index_t n = state.range(0);
  run_gemm<B>(state, n, n, n, rlhf::transpose::no);
}

template <class B>
void BM_gemm_linear(benchmark::State& state) {
  run_gemm<B>(state, state.range(0), state.range(1), state.range(2), rlhf::transpose::yes);
}

template <class B>
void BM_softmax_rows(benchmark::State& state) {
  const index_t rows = state.range(0), cols = state.range(1);
  typename B::tensor x(shape{rows, cols}), y(shape{rows, cols});
  fill_uniform<B>(x, -8.f, 8.f, 3);
  for (auto _ : state) {
    rlhf::ops::softmax_rows<B>(x, y);
    benchmark::DoNotOptimize(B::data(y));
    benchmark::ClobberMemory();
  }
}

template <class B>
void BM_logprobs_fused(benchmark::State& state) {
  const index_t b = state.range(0), t = state.range(1), v = state.range(2);
  typename B::tensor logits(shape{b, t, v}), mask(shape{b, t}), grad(shape{b, t, v});
  typename B::index_tensor tokens(shape{b, t});
  fill_uniform<B>(logits, -8.f, 8.f, 3);
  rlhf::ops::fill<B>(mask, 1.0f);
  std::mt19937 gen(4);
  std::uniform_int_distribution<std::int32_t> tok(0, static_cast<std::int32_t>(v - 1));
  std::int32_t* y = B::data(tokens);
  for (index_t i = 0; i < tokens.size(); ++i) y[i] = tok(gen);
  for (auto _ : state) {
    auto r = rlhf::ops::token_logprobs_fused<B>(logits, tokens, mask, grad,
                                                rlhf::ops::upstream::constant{1.0f});
    benchmark::DoNotOptimize(B::data(r.logps));
    benchmark::ClobberMemory();
  }
  // Traffic: the logits read once and the gradient written once.
  state.counters["bytes_per_second"] = benchmark::Counter(
      2.0 * static_cast<double>(b * t * v) * sizeof(float) *
          static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

model::gpt_config train_config(index_t which) {
  return which == 0 ? model::gpt_config::tiny() : model::gpt_config::small();
}

template <class B>
void BM_train_step(benchmark::State& state) {
  const model::gpt_config cfg = train_config(state.range(0));
  const index_t b = 8, t = cfg.max_seq_len;
  state.SetLabel(state.range(0) == 0 ? "tiny" : "small");

  bench::train_step<B> step(cfg, b);
  float loss = 0.0f;
  for (auto _ : state) {
    loss = step();
    benchmark::DoNotOptimize(B::data(step.m.params()));
    benchmark::ClobberMemory();
  }
  state.counters["tokens_per_second"] = benchmark::Counter(
      static_cast<double>(b * t) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.counters["loss"] = loss;
}

using rlhf::eigen_backend;
using rlhf::xtensor_backend;

#define RLHF_BENCH_BOTH(fn, setup)             \
  BENCHMARK_TEMPLATE(fn, eigen_backend) setup; \
  BENCHMARK_TEMPLATE(fn, xtensor_backend) setup

RLHF_BENCH_BOTH(BM_gemm, ->ArgName("n")->Arg(256)->Arg(512)->Arg(1024)->UseRealTime()
                             ->Unit(benchmark::kMillisecond));
RLHF_BENCH_BOTH(BM_gemm_linear, ->ArgNames({"m", "n", "k"})->Args({1024, 1024, 256})
                                    ->UseRealTime()->Unit(benchmark::kMillisecond));
RLHF_BENCH_BOTH(BM_softmax_rows, ->ArgNames({"rows", "cols"})->Args({2048, 32000})
                                     ->UseRealTime()->Unit(benchmark::kMillisecond));
RLHF_BENCH_BOTH(BM_logprobs_fused, ->ArgNames({"B", "T", "V"})->Args({8, 256, 32000})
                                       ->UseRealTime()->Unit(benchmark::kMillisecond));
RLHF_BENCH_BOTH(BM_train_step, ->ArgName("config")->Arg(0)->Arg(1)->UseRealTime()
                                   ->Unit(benchmark::kMillisecond));

}  // namespace

BENCHMARK_MAIN();
