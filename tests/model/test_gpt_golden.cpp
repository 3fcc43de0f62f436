// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Golden test in llm.c's manner: the whole GPT (rlhf/model/gpt.hpp) against a PyTorch model
// built from the same config semantics (tools/reference/gpt.py): logits and loss to 1e-4
// relative, every parameter gradient to 1e-3 of its tensor's scale, and the losses of 10
// AdamW steps to 1e-4, for two configs (vocab not a multiple of 64, T not a power of two,
// tied and untied LM head).
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "fixture.hpp"
#include "rlhf/losses/sft.hpp"
#include "rlhf/model/checkpoint.hpp"
#include "rlhf/model/gpt.hpp"
#include "rlhf/model/optim.hpp"
#include "rlhf/model/safetensors.hpp"

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
