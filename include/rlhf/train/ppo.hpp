// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// PPO for RLHF (Schulman et al. 2017; InstructGPT stage 3, Ouyang et al. 2022; the classic
// PPOTrainer of TRL 0.12-1.12, read in TRL 0.24) as a training method (train/trainer.hpp)
// with four models: the trained policy, a frozen reference, a trained value model and a
// frozen reward (a reward model "score" head on a gpt, or reward functions).
// docs/algorithms/ppo.md.
//
// One rollout (prepare_step), N = per_device_train_batch_size · gradient_accumulation_steps ·
// num_mini_batches prompts, one completion each:
//   sample with the policy (KV cache, temperature, ≤ response_length tokens, EOS stops)
//   old log-probs: a policy forward over prompt + completion, logits / temperature   (N, T)
//   ref log-probs: the reference's forward, logits / temperature, no gradient memory (N, T)
//   values V_t = v_head(h_{t-1}) (the state that chose token t): the separate critic's
//     trunk, or the policy's own forward (shared trunk)                              (N, T)
//   scores: the reward head at the last real token of prompt + completion, or the reward
//     functions' weighted sum; optional running normalisation                        (N,)
//   rewards_t = -β·kl_t, + score (- missing_eos_penalty) at the last real token
//     (rl::ppo_token_rewards), optionally whitened (shift_mean = false)              (N, T)
//   GAE (γ, λ) -> advantages, returns; advantages whitened over the batch            (N, T)
//   β ← adaptive controller (Ziegler et al. 2019) with KL_now = mean_i Σ_t k1, n = N
// Then K = num_ppo_epochs · num_mini_batches optimizer steps (trainer steps): epoch e shuffles
// the N rows (seeded by (seed, first step of the rollout, e)); minibatch j of it is
// gradient_accumulation_steps micro-batches of per_device_train_batch_size rows. Each micro-batch:
//   policy forward (logits / temperature) -> log-probs, entropies; values (critic or shared)
//   losses::ppo_loss (clipped surrogate + vf_coef · clipped value loss, masked means over the
//   micro-batch) -> d loss / d log-probs -> d loss / d logits, d loss / d values -> the value
//   head -> d loss / d h; shared trunk: ONE gpt_backward(policy, dlogits, dhidden);
//   separate critic: gpt_backward(policy, dlogits) and gpt_backward(critic, dhidden).
// target_kl early stop: after the last minibatch of PPO epoch e (e < num_ppo_epochs - 1), if
// the mean of policy/approxkl_avg over that epoch's micro-batches exceeds target_kl, the
// rollout ends there (its remaining epochs are skipped); the next trainer step samples anew.
//
// Metrics (TRL's names). Per micro-batch: loss, policy/approxkl_avg, policy/clipfrac_avg,
// loss/policy_avg, loss/value_avg, val/clipfrac_avg, val/ratio, policy/entropy_avg,
// ppo/policy/policykl (TRL 0.11). Once per rollout (its first step): objective/kl,
// objective/entropy, objective/non_score_reward, objective/rlhf_reward, objective/scores,
// val/num_eos_tokens, episode, completions/*, rewards/<function>/mean (reward functions),
// objective/kl_coef (adaptive controller). On the rollout's last step: val/ratio_var (the
// Bessel variance of val/ratio over the rollout's micro-batches), ppo/epochs (with target_kl).
//
// Loop: one trainer step = one optimizer step; the trainer samples (prepare_step) only when
// rollout_done(), rounds max_steps and save_steps up to multiples of K and checkpoints only at
// rollout boundaries, so a resume starts with a fresh rollout; the separate critic is stepped
// and saved through critics() (value_model.safetensors). Deviations from TRL (step counting,
// minibatch shapes, score position, masked statistics, ...): docs/algorithms/ppo.md.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/core/errors.hpp"
#include "rlhf/core/metrics.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/losses/ppo.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/model/tokenizer.hpp"
#include "rlhf/ops/logprobs.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/rl/gae.hpp"
#include "rlhf/rl/kl.hpp"
#include "rlhf/rl/kl_controller.hpp"
#include "rlhf/rl/rewards.hpp"
#include "rlhf/rl/running_moments.hpp"
#include "rlhf/rl/whiten.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/detail/rollouts.hpp"
#include "rlhf/train/detail/sequences.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/method_base.hpp"
#include "rlhf/train/monitors.hpp"
#include "rlhf/train/reward_functions.hpp"
#include "rlhf/train/trainer.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// The adaptive KL controller of Ziegler et al. 2019 (TRL v0 adap_kl_ctrl): β starts at
/// ppo_config::kl_coef and moves toward KL_now = target (rl::adaptive_kl_controller).
struct ppo_adaptive_kl {
  double target = 6.0;       ///< TRL 0.11 target
  double horizon = 10000.0;  ///< TRL 0.11 horizon
};

/// TRL PPOConfig's fields (TRL 0.12-0.24), plus the classic controller, score scaling and
/// target_kl of TRL 0.11. See the top of this file and docs/algorithms/ppo.md.
struct ppo_config {
  training_args args{};          ///< shared arguments (learning_rate 5e-5, TrainingArguments')
  index_t num_ppo_epochs = 4;    ///< passes over each rollout
  index_t num_mini_batches = 1;  ///< optimizer steps per pass
  float kl_coef = 0.05f;         ///< β (the adaptive controller's initial value when used)
  /// Per-token KL estimator of the penalty: k1 or k3 (TRL kl_estimator).
  rl::kl_estimator kl_estimator = rl::kl_estimator::k1;
  float cliprange = 0.2f;        ///< policy ratio clip
  float vf_coef = 0.1f;          ///< value-loss weight
  float cliprange_value = 0.2f;  ///< value clip around the rollout's values
  float gamma = 1.0f;            ///< GAE discount
  float lam = 0.95f;             ///< GAE λ
  bool whiten_rewards = false;   ///< whiten the per-token rewards (mean kept)
  index_t response_length = 53;  ///< new tokens at most per completion
  float temperature = 0.7f;      ///< sampling and training-forward temperature
  /// Subtracted from the score of completions without EOS (unset = off).
  std::optional<float> missing_eos_penalty;
  /// Ziegler et al.'s adaptive β (unset = fixed kl_coef, TRL's current behaviour).
  std::optional<ppo_adaptive_kl> adaptive_kl;
  /// Running score normalisation (TRL 0.11 use_score_scaling / use_score_norm); none = off.
  rl::score_normalization score_normalization = rl::score_normalization::none;
  std::optional<float> score_clip;  ///< clip scores to ±score_clip after normalising
  /// Early stop of a rollout's remaining epochs when an epoch's mean approx KL exceeds it
  /// (see the top of this file; unset = never).
  std::optional<float> target_kl;
  /// Failure-mode warnings (train/monitors.hpp): they read objective/scores as the reward,
  /// policy/entropy_avg as the entropy and objective/kl as the KL.
  monitor_config monitors{};
};

/// The four models of PPO. Pointers, so that a missing one is named in the error.
template <class B>
struct ppo_models {
  model::gpt<B>* policy = nullptr;              ///< trained
  const model::gpt<B>* reference = nullptr;     ///< frozen (trainable = false)
  model::scalar_head<B>* value_head = nullptr;  ///< trained "v_head"
  /// A separate critic trunk (trained) under value_head; nullptr: the value head sits on the
  /// policy's own trunk (shared trunk).
  model::gpt<B>* value_model = nullptr;
  const model::gpt<B>* reward_model = nullptr;         ///< frozen reward trunk, or nullptr
  const model::scalar_head<B>* reward_head = nullptr;  ///< its frozen "score" head
  /// Instead of the reward model: functions whose weighted sum is the score.
  std::vector<reward_function> reward_functions;
};

namespace detail {

/// One rollout row: prompt + completion and its per-token arrays (length ids.size(),
/// entry t for token t; 0 outside the completion).
struct ppo_row {
  model::encoded_chat seq;
  std::vector<float> old_logps, values, advantages, returns;
};

/// What a rollout computes besides the rows.
struct ppo_rollout {
  std::vector<ppo_row> rows;
  named_metrics metrics;
  double kl_k1 = 0;  ///< mean_i Σ_t (logp - ref_logp): the adaptive controller's KL_now
};

/// The running score normalisation of rl::score_normalizer (same steps and eps), with its
/// moments restorable from a checkpoint.
struct ppo_score_scaler {
  rl::score_normalization mode = rl::score_normalization::none;
  std::optional<float> clip;
  rl::running_moments moments;
  void apply(std::vector<float>& s, bool update) {
    float shift = 0.0f, scale = 1.0f;
    if (mode != rl::score_normalization::none) {
      if (update) moments.update(std::span<const float>(s));
      if (moments.count() >= 2.0) {
        scale = static_cast<float>(1.0 / (moments.std() + 1.1920929e-7));
      }
      if (mode == rl::score_normalization::subtract_mean) {
        shift = static_cast<float>(moments.mean());
      }
    }
    for (float& v : s) {
      v = (v - shift) * scale;
      if (clip) v = std::clamp(v, -*clip, *clip);
    }
  }
};

}  // namespace detail

/// PPO of `models.policy` over the prompts of `source` (see the top of this file).
template <class B, model::tokenizer Tok>
class ppo_method : public method_base<B, Tok> {
  using tensor = typename B::tensor;

 public:
  /// The models are kept by pointer, `source` by reference; `cfg` is validated here.
  ppo_method(ppo_models<B> models, example_source<Tok>& source, const ppo_config& cfg)
      : method_base<B, Tok>("ppo", checked_policy(models), source, cfg.args.seed),
        m_(std::move(models)), cfg_(cfg), beta_(cfg.kl_coef),
        ref_cache_(checked_config(m_.reference, "reference"), cfg.args.seed),
        critic_cache_(m_.value_model ? m_.value_model->config() : m_.policy->config(),
                      derived_seed_of(cfg.args.seed)),
        rm_cache_(m_.reward_model ? m_.reward_model->config() : m_.policy->config(),
                  cfg.args.seed) {
    validate();
    scaler_.mode = cfg_.score_normalization;
    scaler_.clip = cfg_.score_clip;
  }

  // ---- trainer hooks ------------------------------------------------------------------

  /// The shared-trunk value head (none with a separate critic).
  std::vector<model::scalar_head<B>*> heads() {
    if (m_.value_model != nullptr) return {};
    return {m_.value_head};
  }
  /// The separate critic (trunk + value head), saved as value_model.safetensors.
  std::vector<trained_model<B>> critics() {
    if (m_.value_model == nullptr) return {};
    return {trained_model<B>{m_.value_model, {m_.value_head}, "value_model"}};
  }
  /// Prompts per rollout: per_device_train_batch_size · gradient_accumulation_steps ·
  /// num_mini_batches.
  [[nodiscard]] index_t examples_per_step() const {
    return rows_per_minibatch() * cfg_.num_mini_batches;
  }
  /// K = num_ppo_epochs · num_mini_batches optimizer steps per rollout.
  [[nodiscard]] index_t steps_per_rollout() const {
    return cfg_.num_ppo_epochs * cfg_.num_mini_batches;
  }
  /// Whether the current rollout has no step left (true before the first).
  [[nodiscard]] bool rollout_done() const { return done_; }
  /// Prompts per evaluation batch.
  [[nodiscard]] index_t examples_per_eval_batch() const {
    return cfg_.args.per_device_eval_batch_size;
  }

  /// Samples and scores a rollout from the prompts `idx` (seeded by (seed, step)) and
  /// returns its metrics; the next K steps train on it.
  named_metrics prepare_step(std::span<const std::uint64_t> idx, index_t step) {
    if (static_cast<index_t>(idx.size()) != examples_per_step()) {
      throw config_error(rlhf::detail::concat("ppo: a rollout needs ", examples_per_step(),
                                              " prompts, got ", idx.size()));
    }
    const auto s = static_cast<std::uint64_t>(step);
    auto ro = rollout(idx, train::detail::derived_seed(cfg_.args.seed, 0x67656e74u /* "gent" */, s),
                      true);
    if (cfg_.adaptive_kl) {
      rl::adaptive_kl_controller c;
      c.value = beta_;
      c.target = cfg_.adaptive_kl->target;
      c.horizon = cfg_.adaptive_kl->horizon;
      beta_ = c.update(ro.kl_k1, static_cast<double>(ro.rows.size()));
    }
    rows_ = std::move(ro.rows);
    episodes_ += rows_.size();
    rollout_seed_ = train::detail::derived_seed(cfg_.args.seed, 0x70706f65u /* "ppoe" */, s);
    step_in_rollout_ = 0;
    micro_in_step_ = 0;
    ratios_.clear();
    epoch_kl_ = 0;
    epoch_micro_ = 0;
    done_ = false;
    set_epoch_order(0);
    ro.metrics.emplace_back("episode", static_cast<float>(episodes_));
    return ro.metrics;
  }

  /// The loss of the current step's next micro-batch, its gradients added to the policy's and
  /// the value model's.
  named_metrics train_micro_batch(std::span<const std::uint64_t>) {
    if (done_) {
      throw config_error("ppo: train_micro_batch without a prepared rollout");
    }
    auto out = micro_batch_loss(step_in_rollout_, micro_in_step_, true);
    const float ratio = metric_or(out, "val/ratio", 0.0f);
    ratios_.push_back(ratio);
    epoch_kl_ += metric_or(out, "policy/approxkl_avg", 0.0f);
    ++epoch_micro_;
    if (++micro_in_step_ < cfg_.args.gradient_accumulation_steps) return out;
    micro_in_step_ = 0;
    ++step_in_rollout_;
    const index_t epoch_done = step_in_rollout_ % cfg_.num_mini_batches == 0
                                   ? step_in_rollout_ / cfg_.num_mini_batches
                                   : 0;
    bool stop = step_in_rollout_ == steps_per_rollout();
    if (epoch_done > 0 && !stop) {
      const double kl = epoch_kl_ / static_cast<double>(epoch_micro_);
      if (cfg_.target_kl && kl > static_cast<double>(*cfg_.target_kl)) stop = true;
      epoch_kl_ = 0;
      epoch_micro_ = 0;
      if (!stop) set_epoch_order(epoch_done);
    }
    if (stop) {
      done_ = true;
      out.emplace_back("val/ratio_var", losses::ppo_ratio_var(std::span<const float>(ratios_)));
      if (cfg_.target_kl) {
        out.emplace_back("ppo/epochs",
                         static_cast<float>((step_in_rollout_ + cfg_.num_mini_batches - 1) /
                                            cfg_.num_mini_batches));
      }
    }
    return out;
  }

  /// Samples completions of `idx` (seeded by the first prompt) and reports the rollout's
  /// metrics (scores normalised with the current moments; no state changes, no gradients).
  named_metrics eval_batch(std::span<const std::uint64_t> idx) {
    auto ro = rollout(
        idx, train::detail::derived_seed(cfg_.args.seed, 0x6576616cu /* "eval" */, idx.front()),
        false);
    return ro.metrics;
  }

  /// The loss (and, with `backward`, the gradients) of micro-batch `micro` of step
  /// `step_in_rollout` of the current rollout, without advancing it (for tests: a
  /// finite-difference check reads the same micro-batch at perturbed parameters).
  named_metrics micro_batch_loss(index_t step_in_rollout, index_t micro, bool backward) {
    if (rows_.empty()) throw config_error("ppo: micro_batch_loss without a rollout");
    const index_t epoch = step_in_rollout / cfg_.num_mini_batches;
    const index_t j = step_in_rollout % cfg_.num_mini_batches;
    if (epoch != order_epoch_) set_epoch_order(epoch);
    const auto p = static_cast<std::size_t>(cfg_.args.per_device_train_batch_size);
    const std::size_t first =
        (static_cast<std::size_t>(j * cfg_.args.gradient_accumulation_steps + micro)) * p;
    std::vector<const detail::ppo_row*> rows;
    for (std::size_t k = 0; k < p; ++k) rows.push_back(&rows_[order_[first + k]]);
    return loss_of(rows, backward);
  }

  /// β now (the adaptive controller's value, or kl_coef).
  [[nodiscard]] double kl_coef() const { return beta_; }

  /// The failure-mode monitors' fields and warnings for a logged training record.
  std::vector<std::string> review_log(metrics_record& rec) { return monitors_.review(rec); }

  /// Base state plus β, the score moments, the episodes, the critic's dropout position and
  /// the monitors' baseline.
  [[nodiscard]] nlohmann::json state() const {
    auto j = method_base<B, Tok>::state();
    j["monitors"] = monitors_.state();
    j["kl_coef"] = beta_;
    j["score_moments"] = {scaler_.moments.count(), scaler_.moments.mean(), scaler_.moments.m2()};
    j["episode"] = episodes_;
    j["critic_dropout_forwards"] = critic_cache_.forwards();
    return j;
  }
  /// Continues from state() with a fresh rollout.
  void restore(const nlohmann::json& j) {
    method_base<B, Tok>::restore(j);
    const bool ok = j.contains("kl_coef") && j["kl_coef"].is_number() &&
                    j.contains("score_moments") && j["score_moments"].is_array() &&
                    j["score_moments"].size() == 3 && j.contains("episode") &&
                    j["episode"].is_number_unsigned() && j.contains("critic_dropout_forwards") &&
                    j["critic_dropout_forwards"].is_number_unsigned();
    if (!ok) {
      throw io_error(
          "ppo: trainer_state.method must hold kl_coef, score_moments, episode and "
          "critic_dropout_forwards");
    }
    beta_ = j["kl_coef"].template get<double>();
    scaler_.moments = {};
    const auto& sm = j["score_moments"];
    if (sm[0].template get<double>() > 0) {
      scaler_.moments.merge(sm[0].template get<double>(), sm[1].template get<double>(),
                            sm[2].template get<double>());
    }
    episodes_ = j["episode"].template get<std::uint64_t>();
    critic_cache_.set_forwards(j["critic_dropout_forwards"].template get<std::uint64_t>());
    if (!j.contains("monitors")) throw io_error("ppo: trainer_state.method has no monitors");
    monitors_.restore(j["monitors"]);
    rows_.clear();
    done_ = true;
  }
  /// The window's means, with num_tokens and episode as running totals.
  void finish_log(metric_means& means) const {
    method_base<B, Tok>::finish_log(means);
    for (auto& [name, v] : means) {
      if (name == "episode") v = static_cast<double>(episodes_);
    }
  }

 private:
  static model::gpt<B>& checked_policy(const ppo_models<B>& m) {
    check_config(m.policy != nullptr, "ppo", "policy", "a model", "nullptr");
    check_config(m.policy->trainable(), "ppo", "policy", "trainable (it owns gradients)", "frozen");
    return *m.policy;
  }
  static const model::gpt_config& checked_config(const model::gpt<B>* m, const char* name) {
    check_config(m != nullptr, "ppo", name, "a model", "nullptr");
    return m->config();
  }
  static std::uint64_t derived_seed_of(std::uint64_t seed) {
    return train::detail::derived_seed(seed, 0x63726974u /* "crit" */, 0);
  }

  [[nodiscard]] index_t rows_per_minibatch() const {
    return cfg_.args.per_device_train_batch_size * cfg_.args.gradient_accumulation_steps;
  }

  void check_same(const char* name, const model::gpt_config& c) const {
    const auto& p = m_.policy->config();
    check_config(c.vocab_size == p.vocab_size, "ppo", rlhf::detail::concat(name, ".vocab_size"),
                 rlhf::detail::concat("the policy's (", p.vocab_size, ")"), c.vocab_size);
    check_config(c.max_seq_len == p.max_seq_len, "ppo", rlhf::detail::concat(name, ".max_seq_len"),
                 rlhf::detail::concat("the policy's (", p.max_seq_len, ")"), c.max_seq_len);
  }

  void validate() const {
    constexpr const char* fn = "ppo";
    const auto& c = cfg_;
    check_config(c.num_ppo_epochs >= 1, fn, "num_ppo_epochs", ">= 1", c.num_ppo_epochs);
    check_config(c.num_mini_batches >= 1, fn, "num_mini_batches", ">= 1", c.num_mini_batches);
    check_config(c.args.per_device_train_batch_size >= 1, fn, "per_device_train_batch_size", ">= 1",
                 c.args.per_device_train_batch_size);
    check_config(c.args.gradient_accumulation_steps >= 1, fn, "gradient_accumulation_steps", ">= 1",
                 c.args.gradient_accumulation_steps);
    check_config(c.args.per_device_eval_batch_size >= 1, fn, "per_device_eval_batch_size", ">= 1",
                 c.args.per_device_eval_batch_size);
    // The rollout batch is per_device · accumulation · num_mini_batches, so it always cuts
    // into whole minibatches; it must fit the prompts, and whitening needs 2 rows or more.
    const index_t n = examples_per_step();
    const auto prompts = static_cast<index_t>(this->source_.train_indices().size());
    check_config(n <= prompts, fn,
                 "per_device_train_batch_size · gradient_accumulation_steps · num_mini_batches",
                 rlhf::detail::concat("<= the training prompts (", prompts, ")"), n);
    check_config(n >= 2, fn,
                 "per_device_train_batch_size · gradient_accumulation_steps · num_mini_batches",
                 ">= 2 (advantages are whitened over the rollout)", n);
    const index_t ctx = m_.policy->config().max_seq_len;
    check_config(c.response_length >= 1 && c.response_length < ctx, fn, "response_length",
                 rlhf::detail::concat("in [1, max_seq_len = ", ctx, ")"), c.response_length);
    check_config(std::isfinite(c.temperature) && c.temperature > 0.0f, fn, "temperature",
                 "finite and > 0", c.temperature);
    check_config(std::isfinite(c.kl_coef) && c.kl_coef >= 0.0f, fn, "kl_coef", "finite and >= 0",
                 c.kl_coef);
    check_config(c.kl_estimator == rl::kl_estimator::k1 || c.kl_estimator == rl::kl_estimator::k3,
                 fn, "kl_estimator", "k1 or k3", rl::to_string(c.kl_estimator));
    check_config(std::isfinite(c.cliprange) && c.cliprange > 0.0f, fn, "cliprange",
                 "finite and > 0", c.cliprange);
    check_config(std::isfinite(c.cliprange_value) && c.cliprange_value > 0.0f, fn,
                 "cliprange_value", "finite and > 0", c.cliprange_value);
    check_config(std::isfinite(c.vf_coef) && c.vf_coef >= 0.0f, fn, "vf_coef", "finite and >= 0",
                 c.vf_coef);
    check_config(c.gamma >= 0.0f && c.gamma <= 1.0f, fn, "gamma", "in [0, 1]", c.gamma);
    check_config(c.lam >= 0.0f && c.lam <= 1.0f, fn, "lam", "in [0, 1]", c.lam);
    if (c.missing_eos_penalty) {
      check_config(std::isfinite(*c.missing_eos_penalty), fn, "missing_eos_penalty", "finite",
                   *c.missing_eos_penalty);
    }
    if (c.target_kl) {
      check_config(std::isfinite(*c.target_kl) && *c.target_kl > 0.0f, fn, "target_kl",
                   "finite and > 0", *c.target_kl);
    }
    if (c.adaptive_kl) {  // the controller's own checks name target and horizon
      rl::adaptive_kl_controller probe(c.kl_coef, c.adaptive_kl->target, c.adaptive_kl->horizon);
      (void)probe;
    }
    check_enum(fn, "score_normalization", c.score_normalization);
    if (c.score_clip) {
      check_config(std::isfinite(*c.score_clip) && *c.score_clip > 0.0f, fn, "score_clip",
                   "finite and > 0", *c.score_clip);
    }
    // The models.
    check_config(!m_.reference->trainable(), fn, "reference",
                 "frozen (constructed with trainable = false)", "trainable");
    check_same("reference", m_.reference->config());
    check_config(m_.value_head != nullptr, fn, "value_head", "a head", "nullptr");
    check_config(m_.value_head->trainable(), fn, "value_head", "trainable", "frozen");
    const auto& vc = m_.value_model ? m_.value_model->config() : m_.policy->config();
    check_config(m_.value_head->n_embd() == vc.n_embd, fn, "value_head.n_embd",
                 rlhf::detail::concat("its trunk's n_embd (", vc.n_embd, ")"),
                 m_.value_head->n_embd());
    if (m_.value_model != nullptr) {
      check_config(m_.value_model != m_.policy, fn, "value_model",
                   "another gpt than the policy (nullptr shares the policy's trunk)", "the policy");
      check_config(m_.value_model->trainable(), fn, "value_model", "trainable", "frozen");
      check_same("value_model", vc);
    }
    const bool has_rm = m_.reward_model != nullptr || m_.reward_head != nullptr;
    check_config(has_rm != !m_.reward_functions.empty(), fn, "reward",
                 "either reward_model + reward_head or reward_functions",
                 has_rm ? "both" : "neither");
    if (has_rm) {
      check_config(m_.reward_model != nullptr, fn, "reward_model", "a model", "nullptr");
      check_config(m_.reward_head != nullptr, fn, "reward_head", "a head", "nullptr");
      check_config(!m_.reward_model->trainable(), fn, "reward_model",
                   "frozen (constructed with trainable = false)", "trainable");
      check_config(!m_.reward_head->trainable(), fn, "reward_head",
                   "frozen (constructed with trainable = false)", "trainable");
      check_same("reward_model", m_.reward_model->config());
      check_config(m_.reward_head->n_embd() == m_.reward_model->config().n_embd, fn,
                   "reward_head.n_embd",
                   rlhf::detail::concat("the reward model's n_embd (",
                                        m_.reward_model->config().n_embd, ")"),
                   m_.reward_head->n_embd());
    } else {
      validate_reward_functions(fn, m_.reward_functions);
    }
  }

  void set_epoch_order(index_t epoch) {
    order_ = train::detail::seeded_permutation(
        rows_.size(), train::detail::derived_seed(rollout_seed_, 0x65706f63u /* "epoc" */,
                                                  static_cast<std::uint64_t>(epoch)));
    order_epoch_ = epoch;
  }

  /// (R, T) host array of `rows`' per-token field `f`, zero-padded to t columns.
  template <class F>
  static std::vector<float> gather(const std::vector<const detail::ppo_row*>& rows, index_t t,
                                   F f) {
    std::vector<float> out(rows.size() * static_cast<std::size_t>(t), 0.0f);
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const auto& v = f(*rows[r]);
      std::copy(v.begin(), v.end(), out.begin() + static_cast<std::ptrdiff_t>(r * t));
    }
    return out;
  }

  /// Values (R, T) aligned with the log-probs: V[:, t] = head(h[:, t-1]), V[:, 0] = 0.
  tensor shifted_values(const tensor& h) {
    const index_t r = h.shape()[0], t = h.shape()[1];
    tensor raw(shape{r, t});
    model::value_head_forward<B>(raw, h, m_.value_head->weight(), m_.value_head->bias());
    auto host = ops::to_host<B>(raw);
    std::vector<float> out(host.size(), 0.0f);
    for (index_t i = 0; i < r; ++i) {
      for (index_t c = 1; c < t; ++c)
        out[static_cast<std::size_t>(i * t + c)] = host[static_cast<std::size_t>(i * t + c - 1)];
    }
    return ops::from_host<B>(std::span<const float>(out), shape{r, t});
  }

  /// The value model's final hidden states of `s` (separate critic: its forward).
  const tensor& critic_hidden(const train::detail::sequence_batch<B>& s,
                              model::gpt_activations<B>& policy_acts,
                              model::gpt_activations<B>*& acts) {
    if (m_.value_model == nullptr) {
      acts = &policy_acts;
      return policy_acts.lnf;
    }
    acts = &critic_cache_.get(s.rows(), s.cols(), false);
    model::gpt_forward<B>(*m_.value_model, *acts, s.ids);
    critic_cache_.commit();
    return acts->lnf;
  }

  /// Activations for a frozen model's scoring forward (no gradient, no dropout): the
  /// policy's cache when the configs match, so the reference and the reward model hold no
  /// activations of their own (rollout() has read the policy's of the chunk by then); else
  /// `own`.
  model::gpt_activations<B>& scoring_activations(const model::gpt<B>& frozen, forward_cache<B>& own,
                                                 index_t n, index_t t) {
    if (frozen.config() == m_.policy->config()) return this->cache_.get(n, t, false);
    return own.get(n, t, false);
  }

  /// The rollout of `idx` (see the top of this file); `train` updates the score moments.
  detail::ppo_rollout rollout(std::span<const std::uint64_t> idx, std::uint64_t seed, bool train) {
    const auto& tok = this->source_.tokenizer();
    train::detail::sampling_options so;
    so.max_completion_length = cfg_.response_length;
    so.temperature = cfg_.temperature;
    auto ro = train::detail::sample_groups<B>(*m_.policy, this->source_, idx, 1, so, seed);
    const std::size_t n = ro.rows.size();
    detail::ppo_rollout out;
    out.rows.resize(n);
    std::vector<std::vector<float>> ref(n);
    std::vector<float> scores(n, 0.0f);
    ops::logprob_options lopt;
    lopt.temperature = cfg_.temperature;
    const auto chunk = static_cast<std::size_t>(cfg_.args.per_device_train_batch_size);
    for (std::size_t a = 0; a < n; a += chunk) {
      const std::size_t b = std::min(n, a + chunk);
      const std::span<const model::encoded_chat> part(ro.rows.data() + a, b - a);
      const auto s = train::detail::stack_sequences<B>(part, tok.pad_id(), this->cache_);
      const index_t t = s.cols();
      const tensor mask = s.mask();
      auto& acts = this->cache_.get(s.rows(), t, false);
      model::gpt_forward<B>(*m_.policy, acts, s.ids);
      const auto lp = ops::to_host<B>(ops::token_logprobs<B>(acts.logits, s.ids, mask, lopt).logps);
      model::gpt_activations<B>* vacts = nullptr;
      const auto vals = ops::to_host<B>(shifted_values(critic_hidden(s, acts, vacts)));
      auto& racts = scoring_activations(*m_.reference, ref_cache_, s.rows(), t);
      model::gpt_forward<B>(*m_.reference, racts, s.ids);
      const auto rl = ops::to_host<B>(
          ops::token_logprobs<B>(racts.logits, s.ids, mask, lopt).logps);
      std::vector<float> rm_scores;
      if (m_.reward_model != nullptr) {
        auto& macts = scoring_activations(*m_.reward_model, rm_cache_, s.rows(), t);
        model::gpt_forward<B>(*m_.reward_model, macts, s.ids);
        tensor sc(shape{s.rows()});
        typename B::index_tensor last(shape{s.rows()});
        model::reward_head_forward<B>(sc, last, macts.lnf, s.mask(true), m_.reward_head->weight(),
                                      m_.reward_head->bias());
        rm_scores = ops::to_host<B>(sc);
      }
      for (std::size_t i = a; i < b; ++i) {
        const auto r = static_cast<index_t>(i - a);
        const std::size_t len = ro.rows[i].ids.size();
        auto row_of = [&](const std::vector<float>& v) {
          const auto first = v.begin() + static_cast<std::ptrdiff_t>(r * t);
          return std::vector<float>(first, first + static_cast<std::ptrdiff_t>(len));
        };
        auto& row = out.rows[i];
        row.old_logps = row_of(lp);
        row.values = row_of(vals);
        ref[i] = row_of(rl);
        // Values only on completion tokens (TRL zeroes them past the response).
        for (std::size_t c = 0; c < len; ++c) {
          if (ro.rows[i].completion_mask[c] == 0.0f) row.values[c] = 0.0f;
        }
        if (!rm_scores.empty()) scores[i] = rm_scores[static_cast<std::size_t>(r)];
      }
    }
    if (m_.reward_model == nullptr) {
      const auto per = score_completions(m_.reward_functions, ro.batch);
      const std::size_t f = m_.reward_functions.size();
      for (std::size_t j = 0; j < f; ++j) {
        double sum = 0;
        for (std::size_t i = 0; i < n; ++i) {
          const float v = per[i * f + j];
          if (std::isnan(v)) {
            throw data_error(rlhf::detail::concat(
                "ppo: reward function '", m_.reward_functions[j].name,
                "' returned no score (NaN) for completion ", i, "; PPO needs every score"));
          }
          scores[i] += m_.reward_functions[j].weight * v;
          sum += v;
        }
        out.metrics.emplace_back("rewards/" + m_.reward_functions[j].name + "/mean",
                                 static_cast<float>(sum / static_cast<double>(n)));
      }
    }
    scaler_.apply(scores, train);

    // (N, Tn) tensors of the whole rollout.
    std::size_t tn = 0;
    for (const auto& r : ro.rows) tn = std::max(tn, r.ids.size());
    const shape sh{static_cast<index_t>(n), static_cast<index_t>(tn)};
    std::vector<float> lp_h(n * tn, 0.0f), ref_h(n * tn, 0.0f), m_h(n * tn, 0.0f),
        v_h(n * tn, 0.0f), eos_h(n, 0.0f);
    double entropy = 0, kl_k1 = 0, num_eos = 0;
    const auto eos = static_cast<std::int32_t>(tok.eos_id());
    for (std::size_t i = 0; i < n; ++i) {
      const auto& row = ro.rows[i];
      for (std::size_t c = 0; c < row.ids.size(); ++c) {
        const std::size_t q = i * tn + c;
        lp_h[q] = out.rows[i].old_logps[c];
        ref_h[q] = ref[i][c];
        m_h[q] = row.completion_mask[c];
        v_h[q] = out.rows[i].values[c];
        entropy -= m_h[q] * lp_h[q];
        kl_k1 += m_h[q] * (lp_h[q] - ref_h[q]);
      }
      eos_h[i] = ro.batch.truncated[i] ? 0.0f : 1.0f;
      for (const auto id : ro.batch.completion_ids[i]) num_eos += id == eos ? 1 : 0;
    }
    const tensor lp_t = ops::from_host<B>(std::span<const float>(lp_h), sh);
    const tensor ref_t = ops::from_host<B>(std::span<const float>(ref_h), sh);
    const tensor mask_t = ops::from_host<B>(std::span<const float>(m_h), sh);
    const tensor val_t = ops::from_host<B>(std::span<const float>(v_h), sh);
    const tensor sc_t = ops::from_host<B>(std::span<const float>(scores),
                                          shape{static_cast<index_t>(n)});
    const tensor eos_t = ops::from_host<B>(std::span<const float>(eos_h),
                                           shape{static_cast<index_t>(n)});
    rl::ppo_reward_inputs<B> rin{lp_t, ref_t, mask_t, sc_t, &eos_t};
    rl::ppo_reward_config rc;
    rc.kl_coef = static_cast<float>(beta_);
    rc.estimator = cfg_.kl_estimator;
    rc.missing_eos_penalty = cfg_.missing_eos_penalty;
    auto rr = rl::ppo_token_rewards<B>(rin, rc);
    if (cfg_.whiten_rewards) {
      rl::whiten_config wc;
      wc.shift_mean = false;
      rl::masked_whiten<B>(rr.rewards, mask_t, rr.rewards, wc);
    }
    auto g = rl::gae<B>({rr.rewards, val_t, mask_t}, {cfg_.gamma, cfg_.lam});
    rl::masked_whiten<B>(g.advantages, mask_t, g.advantages);
    const auto adv_h = ops::to_host<B>(g.advantages);
    const auto ret_h = ops::to_host<B>(g.returns);
    for (std::size_t i = 0; i < n; ++i) {
      auto& row = out.rows[i];
      const std::size_t len = ro.rows[i].ids.size();
      const auto first = static_cast<std::ptrdiff_t>(i * tn);
      row.advantages.assign(adv_h.begin() + first,
                            adv_h.begin() + first + static_cast<std::ptrdiff_t>(len));
      row.returns.assign(ret_h.begin() + first,
                         ret_h.begin() + first + static_cast<std::ptrdiff_t>(len));
      row.seq = std::move(ro.rows[i]);
    }
    const auto dn = static_cast<double>(n);
    out.kl_k1 = kl_k1 / dn;
    named_metrics head = rr.metrics.named();
    head.emplace_back("objective/entropy", static_cast<float>(entropy / dn));
    head.emplace_back("val/num_eos_tokens", static_cast<float>(num_eos));
    if (cfg_.adaptive_kl) head.emplace_back("objective/kl_coef", static_cast<float>(beta_));
    const auto cm = train::detail::completion_metrics(ro.batch);
    head.insert(head.end(), cm.begin(), cm.end());
    head.insert(head.end(), out.metrics.begin(), out.metrics.end());
    out.metrics = std::move(head);
    return out;
  }

  /// ppo_loss over `rows` (at the current parameters); the backward when asked.
  named_metrics loss_of(const std::vector<const detail::ppo_row*>& rows, bool backward) {
    const auto& tok = this->source_.tokenizer();
    std::vector<model::encoded_chat> seqs;
    seqs.reserve(rows.size());
    for (const auto* r : rows) seqs.push_back(r->seq);
    const auto s = train::detail::stack_sequences<B>(std::span<const model::encoded_chat>(seqs),
                                                     tok.pad_id(), this->cache_);
    const index_t nr = s.rows(), t = s.cols();
    const shape sh{nr, t};
    const tensor mask = s.mask();
    auto& acts = this->cache_.get(nr, t, false);  // TRL trains PPO without dropout
    model::gpt_forward<B>(*m_.policy, acts, s.ids);
    this->cache_.commit();
    ops::logprob_options lopt;
    lopt.temperature = cfg_.temperature;
    lopt.compute_entropy = true;
    const auto tokr = ops::token_logprobs<B>(acts.logits, s.ids, mask, lopt);
    model::gpt_activations<B>* vacts = nullptr;
    const tensor& h = critic_hidden(s, acts, vacts);
    const tensor values = shifted_values(h);
    auto host = [&](auto f) {
      const auto v = gather(rows, t, f);
      return ops::from_host<B>(std::span<const float>(v), sh);
    };
    const tensor old_lp = host(
        [](const detail::ppo_row& r) -> const std::vector<float>& { return r.old_logps; });
    const tensor adv = host(
        [](const detail::ppo_row& r) -> const std::vector<float>& { return r.advantages; });
    const tensor old_v = host(
        [](const detail::ppo_row& r) -> const std::vector<float>& { return r.values; });
    const tensor ret = host(
        [](const detail::ppo_row& r) -> const std::vector<float>& { return r.returns; });
    losses::ppo_inputs<B> in{tokr.logps, old_lp, adv, values, old_v, ret, mask, &tokr.entropy};
    losses::ppo_config lc;
    lc.cliprange = cfg_.cliprange;
    lc.cliprange_value = cfg_.cliprange_value;
    lc.vf_coef = cfg_.vf_coef;
    const auto r = losses::ppo_loss<B>(in, lc);
    if (backward) {
      tensor dlogits(acts.logits.shape());
      ops::token_logprobs_backward<B>(acts.logits, s.ids, mask, tokr, r.grad_logprobs, dlogits,
                                      lopt);
      // d loss / d V[:, t] belongs to position t - 1 of the hidden states.
      const auto gv = ops::to_host<B>(r.grad_values);
      std::vector<float> graw(gv.size(), 0.0f);
      for (index_t i = 0; i < nr; ++i) {
        for (index_t c = 1; c < t; ++c)
          graw[static_cast<std::size_t>(i * t + c - 1)] = gv[static_cast<std::size_t>(i * t + c)];
      }
      const tensor draw = ops::from_host<B>(std::span<const float>(graw), sh);
      tensor dh(h.shape());
      ops::fill<B>(dh, 0.0f);
      model::value_head_backward<B>(&dh, m_.value_head->dweight(), m_.value_head->dbias(), draw, h,
                                    m_.value_head->weight());
      if (m_.value_model == nullptr) {
        // Shared trunk: the policy and value gradients meet in one backward.
        model::gpt_backward<B>(*m_.policy, acts, s.ids, &dlogits, &dh);
      } else {
        model::gpt_backward<B>(*m_.policy, acts, s.ids, &dlogits, nullptr);
        model::gpt_backward<B>(*m_.value_model, *vacts, s.ids, nullptr, &dh);
      }
    }
    named_metrics out{{"loss", r.loss}};
    for (const auto& mt : r.metrics.named()) out.push_back(mt);
    return out;
  }

  ppo_models<B> m_;
  ppo_config cfg_;
  double beta_;
  forward_cache<B> ref_cache_, critic_cache_, rm_cache_;
  detail::ppo_score_scaler scaler_;
  run_monitors monitors_{cfg_.monitors};
  std::vector<detail::ppo_row> rows_;
  std::vector<std::size_t> order_;
  index_t order_epoch_ = -1;
  std::uint64_t rollout_seed_ = 0;
  index_t step_in_rollout_ = 0;
  index_t micro_in_step_ = 0;
  std::vector<float> ratios_;
  double epoch_kl_ = 0;
  index_t epoch_micro_ = 0;
  std::uint64_t episodes_ = 0;
  bool done_ = true;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
