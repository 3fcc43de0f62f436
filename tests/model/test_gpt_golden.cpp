// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Golden test in llm.c's manner: the whole GPT (rlhf/model/gpt.hpp) against a PyTorch model
// built from the same config semantics (tools/reference/gpt.py): logits and loss to 1e-4
// relative, every parameter gradient to 1e-3 of its tensor's scale, and the losses of 10
// AdamW steps to 1e-4, for two configs (vocab not a multiple of 64, T not a power of two,
// tied and untied LM head). Also: the typed slots of the arena, and that the passes look no
// parameter up by name.
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "fixture.hpp"
#include "random_data.hpp"
#include "rlhf/losses/sft.hpp"
#include "rlhf/model/checkpoint.hpp"
#include "rlhf/model/generate.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/optim.hpp"
#include "rlhf/model/safetensors.hpp"

namespace test_gpt_golden_cases {

using namespace rlhf_test;
namespace model = rlhf::model;
using rlhf::index_t;
using rlhf::shape;

namespace {

model::gpt_config config_from(const model::safetensors_file& f) {
  return model::gpt_config_from_json(nlohmann::json::parse(f.metadata.at("config")));
}

/// Cross-entropy of the next token, mean over the B·(T-1) predicted positions, and its
/// gradient w.r.t. the logits: exactly the SFT loss with a mask of ones.
template <class B>
float next_token_loss(const typename B::tensor& logits, const typename B::index_tensor& ids,
                      typename B::tensor& dlogits) {
  const index_t b = logits.shape()[0], t = logits.shape()[1];
  typename B::tensor ones(shape{b, t});
  rlhf::ops::fill<B>(ones, 1.0f);
  rlhf::losses::sft_config cfg;
  cfg.compute_entropy = false;
  return rlhf::losses::sft_loss<B>({logits, ids, ones}, dlogits, cfg).loss;
}

/// |a - e| <= tol · max|e| over a whole tensor (a gradient's entries near zero carry the
/// rounding of their larger neighbours, so the scale is the tensor's, as llm.c compares).
void check_tensor_scale(std::span<const float> got, std::span<const float> want,
                        const std::string& what, double tol) {
  REQUIRE(got.size() == want.size());
  double scale = 0.0, worst = 0.0;
  for (float w : want) scale = std::max(scale, std::abs(static_cast<double>(w)));
  for (std::size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
  }
  CHECK_MESSAGE(worst <= tol * std::max(scale, 1e-12),
                what << ": max |diff| " << worst << " vs scale " << scale);
}

}  // namespace

TEST_CASE_TEMPLATE("GPT golden test against PyTorch", B, RLHF_TEST_BACKENDS) {
  for (const char* name : {"gpt_tiny_a", "gpt_tiny_b"}) {
    CAPTURE(name);
    const auto f = model::load_safetensors(std::string(RLHF_FIXTURE_DIR) + "/" + name +
                                           ".safetensors");
    const auto cfg = config_from(f);
    model::gpt<B> m(cfg);
    // Parameters by name into the arena.
    std::vector<float> arena(static_cast<std::size_t>(m.num_params()), 0.0f);
    for (const auto& p : m.table()) {
      const auto* t = f.find(p.name);
      REQUIRE_MESSAGE(t != nullptr, "fixture lacks " << p.name);
      REQUIRE(t->shape == p.dims);
      std::copy(t->data.begin(), t->data.end(), arena.begin() + p.offset);
    }
    rlhf::ops::copy_from_host<B>(std::span<const float>(arena), m.params());
    const auto* ids_t = f.find("input_ids");
    REQUIRE(ids_t != nullptr);
    const auto ids = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids_t->int_data),
                                                   ids_t->shape);
    const index_t b = ids_t->shape[0], t = ids_t->shape[1];
    model::gpt_activations<B> acts(cfg, b, t);

    model::gpt_forward<B>(m, acts, ids);
    check_close(host<B>(acts.logits), f.find("logits")->data, "logits", 1e-4, 1e-5);
    typename B::tensor dlogits(acts.logits.shape());
    const float loss = next_token_loss<B>(acts.logits, ids, dlogits);
    check_close(loss, std::stof(f.metadata.at("loss")), "loss", 1e-4, 0.0);

    m.zero_grads();
    model::gpt_backward<B>(m, acts, ids, dlogits);
    const auto grads = host<B>(m.grads());
    for (const auto& p : m.table()) {
      const auto* g = f.find("grad." + p.name);
      REQUIRE(g != nullptr);
      check_tensor_scale(std::span<const float>(grads).subspan(static_cast<std::size_t>(p.offset),
                                                               static_cast<std::size_t>(p.size())),
                         g->data, "grad." + p.name, 1e-3);
    }

    // 10 AdamW steps on the same batch: the loss before each step.
    const auto train = nlohmann::json::parse(f.metadata.at("train"));
    model::adamw_config ac;
    ac.lr = train.at("lr").get<float>();
    ac.beta1 = train.at("beta1").get<float>();
    ac.beta2 = train.at("beta2").get<float>();
    ac.eps = train.at("eps").get<float>();
    ac.weight_decay = train.at("weight_decay").get<float>();
    model::adamw<B> opt(m.num_params(), ac);
    const auto ranges = model::decay_ranges(m);
    const auto mask = model::make_decay_mask<B>(m.num_params(), ranges);
    const auto want = nlohmann::json::parse(f.metadata.at("losses_10")).get<std::vector<float>>();
    for (std::size_t step = 0; step < want.size(); ++step) {
      CAPTURE(step);
      model::gpt_forward<B>(m, acts, ids);
      const float l = next_token_loss<B>(acts.logits, ids, dlogits);
      check_close(l, want[step], "loss of step", 1e-4, 0.0);
      m.zero_grads();
      model::gpt_backward<B>(m, acts, ids, dlogits);
      opt.step(m.params(), m.grads(), mask);
    }
  }
}

TEST_CASE_TEMPLATE("gpt_backward: tokens must be in the vocabulary and the forward's", B,
                   RLHF_TEST_BACKENDS) {
  model::gpt_config cfg;
  cfg.vocab_size = 50;
  cfg.vocab_multiple = 64;
  cfg.max_seq_len = 8;
  cfg.n_layer = 1;
  cfg.n_head = 2;
  cfg.n_embd = 8;
  model::gpt<B> m(cfg);
  m.init(7);
  const index_t b = 2, t = 3;
  const std::vector<std::int32_t> good{1, 2, 3, 4, 5, 6};
  const auto ids = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(good), shape{b, t});
  model::gpt_activations<B> acts(cfg, b, t);
  typename B::tensor dlogits(shape{b, t, cfg.vocab_size});
  rlhf::ops::fill<B>(dlogits, 0.25f);
  m.zero_grads();

  // No forward has filled acts yet.
  CHECK_THROWS_WITH_AS(model::gpt_backward<B>(m, acts, ids, dlogits),
                       doctest::Contains("gpt_backward: acts holds no forward"),
                       rlhf::config_error);
  model::gpt_forward<B>(m, acts, ids);

  const auto with = [&](std::int32_t id) {
    std::vector<std::int32_t> v = good;
    v[4] = id;
    return rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(v), shape{b, t});
  };
  // Hugging Face's ignore label and an id far past the arena: the embedding gradient was
  // scattered to wte row `id` without a check (a write outside the gradient arena).
  CHECK_THROWS_WITH_AS(model::gpt_backward<B>(m, acts, with(-100), dlogits),
                       "gpt_backward: tokens must be in [0, 50), got -100 at flat index 4",
                       rlhf::data_error);
  CHECK_THROWS_WITH_AS(model::gpt_backward<B>(m, acts, with(1000000), dlogits),
                       "gpt_backward: tokens must be in [0, 50), got 1000000 at flat index 4",
                       rlhf::data_error);
  // In the vocabulary, but not the forward's tokens: the gradient would be silently wrong.
  CHECK_THROWS_WITH_AS(model::gpt_backward<B>(m, acts, with(49), dlogits),
                       "gpt_backward: tokens must be the tokens of the forward that filled "
                       "acts; they differ at flat index 4 (got 49, the forward had 5)",
                       rlhf::config_error);
  // Nothing was accumulated by the rejected calls.
  for (float g : host<B>(m.grads())) REQUIRE(g == 0.0f);

  // The forward's own tokens work, twice (gradient accumulation), and match one call x2.
  model::gpt_backward<B>(m, acts, ids, dlogits);
  const auto once = host<B>(m.grads());
  model::gpt_backward<B>(m, acts, ids, dlogits);
  const auto twice = host<B>(m.grads());
  bool any = false;
  for (std::size_t i = 0; i < once.size(); ++i) {
    any = any || once[i] != 0.0f;
    CHECK(twice[i] == doctest::Approx(2.0 * once[i]).epsilon(1e-5));
  }
  CHECK(any);

  // A failed forward leaves acts without a forward.
  CHECK_THROWS_AS(model::gpt_forward<B>(m, acts, with(-1)), rlhf::data_error);
  CHECK_THROWS_AS(model::gpt_backward<B>(m, acts, ids, dlogits), rlhf::config_error);
}

// ---------------------------------------------------------------------------------------------
// The Llama-family block options (RMSNorm, rotary positions, SwiGLU, grouped-query attention,
// optional biases): no PyTorch fixture, so the whole model's gradient against central
// finite differences, the rotation of q and k against host loops, and the parameter tables.

namespace {

/// A tiny config: V 18 (padded to 20), T 8, L 2, NH 2, C 8 (hs 4), H 12, then `variant`:
/// 0 Llama (RMSNorm, rotary, SwiGLU, 1 key/value head, q/k/v biases only, untied); 1 Llama
/// with llama3 rope scaling, every bias, 2 key/value heads and a tied head; 2 LayerNorm and
/// tanh-GELU with rotary positions and grouped-query attention.
model::gpt_config llama_tiny(int variant) {
  model::gpt_config c;
  c.vocab_size = 18;
  c.vocab_multiple = 4;
  c.max_seq_len = 8;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 8;
  c.norm = model::norm_type::rmsnorm;
  c.position = model::position_type::rotary;
  c.mlp = model::mlp_type::swiglu;
  c.n_kv_head = 1;
  c.mlp_hidden = 12;
  c.qkv_bias = true;
  c.proj_bias = false;
  c.tie_embeddings = false;
  if (variant == 1) {
    c.n_kv_head = 2;
    c.proj_bias = true;
    c.tie_embeddings = true;
    c.rope.scaling = model::rope_scaling_type::llama3;  // inv_freq 1 (the ramp), 0.01 (/ 4)
    c.rope.factor = 4.0f;
    c.rope.original_max_seq_len = 16;
  } else if (variant == 2) {
    c.norm = model::norm_type::layernorm;
    c.mlp = model::mlp_type::gelu_tanh;
    c.rope.theta = 100.0f;
  }
  return c;
}

}  // namespace

TEST_CASE_TEMPLATE("Llama-style GPT: gpt_backward matches finite differences in every tensor", B,
                   RLHF_TEST_BACKENDS) {
  for (int variant = 0; variant < 3; ++variant) {
    CAPTURE(variant);
    const auto cfg = llama_tiny(variant);
    const index_t Bn = 2, T = 5, V = cfg.vocab_size;
    const std::vector<std::int32_t> ids{1, 17, 3, 3, 9, 0, 12, 5, 16, 2};
    const auto tokens = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids),
                                                      shape{Bn, T});
    model::gpt<B> m(cfg);
    // O(1) weights rather than GPT-2's 0.02 (see test_heads.cpp's trunk gradient check): with
    // C = 8 the norms of a 0.02-scale stream amplify ~50-fold and a 1e-2 step is not small.
    const auto p0 = randn(static_cast<std::size_t>(m.num_params()), 80 + variant, 0.5f);
    rlhf::ops::copy_from_host<B>(std::span<const float>(p0), m.params());
    const auto wl = randn(static_cast<std::size_t>(Bn * T * V), 90 + variant, 0.1f);
    model::gpt_activations<B> acts(cfg, Bn, T);
    auto loss = [&](const std::vector<float>& p) {
      rlhf::ops::copy_from_host<B>(std::span<const float>(p), m.params());
      model::gpt_forward<B>(m, acts, tokens);
      return dot(host<B>(acts.logits), wl);
    };
    (void)loss(p0);
    const auto dl = make<B>(wl, acts.logits.shape());
    m.zero_grads();
    model::gpt_backward<B>(m, acts, tokens, dl);
    const auto analytic = host<B>(m.grads());
    // Every parameter (the model is tiny), compared tensor by tensor so a failure names it.
    const auto fd = fd_gradient(loss, p0);
    for (const auto& p : m.table()) {
      CAPTURE(p.name);
      const auto o = static_cast<std::size_t>(p.offset), n = static_cast<std::size_t>(p.size());
      const std::vector<float> want(fd.begin() + static_cast<std::ptrdiff_t>(o),
                                    fd.begin() + static_cast<std::ptrdiff_t>(o + n));
      const std::span<const float> got(analytic.data() + o, n);
      check_close(got, want, p.name, 2e-2, 2e-3);
      double largest = 0.0;
      for (float g : got) largest = std::max(largest, std::abs(static_cast<double>(g)));
      CHECK_MESSAGE(largest > 1e-3, p.name << " gets no gradient");  // every tensor is used
    }
    // Gradient accumulation: a second backward doubles the gradients.
    rlhf::ops::copy_from_host<B>(std::span<const float>(p0), m.params());
    model::gpt_forward<B>(m, acts, tokens);
    model::gpt_backward<B>(m, acts, tokens, dl);
    std::vector<float> twice = analytic;
    for (auto& g : twice) g *= 2.0f;
    check_close(host<B>(m.grads()), twice, "gradients accumulate", 1e-5, 1e-6);
  }
}

TEST_CASE_TEMPLATE("Llama-style GPT: gpt_forward rotates q and k of c_attn's output", B,
                   RLHF_TEST_BACKENDS) {
  for (int variant = 0; variant < 2; ++variant) {
    CAPTURE(variant);
    const auto cfg = llama_tiny(variant);
    const index_t Bn = 2, T = 7, C = cfg.n_embd, hs = cfg.head_dim(), W = cfg.qkv_width();
    const index_t heads = cfg.n_head + cfg.kv_heads(), half = hs / 2;
    const std::vector<std::int32_t> ids{1, 17, 3, 3, 9, 0, 12, 5, 16, 2, 2, 2, 8, 4};
    const auto tokens = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids),
                                                      shape{Bn, T});
    model::gpt<B> m(cfg, /*trainable=*/false);
    const auto p = randn(static_cast<std::size_t>(m.num_params()), 100 + variant, 0.5f);
    rlhf::ops::copy_from_host<B>(std::span<const float>(p), m.params());
    model::gpt_activations<B> acts(cfg, Bn, T);
    model::gpt_forward<B>(m, acts, tokens);
    CHECK(host<B>(m.rope_inv_freq()) == model::rope_inverse_frequencies(cfg));
    const auto inv_freq = model::rope_inverse_frequencies(cfg);
    for (index_t l = 0; l < cfg.n_layer; ++l) {
      CAPTURE(l);
      const auto L = static_cast<std::size_t>(l);
      const std::string pre = "h." + std::to_string(l) + ".attn.c_attn.";
      const auto& wt = model::find_param(m.table(), pre + "weight");
      const auto* bs = model::find_param_if(m.table(), pre + "bias");
      REQUIRE(bs != nullptr);
      const auto x = host<B>(acts.ln1[L]);
      std::vector<double> lin(static_cast<std::size_t>(Bn * T * W));
      for (index_t r = 0; r < Bn * T; ++r) {
        for (index_t o = 0; o < W; ++o) {
          double s = p[static_cast<std::size_t>(bs->offset + o)];
          for (index_t c = 0; c < C; ++c) {
            s += static_cast<double>(x[static_cast<std::size_t>(r * C + c)]) *
                 p[static_cast<std::size_t>(wt.offset + o * C + c)];
          }
          lin[static_cast<std::size_t>(r * W + o)] = s;
        }
      }
      std::vector<float> want(lin.begin(), lin.end());
      for (index_t r = 0; r < Bn * T; ++r) {
        const index_t pos = r % T;
        for (index_t i = 0; i < half; ++i) {
          const float angle = static_cast<float>(pos) * inv_freq[static_cast<std::size_t>(i)];
          const double cs = std::cos(static_cast<double>(angle));
          const double sn = std::sin(static_cast<double>(angle));
          for (index_t h = 0; h < heads; ++h) {  // q heads, then k heads; v is not rotated
            const auto i0 = static_cast<std::size_t>(r * W + h * hs + i);
            const auto i1 = i0 + static_cast<std::size_t>(half);
            want[i0] = static_cast<float>(lin[i0] * cs - lin[i1] * sn);
            want[i1] = static_cast<float>(lin[i1] * cs + lin[i0] * sn);
          }
        }
      }
      check_close(host<B>(acts.qkv[L]), want, "qkv = rope(c_attn(ln_1(x)))", 1e-5, 1e-5);
    }
  }
}

TEST_CASE_TEMPLATE("gpt slots: each names its table row; absent parameters are empty slots", B,
                   RLHF_TEST_BACKENDS) {
  model::gpt_config gpt2;  // LayerNorm, learned positions, every bias, tied head
  gpt2.vocab_size = 30;
  gpt2.max_seq_len = 8;
  gpt2.n_layer = 2;
  gpt2.n_head = 2;
  gpt2.n_embd = 8;
  for (const auto& cfg : {gpt2, llama_tiny(0), llama_tiny(1)}) {
    CAPTURE(cfg.n_kv_head);
    const model::gpt<B> m(cfg);
    // The name a slot stands for, or "" when it is empty; the table must hold exactly that.
    const auto check_slot = [&](model::param_slot s, const std::string& name) {
      CAPTURE(name);
      const auto* ref = model::find_param_if(m.table(), name);
      REQUIRE(s.present() == (ref != nullptr));
      if (ref == nullptr) {
        CHECK_FALSE(m.param(s).present());
        return;
      }
      CHECK(m.table()[static_cast<std::size_t>(s.index)].name == name);
      CHECK(m.param(s).arena == &m.params());
      CHECK(m.param(s).offset == ref->offset);
    };
    const auto check_linear = [&](const model::gpt_linear_slots& s, const std::string& n) {
      check_slot(s.weight, n + ".weight");
      check_slot(s.bias, n + ".bias");
    };
    const auto check_norm = [&](const model::gpt_norm_slots& s, const std::string& n) {
      check_slot(s.weight, n + ".weight");
      check_slot(s.bias, n + ".bias");
    };
    const auto& w = m.slots();
    check_slot(w.wte, "wte.weight");
    check_slot(w.wpe, "wpe.weight");
    CHECK(w.wpe.present() == cfg.has_learned_positions());
    REQUIRE(w.h.size() == static_cast<std::size_t>(cfg.n_layer));
    for (index_t l = 0; l < cfg.n_layer; ++l) {
      const std::string p = "h." + std::to_string(l) + ".";
      const auto& s = m.layer(l);
      CHECK(&s == &w.h[static_cast<std::size_t>(l)]);
      check_norm(s.ln_1, p + "ln_1");
      check_linear(s.c_attn, p + "attn.c_attn");
      check_linear(s.attn_proj, p + "attn.c_proj");
      check_norm(s.ln_2, p + "ln_2");
      check_linear(s.c_fc, p + "mlp.c_fc");
      check_linear(s.mlp_proj, p + "mlp.c_proj");
      CHECK(s.ln_1.bias.present() == (cfg.norm == model::norm_type::layernorm));
    }
    check_norm(w.ln_f, "ln_f");
    check_slot(w.lm_head, m.lm_head_name());
    CHECK((w.lm_head.index == w.wte.index) == cfg.tie_embeddings);
    // Slots are indices, not pointers: a copy's views point into the copy's arenas.
    model::gpt<B> copy = m;
    CHECK(copy.param(copy.slots().h[1].c_fc.weight).arena == &copy.params());
    CHECK(copy.grad(copy.slots().h[1].c_fc.weight).arena == &copy.grads());
    CHECK_FALSE(copy.grad(model::param_slot{}).present());
    model::gpt<B> frozen(cfg, /*trainable=*/false);
    CHECK_FALSE(frozen.grad(frozen.slots().wte).present());
  }
}

TEST_CASE_TEMPLATE("gpt_forward, gpt_backward and gpt_forward_cached look up no name", B,
                   RLHF_TEST_BACKENDS) {
  model::gpt_config gpt2;
  gpt2.vocab_size = 30;
  gpt2.max_seq_len = 8;
  gpt2.n_layer = 2;
  gpt2.n_head = 2;
  gpt2.n_embd = 8;
  gpt2.dropout = 0.1f;  // the dropout path too
  auto& lookups = model::detail::gpt_name_lookups();
  for (const auto& cfg : {gpt2, llama_tiny(0), llama_tiny(2)}) {
    CAPTURE(cfg.n_kv_head);
    const index_t Bn = 2, T = 5, V = cfg.vocab_size;
    model::gpt<B> m(cfg);
    m.init(3);
    const std::vector<std::int32_t> ids{1, 17, 3, 3, 9, 0, 12, 5, 16, 2};
    const auto tokens = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids),
                                                      shape{Bn, T});
    model::gpt_activations<B> acts(cfg, Bn, T);
    const auto dl = make<B>(randn(static_cast<std::size_t>(Bn * T * V), 7, 0.1f), shape{Bn, T, V});
    const auto dh = make<B>(randn(static_cast<std::size_t>(Bn * T * cfg.n_embd), 8, 0.1f),
                            shape{Bn, T, cfg.n_embd});
    model::kv_cache<B> cache(cfg, Bn, T);
    typename B::tensor all(shape{Bn, T - 1, V}), last(shape{Bn, V});
    const std::vector<std::int32_t> pre{1, 17, 3, 3, 0, 12, 5, 16};
    const auto pre_dev = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(pre),
                                                       shape{Bn, T - 1});
    const auto next = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids.data(), 2),
                                                    shape{Bn, 1});
    const std::vector<index_t> zeros{0, 0}, at{T - 1, T - 1};
    const std::uint64_t before = lookups.load();
    model::gpt_forward<B>(m, acts, tokens);
    model::gpt_backward<B>(m, acts, tokens, &dl, &dh);
    model::gpt_forward_cached<B>(m, cache, pre_dev, zeros, all);
    model::gpt_forward_cached<B>(m, cache, next, at, last);
    CHECK(lookups.load() == before);
    // The counter does count: one name lookup.
    CHECK(m.param("wte.weight").offset == m.param(m.slots().wte).offset);
    CHECK(lookups.load() == before + 1);
  }
}

TEST_CASE("gpt_param_table: GPT-2's layout unchanged; the Llama options' layout") {
  struct row {
    std::string name;
    shape dims;
    bool decays;
  };
  const auto check_table = [](const std::vector<model::param_ref>& t,
                              const std::vector<row>& want) {
    REQUIRE(t.size() == want.size());
    index_t offset = 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
      CAPTURE(i);
      CHECK(t[i].name == want[i].name);
      CHECK(t[i].dims == want[i].dims);
      CHECK(t[i].decays == want[i].decays);
      CHECK(t[i].offset == offset);  // packed in order, no gaps
      offset += t[i].size();
    }
  };
  // The rows of `layers` blocks, each the entries `block` under "h.<l>.".
  const auto blocks = [](std::vector<row>& out, int layers, const std::vector<row>& block) {
    for (int l = 0; l < layers; ++l) {
      for (const auto& r : block)
        out.push_back({"h." + std::to_string(l) + "." + r.name, r.dims, r.decays});
    }
  };
  {
    // GPT-2 (the defaults): V 259 → 320 rows, T 256, C 256, H 1024, L 2 here.
    model::gpt_config c;
    c.n_layer = 2;
    const index_t C = 256, V = 320, H = 1024;
    std::vector<row> want = {{"wte.weight", shape{V, C}, true},
                             {"wpe.weight", shape{256, C}, true}};
    blocks(want, 2,
           {{"ln_1.weight", shape{C}, false},
            {"ln_1.bias", shape{C}, false},
            {"attn.c_attn.weight", shape{3 * C, C}, true},
            {"attn.c_attn.bias", shape{3 * C}, false},
            {"attn.c_proj.weight", shape{C, C}, true},
            {"attn.c_proj.bias", shape{C}, false},
            {"ln_2.weight", shape{C}, false},
            {"ln_2.bias", shape{C}, false},
            {"mlp.c_fc.weight", shape{H, C}, true},
            {"mlp.c_fc.bias", shape{H}, false},
            {"mlp.c_proj.weight", shape{C, H}, true},
            {"mlp.c_proj.bias", shape{C}, false}});
    want.push_back({"ln_f.weight", shape{C}, false});
    want.push_back({"ln_f.bias", shape{C}, false});
    check_table(model::gpt_param_table(c), want);
    // The documented sizes of the presets.
    CHECK(model::gpt_num_params(model::gpt_config::tiny()) == 437760);
    CHECK(model::gpt_num_params(model::gpt_config::small()) == 3257856);
    CHECK(model::gpt_num_params(model::gpt_config::gpt2_124m()) == 124475904);
    // GPT-2's config: every block option at GPT-2's value.
    const model::gpt_config d;
    CHECK(d.kv_heads() == d.n_head);
    CHECK(d.qkv_width() == 3 * d.n_embd);
    CHECK(d.fc_width() == 4 * d.n_embd);
    CHECK(d.has_learned_positions());
  }
  {
    // Llama: C 8, NH 2 over NKV 1 (kv_width 4), H 12, V 18 → 20 rows; no wpe, no norm biases,
    // c_attn (8 + 2·4, 8) with its bias, c_fc (2·12, 8), no projection biases, lm_head.
    const auto c = llama_tiny(0);
    const index_t C = 8, V = 20, H = 12, QKV = C + 2 * 4;
    CHECK(c.kv_width() == 4);
    CHECK(c.qkv_width() == QKV);
    CHECK(c.fc_width() == 2 * H);
    std::vector<row> want = {{"wte.weight", shape{V, C}, true}};
    blocks(want, 2,
           {{"ln_1.weight", shape{C}, false},
            {"attn.c_attn.weight", shape{QKV, C}, true},
            {"attn.c_attn.bias", shape{QKV}, false},
            {"attn.c_proj.weight", shape{C, C}, true},
            {"ln_2.weight", shape{C}, false},
            {"mlp.c_fc.weight", shape{2 * H, C}, true},
            {"mlp.c_proj.weight", shape{C, H}, true}});
    want.push_back({"ln_f.weight", shape{C}, false});
    want.push_back({"lm_head.weight", shape{V, C}, true});
    const auto t = model::gpt_param_table(c);
    check_table(t, want);
    for (const auto& p : t) {
      CHECK(p.name != "wpe.weight");
      CHECK_FALSE((p.name.find("ln_") != std::string::npos && p.name.ends_with(".bias")));
    }
    // qkv_bias off too: no bias at all; the MHA variant (n_kv_head = n_head) has 3C rows.
    auto nb = c;
    nb.qkv_bias = false;
    for (const auto& p : model::gpt_param_table(nb)) CHECK_FALSE(p.name.ends_with(".bias"));
    auto mha = c;
    mha.n_kv_head = 0;
    CHECK(model::find_param(model::gpt_param_table(mha), "h.1.attn.c_attn.weight").dims ==
          shape{3 * C, C});
  }
}

}  // namespace test_gpt_golden_cases
