// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Google Benchmark timings of the Eigen backend's hot ops.
//
//   BM_gemm_eigen_raw   C.noalias() = A * B on plain row-major Eigen maps: Eigen's own peak,
//                       the ceiling ops::gemm is measured against.
//   BM_gemm_ops         rlhf::ops::gemm<eigen_backend>, same buffers, same sizes.
//   BM_gemm_ops_tb      ops::gemm with trans_b (x W^T, the linear-layer layout).
//   BM_softmax_rows, BM_log_softmax_rows   on (rows, cols) logits.
//   BM_gemm_provider    ops::gemm_strided through each GEMM provider the build linked
//                       (oneDNN, the CBLAS, Eigen) on the products of one GPT train step on
//                       "small" (B·T = 1024, C = 256, 4 heads of 64): the measurement
//                       behind the default provider.
//
// Everything may run on OpenMP threads, so every case uses wall-clock (real) time; CPU
// time would add up the threads. Inputs are random and built once, outside the loop.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <array>
#include <chrono>
#include <random>
#include <string>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/ops/gemm.hpp"
#include "rlhf/ops/softmax.hpp"

namespace {

using B = rlhf::eigen_backend;
using tensor = B::tensor;
using rlhf::index_t;
using row_major = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A tensor of the given shape with values uniform in [lo, hi).
tensor random_tensor(index_t rows, index_t cols, float lo, float hi, unsigned seed) {
  tensor t(rlhf::shape{rows, cols});
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& v : t.span()) v = dist(gen);
  return t;
}

// 2 n^3 flops per product, reported per second of wall time.
void set_gemm_counters(benchmark::State& state, index_t n) {
  const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(n) *
                       static_cast<double>(n) * static_cast<double>(state.iterations());
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsRate);
}

void BM_gemm_eigen_raw(benchmark::State& state) {
  const index_t n = state.range(0);
  const tensor a = random_tensor(n, n, -1.f, 1.f, 1);
  const tensor b = random_tensor(n, n, -1.f, 1.f, 2);
  tensor c(rlhf::shape{n, n});
  // Plain maps (compile-time inner and outer stride) over the same storage ops::gemm uses.
  const Eigen::Map<const row_major> A(a.data(), n, n);
  const Eigen::Map<const row_major> Bm(b.data(), n, n);
  Eigen::Map<row_major> C(c.data(), n, n);
  for (auto _ : state) {
    C.noalias() = A * Bm;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_gemm_counters(state, n);
}

// ops::gemm on n x n operands; trans_b is the linear-layer layout y = x w^T, w (out, in).
void run_ops_gemm(benchmark::State& state, rlhf::transpose trans_b) {
  const index_t n = state.range(0);
  const tensor a = random_tensor(n, n, -1.f, 1.f, 1);
  const tensor b = random_tensor(n, n, -1.f, 1.f, 2);
  tensor c(rlhf::shape{n, n});
  for (auto _ : state) {
    rlhf::ops::gemm<B>(rlhf::transpose::no, trans_b, 1.f, a, b, 0.f, c);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_gemm_counters(state, n);
}

void BM_gemm_ops(benchmark::State& state) { run_ops_gemm(state, rlhf::transpose::no); }
void BM_gemm_ops_tb(benchmark::State& state) { run_ops_gemm(state, rlhf::transpose::yes); }

// Softmax traffic: every input element read once and every output element written once
// (the nominal minimum; the kernels may touch a row more than once while it is in cache).
template <void (*Op)(const tensor&, tensor&)>
void BM_rows(benchmark::State& state) {
  const index_t rows = state.range(0), cols = state.range(1);
  // Logit-like spread: exp() sees a realistic range, no overflow shortcuts.
  const tensor x = random_tensor(rows, cols, -8.f, 8.f, 3);
  tensor out(rlhf::shape{rows, cols});
  for (auto _ : state) {
    Op(x, out);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  const double bytes = 2.0 * static_cast<double>(rows * cols) * sizeof(float) *
                       static_cast<double>(state.iterations());
  state.counters["bytes_per_second"] = benchmark::Counter(bytes, benchmark::Counter::kIsRate);
}

void softmax(const tensor& x, tensor& out) { rlhf::ops::softmax_rows<B>(x, out); }
void log_softmax(const tensor& x, tensor& out) { rlhf::ops::log_softmax_rows<B>(x, out); }

/// One product of a GPT train step on "small" (B·T = 1024 rows, C = 256, H = 4, T = 128).
struct model_product {
  const char* name;
  bool trans_a, trans_b;
  index_t m, n, k, batch;
};
constexpr std::array<model_product, 10> model_products{{
    {"c_attn forward, x·Wᵀ", false, true, 1024, 768, 256, 1},
    {"c_proj forward", false, true, 1024, 256, 256, 1},
    {"c_fc forward", false, true, 1024, 1024, 256, 1},
    {"mlp c_proj forward", false, true, 1024, 256, 1024, 1},
    {"c_attn input gradient, dY·W", false, false, 1024, 256, 768, 1},
    {"c_fc input gradient", false, false, 1024, 256, 1024, 1},
    {"c_attn weight gradient, dYᵀ·X", true, false, 768, 256, 1024, 1},
    {"mlp c_proj weight gradient", true, false, 256, 1024, 1024, 1},
    {"attention scores Q·Kᵀ, B·H = 32", false, true, 128, 128, 64, 32},
    {"attention output P·V, B·H = 32", false, false, 128, 64, 128, 32},
}};

void BM_gemm_provider(benchmark::State& state) {
  const auto provider = static_cast<rlhf::gemm_provider>(state.range(0));
  const model_product& p = model_products[static_cast<std::size_t>(state.range(1))];
  if (!rlhf::gemm_provider_available(provider)) {
    state.SkipWithError("provider not linked");
    return;
  }
  rlhf::gemm_desc d;
  d.trans_a = p.trans_a;
  d.trans_b = p.trans_b;
  d.m = p.m;
  d.n = p.n;
  d.k = p.k;
  d.batch = p.batch;
  d.a = {0, p.trans_a ? p.m : p.k, p.m * p.k};
  d.b = {0, p.trans_b ? p.k : p.n, p.k * p.n};
  d.c = {0, p.n, p.m * p.n};
  const tensor a = random_tensor(p.batch * p.m, p.k, -1.f, 1.f, 1);
  const tensor b = random_tensor(p.batch * p.k, p.n, -1.f, 1.f, 2);
  tensor c(rlhf::shape{p.batch * p.m, p.n});
  const rlhf::gemm_provider before = rlhf::eigen_gemm_provider();
  rlhf::set_eigen_gemm_provider(provider);
  for (auto _ : state) {
    rlhf::ops::gemm_strided<B>(d, a, b, c);
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  rlhf::set_eigen_gemm_provider(before);
  const double flops = 2.0 * static_cast<double>(p.m * p.n * p.k * p.batch) *
                       static_cast<double>(state.iterations());
  state.counters["FLOPS"] = benchmark::Counter(flops, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(rlhf::to_string(provider)) + "|" + p.name + "|" + std::to_string(p.m) +
                 "×" + std::to_string(p.n) + "×" + std::to_string(p.k));
}

void gemm_provider_cases(benchmark::internal::Benchmark* b) {
  b->ArgNames({"provider", "product"});
  for (const auto& entry : rlhf::enum_names<rlhf::gemm_provider>::values) {
    if (!rlhf::gemm_provider_available(entry.value)) continue;
    for (std::size_t i = 0; i < model_products.size(); ++i) {
      b->Args({static_cast<int64_t>(entry.value), static_cast<int64_t>(i)});
    }
  }
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

void gemm_sizes(benchmark::internal::Benchmark* b) {
  b->ArgName("n")->Arg(256)->Arg(512)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
}

// (B*T, vocab) shapes: many short rows, an LLaMA-size vocab, a GPT-2-size vocab.
void softmax_shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"rows", "cols"})
      ->Args({4096, 256})
      ->Args({512, 32000})
      ->Args({64, 50257})
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
}

}  // namespace

BENCHMARK(BM_gemm_eigen_raw)->Apply(gemm_sizes);
BENCHMARK(BM_gemm_ops)->Apply(gemm_sizes);
BENCHMARK(BM_gemm_ops_tb)->ArgName("n")->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_rows<softmax>)->Name("BM_softmax_rows")->Apply(softmax_shapes);
BENCHMARK(BM_rows<log_softmax>)->Name("BM_log_softmax_rows")->Apply(softmax_shapes);
BENCHMARK(BM_gemm_provider)->Apply(gemm_provider_cases);

BENCHMARK_MAIN();
