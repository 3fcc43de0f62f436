// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Batched generation with a KV cache (docs/model.md ("Generation")): an inference forward over new
// positions that reads and extends a per-layer key/value cache, and the generation loop
// (prefill + decode) that samples with rlhf/model/sampling.hpp and returns tokens, masks and
// the per-token log-probs PPO needs as its "old" log-probs.
//
//   kv_cache<B> cache(cfg, batch, max_len);                 K, V: (L, B·NH, max_len, hs)
//   gpt_forward_cached<B>(m, cache, buf, tokens (B, S), start_pos, logits)
//       row b's S new tokens sit at positions start_pos[b] .. start_pos[b]+S-1; their keys
//       and values are written into the cache there, and each query attends to the cached
//       keys 0 .. its own position. logits (B, S, V): every new position; (B, V): row b's
//       position new_lengths[b] - 1 only (default S - 1).
//   generate<B>(m, prompts, gen_cfg) -> generation_result
//
// Per-row lengths: positions are per row. The prefill runs the prompts RIGHT-padded in one
// (B, P) call (P = longest prompt) with every row starting at position 0; causal attention
// means a prompt's positions never see its padding, and the padding's keys/values, written
// at positions >= the prompt's length, are overwritten by the row's first decode steps
// before anything reads them (a decode query at position p reads keys 0..p only). Decode
// step t feeds row b's last token at position len_b + t. So each row computes exactly what
// it would alone (up to the GEMM's summation order over rows, which does not change a
// row's own dot products on the backends here), and no attention mask is needed. Rows with
// equal prompts share one prefill (its keys, values and logits copied to each).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rlhf/core/config.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/tensor_backend.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/config.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/layers.hpp"
#include "rlhf/model/sampling.hpp"
#include "rlhf/ops/elementwise.hpp"
#include "rlhf/ops/gemm.hpp"
#include "rlhf/ops/tensor.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// Keys and values of every layer for `batch` rows and up to `max_len` positions, allocated
/// once. Layout (n_layer, batch · n_head, max_len, head_dim), n_head the key/value heads
/// (fewer than the query heads with grouped-query attention): head h of row b of layer l is
/// the (max_len, hs) matrix at ((l · batch + b) · NH + h) · max_len · hs.
template <class B>
struct kv_cache {
  using tensor = typename B::tensor;  ///< The backend's float tensor.
  ///@{
  /// The cache's extents: layers L, rows B, key/value heads NH, positions max_len, head
  /// width hs.
  index_t n_layer = 0, batch = 0, n_head = 0, max_len = 0, head_dim = 0;
  ///@}
  ///@{
  /// The cached keys and values, each (L, B·NH, max_len, hs), zero-filled at construction.
  tensor k, v;
  ///@}

  /// Allocates the cache for `b` rows and `len` positions; config_error unless b >= 1 and
  /// 1 <= len <= cfg.max_seq_len.
  kv_cache(const gpt_config& cfg, index_t b, index_t len) {
    cfg.validate();
    constexpr const char* fn = "kv_cache";
    check_config(b >= 1, fn, "batch", ">= 1", b);
    check_config(len >= 1 && len <= cfg.max_seq_len, fn, "max_len",
                 rlhf::detail::concat("in [1, max_seq_len = ", cfg.max_seq_len, "]"), len);
    n_layer = cfg.n_layer, batch = b, n_head = cfg.kv_heads(), max_len = len;
    head_dim = cfg.head_dim();
    const shape s{n_layer, rlhf::detail::size_mul(batch, n_head, fn, "batch * n_head"), max_len,
                  head_dim};
    k = tensor(s);  // zero-filled, as every backend's tensor
    v = tensor(s);
  }

  /// Floats held (K and V).
  [[nodiscard]] index_t floats() const { return k.size() + v.size(); }
};

/// Activations of one cached forward over (B, S) new positions; sized once and reused by
/// every call with the same (B, S) (the decode loop's S = 1).
template <class B>
struct gpt_inference_buffers {
  using tensor = typename B::tensor;  ///< The backend's float tensor.
  ///@{
  /// Rows B, new positions S, and the cache length max_len the scores span.
  index_t batch = 0, steps = 0, max_len = 0;
  ///@}
  ///@{
  /// Per-layer scratch, reused by every layer: res, res2, ln, atty, proj (B, S, C); mean,
  /// rstd (B·S); qkv (B, S, W); fch (B, S, fc_width), fch_gelu (B, S, H); scores
  /// (B, NH, S, max_len).
  tensor res, res2, ln, mean, rstd, qkv, atty, proj, fch, fch_gelu, scores;
  ///@}
  ///@{
  /// The rows a (B, V) logits call reads: last, last_ln (B, C); last_mean, last_rstd (B,).
  tensor last, last_ln, last_mean, last_rstd;  // (B, C) rows read by a (B, V) logits call
  ///@}
  ///@{
  /// (B,) per-row start positions and new lengths, as backend index tensors.
  typename B::index_tensor pos, new_len;       // (B,) per-row start positions, new lengths
  ///@}

  /// Allocates the buffers for `b` rows of `s` new positions against a cache of `len`
  /// positions; config_error unless b >= 1 and 1 <= s <= len <= cfg.max_seq_len.
  gpt_inference_buffers(const gpt_config& cfg, index_t b, index_t s, index_t len)
      : batch(b), steps(s), max_len(len) {
    cfg.validate();
    constexpr const char* fn = "gpt_inference_buffers";
    check_config(b >= 1, fn, "batch", ">= 1", b);
    check_config(s >= 1 && s <= cfg.max_seq_len, fn, "steps",
                 rlhf::detail::concat("in [1, max_seq_len = ", cfg.max_seq_len, "]"), s);
    check_config(len >= s && len <= cfg.max_seq_len, fn, "max_len",
                 rlhf::detail::concat("in [steps = ", s, ", max_seq_len = ", cfg.max_seq_len,
                                      "]"),
                 len);
    const index_t C = cfg.n_embd, H = cfg.mlp_width();
    const shape bsc{b, s, C}, bs{rlhf::detail::size_mul(b, s, fn, "batch * steps")};
    res = tensor(bsc), res2 = tensor(bsc), ln = tensor(bsc), mean = tensor(bs);
    rstd = tensor(bs), qkv = tensor(shape{b, s, cfg.qkv_width()}), atty = tensor(bsc);
    proj = tensor(bsc), fch = tensor(shape{b, s, cfg.fc_width()});
    fch_gelu = tensor(shape{b, s, H});
    scores = tensor(shape{b, cfg.n_head, s, len});
    last = tensor(shape{b, C}), last_ln = tensor(shape{b, C});
    last_mean = tensor(shape{b}), last_rstd = tensor(shape{b});
    pos = typename B::index_tensor(shape{b});
    new_len = typename B::index_tensor(shape{b});
  }
};

/// Every block's linear weights and the LM head, transposed to (in, out): what the cached
/// forward multiplies by on backends whose GEMM prefers that layout
/// (ops::gemm_prefers_kn_weights; oneDNN runs the products of a decode step of 16–64 rows
/// 2–4× faster so). generate() fills one per call of more than kn_decode_rows rows, while
/// the weights are fixed; it costs one more copy of the linear weights (the embeddings'
/// V × C included), for the length of the call or kept in a generation_workspace.
template <class B>
struct gpt_weights_kn {
  typename B::tensor data;                  ///< Every transposed weight, layer after layer.
  std::vector<layer_weights_kn<B>> layers;  ///< Per block, views into data.
  param_view<B> lm_head;                    ///< (C, V), the LM head's weight transposed.

  /// Copies and transposes the weights of `m`.
  explicit gpt_weights_kn(const gpt<B>& m) {
    data = typename B::tensor(shape{floats_for(m.config())});
    refill(m);
  }
  /// Transposes the current weights of `m` (a model of the same shapes) into this copy.
  void refill(const gpt<B>& m) {
    const auto& cfg = m.config();
    check_dim("gpt_weights_kn", "the model's transposed weights (floats)", floats_for(cfg),
              data.size());
    const index_t per_layer = layer_linear_floats(cfg), C = cfg.n_embd, V = cfg.vocab_size;
    layers.clear();
    for (index_t l = 0; l < cfg.n_layer; ++l) {
      layers.push_back(transpose_layer_weights<B>(m, m.layer(l), data, l * per_layer));
    }
    const index_t at = per_layer * cfg.n_layer;
    transpose_weight<B>(data, at, m.param(m.slots().lm_head), V, C);
    lm_head = {&data, at};
  }
  /// Floats of the copy for a model of `cfg`.
  [[nodiscard]] static index_t floats_for(const gpt_config& cfg) {
    return rlhf::detail::size_mul(layer_linear_floats(cfg), cfg.n_layer, "gpt_weights_kn",
                                  "layers' linear weights") +
           cfg.n_embd * cfg.vocab_size;
  }
  ///@{
  /// Neither copied nor moved: the views point into data.
  gpt_weights_kn(const gpt_weights_kn&) = delete;
  gpt_weights_kn& operator=(const gpt_weights_kn&) = delete;
  gpt_weights_kn(gpt_weights_kn&&) = delete;
  gpt_weights_kn& operator=(gpt_weights_kn&&) = delete;
  ///@}
  ~gpt_weights_kn() = default;  ///< Frees the copy.
};

namespace detail {

/// out[b, s, :] = wte[tokens[b, s], :] + wpe[pos[b] + s, :] (ids and positions checked by
/// the caller); wpe absent (rotary positions): the token embedding alone.
template <class B>
void encoder_forward_at(typename B::tensor& out, const typename B::index_tensor& tokens,
                        const typename B::index_tensor& pos, param_view<B> wte,
                        param_view<B> wpe) {
  const index_t Bn = out.shape()[0], S = out.shape()[1], C = out.shape()[2];
  float* o = B::data(out);
  const std::int32_t* tok = B::data(tokens);
  const std::int32_t* ps = B::data(pos);
  const float* we = B::data(*wte.arena) + wte.offset;
  const float* pe = wpe.present() ? B::data(*wpe.arena) + wpe.offset : nullptr;
  B::parallel_for(Bn * S, RLHF_LAMBDA(index_t r) {
    const index_t b = r / S, s = r % S;
    const float* wr = we + static_cast<index_t>(tok[r]) * C;
    float* orow = o + r * C;
    if (pe == nullptr) {
      for (index_t c = 0; c < C; ++c) orow[c] = wr[c];
      return;
    }
    const float* pr = pe + (static_cast<index_t>(ps[b]) + s) * C;
    for (index_t c = 0; c < C; ++c) orow[c] = wr[c] + pr[c];
  });
}

/// One query of one head against its cached keys and values 0..p (rows of hs floats):
/// row[t] = q · k_t · scale (serial dot products, in key order), softmaxed in place
/// (causal_softmax_exp, as attention_forward's rows), out = Σ_t row[t] · v_t. HS > 0 is hs
/// known at compile time, so that out's accumulators stay in registers; HS = 0 reads hs.
template <index_t HS>
RLHF_HD RLHF_ALWAYS_INLINE void attend_cached_query(float* out, float* row, const float* q,
                                                    const float* kb, const float* vb, index_t p,
                                                    index_t hs_at_run_time, float scale) {
  const index_t hs = HS > 0 ? HS : hs_at_run_time;
  for (index_t t = 0; t <= p; ++t) {
    const float* k = kb + t * hs;
    float d = 0.0f;
    RLHF_SIMD_REDUCE(+ : d)
    for (index_t e = 0; e < hs; ++e) d += q[e] * k[e];
    row[t] = d * scale;
  }
  const float inv = causal_softmax_exp(row, row, p + 1);
  if constexpr (HS > 0) {
    float acc[HS] = {};
    for (index_t t = 0; t <= p; ++t) {
      const float a = row[t] * inv;
      const float* v = vb + t * HS;
      RLHF_SIMD
      for (index_t e = 0; e < HS; ++e) acc[e] += a * v[e];
    }
    for (index_t e = 0; e < HS; ++e) out[e] = acc[e];
  } else {
    for (index_t e = 0; e < hs; ++e) out[e] = 0.0f;
    for (index_t t = 0; t <= p; ++t) {
      const float a = row[t] * inv;
      const float* v = vb + t * hs;
      RLHF_SIMD
      for (index_t e = 0; e < hs; ++e) out[e] += a * v[e];
    }
  }
}

/// Layer l's cached causal attention: writes the new keys/values of qkv (B, S, W) into the
/// cache at positions pos[b] + s, then out[b, s, head h] = softmax_{t <= pos[b]+s}
/// (q · k_t / sqrt(hs)) · v_t, k and v of key/value head h / (NH / NKV). One work item per
/// (b, h, s) query; scores (B, NH, S, L) is scratch. The softmax row is attention_forward's
/// (detail::causal_softmax_exp); the products differ on purpose: attention_forward's
/// strided GEMMs need every row of a batch at the same positions over one (T, T) square,
/// while here each row has its own start and reads a strided cache, so the dot products are
/// serial, in key order, and a row's result does not depend on the batch.
template <class B>
void cached_attention_forward(typename B::tensor& out, typename B::tensor& scores,
                              kv_cache<B>& cache, index_t layer,
                              const typename B::tensor& qkv,
                              const typename B::index_tensor& pos) {
  const index_t Bn = qkv.shape()[0], S = qkv.shape()[1], W = qkv.shape()[2];
  const index_t NKV = cache.n_head, hs = cache.head_dim, L = cache.max_len;
  const index_t NH = scores.shape()[1], G = NH / NKV, C = NH * hs, KV = NKV * hs;
  const index_t CB = cache.batch;
  const index_t Ls = scores.shape()[3];
  const float* x = B::data(qkv);
  const std::int32_t* ps = B::data(pos);
  float* kc = B::data(cache.k) + layer * CB * NKV * L * hs;
  float* vc = B::data(cache.v) + layer * CB * NKV * L * hs;
  B::parallel_for(
      Bn * S * NKV, RLHF_LAMBDA(index_t i) {
        const index_t h = i % NKV, bs = i / NKV, b = bs / S, s = bs % S;
        const index_t p = static_cast<index_t>(ps[b]) + s;
        const float* src = x + bs * W + C + h * hs;
        float* kd = kc + ((b * NKV + h) * L + p) * hs;
        float* vd = vc + ((b * NKV + h) * L + p) * hs;
        for (index_t d = 0; d < hs; ++d) {
          kd[d] = src[d];
          vd[d] = src[KV + d];
        }
      });
  const float scale = 1.0f / std::sqrt(static_cast<float>(hs));
  float* sc = B::data(scores);
  float* o = B::data(out);
  B::parallel_for(
      Bn * NH * S, RLHF_LAMBDA(index_t i) {
        const index_t s = i % S, bh = i / S, b = bh / NH, h = bh % NH;
        const index_t p = static_cast<index_t>(ps[b]) + s;
        const float* q = x + (b * S + s) * W + h * hs;
        const float* kb = kc + (b * NKV + h / G) * L * hs;
        const float* vb = vc + (b * NKV + h / G) * L * hs;
        float* orow = o + (b * S + s) * C + h * hs;
        // The usual head sizes at compile time: the output's accumulators stay in registers.
        if (hs == 64) {
          attend_cached_query<64>(orow, sc + i * Ls, q, kb, vb, p, hs, scale);
        } else if (hs == 128) {
          attend_cached_query<128>(orow, sc + i * Ls, q, kb, vb, p, hs, scale);
        } else {
          attend_cached_query<0>(orow, sc + i * Ls, q, kb, vb, p, hs, scale);
        }
      });
}

/// Positions 0..P-1 of every layer's keys and values of row b of `to` = those of row
/// source[b] of `from` (caches of the same layers, heads and max_len).
template <class B>
void copy_prefill_rows(kv_cache<B>& to, const kv_cache<B>& from,
                       const typename B::index_tensor& source, index_t P) {
  const index_t NKV = to.n_head, hs = to.head_dim, L = to.max_len, Bn = to.batch;
  const index_t per_layer_to = Bn * NKV * L * hs, per_layer_from = from.batch * NKV * L * hs;
  const std::int32_t* src = B::data(source);
  float* tk = B::data(to.k);
  float* tv = B::data(to.v);
  const float* fk = B::data(from.k);
  const float* fv = B::data(from.v);
  B::parallel_for(
      to.n_layer * Bn * NKV, RLHF_LAMBDA(index_t i) {
        const index_t h = i % NKV, b = (i / NKV) % Bn, l = i / (NKV * Bn);
        const index_t at = l * per_layer_to + (b * NKV + h) * L * hs;
        const index_t from_at = l * per_layer_from +
                                (static_cast<index_t>(src[b]) * NKV + h) * L * hs;
        for (index_t e = 0; e < P * hs; ++e) {
          tk[at + e] = fk[from_at + e];
          tv[at + e] = fv[from_at + e];
        }
      });
}

/// out[b, :] = in[source[b], :] for out (B, V), in (U, V).
template <class B>
void copy_rows(typename B::tensor& out, const typename B::tensor& in,
               const typename B::index_tensor& source) {
  const index_t Bn = out.shape()[0], V = out.shape()[1];
  const std::int32_t* src = B::data(source);
  const float* from = B::data(in);
  float* to = B::data(out);
  B::parallel_for(
      Bn * V, RLHF_LAMBDA(index_t i) {
        const index_t b = i / V, v = i % V;
        to[i] = from[static_cast<index_t>(src[b]) * V + v];
      });
}

/// out[b, :] = in[b, new_len[b] - 1, :] for in (B, S, C).
template <class B>
void gather_last_rows(typename B::tensor& out, const typename B::tensor& in,
                      const typename B::index_tensor& new_len) {
  const index_t Bn = in.shape()[0], S = in.shape()[1], C = in.shape()[2];
  const float* src = B::data(in);
  const std::int32_t* nl = B::data(new_len);
  float* dst = B::data(out);
  B::parallel_for(Bn * C, RLHF_LAMBDA(index_t i) {
    const index_t b = i / C, c = i % C;
    dst[i] = src[(b * S + static_cast<index_t>(nl[b]) - 1) * C + c];
  });
}

}  // namespace detail

/// The inference forward over new positions (see the top of this file). tokens (B, S) int32
/// in [0, vocab_size); start_pos (B) per-row first position (>= 0, start_pos[b] + S <=
/// cache.max_len); logits (B, S, V) for every new position, or (B, V) for position
/// new_lengths[b] - 1 of each row (new_lengths empty: S for every row; each in [1, S]).
/// buf must be sized (B, S, cache.max_len). `kn`, when given, holds m's weights transposed
/// (gpt_weights_kn of m, made since m last changed): the products read those instead.
/// Overwrites logits and buf, and the cache at the new positions of every layer. Errors:
/// shape_error / config_error / data_error naming the argument.
template <class B>
void gpt_forward_cached(const gpt<B>& m, kv_cache<B>& cache, gpt_inference_buffers<B>& buf,
                        const typename B::index_tensor& tokens, std::span<const index_t> start_pos,
                        typename B::tensor& logits, std::span<const index_t> new_lengths = {},
                        const gpt_weights_kn<B>* kn = nullptr) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "gpt_forward_cached";
  const auto& cfg = m.config();
  const index_t Bn = buf.batch, S = buf.steps, V = cfg.vocab_size;
  check_shape(fn, "tokens", tokens.shape(), shape{Bn, S}, "(B, S) the buffers were sized for");
  if (cache.n_layer != cfg.n_layer || cache.n_head != cfg.kv_heads() ||
      cache.head_dim != cfg.head_dim()) {
    throw shape_error(rlhf::detail::concat(fn, ": cache was sized for ", cache.n_layer,
                                           " layers of ", cache.n_head, " heads of ",
                                           cache.head_dim, ", the model has ", cfg.n_layer, " of ",
                                           cfg.kv_heads(), " of ", cfg.head_dim()));
  }
  check_dim(fn, "cache's batch (the buffers' batch)", cache.batch, Bn);
  check_dim(fn, "cache's max_len (the buffers' max_len)", cache.max_len, buf.max_len);
  check_dim(fn, "start_pos' length (the batch)", static_cast<index_t>(start_pos.size()), Bn);
  const bool last_only = logits.shape().rank() == 2;
  if (last_only) {
    check_shape(fn, "logits", logits.shape(), shape{Bn, V}, "(B, V) or (B, S, V)");
  } else {
    check_shape(fn, "logits", logits.shape(), shape{Bn, S, V}, "(B, V) or (B, S, V)");
  }
  if (!new_lengths.empty()) {
    check_dim(fn, "new_lengths' length (the batch)", static_cast<index_t>(new_lengths.size()),
              Bn);
  }
  if (kn != nullptr) {
    check_dim(fn, "kn's layers (the model's)", static_cast<index_t>(kn->layers.size()),
              cfg.n_layer);
  }
  std::vector<std::int32_t> pos(static_cast<std::size_t>(Bn)), nl(pos.size());
  for (std::size_t b = 0; b < pos.size(); ++b) {
    const index_t p = start_pos[b];
    if (p < 0 || p + S > cache.max_len) {
      throw config_error(rlhf::detail::concat(fn, ": start_pos[", b, "] = ", p,
                                              " must be in [0, cache max_len - S = ",
                                              cache.max_len - S, "]"));
    }
    const index_t n = new_lengths.empty() ? S : new_lengths[b];
    if (n < 1 || n > S) {
      throw config_error(
          rlhf::detail::concat(fn, ": new_lengths[", b, "] = ", n, " must be in [1, S = ", S, "]"));
    }
    pos[b] = static_cast<std::int32_t>(p);
    nl[b] = static_cast<std::int32_t>(n);
  }
  const std::vector<std::int32_t> ids = ops::to_host<B>(tokens);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= V) {
      throw data_error(rlhf::detail::concat(fn, ": tokens must be in [0, vocab_size = ", V,
                                            "), got ", ids[i], " at flat index ", i));
    }
  }
  ops::copy_from_host<B>(std::span<const std::int32_t>(pos), buf.pos);
  ops::copy_from_host<B>(std::span<const std::int32_t>(nl), buf.new_len);

  const gpt_slots& w = m.slots();
  detail::encoder_forward_at<B>(buf.res, tokens, buf.pos, m.param(w.wte), m.param(w.wpe));
  // The blocks of gpt_forward (detail::attention_block_forward, detail::mlp_block_forward),
  // with one set of buffers reused by every layer and the cache's attention. buf.ln holds
  // the norm a block reads and receives, from its junction, the one the next block reads.
  const auto norm_into_ln = [&](const gpt_norm_slots& s) {
    return detail::next_norm<B>{&s, &buf.ln, &buf.mean, &buf.rstd};
  };
  detail::norm_forward<B>(m, m.layer(0).ln_1, buf.ln, buf.mean, buf.rstd, buf.res);
  for (index_t l = 0; l < cfg.n_layer; ++l) {
    const auto attend = [&](typename B::tensor& y, const typename B::tensor& qkv) {
      detail::cached_attention_forward<B>(y, buf.scores, cache, l, qkv, buf.pos);
    };
    // After the last block: ln_f of every row, or none when only the last rows are normed.
    const detail::next_norm<B> after = l + 1 < cfg.n_layer ? norm_into_ln(m.layer(l + 1).ln_1)
                                       : last_only         ? detail::next_norm<B>{}
                                                           : norm_into_ln(w.ln_f);
    const layer_weights_kn<B> layer_kn = kn != nullptr ? kn->layers[static_cast<std::size_t>(l)]
                                                       : layer_weights_kn<B>{};
    detail::attention_block_forward<B>(m, m.layer(l), buf.res2, norm_into_ln(m.layer(l).ln_2),
                                       buf.qkv, buf.atty, buf.proj, buf.res, buf.ln, &buf.pos,
                                       attend, nullptr, layer_kn);
    detail::mlp_block_forward<B>(m, m.layer(l), buf.res, after, buf.fch, buf.fch_gelu, buf.proj,
                                 buf.res2, buf.ln, nullptr, layer_kn);
  }
  const typename B::tensor& rows = last_only ? buf.last_ln : buf.ln;
  if (last_only) {
    detail::gather_last_rows<B>(buf.last, buf.res, buf.new_len);
    detail::norm_forward<B>(m, w.ln_f, buf.last_ln, buf.last_mean, buf.last_rstd, buf.last);
  }
  if (kn != nullptr) {
    matmul_forward_kn<B>(logits, rows, kn->lm_head, param_view<B>{});
  } else {
    matmul_forward<B>(logits, rows, m.param(w.lm_head), param_view<B>{});
  }
}

/// The same, allocating its buffers for this call.
template <class B>
void gpt_forward_cached(const gpt<B>& m, kv_cache<B>& cache,
                        const typename B::index_tensor& tokens,
                        std::span<const index_t> start_pos, typename B::tensor& logits,
                        std::span<const index_t> new_lengths = {}) {
  check_rank("gpt_forward_cached", "tokens", tokens.shape(), 2, 2);
  gpt_inference_buffers<B> buf(m.config(), tokens.shape()[0], tokens.shape()[1],
                               cache.max_len);
  gpt_forward_cached<B>(m, cache, buf, tokens, start_pos, logits, new_lengths);
}

/// What generate() allocates on every call, kept for the next: the KV cache and the
/// transposed weights (where the backend's GEMM wants them). An online trainer that samples
/// every step passes one, so that a step does not allocate and zero tens of MB again. The
/// cache is reused while (rows, positions) stay the same; its stale contents are never read
/// (every position is written before a query reads it). Not for two generate() calls at
/// once.
template <class B>
class generation_workspace {
 public:
  generation_workspace() = default;  ///< Empty: the first call allocates.
  ///@{
  /// A copy, a moved-to or an assigned-to workspace starts empty (the kept buffers are only
  /// scratch).
  generation_workspace(const generation_workspace& /*other*/) {}
  generation_workspace(generation_workspace&& /*other*/) noexcept {}
  generation_workspace& operator=(const generation_workspace& other) {
    if (this != &other) clear();
    return *this;
  }
  generation_workspace& operator=(generation_workspace&& other) noexcept {
    if (this != &other) clear();
    return *this;
  }
  ///@}
  ~generation_workspace() = default;  ///< Frees what it keeps.

  /// Frees what it keeps.
  void clear() noexcept {
    cache_.reset();
    kn_.reset();
  }

  /// A cache for `b` rows of `len` positions: the kept one when it has that size.
  kv_cache<B>& cache(const gpt_config& cfg, index_t b, index_t len) {
    if (!cache_ || cache_->batch != b || cache_->max_len != len || cache_->n_layer != cfg.n_layer ||
        cache_->n_head != cfg.kv_heads() || cache_->head_dim != cfg.head_dim()) {
      cache_.reset();  // free the old one before allocating the new
      cache_.emplace(cfg, b, len);
    }
    return *cache_;
  }
  /// The weights of `m` transposed now, into the kept copy when it has the size.
  const gpt_weights_kn<B>& weights_kn(const gpt<B>& m) {
    if (kn_ && kn_->data.size() == gpt_weights_kn<B>::floats_for(m.config())) {
      kn_->refill(m);
    } else {
      kn_.reset();
      kn_.emplace(m);
    }
    return *kn_;
  }

 private:
  std::optional<kv_cache<B>> cache_;
  std::optional<gpt_weights_kn<B>> kn_;
};

/// What generate() does.
struct generation_config {
  index_t max_new_tokens = 64;            ///< >= 1; every prompt + this must fit max_seq_len.
  sampling_config sampling;               ///< Temperature (0 = greedy), top-k/top-p, seed.
  std::vector<std::int32_t> stop_tokens;  ///< A row ends after emitting one (it is kept).
  std::int32_t pad_token = 0;             ///< Left of short prompts and after a row's end.
  /// Sampling row id of each prompt (the Philox stream); empty = 0, 1, ..., B-1. A row's
  /// draws depend only on (seed, row id, step), so a sub-batch given its rows' ids
  /// reproduces them exactly.
  std::vector<std::int32_t> row_ids;
};

/// The output of generate(). Every (B, P + N) tensor is aligned column for column, with
/// P = the longest prompt and N = max_new_tokens: row b is [PAD × (P - len_b), prompt_b,
/// completion_b, PAD ...], so every completion starts at column P.
template <class B>
struct generation_result {
  typename B::index_tensor tokens;      ///< (B, P + N) prompts and completions.
  typename B::tensor attention_mask;    ///< (B, P + N) 1 at prompt and generated tokens.
  typename B::tensor completion_mask;   ///< (B, P + N) 1 at generated tokens (stop included).
  typename B::tensor logprobs;          ///< (B, P + N) log softmax(logits/τ) at each generated
                                        ///< token (τ = 1 under greedy), 0 elsewhere.
  index_t prompt_width = 0;             ///< P, the longest prompt's length.
  std::vector<index_t> prompt_lengths;  ///< len_b, each prompt's length.
  std::vector<index_t> lengths;         ///< Generated tokens per row, stop token included.
};

/// Batched generation with a KV cache: one right-padded prefill of the distinct prompts
/// (rows with equal prompts, as GRPO's groups, share theirs), then one decode step per new
/// token for the whole batch (rows that finished keep being fed a
/// token but emit PAD with log-prob 0 and mask 0). Row b samples with row id row_ids[b]
/// (default b) at step t = index of the token within its completion. Stops early when every
/// row has finished.
/// `workspace`, when given, keeps the KV cache and the transposed weights for the next call.
/// Errors (naming the argument): no prompts, an empty prompt, a prompt with
/// len + max_new_tokens > max_seq_len, max_new_tokens < 1, a bad sampling_config, row_ids of
/// the wrong length or negative, a pad_token or stop token outside [0, vocab_size) →
/// config_error; a prompt token outside [0, vocab_size) → data_error.
template <class B>
generation_result<B> generate(const gpt<B>& m,
                              const std::vector<std::vector<std::int32_t>>& prompts,
                              const generation_config& gc,
                              generation_workspace<B>* workspace = nullptr) {
  assert_tensor_backend<B>();
  constexpr const char* fn = "generate";
  const auto& cfg = m.config();
  validate(gc.sampling, "generate: sampling");
  check_config(!prompts.empty(), fn, "prompts (the batch)", "non-empty", 0);
  const index_t Bn = static_cast<index_t>(prompts.size());
  const index_t N = gc.max_new_tokens;
  check_config(N >= 1, fn, "max_new_tokens", ">= 1", N);
  check_config(N < cfg.max_seq_len, fn, "max_new_tokens",
               rlhf::detail::concat("< max_seq_len = ", cfg.max_seq_len,
                                    " (a prompt needs at least one position)"),
               N);
  index_t P = 0;
  std::vector<index_t> plen(prompts.size());
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    const auto len = static_cast<index_t>(prompts[b].size());
    check_config(len >= 1, fn, rlhf::detail::concat("prompts[", b, "]'s length"), ">= 1", len);
    check_config(len + N <= cfg.max_seq_len, fn,
                 rlhf::detail::concat("prompts[", b, "]'s length"),
                 rlhf::detail::concat("<= max_seq_len - max_new_tokens = ",
                                      cfg.max_seq_len - N),
                 len);
    for (std::size_t t = 0; t < prompts[b].size(); ++t) {
      const std::int32_t id = prompts[b][t];
      if (id < 0 || id >= cfg.vocab_size) {
        throw data_error(rlhf::detail::concat(fn, ": prompts[", b, "][", t, "] = ", id,
                                              " is outside the vocabulary [0, ",
                                              cfg.vocab_size, ")"));
      }
    }
    plen[b] = len;
    P = std::max(P, len);
  }
  check_config(gc.pad_token >= 0 && gc.pad_token < cfg.vocab_size, fn, "pad_token",
               rlhf::detail::concat("in the vocabulary [0, ", cfg.vocab_size, ")"), gc.pad_token);
  for (std::size_t i = 0; i < gc.stop_tokens.size(); ++i) {
    check_config(gc.stop_tokens[i] >= 0 && gc.stop_tokens[i] < cfg.vocab_size, fn,
                 rlhf::detail::concat("stop_tokens[", i, "]"),
                 rlhf::detail::concat("in the vocabulary [0, ", cfg.vocab_size, ")"),
                 gc.stop_tokens[i]);
  }
  std::vector<std::int32_t> row_ids = gc.row_ids;
  if (row_ids.empty()) {
    for (index_t b = 0; b < Bn; ++b) row_ids.push_back(static_cast<std::int32_t>(b));
  }
  check_config(static_cast<index_t>(row_ids.size()) == Bn, fn, "row_ids' length",
               rlhf::detail::concat("0 or the batch (", Bn, ")"), row_ids.size());
  for (std::size_t b = 0; b < row_ids.size(); ++b) {
    check_config(row_ids[b] >= 0, fn, rlhf::detail::concat("row_ids[", b, "]"), ">= 0",
                 row_ids[b]);
  }

  const index_t W = P + N;  // output width; also the cache length
  const index_t V = cfg.vocab_size;
  generation_workspace<B> own;  // stays empty when the caller keeps one
  generation_workspace<B>& ws = workspace != nullptr ? *workspace : own;
  kv_cache<B>& cache = ws.cache(cfg, Bn, W);
  // The weights transposed once for the whole call, where the backend's GEMM prefers it
  // for the decode steps' Bn rows.
  const gpt_weights_kn<B>* const kn = ops::gemm_prefers_kn_weights<B>() &&
                                              Bn > detail::kn_decode_rows
                                          ? &ws.weights_kn(m)
                                          : nullptr;
  typename B::tensor logits(shape{Bn, V});
  typename B::index_tensor tok(shape{Bn}), ids_dev(shape{Bn});
  typename B::tensor lp(shape{Bn});
  ops::copy_from_host<B>(std::span<const std::int32_t>(row_ids), ids_dev);

  // Host outputs.
  const auto at = [W](index_t b, index_t c) { return static_cast<std::size_t>(b * W + c); };
  std::vector<std::int32_t> out_tok(
      static_cast<std::size_t>(rlhf::detail::size_mul(Bn, W, fn, "batch * (P + N)")), gc.pad_token);
  std::vector<float> attn(out_tok.size(), 0.0f), comp(out_tok.size(), 0.0f),
      out_lp(out_tok.size(), 0.0f);
  for (index_t b = 0; b < Bn; ++b) {
    const auto& pr = prompts[static_cast<std::size_t>(b)];
    for (index_t t = 0; t < plen[static_cast<std::size_t>(b)]; ++t) {
      const index_t c = P - plen[static_cast<std::size_t>(b)] + t;
      out_tok[at(b, c)] = pr[static_cast<std::size_t>(t)];
      attn[at(b, c)] = 1.0f;
    }
  }

  // Prefill: right-padded prompts (filler = the row's last prompt token) at position 0.
  // Rows with the same prompt (the groups of GRPO and RLOO) share one prefill: the distinct
  // prompts run in a cache of their own, whose keys and values (positions 0..P-1) and
  // last-position logits are then copied to every row with that prompt.
  {
    std::vector<index_t> distinct;  // the first row of each distinct prompt
    std::vector<std::int32_t> source(static_cast<std::size_t>(Bn));  // row -> its distinct
    {
      std::map<std::vector<std::int32_t>, index_t> seen;
      for (index_t b = 0; b < Bn; ++b) {
        const auto [it, fresh] = seen.try_emplace(prompts[static_cast<std::size_t>(b)],
                                                  static_cast<index_t>(distinct.size()));
        if (fresh) distinct.push_back(b);
        source[static_cast<std::size_t>(b)] = static_cast<std::int32_t>(it->second);
      }
    }
    const auto U = static_cast<index_t>(distinct.size());
    std::vector<std::int32_t> pre(
        static_cast<std::size_t>(rlhf::detail::size_mul(U, P, fn, "batch * P")));
    std::vector<index_t> pre_len(static_cast<std::size_t>(U));
    for (index_t u = 0; u < U; ++u) {
      const auto b = static_cast<std::size_t>(distinct[static_cast<std::size_t>(u)]);
      pre_len[static_cast<std::size_t>(u)] = plen[b];
      for (index_t t = 0; t < P; ++t) {
        const index_t src = std::min(t, plen[b] - 1);
        pre[static_cast<std::size_t>(u * P + t)] = prompts[b][static_cast<std::size_t>(src)];
      }
    }
    const auto pre_dev = ops::index_from_host<B>(std::span<const std::int32_t>(pre), shape{U, P});
    gpt_inference_buffers<B> buf(cfg, U, P, W);
    const std::vector<index_t> zeros(static_cast<std::size_t>(U), 0);
    if (U == Bn) {
      gpt_forward_cached<B>(m, cache, buf, pre_dev, zeros, logits, plen, kn);
    } else {
      kv_cache<B> shared(cfg, U, W);
      typename B::tensor shared_logits(shape{U, V});
      gpt_forward_cached<B>(m, shared, buf, pre_dev, zeros, shared_logits, pre_len, kn);
      const auto source_dev = ops::index_from_host<B>(std::span<const std::int32_t>(source),
                                                      shape{Bn});
      detail::copy_prefill_rows<B>(cache, shared, source_dev, P);
      detail::copy_rows<B>(logits, shared_logits, source_dev);
    }
  }

  generation_state st(Bn, N, gc.stop_tokens, gc.pad_token);
  gpt_inference_buffers<B> dec(cfg, Bn, 1, W);
  std::vector<std::int32_t> feed(static_cast<std::size_t>(Bn));
  std::vector<index_t> pos(static_cast<std::size_t>(Bn));
  typename B::index_tensor feed_dev(shape{Bn, 1});
  for (index_t step = 0;; ++step) {
    std::vector<std::uint8_t> was_finished(static_cast<std::size_t>(Bn));
    for (index_t b = 0; b < Bn; ++b) was_finished[static_cast<std::size_t>(b)] = st.finished(b);
    sample_tokens<B>(logits, gc.sampling, static_cast<std::uint64_t>(step), ids_dev, tok, lp);
    std::vector<std::int32_t> t_host = ops::to_host<B>(tok);
    std::vector<float> lp_host = ops::to_host<B>(lp);
    st.update(std::span<std::int32_t>(t_host), std::span<float>(lp_host));
    for (index_t b = 0; b < Bn; ++b) {
      const auto ub = static_cast<std::size_t>(b);
      if (was_finished[ub] != 0) continue;
      const index_t c = P + step;
      out_tok[at(b, c)] = t_host[ub];
      out_lp[at(b, c)] = lp_host[ub];
      attn[at(b, c)] = 1.0f;
      comp[at(b, c)] = 1.0f;
    }
    if (st.all_finished() || step + 1 >= N) break;
    for (index_t b = 0; b < Bn; ++b) {
      const auto ub = static_cast<std::size_t>(b);
      // A finished row is still fed (its result is discarded): its last real token.
      feed[ub] = was_finished[ub] != 0 ? feed[ub] : t_host[ub];
      if (feed[ub] < 0 || feed[ub] >= V) feed[ub] = 0;
      pos[ub] = plen[ub] + step;
    }
    ops::copy_from_host<B>(std::span<const std::int32_t>(feed), feed_dev);
    gpt_forward_cached<B>(m, cache, dec, feed_dev, pos, logits, {}, kn);
  }

  generation_result<B> r;
  r.prompt_width = P;
  r.prompt_lengths = plen;
  for (index_t b = 0; b < Bn; ++b) r.lengths.push_back(st.length(b));
  const shape bw{Bn, W};
  r.tokens = ops::index_from_host<B>(std::span<const std::int32_t>(out_tok), bw);
  r.attention_mask = ops::from_host<B>(std::span<const float>(attn), bw);
  r.completion_mask = ops::from_host<B>(std::span<const float>(comp), bw);
  r.logprobs = ops::from_host<B>(std::span<const float>(out_lp), bw);
  return r;
}

}  // namespace model
}  // namespace v0
}  // namespace rlhf
