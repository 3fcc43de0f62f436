// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Data-parallel cost on this machine (docs/distributed.md): one optimizer step of the bundled
// GPT on random tokens per rank (train_step.hpp: forward, loss, backward, AdamW) with the
// gradient arena all-reduced (mean) between backward and AdamW, as the trainer does.
//
//   mpirun -np R bench_dist [--config small|tiny] [--batch b] [--steps n] [--warmup w]
//
// Rank 0 prints one JSON line: ranks, batch per rank, the parameter count and the bytes
// all-reduced per step, and the medians (with min and max) over the timed steps of the whole
// step, of the all-reduce alone, and the tokens per second of all ranks together. Each step
// starts at a barrier, so the ranks' clocks measure the same step. bench/dist_scaling.py
// runs it at 1 and 2 ranks, interleaved, and compares.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/dist/mpi.hpp"
#include "train_step.hpp"

namespace {

using B = rlhf::eigen_backend;
using clock_type = std::chrono::steady_clock;

struct spread {
  double median, min, max;
};

spread of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

int run(int argc, char** argv) {
  std::string config = "small";
  rlhf::index_t batch = 4;
  int steps = 10, warmup = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--config") config = v;
    else if (k == "--batch") batch = std::stol(v);
    else if (k == "--steps") steps = std::stoi(v);
    else if (k == "--warmup") warmup = std::stoi(v);
    else throw rlhf::config_error("bench_dist: unknown option " + k);
  }
  const auto cfg = config == "tiny" ? rlhf::model::gpt_config::tiny()
                                    : rlhf::model::gpt_config::small();
  rlhf::dist::mpi_communicator comm;
  bench::train_step<B> s(cfg, batch);
  std::vector<double> step_ms, reduce_ms;
  for (int i = 0; i < warmup + steps; ++i) {
    comm.barrier();
    const auto t0 = clock_type::now();
    rlhf::model::gpt_forward<B>(s.m, s.acts, s.ids);
    (void)rlhf::losses::sft_loss<B>({s.acts.logits, s.ids, s.ones}, s.dlogits, s.lc);
    s.m.zero_grads();
    rlhf::model::gpt_backward<B>(s.m, s.acts, s.ids, s.dlogits);
    const auto t1 = clock_type::now();
    rlhf::dist::all_reduce<B>(comm, s.m.grads(), rlhf::dist::reduce_op::mean);
    const auto t2 = clock_type::now();
    s.opt.step(s.m.params(), s.m.grads(), std::span<const rlhf::model::param_range>(s.ranges));
    const auto t3 = clock_type::now();
    if (i < warmup) continue;
    step_ms.push_back(std::chrono::duration<double, std::milli>(t3 - t0).count());
    reduce_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
  }
  // A step lasts as long as its slowest rank: the maximum over the ranks, step by step.
  std::vector<std::string> all = comm.all_gather(
      std::string(reinterpret_cast<const char*>(step_ms.data()), step_ms.size() * sizeof(double)));
  std::vector<double> step_max(step_ms.size(), 0.0);
  for (const auto& bytes : all) {
    const auto* v = reinterpret_cast<const double*>(bytes.data());
    for (std::size_t k = 0; k < step_max.size(); ++k) step_max[k] = std::max(step_max[k], v[k]);
  }
  if (comm.rank() == 0) {
    const auto st = of(step_max), ar = of(reduce_ms);
    const double tokens = static_cast<double>(comm.size()) * static_cast<double>(batch) *
                          static_cast<double>(cfg.max_seq_len);
    const auto params = static_cast<double>(s.m.num_params());
    std::printf(
        "{\"config\": \"%s\", \"ranks\": %d, \"batch_per_rank\": %ld, \"params\": %.0f, "
        "\"allreduce_bytes\": %.0f, \"step_ms\": [%.3f, %.3f, %.3f], "
        "\"allreduce_ms\": [%.3f, %.3f, %.3f], \"tokens_per_s\": %.1f}\n",
        config.c_str(), comm.size(), static_cast<long>(batch), params, params * 4.0, st.median,
        st.min, st.max, ar.median, ar.min, ar.max, tokens / (st.median / 1000.0));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  rlhf::dist::mpi_environment env(argc, argv);
  return rlhf::dist::abort_on_exception([&] { return run(argc, argv); });
}
