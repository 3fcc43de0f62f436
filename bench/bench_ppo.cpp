// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// One PPO iteration on the "small" GPT (V=259, the byte tokenizer's vocabulary, T=128,
// C=256, L=4, H=4) with its four models, as a user runs it: train::trainer driving
// train::ppo_method. bench/ppo_step.py drives it next to the same iteration in PyTorch
// (docs/benchmarks.md).
//
// The iteration (one rollout and its K = 4 trainer steps; TRL PPOTrainer defaults otherwise):
//   8 prompts of 16 letters (16 tokens: the byte tokenizer adds no BOS to a prompt-only
//   text) drawn from a JSONL file
//   -> one completion each, sampled with the policy's KV cache (temperature 0.7, top-k/top-p
//      off), at most 64 new tokens, a row stops at the byte tokenizer's EOS
//   -> forwards over the 8 prompt + completion rows: the policy (old log-probs, logits / 0.7),
//      the frozen reference (reference log-probs), the critic (values V_t = v_head(h_{t-1}))
//      and the frozen reward model (its "score" head at the last real token)
//   -> per-token rewards -β·(logp - ref_logp) (k1, β = 0.05) + the score at the last token,
//      GAE (γ 1, λ 0.95), advantages whitened over the batch
//   -> 4 PPO epochs of 1 minibatch of the 8 rows: policy and critic forwards, the clipped
//      surrogate (0.2) + 0.1 · clipped value loss (0.2), backward through both, the global
//      gradient-norm clip (1.0) over policy, critic and value head, AdamW on each (lr 1e-6,
//      constant, weight decay 0); one metrics line per step (logging_steps 1)
//
// "critic" runs a separate critic trunk (four gpts: policy, reference, critic, reward
// model); "shared" puts the value head on the policy's trunk (three gpts).
//
// Modes (one per process):
//   bench_ppo --serve critic|shared   trains with the trainer; after 2 warm-up iterations
//                            (8 steps) it reads "step K" lines on stdin from inside the
//                            on_step callback, runs K trainer steps (K a multiple of 4: whole
//                            iterations), answers "TOTAL ROLLOUT" (seconds for the K steps,
//                            and the part spent in prepare_step: drawing and tokenizing the
//                            prompts, sampling, the four scoring forwards, rewards, GAE);
//                            "quit" ends.
//   bench_ppo --memory critic|shared [MICRO]  builds the models, the method and the trainer,
//                            runs 2 iterations (MICRO rows a micro-batch, default 8: the
//                            minibatch in 8 / MICRO accumulated micro-batches; MICRO also
//                            chunks the rollout's scoring forwards) and prints one JSON
//                            object: the resident set
//                            (/proc/self/status VmRSS before the models, with the high-water
//                            mark reset there, and VmHWM at the last step, kB),
//                            each model's parameter, gradient and AdamW-state bytes, and the
//                            activation bytes of one forward cache.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "online_bench.hpp"
#include "rlhf/backends/eigen.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/ppo.hpp"
#include "rlhf/train/trainer.hpp"

namespace {

namespace model = rlhf::model;
namespace train = rlhf::train;
using B = rlhf::eigen_backend;
using bench::clock_type;
using bench::Tok;
using rlhf::index_t;

constexpr index_t prompts_per_rollout = 8;
constexpr index_t new_tokens = 64;
constexpr index_t prompt_len = 16;
constexpr index_t ppo_epochs = 4;  // one minibatch each: 4 trainer steps an iteration
constexpr int prompt_pool = 64;

/// `micro` rows a micro-batch (the minibatch of 8 rows in 8 / micro micro-batches).
train::ppo_config ppo_cfg(const std::filesystem::path& dir, index_t steps,
                          index_t micro = prompts_per_rollout) {
  train::ppo_config c;
  c.args.output_dir = dir.string();
  c.args.per_device_train_batch_size = micro;  // 1 minibatch: all the rollout's rows
  c.args.gradient_accumulation_steps = prompts_per_rollout / micro;
  c.args.max_steps = steps;
  c.args.logging_steps = 1;
  c.args.eval_steps = 0;
  c.args.learning_rate = 1e-6f;
  c.args.lr_scheduler_type = model::lr_schedule_type::constant;
  c.num_ppo_epochs = ppo_epochs;
  c.num_mini_batches = 1;
  c.response_length = new_tokens;
  return c;  // temperature 0.7, kl_coef 0.05 (k1), clip 0.2 / 0.2, vf_coef 0.1, γ 1, λ 0.95
}

/// The four models: the policy, its frozen copy, the critic trunk + value head, the frozen
/// reward model + score head (all randomly initialised, seeded).
struct four_models {
  model::gpt<B> policy{bench::small_config()};
  model::gpt<B> reference{bench::small_config(), /*trainable=*/false};
  std::optional<model::gpt<B>> critic;  // none with the value head on the policy
  model::scalar_head<B> v_head = model::make_value_head<B>(bench::small_config().n_embd);
  model::gpt<B> reward{bench::small_config(), /*trainable=*/false};
  model::scalar_head<B> score = model::make_reward_head<B>(bench::small_config().n_embd,
                                                           /*trainable=*/false);
  bool shared;

  explicit four_models(bool shared_trunk) : shared(shared_trunk) {
    policy.init(1234);
    rlhf::ops::transform<B>(reference.params(), rlhf::fn::identity{}, policy.params());
    if (!shared) critic.emplace(bench::small_config()).init(1235);
    v_head.init(1236);
    reward.init(1237);
    score.init(1238, 0.5f);
  }
  [[nodiscard]] train::ppo_models<B> view() {
    train::ppo_models<B> m;
    m.policy = &policy;
    m.reference = &reference;
    m.value_head = &v_head;
    m.value_model = critic ? &*critic : nullptr;
    m.reward_model = &reward;
    m.reward_head = &score;
    return m;
  }
};

/// ppo_method with its rollout (prepare_step) timed; the trainer calls this prepare_step.
class timed_ppo : public train::ppo_method<B, Tok> {
 public:
  using train::ppo_method<B, Tok>::ppo_method;
  bench::step_server* server = nullptr;
  auto prepare_step(std::span<const std::uint64_t> idx, index_t step) {
    const auto t0 = clock_type::now();
    auto m = train::ppo_method<B, Tok>::prepare_step(idx, step);
    if (server != nullptr) server->add_part(bench::seconds(t0, clock_type::now()));
    return m;
  }
};

bool shared_of(const std::string& variant) {
  if (variant != "critic" && variant != "shared") {
    std::fprintf(stderr, "bench_ppo: the variant is critic or shared, got '%s'\n", variant.c_str());
    std::exit(2);
  }
  return variant == "shared";
}

int serve(bool shared) {
  const bench::scratch_dir scratch("ppo_serve", prompt_pool, prompt_len);
  four_models ms(shared);
  auto source = bench::prompt_source(scratch.prompts());
  const auto cfg = ppo_cfg(scratch.dir / "run", 1'000'000);
  timed_ppo method(ms.view(), source, cfg);
  bench::step_server server("bench_ppo", 2 * ppo_epochs);
  method.server = &server;
  train::trainer<B, timed_ppo>* tp = nullptr;
  bool shown = false;
  train::callbacks cb;
  cb.on_step = [&](const train::metrics_record& rec) {
    (void)rec["loss"].get<double>();  // what a progress display reads
    if (!shown && rec.contains("completions/max_length")) {
      std::fprintf(stderr, "bench_ppo: longest completion %.0f tokens, mean %.1f\n",
                   rec["completions/max_length"].get<double>(),
                   rec["completions/mean_length"].get<double>());
      shown = true;
    }
    server.on_step([&] { tp->request_stop(); });
  };
  train::trainer<B, timed_ppo> t(method, cfg.args, cb);
  tp = &t;
  (void)t.train();
  return 0;
}

/// A field of /proc/self/status in kB ("VmRSS", "VmHWM").
long status_kb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  }
  return -1;
}

int memory(bool shared, index_t micro) {
  const bench::scratch_dir scratch("ppo_memory", prompt_pool, prompt_len);
  {  // start the OpenMP and BLAS threads outside the measured part
    model::gpt<B> warm(model::gpt_config::tiny(), false);
    warm.init(1);
    model::gpt_activations<B> acts(warm.config(), 1, 8);
    typename B::index_tensor ids(rlhf::shape{1, 8});
    const std::vector<std::int32_t> host(8, 1);
    rlhf::ops::copy_from_host<B>(std::span<const std::int32_t>(host), ids);
    model::gpt_forward<B>(warm, acts, ids);
  }
  std::ofstream("/proc/self/clear_refs") << "5";  // VmHWM := VmRSS
  const long rss0 = status_kb("VmRSS"), hwm0 = status_kb("VmHWM");
  long rss_models = 0, hwm_steps = 0, steps = 0;
  {
    four_models ms(shared);
    rss_models = status_kb("VmRSS");
    auto source = bench::prompt_source(scratch.prompts());
    const auto cfg = ppo_cfg(scratch.dir / "run", 1'000'000, micro);
    timed_ppo method(ms.view(), source, cfg);
    train::trainer<B, timed_ppo>* tp = nullptr;
    train::callbacks cb;
    cb.on_step = [&](const train::metrics_record&) {
      // Read before the trainer's closing checkpoint, which is not part of an iteration.
      if (++steps == 2 * ppo_epochs) {
        hwm_steps = status_kb("VmHWM");
        tp->request_stop();
      }
    };
    train::trainer<B, timed_ppo> t(method, cfg.args, cb);
    tp = &t;
    (void)t.train();
  }
  const auto cfg = bench::small_config();
  const auto trunk = static_cast<double>(model::gpt<B>(cfg, false).num_params()) * 4;
  const auto head = static_cast<double>(cfg.n_embd + 1) * 4;
  // Trained: parameters, gradients, AdamW's two moments; frozen: parameters only.
  nlohmann::json models = {{"policy", 4 * trunk},
                           {"reference", trunk},
                           {"value_head", 4 * head},
                           {"reward_model", trunk + head}};
  if (!shared) models["critic"] = 4 * trunk;
  const model::gpt_activations<B> one(cfg, micro, prompt_len + new_tokens);
  const nlohmann::json out = {{"variant", shared ? "shared" : "critic"},
                              {"micro_batch", micro},
                              {"rss_before_kb", rss0},
                              {"hwm_before_kb", hwm0},
                              {"rss_after_models_kb", rss_models},
                              {"hwm_after_steps_kb", hwm_steps},
                              {"steps", steps},
                              {"model_bytes", models},
                              {"activation_bytes_per_cache", 4.0 * one.floats()},
                              // The policy's, and the critic's when separate: the frozen
                              // reference and reward model (same config) score in the
                              // policy's cache.
                              {"forward_caches", shared ? 1 : 2}};
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "--serve") return serve(shared_of(args[1]));
  if ((args.size() == 2 || args.size() == 3) && args[0] == "--memory") {
    const index_t micro = args.size() == 3 ? std::stoi(args[2]) : prompts_per_rollout;
    if (micro < 1 || prompts_per_rollout % micro != 0) {
      std::fprintf(stderr, "bench_ppo: the micro-batch divides %lld\n",
                   static_cast<long long>(prompts_per_rollout));
      return 2;
    }
    return memory(shared_of(args[1]), micro);
  }
  std::fprintf(stderr, "usage: bench_ppo --serve critic|shared | --memory critic|shared [MICRO]\n");
  return 2;
}
