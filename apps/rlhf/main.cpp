// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The `rlhf` command-line tool: sft, reward, dpo, kto, orpo, cpo, bco, ppo, grpo, rloo,
// generate, bon, eval and plot
// (docs/cli.md).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "options.hpp"
#include "progress.hpp"
#include "rlhf/backends/eigen.hpp"
#include "rlhf/cai/constitution.hpp"
#include "rlhf/cai/critique_revise.hpp"
#include "rlhf/cai/judge.hpp"
#include "rlhf/cai/model_generator.hpp"
#include "rlhf/cai/model_judge.hpp"
#include "rlhf/cai/rlaif.hpp"
#include "rlhf/cai/rlaif_file.hpp"
#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/data/dataset.hpp"
#include "rlhf/data/formats.hpp"
#include "rlhf/data/tokenize.hpp"
#include "rlhf/dist/communicator.hpp"
#include "rlhf/losses/cpo.hpp"
#include "rlhf/losses/dpo.hpp"
#include "rlhf/losses/kto.hpp"
#include "rlhf/model/any_tokenizer.hpp"
#include "rlhf/model/checkpoint.hpp"
#include "rlhf/model/detail/atomic_file.hpp"
#include "rlhf/model/generate.hpp"
#include "rlhf/model/hf_chat_template.hpp"
#include "rlhf/model/hf_model.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/train/bco.hpp"
#include "rlhf/train/best_of_n.hpp"
#include "rlhf/train/command_reward.hpp"
#include "rlhf/train/cpo.hpp"
#include "rlhf/train/dpo.hpp"
#include "rlhf/train/grpo.hpp"
#include "rlhf/train/kto.hpp"
#include "rlhf/train/model_reward.hpp"
#include "rlhf/train/monitors.hpp"
#include "rlhf/train/orpo.hpp"
#include "rlhf/train/policy_eval.hpp"
#include "rlhf/train/ppo.hpp"
#include "rlhf/train/reward.hpp"
#include "rlhf/train/rloo.hpp"
#include "rlhf/train/sft.hpp"
#include "rlhf/train/trainer.hpp"
#ifdef RLHF_CLI_HTTP
#include "rlhf/cai/http_chat.hpp"
#endif
#ifdef RLHF_CLI_MPI
#include "rlhf/dist/mpi.hpp"
#endif

extern char** environ;

namespace rlhf_cli {
namespace {

using B = rlhf::eigen_backend;
namespace fs = std::filesystem;
namespace model = rlhf::model;
namespace train = rlhf::train;
namespace data = rlhf::data;
using json = nlohmann::json;
using tok_t = model::any_tokenizer;  // the byte tokenizer, or a --model folder's BPE

// ---- signals ------------------------------------------------------------------------------

// The handler sets g_interrupted and, while a trainer runs, calls its request_stop() (an
// atomic store) through g_stop, a lock-free pointer to a function that knows the trainer.
std::atomic<bool> g_interrupted{false};
std::atomic<void (*)()> g_stop{nullptr};

/// The processes training together: MPI's world when a launcher (mpirun) started this one,
/// else this process alone. Rank 0 prints and writes; every rank trains.
rlhf::dist::any_communicator& world() {
  static rlhf::dist::any_communicator group;
  return group;
}
/// Whether this process prints and writes the run's outputs (rank 0).
bool leader() { return world().rank() == 0; }
static_assert(std::atomic<bool>::is_always_lock_free);
static_assert(std::atomic<void (*)()>::is_always_lock_free);

extern "C" void on_signal(int sig) {
  g_interrupted.store(true);
  if (auto* f = g_stop.load()) f();
  std::signal(sig, SIG_DFL);  // a second Ctrl-C ends the program at once
}

/// The trainer a signal stops (one run at a time).
template <class T>
struct stop_slot {
  static inline std::atomic<T*> trainer{nullptr};
  static void request() noexcept {
    if (auto* t = trainer.load()) t->request_stop();
  }
};

// ---- helpers ------------------------------------------------------------------------------

/// The interpreter the plotting script runs with: $RLHF_PYTHON or /usr/bin/python3.
std::string python() {
  if (const char* p = std::getenv("RLHF_PYTHON"); p != nullptr && *p != '\0') return p;
  return "/usr/bin/python3";
}

/// Runs argv without a shell; the exit status (-1 when it could not start).
int run_process(const std::vector<std::string>& argv, bool quiet) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (quiet) {
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  }
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool matplotlib_available() {
  return run_process({python(), "-c", "import matplotlib"}, true) == 0;
}

/// tools/plot_metrics.py: beside the executable's source tree, or installed beside it.
fs::path plot_script() {
  std::vector<fs::path> candidates;
  if (const char* p = std::getenv("RLHF_PLOT_SCRIPT"); p != nullptr && *p != '\0') {
    candidates.emplace_back(p);
  }
  candidates.emplace_back(RLHF_CLI_SOURCE_DIR "/tools/plot_metrics.py");
  std::error_code ec;
  const fs::path self = fs::canonical("/proc/self/exe", ec);
  if (!ec) candidates.push_back(self.parent_path().parent_path() / "share/rlhfpp/plot_metrics.py");
  for (const auto& c : candidates) {
    if (fs::exists(c, ec)) return c;
  }
  throw rlhf::io_error("cannot find the plotting script plot_metrics.py");
}

int plot(const fs::path& run_dir) {
  if (!fs::exists(run_dir / "metrics.jsonl")) {
    throw rlhf::io_error(run_dir.string() + ": no metrics.jsonl");
  }
  const int rc = run_process({python(), plot_script().string(), run_dir.string()}, false);
  if (rc < 0) throw rlhf::io_error("plotting failed: cannot run " + python());
  if (rc != 0) {
    throw rlhf::io_error("plotting failed: " + python() + " exited with status " +
                         std::to_string(rc));
  }
  return 0;
}

/// The format of the first example of a JSONL file (nullopt: none readable).
std::optional<data::format> first_format(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw rlhf::io_error(file.string() + ": cannot open the file");
  for (std::string line; std::getline(in, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      return data::detect_format(json::parse(line));
    } catch (const json::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

/// `p` or, for a folder, the model.safetensors in it.
fs::path model_file(const fs::path& p) { return fs::is_directory(p) ? p / "model.safetensors" : p; }

/// A model read from a checkpoint.
std::unique_ptr<model::gpt<B>> load_model(const fs::path& path, bool trainable) {
  const auto file = model_file(path);
  auto m = std::make_unique<model::gpt<B>>(model::load_config(file), trainable);
  model::load_checkpoint<B>(file, *m);
  return m;
}

// ---- the training options -------------------------------------------------------------------

std::vector<option_def> common_defs(const train::training_args& a) {
  using k = kind;
  return {
      {"train_file", k::path, "", "Training data (JSONL)", {}, "", true},
      {"eval_file", k::path, "", "Evaluation data (JSONL); none: hold out --eval-fraction"},
      {"output_dir",
       k::path,
       "",
       "Folder of config.json, metrics.jsonl, checkpoints, the model",
       {},
       "",
       true},
      {"model", k::text, "tiny",
       "A preset of a fresh random-init model (tiny, small, gpt2_124m) or a Hugging Face "
       "model folder (GPT-2, Llama, Qwen2; its tokenizer and chat template come along)"},
      {"chat_template",
       k::choice,
       "auto",
       "Prompt format with a --model folder: auto (the folder's chat template, else plain "
       "markers), chatml, plain (<|user|> / <|assistant|> markers)",
       {"auto", "chatml", "plain"}},
      {"hf_dtype",
       k::choice,
       "float32",
       "Weights' dtype of <output-dir>/hf_model with a --model folder",
       {"float32", "bfloat16", "float16"}},
      {"init_from", k::path, "", "Start from this checkpoint (.safetensors) instead of a preset"},
      {"resume", k::path, "", "Continue the run saved in this checkpoint-N folder"},
      {"n_layer", k::integer, nullptr, "Override the model's layers", {}, "the model's"},
      {"n_head", k::integer, nullptr, "Override the model's attention heads", {}, "the model's"},
      {"n_embd", k::integer, nullptr, "Override the model's width", {}, "the model's"},
      {"max_seq_len",
       k::integer,
       nullptr,
       "Override the model's context length",
       {},
       "the model's"},
      {"dropout", k::real, nullptr, "Override the model's dropout probability", {}, "the model's"},
      {"skip_bad_lines", k::boolean, false, "Skip (and count) malformed data lines"},
      {"plot",
       k::boolean,
       nullptr,
       "Plot metrics.jsonl at the end (tools/plot_metrics.py)",
       {},
       "true when python3 with matplotlib is found"},
      {"learning_rate", k::real, short_float(a.learning_rate), "Peak learning rate"},
      {"per_device_train_batch_size", k::integer, a.per_device_train_batch_size,
       "Examples per micro-batch"},
      {"per_device_eval_batch_size", k::integer, a.per_device_eval_batch_size,
       "Examples per evaluation batch"},
      {"gradient_accumulation_steps", k::integer, a.gradient_accumulation_steps,
       "Micro-batches per optimizer step"},
      {"num_train_epochs", k::real, a.num_train_epochs, "Epochs (when --max-steps <= 0)"},
      {"max_steps", k::integer, a.max_steps, "Optimizer steps; > 0 overrides the epochs"},
      {"lr_scheduler_type",
       k::choice,
       std::string(model::to_string(a.lr_scheduler_type)),
       "Learning-rate schedule",
       {"constant", "linear", "cosine"}},
      {"warmup_steps", k::integer, a.warmup_steps, "Linear warm-up steps"},
      {"warmup_ratio", k::real, short_float(a.warmup_ratio), "Warm-up as a fraction of the steps"},
      {"weight_decay", k::real, short_float(a.weight_decay), "AdamW weight decay"},
      {"adam_beta1", k::real, short_float(a.adam_beta1), "AdamW beta1"},
      {"adam_beta2", k::real, short_float(a.adam_beta2), "AdamW beta2"},
      {"adam_epsilon", k::real, short_float(a.adam_epsilon), "AdamW epsilon"},
      {"max_grad_norm", k::real, short_float(a.max_grad_norm),
       "Gradient-norm clip; <= 0 disables it"},
      {"logging_steps", k::integer, a.logging_steps, "Log every this many steps"},
      {"eval_steps", k::integer, a.eval_steps, "Evaluate every this many steps; 0: at the end"},
      {"save_steps", k::integer, a.save_steps, "Checkpoint every this many steps; 0: at the end"},
      {"save_total_limit", k::integer, a.save_total_limit, "Keep this many checkpoints; 0: all"},
      {"seed", k::unsigned_integer, a.seed, "Data order, initialisation and dropout seed"},
      {"eval_fraction", k::real, short_float(a.eval_fraction),
       "Held-out share of the training file when there is no --eval-file"},
      {"validation",
       k::choice,
       std::string(rlhf::to_string(a.validation)),
       "Input checks while training: full (every value), cheap (shapes and scalars), none "
       "(bounds only)",
       {"full", "cheap", "none"}},
  };
}

/// The names of E's values, in declaration order (its rlhf::enum_names table).
template <class E>
std::vector<std::string> choice_names() {
  std::vector<std::string> out;
  for (const auto& entry : rlhf::enum_names<E>::values) out.emplace_back(entry.name);
  return out;
}

std::vector<option_def> sft_defs() {
  const train::sft_config c;
  auto d = common_defs(c.args);
  d.push_back({"max_length",
               kind::integer,
               static_cast<std::int64_t>(c.max_length),
               "Longest tokenized sequence",
               {},
               "1024, capped at the model's max_seq_len"});
  d.push_back({"completion_only_loss", kind::boolean, c.completion_only_loss,
               "Prompt-completion data: loss on the completion only"});
  d.push_back({"loss_type", kind::choice, std::string(rlhf::losses::to_string(c.loss_type)),
               "SFT loss", choice_names<rlhf::losses::sft_loss_type>()});
  return d;
}

/// max_length, max_prompt_length, max_completion_length and truncation_mode of a config `c`
/// of the preference and unpaired methods.
template <class C>
void add_length_defs(std::vector<option_def>& d, const C& c) {
  d.push_back({"max_length",
               kind::integer,
               static_cast<std::int64_t>(c.max_length),
               "Longest prompt + completion",
               {},
               "1024, capped at the model's max_seq_len"});
  d.push_back({"max_prompt_length", kind::integer, static_cast<std::int64_t>(c.max_prompt_length),
               "Longest prompt part; 0: no limit"});
  d.push_back({"max_completion_length", kind::integer,
               static_cast<std::int64_t>(c.max_completion_length),
               "Longest completion part; 0: no limit"});
  d.push_back({"truncation_mode", kind::choice, "keep_end", "Which end of a long prompt stays",
               choice_names<rlhf::data::truncation_mode>()});
}

/// disable_dropout of a config `c`.
template <class C>
void add_dropout_def(std::vector<option_def>& d, const C& c) {
  d.push_back(
      {"disable_dropout", kind::boolean, c.disable_dropout, "Train without the policy's dropout"});
}

/// The options of a preference or unpaired method of config `c`: the shared ones, beta
/// (help `beta_help`), then `extra`, the length limits and disable_dropout.
template <class C>
std::vector<option_def> method_defs(const C& c, const char* beta_help,
                                    std::vector<option_def> extra) {
  auto d = common_defs(c.args);
  d.push_back({"beta", kind::real, short_float(c.loss.beta), beta_help});
  d.insert(d.end(), extra.begin(), extra.end());
  add_length_defs(d, c);
  add_dropout_def(d, c);
  return d;
}

std::vector<option_def> kto_defs() {
  const train::kto_config c;
  return method_defs(
      c, "Scale of the implicit rewards",
      {{"loss_type", kind::choice, std::string(rlhf::losses::to_string(c.loss.loss_type)),
        "KTO loss", choice_names<rlhf::losses::kto_loss_type>()},
       {"desirable_weight", kind::real, short_float(c.loss.desirable_weight),
        "Weight of the desirable examples' losses"},
       {"undesirable_weight", kind::real, short_float(c.loss.undesirable_weight),
        "Weight of the undesirable examples' losses"}});
}

std::vector<option_def> orpo_defs() {
  return method_defs(train::orpo_config{}, "Weight of the odds-ratio term (lambda of the paper)",
                     {});
}

std::vector<option_def> cpo_defs() {
  const train::cpo_config c;
  return method_defs(
      c, "Scale of the rewards",
      {{"loss_type", kind::choice, std::string(rlhf::losses::to_string(c.loss.loss_type)),
        "Preference term (simpo with --cpo-alpha 0 is SimPO)",
        choice_names<rlhf::losses::cpo_loss_type>()},
       {"label_smoothing", kind::real, short_float(c.loss.label_smoothing),
        "Label smoothing (sigmoid and simpo)"},
       {"simpo_gamma", kind::real, short_float(c.loss.simpo_gamma),
        "Target reward margin of simpo"},
       {"cpo_alpha", kind::real, short_float(c.loss.cpo_alpha),
        "Weight of the chosen completions' NLL term"},
       {"alpha", kind::real, short_float(c.loss.alpha), "AlphaPO reward shape; 0: log-probs"}});
}

std::vector<option_def> bco_defs() {
  return method_defs(train::bco_config{}, "Scale of the implicit rewards", {});
}

std::vector<option_def> dpo_defs() {
  const train::dpo_config c;
  auto d = common_defs(c.args);
  d.push_back({"beta", kind::real, short_float(c.loss.beta), "Scale of the implicit rewards"});
  d.push_back({"loss_type", kind::list, json::array({"sigmoid"}), "DPO loss(es)",
               choice_names<rlhf::losses::dpo_loss_type>()});
  d.push_back({"loss_weights",
               kind::text,
               "",
               "Comma list of weights, one per loss",
               {},
               "1 for each loss"});
  d.push_back({"label_smoothing", kind::real, short_float(c.loss.label_smoothing),
               "Label smoothing (cDPO / robust / exo_pair epsilon)"});
  d.push_back({"f_divergence_type", kind::choice,
               std::string(rlhf::losses::to_string(c.loss.f_divergence_type)),
               "Score of the log-ratios", choice_names<rlhf::losses::f_divergence_type>()});
  d.push_back({"f_alpha_divergence_coef", kind::real, short_float(c.loss.f_alpha_divergence_coef),
               "alpha of alpha_divergence"});
  d.push_back({"discopop_tau", kind::real, short_float(c.loss.discopop_tau), "tau of discopop"});
  d.push_back({"ld_alpha",
               kind::real,
               nullptr,
               "LD-DPO: weight of completion tokens past the shorter side's length, in [0, 1]",
               {},
               "none (plain sums)"});
  add_length_defs(d, c);
  d.push_back({"precompute_ref_log_probs", kind::boolean, c.precompute_ref_log_probs,
               "Reference log-probs once, before training"});
  d.push_back({"use_soft_labels", kind::boolean, c.use_soft_labels,
               "Train on each pair's \"soft_label\" (per-pair cDPO; loss_type sigmoid)"});
  return d;
}

/// The thresholds of the failure-mode monitors (train/monitors.hpp).
void add_monitor_defs(std::vector<option_def>& d) {
  const train::monitor_config m;
  d.push_back({"monitor_reward_drift_sigmas", kind::real, m.reward_drift_sigmas,
               "Warn when the reward moves this many baseline stds; 0: off"});
  d.push_back({"monitor_collapse_std_fraction", kind::real, m.collapse_std_fraction,
               "Warn when reward_std falls below this fraction of its baseline; 0: off"});
  d.push_back({"monitor_min_entropy", kind::real, m.min_entropy,
               "Warn when the policy's entropy falls below this; 0: off"});
  d.push_back({"monitor_length_growth", kind::real, m.length_growth,
               "Warn when completions grow past this multiple of their baseline; 0: off"});
  d.push_back({"monitor_max_kl", kind::real, m.max_kl,
               "Warn when the KL to the reference exceeds this; 0: off"});
}

/// The reward options of the online methods (see online_defs).
void add_reward_defs(std::vector<option_def>& d) {
  d.push_back({"reward_command",
               kind::text,
               "",
               "Shell command scoring completions: JSON lines {prompt, completion} on stdin, one "
               "number or null per line on stdout",
               {},
               "none"});
  d.push_back(
      {"reward_command_timeout", kind::real, 60.0, "Seconds a reward command may take per batch"});
  d.push_back({"reward_model",
               kind::path,
               "",
               "Reward model checkpoint (trunk + score head, from rlhf reward)",
               {},
               "none"});
  d.push_back({"reward_weights",
               kind::text,
               "",
               "Comma list of weights: command first, then model",
               {},
               "1 for each reward"});
}

/// The options of the online methods (GRPO, RLOO) of config `c`: the shared ones, sampling,
/// the clip range, then `extra`, then the reward sources.
template <class C>
std::vector<option_def> online_defs(const C& c, rlhf::index_t max_completion_length,
                                    std::vector<option_def> extra) {
  auto d = common_defs(c.args);
  d.push_back({"num_generations", kind::integer, c.loss.num_generations,
               "Completions sampled per prompt (a group)"});
  d.push_back({"num_generations_eval",
               kind::integer,
               c.num_generations_eval,
               "Completions per prompt in evaluation",
               {},
               "0 = --num-generations"});
  d.push_back({"max_completion_length",
               kind::integer,
               max_completion_length,
               "New tokens at most per completion",
               {},
               "512, at most half the model's max_seq_len"});
  d.push_back({"temperature", kind::real, short_float(c.temperature),
               "Sampling temperature (also divides the training logits)"});
  d.push_back({"top_p", kind::real, short_float(c.top_p), "Nucleus sampling mass; 1: off"});
  d.push_back({"top_k", kind::integer, c.top_k, "Sample from the k most likely; 0: off"});
  d.push_back({"beta", kind::real, short_float(c.loss.beta),
               "KL coefficient to the initial policy; 0: no reference model"});
  d.push_back({"epsilon", kind::real, short_float(c.loss.epsilon), "Lower clip range"});
  d.push_back({"epsilon_high", kind::real, nullptr, "Upper clip range", {}, "--epsilon"});
  d.insert(d.end(), extra.begin(), extra.end());
  d.push_back({"mask_truncated_completions", kind::boolean, c.mask_truncated_completions,
               "No loss on completions that end without EOS"});
  d.push_back(
      {"disable_dropout", kind::boolean, c.disable_dropout, "Train without the policy's dropout"});
  add_monitor_defs(d);
  add_reward_defs(d);
  return d;
}

std::vector<option_def> grpo_defs() {
  const train::grpo_config c;
  return online_defs(
      c, c.loss.max_completion_length,
      {{"loss_type", kind::choice, std::string(rlhf::losses::to_string(c.loss.loss_type)),
        "Aggregation of the per-token losses", choice_names<rlhf::losses::grpo_loss_type>()},
       {"scale_rewards", kind::choice, std::string(rlhf::losses::to_string(c.loss.scale_rewards)),
        "Std that divides the advantages", choice_names<rlhf::losses::grpo_scale_rewards>()},
       {"importance_sampling_level", kind::choice,
        std::string(rlhf::losses::to_string(c.loss.importance_sampling_level)),
        "Ratios per token (GRPO) or per sequence (GSPO)",
        choice_names<rlhf::losses::grpo_importance_sampling_level>()},
       {"multi_objective_aggregation", kind::choice,
        std::string(rlhf::losses::to_string(c.loss.multi_objective_aggregation)),
        "How several rewards become one advantage",
        choice_names<rlhf::losses::grpo_multi_objective_aggregation>()}});
}

std::vector<option_def> rloo_defs() {
  const train::rloo_config c;
  return online_defs(c, c.max_completion_length,
                     {{"normalize_advantages", kind::boolean, c.loss.normalize_advantages,
                       "Normalise the advantages over the batch"}});
}

std::vector<option_def> ppo_defs() {
  const train::ppo_config c;
  auto d = common_defs(c.args);
  d.push_back({"num_ppo_epochs", kind::integer, c.num_ppo_epochs, "Passes over each rollout"});
  d.push_back({"num_mini_batches", kind::integer, c.num_mini_batches,
               "Optimizer steps per pass (a rollout holds per_device_train_batch_size x "
               "gradient_accumulation_steps x this many prompts)"});
  d.push_back({"kl_coef", kind::real, short_float(c.kl_coef),
               "KL penalty coefficient (the adaptive controller's start)"});
  d.push_back({"kl_estimator",
               kind::choice,
               std::string(rlhf::rl::to_string(c.kl_estimator)),
               "Per-token KL estimator of the penalty",
               {"k1", "k3"}});
  d.push_back({"cliprange", kind::real, short_float(c.cliprange), "Policy ratio clip"});
  d.push_back({"vf_coef", kind::real, short_float(c.vf_coef), "Value-loss weight"});
  d.push_back({"cliprange_value", kind::real, short_float(c.cliprange_value), "Value clip"});
  d.push_back({"gamma", kind::real, short_float(c.gamma), "GAE discount"});
  d.push_back({"lam", kind::real, short_float(c.lam), "GAE lambda"});
  d.push_back({"whiten_rewards", kind::boolean, c.whiten_rewards, "Whiten the token rewards"});
  d.push_back({"response_length",
               kind::integer,
               c.response_length,
               "New tokens at most per completion",
               {},
               "53, at most half the model's max_seq_len"});
  d.push_back({"temperature", kind::real, short_float(c.temperature),
               "Sampling temperature (also divides the training logits)"});
  d.push_back({"missing_eos_penalty",
               kind::real,
               nullptr,
               "Subtracted from the score of completions without EOS",
               {},
               "none"});
  d.push_back({"adaptive_kl_target",
               kind::real,
               nullptr,
               "Adaptive KL controller's target KL (Ziegler et al.)",
               {},
               "none: fixed kl_coef"});
  d.push_back({"adaptive_kl_horizon", kind::real, 10000.0, "Adaptive KL controller's horizon"});
  d.push_back({"target_kl",
               kind::real,
               nullptr,
               "Stop a rollout's remaining epochs when an epoch's approx KL exceeds this",
               {},
               "none"});
  d.push_back({"value_model",
               kind::choice,
               "separate",
               "Critic: a separate trunk with a value head, or a value head on the policy",
               {"separate", "shared"}});
  add_monitor_defs(d);
  add_reward_defs(d);
  return d;
}

// ---- resolved configuration -> library structs ------------------------------------------------

template <class T>
T num(const json& r, const char* name) {
  return r.at(name).get<T>();
}

train::training_args to_args(const json& r) {
  train::training_args a;
  a.output_dir = r.at("output_dir").get<std::string>();
  a.learning_rate = num<float>(r, "learning_rate");
  a.per_device_train_batch_size = num<rlhf::index_t>(r, "per_device_train_batch_size");
  a.per_device_eval_batch_size = num<rlhf::index_t>(r, "per_device_eval_batch_size");
  a.gradient_accumulation_steps = num<rlhf::index_t>(r, "gradient_accumulation_steps");
  a.num_train_epochs = num<double>(r, "num_train_epochs");
  a.max_steps = num<rlhf::index_t>(r, "max_steps");
  a.lr_scheduler_type = model::parse_lr_schedule_type(r.at("lr_scheduler_type").get<std::string>());
  a.warmup_steps = num<rlhf::index_t>(r, "warmup_steps");
  a.warmup_ratio = num<float>(r, "warmup_ratio");
  a.weight_decay = num<float>(r, "weight_decay");
  a.adam_beta1 = num<float>(r, "adam_beta1");
  a.adam_beta2 = num<float>(r, "adam_beta2");
  a.adam_epsilon = num<float>(r, "adam_epsilon");
  a.max_grad_norm = num<float>(r, "max_grad_norm");
  a.logging_steps = num<rlhf::index_t>(r, "logging_steps");
  a.eval_steps = num<rlhf::index_t>(r, "eval_steps");
  a.save_steps = num<rlhf::index_t>(r, "save_steps");
  a.save_total_limit = num<rlhf::index_t>(r, "save_total_limit");
  a.seed = num<std::uint64_t>(r, "seed");
  a.eval_fraction = num<float>(r, "eval_fraction");
  a.validation = rlhf::enum_from_string<rlhf::validation>(r.at("validation").get<std::string>(),
                                                          "rlhf", "validation");
  a.validate();
  return a;
}

/// A length option checked against the model's context (its default is capped to it).
std::size_t length_option(json& r, const char* name, const json& given_default,
                          rlhf::index_t context) {
  const auto v = r.at(name).get<std::int64_t>();
  if (v < 1)
    throw rlhf::config_error(std::string(name) + " must be >= 1, got " + std::to_string(v));
  if (v > context) {
    if (r.at(name) == given_default) {
      r[name] = context;
      return static_cast<std::size_t>(context);
    }
    throw rlhf::config_error(std::string(name) + " " + std::to_string(v) +
                             " exceeds the model's max_seq_len " + std::to_string(context));
  }
  return static_cast<std::size_t>(v);
}

/// The presets --model names.
bool is_preset(const std::string& m) { return m == "tiny" || m == "small" || m == "gpt2_124m"; }

/// The Hugging Face model folder --model names; empty for a preset. usage_error for a value
/// that is neither.
fs::path hf_folder_of(const json& r) {
  const std::string m = r.at("model").get<std::string>();
  if (is_preset(m)) return {};
  if (!model::is_hf_model_folder(m)) {
    throw usage_error("--model " + m +
                      ": neither a preset (tiny, small, gpt2_124m) nor a Hugging Face model "
                      "folder (a folder with config.json)");
  }
  if (!r.at("init_from").get<std::string>().empty()) {
    throw usage_error("--model " + m + " and --init-from both name the starting weights; give one");
  }
  return m;
}

/// The tokenizer and prompt format of this run: the byte tokenizer and the plain markers for
/// a preset or --init-from, the folder's for --model FOLDER (set by model_config).
struct run_text {
  tok_t tokenizer;
  model::chat_template chat;
};
run_text& text_of_run() {
  static run_text t;
  return t;
}
const tok_t& run_tokenizer() { return text_of_run().tokenizer; }
/// `o` with this run's prompt format.
data::tokenize_options with_chat(data::tokenize_options o) {
  o.chat = text_of_run().chat;
  return o;
}

/// The chat markers of --chat-template for the model folder `folder`.
model::chat_template chat_of(const fs::path& folder, const std::string& choice) {
  if (choice == "plain") return model::chat_template{};
  if (choice == "chatml") return model::prompt_markers(model::hf_chat_template::chatml());
  const fs::path cfg = folder / "tokenizer_config.json";
  if (fs::is_regular_file(cfg)) {
    const auto j = json::parse(rlhf::detail::read_text_file(cfg, "rlhf"), nullptr, false);
    if (j.is_object() && j.contains("chat_template") && !j.at("chat_template").is_null()) {
      return model::prompt_markers(model::hf_chat_template::from_tokenizer_config(cfg));
    }
  }
  return model::chat_template{};
}

/// The policy's configuration: a preset, --init-from or a --model folder, with the overrides
/// applied. Sets the run's tokenizer and prompt format (text_of_run).
model::gpt_config model_config(const json& r) {
  const std::string init = r.at("init_from").get<std::string>();
  const fs::path folder = hf_folder_of(r);
  const std::string source = folder.empty() ? init : folder.string();
  model::gpt_config c;
  if (!folder.empty()) {
    c = model::load_hf_config(folder);
    text_of_run().tokenizer = tok_t::from_model_folder(folder);
    text_of_run().chat = chat_of(folder, r.at("chat_template").get<std::string>());
    if (run_tokenizer().vocab_size() > c.vocab_size) {
      throw rlhf::config_error(
          folder.string() + ": the tokenizer has " + std::to_string(run_tokenizer().vocab_size()) +
          " ids but the model's vocab_size is " + std::to_string(c.vocab_size));
    }
  } else if (!init.empty()) {
    c = model::load_config(model_file(init));
  } else {
    const std::string p = r.at("model").get<std::string>();
    c = p == "small"       ? model::gpt_config::small()
        : p == "gpt2_124m" ? model::gpt_config::gpt2_124m()
                           : model::gpt_config::tiny();
    // Room for the byte tokenizer's three special ids.
    c.vocab_size = std::max<rlhf::index_t>(c.vocab_size, model::byte_tokenizer::vocab);
  }
  auto override_int = [&](const char* name, rlhf::index_t& field) {
    if (r.at(name).is_null()) return;
    const auto v = r.at(name).get<rlhf::index_t>();
    if (!source.empty() && v != field) {
      throw rlhf::config_error(source + " has " + name + " " + std::to_string(field) + ", but --" +
                               flag_of(name).substr(2) + " asks for " + std::to_string(v) +
                               " (a checkpoint of another config)");
    }
    field = v;
  };
  override_int("n_layer", c.n_layer);
  override_int("n_head", c.n_head);
  override_int("n_embd", c.n_embd);
  override_int("max_seq_len", c.max_seq_len);
  if (!r.at("dropout").is_null()) c.dropout = r.at("dropout").get<float>();
  c.validate();
  return c;
}

/// The policy: fresh (seeded), loaded from --init-from, or from a --model folder.
std::unique_ptr<model::gpt<B>> make_policy(const json& r, const model::gpt_config& cfg) {
  auto m = std::make_unique<model::gpt<B>>(cfg, true);
  const std::string init = r.at("init_from").get<std::string>();
  const fs::path folder = hf_folder_of(r);
  if (!folder.empty()) {
    const auto loaded = model::load_hf_model<B>(folder, false, cfg.vocab_multiple);
    rlhf::ops::copy_from_host<B>(std::span<const float>(rlhf::ops::to_host<B>(loaded.params())),
                                 m->params());
  } else if (init.empty()) {
    m->init(r.at("seed").get<std::uint64_t>());
  } else {
    model::load_checkpoint<B>(model_file(init), *m);
  }
  return m;
}

/// With a --model folder: the trained policy in save_pretrained's layout in
/// <output_dir>/hf_model, with the folder's tokenizer files, so that transformers (and
/// --model) load it back.
void save_hf_copy(const json& r, const model::gpt<B>& policy, const fs::path& out) {
  const fs::path folder = hf_folder_of(r);
  if (folder.empty()) return;
  const fs::path dst = out / "hf_model";
  const std::string dtype = r.at("hf_dtype").get<std::string>();
  model::save_hf_model(policy, dst,
                       dtype == "bfloat16"  ? model::tensor_dtype::bf16
                       : dtype == "float16" ? model::tensor_dtype::f16
                                            : model::tensor_dtype::f32);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                        "vocab.json", "merges.txt", "generation_config.json"}) {
    if (fs::is_regular_file(folder / f)) {
      rlhf::detail::write_file_atomically(dst / f, rlhf::detail::read_text_file(folder / f, "rlhf"),
                                          "rlhf");
    }
  }
}

train::data_files files_of(const json& r) {
  train::data_files f;
  f.train_file = r.at("train_file").get<std::string>();
  f.eval_file = r.at("eval_file").get<std::string>();
  if (r.at("skip_bad_lines").get<bool>()) f.reader.errors = data::on_error::skip;
  for (const auto& p : {f.train_file, f.eval_file}) {
    if (!p.empty() && !fs::is_regular_file(p)) throw rlhf::io_error(p.string() + ": no such file");
  }
  return f;
}

/// The step a checkpoint-N folder holds (0 when the name says nothing).
std::int64_t step_of(const fs::path& dir) {
  const std::string n = fs::path(dir).lexically_normal().filename().string().empty()
                            ? fs::path(dir).lexically_normal().parent_path().filename().string()
                            : fs::path(dir).lexically_normal().filename().string();
  const std::string prefix = "checkpoint-";
  if (n.rfind(prefix, 0) != 0) return 0;
  try {
    return std::stoll(n.substr(prefix.size()));
  } catch (const std::exception&) {
    return 0;
  }
}

/// Runs `method` under a trainer with the progress display, signal handling, the final
/// model copy and the plots. Returns the exit status.
template <class M>
int run_training(M& method, const json& r, const train::training_args& args, const char* name,
                 std::uint64_t skipped) {
  const fs::path out = args.output_dir;
  const fs::path resume = r.at("resume").get<std::string>();
  if (!resume.empty() && !fs::is_regular_file(resume / "model.safetensors")) {
    throw rlhf::io_error(resume.string() + ": not a checkpoint folder (no model.safetensors)");
  }
  std::unique_ptr<progress> bar;  // rank 0's (the callbacks run there alone)
  train::callbacks cb;
  cb.on_step = [&](const train::metrics_record& rec) { bar->step(rec); };
  cb.on_eval = [&](const train::metrics_record& rec) {
    std::string s = "eval at step " + rec["step"].dump() + ":";
    for (const auto& [k, v] : rec.items()) {
      if (k != "step" && v.is_number()) {
        char buf[96];
        std::snprintf(buf, sizeof buf, " %s %.4g", k.c_str(), v.template get<double>());
        s += buf;
      }
    }
    bar->note(s);
  };
  cb.on_warning = [&](const std::string& w) { bar->note("rlhf: warning: " + w); };
  train::trainer<B, M> t(method, args, cb, world());
  if (leader()) {
    bar = std::make_unique<progress>(t.total_steps(), step_of(resume));
    if (t.world_size() > 1) {
      bar->note(std::string("rlhf ") + name + ": data parallel over " +
                std::to_string(t.world_size()) + " processes (MPI), " +
                std::to_string(args.per_device_train_batch_size) +
                " examples per process per "
                "micro-batch");
    }
    if (skipped > 0) bar->note("rlhf: skipped " + std::to_string(skipped) + " bad data lines");
  }
  using slot = stop_slot<train::trainer<B, M>>;
  slot::trainer.store(&t);
  g_stop.store(&slot::request);
  struct stop_guard {
    ~stop_guard() {
      g_stop.store(nullptr);
      slot::trainer.store(nullptr);
    }
  } guard;
  if (g_interrupted.load()) t.request_stop();  // a signal before the trainer existed
  const train::train_result res = t.train(resume);
  if (!leader()) return res.stopped_early ? 130 : 0;  // rank 0 writes the results
  bar->end_line();
  if (res.stopped_early) {
    std::fprintf(
        stderr,
        "rlhf: interrupted at step %lld; checkpoint saved in %s (continue with --resume %s)\n",
        static_cast<long long>(res.global_step), res.last_checkpoint.string().c_str(),
        res.last_checkpoint.string().c_str());
    return 130;
  }
  std::vector<const model::scalar_head<B>*> heads;
  for (auto* h : method.heads()) heads.push_back(h);
  model::save_checkpoint<B>(out / "model.safetensors", method.policy(), heads);
  if (heads.empty()) save_hf_copy(r, method.policy(), out);  // a reward model has no HF form here
  bool want_plot = r.at("plot").is_null() ? matplotlib_available() : r.at("plot").get<bool>();
  if (want_plot) {
    try {
      plot(out);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "rlhf: warning: %s\n", e.what());
    }
  }
  std::string loss = res.last_log.contains("loss") ? res.last_log["loss"].dump() : "n/a";
  std::printf("rlhf %s: done: %lld steps, last loss %s; model in %s (last checkpoint %s)\n", name,
              static_cast<long long>(res.global_step), loss.c_str(),
              (out / "model.safetensors").string().c_str(), res.last_checkpoint.string().c_str());
  return 0;
}

void write_config(const json& r, const char* method) {
  if (!leader()) return;
  json out = r;
  out["method"] = method;
  fs::create_directories(r.at("output_dir").get<std::string>());
  rlhf::detail::write_file_atomically(
      fs::path(r.at("output_dir").get<std::string>()) / "config.json", out.dump(2) + "\n", "rlhf");
}

int run_sft(json r) {
  const auto mcfg = model_config(r);
  train::sft_config c;
  c.args = to_args(r);
  c.max_length = length_option(r, "max_length", json(1024), mcfg.max_seq_len);
  c.completion_only_loss = r.at("completion_only_loss").get<bool>();
  c.loss_type = rlhf::losses::parse_sft_loss_type(r.at("loss_type").get<std::string>());
  const auto files = files_of(r);
  const auto fmt = first_format(files.train_file).value_or(data::format::prompt_completion);
  if (fmt != data::format::prompt_completion && fmt != data::format::language_modeling) {
    throw rlhf::data_error(files.train_file.string() +
                           ": sft needs prompt_completion or "
                           "language_modeling examples, the file holds " +
                           std::string(data::format_name(fmt)));
  }
  write_config(r, "sft");
  auto policy = make_policy(r, mcfg);
  train::example_source<tok_t> source(files, fmt, run_tokenizer(),
                                      with_chat(train::sft_tokenize_options(c)), c.args.seed,
                                      c.args.eval_fraction);
  train::sft_method<B, tok_t> method(*policy, source, c);
  return run_training(method, r, c.args, "sft", source.skipped());
}

/// A comma list of numbers given to `flag`.
std::vector<float> parse_weights(const std::string& s, const char* flag = "--loss-weights") {
  std::vector<float> out;
  std::size_t start = 0;
  while (!s.empty() && start <= s.size()) {
    const auto comma = s.find(',', start);
    const std::string item = s.substr(
        start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0')
      throw usage_error(std::string(flag) + ": '" + item + "' is not a number");
    out.push_back(static_cast<float>(v));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

/// The length options of `r` into a config `c` (see add_length_defs).
template <class C>
void read_lengths(json& r, const model::gpt_config& mcfg, C& c) {
  c.max_length = length_option(r, "max_length", json(1024), mcfg.max_seq_len);
  const auto mpl = r.at("max_prompt_length").get<std::int64_t>();
  const auto mcl = r.at("max_completion_length").get<std::int64_t>();
  if (mpl < 0 || mcl < 0)
    throw rlhf::config_error("max_prompt_length and max_completion_length must be >= 0");
  c.max_prompt_length = static_cast<std::size_t>(mpl);
  c.max_completion_length = static_cast<std::size_t>(mcl);
  c.truncation_mode = rlhf::enum_from_string<data::truncation_mode>(
      r.at("truncation_mode").get<std::string>(), "rlhf", "truncation_mode");
}

/// A frozen copy of `policy` (the reference of DPO, KTO and BCO: the initial policy of the
/// run's start, also on resume, from --init-from or the preset's seeded initialisation).
std::unique_ptr<model::gpt<B>> frozen_copy(const model::gpt<B>& policy) {
  auto ref = std::make_unique<model::gpt<B>>(policy.config(), false);
  rlhf::ops::copy_from_host<B>(std::span<const float>(rlhf::ops::to_host<B>(policy.params())),
                               ref->params());
  return ref;
}

train::dpo_config dpo_config_of(json& r, const model::gpt_config& mcfg) {
  train::dpo_config c;
  c.args = to_args(r);
  c.loss.beta = num<float>(r, "beta");
  c.loss.loss_type.clear();
  for (const auto& n : r.at("loss_type")) {
    c.loss.loss_type.push_back(rlhf::losses::parse_dpo_loss_type(n.get<std::string>()));
  }
  c.loss.loss_weights = parse_weights(r.at("loss_weights").get<std::string>());
  if (!c.loss.loss_weights.empty() && c.loss.loss_weights.size() != c.loss.loss_type.size()) {
    throw rlhf::config_error("loss_weights has " + std::to_string(c.loss.loss_weights.size()) +
                             " values for " + std::to_string(c.loss.loss_type.size()) +
                             " loss types");
  }
  c.loss.label_smoothing = num<float>(r, "label_smoothing");
  c.loss.f_divergence_type = rlhf::losses::parse_f_divergence_type(
      r.at("f_divergence_type").get<std::string>());
  c.loss.f_alpha_divergence_coef = num<float>(r, "f_alpha_divergence_coef");
  c.loss.discopop_tau = num<float>(r, "discopop_tau");
  if (!r.at("ld_alpha").is_null()) c.loss.ld_alpha = num<float>(r, "ld_alpha");
  read_lengths(r, mcfg, c);
  c.precompute_ref_log_probs = r.at("precompute_ref_log_probs").get<bool>();
  c.use_soft_labels = r.at("use_soft_labels").get<bool>();
  return c;
}

int run_dpo(json r) {
  const auto mcfg = model_config(r);
  auto c = dpo_config_of(r, mcfg);
  const auto files = files_of(r);
  write_config(r, "dpo");
  auto policy = make_policy(r, mcfg);
  const auto reference = frozen_copy(*policy);
  train::example_source<tok_t> source(files, data::format::preference, run_tokenizer(),
                                      with_chat(train::dpo_tokenize_options(c)), c.args.seed,
                                      c.args.eval_fraction);
  train::dpo_method<B, tok_t> method(*policy, *reference, source, c);
  return run_training(method, r, c.args, "dpo", source.skipped());
}

/// The fields every preference or unpaired method's config `C` reads from `r`.
template <class C>
C method_config_of(json& r, const model::gpt_config& mcfg) {
  C c;
  c.args = to_args(r);
  c.loss.beta = num<float>(r, "beta");
  read_lengths(r, mcfg, c);
  c.disable_dropout = r.at("disable_dropout").get<bool>();
  return c;
}

train::kto_config kto_config_of(json& r, const model::gpt_config& mcfg) {
  auto c = method_config_of<train::kto_config>(r, mcfg);
  c.loss.loss_type = rlhf::losses::parse_kto_loss_type(r.at("loss_type").get<std::string>());
  c.loss.desirable_weight = num<float>(r, "desirable_weight");
  c.loss.undesirable_weight = num<float>(r, "undesirable_weight");
  return c;
}

train::cpo_config cpo_config_of(json& r, const model::gpt_config& mcfg) {
  auto c = method_config_of<train::cpo_config>(r, mcfg);
  c.loss.loss_type = rlhf::losses::parse_cpo_loss_type(r.at("loss_type").get<std::string>());
  c.loss.label_smoothing = num<float>(r, "label_smoothing");
  c.loss.simpo_gamma = num<float>(r, "simpo_gamma");
  c.loss.cpo_alpha = num<float>(r, "cpo_alpha");
  c.loss.alpha = num<float>(r, "alpha");
  return c;
}

/// KTO or BCO (`Method`, config `C`) of a fresh or --init-from policy against its frozen
/// copy, on unpaired examples.
template <template <class, class> class Method, class C>
int run_unpaired(json r, const char* name, C (*config_of)(json&, const model::gpt_config&),
                 data::tokenize_options (*tokenize)(const C&)) {
  const auto mcfg = model_config(r);
  auto c = config_of(r, mcfg);
  const auto files = files_of(r);
  write_config(r, name);
  auto policy = make_policy(r, mcfg);
  const auto reference = frozen_copy(*policy);
  train::example_source<tok_t> source(files, data::format::unpaired_preference, run_tokenizer(),
                                      with_chat(tokenize(c)), c.args.seed, c.args.eval_fraction);
  Method<B, tok_t> method(*policy, *reference, source, c);
  return run_training(method, r, c.args, name, source.skipped());
}

/// ORPO or CPO (`Method`, config `C`): no reference model, preference pairs.
template <template <class, class> class Method, class C>
int run_reference_free(json r, const char* name, C (*config_of)(json&, const model::gpt_config&),
                       data::tokenize_options (*tokenize)(const C&)) {
  const auto mcfg = model_config(r);
  auto c = config_of(r, mcfg);
  const auto files = files_of(r);
  write_config(r, name);
  auto policy = make_policy(r, mcfg);
  train::example_source<tok_t> source(files, data::format::preference, run_tokenizer(),
                                      with_chat(tokenize(c)), c.args.seed, c.args.eval_fraction);
  Method<B, tok_t> method(*policy, source, c);
  return run_training(method, r, c.args, name, source.skipped());
}

std::vector<option_def> reward_defs() {
  const train::reward_config c;
  auto d = common_defs(c.args);
  d.push_back({"max_length",
               kind::integer,
               static_cast<std::int64_t>(c.max_length),
               "Longest prompt + response",
               {},
               "1024, capped at the model's max_seq_len"});
  d.push_back({"center_rewards_coefficient", kind::real,
               short_float(c.loss.center_rewards_coefficient),
               "Weight of the reward-centering term; 0: off"});
  d.push_back(
      {"disable_dropout", kind::boolean, c.disable_dropout, "Train without the trunk's dropout"});
  d.push_back({"use_soft_labels", kind::boolean, c.use_soft_labels,
               "Train on each pair's \"soft_label\" (cross-entropy against it)"});
  return d;
}

/// The reward head "score": from the checkpoint when it holds one, else freshly initialised.
void load_or_init_head(const fs::path& ckpt, model::gpt<B>& trunk, model::scalar_head<B>& head,
                       std::uint64_t seed) {
  head.init(seed);
  if (ckpt.empty()) return;
  try {
    model::load_checkpoint<B>(model_file(ckpt), trunk, {&head});
  } catch (const rlhf::error&) {
    model::load_checkpoint<B>(model_file(ckpt), trunk);  // no head in it: trunk only
  }
}

int run_reward(json r) {
  const auto mcfg = model_config(r);
  train::reward_config c;
  c.args = to_args(r);
  c.max_length = length_option(r, "max_length", json(1024), mcfg.max_seq_len);
  c.loss.center_rewards_coefficient = num<float>(r, "center_rewards_coefficient");
  c.disable_dropout = r.at("disable_dropout").get<bool>();
  c.use_soft_labels = r.at("use_soft_labels").get<bool>();
  const auto files = files_of(r);
  write_config(r, "reward");
  auto trunk = make_policy(r, mcfg);
  model::scalar_head<B> head(mcfg.n_embd, "score");
  load_or_init_head(r.at("init_from").get<std::string>(), *trunk, head,
                    r.at("seed").get<std::uint64_t>());
  train::example_source<tok_t> source(files, data::format::preference, run_tokenizer(),
                                      with_chat(train::reward_tokenize_options(c)), c.args.seed,
                                      c.args.eval_fraction);
  train::reward_method<B, tok_t> method(*trunk, head, source, c);
  return run_training(method, r, c.args, "reward", source.skipped());
}

/// The monitor thresholds of `r`.
train::monitor_config monitors_of(const json& r) {
  train::monitor_config m;
  m.reward_drift_sigmas = num<double>(r, "monitor_reward_drift_sigmas");
  m.collapse_std_fraction = num<double>(r, "monitor_collapse_std_fraction");
  m.min_entropy = num<double>(r, "monitor_min_entropy");
  m.length_growth = num<double>(r, "monitor_length_growth");
  m.max_kl = num<double>(r, "monitor_max_kl");
  m.validate();
  return m;
}

/// The sampling fields every online config `C` reads from `r` (max_completion_length into
/// `max_completion`).
template <class C>
void read_online(json& r, const model::gpt_config& mcfg, C& c, rlhf::index_t& max_completion) {
  c.args = to_args(r);
  c.loss.num_generations = num<rlhf::index_t>(r, "num_generations");
  c.num_generations_eval = num<rlhf::index_t>(r, "num_generations_eval");
  const auto mcl = r.at("max_completion_length").get<rlhf::index_t>();
  const rlhf::index_t half = std::max<rlhf::index_t>(1, mcfg.max_seq_len / 2);
  max_completion = mcl > half && r.at("max_completion_length") == json(512) ? half : mcl;
  r["max_completion_length"] = max_completion;
  c.temperature = num<float>(r, "temperature");
  c.top_p = num<float>(r, "top_p");
  c.top_k = num<rlhf::index_t>(r, "top_k");
  c.loss.beta = num<float>(r, "beta");
  c.loss.epsilon = num<float>(r, "epsilon");
  if (!r.at("epsilon_high").is_null()) c.loss.epsilon_high = num<float>(r, "epsilon_high");
  c.mask_truncated_completions = r.at("mask_truncated_completions").get<bool>();
  c.disable_dropout = r.at("disable_dropout").get<bool>();
  c.monitors = monitors_of(r);
}

/// The reward functions of --reward-command and --reward-model (with their models, which
/// must outlive the functions), weighted by --reward-weights.
struct online_rewards {
  std::unique_ptr<model::gpt<B>> trunk;
  std::unique_ptr<model::scalar_head<B>> head;
  std::vector<train::reward_function> functions;
};

online_rewards rewards_of(const json& r) {
  online_rewards out;
  const auto command = r.at("reward_command").get<std::string>();
  const fs::path model_path = r.at("reward_model").get<std::string>();
  if (command.empty() && model_path.empty()) {
    throw usage_error("give a reward: --reward-command CMD and/or --reward-model CHECKPOINT");
  }
  if (!command.empty()) {
    train::command_reward_options o;
    o.argv = {"/bin/sh", "-c", command};
    const double seconds = num<double>(r, "reward_command_timeout");
    if (!(seconds > 0)) throw rlhf::config_error("reward_command_timeout must be > 0");
    o.timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
    o.name = "command";
    out.functions.push_back(train::command_reward(o));
  }
  if (!model_path.empty()) {
    out.trunk = load_model(model_path, false);
    out.head = std::make_unique<model::scalar_head<B>>(out.trunk->config().n_embd, "score", false);
    model::load_checkpoint<B>(model_file(model_path), *out.trunk, {out.head.get()});
    out.functions.push_back(
        train::model_reward<B>(*out.trunk, *out.head, run_tokenizer().pad_id(), "reward_model"));
  }
  const auto weights = parse_weights(r.at("reward_weights").get<std::string>(), "--reward-weights");
  if (!weights.empty()) {
    if (weights.size() != out.functions.size()) {
      throw rlhf::config_error("reward_weights has " + std::to_string(weights.size()) +
                               " values for " + std::to_string(out.functions.size()) + " rewards");
    }
    for (std::size_t i = 0; i < weights.size(); ++i) out.functions[i].weight = weights[i];
  }
  return out;
}

/// GRPO or RLOO (`Method`, config `C`) of a fresh or --init-from policy on prompt-only data,
/// with a frozen copy of the initial policy as the reference when beta > 0.
template <template <class, class> class Method, class C>
int run_online(json r, const char* name, void (*finish)(json&, C&)) {
  const auto mcfg = model_config(r);
  C c;
  rlhf::index_t max_completion = 0;
  read_online(r, mcfg, c, max_completion);
  finish(r, c);
  if constexpr (requires { c.max_completion_length; }) {
    c.max_completion_length = max_completion;
  } else {
    c.loss.max_completion_length = max_completion;
  }
  const auto files = files_of(r);
  auto rewards = rewards_of(r);
  write_config(r, name);
  auto policy = make_policy(r, mcfg);
  std::unique_ptr<model::gpt<B>> reference;
  if (c.loss.beta != 0.0f) reference = frozen_copy(*policy);
  train::example_source<tok_t> source(files, data::format::prompt_only, run_tokenizer(),
                                      with_chat({}), c.args.seed, c.args.eval_fraction);
  Method<B, tok_t> method(*policy, reference.get(), source, std::move(rewards.functions), c);
  return run_training(method, r, c.args, name, source.skipped());
}

/// PPO of a fresh or --init-from policy against a frozen copy, with a critic (a copy of the
/// reward model's trunk when there is one, as TRL starts it, else of the policy; or a value
/// head on the policy) and the reward model or reward command as the score.
int run_ppo(json r) {
  const auto mcfg = model_config(r);
  train::ppo_config c;
  c.args = to_args(r);
  c.num_ppo_epochs = num<rlhf::index_t>(r, "num_ppo_epochs");
  c.num_mini_batches = num<rlhf::index_t>(r, "num_mini_batches");
  c.kl_coef = num<float>(r, "kl_coef");
  c.kl_estimator = rlhf::rl::parse_kl_estimator(r.at("kl_estimator").get<std::string>());
  c.cliprange = num<float>(r, "cliprange");
  c.vf_coef = num<float>(r, "vf_coef");
  c.cliprange_value = num<float>(r, "cliprange_value");
  c.gamma = num<float>(r, "gamma");
  c.lam = num<float>(r, "lam");
  c.whiten_rewards = r.at("whiten_rewards").get<bool>();
  const auto length = r.at("response_length").get<rlhf::index_t>();
  const rlhf::index_t half = std::max<rlhf::index_t>(1, mcfg.max_seq_len / 2);
  c.response_length = length > half && r.at("response_length") == json(53) ? half : length;
  r["response_length"] = c.response_length;
  c.temperature = num<float>(r, "temperature");
  if (!r.at("missing_eos_penalty").is_null()) {
    c.missing_eos_penalty = num<float>(r, "missing_eos_penalty");
  }
  if (!r.at("adaptive_kl_target").is_null()) {
    c.adaptive_kl = train::ppo_adaptive_kl{num<double>(r, "adaptive_kl_target"),
                                           num<double>(r, "adaptive_kl_horizon")};
  }
  if (!r.at("target_kl").is_null()) c.target_kl = num<float>(r, "target_kl");
  c.monitors = monitors_of(r);
  const auto files = files_of(r);
  auto rewards = rewards_of(r);
  write_config(r, "ppo");
  auto policy = make_policy(r, mcfg);
  const auto reference = frozen_copy(*policy);
  train::ppo_models<B> models;
  models.policy = policy.get();
  models.reference = reference.get();
  auto value_head = std::make_unique<model::scalar_head<B>>(model::make_value_head<B>(mcfg.n_embd));
  std::unique_ptr<model::gpt<B>> critic;
  if (r.at("value_model").get<std::string>() == "separate") {
    const model::gpt<B>& from = rewards.trunk ? *rewards.trunk : *policy;
    critic = std::make_unique<model::gpt<B>>(from.config(), true);
    rlhf::ops::copy_from_host<B>(std::span<const float>(rlhf::ops::to_host<B>(from.params())),
                                 critic->params());
    *value_head = model::make_value_head<B>(from.config().n_embd);
    models.value_model = critic.get();
  }
  value_head->init(r.at("seed").get<std::uint64_t>());
  models.value_head = value_head.get();
  if (rewards.trunk && rewards.functions.size() == 1) {
    models.reward_model = rewards.trunk.get();  // the reward model alone: scored in place
    models.reward_head = rewards.head.get();
  } else {
    models.reward_functions = std::move(rewards.functions);
  }
  train::example_source<tok_t> source(files, data::format::prompt_only, run_tokenizer(),
                                      with_chat({}), c.args.seed, c.args.eval_fraction);
  train::ppo_method<B, tok_t> method(std::move(models), source, c);
  return run_training(method, r, c.args, "ppo", source.skipped());
}

void finish_grpo(json& r, train::grpo_config& c) {
  c.loss.loss_type = rlhf::losses::parse_grpo_loss_type(r.at("loss_type").get<std::string>());
  c.loss.scale_rewards = rlhf::losses::parse_grpo_scale_rewards(
      r.at("scale_rewards").get<std::string>());
  c.loss.importance_sampling_level = rlhf::losses::parse_grpo_importance_sampling_level(
      r.at("importance_sampling_level").get<std::string>());
  c.loss.multi_objective_aggregation = rlhf::losses::parse_grpo_multi_objective_aggregation(
      r.at("multi_objective_aggregation").get<std::string>());
}

void finish_rloo(json& r, train::rloo_config& c) {
  c.loss.normalize_advantages = r.at("normalize_advantages").get<bool>();
}

// ---- generate and eval ------------------------------------------------------------------------

struct generate_opts {
  std::string model;
  std::vector<std::string> prompts;
  std::string prompts_file;
  rlhf::index_t max_new_tokens = 32;
  float temperature = 1.0f;
  rlhf::index_t top_k = 0;
  float top_p = 1.0f;
  std::uint64_t seed = 0;
  bool json_out = false;
};

int run_generate(const generate_opts& o) {
  auto m = load_model(o.model, false);
  const tok_t tok;
  data::tokenize_options topt;
  std::vector<std::string> texts = o.prompts;
  std::vector<std::vector<std::int32_t>> ids;
  for (const auto& p : o.prompts) {
    data::example ex;
    ex.kind = data::format::prompt_only;
    ex.prompt.text = p;
    ids.push_back(data::tokenize(tok, ex, topt).sequence.ids);
  }
  if (!o.prompts_file.empty()) {
    if (!fs::is_regular_file(o.prompts_file))
      throw rlhf::io_error(o.prompts_file + ": no such file");
    data::jsonl_dataset ds(o.prompts_file, {}, data::format::prompt_only);
    for (std::size_t i = 0; i < ds.size(); ++i) {
      const auto ex = ds.get(i);
      texts.push_back(ex.prompt.conversational
                          ? json(ex.prompt.messages.size()).dump() + " messages"
                          : ex.prompt.text);
      ids.push_back(data::tokenize(tok, ex, topt).sequence.ids);
    }
  }
  if (ids.empty()) throw usage_error("generate: give --prompt TEXT or --prompts-file F.jsonl");
  model::generation_config gc;
  gc.max_new_tokens = o.max_new_tokens;
  gc.sampling.temperature = o.temperature;
  gc.sampling.top_k = o.top_k;
  gc.sampling.top_p = o.top_p;
  gc.sampling.seed = o.seed;
  gc.stop_tokens = {model::byte_tokenizer::eos};
  gc.pad_token = model::byte_tokenizer::pad;
  const auto res = model::generate<B>(*m, ids, gc);
  const auto tokens = rlhf::ops::to_host<B>(res.tokens);
  const auto width = res.tokens.shape()[1];
  for (std::size_t b = 0; b < ids.size(); ++b) {
    std::vector<std::int32_t> gen;
    for (rlhf::index_t k = 0; k < res.lengths[b]; ++k) {
      gen.push_back(tokens[b * static_cast<std::size_t>(width) +
                           static_cast<std::size_t>(res.prompt_width + k)]);
    }
    const std::string text = tok.decode(gen);
    if (o.json_out) {
      std::printf("%s\n", json{{"prompt", texts[b]}, {"completion", text}}
                              .dump(-1, ' ', false, json::error_handler_t::replace)
                              .c_str());
    } else {
      std::printf("%s\n", text.c_str());
    }
  }
  return 0;
}

struct bon_opts {
  std::string model;
  std::string prompts_file;
  std::string output;
  rlhf::index_t n = 4;
  rlhf::index_t max_new_tokens = 64;
  rlhf::index_t batch_size = 8;
  float temperature = 1.0f;
  rlhf::index_t top_k = 0;
  float top_p = 1.0f;
  std::uint64_t seed = 0;
  std::string reward_command;
  double reward_command_timeout = 60.0;
  std::string reward_model;
  std::string reward_weights;
};

/// Best-of-N of every prompt of the file: one JSON line per prompt (the best completion,
/// its score, every candidate and score) to --output (written atomically) or stdout.
int run_bon(const bon_opts& o) {
  auto m = load_model(o.model, false);
  if (!fs::is_regular_file(o.prompts_file)) throw rlhf::io_error(o.prompts_file + ": no such file");
  data::jsonl_dataset ds(o.prompts_file, {}, data::format::prompt_only);
  std::vector<data::content> prompts;
  for (std::size_t i = 0; i < ds.size(); ++i) prompts.push_back(ds.get(i).prompt);
  if (prompts.empty()) throw rlhf::data_error(o.prompts_file + ": no prompt");
  const json r = {{"reward_command", o.reward_command},
                  {"reward_command_timeout", o.reward_command_timeout},
                  {"reward_model", o.reward_model},
                  {"reward_weights", o.reward_weights}};
  auto rewards = rewards_of(r);
  train::best_of_n_config c;
  c.n = o.n;
  c.max_completion_length = o.max_new_tokens;
  c.temperature = o.temperature;
  c.top_k = o.top_k;
  c.top_p = o.top_p;
  c.seed = o.seed;
  c.prompts_per_batch = o.batch_size;
  progress bar(static_cast<std::int64_t>(prompts.size()));
  c.on_progress = [&bar](std::size_t done, std::size_t) {
    bar.count(static_cast<std::int64_t>(done), "prompts");
  };
  const auto best = train::best_of_n<B>(*m, tok_t{}, prompts, rewards.functions, c);
  bar.end_line();
  auto number = [](float v) { return std::isnan(v) ? json(nullptr) : json(v); };
  std::string lines;
  double sum = 0, count = 0;
  for (std::size_t i = 0; i < best.size(); ++i) {
    json scores = json::array();
    for (const float s : best[i].scores) scores.push_back(number(s));
    const nlohmann::ordered_json line = {{"prompt", train::detail::prompt_json(prompts[i])},
                                         {"completion", best[i].completion},
                                         {"score", number(best[i].score)},
                                         {"candidates", best[i].candidates},
                                         {"scores", scores}};
    lines += line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    if (!std::isnan(best[i].score)) sum += best[i].score, count += 1;
  }
  if (o.output.empty()) {
    std::fputs(lines.c_str(), stdout);
  } else {
    rlhf::detail::write_file_atomically(o.output, lines, "rlhf bon");
    std::printf("rlhf bon: %zu prompts, best of %lld, mean best score %s; written to %s\n",
                best.size(), static_cast<long long>(o.n),
                count > 0 ? std::to_string(sum / count).c_str() : "n/a", o.output.c_str());
  }
  return 0;
}

struct eval_opts {
  std::string model;
  std::string file;
  std::string method = "sft";
  std::string reference;
  rlhf::index_t batch_size = 8;
  bool skip_bad_lines = false;
  // --method policy
  rlhf::index_t max_new_tokens = 64;
  std::uint64_t seed = 0;
  std::string reward_command;
  double reward_command_timeout = 60.0;
  std::string reward_model;
  std::string reward_weights;
  std::string samples;
};

/// A policy's greedy reward, length and KL to --reference on a file of prompts
/// (train/policy_eval.hpp); --samples writes the greedy completions with their rewards.
json eval_policy(const eval_opts& o, const model::gpt<B>& m, const train::data_files& files) {
  data::jsonl_dataset ds(files.train_file, files.reader, data::format::prompt_only);
  std::vector<data::content> prompts;
  for (std::size_t i = 0; i < ds.size(); ++i) prompts.push_back(ds.get(i).prompt);
  const json r = {{"reward_command", o.reward_command},
                  {"reward_command_timeout", o.reward_command_timeout},
                  {"reward_model", o.reward_model},
                  {"reward_weights", o.reward_weights}};
  auto rewards = rewards_of(r);
  std::unique_ptr<model::gpt<B>> ref;
  if (!o.reference.empty()) ref = load_model(o.reference, false);
  train::policy_eval_config c;
  c.max_completion_length = o.max_new_tokens;
  c.seed = o.seed;
  c.prompts_per_batch = o.batch_size;
  const auto res = train::evaluate_policy<B>(m, ref.get(), tok_t{}, prompts, rewards.functions, c);
  auto number = [](double v) { return std::isnan(v) ? json(nullptr) : json(v); };
  json out = {{"eval_reward", number(res.reward)},
              {"eval_unscorable", res.unscorable},
              {"eval_mean_length", res.mean_length}};
  if (ref) out["eval_kl"] = number(res.kl);
  out["examples"] = res.prompts;
  if (!o.samples.empty()) {
    std::string lines;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const nlohmann::ordered_json line = {{"prompt", train::detail::prompt_json(prompts[i])},
                                           {"completion", res.completions[i]},
                                           {"reward", number(res.rewards[i])}};
      lines += line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    }
    rlhf::detail::write_file_atomically(o.samples, lines, "rlhf eval");
  }
  return out;
}

template <class M>
json evaluate_all(M& method, const std::vector<std::uint64_t>& idx, rlhf::index_t batch) {
  train::metric_window w;
  const auto b = static_cast<std::size_t>(batch);
  for (std::size_t i = 0; i < idx.size(); i += b) {
    const std::size_t n = std::min(b, idx.size() - i);
    w.add(method.eval_batch(std::span<const std::uint64_t>(idx.data() + i, n)));
  }
  json out = json::object();
  auto means = w.means();
  method.finish_log(means);
  for (const auto& [name, v] : means) out["eval_" + name] = v;
  out["examples"] = idx.size();
  return out;
}

/// The default config of a method with its lengths capped at the model's context.
template <class C>
C eval_config(const model::gpt<B>& m) {
  C c;
  c.max_length = std::min<std::size_t>(c.max_length,
                                       static_cast<std::size_t>(m.config().max_seq_len));
  c.args.per_device_train_batch_size = 2;  // KTO asks for >= 2 (unused here)
  return c;
}

/// Evaluation of a method with a frozen reference (--reference, or the model itself).
template <template <class, class> class Method, class C>
json eval_with_reference(const eval_opts& o, model::gpt<B>& m, const train::data_files& files,
                         data::format fmt, data::tokenize_options (*tokenize)(const C&)) {
  const C c = eval_config<C>(m);
  auto ref = load_model(o.reference.empty() ? o.model : o.reference, false);
  train::example_source<tok_t> source(files, fmt, tok_t{}, tokenize(c), 0, 0.0);
  Method<B, tok_t> method(m, *ref, source, c);
  return evaluate_all(method, source.train_indices(), o.batch_size);
}

/// Evaluation of a method without a reference model (ORPO, CPO).
template <template <class, class> class Method, class C>
json eval_reference_free(const eval_opts& o, model::gpt<B>& m, const train::data_files& files,
                         data::tokenize_options (*tokenize)(const C&)) {
  const C c = eval_config<C>(m);
  train::example_source<tok_t> source(files, data::format::preference, tok_t{}, tokenize(c), 0,
                                      0.0);
  Method<B, tok_t> method(m, source, c);
  return evaluate_all(method, source.train_indices(), o.batch_size);
}

int run_eval(const eval_opts& o) {
  if (o.batch_size < 1) throw usage_error("--batch-size must be >= 1");
  auto m = load_model(o.model, true);
  train::data_files files;
  files.train_file = o.file;
  if (!fs::is_regular_file(files.train_file)) throw rlhf::io_error(o.file + ": no such file");
  if (o.skip_bad_lines) files.reader.errors = data::on_error::skip;
  const auto ctx = m->config().max_seq_len;
  json out;
  if (o.method == "policy") {
    out = eval_policy(o, *m, files);
  } else if (o.method == "sft") {
    train::sft_config c;
    c.max_length = std::min<std::size_t>(c.max_length, static_cast<std::size_t>(ctx));
    const auto fmt = first_format(files.train_file).value_or(data::format::prompt_completion);
    train::example_source<tok_t> source(files, fmt, tok_t{}, train::sft_tokenize_options(c), 0,
                                        0.0);
    train::sft_method<B, tok_t> method(*m, source, c);
    out = evaluate_all(method, source.train_indices(), o.batch_size);
  } else if (o.method == "reward") {
    train::reward_config c;
    c.max_length = std::min<std::size_t>(c.max_length, static_cast<std::size_t>(ctx));
    model::scalar_head<B> head(m->config().n_embd, "score");
    model::load_checkpoint<B>(model_file(o.model), *m, {&head});
    train::example_source<tok_t> source(files, data::format::preference, tok_t{},
                                        train::reward_tokenize_options(c), 0, 0.0);
    train::reward_method<B, tok_t> method(*m, head, source, c);
    out = evaluate_all(method, source.train_indices(), o.batch_size);
  } else if (o.method == "dpo") {
    out = eval_with_reference<train::dpo_method, train::dpo_config>(
        o, *m, files, data::format::preference, train::dpo_tokenize_options);
  } else if (o.method == "kto") {
    out = eval_with_reference<train::kto_method, train::kto_config>(
        o, *m, files, data::format::unpaired_preference, train::kto_tokenize_options);
  } else if (o.method == "bco") {
    out = eval_with_reference<train::bco_method, train::bco_config>(
        o, *m, files, data::format::unpaired_preference, train::bco_tokenize_options);
  } else if (o.method == "orpo") {
    out = eval_reference_free<train::orpo_method, train::orpo_config>(o, *m, files,
                                                                      train::orpo_tokenize_options);
  } else {
    out = eval_reference_free<train::cpo_method, train::cpo_config>(o, *m, files,
                                                                    train::cpo_tokenize_options);
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// ---- cai: Constitutional AI (docs/cai.md) ---------------------------------------------------

struct cai_opts {
  std::string model;
  std::string endpoint;
  std::string api_model = "default";
  std::string api_key_env;
  std::string system_prompt;
  int http_retries = 3;
  std::size_t http_parallel = 1;
  double http_timeout = 300.0;
  bool rules = false;
  std::string judge_model;
  std::string judge_endpoint;
  std::string judge_api_model;
  std::string prompts_file;
  std::string constitution;
  std::string output;
  std::string pairs;
  std::string templates;
  std::size_t rounds = 1;
  std::size_t batch_size = 8;
  std::size_t max_new_tokens = 64;
  float temperature = 1.0f;
  float top_p = 1.0f;
  std::uint64_t seed = 0;
  std::size_t max_attempts = 3;
  std::size_t n = 2;
  float min_confidence = 0.0f;
};

/// The user message of each prompt of a JSONL file ({"prompt": text} or {"prompt": [messages]}:
/// the last user message).
std::vector<std::string> cai_prompts(const std::string& file) {
  if (!fs::is_regular_file(file)) throw rlhf::io_error(file + ": no such file");
  data::jsonl_dataset ds(file, {}, data::format::prompt_only);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < ds.size(); ++i) {
    const auto ex = ds.get(i);
    if (!ex.prompt.conversational) {
      out.push_back(ex.prompt.text);
      continue;
    }
    std::string text;
    for (const auto& m : ex.prompt.messages) {
      if (m.role == "user") text = m.content;
    }
    if (text.empty()) {
      throw rlhf::data_error(file + ": example " + std::to_string(i + 1) + ": no user message");
    }
    out.push_back(text);
  }
  if (out.empty()) throw rlhf::data_error(file + ": no prompt");
  return out;
}

/// --constitution FILE, or the shipped default.
rlhf::cai::constitution cai_constitution(const cai_opts& o) {
  return o.constitution.empty() ? rlhf::cai::default_constitution()
                                : rlhf::cai::load_constitution(o.constitution);
}

/// The --templates file: a JSON object with any of "critique", "revision" (cai revise) and
/// "judge" (the model judge's prompt, cai judge); a missing key keeps the default.
json cai_templates(const cai_opts& o) {
  if (o.templates.empty()) return json::object();
  std::ifstream in(o.templates);
  if (!in) throw rlhf::io_error(o.templates + ": cannot open the templates file");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw rlhf::data_error(o.templates + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw rlhf::data_error(o.templates + ": expected a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (key != "critique" && key != "revision" && key != "judge") {
      throw rlhf::data_error(o.templates + ": unknown key '" + key +
                             "' (expected critique, revision or judge)");
    }
    if (!value.is_string() || value.get<std::string>().empty()) {
      throw rlhf::data_error(o.templates + ": '" + key + "': expected a non-empty string");
    }
  }
  return j;
}

rlhf::cai::generation_options cai_generation(const cai_opts& o) {
  if (o.max_new_tokens < 1) throw usage_error("--max-new-tokens must be >= 1");
  if (!(o.temperature >= 0.0f)) throw usage_error("--temperature must be >= 0");
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) throw usage_error("--top-p must be in (0, 1]");
  return {.max_new_tokens = o.max_new_tokens,
          .temperature = o.temperature,
          .top_p = o.top_p,
          .seed = o.seed};
}

/// Calls f(generator) with the model of --model or the server of --endpoint.
template <class F>
int with_cai_generator(const cai_opts& o, const char* sub, F&& f) {
  if (o.model.empty() == o.endpoint.empty()) {
    throw usage_error(std::string("cai ") + sub + ": give one of --model CKPT or --endpoint URL");
  }
  if (o.batch_size < 1) throw usage_error("--batch-size must be >= 1");
  if (!o.model.empty()) {
    if (!fs::exists(model_file(o.model))) {
      throw rlhf::io_error(model_file(o.model).string() + ": no such file");
    }
    const auto m = load_model(o.model, false);
    const auto context = static_cast<std::size_t>(m->config().max_seq_len);
    if (o.max_new_tokens >= context) {
      throw usage_error("--max-new-tokens " + std::to_string(o.max_new_tokens) +
                        " does not fit the model's context of " + std::to_string(context) +
                        " tokens");
    }
    rlhf::cai::model_generator<B> gen(*m, model::byte_tokenizer{}, model::chat_template{},
                                      o.batch_size);
    return f(gen);
  }
#ifdef RLHF_CLI_HTTP
  rlhf::cai::http_chat_config c;
  c.base_url = o.endpoint;
  c.model = o.api_model;
  if (!o.api_key_env.empty()) {
    const char* key = std::getenv(o.api_key_env.c_str());
    if (key == nullptr || *key == '\0') {
      throw usage_error("--api-key-env: the environment variable " + o.api_key_env + " is not set");
    }
    c.api_key = key;
  }
  c.system_prompt = o.system_prompt;
  c.max_retries = o.http_retries;
  c.max_parallel = o.http_parallel;
  if (!(o.http_timeout > 0.0)) throw usage_error("--http-timeout must be > 0");
  c.timeout = std::chrono::milliseconds(static_cast<std::int64_t>(o.http_timeout * 1000.0));
  rlhf::cai::http_chat_client gen(c);
  // One short request first: an unreachable or misconfigured server is an error at once
  // (http_error naming the URL), not a run whose every prompt fails.
  (void)gen.generate({"Reply with OK."},
                     {.max_new_tokens = 1, .temperature = 0.0f, .top_p = 1.0f, .seed = o.seed});
  return f(gen);
#else
  throw usage_error(std::string("cai ") + sub +
                    ": --endpoint needs libcurl, and this rlhf was built without it");
#endif
}

/// A chat row's prompt: [{"role": "user", "content": text}] (what the generator was given).
nlohmann::ordered_json user_turn(const std::string& text) {
  return nlohmann::ordered_json::array({{{"role", "user"}, {"content", text}}});
}
nlohmann::ordered_json assistant_turn(const std::string& text) {
  return nlohmann::ordered_json::array({{{"role", "assistant"}, {"content", text}}});
}
std::string dump_line(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

/// The rows of `rows_file` whose prompt is one of `prompts` (a read-only look before a
/// resumed run; critique_revise itself decides what to skip).
std::size_t rows_already_done(const fs::path& rows_file, const std::vector<std::string>& prompts) {
  std::ifstream in(rows_file);
  if (!in) return 0;
  const std::set<std::string> wanted(prompts.begin(), prompts.end());
  std::set<std::string> found;
  for (std::string line; std::getline(in, line);) {
    try {
      const auto j = json::parse(line);
      if (j.is_object() && j.contains("prompt") && j["prompt"].is_string() &&
          wanted.contains(j["prompt"].get<std::string>())) {
        found.insert(j["prompt"].get<std::string>());
      }
    } catch (const json::exception&) {
    }
  }
  return found.size();
}

/// --pairs: the rows as chat preference pairs {"prompt": [user], "chosen": [assistant],
/// "rejected": [assistant]} (the final revision over the first response), leaving out rows
/// whose revision is the first response. Written atomically; returns (written, identical).
std::pair<std::size_t, std::size_t> write_revision_pairs(const fs::path& rows_file,
                                                         const fs::path& out) {
  std::ifstream in(rows_file);
  if (!in) throw rlhf::io_error(rows_file.string() + ": cannot open for reading");
  std::string text;
  std::size_t written = 0, identical = 0, number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j;
    try {
      j = json::parse(line);
    } catch (const json::exception&) {
      throw rlhf::data_error(rows_file.string() + ":" + std::to_string(number) +
                             ": not valid JSON");
    }
    for (const char* k : {"prompt", "chosen", "rejected"}) {
      if (!j.is_object() || !j.contains(k) || !j[k].is_string()) {
        throw rlhf::data_error(rows_file.string() + ":" + std::to_string(number) + ": field '" + k +
                               "' is missing or not a string");
      }
    }
    if (j["chosen"] == j["rejected"]) {
      ++identical;
      continue;
    }
    nlohmann::ordered_json row;
    row["prompt"] = user_turn(j["prompt"].get<std::string>());
    row["chosen"] = assistant_turn(j["chosen"].get<std::string>());
    row["rejected"] = assistant_turn(j["rejected"].get<std::string>());
    text += dump_line(row);
    ++written;
  }
  rlhf::detail::write_file_atomically(out, text, "rlhf cai revise");
  return {written, identical};
}

/// The last "error" of a failures file ("" when none).
std::string last_failure(const fs::path& failures) {
  std::ifstream in(failures);
  std::string last;
  for (std::string line; std::getline(in, line);) {
    try {
      const auto j = json::parse(line);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) {
        last = j["error"].get<std::string>();
      }
    } catch (const json::exception&) {
    }
  }
  return last;
}

int run_cai_revise(const cai_opts& o) {
  if (o.output.empty()) throw usage_error("cai revise: --output is required");
  const auto c = cai_constitution(o);
  const auto prompts = cai_prompts(o.prompts_file);
  const json t = cai_templates(o);
  rlhf::cai::critique_revise_config cfg;
  cfg.rounds = o.rounds;
  cfg.prompts_per_batch = o.batch_size;
  cfg.generation = cai_generation(o);
  cfg.seed = o.seed;
  cfg.max_attempts = o.max_attempts;
  if (t.contains("critique")) cfg.templates.critique = t["critique"].get<std::string>();
  if (t.contains("revision")) cfg.templates.revision = t["revision"].get<std::string>();
  if (t.contains("judge")) throw usage_error(o.templates + ": 'judge' is a template of cai judge");
  return with_cai_generator(o, "revise", [&](auto& gen) {
    if (const auto k = rows_already_done(o.output, prompts); k > 0) {
      std::printf("rlhf cai revise: resuming: %zu rows already done in %s\n", k, o.output.c_str());
      std::fflush(stdout);
    }
    std::optional<progress> bar;
    cfg.progress = [&bar](std::size_t done, std::size_t total) {
      if (!bar) {
        if (done == total) return;  // nothing to do: no display
        bar.emplace(static_cast<std::int64_t>(total), static_cast<std::int64_t>(done));
      }
      bar->count(static_cast<std::int64_t>(done), "prompts");
    };
    const auto s = rlhf::cai::critique_revise(gen, c, prompts, o.output, cfg);
    if (bar) bar->end_line();
    const auto failures = rlhf::cai::default_failures_file(o.output);
    std::printf(
        "rlhf cai revise: %zu prompts: %zu written, %zu skipped (already done), %zu failed, "
        "%zu duplicates%s; rows in %s\n",
        s.total, s.written, s.skipped, s.failed, s.duplicates,
        s.repaired ? ", torn last line repaired" : "", o.output.c_str());
    if (s.failed > 0) {
      std::printf("rlhf cai revise: failed prompts are listed in %s (a rerun retries them)\n",
                  failures.string().c_str());
    }
    if (s.failed > 0 && s.written == 0 && s.skipped == 0) {
      throw rlhf::error("cai revise: every prompt failed; last error: " + last_failure(failures));
    }
    if (!o.pairs.empty()) {
      const auto [written, identical] = write_revision_pairs(o.output, o.pairs);
      std::printf(
          "rlhf cai revise: %zu preference pairs (revision over first answer) in %s; "
          "%zu rows left out (revision identical to the first answer)\n",
          written, o.pairs.c_str(), identical);
    }
    return 0;
  });
}

/// The checks `cai judge --rules` knows, by principle name.
std::optional<std::function<bool(const std::string&)>> builtin_rule(const std::string& name) {
  if (name == "end_with_period") {
    return [](const std::string& s) {
      const auto e = s.find_last_not_of(" \t\r\n");
      return e != std::string::npos && s[e] == '.';
    };
  }
  if (name == "lowercase") {
    return [](const std::string& s) {
      return std::none_of(s.begin(), s.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; });
    };
  }
  if (name == "no_digit_7") {
    return [](const std::string& s) { return s.find('7') == std::string::npos; };
  }
  return std::nullopt;
}

/// Any judge as one type (the judge run is instantiated once per generator).
struct cai_any_judge {
  rlhf::cai::judge_function f;  ///< the judge (as_judge_function)
  /// f(q).
  std::vector<rlhf::cai::judgment> judge(const std::vector<rlhf::cai::judge_query>& q) {
    return f(q);
  }
};

int run_cai_judge(const cai_opts& o) {
  if (o.output.empty()) throw usage_error("cai judge: --output is required");
  if (!o.judge_model.empty() && !o.judge_endpoint.empty()) {
    throw usage_error("cai judge: give one of --judge-model CKPT or --judge-endpoint URL");
  }
  const bool own_judge = !o.judge_model.empty() || !o.judge_endpoint.empty();
  if (o.rules && own_judge) {
    throw usage_error(
        "cai judge: --rules judges with built-in checks, not with a model: drop "
        "--judge-model / --judge-endpoint, or --rules");
  }
  if (!o.judge_api_model.empty() && o.judge_endpoint.empty()) {
    throw usage_error("cai judge: --judge-api-model needs --judge-endpoint");
  }
  if (o.n < 2) throw usage_error("--n must be >= 2");
  if (!(o.min_confidence >= 0.0f && o.min_confidence <= 0.5f)) {
    throw usage_error("--min-confidence must be in [0, 0.5]");
  }
  const auto c = cai_constitution(o);
  const auto prompts = cai_prompts(o.prompts_file);
  const json t = cai_templates(o);
  if (t.contains("critique") || t.contains("revision")) {
    throw usage_error(o.templates + ": 'critique' and 'revision' are templates of cai revise");
  }
  std::vector<rlhf::cai::rule> rules;
  if (o.rules) {
    for (const auto& p : c.principles) {
      auto f = builtin_rule(p.name);
      if (!f) {
        throw rlhf::data_error(
            "--rules: principle '" + p.name + "' of " +
            (o.constitution.empty() ? "the default constitution" : o.constitution) +
            " has no built-in check (known: end_with_period, lowercase, "
            "no_digit_7)");
      }
      rules.push_back({p.name, std::move(*f)});
    }
  }
  rlhf::cai::rlaif_options ro;
  ro.responses_per_prompt = o.n;
  ro.generation = cai_generation(o);
  ro.prompts_per_batch = o.batch_size;
  ro.min_confidence = o.min_confidence;
  rlhf::cai::model_judge_options jo;
  jo.seed = o.seed;
  if (t.contains("judge")) jo.prompt_template = t["judge"].get<std::string>();
  rlhf::cai::rlaif_file_config fc;
  fc.rlaif = ro;
  fc.chat_rows = true;  // the generator put each prompt through the chat template; so must
                        // the trainers (a plain-text prompt is rendered without it)
  fc.resumed = [&o](std::size_t k) {
    std::printf("rlhf cai judge: resuming: %zu prompts already done in %s\n", k, o.output.c_str());
    std::fflush(stdout);
  };
  std::optional<progress> bar;
  fc.progress = [&bar](std::size_t done, std::size_t total) {
    if (!bar) {
      if (done == total) return;  // nothing to do: no display
      bar.emplace(static_cast<std::int64_t>(total), static_cast<std::int64_t>(done));
    }
    bar->count(static_cast<std::int64_t>(done), "prompts");
  };
  return with_cai_generator(o, "judge", [&](auto& gen) {
    const auto run = [&](cai_any_judge& judge) {
      const auto s = rlhf::cai::rlaif_pairs_to_file(gen, judge, prompts, o.output, fc);
      if (bar) bar->end_line();
      std::printf(
          "rlhf cai judge: %zu prompts, %zu pairs: %zu rows written, %zu identical, %zu no "
          "judgment, %zu ties, %zu below --min-confidence; %zu skipped (already done), "
          "%zu duplicates%s; rows in %s\n",
          s.total, s.pairs, s.rows, s.identical, s.no_judgment, s.ties, s.low_confidence, s.skipped,
          s.duplicates, s.repaired ? ", torn end repaired" : "", o.output.c_str());
      return 0;
    };
    if (o.rules) {
      rlhf::cai::rule_judge judge(rules);
      cai_any_judge any{rlhf::cai::as_judge_function(judge)};
      return run(any);
    }
    if (!own_judge) {  // the generator judges
      rlhf::cai::model_judge judge(gen, c, jo);
      cai_any_judge any{rlhf::cai::as_judge_function(judge)};
      return run(any);
    }
    cai_opts jopts = o;  // --judge-model / --judge-endpoint, as --model / --endpoint
    jopts.model = o.judge_model;
    jopts.endpoint = o.judge_endpoint;
    if (!o.judge_api_model.empty()) jopts.api_model = o.judge_api_model;
    jopts.max_new_tokens = jo.generation.max_new_tokens;
    return with_cai_generator(jopts, "judge", [&](auto& judge_model) {
      rlhf::cai::model_judge judge(judge_model, c, jo);
      cai_any_judge any{rlhf::cai::as_judge_function(judge)};
      return run(any);
    });
  });
}

/// Registers `rlhf cai revise` and `rlhf cai judge`.
CLI::App* add_cai(CLI::App& app, cai_opts& o, CLI::App*& revise, CLI::App*& judge) {
  auto* cai = app.add_subcommand("cai",
                                 "Constitutional AI: critique -> revision rows, AI-judged "
                                 "preference pairs (docs/cai.md)");
  cai->require_subcommand(1);
  const auto common = [&o](CLI::App* s) {
    s->add_option("--model", o.model,
                  "Checkpoint (.safetensors or a checkpoint folder) that generates [default: "
                  "none; this or --endpoint]");
    s->add_option("--endpoint", o.endpoint,
                  "OpenAI-compatible API root, e.g. http://127.0.0.1:8080/v1 [default: none]");
    s->add_option("--api-model", o.api_model, "--endpoint: the model name sent [default: default]");
    s->add_option("--api-key-env", o.api_key_env,
                  "--endpoint: environment variable holding the API key [default: none]");
    s->add_option("--system-prompt", o.system_prompt,
                  "--endpoint: system message before each prompt [default: none]");
    s->add_option("--http-retries", o.http_retries,
                  "--endpoint: retries of a failed request [default: 3]");
    s->add_option("--http-parallel", o.http_parallel,
                  "--endpoint: requests in flight at once [default: 1]");
    s->add_option("--http-timeout", o.http_timeout,
                  "--endpoint: seconds one request may take [default: 300]");
    s->add_option("--prompts-file", o.prompts_file,
                  "JSONL of {\"prompt\": ...} lines (text or chat messages) [required]")
        ->required();
    s->add_option("--constitution", o.constitution,
                  "Constitution JSON file [default: the shipped default constitution]");
    s->add_option("--templates", o.templates,
                  "JSON object of prompt templates: critique, revision (revise), judge (judge) "
                  "[default: built in]");
    s->add_option("--batch-size", o.batch_size, "Prompts per generation call [default: 8]");
    s->add_option("--max-new-tokens", o.max_new_tokens,
                  "Tokens per generated text at most [default: 64]");
    s->add_option("--temperature", o.temperature, "Sampling temperature; 0: greedy [default: 1]");
    s->add_option("--top-p", o.top_p, "Nucleus mass; 1: off [default: 1]");
    s->add_option("--seed", o.seed, "Seed of sampling and principle draws [default: 0]");
  };
  revise = cai->add_subcommand("revise", "Critique -> revision rows (resumable JSONL)");
  common(revise);
  revise
      ->add_option("--output", o.output,
                   "Rows file (JSONL, appended; an existing one is resumed) [required]")
      ->required();
  revise->add_option("--rounds", o.rounds, "Critique + revision rounds per prompt [default: 1]");
  revise->add_option("--max-attempts", o.max_attempts,
                     "Tries of a failing generation call [default: 3]");
  revise->add_option("--pairs", o.pairs,
                     "Also write the rows as chat preference pairs (revision over first answer; "
                     "identical ones left out) [default: none]");
  judge = cai->add_subcommand("judge", "AI-judged preference pairs (RLAIF) with soft labels");
  common(judge);
  judge
      ->add_option("--output", o.output,
                   "Preference rows (JSONL, appended per prompt; an existing one is resumed, "
                   "its done prompts listed in OUTPUT.done) [required]")
      ->required();
  judge->add_flag("--rules", o.rules,
                  "Judge with built-in checks, one per principle (end_with_period, lowercase, "
                  "no_digit_7) instead of the model [default: false]");
  judge->add_option("--judge-model", o.judge_model,
                    "Checkpoint that judges instead of the generator [default: none: the "
                    "generator judges]");
  judge->add_option("--judge-endpoint", o.judge_endpoint,
                    "OpenAI-compatible API root of a judge instead of the generator (with the "
                    "--api-key-env and --http-* options) [default: none]");
  judge->add_option("--judge-api-model", o.judge_api_model,
                    "--judge-endpoint: the model name sent [default: that of --api-model]");
  judge->add_option("--n", o.n, "Responses sampled per prompt; every pair is judged [default: 2]");
  judge->add_option("--min-confidence", o.min_confidence,
                    "Leave out pairs with |P(A better) - 0.5| below this [default: 0]");
  for (auto* s : {revise, judge}) {  // a last value wins, as for the other subcommands
    for (auto* opt : s->get_options()) {
      if (opt->get_expected_max() == 1) opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
  }
  return cai;
}

// ---- main -------------------------------------------------------------------------------------

/// One line, no newline inside.
std::string one_line(std::string s) {
  for (auto& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

int fail(int status, const std::string& what) {
  std::fflush(stdout);
  std::fprintf(stderr, "rlhf: error: %s\n", one_line(what).c_str());
  return status;
}

int run(int argc, char** argv) {
  CLI::App app{
      "rlhf: fine-tune and sample small GPT models (SFT, reward models, DPO, KTO, ORPO, CPO/SimPO, "
      "BCO, PPO, GRPO, RLOO) on JSONL data",
      "rlhf"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(RLHF_CLI_VERSION));

  const auto add_trainer = [&](const char* name, const char* about, option_table& table,
                               std::string& config) {
    auto* sub = app.add_subcommand(name, about);
    sub->add_option("--config", config, "JSON object of these options (flags win) [default: none]");
    table.add_to(*sub);
    return sub;
  };
  option_table sft_table(sft_defs()), dpo_table(dpo_defs()), reward_table(reward_defs());
  option_table kto_table(kto_defs()), orpo_table(orpo_defs()), cpo_table(cpo_defs()),
      bco_table(bco_defs());
  std::string sft_config_file, dpo_config_file, reward_config_file, kto_config_file,
      orpo_config_file, cpo_config_file, bco_config_file;
  auto* sft = add_trainer("sft", "Supervised fine-tuning", sft_table, sft_config_file);
  auto* dpo = add_trainer("dpo", "Direct preference optimisation against a frozen reference",
                          dpo_table, dpo_config_file);
  auto* rm = add_trainer("reward",
                         "Reward modeling: a scalar head on the trunk, Bradley-Terry loss",
                         reward_table, reward_config_file);
  auto* kto = add_trainer("kto", "KTO on unpaired feedback against a frozen reference", kto_table,
                          kto_config_file);
  auto* orpo = add_trainer("orpo", "Odds-ratio preference optimisation (no reference model)",
                           orpo_table, orpo_config_file);
  auto* cpo = add_trainer("cpo", "CPO, SimPO or AlphaPO (no reference model)", cpo_table,
                          cpo_config_file);
  auto* bco = add_trainer("bco", "Binary classifier optimisation on unpaired feedback", bco_table,
                          bco_config_file);
  option_table grpo_table(grpo_defs()), rloo_table(rloo_defs()), ppo_table(ppo_defs());
  std::string grpo_config_file, rloo_config_file, ppo_config_file;
  auto* ppo = add_trainer("ppo",
                          "PPO: policy, frozen reference, critic and reward model (InstructGPT "
                          "stage 3)",
                          ppo_table, ppo_config_file);
  auto* grpo = add_trainer(
      "grpo", "GRPO: groups of sampled completions scored by a reward command or model", grpo_table,
      grpo_config_file);
  auto* rloo = add_trainer("rloo", "RLOO: REINFORCE with a leave-one-out baseline per group",
                           rloo_table, rloo_config_file);

  generate_opts g;
  auto* gen = app.add_subcommand("generate", "Sample completions from a checkpoint");
  gen->add_option("--model", g.model, "Checkpoint (.safetensors or a checkpoint folder) [required]")
      ->required();
  gen->add_option("--prompt", g.prompts, "Prompt text (repeatable) [default: none]");
  gen->add_option("--prompts-file", g.prompts_file,
                  "JSONL of {\"prompt\": ...} lines [default: none]");
  gen->add_option("--max-new-tokens", g.max_new_tokens, "Tokens to generate at most [default: 32]");
  gen->add_option("--temperature", g.temperature, "Sampling temperature; 0: greedy [default: 1]");
  gen->add_option("--top-k", g.top_k, "Keep the k most likely tokens; 0: off [default: 0]");
  gen->add_option("--top-p", g.top_p, "Nucleus mass; 1: off [default: 1]");
  gen->add_option("--seed", g.seed, "Sampling seed [default: 0]");
  gen->add_flag("--json", g.json_out, "One JSON object per line [default: false]");

  bon_opts b;
  auto* bon = app.add_subcommand("bon", "Best-of-N: keep each prompt's highest-reward sample");
  bon->add_option("--model", b.model, "Checkpoint (.safetensors or a checkpoint folder) [required]")
      ->required();
  bon->add_option("--prompts-file", b.prompts_file, "JSONL of {\"prompt\": ...} lines [required]")
      ->required();
  bon->add_option("--n", b.n, "Samples per prompt [default: 4]");
  bon->add_option("--max-new-tokens", b.max_new_tokens, "Tokens per sample at most [default: 64]");
  bon->add_option("--batch-size", b.batch_size,
                  "Prompts sampled together (their N samples each) [default: 8]");
  bon->add_option("--temperature", b.temperature, "Sampling temperature, > 0 [default: 1]");
  bon->add_option("--top-k", b.top_k, "Keep the k most likely tokens; 0: off [default: 0]");
  bon->add_option("--top-p", b.top_p, "Nucleus mass; 1: off [default: 1]");
  bon->add_option("--seed", b.seed, "Sampling seed [default: 0]");
  bon->add_option("--reward-command", b.reward_command,
                  "Shell command scoring samples (as for grpo) [default: none]");
  bon->add_option("--reward-command-timeout", b.reward_command_timeout,
                  "Seconds the command may take per batch [default: 60]");
  bon->add_option("--reward-model", b.reward_model,
                  "Reward model checkpoint (from rlhf reward) [default: none]");
  bon->add_option("--reward-weights", b.reward_weights,
                  "Comma list of weights: command first, then model [default: 1 each]");
  bon->add_option("--output", b.output, "JSONL file to write (atomically) [default: stdout]");

  eval_opts e;
  auto* ev = app.add_subcommand("eval", "Evaluation metrics of a checkpoint on a file");
  ev->add_option("--model", e.model, "Checkpoint (.safetensors or a checkpoint folder) [required]")
      ->required();
  ev->add_option("--file", e.file, "JSONL data [required]")->required();
  ev->add_option("--method", e.method,
                 "Evaluation path: sft, reward, dpo, kto, orpo, cpo or bco (each with its "
                 "default options), or policy (greedy reward and length, KL to --reference, "
                 "on prompts) [default: sft]")
      ->check(CLI::IsMember({"sft", "reward", "dpo", "kto", "orpo", "cpo", "bco", "policy"}));
  ev->add_option("--reference", e.reference,
                 "Reference checkpoint: dpo, kto and bco compare with it (the model itself "
                 "when not given), policy measures its KL to it (no KL when not given) "
                 "[default: none]");
  ev->add_option("--max-new-tokens", e.max_new_tokens,
                 "policy: tokens per completion at most [default: 64]");
  ev->add_option("--seed", e.seed, "policy: seed of the KL's samples [default: 0]");
  ev->add_option("--reward-command", e.reward_command,
                 "policy: shell command scoring completions (as for grpo) [default: none]");
  ev->add_option("--reward-command-timeout", e.reward_command_timeout,
                 "policy: seconds the command may take per batch [default: 60]");
  ev->add_option("--reward-model", e.reward_model,
                 "policy: reward model checkpoint [default: none]");
  ev->add_option("--reward-weights", e.reward_weights,
                 "policy: comma list of weights, command first [default: 1 each]");
  ev->add_option("--samples", e.samples,
                 "policy: JSONL of the greedy completions and rewards to write [default: none]");
  ev->add_option("--batch-size", e.batch_size, "Examples per batch [default: 8]");
  ev->add_flag("--skip-bad-lines", e.skip_bad_lines, "Skip malformed lines [default: false]");

  cai_opts ca;
  CLI::App* cai_revise = nullptr;
  CLI::App* cai_judge = nullptr;
  add_cai(app, ca, cai_revise, cai_judge);

  std::string run_dir;
  auto* pl = app.add_subcommand("plot", "Plot a run's metrics.jsonl into RUN_DIR/plots");
  pl->add_option("run_dir", run_dir, "Folder of a run (holds metrics.jsonl) [required]")
      ->required();

  // A last value wins when an option is repeated (as with a --config file's values).
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    for (auto* opt : sub->get_options()) {
      if (opt->get_expected_max() == 1) opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    }
  }
  const auto is_sub = [&](const char* name) {
    for (auto* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      if (sub->check_name(name)) return true;
    }
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_sub(argv[1])) {
    throw usage_error(
        std::string("unknown subcommand '") + argv[1] +
        "' (expected sft, reward, dpo, kto, orpo, cpo, bco, ppo, grpo, rloo, generate, bon, eval, "
        "cai or plot)");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& ex) {
    return app.exit(ex);
  } catch (const CLI::CallForAllHelp& ex) {
    return app.exit(ex);
  } catch (const CLI::CallForVersion& ex) {
    return app.exit(ex);
  } catch (const CLI::ParseError& ex) {
    return fail(2, ex.what());
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  if (sft->parsed()) return run_sft(sft_table.resolve(sft_config_file));
  if (dpo->parsed()) return run_dpo(dpo_table.resolve(dpo_config_file));
  if (rm->parsed()) return run_reward(reward_table.resolve(reward_config_file));
  if (kto->parsed()) {
    return run_unpaired<train::kto_method>(kto_table.resolve(kto_config_file), "kto",
                                           &kto_config_of, &train::kto_tokenize_options);
  }
  if (bco->parsed()) {
    return run_unpaired<train::bco_method>(bco_table.resolve(bco_config_file), "bco",
                                           &method_config_of<train::bco_config>,
                                           &train::bco_tokenize_options);
  }
  if (orpo->parsed()) {
    return run_reference_free<train::orpo_method>(orpo_table.resolve(orpo_config_file), "orpo",
                                                  &method_config_of<train::orpo_config>,
                                                  &train::orpo_tokenize_options);
  }
  if (cpo->parsed()) {
    return run_reference_free<train::cpo_method>(cpo_table.resolve(cpo_config_file), "cpo",
                                                 &cpo_config_of, &train::cpo_tokenize_options);
  }
  if (ppo->parsed()) return run_ppo(ppo_table.resolve(ppo_config_file));
  if (grpo->parsed()) {
    return run_online<train::grpo_method>(grpo_table.resolve(grpo_config_file), "grpo",
                                          &finish_grpo);
  }
  if (rloo->parsed()) {
    return run_online<train::rloo_method>(rloo_table.resolve(rloo_config_file), "rloo",
                                          &finish_rloo);
  }
  if (gen->parsed()) return run_generate(g);
  if (bon->parsed()) return run_bon(b);
  if (ev->parsed()) return run_eval(e);
  if (cai_revise->parsed()) return run_cai_revise(ca);
  if (cai_judge->parsed()) return run_cai_judge(ca);
  if (pl->parsed()) return plot(run_dir);
  return fail(2, "no subcommand");
}

}  // namespace
}  // namespace rlhf_cli

int main(int argc, char** argv) {
#ifdef RLHF_CLI_MPI
  // Under mpirun every rank runs this; a rank that fails ends the job (MPI_Abort) instead of
  // leaving the others waiting in a collective.
  std::optional<rlhf::dist::mpi_environment> mpi;
  if (rlhf::dist::launched_by_mpi()) {
    mpi.emplace(argc, argv);
    rlhf_cli::world() = rlhf::dist::mpi_communicator();
  }
  const auto fail = [&](int status, const std::string& what) {
    const int code = rlhf_cli::fail(status, what);
    if (rlhf_cli::world().size() > 1)
      rlhf::dist::mpi_abort("rank " + std::to_string(rlhf_cli::world().rank()) + ": " + what, code);
    return code;
  };
#else
  using rlhf_cli::fail;
#endif
  try {
    return rlhf_cli::run(argc, argv);
  } catch (const rlhf_cli::usage_error& e) {
    return fail(2, e.what());
  } catch (const CLI::Error& e) {
    return fail(2, e.what());
  } catch (const rlhf::error& e) {
    return fail(1, e.what());
  } catch (const std::exception& e) {
    return fail(1, e.what());
  } catch (...) {
    return fail(1, "unknown error");
  }
}
