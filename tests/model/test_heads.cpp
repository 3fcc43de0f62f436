// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Value and reward heads (rlhf/model/heads.hpp): finite differences of both backwards, the
// reward head reading exactly the last non-padding token (left and right padding), bad
// input, and carrying a head's gradient through a shared trunk or a separate critic.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "random_data.hpp"
#include "rlhf/core/philox.hpp"
#include "rlhf/model/heads.hpp"
#include "rlhf/model/tokenizer.hpp"

namespace test_heads_cases {

using namespace rlhf_test;
namespace model = rlhf::model;
using rlhf::index_t;
using rlhf::shape;

namespace {

std::vector<float> philox_randn(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = scale * rlhf::philox_normal(seed, 1, 0, i);
  return v;
}

template <class B>
std::vector<std::int32_t> host_ids(const typename B::index_tensor& t) {
  return rlhf::ops::to_host<B>(t);
}

}  // namespace

TEST_CASE_TEMPLATE("value head: forward and finite-difference backward", B, RLHF_TEST_BACKENDS) {
  const index_t Bn = 2, T = 3, C = 5;
  auto head = model::make_value_head<B>(C);
  head.init(3, 0.5f);
  {
    auto p = host<B>(head.params());
    p[static_cast<std::size_t>(C)] = 0.25f;  // a nonzero bias
    rlhf::ops::copy_from_host<B>(std::span<const float>(p), head.params());
  }
  const auto hx = philox_randn(static_cast<std::size_t>(Bn * T * C), 5);
  const auto wv = philox_randn(static_cast<std::size_t>(Bn * T), 6);  // L = Σ wv ⊙ values
  auto h = make<B>(hx, shape{Bn, T, C});
  typename B::tensor values(shape{Bn, T});
  model::value_head_forward<B>(values, h, head.weight(), head.bias());
  const auto v = host<B>(values);
  const auto w = host<B>(head.params());
  for (index_t r = 0; r < Bn * T; ++r) {
    double s = w[static_cast<std::size_t>(C)];
    for (index_t c = 0; c < C; ++c) s += static_cast<double>(hx[static_cast<std::size_t>(r * C + c)]) * w[static_cast<std::size_t>(c)];
    CHECK(v[static_cast<std::size_t>(r)] == doctest::Approx(s).epsilon(1e-6));
  }

  typename B::tensor dh(shape{Bn, T, C});
  rlhf::ops::fill<B>(dh, 0.0f);
  head.zero_grads();
  const auto dv = make<B>(wv, shape{Bn, T});
  model::value_head_backward<B>(&dh, head.dweight(), head.dbias(), dv, h, head.weight());

  auto loss_h = [&](const std::vector<float>& x) {
    auto hh = make<B>(x, shape{Bn, T, C});
    typename B::tensor out(shape{Bn, T});
    model::value_head_forward<B>(out, hh, head.weight(), head.bias());
    return dot(host<B>(out), wv);
  };
  check_gradient_fd(loss_h, hx, host<B>(dh), "value head dh");
  auto loss_p = [&](const std::vector<float>& p) {
    auto arena = make<B>(p, shape{C + 1});
    typename B::tensor out(shape{Bn, T});
    model::value_head_forward<B>(out, h, model::param_view<B>{&arena, 0},
                                 model::param_view<B>{&arena, C});
    return dot(host<B>(out), wv);
  };
  check_gradient_fd(loss_p, w, host<B>(head.grads()), "value head dweight, dbias");

  // Backward accumulates: a second call doubles everything.
  const auto g1 = host<B>(head.grads());
  const auto dh1 = host<B>(dh);
  model::value_head_backward<B>(&dh, head.dweight(), head.dbias(), dv, h, head.weight());
  const auto g2 = host<B>(head.grads());
  const auto dh2 = host<B>(dh);
  for (std::size_t i = 0; i < g1.size(); ++i) CHECK(g2[i] == doctest::Approx(2.0 * g1[i]));
  for (std::size_t i = 0; i < dh1.size(); ++i) CHECK(dh2[i] == doctest::Approx(2.0 * dh1[i]));

  // Shapes.
  typename B::tensor bad(shape{Bn, T + 1});
  CHECK_THROWS_WITH_AS(model::value_head_forward<B>(bad, h, head.weight(), head.bias()),
                       "value_head_forward: values has shape (2, 4), expected (2, 3) ((B, T) of h)",
                       rlhf::shape_error);
  auto small = model::make_value_head<B>(C - 2);
  CHECK_THROWS_AS(model::value_head_forward<B>(values, h, small.weight(), small.bias()),
                  rlhf::shape_error);
  // A frozen head has no gradient arena.
  auto frozen = model::make_value_head<B>(C, false);
  CHECK_FALSE(frozen.trainable());
  CHECK_FALSE(frozen.dweight().present());
  CHECK(frozen.table()[0].name == "v_head.weight");
  CHECK(frozen.table()[0].dims == shape{1, C});
  CHECK(frozen.table()[1].name == "v_head.bias");
}

TEST_CASE_TEMPLATE("reward head reads the last non-padding token", B, RLHF_TEST_BACKENDS) {
  const std::vector<std::vector<std::int32_t>> seqs = {{5, 6, 7}, {1}, {2, 3, 4, 5, 6}, {9, 9}};
  const index_t C = 4;
  auto head = model::make_reward_head<B>(C);
  head.init(9, 0.7f);
  for (auto side : {model::padding_side::right, model::padding_side::left}) {
    CAPTURE(side == model::padding_side::left);
    const auto pb = model::pad_batch(std::span<const std::vector<std::int32_t>>(seqs), 0, side);
    const index_t Bn = pb.rows, T = pb.cols;
    const auto hx = philox_randn(static_cast<std::size_t>(Bn * T * C), 17);
    auto h = make<B>(hx, shape{Bn, T, C});
    const auto mask = make<B>(pb.attention_mask, pb.shape());
    typename B::tensor rewards(shape{Bn});
    typename B::index_tensor last(shape{Bn});
    model::reward_head_forward<B>(rewards, last, h, mask, head.weight(), head.bias());
    const auto idx = host_ids<B>(last);
    // The value head at every position: the reward is bit-identical to it at last[b].
    typename B::tensor values(shape{Bn, T});
    model::value_head_forward<B>(values, h, head.weight(), head.bias());
    const auto v = host<B>(values);
    const auto r = host<B>(rewards);
    for (index_t b = 0; b < Bn; ++b) {
      CAPTURE(b);
      CHECK(idx[static_cast<std::size_t>(b)] == pb.last_token(b));
      CHECK(r[static_cast<std::size_t>(b)] ==
            v[static_cast<std::size_t>(b * T + pb.last_token(b))]);
    }
    // Changing h anywhere but at the last tokens leaves the rewards bit-identical.
    auto hx2 = hx;
    for (index_t b = 0; b < Bn; ++b) {
      for (index_t t = 0; t < T; ++t) {
        if (t == pb.last_token(b)) continue;
        for (index_t c = 0; c < C; ++c) hx2[static_cast<std::size_t>((b * T + t) * C + c)] += 3.0f;
      }
    }
    auto h2 = make<B>(hx2, shape{Bn, T, C});
    typename B::tensor rewards2(shape{Bn});
    model::reward_head_forward<B>(rewards2, last, h2, mask, head.weight(), head.bias());
    const auto r2 = host<B>(rewards2);
    CHECK(std::memcmp(r.data(), r2.data(), r.size() * sizeof(float)) == 0);

    // Finite differences of L = Σ wr ⊙ rewards w.r.t. h and the head's parameters.
    const auto wr = philox_randn(static_cast<std::size_t>(Bn), 23);
    const auto dr = make<B>(wr, shape{Bn});
    typename B::tensor dh(shape{Bn, T, C});
    rlhf::ops::fill<B>(dh, 0.0f);
    head.zero_grads();
    model::reward_head_backward<B>(&dh, head.dweight(), head.dbias(), dr, h, last, head.weight());
    auto loss_h = [&](const std::vector<float>& x) {
      auto hh = make<B>(x, shape{Bn, T, C});
      typename B::tensor out(shape{Bn});
      typename B::index_tensor li(shape{Bn});
      model::reward_head_forward<B>(out, li, hh, mask, head.weight(), head.bias());
      return dot(host<B>(out), wr);
    };
    const auto dhh = host<B>(dh);
    check_gradient_fd(loss_h, hx, dhh, "reward head dh");
    // Exactly zero away from the last tokens.
    for (index_t b = 0; b < Bn; ++b) {
      for (index_t t = 0; t < T; ++t) {
        if (t == pb.last_token(b)) continue;
        for (index_t c = 0; c < C; ++c) CHECK(dhh[static_cast<std::size_t>((b * T + t) * C + c)] == 0.0f);
      }
    }
    auto loss_p = [&](const std::vector<float>& p) {
      auto arena = make<B>(p, shape{C + 1});
      typename B::tensor out(shape{Bn});
      typename B::index_tensor li(shape{Bn});
      model::reward_head_forward<B>(out, li, h, mask, model::param_view<B>{&arena, 0},
                                    model::param_view<B>{&arena, C});
      return dot(host<B>(out), wr);
    };
    check_gradient_fd(loss_p, host<B>(head.params()), host<B>(head.grads()),
                      "reward head dweight, dbias");
  }
  // A hole in the mask: the last nonzero entry counts.
  {
    const index_t Bn = 1, T = 4;
    auto h = make<B>(philox_randn(static_cast<std::size_t>(Bn * T * C), 2), shape{Bn, T, C});
    const auto mask = make<B>({1.0f, 0.0f, 1.0f, 0.0f}, shape{Bn, T});
    typename B::tensor rewards(shape{Bn});
    typename B::index_tensor last(shape{Bn});
    model::reward_head_forward<B>(rewards, last, h, mask, head.weight(), head.bias());
    CHECK(host_ids<B>(last)[0] == 2);
  }
}

TEST_CASE_TEMPLATE("reward head bad input", B, RLHF_TEST_BACKENDS) {
  const index_t Bn = 3, T = 4, C = 2;
  auto head = model::make_reward_head<B>(C);
  auto h = make<B>(philox_randn(static_cast<std::size_t>(Bn * T * C), 1), shape{Bn, T, C});
  typename B::tensor rewards(shape{Bn});
  typename B::index_tensor last(shape{Bn});
  const auto mask = make<B>({1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}, shape{Bn, T});
  CHECK_THROWS_WITH_AS(
      model::reward_head_forward<B>(rewards, last, h, mask, head.weight(), head.bias()),
      "reward_head_forward: attention_mask row 1 has no non-padding token (all zeros): no "
      "position to read the reward at",
      rlhf::data_error);
  const auto bad_mask = make<B>(std::vector<float>(static_cast<std::size_t>(Bn * (T + 1)), 1.0f),
                                shape{Bn, T + 1});
  CHECK_THROWS_AS(
      model::reward_head_forward<B>(rewards, last, h, bad_mask, head.weight(), head.bias()),
      rlhf::shape_error);
  typename B::tensor bad_rewards(shape{Bn + 1});
  const auto ok_mask = make<B>(std::vector<float>(static_cast<std::size_t>(Bn * T), 1.0f),
                               shape{Bn, T});
  CHECK_THROWS_AS(
      model::reward_head_forward<B>(bad_rewards, last, h, ok_mask, head.weight(), head.bias()),
      rlhf::shape_error);
  CHECK(head.table()[0].name == "score.weight");
  CHECK_THROWS_AS(model::make_reward_head<B>(0), rlhf::config_error);
}

TEST_CASE_TEMPLATE("heads on a shared trunk and on a separate critic", B, RLHF_TEST_BACKENDS) {
  model::gpt_config cfg;
  cfg.vocab_size = 11;
  cfg.vocab_multiple = 1;
  cfg.max_seq_len = 4;
  cfg.n_layer = 1;
  cfg.n_head = 2;
  cfg.n_embd = 4;
  const index_t Bn = 2, T = 3, C = cfg.n_embd;
  const std::vector<std::int32_t> ids{1, 2, 3, 4, 5, 6};
  const auto tokens = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{Bn, T});
  const auto wv = philox_randn(static_cast<std::size_t>(Bn * T), 31);
  const auto wl = philox_randn(static_cast<std::size_t>(Bn * T * cfg.vocab_size), 32, 0.1f);

  model::gpt<B> policy(cfg);
  // O(1) weights rather than GPT-2's 0.02: with C = 4 the LayerNorms of a 0.02-scale
  // residual stream amplify by ~50, and a 1e-2 finite-difference step would not be small.
  {
    const auto p = philox_randn(static_cast<std::size_t>(policy.num_params()), 41, 0.5f);
    rlhf::ops::copy_from_host<B>(std::span<const float>(p), policy.params());
  }
  auto vhead = model::make_value_head<B>(C);
  vhead.init(2, 0.5f);
  model::gpt_activations<B> acts(cfg, Bn, T);

  // L = Σ wl ⊙ logits + Σ wv ⊙ values (shared trunk).
  auto loss = [&](model::gpt<B>& m, bool with_logits) {
    model::gpt_forward<B>(m, acts, tokens);
    typename B::tensor values(shape{Bn, T});
    model::value_head_forward<B>(values, acts.lnf, vhead.weight(), vhead.bias());
    double l = dot(host<B>(values), wv);
    if (with_logits) l += dot(host<B>(acts.logits), wl);
    return l;
  };
  for (bool with_logits : {true, false}) {
    CAPTURE(with_logits);
    (void)loss(policy, with_logits);
    typename B::tensor dh(acts.lnf.shape());
    rlhf::ops::fill<B>(dh, 0.0f);
    const auto dv = make<B>(wv, shape{Bn, T});
    vhead.zero_grads();
    model::value_head_backward<B>(&dh, vhead.dweight(), vhead.dbias(), dv, acts.lnf,
                                  vhead.weight());
    const auto dl = make<B>(wl, acts.logits.shape());
    policy.zero_grads();
    model::gpt_backward<B>(policy, acts, tokens, with_logits ? &dl : nullptr, &dh);
    const auto analytic = host<B>(policy.grads());
    auto f = [&](const std::vector<float>& p) {
      rlhf::ops::copy_from_host<B>(std::span<const float>(p), policy.params());
      return loss(policy, with_logits);
    };
    const auto p0 = host<B>(policy.params());
    // Every trunk parameter (the model is tiny): gradients at wrong offsets show up too.
    check_gradient_fd(f, p0, analytic, "trunk gradient through the value head");

    rlhf::ops::copy_from_host<B>(std::span<const float>(p0), policy.params());
  }

  // dhidden = 0 is exactly gpt_backward.
  {
    (void)loss(policy, true);
    const auto dl = make<B>(wl, acts.logits.shape());
    policy.zero_grads();
    model::gpt_backward<B>(policy, acts, tokens, dl);
    const auto ref = host<B>(policy.grads());
    typename B::tensor zero(acts.lnf.shape());
    rlhf::ops::fill<B>(zero, 0.0f);
    policy.zero_grads();
    model::gpt_backward<B>(policy, acts, tokens, &dl, &zero);
    const auto got = host<B>(policy.grads());
    CHECK(std::memcmp(ref.data(), got.data(), ref.size() * sizeof(float)) == 0);
  }

  // A separate critic: its own gpt and head; the policy's gradients stay untouched.
  {
    model::gpt<B> critic(cfg);
    critic.init(77);
    model::gpt_activations<B> cacts(cfg, Bn, T);
    policy.zero_grads();
    model::gpt_forward<B>(critic, cacts, tokens);
    typename B::tensor values(shape{Bn, T});
    model::value_head_forward<B>(values, cacts.lnf, vhead.weight(), vhead.bias());
    typename B::tensor dh(cacts.lnf.shape());
    rlhf::ops::fill<B>(dh, 0.0f);
    model::value_head_backward<B>(&dh, vhead.dweight(), vhead.dbias(), make<B>(wv, shape{Bn, T}),
                                  cacts.lnf, vhead.weight());
    critic.zero_grads();
    model::gpt_backward<B>(critic, cacts, tokens, nullptr, &dh);
    const auto pg = host<B>(policy.grads());
    for (float g : pg) REQUIRE(g == 0.0f);
    double norm = 0.0;
    for (float g : host<B>(critic.grads())) norm += static_cast<double>(g) * g;
    CHECK(norm > 0.0);
    model::gpt<B> frozen(cfg, false);
    CHECK_THROWS_AS(model::gpt_backward<B>(frozen, cacts, tokens, nullptr, &dh),
                    rlhf::config_error);
  }
}

}  // namespace test_heads_cases
