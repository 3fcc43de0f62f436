// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// One train step of a Llama-family decoder of SmolLM-135M's shape on the Eigen backend:
// V=49152, C=576, MLP 1536 (SwiGLU), L=30, 9 heads, 3 key/value heads, RMSNorm (eps 1e-5),
// rotary positions (theta 10000), tied embeddings, no biases; 134,515,008 parameters. The
// config is built from a LlamaConfig JSON object through model::hf_llama_config, as a
// config.json of the Hub would be. bench/llama_step.py drives it next to
// transformers.LlamaForCausalLM (eager fp32) and prints the comparison (docs/benchmarks.md).
//
// The step is bench/train_step.hpp's (bench_model's GPT-2 train step): gpt_forward ->
// losses::sft_loss (next-token cross-entropy, mean over B·(T-1) positions) -> zero_grads ->
// gpt_backward -> AdamW (lr 1e-3, weight decay 1e-2 on matrices and embeddings), on random
// tokens.
//
// Modes (one per process; the threads are OpenMP's: OMP_NUM_THREADS):
//   bench_llama [--batch B] [--seq T] [--steps N] [--layers L]
//                         N timed steps after one warm-up step: each step's wall time,
//                         tokens/s and loss, then the peak RSS (getrusage ru_maxrss), the
//                         resident set before the model was built, and one JSON line
//   bench_llama --serve [--batch B] [--seq T] [--layers L]
//                         builds the step, runs one warm-up step, prints "ready", then reads
//                         "step K" lines on stdin and answers each with the wall time of K
//                         steps in seconds; "quit" prints a JSON object (peak_rss_bytes,
//                         baseline_rss_bytes, analytic_bytes, params, last_loss) and ends.
//                         llama_step.py times PyTorch between two answers, so the two sides
//                         alternate
//   bench_llama --check FOLDER IDS [--batch B] [--seq T]
//                         loads a save_pretrained folder with model::load_hf_model, checks
//                         that its config equals the one built from the JSON (with the same
//                         layer count), reads B·T int32 token ids (raw, little-endian) from
//                         IDS and runs two steps of the same train step on them; prints
//                         {"loss0": the first step's loss, "loss1": the loss after one AdamW
//                         update, "config_matches": bool}
// Defaults: B=4, T=256, N=3, L=30.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "rlhf/backends/eigen.hpp"
#include "rlhf/model/hf_llama.hpp"
#include "rlhf/model/hf_model.hpp"
#include "rlhf/ops/tensor.hpp"
#include "train_step.hpp"

namespace {

using B = rlhf::eigen_backend;
namespace model = rlhf::model;
namespace ops = rlhf::ops;
using rlhf::index_t;

/// SmolLM-135M's LlamaConfig (HuggingFaceTB/SmolLM-135M config.json, the fields that shape
/// the function), with `layers` hidden layers.
nlohmann::json smollm_135m_json(index_t layers) {
  return {{"architectures", nlohmann::json::array({"LlamaForCausalLM"})},
          {"model_type", "llama"},
          {"vocab_size", 49152},
          {"hidden_size", 576},
          {"intermediate_size", 1536},
          {"num_hidden_layers", layers},
          {"num_attention_heads", 9},
          {"num_key_value_heads", 3},
          {"max_position_embeddings", 2048},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 10000.0},
          {"rope_scaling", nullptr},
          {"tie_word_embeddings", true},
          {"hidden_act", "silu"},
          {"attention_bias", false},
          {"mlp_bias", false},
          {"attention_dropout", 0.0},
          {"torch_dtype", "float32"}};
}

/// The step's config: the JSON's, with max_seq_len = T (train_step sizes its activations
/// for max_seq_len; with rotary positions it only bounds the positions, so the function is
/// unchanged).
model::gpt_config step_config(model::gpt_config cfg, index_t seq) {
  cfg.max_seq_len = seq;
  cfg.validate();
  return cfg;
}

int threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
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

struct options {
  std::string mode;
  std::string folder, ids;
  index_t batch = 4, seq = 256, steps = 3, layers = 30;
};

double seconds_of(bench::train_step<B>& step, index_t k, float* last_loss) {
  const auto t0 = std::chrono::steady_clock::now();
  for (index_t i = 0; i < k; ++i) *last_loss = step();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// 4 bytes · (params + grads + AdamW's two moments + the activations of gpt_activations).
double analytic_bytes(const bench::train_step<B>& step) {
  const double P = static_cast<double>(step.m.num_params());
  return 4.0 * (4.0 * P + static_cast<double>(step.acts.floats()));
}

nlohmann::json memory_json(const bench::train_step<B>& step, double baseline, float loss) {
  return {{"peak_rss_bytes", peak_rss_bytes()},
          {"baseline_rss_bytes", baseline},
          {"analytic_bytes", analytic_bytes(step)},
          {"params", step.m.num_params()},
          {"last_loss", loss}};
}

int run_plain(const options& o) {
  const double baseline = current_rss_bytes();
  const auto cfg = step_config(model::hf_llama_config(smollm_135m_json(o.layers), "SmolLM-135M"),
                               o.seq);
  bench::train_step<B> step(cfg, o.batch);
  const double tokens = static_cast<double>(o.batch * o.seq);
  std::printf("SmolLM-135M shape: %lld parameters, B=%lld, T=%lld, %d OpenMP threads\n",
              static_cast<long long>(step.m.num_params()), static_cast<long long>(o.batch),
              static_cast<long long>(o.seq), threads());
  float loss = 0.0f;
  const double warm = seconds_of(step, 1, &loss);
  std::printf("warm-up step: %.3f s, loss %.5f\n", warm, loss);
  std::vector<double> times;
  for (index_t i = 0; i < o.steps; ++i) {
    const double s = seconds_of(step, 1, &loss);
    times.push_back(s);
    std::printf("step %lld: %.3f s, %.1f tokens/s, loss %.5f\n", static_cast<long long>(i), s,
                tokens / s, loss);
  }
  auto mem = memory_json(step, baseline, loss);
  std::printf("peak RSS %.1f MB (baseline before the model %.1f MB; analytic %.1f MB)\n",
              mem["peak_rss_bytes"].get<double>() / 1e6, baseline / 1e6,
              mem["analytic_bytes"].get<double>() / 1e6);
  mem["step_seconds"] = times;
  mem["tokens_per_step"] = tokens;
  std::printf("%s\n", mem.dump().c_str());
  return 0;
}

int serve(const options& o) {
  const double baseline = current_rss_bytes();
  const auto cfg = step_config(model::hf_llama_config(smollm_135m_json(o.layers), "SmolLM-135M"),
                               o.seq);
  bench::train_step<B> step(cfg, o.batch);
  float loss = 0.0f;
  (void)seconds_of(step, 1, &loss);  // warm up
  std::printf("ready\n");
  std::fflush(stdout);
  std::string cmd;
  index_t k = 0;
  while (std::cin >> cmd) {
    if (cmd == "quit") break;
    if (cmd != "step" || !(std::cin >> k) || k < 1) {
      std::fprintf(stderr, "bench_llama: expected 'step K' or 'quit'\n");
      return 2;
    }
    std::printf("%.9f\n", seconds_of(step, k, &loss));
    std::fflush(stdout);
  }
  std::printf("%s\n", memory_json(step, baseline, loss).dump().c_str());
  std::fflush(stdout);
  return 0;
}

int check(const options& o) {
  const auto loaded = model::load_hf_model<B>(o.folder);
  const auto cfg = step_config(loaded.config(), o.seq);
  const auto expected = step_config(
      model::hf_llama_config(smollm_135m_json(loaded.config().n_layer), "SmolLM-135M"), o.seq);
  bench::train_step<B> step(cfg, o.batch);
  ops::copy_from_host<B>(std::span<const float>(ops::to_host<B>(loaded.params())), step.m.params());
  std::vector<std::int32_t> ids(static_cast<std::size_t>(o.batch * o.seq));
  std::ifstream in(o.ids, std::ios::binary);
  in.read(reinterpret_cast<char*>(ids.data()),
          static_cast<std::streamsize>(ids.size() * sizeof(std::int32_t)));
  if (!in) {
    std::fprintf(stderr, "bench_llama: cannot read %zu int32 ids from %s\n", ids.size(),
                 o.ids.c_str());
    return 1;
  }
  ops::copy_from_host<B>(std::span<const std::int32_t>(ids), step.ids);
  const float loss0 = step();
  const float loss1 = step();
  std::printf("%s\n", nlohmann::json{{"loss0", loss0},
                                     {"loss1", loss1},
                                     {"config_matches", cfg == expected},
                                     {"params", step.m.num_params()}}
                          .dump()
                          .c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const auto& a = args[i];
      const auto next = [&]() -> const std::string& {
        if (i + 1 >= args.size()) throw std::invalid_argument(a + " needs a value");
        return args[++i];
      };
      if (a == "--serve") {
        o.mode = "serve";
      } else if (a == "--check") {
        o.mode = "check";
        o.folder = next();
        o.ids = next();
      } else if (a == "--batch") {
        o.batch = std::stoll(next());
      } else if (a == "--seq") {
        o.seq = std::stoll(next());
      } else if (a == "--steps") {
        o.steps = std::stoll(next());
      } else if (a == "--layers") {
        o.layers = std::stoll(next());
      } else {
        throw std::invalid_argument("unknown argument '" + a + "'");
      }
    }
    if (o.mode == "serve") return serve(o);
    if (o.mode == "check") return check(o);
    return run_plain(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "bench_llama: %s\nusage: bench_llama [--serve | --check FOLDER IDS] [--batch B] "
                 "[--seq T] [--steps N] [--layers L]\n",
                 e.what());
    return 2;
  }
}
