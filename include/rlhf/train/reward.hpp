// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Reward modeling as a training method (train/trainer.hpp): preference data
// ({"prompt", "chosen", "rejected"[, "margin"]}, standard or conversational, or with an
// implicit prompt), a GPT trunk with a scalar reward head ("score"), the Bradley–Terry loss
// of losses/reward.hpp.
//
// One micro-batch of N pairs:
//   chosen and rejected, right-padded to one length T, stacked to (2N, T) ids and attention
//   masks -> one trunk forward -> the reward head on the final hidden state at each row's
//   last real token -> rewards (2N,): chosen (N,) and rejected (N,)
//   reward_loss (margins from the data's "margin" field, centering) -> d loss / d rewards
//   -> reward_head_backward -> d loss / d hidden -> gpt_backward (no logits gradient)
//
// reward_config follows TRL's RewardConfig: max_length 1024, disable_dropout true,
// center_rewards_coefficient None (0 here: off); the learning rate is TrainingArguments'
// 5e-5 (RewardConfig does not override it). Metrics: "loss", then TRL RewardTrainer's
// accuracy, margin, min_reward, mean_reward, max_reward and num_tokens (the cumulative
// non-padding input tokens of training; method_base).
// Deviations: a pair longer than max_length is cut (keep_end: the ends of the responses,
// where the reward is read, stay) where TRL drops it; with gradient accumulation the loss
// is the mean of the micro-batches' means; no padding-free batching.
#pragma once

#include <algorithm>
#include <cstddef>
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
#include "rlhf/data/batcher.hpp"
#include "rlhf/losses/reward.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/ops/tensor.hpp"
#include "rlhf/train/args.hpp"
#include "rlhf/train/example_source.hpp"
#include "rlhf/train/forward_cache.hpp"
#include "rlhf/train/method_base.hpp"
#include "rlhf/train/metrics_log.hpp"

namespace rlhf {
inline namespace v0 {
namespace train {

/// TRL RewardConfig's fields (see the top of this file for the deviations).
struct reward_config {
  training_args args{};           ///< the shared trainer arguments (learning_rate 5e-5)
  losses::reward_config loss{};   ///< center_rewards_coefficient (0: TRL's None)
  std::size_t max_length = 1024;  ///< longest prompt + response, cut at its start
  bool disable_dropout = true;    ///< train without the trunk's dropout (TRL's default)
  /// Train on each pair's "soft_label" p (a data_error where one is missing): the loss is
  /// the cross-entropy -p·logσ(d) - (1-p)·logσ(-d) (losses::reward_inputs::labels). Ours.
  bool use_soft_labels = false;
};

/// The tokenization a reward_config asks for.
[[nodiscard]] inline data::tokenize_options reward_tokenize_options(const reward_config& c) {
  data::tokenize_options o;
  o.max_length = c.max_length;
  o.truncation = data::truncation_mode::keep_end;
  return o;
}

namespace detail {

/// Held-out pairwise accuracy below which warnings() advises.
inline constexpr double reward_min_eval_accuracy = 0.70;
/// Training pairs below which warnings() advises.
inline constexpr std::size_t reward_min_pairs = 10000;

}  // namespace detail

/// Reward modeling: `trunk` with the scalar `head` on its final hidden state, trained over
/// the pairs of `source`.
template <class B, model::tokenizer Tok>
class reward_method : public method_base<B, Tok> {
 public:
  /// Every argument but `cfg` is kept by reference. `head` must have the trunk's width.
  reward_method(model::gpt<B>& trunk, model::scalar_head<B>& head, example_source<Tok>& source,
                const reward_config& cfg)
      : method_base<B, Tok>("reward", trunk, source, cfg.args.seed), head_(head), cfg_(cfg) {
    check_config(head.n_embd() == trunk.config().n_embd, "reward_method", "head.n_embd",
                 rlhf::detail::concat("the trunk's n_embd (", trunk.config().n_embd, ")"),
                 head.n_embd());
  }

  /// The reward head.
  std::vector<model::scalar_head<B>*> heads() { return {&head_}; }
  /// Loss, d loss / dθ added to the trunk's and the head's gradients, and TRL's metrics.
  named_metrics train_micro_batch(std::span<const std::uint64_t> idx) { return run(idx, true); }
  /// The same metrics without gradients or dropout.
  named_metrics eval_batch(std::span<const std::uint64_t> idx) { return run(idx, false); }

  /// Advice on the trained reward model: held-out pairwise accuracy ("eval_accuracy" of
  /// `final_eval`) below 0.70, no held-out set, fewer than 10,000 training pairs.
  [[nodiscard]] std::vector<std::string> warnings(const metrics_record& final_eval) const {
    std::vector<std::string> out;
    const bool has_acc = final_eval.is_object() && final_eval.contains("eval_accuracy") &&
                         final_eval["eval_accuracy"].is_number();
    if (!has_acc) {
      out.emplace_back(
          "reward model: no held-out pairs, so its accuracy is unknown; set eval_fraction or "
          "an evaluation file to measure how often it prefers the chosen response");
    } else {
      const double acc = final_eval["eval_accuracy"].template get<double>();
      if (acc < detail::reward_min_eval_accuracy) {
        out.push_back(rlhf::detail::concat(
            "reward model: held-out pairwise accuracy ", acc,
            " is below 0.70; it ranks the pairs little better than chance, so a policy "
            "trained against it learns its errors (more or cleaner pairs, or a larger trunk)"));
      }
    }
    const std::size_t pairs = source_.train_indices().size();
    if (pairs < detail::reward_min_pairs) {
      out.push_back(rlhf::detail::concat(
          "reward model trained on ", pairs,
          " pairs; fewer than 10,000 preference pairs rarely give a reward model that "
          "generalises"));
    }
    return out;
  }

 private:
  using method_base<B, Tok>::policy_;
  using method_base<B, Tok>::source_;
  using method_base<B, Tok>::cache_;
  using tensor = typename B::tensor;

  static tensor on_backend(std::span<const float> v) {
    return ops::from_host<B>(v, shape{static_cast<index_t>(v.size())});
  }

  named_metrics run(std::span<const std::uint64_t> idx, bool train) {
    const auto examples = source_.get(idx);
    index_t longest = 0;
    bool any_margin = false;
    for (const auto& e : examples) {
      longest = std::max({longest, static_cast<index_t>(e.chosen.ids.size()),
                          static_cast<index_t>(e.rejected.ids.size())});
      any_margin = any_margin || e.margin.has_value();
    }
    const index_t t = cache_.padded_length(longest);
    const auto pb = data::collate_preferences(examples, source_.tokenizer().pad_id(), t);
    const index_t n = pb.chosen.rows;
    const auto un = static_cast<std::size_t>(n);
    // (2N, T): chosen rows first, then rejected.
    std::vector<std::int32_t> ids_host = pb.chosen.ids;
    ids_host.insert(ids_host.end(), pb.rejected.ids.begin(), pb.rejected.ids.end());
    std::vector<float> mask_host = pb.chosen.attention_mask;
    mask_host.insert(mask_host.end(), pb.rejected.attention_mask.begin(),
                     pb.rejected.attention_mask.end());
    const shape sh{2 * n, t};
    const auto ids = ops::index_from_host<B>(std::span<const std::int32_t>(ids_host), sh);
    const auto mask = ops::from_host<B>(std::span<const float>(mask_host), sh);

    auto& acts = cache_.get(2 * n, t, train && !cfg_.disable_dropout);
    model::gpt_forward<B>(policy_, acts, ids);
    cache_.commit();
    tensor rewards(shape{2 * n});
    typename B::index_tensor last(shape{2 * n});
    model::reward_head_forward<B>(rewards, last, acts.lnf, mask, head_.weight(), head_.bias());

    const std::vector<float> r = ops::to_host<B>(rewards);
    const auto mid = r.begin() + static_cast<std::ptrdiff_t>(un);
    const std::vector<float> rc_host(r.begin(), mid), rr_host(mid, r.end());
    const tensor rc = on_backend(rc_host), rr = on_backend(rr_host);
    const tensor margin = on_backend(pb.margins);
    losses::reward_inputs<B> in{rc, rr};
    if (any_margin) in.margin = &margin;
    std::optional<tensor> labels;
    if (cfg_.use_soft_labels) {
      labels = on_backend(data::soft_labels(examples, idx, "reward"));
      in.labels = &*labels;
    }
    const auto res = losses::reward_loss<B>(in, cfg_.loss);

    if (train) {
      std::vector<float> g = ops::to_host<B>(res.grad_rewards_chosen);
      const auto gr = ops::to_host<B>(res.grad_rewards_rejected);
      g.insert(g.end(), gr.begin(), gr.end());
      const tensor drewards = on_backend(g);
      if (!dhidden_ || dhidden_->shape() != acts.lnf.shape()) dhidden_.emplace(acts.lnf.shape());
      ops::fill<B>(*dhidden_, 0.0f);
      model::reward_head_backward<B>(&*dhidden_, head_.dweight(), head_.dbias(), drewards, acts.lnf,
                                     last, head_.weight());
      model::gpt_backward<B>(policy_, acts, ids, nullptr, &*dhidden_);
    }
    named_metrics out{{"loss", res.loss}};
    for (const auto& m : res.metrics.named()) out.push_back(m);
    // TRL's num_tokens: Σ attention mask of the [chosen; rejected] rows.
    this->report_input_tokens(mask_host, train, out);
    return out;
  }

  model::scalar_head<B>& head_;
  reward_config cfg_;
  std::optional<tensor> dhidden_;
};

}  // namespace train
}  // namespace v0
}  // namespace rlhf
