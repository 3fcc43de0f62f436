// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Timings of the bundled GPT's full train step and generation on the Eigen backend, as
// Google Benchmark cases and as a server for bench/model_step.py, which times PyTorch
// (bench/torch_model.py) on the same shapes interleaved with it (scripts/bench --only
// model, docs/benchmarks.md).
//
//   BM_gemm_peak            ops::gemm 1024×1024×1024 (no transposes) on the Eigen backend:
//                           the machine's measured fp32 GEMM peak, the denominator of MFU
//   BM_train_step/<config>  one optimizer step on random tokens: gpt_forward →
//                           losses::sft_loss (next-token cross-entropy, mask of ones) →
//                           zero_grads → gpt_backward → adamw::step
//                           config 0 "tiny":  V=256, T=64,  C=128, L=2, H=4, B=8
//                           config 1 "small": V=256, T=128, C=256, L=4, H=4, B=8
//   BM_generate             model::generate on "small" (V=256, C=256, L=4, H=4) with
//                           max_seq_len 144: B=8 prompts of 16 random tokens, 128 new tokens
//                           each (16 + 128 = 144), greedy (temperature 0), no stop tokens, so
//                           every call is one (8, 16) prefill + 127 single-token KV-cache
//                           decode steps and samples 8 · 128 tokens (with their log-probs)
//
// Counters of BM_train_step:
//   tokens_per_second   B·T per step per second (wall time)
//   FLOPS               model FLOP/s = 6 · params · tokens / time, params WITHOUT the padded
//                       embedding rows (vocab_size·C, not padded_vocab_size·C; the LM head is
//                       tied, so wte counts once). 6N ignores the attention score FLOPs
//                       (the usual "model FLOPs" convention); MFU = FLOPS / BM_gemm_peak's
//                       FLOPS (bench/model_step.py takes both from its
//                       interleaved rounds instead)
//   params              that parameter count
//   analytic_bytes      4 · (params + grads + 2 · params of AdamW state + activation floats
//                       of gpt_activations::floats()), the arenas' full (padded) size P
//   peak_rss_bytes      getrusage(RUSAGE_SELF).ru_maxrss after the steps: the process's peak
//                       resident set, so run each config in its own process
//                       (--benchmark_filter=BM_train_step/0 ...) as scripts/bench does
//   baseline_rss_bytes  the resident set when the process first entered BM_train_step,
//                       before any model was allocated (libraries, the benchmark runtime)
//
// Counters of BM_generate:
//   tokens_per_second   B · new tokens per call per second (wall time; the prefill and the
//                       cache allocation are inside the timed call)
//   new_tokens, prompt_tokens, batch
//
// Everything may run on OpenMP threads, so every case uses wall-clock (real) time.
//
// Serve mode, for bench/model_step.py's interleaved comparison with PyTorch:
//   bench_model --serve     reads commands on stdin and answers each with the wall time in
//                           seconds of K calls (after one untimed warm-up call when the case
//                           is first used): "gemm K" (BM_gemm_peak's GEMM), "train C K" (K
//                           train steps of config C, 0 tiny or 1 small), "generate K"
//                           (BM_generate's call); "gemmtime C K" (K train steps of config
//                           C on gemm_timed_backend, answering the wall time spent inside
//                           their products: the step's GEMM floor); "quit" ends. The driver
//                           times PyTorch between two answers, so the two sides alternate
//                           on one machine.
#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/losses/sft.hpp"
#include "rlhf/model/generate.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/optim.hpp"
#include "rlhf/ops/gemm.hpp"
#include "train_step.hpp"
#include "wall_time.hpp"

namespace {

using B = rlhf::eigen_backend;
using tensor = B::tensor;
using rlhf::index_t;
using rlhf::shape;
namespace model = rlhf::model;

struct bench_config {
  const char* name;
  model::gpt_config cfg;
  index_t batch;
};

bench_config config_of(index_t which) {
  if (which == 0) return {"tiny", model::gpt_config::tiny(), 8};
  return {"small", model::gpt_config::small(), 8};
}

double current_rss_bytes() {
  long pages = 0, resident = 0;
  if (std::FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;  // Linux: kilobytes
}

/// The Eigen backend with the wall time of every product added up: ops::gemm_strided and
/// ops::gemm_bias land in gemm and gemm_bias below. gemm_tasks is hidden, so attention
/// issues its products from the calling thread too (its generic path: the same products,
/// the softmax in a pass of its own) and no product runs inside another parallel region.
struct gemm_timed_backend : B {
  static inline double gemm_seconds = 0.0;  ///< Wall time inside products so far.
  static void gemm(const rlhf::gemm_desc& d, const tensor& a, const tensor& b, tensor& c) {
    gemm_seconds += bench::seconds_of([&] { B::gemm(d, a, b, c); }, 1);
  }
  static void gemm_bias(const rlhf::gemm_desc& d, const tensor& a, const tensor& b, tensor& c,
                        const float* c_row) {
    gemm_seconds += bench::seconds_of([&] { B::gemm_bias(d, a, b, c, c_row); }, 1);
  }
  template <class F>
  static void gemm_tasks(index_t, F&&) = delete;
};
static_assert(!rlhf::ops::has_gemm_tasks<gemm_timed_backend>);

/// The train step of config c on backend BK, built and run once (warm) on first use.
template <class BK>
bench::train_step<BK>& warm_step(std::unique_ptr<bench::train_step<BK>>& step, int c) {
  if (!step) {
    const auto bc = config_of(c);
    step = std::make_unique<bench::train_step<BK>>(bc.cfg, bc.batch);
    (void)(*step)();
  }
  return *step;
}

/// C = A·B for random n×n A and B: BM_gemm_peak's GEMM.
struct gemm_case {
  tensor a, b, c;
  explicit gemm_case(index_t n) : a(shape{n, n}), b(shape{n, n}), c(shape{n, n}) {
    std::mt19937 gen(1);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (float& v : a.span()) v = dist(gen);
    for (float& v : b.span()) v = dist(gen);
  }
  void operator()() {
    rlhf::ops::gemm<B>(rlhf::transpose::no, rlhf::transpose::no, 1.0f, a, b, 0.0f, c);
  }
};

/// BM_generate's call: 8 random 16-token prompts, 128 greedy new tokens on "small" with
/// max_seq_len 144.
struct generate_case {
  static constexpr index_t batch = 8, prompt = 16, new_tokens = 128;
  model::gpt<B> m;
  std::vector<std::vector<std::int32_t>> prompts;
  model::generation_config gc;

  static model::gpt_config config() {
    auto cfg = config_of(1).cfg;            // "small"
    cfg.max_seq_len = prompt + new_tokens;  // 144: 128 new tokens after a 16-token prompt
    return cfg;
  }
  generate_case()
      : m(config()), prompts(batch, std::vector<std::int32_t>(static_cast<std::size_t>(prompt))) {
    m.init(1234);
    std::mt19937 gen(11);
    std::uniform_int_distribution<std::int32_t> tok(
        0, static_cast<std::int32_t>(m.config().vocab_size - 1));
    for (auto& p : prompts) {
      for (auto& t : p) t = tok(gen);
    }
    gc.max_new_tokens = new_tokens;
    gc.sampling.temperature = 0.0f;  // greedy: the same work as the PyTorch argmax loop
  }
  /// One call; returns the number of tokens generated (batch · new_tokens unless a row stopped).
  index_t operator()() {
    auto r = model::generate<B>(m, prompts, gc);
    index_t generated = 0;
    for (index_t n : r.lengths) generated += n;
    benchmark::DoNotOptimize(r.tokens.data());
    return generated;
  }
};

void BM_gemm_peak(benchmark::State& state) {
  const index_t n = state.range(0);
  gemm_case g(n);
  for (auto _ : state) {
    g();
    benchmark::DoNotOptimize(g.c.data());
    benchmark::ClobberMemory();
  }
  const double nd = static_cast<double>(n);
  state.counters["FLOPS"] = benchmark::Counter(
      2.0 * nd * nd * nd * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_train_step(benchmark::State& state) {
  // Before anything of this process's benchmarks was allocated (the first call; later
  // calls would see what the allocator kept of the previous runs).
  static const double baseline_rss = current_rss_bytes();
  const auto bc = config_of(state.range(0));
  const auto& cfg = bc.cfg;
  const index_t b = bc.batch, t = cfg.max_seq_len, C = cfg.n_embd;
  state.SetLabel(bc.name);

  bench::train_step<B> step(cfg, b);
  auto& m = step.m;
  auto& acts = step.acts;

  float loss = 0.0f;
  for (auto _ : state) {
    loss = step();
    benchmark::DoNotOptimize(m.params().data());
    benchmark::ClobberMemory();
  }

  const double params = static_cast<double>(
      m.num_params() - (cfg.padded_vocab_size() - cfg.vocab_size) * C);
  const double tokens = static_cast<double>(b * t);
  const double iters = static_cast<double>(state.iterations());
  const double P = static_cast<double>(m.num_params());
  state.counters["tokens_per_second"] =
      benchmark::Counter(tokens * iters, benchmark::Counter::kIsRate);
  state.counters["FLOPS"] =
      benchmark::Counter(6.0 * params * tokens * iters, benchmark::Counter::kIsRate);
  state.counters["params"] = params;
  state.counters["analytic_bytes"] =
      4.0 * (P + P + 2.0 * P + static_cast<double>(acts.floats()));
  state.counters["peak_rss_bytes"] = peak_rss_bytes();
  state.counters["baseline_rss_bytes"] = baseline_rss;
  state.counters["loss"] = loss;
}

void BM_generate(benchmark::State& state) {
  constexpr index_t kBatch = generate_case::batch, kNew = generate_case::new_tokens;
  constexpr index_t kPrompt = generate_case::prompt;
  state.SetLabel("small");
  generate_case g;
  index_t generated = 0;
  for (auto _ : state) {
    generated = g();
    benchmark::ClobberMemory();
  }
  if (generated != kBatch * kNew) {
    state.SkipWithError("generate stopped early");
    return;
  }
  state.counters["tokens_per_second"] = benchmark::Counter(
      static_cast<double>(kBatch * kNew) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.counters["new_tokens"] = static_cast<double>(kNew);
  state.counters["prompt_tokens"] = static_cast<double>(kPrompt);
  state.counters["batch"] = static_cast<double>(kBatch);
}

}  // namespace

BENCHMARK(BM_gemm_peak)->Arg(1024)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_train_step)->ArgName("config")->Arg(0)->Arg(1)->UseRealTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK(BM_generate)->UseRealTime()->Unit(benchmark::kMillisecond);

namespace {

using bench::seconds_of;

/// Serve mode (see the top of this file). Each case is built and warmed on first use.
int serve() {
  std::unique_ptr<gemm_case> gemm;
  std::unique_ptr<bench::train_step<B>> train[2];
  std::unique_ptr<bench::train_step<gemm_timed_backend>> timed[2];
  std::unique_ptr<generate_case> gen;
  std::string cmd;
  while (std::cin >> cmd) {
    if (cmd == "quit") return 0;
    int c = 0, k = 0;
    double seconds = -1.0;
    if (cmd == "gemm" && std::cin >> k && k >= 1) {
      if (!gemm) {
        gemm = std::make_unique<gemm_case>(1024);
        (*gemm)();
      }
      seconds = seconds_of(*gemm, k);
    } else if (cmd == "train" && std::cin >> c >> k && (c == 0 || c == 1) && k >= 1) {
      seconds = seconds_of(warm_step(train[c], c), k);
    } else if (cmd == "gemmtime" && std::cin >> c >> k && (c == 0 || c == 1) && k >= 1) {
      auto& step = warm_step(timed[c], c);
      gemm_timed_backend::gemm_seconds = 0.0;
      (void)seconds_of(step, k);
      seconds = gemm_timed_backend::gemm_seconds;
    } else if (cmd == "generate" && std::cin >> k && k >= 1) {
      if (!gen) {
        gen = std::make_unique<generate_case>();
        if ((*gen)() != generate_case::batch * generate_case::new_tokens) {
          std::fprintf(stderr, "bench_model: generate stopped early\n");
          return 1;
        }
      }
      seconds = seconds_of(*gen, k);
    } else {
      std::fprintf(stderr,
                   "bench_model: expected 'gemm K', 'train C K' or 'gemmtime C K' (C 0 or 1), "
                   "'generate K' or 'quit' (K >= 1)\n");
      return 2;
    }
    std::printf("%.9f\n", seconds);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--serve") == 0) return serve();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
