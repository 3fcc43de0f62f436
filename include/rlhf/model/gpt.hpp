// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The bundled decoder (GPT-2's pre-norm architecture, or the Llama family's blocks as
// config options) assembled from the layers of rlhf/model/layers.hpp, in llm.c's manner: one
// parameter arena, one gradient arena at the same offsets, activations sized once per
// (B, T), a forward that saves what the backward reads, and a backward that accumulates into
// the gradient arena. docs/model.md.
//
//   x0 = wte[tokens] (+ wpe[0..T) with learned positions)                (B, T, C)
//   per layer l:  x = x + c_proj(attn(rope(c_attn(ln_1(x)))));  x = x + mlp(ln_2(x))
//   logits = ln_f(x) · Wᵀ   (W = wte when tied, else lm_head; real vocabulary rows only)
//
// ln is LayerNorm or RMSNorm, rope rotates q and k (rotary positions only), attn is causal
// multi-head or grouped-query attention, mlp is c_proj(gelu(c_fc x)) or SwiGLU's
// c_proj(silu(gate x) ⊙ up x) (model/config.hpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "rlhf/core/functors.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/model/config.hpp"
#include "rlhf/model/layers.hpp"
#include "rlhf/model/optim.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/gemm.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// One parameter's place in the arena: its row of gpt_param_table (an index, not a pointer,
/// so a copied or moved gpt keeps valid slots). The default (index -1) is an absent
/// parameter: a bias the configuration does not use, wpe with rotary positions.
struct param_slot {
  index_t index = -1;  ///< Row of the parameter table; -1 = absent.
  /// True when the parameter exists.
  [[nodiscard]] bool present() const { return index >= 0; }
};

/// A norm's parameters: weight, and bias (LayerNorm only; empty with RMSNorm).
struct gpt_norm_slots {
  param_slot weight;  ///< The (C,) scale.
  param_slot bias;    ///< The (C,) shift; empty with RMSNorm.
};

/// A projection's parameters: weight (out, in), and bias (empty unless the config has one).
struct gpt_linear_slots {
  param_slot weight;  ///< The (out, in) matrix.
  param_slot bias;    ///< The (out,) bias; empty when the config uses none.
};

/// One block's parameters, in arena order.
struct gpt_layer_slots {
  gpt_norm_slots ln_1;         ///< h.l.ln_1, before attention.
  gpt_linear_slots c_attn;     ///< h.l.attn.c_attn: the packed q | k | v projection.
  gpt_linear_slots attn_proj;  ///< h.l.attn.c_proj: attention's output projection.
  gpt_norm_slots ln_2;         ///< h.l.ln_2, before the MLP.
  gpt_linear_slots c_fc;       ///< h.l.mlp.c_fc (SwiGLU: gate then up rows).
  gpt_linear_slots mlp_proj;   ///< h.l.mlp.c_proj: the MLP's output projection.
};

/// The typed view of the arena (llm.c's ParameterTensors): every parameter's slot, resolved
/// by name once when the gpt is built, so the forward and backward passes never look a
/// name up.
struct gpt_slots {
  param_slot wte;                  ///< Token embeddings (V_padded, C).
  param_slot wpe;                  ///< Learned positions (max_seq_len, C); empty with rotary.
  std::vector<gpt_layer_slots> h;  ///< Per block.
  gpt_norm_slots ln_f;             ///< The final norm.
  param_slot lm_head;              ///< The LM head's weight: wte's slot when tied.
};

/// The slots of `table` (gpt_param_table of `cfg`); config_error if a parameter the config
/// requires is missing.
inline gpt_slots gpt_slots_of(const gpt_config& cfg, const std::vector<param_ref>& table) {
  std::unordered_map<std::string, index_t> rows;
  rows.reserve(table.size());
  for (std::size_t k = 0; k < table.size(); ++k) {
    rows.emplace(table[k].name, static_cast<index_t>(k));
  }
  const auto opt = [&](const std::string& name) {
    const auto it = rows.find(name);
    return it == rows.end() ? param_slot{} : param_slot{it->second};
  };
  const auto req = [&](const std::string& name) {
    const param_slot s = opt(name);
    if (!s.present()) {
      throw config_error(rlhf::detail::concat("gpt_slots_of: no parameter named '", name, "'"));
    }
    return s;
  };
  const auto norm = [&](const std::string& n) {
    return gpt_norm_slots{req(n + ".weight"), opt(n + ".bias")};
  };
  const auto linear = [&](const std::string& n) {
    return gpt_linear_slots{req(n + ".weight"), opt(n + ".bias")};
  };
  gpt_slots s;
  s.wte = req("wte.weight");
  s.wpe = opt("wpe.weight");
  for (index_t l = 0; l < cfg.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    s.h.push_back({norm(p + "ln_1"), linear(p + "attn.c_attn"), linear(p + "attn.c_proj"),
                   norm(p + "ln_2"), linear(p + "mlp.c_fc"), linear(p + "mlp.c_proj")});
  }
  s.ln_f = norm("ln_f");
  s.lm_head = cfg.tie_embeddings ? s.wte : req("lm_head.weight");
  return s;
}

namespace detail {
/// Name lookups made through gpt's param(name), grad(name), param_if and grad_if, counted
/// process-wide: the forward, backward and cached forward use slots and make none (a test
/// checks it).
inline std::atomic<std::uint64_t>& gpt_name_lookups() {
  static std::atomic<std::uint64_t> n{0};
  return n;
}
}  // namespace detail

/// Parameters (and, unless frozen, their gradients) of a GPT.
template <class B>
class gpt {
 public:
  using tensor = typename B::tensor;  ///< The backend's float tensor.

  /// Zero parameters; call init() or load_params(). A frozen model (the reference model of
  /// DPO/PPO) allocates no gradient arena.
  explicit gpt(const gpt_config& cfg, bool trainable = true)
      : cfg_(cfg), table_(gpt_param_table(cfg)), slots_(gpt_slots_of(cfg, table_)),
        params_(shape{gpt_num_params(cfg)}),
        grads_(trainable ? shape{gpt_num_params(cfg)} : shape{0}) {
    ops::fill<B>(params_, 0.0f);
    if (trainable) ops::fill<B>(grads_, 0.0f);
    if (!cfg.has_learned_positions()) {
      const std::vector<float> f = rope_inverse_frequencies(cfg);
      rope_inv_freq_ = ops::from_host<B>(std::span<const float>(f), shape{cfg.head_dim() / 2});
    }
  }

  /// The configuration the model was built with.
  [[nodiscard]] const gpt_config& config() const { return cfg_; }
  /// The arena layout (gpt_param_table of the configuration).
  [[nodiscard]] const std::vector<param_ref>& table() const { return table_; }
  /// True unless frozen (a frozen model has an empty gradient arena).
  [[nodiscard]] bool trainable() const { return grads_.size() != 0; }
  /// Total parameters P, padded embedding rows included.
  [[nodiscard]] index_t num_params() const { return params_.size(); }
  ///@{
  /// The (P,) parameter arena.
  tensor& params() { return params_; }
  [[nodiscard]] const tensor& params() const { return params_; }
  ///@}
  ///@{
  /// The (P,) gradient arena, at the parameters' offsets; (0,) when frozen.
  tensor& grads() { return grads_; }
  [[nodiscard]] const tensor& grads() const { return grads_; }
  ///@}

  /// The typed view of the arena: every parameter's slot, built once with the model.
  [[nodiscard]] const gpt_slots& slots() const { return slots_; }
  /// Block `l`'s slots (l in [0, n_layer), unchecked).
  [[nodiscard]] const gpt_layer_slots& layer(index_t l) const {
    return slots_.h[static_cast<std::size_t>(l)];
  }
  /// The read-only view of the parameter in `slot`; absent (null) for an empty slot.
  [[nodiscard]] param_view<B> param(param_slot slot) const {
    return slot.present() ? param_of<B>(params_, table_[static_cast<std::size_t>(slot.index)])
                          : param_view<B>{};
  }
  /// The gradient view of `slot`; absent (null) for an empty slot or a frozen model.
  [[nodiscard]] grad_view<B> grad(param_slot slot) {
    return slot.present() && trainable()
               ? grad_of<B>(grads_, table_[static_cast<std::size_t>(slot.index)])
               : grad_view<B>{};
  }

  // By name (checkpoints, tests): a linear search of the table, counted in
  // detail::gpt_name_lookups(); the per-step passes use the slots above.
  /// The read-only view of parameter `name`; config_error if there is none.
  [[nodiscard]] param_view<B> param(const std::string& name) const {
    ++detail::gpt_name_lookups();
    return param_of<B>(params_, find_param(table_, name));
  }
  /// The gradient view of `name`; absent (null) when the model is frozen.
  [[nodiscard]] grad_view<B> grad(const std::string& name) {
    ++detail::gpt_name_lookups();
    if (!trainable()) return {};
    return grad_of<B>(grads_, find_param(table_, name));
  }
  /// The view of `name`, absent (null) when the configuration has no such parameter (a
  /// bias the blocks do not use).
  [[nodiscard]] param_view<B> param_if(const std::string& name) const {
    ++detail::gpt_name_lookups();
    const param_ref* p = find_param_if(table_, name);
    return p != nullptr ? param_of<B>(params_, *p) : param_view<B>{};
  }
  /// The gradient view of `name`, absent when frozen or when there is no such parameter.
  [[nodiscard]] grad_view<B> grad_if(const std::string& name) {
    ++detail::gpt_name_lookups();
    const param_ref* p = find_param_if(table_, name);
    return p != nullptr && trainable() ? grad_of<B>(grads_, *p) : grad_view<B>{};
  }
  /// The rotary inverse frequencies (head_dim / 2,) on the backend; (0,) with learned
  /// positions.
  [[nodiscard]] const tensor& rope_inv_freq() const { return rope_inv_freq_; }
  /// The LM head's weight: wte when tied.
  [[nodiscard]] std::string lm_head_name() const {
    return cfg_.tie_embeddings ? "wte.weight" : "lm_head.weight";
  }

  /// GPT-2's initialisation (Radford et al. 2019): N(0, 0.02) for matrices and embeddings,
  /// N(0, 0.02/sqrt(2·n_layer)) for the residual projections (attn.c_proj, mlp.c_proj),
  /// zero biases, norm weights 1 and biases 0, zero padded embedding rows. Philox keyed by
  /// (seed, parameter index), so it is the same on every backend.
  void init(std::uint64_t seed) {
    std::vector<float> host(static_cast<std::size_t>(params_.size()), 0.0f);
    const float std_resid = 0.02f / std::sqrt(2.0f * static_cast<float>(cfg_.n_layer));
    for (std::size_t k = 0; k < table_.size(); ++k) {
      const auto& p = table_[k];
      float* dst = host.data() + p.offset;
      const bool is_ln_weight = p.name.find("ln_") != std::string::npos &&
                                p.name.ends_with(".weight");
      if (is_ln_weight) {
        std::fill(dst, dst + p.size(), 1.0f);
        continue;
      }
      if (!p.decays) continue;  // biases: 0
      const bool resid = p.name.ends_with("c_proj.weight");
      const float sd = resid ? std_resid : 0.02f;
      index_t rows_used = p.dims[0];
      if (p.name == "wte.weight" || p.name == "lm_head.weight") rows_used = cfg_.vocab_size;
      const index_t n = rows_used * (p.size() / p.dims[0]);
      for (index_t i = 0; i < n; ++i) {
        dst[i] = sd * philox_normal(seed, k, 0, static_cast<std::uint64_t>(i));
      }
    }
    ops::copy_from_host<B>(std::span<const float>(host), params_);
  }

  /// Sets every gradient to zero (nothing when frozen).
  void zero_grads() {
    if (trainable()) ops::fill<B>(grads_, 0.0f);
  }

 private:
  gpt_config cfg_;
  std::vector<param_ref> table_;
  gpt_slots slots_;
  tensor params_;
  tensor grads_;
  tensor rope_inv_freq_{shape{0}};
};

/// Floats of one block's four linear weights: c_attn (W, C), attn_proj (C, C), c_fc
/// (fc_width, C) and mlp_proj (C, H).
[[nodiscard]] inline index_t layer_linear_floats(const gpt_config& cfg) {
  const index_t C = cfg.n_embd;
  return (cfg.qkv_width() + C + cfg.fc_width()) * C + C * cfg.mlp_width();
}

/// Floats of the largest of a block's linear weights: the scratch gpt_forward transposes
/// each of them into.
[[nodiscard]] inline index_t largest_linear_floats(const gpt_config& cfg) {
  return std::max({cfg.qkv_width(), cfg.fc_width(), cfg.mlp_width(), cfg.n_embd}) * cfg.n_embd;
}

/// How a block multiplies by its linear weights on a backend whose GEMM prefers them
/// transposed to (in, out) (ops::gemm_prefers_kn_weights, matmul_forward_kn): through copies
/// made beforehand (the views: generation's gpt_weights_kn), or each transposed into
/// `scratch` (largest_linear_floats) just before its product (gpt_forward). Neither (the
/// default): the block reads W (out, in) from the arena.
template <class B>
struct layer_weights_kn {
  ///@{
  /// Transposed copies: c_attn (C, W), attn_proj (C, C), c_fc (C, fc_width), mlp_proj (H, C).
  param_view<B> c_attn, attn_proj, c_fc, mlp_proj;
  ///@}
  typename B::tensor* scratch = nullptr;  ///< Or: transpose each weight here.
};

/// Writes the transposed weights of block `s` into dst from element `at`, one after another
/// in the order of layer_linear_floats (layer_linear_floats(cfg) floats); returns their views.
template <class B>
layer_weights_kn<B> transpose_layer_weights(const gpt<B>& m, const gpt_layer_slots& s,
                                            typename B::tensor& dst, index_t at) {
  const auto& cfg = m.config();
  const index_t C = cfg.n_embd;
  layer_weights_kn<B> kn;
  const auto put = [&](param_view<B>& view, param_slot w, index_t out, index_t in) {
    transpose_weight<B>(dst, at, m.param(w), out, in);
    view = {&dst, at};
    at += out * in;
  };
  put(kn.c_attn, s.c_attn.weight, cfg.qkv_width(), C);
  put(kn.attn_proj, s.attn_proj.weight, C, C);
  put(kn.c_fc, s.c_fc.weight, cfg.fc_width(), C);
  put(kn.mlp_proj, s.mlp_proj.weight, C, cfg.mlp_width());
  return kn;
}

/// Every activation of one (B, T) forward, and the gradient buffers of the backward.
/// Sized once per (B, T); forward overwrites, backward zeroes what it accumulates into.
template <class B>
struct gpt_activations {
  using tensor = typename B::tensor;  ///< The backend's float tensor.
  ///@{
  /// batch B and steps T: the (B, T) these buffers are sized for.
  index_t batch = 0, steps = 0;
  ///@}
  /// The configuration the buffers were sized for; gpt_forward and gpt_backward refuse a
  /// model whose layers, widths, vocabulary or blocks differ (sized_for).
  gpt_config config;
  tensor encoded;  ///< (B, T, C) token plus position embeddings.
  ///@{
  /// Per layer, one tensor each: ln1, atty, residual2, ln2, residual3 (B, T, C); ln1_mean,
  /// ln1_rstd, ln2_mean, ln2_rstd (B·T; the means (0,) with RMSNorm); qkv (B, T, W),
  /// W = qkv_width() (q and k rotated in place with rotary positions); att the softmax
  /// (B, NH, T, T); fch (B, T, fc_width()) and fch_gelu, the activation's output, (B, T, H),
  /// H the MLP width.
  std::vector<tensor> ln1, ln1_mean, ln1_rstd, qkv, att, atty, residual2, ln2, ln2_mean, ln2_rstd,
      fch, fch_gelu, residual3;  // per layer
  ///@}
  /// (B, T, C) forward scratch shared by the layers: an output projection's result, which
  /// the block's junction adds to the residual stream (only the forward reads it).
  tensor proj;
  ///@{
  /// The final norm: lnf (B, T, C), lnf_mean and lnf_rstd (B·T; the mean (0,) with RMSNorm).
  tensor lnf, lnf_mean, lnf_rstd;        // (B, T, C), (B·T), (B·T)
  ///@}
  tensor logits;  ///< (B, T, V) over the real vocabulary.
  // Backward scratch, reused by every layer.
  /// preatt: the attention scores before the softmax; only the forward reads them (the
  /// backward works from att), so every layer shares one scratch tensor.
  tensor preatt;                         // (B, NH, T, T)
  ///@{
  /// Backward scratch shared by the layers: g_res, g_ln, g_atty (B, T, C); g_qkv (B, T, W);
  /// g_preatt, g_att (B, NH, T, T); g_fch (B, T, fc_width()), g_fch_gelu (B, T, H).
  tensor g_res, g_ln, g_atty, g_qkv, g_preatt, g_att, g_fch, g_fch_gelu;
  ///@}

  // Dropout (only when the config's dropout > 0): it applies in a forward when `train` is
  // true and the model is trainable (a frozen reference model never drops), as
  // torch's module.train()/eval(). Each such forward takes the next Philox stream of
  // `dropout_seed` (counted in dropout_forwards) and its backward regenerates the masks.
  bool train = true;                   ///< Training mode (dropout on); false = eval.
  std::uint64_t dropout_seed = 0;      ///< The Philox key of the dropout masks.
  std::uint64_t dropout_forwards = 0;  ///< Training forwards so far (the next one's index).
  bool dropout_applied = false;        ///< Set by gpt_forward for gpt_backward.
  std::uint64_t dropout_index = 0;     ///< The index of the forward that applied it.
  std::vector<tensor> att_dropped;     ///< (B, NH, T, T) per layer, dropped probabilities.
  tensor g_drop;                       ///< (B, T, C) backward scratch.

  /// The tokens of the last gpt_forward, on the host (B·T int32): gpt_backward checks that
  /// it is given the same ones, since its embedding gradient is scattered by token id and
  /// every other gradient is taken at the forward's saved activations.
  std::vector<std::int32_t> forward_tokens;
  bool forward_done = false;  ///< A gpt_forward has filled these activations.

  /// Allocates every buffer for `b` rows of `t` steps; config_error unless b >= 1 and
  /// 1 <= t <= cfg.max_seq_len.
  gpt_activations(const gpt_config& cfg, index_t b, index_t t) : batch(b), steps(t), config(cfg) {
    cfg.validate();
    check_config(b >= 1, "gpt_activations", "batch", ">= 1", b);
    check_config(t >= 1 && t <= cfg.max_seq_len, "gpt_activations", "steps",
                 detail_range(cfg.max_seq_len), t);
    const index_t C = cfg.n_embd, NH = cfg.n_head, H = cfg.mlp_width();
    const index_t QKV = cfg.qkv_width(), FC = cfg.fc_width();
    // Every shape below checks its own element count (shape::max_numel); B·T is the only
    // product formed here.
    const shape btc{b, t, C}, scores{b, NH, t, t},
        bt{rlhf::detail::size_mul(b, t, "gpt_activations", "batch * steps")};
    const shape means = cfg.norm == norm_type::layernorm ? bt : shape{0};
    encoded = tensor(btc);
    for (index_t l = 0; l < cfg.n_layer; ++l) {
      ln1.emplace_back(btc), ln1_mean.emplace_back(means), ln1_rstd.emplace_back(bt);
      qkv.emplace_back(shape{b, t, QKV});
      att.emplace_back(scores);
      atty.emplace_back(btc), residual2.emplace_back(btc);
      ln2.emplace_back(btc), ln2_mean.emplace_back(means), ln2_rstd.emplace_back(bt);
      fch.emplace_back(shape{b, t, FC}), fch_gelu.emplace_back(shape{b, t, H});
      residual3.emplace_back(btc);
    }
    proj = tensor(btc);
    lnf = tensor(btc), lnf_mean = tensor(means), lnf_rstd = tensor(bt);
    logits = tensor(shape{b, t, cfg.vocab_size});
    g_res = tensor(btc), g_ln = tensor(btc), g_atty = tensor(btc);
    g_qkv = tensor(shape{b, t, QKV});
    preatt = tensor(scores), g_preatt = tensor(scores), g_att = tensor(scores);
    g_fch = tensor(shape{b, t, FC}), g_fch_gelu = tensor(shape{b, t, H});
    if (cfg.dropout > 0.0f) {
      for (index_t l = 0; l < cfg.n_layer; ++l) att_dropped.emplace_back(scores);
      g_drop = tensor(btc);
    }
  }

  /// True when these buffers fit a model of `cfg`: the same layers, heads, widths,
  /// vocabulary and blocks (dropout, the positions' table length and vocab_multiple may
  /// differ: they size nothing here beyond what the other fields fix, or are checked
  /// where used).
  [[nodiscard]] bool sized_for(const gpt_config& cfg) const {
    return cfg.n_layer == config.n_layer && cfg.n_head == config.n_head &&
           cfg.n_embd == config.n_embd && cfg.vocab_size == config.vocab_size &&
           cfg.qkv_width() == config.qkv_width() && cfg.fc_width() == config.fc_width() &&
           cfg.mlp_width() == config.mlp_width() && cfg.norm == config.norm &&
           cfg.max_seq_len >= steps;
  }

  /// Floats held (for the memory report of the benchmarks).
  [[nodiscard]] index_t floats() const {
    index_t n = encoded.size() + proj.size() + lnf.size() + lnf_mean.size() + lnf_rstd.size() +
                logits.size() + g_res.size() + g_ln.size() + g_atty.size() + g_qkv.size() +
                preatt.size() + g_preatt.size() + g_att.size() + g_fch.size() + g_fch_gelu.size() +
                g_drop.size();
    for (const auto* v : {&ln1, &ln1_mean, &ln1_rstd, &qkv, &att, &atty, &residual2, &ln2,
                          &ln2_mean, &ln2_rstd, &fch, &fch_gelu, &residual3, &att_dropped}) {
      for (const auto& x : *v) n += x.size();
    }
    return n;
  }

 private:
  static std::string detail_range(index_t max_t) {
    return rlhf::detail::concat("in [1, max_seq_len = ", max_t, "]");
  }
};

namespace detail {
/// The dropout sites of one forward: the embedding, then per layer the attention
/// probabilities, the attention output and the MLP output (GPT-2's embd/attn/resid drops).
enum class dropout_site : std::uint64_t { embedding = 0, attn_probs = 1, attn_out = 2, mlp_out = 3 };
template <class B>
dropout_key dropout_key_of(const gpt_activations<B>& a, index_t layer, dropout_site site) {
  const std::uint64_t s = site == dropout_site::embedding
                              ? 0
                              : 3 * static_cast<std::uint64_t>(layer) +
                                    static_cast<std::uint64_t>(site);
  // s <= 3·n_layer < 2^20, which gpt_config::validate() guarantees (max_n_layer = 349525).
  return {a.dropout_seed, (a.dropout_index << 20) | s};
}

/// config_error naming `acts` unless its buffers were sized for a model of `cfg`.
template <class B>
void check_sized_for(const gpt_activations<B>& a, const gpt_config& cfg, const char* fn) {
  if (!a.sized_for(cfg)) {
    throw config_error(rlhf::detail::concat(
        fn, ": acts was sized for another model (", a.config.n_layer, " layers, width ",
        a.config.n_embd, ", ", a.config.n_head, " heads, vocabulary ", a.config.vocab_size,
        "); this model has ", cfg.n_layer, " layers, width ", cfg.n_embd, ", ", cfg.n_head,
        " heads, vocabulary ", cfg.vocab_size, " (or other blocks): make its own gpt_activations"));
  }
}

/// Copies `tokens` to the host vector `out` (B·T ids, reusing its storage).
template <class B>
void save_tokens(std::vector<std::int32_t>& out, const typename B::index_tensor& tokens) {
  out.resize(static_cast<std::size_t>(tokens.size()));
  if constexpr (B::host_accessible) {
    if (!out.empty()) std::memcpy(out.data(), B::data(tokens), out.size() * sizeof(std::int32_t));
  } else {
    B::copy_to_host(tokens, std::span<std::int32_t>(out));
  }
}

/// gpt_backward's token check: ids in [0, vocab_size) (data_error, as the forward's), and
/// equal to the tokens of the forward that filled `a` (config_error naming `tokens`).
template <class B>
void check_backward_tokens(const gpt_activations<B>& a, const typename B::index_tensor& tokens,
                           index_t vocab_size) {
  constexpr const char* fn = "gpt_backward";
  if (!a.forward_done) {
    throw config_error(
        "gpt_backward: acts holds no forward (call gpt_forward with these "
        "tokens first, or the last gpt_forward on acts failed)");
  }
  std::vector<std::int32_t> host;
  std::span<const std::int32_t> ids;
  if constexpr (B::host_accessible) {
    ids = std::span<const std::int32_t>(B::data(tokens), static_cast<std::size_t>(tokens.size()));
  } else {
    save_tokens<B>(host, tokens);
    ids = host;
  }
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      throw data_error(rlhf::detail::concat(fn, ": tokens must be in [0, ", vocab_size, "), got ",
                                            ids[i], " at flat index ", i));
    }
  }
  if (ids.size() != a.forward_tokens.size() ||
      (!ids.empty() &&
       std::memcmp(ids.data(), a.forward_tokens.data(), ids.size() * sizeof(std::int32_t)) != 0)) {
    std::size_t i = 0;
    while (i < ids.size() && i < a.forward_tokens.size() && ids[i] == a.forward_tokens[i]) ++i;
    throw config_error(rlhf::detail::concat(
        fn,
        ": tokens must be the tokens of the forward that filled acts; they differ at flat "
        "index ",
        i, " (got ", i < ids.size() ? std::to_string(ids[i]) : std::string("none"),
        ", the forward had ",
        i < a.forward_tokens.size() ? std::to_string(a.forward_tokens[i]) : std::string("none"),
        ")"));
  }
}
}  // namespace detail

namespace detail {
/// A block norm (h.l.ln_1, h.l.ln_2 or ln_f): LayerNorm (weight, bias; saves mean and rstd)
/// or RMSNorm (weight; saves rstd), as the config says.
template <class B>
void norm_forward(const gpt<B>& m, const gpt_norm_slots& s, typename B::tensor& out,
                  typename B::tensor& mean, typename B::tensor& rstd,
                  const typename B::tensor& inp) {
  const auto& cfg = m.config();
  if (cfg.norm == norm_type::rmsnorm) {
    rmsnorm_forward<B>(out, rstd, inp, m.param(s.weight), cfg.layernorm_eps);
  } else {
    layernorm_forward<B>(out, mean, rstd, inp, m.param(s.weight), m.param(s.bias),
                         cfg.layernorm_eps);
  }
}
/// Its backward: dinp += d norm(inp) / d inp · dout; the weight (and bias) gradients add up.
template <class B>
void norm_backward(gpt<B>& m, const gpt_norm_slots& s, typename B::tensor& dinp,
                   const typename B::tensor& dout, const typename B::tensor& inp,
                   const typename B::tensor& mean, const typename B::tensor& rstd) {
  if (m.config().norm == norm_type::rmsnorm) {
    rmsnorm_backward<B>(dinp, m.grad(s.weight), dout, inp, m.param(s.weight), rstd);
  } else {
    layernorm_backward<B>(dinp, m.grad(s.weight), m.grad(s.bias), dout, inp, m.param(s.weight),
                          mean, rstd);
  }
}
/// Rotary positions: q and k of the packed qkv (B, T, W) turned in place (inverse: the
/// backward's opposite turn); rows start at `start` (null: position 0). No-op with learned
/// positions.
template <class B>
void rope_if_rotary(const gpt<B>& m, typename B::tensor& qkv, const typename B::index_tensor* start,
                    bool inverse) {
  const auto& cfg = m.config();
  if (cfg.has_learned_positions()) return;
  rope_rotate<B>(qkv, cfg.head_dim(), cfg.n_head + cfg.kv_heads(), m.rope_inv_freq(), start,
                 inverse);
}

/// out = inp W^T + bias for linear `s`: through its transposed copy `kn` when present, or
/// W transposed into `scratch` now (matmul_forward_kn), else from the arena (matmul_forward).
template <class B>
void linear_forward(const gpt<B>& m, const gpt_linear_slots& s, param_view<B> kn,
                    typename B::tensor* scratch, typename B::tensor& out,
                    const typename B::tensor& inp) {
  if (kn.present()) {
    matmul_forward_kn<B>(out, inp, kn, m.param(s.bias));
  } else if (scratch != nullptr) {
    transpose_weight<B>(*scratch, 0, m.param(s.weight), out.shape().cols(), inp.shape().cols());
    matmul_forward_kn<B>(out, inp, {scratch, 0}, m.param(s.bias));
  } else {
    matmul_forward<B>(out, inp, m.param(s.weight), m.param(s.bias));
  }
}

/// Where a block's junction (residual_norm_forward) writes the norm of the block's output:
/// the slots of the norm that reads the output next (the block's ln_2, the next block's
/// ln_1, or ln_f) and that norm's outputs. slots null: the output is not normed here (the
/// cached forward's last layer, which norms only the rows it keeps).
template <class B>
struct next_norm {
  const gpt_norm_slots* slots = nullptr;  ///< The norm's parameters; null = none.
  typename B::tensor* ln = nullptr;       ///< Its output (B, T, C).
  typename B::tensor* mean = nullptr;     ///< Its saved means (B·T); unused with RMSNorm.
  typename B::tensor* rstd = nullptr;     ///< Its saved 1 / std (B·T).
};

/// The end of a block: out = x + drop(branch), then `next`'s norm of out, in one pass
/// (residual_norm_forward); branch is the output projection's result.
template <class B>
void block_junction(const gpt<B>& m, typename B::tensor& out, const next_norm<B>& next,
                    const typename B::tensor& x, const typename B::tensor& branch,
                    const branch_dropout* drop) {
  const auto& cfg = m.config();
  norm_params<B> norm;
  if (next.slots != nullptr) {
    norm = {cfg.norm, m.param(next.slots->weight), m.param(next.slots->bias), cfg.layernorm_eps};
  }
  residual_norm_forward<B>(out, next.ln, next.mean, next.rstd, x, branch, drop,
                           next.slots != nullptr ? &norm : nullptr);
}

// The decoder block, described once: gpt_forward, gpt_backward and gpt_forward_cached walk
// these two forward/backward pairs (llm.c's manner) with their own buffers. A block reads its
// input's norm (written by the junction before it; the first block's by norm_forward) and ends in a
// junction that writes its output and the norm of that output for whatever reads it next.

/// The attention half of block `s`: out = x + drop(c_proj(attend(rope(c_attn(ln))))), ln =
/// ln_1(x) given. `attend(atty, qkv)` is the attention itself: attention_forward over the
/// (T, T) scores in training, cached_attention_forward against the KV cache in generation.
/// Rows start at position *start for the rotary turn (null: 0). Writes qkv, atty (what the
/// backward reads), proj (scratch: c_proj's output), out and `next` (normally ln_2 of out);
/// `drop` null: no dropout. ln may be next.ln (it is read first).
template <class B, class Attend>
void attention_block_forward(const gpt<B>& m, const gpt_layer_slots& s, typename B::tensor& out,
                             const next_norm<B>& next, typename B::tensor& qkv,
                             typename B::tensor& atty, typename B::tensor& proj,
                             const typename B::tensor& x, const typename B::tensor& ln,
                             const typename B::index_tensor* start, Attend&& attend,
                             const branch_dropout* drop, const layer_weights_kn<B>& kn = {}) {
  linear_forward<B>(m, s.c_attn, kn.c_attn, kn.scratch, qkv, ln);
  rope_if_rotary<B>(m, qkv, start, false);
  attend(atty, static_cast<const typename B::tensor&>(qkv));
  linear_forward<B>(m, s.attn_proj, kn.attn_proj, kn.scratch, proj, atty);
  block_junction<B>(m, out, next, x, proj, drop);
}
/// Its backward. dx holds d out on entry and gains the gradient through ln_1 (the residual
/// passes d out through unchanged); `dbranch` is d out through the branch's dropout (dx
/// itself without one). `attend_backward(dqkv, datty)` OVERWRITES dqkv with the attention's
/// input gradient. dln, datty, dqkv are scratch (overwritten); parameter gradients add up.
template <class B, class AttendBackward>
void attention_block_backward(gpt<B>& m, const gpt_layer_slots& s, typename B::tensor& dx,
                              typename B::tensor& dln, typename B::tensor& datty,
                              typename B::tensor& dqkv, const typename B::tensor& dbranch,
                              const typename B::tensor& x, const typename B::tensor& ln,
                              const typename B::tensor& mean, const typename B::tensor& rstd,
                              const typename B::tensor& atty, AttendBackward&& attend_backward) {
  constexpr auto overwrite = grad_write::overwrite;
  matmul_backward<B>(datty, m.grad(s.attn_proj.weight), m.grad(s.attn_proj.bias), dbranch, atty,
                     m.param(s.attn_proj.weight), overwrite);
  attend_backward(dqkv, static_cast<const typename B::tensor&>(datty));
  rope_if_rotary<B>(m, dqkv, nullptr, true);  // to the unrotated q, k
  matmul_backward<B>(dln, m.grad(s.c_attn.weight), m.grad(s.c_attn.bias), dqkv, ln,
                     m.param(s.c_attn.weight), overwrite);
  norm_backward<B>(m, s.ln_1, dx, dln, x, mean, rstd);
}

/// The MLP half of block `s`: out = x + drop(c_proj(act(c_fc(ln)))), ln = ln_2(x) given,
/// act GELU or SwiGLU. Writes fch, fch_act (what the backward reads), proj (scratch), out
/// and `next` (the next block's ln_1 of out, or ln_f); `drop` null: no dropout. ln may be
/// next.ln (it is read first).
template <class B>
void mlp_block_forward(const gpt<B>& m, const gpt_layer_slots& s, typename B::tensor& out,
                       const next_norm<B>& next, typename B::tensor& fch,
                       typename B::tensor& fch_act, typename B::tensor& proj,
                       const typename B::tensor& x, const typename B::tensor& ln,
                       const branch_dropout* drop, const layer_weights_kn<B>& kn = {}) {
  linear_forward<B>(m, s.c_fc, kn.c_fc, kn.scratch, fch, ln);
  if (m.config().mlp == mlp_type::swiglu) {
    swiglu_forward<B>(fch_act, fch);
  } else {
    gelu_forward<B>(fch_act, fch);
  }
  linear_forward<B>(m, s.mlp_proj, kn.mlp_proj, kn.scratch, proj, fch_act);
  block_junction<B>(m, out, next, x, proj, drop);
}
/// Its backward, as attention_block_backward's: dx (d out on entry) gains the gradient
/// through ln_2; dbranch is d out through the dropout (or dx); dln, dfch, dfch_act scratch.
template <class B>
void mlp_block_backward(gpt<B>& m, const gpt_layer_slots& s, typename B::tensor& dx,
                        typename B::tensor& dln, typename B::tensor& dfch,
                        typename B::tensor& dfch_act, const typename B::tensor& dbranch,
                        const typename B::tensor& x, const typename B::tensor& ln,
                        const typename B::tensor& mean, const typename B::tensor& rstd,
                        const typename B::tensor& fch, const typename B::tensor& fch_act) {
  constexpr auto overwrite = grad_write::overwrite;
  matmul_backward<B>(dfch_act, m.grad(s.mlp_proj.weight), m.grad(s.mlp_proj.bias), dbranch, fch_act,
                     m.param(s.mlp_proj.weight), overwrite);
  grad_view<B> dbias_fc = m.grad(s.c_fc.bias);
  if (m.config().mlp == mlp_type::swiglu) {
    swiglu_backward<B>(dfch, fch, dfch_act, overwrite);
  } else {  // c_fc's bias gradient joins the GELU's backward pass
    gelu_backward_bias<B>(dfch, dbias_fc, fch, dfch_act);
    dbias_fc = {};
  }
  matmul_backward<B>(dln, m.grad(s.c_fc.weight), dbias_fc, dfch, ln, m.param(s.c_fc.weight),
                     overwrite);
  norm_backward<B>(m, s.ln_2, dx, dln, x, mean, rstd);
}
}  // namespace detail

/// Forward pass: acts.logits (B, T, V) from tokens (B, T). Saves every intermediate. With
/// the config's dropout > 0, acts.train and a trainable model, applies dropout (see
/// gpt_activations) and records it for gpt_backward.
template <class B>
void gpt_forward(const gpt<B>& m, gpt_activations<B>& a, const typename B::index_tensor& tokens) {
  const auto& cfg = m.config();
  detail::check_sized_for(a, cfg, "gpt_forward");
  check_shape("gpt_forward", "tokens", tokens.shape(), shape{a.batch, a.steps},
              "(B, T) the activations were sized for");
  const gpt_slots& w = m.slots();
  const float pdrop = cfg.dropout;
  a.dropout_applied = pdrop > 0.0f && a.train && m.trainable();
  if (a.dropout_applied) {
    check_config(static_cast<index_t>(a.att_dropped.size()) == cfg.n_layer, "gpt_forward",
                 "acts", "sized for this config's dropout", "activations without dropout buffers");
    a.dropout_index = a.dropout_forwards++;
  }
  using site = detail::dropout_site;
  const auto key = [&](index_t l, site s) { return detail::dropout_key_of(a, l, s); };
  a.forward_done = false;  // until this forward has completed
  encoder_forward<B>(a.encoded, tokens, m.param(w.wte), m.param(w.wpe), cfg.vocab_size);
  detail::save_tokens<B>(a.forward_tokens, tokens);
  if (a.dropout_applied) dropout_forward<B>(a.encoded, a.encoded, pdrop, key(0, site::embedding));
  // Each block's junction writes its output's norm for what reads it next: ln_2 of the
  // same layer, ln_1 of the next, ln_f after the last.
  const auto ln1_of = [&](index_t l) -> detail::next_norm<B> {
    const auto L = static_cast<std::size_t>(l);
    return {&m.layer(l).ln_1, &a.ln1[L], &a.ln1_mean[L], &a.ln1_rstd[L]};
  };
  detail::norm_forward<B>(m, m.layer(0).ln_1, a.ln1[0], a.ln1_mean[0], a.ln1_rstd[0], a.encoded);
  // Backends whose GEMM prefers (in, out) weights get each weight transposed into one
  // scratch of this call just before its product (a pass over the weight, small beside the
  // product; the scratch, the largest weight of a block, lives only as long as the call).
  typename B::tensor weights_kn(
      shape{ops::gemm_prefers_kn_weights<B>() ? largest_linear_floats(cfg) : 0});
  layer_weights_kn<B> kn;
  if (weights_kn.size() > 0) kn.scratch = &weights_kn;
  for (index_t l = 0; l < cfg.n_layer; ++l) {
    const auto L = static_cast<std::size_t>(l);
    const auto& x = l == 0 ? a.encoded : a.residual3[L - 1];
    const attention_dropout<B> probs_drop{a.att_dropped.empty() ? nullptr : &a.att_dropped[L],
                                          pdrop, key(l, site::attn_probs)};
    const branch_dropout attn_drop{pdrop, key(l, site::attn_out)};
    const branch_dropout mlp_drop{pdrop, key(l, site::mlp_out)};
    const bool drop = a.dropout_applied;
    const auto attend = [&](typename B::tensor& y, const typename B::tensor& qkv) {
      attention_forward<B>(y, a.preatt, a.att[L], qkv, drop ? &probs_drop : nullptr);
    };
    const detail::next_norm<B> ln2{&m.layer(l).ln_2, &a.ln2[L], &a.ln2_mean[L], &a.ln2_rstd[L]};
    const detail::next_norm<B> after = l + 1 < cfg.n_layer
                                           ? ln1_of(l + 1)
                                           : detail::next_norm<B>{&w.ln_f, &a.lnf, &a.lnf_mean,
                                                                  &a.lnf_rstd};
    detail::attention_block_forward<B>(m, m.layer(l), a.residual2[L], ln2, a.qkv[L], a.atty[L],
                                       a.proj, x, a.ln1[L], nullptr, attend,
                                       drop ? &attn_drop : nullptr, kn);
    detail::mlp_block_forward<B>(m, m.layer(l), a.residual3[L], after, a.fch[L], a.fch_gelu[L],
                                 a.proj, a.residual2[L], a.ln2[L], drop ? &mlp_drop : nullptr, kn);
  }
  matmul_forward<B>(a.logits, a.lnf, m.param(w.lm_head), param_view<B>{});
  a.forward_done = true;
}

/// Backward pass: accumulates into m.grads() the gradient of a loss on the logits and/or
/// on the final hidden state h = acts.lnf (B, T, C) (what the value and reward heads of
/// model/heads.hpp read). `dlogits` (B, T, V) may be null (a critic trunk without an LM
/// loss), `dhidden` may be null (no head); zero the gradients once per optimizer step, so
/// gradient accumulation comes free. A policy sharing its trunk with a value head passes
/// both; a separate critic passes dhidden only.
/// `tokens` must be the tokens of the gpt_forward that filled `acts`: an id outside
/// [0, vocab_size) is a data_error (as in the forward), other ids than the forward's (or no
/// forward at all) a config_error naming `tokens`, both thrown before any gradient changes.
template <class B>
void gpt_backward(gpt<B>& m, gpt_activations<B>& a, const typename B::index_tensor& tokens,
                  const typename B::tensor* dlogits, const typename B::tensor* dhidden) {
  const auto& cfg = m.config();
  constexpr const char* fn = "gpt_backward";
  if (!m.trainable()) {
    throw config_error("gpt_backward: the model is frozen (constructed with trainable = false)");
  }
  detail::check_sized_for(a, cfg, fn);
  check_shape(fn, "tokens", tokens.shape(), shape{a.batch, a.steps},
              "(B, T) the activations were sized for");
  if (dlogits) check_same_shape(fn, "dlogits", dlogits->shape(), "logits", a.logits.shape());
  if (dhidden) check_same_shape(fn, "dhidden", dhidden->shape(), "lnf", a.lnf.shape());
  detail::check_backward_tokens<B>(a, tokens, cfg.vocab_size);
  const gpt_slots& w = m.slots();
  auto zero = [](typename B::tensor& t) { ops::fill<B>(t, 0.0f); };

  // g_ln = dhidden + dlogits · W (the LM head's backward accumulates onto dhidden's copy).
  // The per-layer gradient buffers below are scratch written once each (grad_write::
  // overwrite: no zeroing pass); only g_res accumulates across the layers.
  if (dhidden) {
    ops::transform<B>(a.g_ln, rlhf::fn::identity{}, *dhidden);
  } else if (!dlogits) {
    zero(a.g_ln);
  }
  if (dlogits) {
    matmul_backward<B>(a.g_ln, m.grad(w.lm_head), grad_view<B>{}, *dlogits, a.lnf,
                       m.param(w.lm_head),
                       dhidden ? grad_write::accumulate : grad_write::overwrite);
  }
  zero(a.g_res);
  detail::norm_backward<B>(m, w.ln_f, a.g_res, a.g_ln, a.residual3.back(), a.lnf_mean, a.lnf_rstd);
  // a.g_res holds d loss / d (output of layer l); each residual passes it through unchanged,
  // so the branches below accumulate into it in place. With dropout, a branch's output
  // gradient is g_res through the branch's mask (a.g_drop).
  const float pdrop = cfg.dropout;
  const bool drop = a.dropout_applied;
  using site = detail::dropout_site;
  const auto key = [&](index_t l, site s) { return detail::dropout_key_of(a, l, s); };
  const auto through_dropout = [&](index_t l, site s) -> const typename B::tensor& {
    if (!drop) return a.g_res;
    zero(a.g_drop);
    dropout_backward<B>(a.g_drop, a.g_res, pdrop, key(l, s));
    return a.g_drop;
  };
  for (index_t l = cfg.n_layer - 1; l >= 0; --l) {
    const auto L = static_cast<std::size_t>(l);
    const auto& x = l == 0 ? a.encoded : a.residual3[L - 1];
    detail::mlp_block_backward<B>(m, m.layer(l), a.g_res, a.g_ln, a.g_fch, a.g_fch_gelu,
                                  through_dropout(l, site::mlp_out), a.residual2[L], a.ln2[L],
                                  a.ln2_mean[L], a.ln2_rstd[L], a.fch[L], a.fch_gelu[L]);
    const attention_dropout<B> probs_drop{a.att_dropped.empty() ? nullptr : &a.att_dropped[L],
                                          pdrop, key(l, site::attn_probs)};
    // g_preatt and g_att are scratch the attention backward overwrites.
    const auto attend_backward = [&](typename B::tensor& dqkv, const typename B::tensor& datty) {
      attention_backward<B>(dqkv, a.g_preatt, a.g_att, datty, a.qkv[L], a.att[L],
                            drop ? &probs_drop : nullptr, grad_write::overwrite);
    };
    detail::attention_block_backward<B>(m, m.layer(l), a.g_res, a.g_ln, a.g_atty, a.g_qkv,
                                        through_dropout(l, site::attn_out), x, a.ln1[L],
                                        a.ln1_mean[L], a.ln1_rstd[L], a.atty[L], attend_backward);
  }
  encoder_backward<B>(m.grad(w.wte), m.grad(w.wpe), through_dropout(0, site::embedding), tokens,
                      cfg.vocab_size);
}

/// The usual case: the gradient of a loss on the logits only.
template <class B>
void gpt_backward(gpt<B>& m, gpt_activations<B>& a, const typename B::index_tensor& tokens,
                  const typename B::tensor& dlogits) {
  gpt_backward<B>(m, a, tokens, &dlogits, nullptr);
}

/// The AdamW decay mask of a model's arena (param_ref.decays).
template <class B>
std::vector<param_range> decay_ranges(const gpt<B>& m) {
  std::vector<param_range> r;
  for (const auto& p : m.table()) r.push_back({p.offset, p.size(), p.decays});
  return r;
}

}  // namespace model
}  // namespace v0
}  // namespace rlhf
