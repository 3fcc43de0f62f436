// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Scalar heads on top of the GPT trunk (docs/model.md, "Value and reward heads"):
//
//   value head  (PPO critic):  values[b, t] = h[b, t, :] · w + bias          h (B, T, C)
//   reward head (reward model): rewards[b] = h[b, last[b], :] · w + bias
//                               last[b] = the last t with attention_mask[b, t] != 0
//
// h is the final hidden state after ln_f (gpt_activations::lnf). A head owns its parameters
// (w (C), bias (1)) in its own small arena (C + 1,) and, unless frozen, a gradient arena of
// the same size, so the trunk's arena is unchanged. The same head works on the policy's own
// trunk (pass the policy's acts.lnf: a shared trunk) or on a second gpt (a separate critic);
// gpt_backward(m, acts, tokens, dlogits*, dhidden*) (model/gpt.hpp) carries the head's d h back
// through either trunk.
//
// Layer conventions as in layers.hpp: outputs first, saved intermediates (the reward head's
// last-token index) next, then inputs, then parameter views; forward overwrites, backward
// accumulates (+=) into dh and the parameter gradients.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlhf/core/philox.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/config.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/layers.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// The parameters of one scalar head: weight (C) at offset 0 and bias (1) at offset C of
/// its own (C + 1,) arena; gradients at the same offsets of a (C + 1,) gradient arena
/// (absent when frozen). `prefix` names them in checkpoints: `<prefix>.weight` (1, C) as
/// nn.Linear(C, 1) stores it, `<prefix>.bias` (1). Defaults: "v_head" (value head, TRL's
/// naming) and "score" (reward head, transformers' GPT2ForSequenceClassification).
template <class B>
class scalar_head {
 public:
  using tensor = typename B::tensor;  ///< The backend's float tensor.

  /// Zero parameters for width C = `n_embd` (config_error unless 1 <= C <= max_n_embd);
  /// call init() or load_checkpoint(). A frozen head allocates no gradient arena.
  explicit scalar_head(index_t n_embd, std::string prefix, bool trainable = true)
      : n_embd_(checked(n_embd)), prefix_(std::move(prefix)), params_(shape{n_embd + 1}),
        grads_(trainable ? shape{n_embd + 1} : shape{0}) {
    ops::fill<B>(params_, 0.0f);
    if (trainable) ops::fill<B>(grads_, 0.0f);
  }

  /// weight ~ N(0, std) (Philox keyed by seed), bias = 0.
  void init(std::uint64_t seed, float std = 0.02f) {
    std::vector<float> host(static_cast<std::size_t>(n_embd_ + 1), 0.0f);
    for (index_t i = 0; i < n_embd_; ++i) {
      host[static_cast<std::size_t>(i)] =
          std * philox_normal(seed, 0x68656164u /* "head" */, 0, static_cast<std::uint64_t>(i));
    }
    ops::copy_from_host<B>(std::span<const float>(host), params_);
  }

  /// The trunk width C the head reads.
  [[nodiscard]] index_t n_embd() const { return n_embd_; }
  /// The checkpoint name prefix ("v_head", "score", ...).
  [[nodiscard]] const std::string& prefix() const { return prefix_; }
  /// True unless frozen (a frozen head has an empty gradient arena).
  [[nodiscard]] bool trainable() const { return grads_.size() != 0; }
  /// Parameters in the arena: C + 1.
  [[nodiscard]] index_t num_params() const { return n_embd_ + 1; }
  ///@{
  /// The (C + 1,) parameter arena: weight, then bias.
  tensor& params() { return params_; }
  [[nodiscard]] const tensor& params() const { return params_; }
  ///@}
  ///@{
  /// The (C + 1,) gradient arena; (0,) when frozen.
  tensor& grads() { return grads_; }
  [[nodiscard]] const tensor& grads() const { return grads_; }
  ///@}
  /// Sets every gradient to zero (nothing when frozen).
  void zero_grads() {
    if (trainable()) ops::fill<B>(grads_, 0.0f);
  }

  /// The weight w (C) at offset 0.
  [[nodiscard]] param_view<B> weight() const { return {&params_, 0}; }
  /// The bias (1) at offset C.
  [[nodiscard]] param_view<B> bias() const { return {&params_, n_embd_}; }
  ///@{
  /// The gradient of the weight / the bias; absent (null) when frozen.
  [[nodiscard]] grad_view<B> dweight() {
    return trainable() ? grad_view<B>{&grads_, 0} : grad_view<B>{};
  }
  [[nodiscard]] grad_view<B> dbias() {
    return trainable() ? grad_view<B>{&grads_, n_embd_} : grad_view<B>{};
  }
  ///@}

  /// The head's arena layout (for checkpoints and the AdamW decay mask: the weight decays,
  /// the bias does not).
  [[nodiscard]] std::vector<param_ref> table() const {
    return {{prefix_ + ".weight", 0, shape{1, n_embd_}, true},
            {prefix_ + ".bias", n_embd_, shape{1}, false}};
  }

 private:
  static index_t checked(index_t c) {
    check_config(c >= 1, "scalar_head", "n_embd", ">= 1", c);
    check_config(c <= gpt_config::max_n_embd, "scalar_head", "n_embd",
                 rlhf::detail::concat("<= gpt_config::max_n_embd = ", gpt_config::max_n_embd),
                 c);  // so n_embd + 1 cannot overflow
    return c;
  }
  index_t n_embd_;
  std::string prefix_;
  tensor params_;
  tensor grads_;
};

/// A value head (PPO's critic output), named "v_head.*".
template <class B>
scalar_head<B> make_value_head(index_t n_embd, bool trainable = true) {
  return scalar_head<B>(n_embd, "v_head", trainable);
}
/// A reward head (reward model's score), named "score.*".
template <class B>
scalar_head<B> make_reward_head(index_t n_embd, bool trainable = true) {
  return scalar_head<B>(n_embd, "score", trainable);
}

namespace detail {

template <class B>
index_t check_head(std::string_view fn, const shape& h, param_view<B> weight,
                   param_view<B> bias) {
  check_rank(fn, "h", h, 3, 3);
  const index_t C = h[2];
  check_view(fn, "weight", weight, C);
  check_view(fn, "bias", bias, 1);
  return C;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// Value head: values (B, T) = h (B, T, C) · w + b

/// values[b, t] = Σ_c h[b, t, c] w[c] + bias. Parallel over the B·T rows.
template <class B>
void value_head_forward(typename B::tensor& values, const typename B::tensor& h,
                        param_view<B> weight, param_view<B> bias) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "value_head_forward";
  const index_t C = detail::check_head<B>(fn, h.shape(), weight, bias);
  const index_t Bn = h.shape()[0], T = h.shape()[1];
  check_shape(fn, "values", values.shape(), shape{Bn, T}, "(B, T) of h");
  float* out = B::data(values);
  const float* x = B::data(h);
  const float* w = B::data(*weight.arena) + weight.offset;
  const float* bp = B::data(*bias.arena) + bias.offset;
  B::parallel_for(Bn * T, RLHF_LAMBDA(index_t r) {
    const float* xr = x + r * C;
    float s = 0.0f;
    for (index_t c = 0; c < C; ++c) s += xr[c] * w[c];
    out[r] = s + bp[0];
  });
}

/// dh[b, t, :] += dvalues[b, t] · w;  dweight += Σ_{b,t} dvalues[b, t] h[b, t, :];
/// dbias += Σ dvalues. dh, dweight, dbias may each be absent (dh: pass nullptr).
template <class B>
void value_head_backward(typename B::tensor* dh, grad_view<B> dweight, grad_view<B> dbias,
                         const typename B::tensor& dvalues, const typename B::tensor& h,
                         param_view<B> weight) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "value_head_backward";
  check_rank(fn, "h", h.shape(), 3, 3);
  const index_t Bn = h.shape()[0], T = h.shape()[1], C = h.shape()[2], N = Bn * T;
  detail::check_view(fn, "weight", weight, C);
  check_shape(fn, "dvalues", dvalues.shape(), shape{Bn, T}, "(B, T) of h");
  if (dh != nullptr) check_same_shape(fn, "dh", dh->shape(), "h", h.shape());
  if (dweight.present()) detail::check_view(fn, "dweight", dweight, C);
  if (dbias.present()) detail::check_view(fn, "dbias", dbias, 1);
  const float* g = B::data(dvalues);
  const float* x = B::data(h);
  const float* w = B::data(*weight.arena) + weight.offset;
  if (dh != nullptr) {
    float* dx = B::data(*dh);
    B::parallel_for(N, RLHF_LAMBDA(index_t r) {
      float* dr = dx + r * C;
      const float gr = g[r];
      for (index_t c = 0; c < C; ++c) dr[c] += gr * w[c];
    });
  }
  if (dweight.present()) {
    float* dw = B::data(*dweight.arena) + dweight.offset;
    B::parallel_for(C, RLHF_LAMBDA(index_t c) {
      float s = 0.0f;
      for (index_t r = 0; r < N; ++r) s += g[r] * x[r * C + c];
      dw[c] += s;
    });
  }
  if (dbias.present()) {
    float* db = B::data(*dbias.arena) + dbias.offset;
    B::parallel_for(1, RLHF_LAMBDA(index_t) {
      float s = 0.0f;
      for (index_t r = 0; r < N; ++r) s += g[r];
      db[0] += s;
    });
  }
}

// ---------------------------------------------------------------------------------------
// Reward head: rewards (B,) = h[b, last[b], :] · w + b

/// rewards[b] = h[b, last[b], :] · w + bias, with last[b] (saved, int32 (B,)) the last
/// position whose attention_mask (B, T) entry is nonzero: the last real token under right
/// padding (lengths[b] - 1) and T - 1 under left padding. A row without any nonzero entry is
/// a data_error naming the row (checked on the host; a device backend copies B ints).
template <class B>
void reward_head_forward(typename B::tensor& rewards, typename B::index_tensor& last,
                         const typename B::tensor& h, const typename B::tensor& attention_mask,
                         param_view<B> weight, param_view<B> bias) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "reward_head_forward";
  const index_t C = detail::check_head<B>(fn, h.shape(), weight, bias);
  const index_t Bn = h.shape()[0], T = h.shape()[1];
  check_shape(fn, "attention_mask", attention_mask.shape(), shape{Bn, T}, "(B, T) of h");
  check_shape(fn, "rewards", rewards.shape(), shape{Bn}, "(B) of h");
  check_shape(fn, "last", last.shape(), shape{Bn}, "(B) of h");
  const float* mask = B::data(attention_mask);
  std::int32_t* idx = B::data(last);
  B::parallel_for(Bn, RLHF_LAMBDA(index_t b) {
    std::int32_t k = -1;
    for (index_t t = T - 1; t >= 0; --t) {
      if (mask[b * T + t] != 0.0f) {
        k = static_cast<std::int32_t>(t);
        break;
      }
    }
    idx[b] = k;
  });
  auto check_rows = [&](std::span<const std::int32_t> ids) {
    for (std::size_t b = 0; b < ids.size(); ++b) {
      if (ids[b] < 0) {
        throw data_error(rlhf::detail::concat(
            fn, ": attention_mask row ", b,
            " has no non-padding token (all zeros): no position to read the reward at"));
      }
    }
  };
  if constexpr (B::host_accessible) {
    check_rows(std::span<const std::int32_t>(B::data(std::as_const(last)),
                                             static_cast<std::size_t>(Bn)));
  } else {
    std::vector<std::int32_t> host(static_cast<std::size_t>(Bn));
    B::copy_to_host(last, std::span<std::int32_t>(host));
    check_rows(host);
  }
  float* out = B::data(rewards);
  const float* x = B::data(h);
  const float* w = B::data(*weight.arena) + weight.offset;
  const float* bp = B::data(*bias.arena) + bias.offset;
  const std::int32_t* ci = B::data(std::as_const(last));
  B::parallel_for(Bn, RLHF_LAMBDA(index_t b) {
    const float* xr = x + (b * T + ci[b]) * C;
    float s = 0.0f;
    for (index_t c = 0; c < C; ++c) s += xr[c] * w[c];
    out[b] = s + bp[0];
  });
}

/// dh[b, last[b], :] += drewards[b] · w (other positions untouched);
/// dweight += Σ_b drewards[b] h[b, last[b], :];  dbias += Σ_b drewards[b].
/// `last` is what reward_head_forward saved. dh (nullptr), dweight, dbias may be absent.
template <class B>
void reward_head_backward(typename B::tensor* dh, grad_view<B> dweight, grad_view<B> dbias,
                          const typename B::tensor& drewards, const typename B::tensor& h,
                          const typename B::index_tensor& last, param_view<B> weight) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "reward_head_backward";
  check_rank(fn, "h", h.shape(), 3, 3);
  const index_t Bn = h.shape()[0], T = h.shape()[1], C = h.shape()[2];
  detail::check_view(fn, "weight", weight, C);
  check_shape(fn, "drewards", drewards.shape(), shape{Bn}, "(B) of h");
  check_shape(fn, "last", last.shape(), shape{Bn}, "(B) of h");
  if (dh != nullptr) check_same_shape(fn, "dh", dh->shape(), "h", h.shape());
  if (dweight.present()) detail::check_view(fn, "dweight", dweight, C);
  if (dbias.present()) detail::check_view(fn, "dbias", dbias, 1);
  const float* g = B::data(drewards);
  const float* x = B::data(h);
  const float* w = B::data(*weight.arena) + weight.offset;
  const std::int32_t* ci = B::data(last);
  if (dh != nullptr) {
    float* dx = B::data(*dh);
    B::parallel_for(Bn, RLHF_LAMBDA(index_t b) {
      float* dr = dx + (b * T + ci[b]) * C;
      const float gb = g[b];
      for (index_t c = 0; c < C; ++c) dr[c] += gb * w[c];
    });
  }
  if (dweight.present()) {
    float* dw = B::data(*dweight.arena) + dweight.offset;
    B::parallel_for(C, RLHF_LAMBDA(index_t c) {
      float s = 0.0f;
      for (index_t b = 0; b < Bn; ++b) s += g[b] * x[(b * T + ci[b]) * C + c];
      dw[c] += s;
    });
  }
  if (dbias.present()) {
    float* db = B::data(*dbias.arena) + dbias.offset;
    B::parallel_for(1, RLHF_LAMBDA(index_t) {
      float s = 0.0f;
      for (index_t b = 0; b < Bn; ++b) s += g[b];
      db[0] += s;
    });
  }
}


}  // namespace model
}  // namespace v0
}  // namespace rlhf
