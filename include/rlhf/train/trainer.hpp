// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The training loop every method shares (SFT, reward modeling, the DPO family, ...): the
// method computes a micro-batch's loss and gradients; the trainer does the rest.
//
//   for each optimizer step s (0-based) until training_args::total_steps:
//     zero the gradients; for k in 1..gradient_accumulation_steps:
//       indices <- the next micro-batch of the seeded batcher (data/batcher.hpp)
//       method.train_micro_batch(indices)      (adds d mean-loss / d θ to the gradients)
//     gradients /= gradient_accumulation_steps
//     grad_norm <- ||g||_2 over every trainable arena; clip to max_grad_norm (torch's rule)
//     AdamW step at lr_schedule.lr_at(s) on the trunk and on each head
//     every logging_steps: log the window's means (metrics.jsonl, on_step): the method's
//                          metrics averaged over the window's micro-batches, grad_norm and
//                          learning_rate over its steps
//     every eval_steps:    evaluate on the held-out examples (on_eval)
//     every save_steps:    checkpoint (on_checkpoint); also at the end and on request_stop()
//
// Rollout methods (PPO: one generation batch serves K = steps_per_rollout() optimizer steps)
// draw prompts and call prepare_step only when the method's rollout is used up
// (rollout_done()), and checkpoint only at such a rollout boundary, so that a resumed run
// always starts with a fresh rollout and no rollout has to be saved: save_steps is rounded up
// to a multiple of K, a save or a request_stop() falling inside a rollout (after a target_kl
// early stop shifted the boundaries) waits for its end, and max_steps is rounded up to a
// multiple of K. Extra trained models (PPO's separate critic, critics()) get their own AdamW
// at the same learning rate, share the global gradient-norm clip and are saved beside the
// policy as <name>.safetensors (trunk, heads, trunk AdamW) and
// <name>_heads_optimizer.safetensors.
//
// Checkpoints are folders <output_dir>/checkpoint-<step>/ (written under a temporary name,
// then renamed): model.safetensors (trunk, heads, trunk AdamW state and, in its metadata,
// the trainer state: step, batcher position, metric window, the method's own state) and,
// when there are heads, heads_optimizer.safetensors. Resuming from one continues exactly
// where the run stood: with the same arguments, every later metric equals the uninterrupted
// run's bit for bit (the kernels are deterministic for a fixed thread count).
//
// Data parallel (a communicator of R > 1 ranks, dist/communicator.hpp): every rank runs this
// loop on its own process with the same arguments. The batcher draws global batches of R
// micro-batches' worth of indices (R times the per-device size), in the same seeded order
// on every rank, and rank r trains on the r-th share, so that R ranks × b examples see what
// one process × R·b sees; an epoch's last, short global batch is dropped. After the
// micro-batches the gradient arenas are all-reduced (mean) once per optimizer step, so the
// gradient norm, the clip and the AdamW step are global and identical on every rank. Each
// micro-batch's metrics are gathered and combined over the ranks (the mean; num_tokens, a
// count, the sum); evaluation shards the held-out batches over the ranks and gathers their
// metrics. Rank 0 alone writes metrics.jsonl and checkpoints and runs the callbacks; the
// others wait for it at a barrier. train() starts by broadcasting rank 0's parameters, and a
// stop request on any rank stops every rank at the same step.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/core/validation.hpp"
#include "rlhf/data/batcher.hpp"
#include "rlhf/dist/communicator.hpp"
#include "rlhf/model/checkpoint.hpp"
#include "rlhf/model/detail/atomic_file.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/model/optim.hpp"
#include "rlhf/model/safetensors.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/metrics_log.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// Hooks into a run. Each is optional; exceptions thrown by one end the run.
struct callbacks {
  std::function<void(const metrics_record&)> on_step;               ///< each logged training record
  std::function<void(const metrics_record&)> on_eval;               ///< each evaluation record
  std::function<void(const std::filesystem::path&)> on_checkpoint;  ///< each saved folder
  std::function<void(const std::string&)> on_warning;  ///< advice about the run's health
};

/// What a training method supplies to trainer<B, M>.
///   policy(), heads()            the trainable model (heads may be empty)
///   train_indices(), eval_indices()  example indices of the two splits
///   train_micro_batch(idx)       adds d(mean loss over idx)/dθ to the gradients; returns the
///                                micro-batch's metrics, "loss" first
///   eval_batch(idx)              metrics of idx without touching gradients
///   state(), restore(j)          the method's own resumable state (e.g. dropout counters)
///   start_warnings()             advice before training (empty when none)
///   finish_log(means)            turns a window's means into the logged values
///   warnings(final_eval)         advice after training (empty when none)
/// Optional, for the online methods, which sample what they train on:
///   examples_per_step()          prompts drawn per optimizer step (instead of
///                                per_device_train_batch_size per micro-batch)
///   prepare_step(idx, step)      samples and scores the step's generation batch from the
///                                prompts idx; returns metrics logged once per step; each
///                                train_micro_batch then gets an empty span and trains on
///                                the method's next share of that batch
///   examples_per_eval_batch()    prompts per evaluation batch
///   review_log(record)           reads (and may add fields to) each logged training record
///                                before it is written; returns warnings (train/monitors.hpp)
/// Optional, for the rollout methods (PPO), on top of the online hooks:
///   steps_per_rollout()          K: optimizer steps one generation batch serves at most
///   rollout_done()               true when the current rollout has no step left (also
///                                before the first one and after a restore): the next step
///                                draws prompts and calls prepare_step
///   critics()                    std::vector<trained_model<B>>: further trained models
///                                (PPO's separate value model), optimized and checkpointed
///                                by the trainer beside the policy
template <class M, class B>
concept training_method = requires(M& m, const M& cm, std::span<const std::uint64_t> idx,
                                   const nlohmann::json& j, const metrics_record& rec,
                                   metric_means& means) {
  { m.policy() } -> std::same_as<model::gpt<B>&>;
  { m.heads() } -> std::same_as<std::vector<model::scalar_head<B>*>>;
  { cm.train_indices() } -> std::same_as<const std::vector<std::uint64_t>&>;
  { cm.eval_indices() } -> std::same_as<const std::vector<std::uint64_t>&>;
  { m.train_micro_batch(idx) } -> std::same_as<named_metrics>;
  { m.eval_batch(idx) } -> std::same_as<named_metrics>;
  { cm.state() } -> std::same_as<nlohmann::json>;
  {m.restore(j)};
  { cm.start_warnings() } -> std::same_as<std::vector<std::string>>;
  {cm.finish_log(means)};
  { cm.warnings(rec) } -> std::same_as<std::vector<std::string>>;
};

/// What train() ends with.
struct train_result {
  index_t global_step = 0;                ///< optimizer steps taken in all
  bool stopped_early = false;             ///< request_stop() ended it before total steps
  metrics_record last_log;                ///< the last training record logged
  metrics_record last_eval;               ///< the last evaluation record (null when none)
  std::filesystem::path last_checkpoint;  ///< the folder saved last
};

/// A trained model besides the policy (PPO's separate critic): its trunk and heads, stepped by
/// their own AdamW, and the stem of its checkpoint files ("value_model").
template <class B>
struct trained_model {
  model::gpt<B>* trunk = nullptr;             ///< trained trunk (must own gradients)
  std::vector<model::scalar_head<B>*> heads;  ///< its trained heads (e.g. "v_head")
  std::string name;                           ///< checkpoint file stem
};

namespace detail {

/// Whether M samples its own training batches (see training_method).
template <class M>
concept online_method = requires(M& m, const M& cm, std::span<const std::uint64_t> idx,
                                 index_t step) {
  { cm.examples_per_step() } -> std::convertible_to<index_t>;
  { m.prepare_step(idx, step) } -> std::same_as<named_metrics>;
};

/// Whether M is an online method whose generation batch serves several steps (PPO).
template <class M>
concept rollout_method = online_method<M> && requires(const M& cm) {
  { cm.steps_per_rollout() } -> std::convertible_to<index_t>;
  { cm.rollout_done() } -> std::same_as<bool>;
};

/// Whether M trains models besides its policy (see trained_model).
template <class M, class B>
concept has_critics = requires(M& m) {
  { m.critics() } -> std::same_as<std::vector<trained_model<B>>>;
};

/// Optimizer steps one generation batch serves: K for a rollout method, else 1.
template <class M>
index_t steps_per_rollout(const M& m) {
  if constexpr (rollout_method<M>) {
    return std::max<index_t>(1, static_cast<index_t>(m.steps_per_rollout()));
  } else {
    return 1;
  }
}

/// Indices the batcher draws at once: an online method's examples_per_step(), else
/// per_device_train_batch_size (one micro-batch).
template <class M>
std::size_t train_batch_indices(const M& m, const training_args& a) {
  if constexpr (online_method<M>) {
    return static_cast<std::size_t>(m.examples_per_step());
  } else {
    return static_cast<std::size_t>(a.per_device_train_batch_size);
  }
}

/// Indices an evaluation batch holds (as train_batch_indices, for evaluation).
template <class M>
std::size_t eval_batch_indices(const M& m, const training_args& a) {
  if constexpr (requires { m.examples_per_eval_batch(); }) {
    return static_cast<std::size_t>(m.examples_per_eval_batch());
  } else {
    return static_cast<std::size_t>(a.per_device_eval_batch_size);
  }
}

/// "checkpoint-<step>" folders of `dir`, sorted by step.
inline std::vector<std::pair<index_t, std::filesystem::path>> checkpoints_in(
    const std::filesystem::path& dir) {
  std::vector<std::pair<index_t, std::filesystem::path>> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    constexpr std::string_view prefix = "checkpoint-";
    if (!e.is_directory() || name.rfind(prefix, 0) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.empty() || digits.size() > 15 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    out.emplace_back(static_cast<index_t>(std::stoll(digits)), e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// A fresh name beside `target` for writing a folder before renaming it into place.
inline std::filesystem::path temporary_sibling(const std::filesystem::path& target) {
  std::filesystem::path p = target;
  p += ".tmp." + rlhf::detail::random_suffix();
  return p;
}

}  // namespace detail

/// The loop of every trainer; see the top of this file.
template <class B, class M>
requires training_method<M, B>
class trainer {
 public:
  /// A trainer of `method` (kept by reference) with `args` (validated here), one of the
  /// `comm.size()` ranks of a data-parallel run (one process by default).
  trainer(M& method, training_args args, callbacks cb = {}, dist::any_communicator comm = {})
      : method_(method), args_(std::move(args)), cb_(std::move(cb)), comm_(std::move(comm)),
        batcher_(
            nonempty(method.train_indices()),
            // Rollout methods train on whole rollouts: TRL's PPO loader drops the last
            // incomplete batch; so do several ranks (each needs its full share).
            data::batcher_options{
                detail::train_batch_indices(method, args_) * static_cast<std::size_t>(comm_.size()),
                args_.seed, true, detail::rollout_method<M> || comm_.size() > 1}),
        optimizer_(method.policy().num_params(), args_.adam()),
        decay_ranges_(model::decay_ranges(method.policy())),
        metrics_(std::filesystem::path(args_.output_dir) / "metrics.jsonl") {
    args_.validate();
    // A method that needs the group itself (GRPO, RLOO: sampling streams, token counts).
    if constexpr (requires { method_.join(comm_); }) method_.join(comm_);
    for (auto* h : method_.heads()) {
      head_optimizers_.emplace_back(h->num_params(), args_.adam());
      head_ranges_.push_back(head_ranges(*h));
    }
    if constexpr (detail::has_critics<M, B>) {
      for (const auto& c : method_.critics()) {
        if (c.trunk == nullptr || !c.trunk->trainable()) {
          throw config_error(
              rlhf::detail::concat("trainer: critic '", c.name, "' needs a trainable trunk"));
        }
        critic_state s{model::adamw<B>(c.trunk->num_params(), args_.adam()),
                       model::decay_ranges(*c.trunk),
                       {},
                       {}};
        for (auto* h : c.heads) {
          s.head_optimizers.emplace_back(h->num_params(), args_.adam());
          s.head_ranges.push_back(head_ranges(*h));
        }
        critic_states_.push_back(std::move(s));
      }
    }
    const index_t k = detail::steps_per_rollout(method_);
    const index_t batches = static_cast<index_t>(batcher_.batches_per_epoch());
    const index_t draws = detail::online_method<M> ? 1 : args_.gradient_accumulation_steps;
    const index_t per_epoch = std::max<index_t>(1, (batches + draws - 1) / draws) * k;
    total_steps_ = args_.max_steps > 0
                       ? args_.max_steps
                       : static_cast<index_t>(
                             std::ceil(args_.num_train_epochs * static_cast<double>(per_epoch)));
    // A rollout method runs whole rollouts: total steps and save_steps round up to K.
    total_steps_ = (total_steps_ + k - 1) / k * k;
    save_steps_ = args_.save_steps > 0 ? (args_.save_steps + k - 1) / k * k : 0;
    schedule_ = args_.schedule(total_steps_);
  }

  /// Optimizer steps of the whole run.
  [[nodiscard]] index_t total_steps() const { return total_steps_; }
  /// Optimizer steps taken so far.
  [[nodiscard]] index_t global_step() const { return step_; }
  /// Asks the loop to save a checkpoint and return after the current step (safe to call
  /// from a callback, another thread or a signal handler).
  void request_stop() noexcept { stop_.store(true); }

  /// This rank in the data-parallel group (0 alone writes files).
  [[nodiscard]] int rank() const { return comm_.rank(); }
  /// The number of ranks training together.
  [[nodiscard]] int world_size() const { return comm_.size(); }

  /// Trains from scratch, or from the checkpoint folder `resume_from` when given (every
  /// rank reads it).
  train_result train(const std::filesystem::path& resume_from = {}) {
    if (leader()) std::filesystem::create_directories(args_.output_dir);
    if (!resume_from.empty()) load(resume_from);
    if (leader()) metrics_.truncate_after(resume_from.empty() ? -1 : step_);  // fresh: fresh log
    if (comm_.size() > 1) {
      broadcast_parameters();
      comm_.barrier();
    }
    // The steps run at args_.validation (loading a checkpoint above keeps the caller's).
    const scoped_validation level(args_.validation);
    train_result result;
    if (step_ == 0) {
      for (const auto& w : method_.start_warnings()) warn(w);
    }
    while (step_ < total_steps_) {
      one_step();
      if (step_ % args_.logging_steps == 0 || step_ == total_steps_) {
        result.last_log = log_window();
      }
      if (args_.eval_steps > 0 && step_ % args_.eval_steps == 0 && step_ != total_steps_) {
        result.last_eval = evaluate();
      }
      // Checkpoints only at rollout boundaries (always, for the other methods).
      if (save_steps_ > 0 && step_ % save_steps_ == 0) save_due_ = true;
      const bool boundary = at_rollout_boundary();
      if (save_due_ && boundary && step_ != total_steps_) {
        result.last_checkpoint = save_checkpoint();
        save_due_ = false;
      }
      if (stop_requested() && boundary && step_ != total_steps_) {
        if (!window_.empty()) result.last_log = log_window();
        result.last_checkpoint = save_checkpoint();
        result.stopped_early = true;
        result.global_step = step_;
        return result;
      }
    }
    if (!method_.eval_indices().empty()) result.last_eval = evaluate();
    result.last_checkpoint = save_checkpoint();
    result.global_step = step_;
    for (const auto& w : method_.warnings(result.last_eval)) warn(w);
    return result;
  }

  /// Means of the method's metrics over every held-out example, names prefixed "eval_",
  /// logged to metrics.jsonl and on_eval.
  metrics_record evaluate() {
    const auto& idx = method_.eval_indices();
    metric_window w;
    const auto b = detail::eval_batch_indices(method_, args_);
    // Batch j on rank j mod R; the window then holds every batch's metrics, in batch order.
    std::vector<named_metrics> mine;
    const auto ranks = static_cast<std::size_t>(comm_.size());
    std::size_t j = 0;
    for (std::size_t i = 0; i < idx.size(); i += b, ++j) {
      if (j % ranks != static_cast<std::size_t>(comm_.rank())) continue;
      const std::size_t n = std::min(b, idx.size() - i);
      mine.push_back(method_.eval_batch(std::span<const std::uint64_t>(idx.data() + i, n)));
    }
    if (ranks == 1) {
      for (const auto& m : mine) w.add(m);
    } else {
      const auto all = gather_metrics(mine);
      for (std::size_t k = 0; k < j; ++k) w.add(all[k % ranks][k / ranks]);
    }
    metrics_record rec;
    rec["step"] = step_;
    auto means = w.means();
    method_.finish_log(means);
    global_counts(means);
    for (const auto& [name, v] : means) rec["eval_" + name] = v;
    if (!idx.empty() && leader()) {
      metrics_.append(rec);
      if (cb_.on_eval) cb_.on_eval(rec);
    }
    return rec;
  }

  /// Saves `output_dir/checkpoint-N/` (N = the current step) now and returns it (rank 0
  /// writes it; the other ranks wait for it and return the same path).
  std::filesystem::path save_checkpoint() {
    namespace fs = std::filesystem;
    fs::path dir = fs::path(args_.output_dir) / ("checkpoint-" + std::to_string(step_));
    if (!leader()) {
      comm_.barrier();
      return dir;
    }
    const fs::path tmp = detail::temporary_sibling(dir);
    fs::create_directories(tmp);
    try {
      model::metadata_map md;
      md["trainer_state"] = trainer_state().dump();
      model::save_checkpoint<B>(tmp / "model.safetensors", method_.policy(), heads_const(),
                                &optimizer_, md);
      if (!head_optimizers_.empty()) {
        save_head_optimizers(tmp / "heads_optimizer.safetensors", method_.heads(),
                             head_optimizers_);
      }
      if constexpr (detail::has_critics<M, B>) {
        const auto critics = method_.critics();
        for (std::size_t i = 0; i < critics.size(); ++i) {
          const auto& c = critics[i];
          std::vector<const model::scalar_head<B>*> hs(c.heads.begin(), c.heads.end());
          model::save_checkpoint<B>(tmp / (c.name + ".safetensors"), *c.trunk, hs,
                                    &critic_states_[i].optimizer, {});
          if (!c.heads.empty()) {
            save_head_optimizers(tmp / (c.name + "_heads_optimizer.safetensors"), c.heads,
                                 critic_states_[i].head_optimizers);
          }
        }
      }
      std::error_code ec;
      fs::remove_all(dir, ec);  // a re-save of the same step (after a resume)
      fs::rename(tmp, dir);
    } catch (...) {
      std::error_code ec;
      fs::remove_all(tmp, ec);
      throw;
    }
    prune_checkpoints();
    if (cb_.on_checkpoint) cb_.on_checkpoint(dir);
    if (comm_.size() > 1) comm_.barrier();  // the others wait until the folder is in place
    return dir;
  }

 private:
  static const std::vector<std::uint64_t>& nonempty(const std::vector<std::uint64_t>& v) {
    if (v.empty()) throw data_error("trainer: no training examples");
    return v;
  }

  [[nodiscard]] std::vector<const model::scalar_head<B>*> heads_const() {
    std::vector<const model::scalar_head<B>*> out;
    for (auto* h : method_.heads()) out.push_back(h);
    return out;
  }

  void warn(const std::string& message) {
    if (cb_.on_warning && leader()) cb_.on_warning(message);
  }

  /// Rank 0: writes the files and runs the callbacks.
  [[nodiscard]] bool leader() const { return comm_.rank() == 0; }

  /// Whether any rank was asked to stop (the ranks agree on it once per step).
  [[nodiscard]] bool stop_requested() {
    if (comm_.size() == 1) return stop_.load();
    float flag = stop_.load() ? 1.0f : 0.0f;
    comm_.all_reduce(&flag, 1, dist::reduce_op::sum);
    return flag > 0.0f;
  }

  /// Every rank starts from rank 0's parameters (trunks and heads).
  void broadcast_parameters() {
    auto send = [&](typename B::tensor& t) { dist::broadcast<B>(comm_, t, 0); };
    send(method_.policy().params());
    for (auto* h : method_.heads()) send(h->params());
    for (const auto& c : critic_models()) {
      send(c.trunk->params());
      for (auto* h : c.heads) send(h->params());
    }
  }

  /// The mean over the ranks of every trained gradient arena.
  void all_reduce_gradients() {
    auto mean = [&](typename B::tensor& t) {
      dist::all_reduce<B>(comm_, t, dist::reduce_op::mean);
    };
    mean(method_.policy().grads());
    for (auto* h : method_.heads()) mean(h->grads());
    for (const auto& c : critic_models()) {
      mean(c.trunk->grads());
      for (auto* h : c.heads) mean(h->grads());
    }
  }

  /// Every rank's list of metric sets, in rank order.
  std::vector<std::vector<named_metrics>> gather_metrics(const std::vector<named_metrics>& mine) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& m : mine) {
      nlohmann::json one = nlohmann::json::array();
      for (const auto& [name, v] : m) one.push_back({name, v});
      j.push_back(std::move(one));
    }
    std::vector<std::vector<named_metrics>> out;
    for (const auto& bytes : comm_.all_gather(j.dump())) {
      const auto r = nlohmann::json::parse(bytes);
      std::vector<named_metrics> lists;
      for (const auto& one : r) {
        named_metrics m;
        for (const auto& p : one) m.push_back({p[0].get<std::string>(), p[1].get<float>()});
        lists.push_back(std::move(m));
      }
      out.push_back(std::move(lists));
    }
    return out;
  }

  /// The ranks' metrics of one micro-batch position combined over the ranks that report
  /// each: the smallest of a "min..." (last name part: completions/min_length, min_reward),
  /// the largest of a "max...", the mean of every other (exact for means over equal shares;
  /// a standard deviation becomes the mean of the ranks' ones). num_tokens, a count, is
  /// summed by global_counts when logged.
  [[nodiscard]] static named_metrics combine(const std::vector<named_metrics>& per_rank) {
    named_metrics out;
    std::vector<int> counts;
    const auto kind = [](const std::string& name) {
      const auto slash = name.rfind('/');
      const std::string_view last = std::string_view(name).substr(
          slash == std::string::npos ? 0 : slash + 1);
      return last.starts_with("min") ? -1 : last.starts_with("max") ? 1 : 0;
    };
    for (const auto& m : per_rank) {
      for (const auto& entry : m) {
        const std::string& name = entry.first;  // not a binding: clang 14 cannot capture one
        const float v = entry.second;
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const auto& p) { return p.first == name; });
        if (it == out.end()) {
          out.push_back({name, v});
          counts.push_back(1);
          continue;
        }
        const int k = kind(name);
        it->second = k < 0   ? std::min(it->second, v)
                     : k > 0 ? std::max(it->second, v)
                             : it->second + v;
        ++counts[static_cast<std::size_t>(it - out.begin())];
      }
    }
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (kind(out[i].first) == 0) out[i].second /= static_cast<float>(counts[i]);
    }
    return out;
  }

  /// num_tokens, once finish_log made it the rank's running count, summed over the ranks
  /// (exactly: the counts travel as decimal integers).
  void global_counts(metric_means& means) {
    if (comm_.size() == 1) return;
    for (auto& [name, v] : means) {
      if (name != "num_tokens") continue;
      double total = 0.0;
      for (const auto& s : comm_.all_gather(std::to_string(static_cast<std::uint64_t>(v)))) {
        total += static_cast<double>(std::stoull(s));
      }
      v = total;
    }
  }

  static std::vector<model::param_range> head_ranges(const model::scalar_head<B>& h) {
    return {model::param_range{0, h.n_embd(), true}, model::param_range{h.n_embd(), 1, false}};
  }

  /// Whether a checkpoint may be written now: always, except inside a rollout.
  [[nodiscard]] bool at_rollout_boundary() const {
    if constexpr (detail::rollout_method<M>) {
      return method_.rollout_done();
    } else {
      return true;
    }
  }

  /// The critics' trunks and heads (none unless M has critics()).
  [[nodiscard]] std::vector<trained_model<B>> critic_models() {
    if constexpr (detail::has_critics<M, B>) {
      return method_.critics();
    } else {
      return {};
    }
  }

  void one_step() {
    auto& policy = method_.policy();
    const auto heads = method_.heads();
    const auto critics = critic_models();
    policy.zero_grads();
    for (auto* h : heads) h->zero_grads();
    for (const auto& c : critics) {
      c.trunk->zero_grads();
      for (auto* h : c.heads) h->zero_grads();
    }
    const index_t k = args_.gradient_accumulation_steps;
    // This rank's share of a global batch (all of it with one rank).
    const auto share = [&](std::vector<std::uint64_t> idx) {
      const auto ranks = static_cast<std::size_t>(comm_.size());
      if (ranks == 1) return idx;
      const std::size_t per = idx.size() / ranks;
      const auto first = idx.begin() +
                         static_cast<std::ptrdiff_t>(per * static_cast<std::size_t>(comm_.rank()));
      return std::vector<std::uint64_t>(first, first + static_cast<std::ptrdiff_t>(per));
    };
    // The method's metrics enter the window per micro-batch (TRL stores them per loss
    // computation and logs the plain mean over the window); a metric a micro-batch does not
    // report (e.g. KTO's rewards/rejected without undesirable examples) is not averaged in.
    std::vector<named_metrics> micro;
    if constexpr (detail::online_method<M>) {
      // One generation batch per step (per rollout of K steps), trained on in k shares.
      named_metrics once;
      bool fresh = true;
      if constexpr (detail::rollout_method<M>) fresh = method_.rollout_done();
      if (fresh) {
        const auto idx = share(batcher_.next());
        ++micro_batches_;
        once = method_.prepare_step(std::span<const std::uint64_t>(idx), step_);
      }
      for (index_t i = 0; i < k; ++i) micro.push_back(method_.train_micro_batch({}));
      if (fresh) micro.push_back(std::move(once));
    } else {
      for (index_t i = 0; i < k; ++i) {
        const auto idx = share(batcher_.next());
        ++micro_batches_;
        micro.push_back(method_.train_micro_batch(std::span<const std::uint64_t>(idx)));
      }
    }
    if (comm_.size() > 1) {
      all_reduce_gradients();
      const auto all = gather_metrics(micro);
      for (std::size_t i = 0; i < micro.size(); ++i) {
        std::vector<named_metrics> same_position;
        for (const auto& r : all) {
          if (i < r.size()) same_position.push_back(r[i]);
        }
        micro[i] = combine(same_position);
      }
    }
    if (k > 1) {
      const float inv = 1.0f / static_cast<float>(k);
      model::scale_grads<B>(policy.grads(), inv);
      for (auto* h : heads) model::scale_grads<B>(h->grads(), inv);
      for (const auto& c : critics) {
        model::scale_grads<B>(c.trunk->grads(), inv);
        for (auto* h : c.heads) model::scale_grads<B>(h->grads(), inv);
      }
    }
    // torch.nn.utils.clip_grad_norm_ over all trainable parameters at once.
    double sq = 0.0;
    const double trunk = model::grad_norm<B>(policy.grads());
    sq += trunk * trunk;
    for (auto* h : heads) {
      const double n = model::grad_norm<B>(h->grads());
      sq += n * n;
    }
    for (const auto& c : critics) {
      const double t = model::grad_norm<B>(c.trunk->grads());
      sq += t * t;
      for (auto* h : c.heads) {
        const double n = model::grad_norm<B>(h->grads());
        sq += n * n;
      }
    }
    const double norm = std::sqrt(sq);
    if (!std::isfinite(norm)) {
      throw data_error(rlhf::detail::concat("trainer: step ", step_,
                                            ": the gradient norm is not finite (", norm, ")"));
    }
    if (args_.max_grad_norm > 0.0f && norm > args_.max_grad_norm) {
      const auto coef = static_cast<float>(args_.max_grad_norm / (norm + 1e-6));
      model::scale_grads<B>(policy.grads(), coef);
      for (auto* h : heads) model::scale_grads<B>(h->grads(), coef);
      for (const auto& c : critics) {
        model::scale_grads<B>(c.trunk->grads(), coef);
        for (auto* h : c.heads) model::scale_grads<B>(h->grads(), coef);
      }
    }
    const float lr = schedule_.lr_at(step_);
    optimizer_.step(policy.params(), policy.grads(),
                    std::span<const model::param_range>(decay_ranges_), lr);
    for (std::size_t i = 0; i < heads.size(); ++i) {
      head_optimizers_[i].step(heads[i]->params(), heads[i]->grads(),
                               std::span<const model::param_range>(head_ranges_[i]), lr);
    }
    for (std::size_t i = 0; i < critics.size(); ++i) {
      auto& s = critic_states_[i];
      s.optimizer.step(critics[i].trunk->params(), critics[i].trunk->grads(),
                       std::span<const model::param_range>(s.decay_ranges), lr);
      for (std::size_t j = 0; j < critics[i].heads.size(); ++j) {
        s.head_optimizers[j].step(critics[i].heads[j]->params(), critics[i].heads[j]->grads(),
                                  std::span<const model::param_range>(s.head_ranges[j]), lr);
      }
    }
    ++step_;
    for (const auto& m : micro) window_.add(m);
    window_.add("grad_norm", norm);
    window_.add("learning_rate", lr);
  }

  metrics_record log_window() {
    metrics_record rec;
    rec["step"] = step_;
    rec["epoch"] = static_cast<double>(micro_batches_) /
                   static_cast<double>(batcher_.batches_per_epoch());
    auto means = window_.means();
    method_.finish_log(means);
    global_counts(means);
    for (const auto& [name, v] : means) rec[name] = v;
    window_.clear();
    std::vector<std::string> advice;
    if constexpr (requires { method_.review_log(rec); }) advice = method_.review_log(rec);
    if (!leader()) return rec;
    metrics_.append(rec);
    for (const auto& w : advice) warn(w);
    if (cb_.on_step) cb_.on_step(rec);
    return rec;
  }

  [[nodiscard]] nlohmann::json trainer_state() const {
    const auto bs = batcher_.state();
    return {{"global_step", step_},        {"micro_batches", micro_batches_},
            {"batcher_epoch", bs.epoch},   {"batcher_index", bs.index},
            {"window", window_.to_json()}, {"method", method_.state()}};
  }

  void save_head_optimizers(const std::filesystem::path& path,
                            const std::vector<model::scalar_head<B>*>& heads,
                            const std::vector<model::adamw<B>>& optimizers) {
    std::vector<model::named_tensor> ts;
    for (std::size_t i = 0; i < heads.size(); ++i) {
      const auto& opt = optimizers[i];
      const shape s{heads[i]->num_params()};
      for (const auto& [suffix, values] :
           {std::pair{".exp_avg", &opt.exp_avg()}, std::pair{".exp_avg_sq", &opt.exp_avg_sq()}}) {
        model::named_tensor t;
        t.name = heads[i]->prefix() + suffix;
        t.shape = s;
        t.data = ops::to_host<B>(*values);
        ts.push_back(std::move(t));
      }
    }
    model::metadata_map md;
    md["step"] = std::to_string(optimizer_.step_count());
    model::save_safetensors(path, std::span<const model::named_tensor>(ts), md);
  }

  void load(const std::filesystem::path& dir) {
    const std::string where = rlhf::detail::concat("trainer: resume from ", dir.string());
    auto heads = method_.heads();
    const auto md = model::load_checkpoint<B>(dir / "model.safetensors", method_.policy(), heads,
                                              &optimizer_);
    const auto it = md.find("trainer_state");
    if (it == md.end()) throw io_error(where + ": no trainer_state in model.safetensors");
    const auto st = rlhf::detail::parse_json_bounded<nlohmann::json>(it->second, where,
                                                                     "trainer_state");
    auto field = [&](const char* name) -> const nlohmann::json& {
      if (!st.is_object() || !st.contains(name)) {
        throw io_error(rlhf::detail::concat(where, ": trainer_state has no '", name, "'"));
      }
      return st[name];
    };
    auto count = [&](const char* name) {
      const auto& v = field(name);
      if (!v.is_number_unsigned()) {
        throw io_error(rlhf::detail::concat(where, ": trainer_state '", name,
                                            "' must be a non-negative integer, got ",
                                            rlhf::detail::json_excerpt(v)));
      }
      return v.template get<std::uint64_t>();
    };
    step_ = static_cast<index_t>(count("global_step"));
    if (step_ > total_steps_) {
      throw config_error(rlhf::detail::concat(where, ": the checkpoint is at step ", step_,
                                              ", past this run's ", total_steps_, " steps"));
    }
    micro_batches_ = count("micro_batches");
    data::batcher_state position;
    position.epoch = count("batcher_epoch");
    position.index = count("batcher_index");
    batcher_.restore(position);
    window_ = metric_window::from_json(field("window"), where);
    method_.restore(field("method"));
    if (!head_optimizers_.empty()) {
      load_head_optimizers(dir / "heads_optimizer.safetensors", method_.heads(), head_optimizers_,
                           optimizer_.step_count());
    }
    if constexpr (detail::has_critics<M, B>) {
      const auto critics = method_.critics();
      for (std::size_t i = 0; i < critics.size(); ++i) {
        const auto& c = critics[i];
        auto hs = c.heads;
        model::load_checkpoint<B>(dir / (c.name + ".safetensors"), *c.trunk, hs,
                                  &critic_states_[i].optimizer);
        if (!c.heads.empty()) {
          load_head_optimizers(dir / (c.name + "_heads_optimizer.safetensors"), c.heads,
                               critic_states_[i].head_optimizers,
                               critic_states_[i].optimizer.step_count());
        }
      }
    }
    save_due_ = false;
  }

  void load_head_optimizers(const std::filesystem::path& path,
                            const std::vector<model::scalar_head<B>*>& heads,
                            std::vector<model::adamw<B>>& optimizers, std::int64_t step_count) {
    const auto f = model::load_safetensors(path);
    for (std::size_t i = 0; i < heads.size(); ++i) {
      const std::string p = heads[i]->prefix();
      const auto* m = f.find(p + ".exp_avg");
      const auto* v = f.find(p + ".exp_avg_sq");
      if (m == nullptr || v == nullptr) {
        throw io_error(
            rlhf::detail::concat("trainer: ", path.string(), ": no AdamW state for '", p, "'"));
      }
      const shape s{heads[i]->num_params()};
      optimizers[i].load_state(ops::from_host<B>(std::span<const float>(m->data), s),
                               ops::from_host<B>(std::span<const float>(v->data), s), step_count);
    }
  }

  void prune_checkpoints() {
    if (args_.save_total_limit <= 0) return;
    auto all = detail::checkpoints_in(args_.output_dir);
    const auto keep = static_cast<std::size_t>(args_.save_total_limit);
    for (std::size_t i = 0; i + keep < all.size(); ++i) {
      std::error_code ec;
      std::filesystem::remove_all(all[i].second, ec);
    }
  }

  M& method_;
  training_args args_;
  callbacks cb_;
  dist::any_communicator comm_;
  data::batcher batcher_;
  model::adamw<B> optimizer_;
  std::vector<model::param_range> decay_ranges_;
  std::vector<model::adamw<B>> head_optimizers_;
  std::vector<std::vector<model::param_range>> head_ranges_;
  /// One critic's optimizers (see trained_model).
  struct critic_state {
    model::adamw<B> optimizer;
    std::vector<model::param_range> decay_ranges;
    std::vector<model::adamw<B>> head_optimizers;
    std::vector<std::vector<model::param_range>> head_ranges;
  };
  std::vector<critic_state> critic_states_;
  index_t save_steps_ = 0;  ///< save_steps rounded up to whole rollouts
  bool save_due_ = false;   ///< a save_steps multiple passed inside a rollout
  metrics_file metrics_;
  metric_window window_;
  model::lr_schedule schedule_;
  index_t total_steps_ = 0;
  index_t step_ = 0;
  std::uint64_t micro_batches_ = 0;
  std::atomic<bool> stop_{false};
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
