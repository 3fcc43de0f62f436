// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Hugging Face GPT-2 checkpoints (rlhf/model/hf_gpt2.hpp) against `transformers` itself
// (tools/reference/hf_gpt2.py): the folders save_pretrained wrote load into the bundled
// model, whose float32 logits match GPT2LMHeadModel's to 1e-5 relative + 1e-6 absolute
// (float32 round-off of two summation orders; measured worst 1.2e-7 absolute on logits of
// magnitude ~1, OpenBLAS on AVX2) and whose loss matches to
// 1e-5 relative; the BF16 copy loads to the BF16-rounded weights, the 2-shard copy to the
// same bits; save -> load is bit-exact and writes save_pretrained's names and shapes; and
// every unsupported config field or malformed folder is an error naming it. Eigen backend.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "fixture.hpp"
#include "rlhf/backends/eigen.hpp"
#include "rlhf/losses/sft.hpp"
#include "rlhf/model/hf_gpt2.hpp"
#include "skip.hpp"
#include "temp_folder.hpp"

namespace test_hf_gpt2_cases {

using namespace rlhf_test;
namespace model = rlhf::model;
namespace fs = std::filesystem;
using B = rlhf::eigen_backend;
using rlhf::index_t;
using rlhf::shape;

namespace {

const fs::path fixture_dir = fs::path(RLHF_FIXTURE_DIR) / "hf_gpt2_tiny";

/// An F32 named_tensor.
model::named_tensor nt(std::string name, shape s, std::vector<float> data) {
  model::named_tensor t;
  t.name = std::move(name);
  t.shape = s;
  t.data = std::move(data);
  return t;
}

std::vector<float> arena(const model::gpt<B>& m) { return host<B>(m.params()); }

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// A copy of the F32 fixture folder in `dst`.
void copy_fixture(const fs::path& dst) {
  fs::copy(fixture_dir / "f32", dst,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

/// Next-token cross-entropy, mean over the B·(T-1) predicted positions (HF's labels=ids).
float next_token_loss(const B::tensor& logits, const B::index_tensor& ids) {
  const index_t b = logits.shape()[0], t = logits.shape()[1];
  B::tensor ones(shape{b, t}), dlogits(logits.shape());
  rlhf::ops::fill<B>(ones, 1.0f);
  rlhf::losses::sft_config cfg;
  cfg.compute_entropy = false;
  return rlhf::losses::sft_loss<B>({logits, ids, ones}, dlogits, cfg).loss;
}

}  // namespace

TEST_CASE("hf_gpt2: GPT2LMHeadModel's float32 logits and loss") {
  const auto m = model::load_hf_gpt2<B>(fixture_dir / "f32");
  const auto& cfg = m.config();
  CHECK(cfg.vocab_size == 300);
  CHECK(cfg.padded_vocab_size() == 320);
  CHECK(cfg.max_seq_len == 32);
  CHECK(cfg.n_layer == 2);
  CHECK(cfg.n_head == 2);
  CHECK(cfg.n_embd == 32);
  CHECK(cfg.mlp_ratio == 4);
  CHECK(cfg.tie_embeddings);
  CHECK(cfg.dropout == 0.1f);
  CHECK(cfg.layernorm_eps == 1e-5f);
  // The padded embedding rows are zero.
  const auto w = arena(m);
  const auto& wte = model::find_param(m.table(), "wte.weight");
  for (index_t i = cfg.vocab_size * cfg.n_embd; i < wte.size(); ++i) {
    REQUIRE(w[static_cast<std::size_t>(wte.offset + i)] == 0.0f);
  }

  for (const auto& c : load_fixture("hf_gpt2.json")) {
    const std::string case_name = c.name();
    CAPTURE(case_name);
    const auto ids = c.index_tensor<B>("input_ids");
    model::gpt_activations<B> acts(cfg, ids.shape()[0], ids.shape()[1]);
    acts.train = false;  // eval mode, as the reference: no dropout
    model::gpt_forward<B>(m, acts, ids);
    const auto got = host<B>(acts.logits);
    const auto want = c.output("logits");
    double worst = 0.0;
    for (std::size_t i = 0; i < got.size() && i < want.size(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
    }
    MESSAGE(case_name << ": max |logit - transformers'| = " << worst);
    check_close(got, want, "logits", 1e-5, 1e-6);
    check_close(next_token_loss(acts.logits, ids), c.output_scalar("loss"), "loss", 1e-5, 0.0);
  }
}

TEST_CASE("hf_gpt2: the BF16 copy loads to the BF16-rounded weights") {
  const auto f32 = arena(model::load_hf_gpt2<B>(fixture_dir / "f32"));
  const auto bf16 = arena(model::load_hf_gpt2<B>(fixture_dir / "bf16"));
  REQUIRE(f32.size() == bf16.size());
  std::size_t changed = 0;
  for (std::size_t i = 0; i < f32.size(); ++i) {
    const float r = model::bf16_to_float(model::float_to_bf16(f32[i]));
    REQUIRE(std::memcmp(&r, &bf16[i], sizeof r) == 0);
    changed += r != f32[i];
  }
  CHECK(changed > f32.size() / 2);  // the copy really is rounded
}

TEST_CASE("hf_gpt2: the sharded copy equals the single file") {
  CHECK(same_bits(arena(model::load_hf_gpt2<B>(fixture_dir / "f32")),
                  arena(model::load_hf_gpt2<B>(fixture_dir / "sharded"))));
  // A model of the folder's config is filled in place (frozen, another vocab_multiple).
  model::gpt_config cfg = model::load_hf_gpt2_config(fixture_dir / "sharded");
  cfg.vocab_multiple = 128;
  model::gpt<B> m(cfg, false);
  model::load_hf_gpt2(fixture_dir / "sharded", m);
  const auto w = arena(m);
  const auto ref = arena(model::load_hf_gpt2<B>(fixture_dir / "f32", false, 128));
  CHECK(same_bits(w, ref));
  // ...but not one of another shape.
  model::gpt_config other = cfg;
  other.n_layer = 3;
  model::gpt<B> m3(other, false);
  CHECK_THROWS_WITH_AS(model::load_hf_gpt2(fixture_dir / "f32", m3),
                       doctest::Contains("config.json differs from the model's config in "
                                         "n_layer (folder 2, model 3)"),
                       rlhf::config_error);
}

TEST_CASE("hf_gpt2: save -> load is bit-exact, with save_pretrained's names and shapes") {
  const auto m = model::load_hf_gpt2<B>(fixture_dir / "f32");
  const auto w = arena(m);
  const auto names_shapes = [](const fs::path& file) {
    std::vector<std::tuple<std::string, std::string, std::string>> out;
    for (const auto& t : model::load_safetensors(file).tensors) {
      out.emplace_back(t.name, t.shape.str(), std::string(model::to_string(t.dtype)));
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  for (const auto dtype :
       {model::tensor_dtype::f32, model::tensor_dtype::bf16, model::tensor_dtype::f16}) {
    CAPTURE(model::to_string(dtype));
    temp_folder tmp;
    model::save_hf_gpt2(m, tmp.path, dtype);
    const auto back = model::load_hf_gpt2<B>(tmp.path);
    CHECK(back.config() == m.config());
    const auto got = arena(back);
    REQUIRE(got.size() == w.size());
    for (std::size_t i = 0; i < w.size(); ++i) {
      const float want = dtype == model::tensor_dtype::f32 ? w[i]
                         : dtype == model::tensor_dtype::bf16
                             ? model::bf16_to_float(model::float_to_bf16(w[i]))
                             : model::f16_to_float(model::float_to_f16(w[i]));
      REQUIRE(std::memcmp(&want, &got[i], sizeof want) == 0);
    }
    const auto meta = model::load_safetensors(tmp.path / "model.safetensors").metadata;
    CHECK(meta == model::metadata_map{{"format", "pt"}});
    const auto cj = read_json(tmp.path / "config.json");
    CHECK(cj.at("model_type") == "gpt2");
    CHECK(cj.at("architectures") == nlohmann::json::array({"GPT2LMHeadModel"}));
    CHECK(cj.at("attn_pdrop") == 0.1);
    if (dtype != model::tensor_dtype::f16) {
      const auto ref = names_shapes(
          fixture_dir / (dtype == model::tensor_dtype::f32 ? "f32" : "bf16") / "model.safetensors");
      CHECK(names_shapes(tmp.path / "model.safetensors") == ref);
    }
  }

  // Untied: lm_head.weight (vocab_size rows, no prefix), and back.
  model::gpt_config cfg = m.config();
  cfg.tie_embeddings = false;
  model::gpt<B> u(cfg, false);
  u.init(3);
  temp_folder tmp;
  model::save_hf_gpt2(u, tmp.path);
  const auto f = model::load_safetensors(tmp.path / "model.safetensors");
  REQUIRE(f.find("lm_head.weight") != nullptr);
  CHECK(f.find("lm_head.weight")->shape == shape{300, 32});
  CHECK(read_json(tmp.path / "config.json").at("tie_word_embeddings") == false);
  CHECK(same_bits(arena(model::load_hf_gpt2<B>(tmp.path)), arena(u)));
  CHECK_THROWS_AS(model::save_hf_gpt2(u, tmp.path, model::tensor_dtype::i32), rlhf::config_error);
}

TEST_CASE("hf_gpt2_config: every field the bundled model cannot compute is named") {
  const auto base = read_json(fixture_dir / "f32" / "config.json");
  CHECK(model::hf_gpt2_config(base, "x").vocab_size == 300);
  const auto fails = [&](const char* field, const nlohmann::json& value, const char* text) {
    CAPTURE(field);
    auto j = base;
    j[field] = value;
    const std::string want = std::string("hf_gpt2_config: cfg.json: field '") + field + "' " + text;
    CHECK_THROWS_WITH_AS((void)model::hf_gpt2_config(j, "cfg.json"),
                         doctest::Contains(want.c_str()), rlhf::config_error);
  };
  fails("activation_function", "relu", "must be \"gelu_new\" or \"gelu_pytorch_tanh\"");
  fails("activation_function", "gelu", "must be \"gelu_new\"");
  fails("n_inner", 100, "must be null or a multiple of n_embd = 32");
  fails("scale_attn_by_inverse_layer_idx", true, "must be false");
  fails("scale_attn_weights", false, "must be true");
  fails("add_cross_attention", true, "must be false");
  fails("model_type", "llama", "must be \"gpt2\"");
  fails("architectures", nlohmann::json::array({"GPT2ForSequenceClassification"}),
        "must list GPT2LMHeadModel or GPT2Model");
  fails("attn_pdrop", 0.2, "must equal resid_pdrop");
  fails("embd_pdrop", 0.0, "must equal resid_pdrop");
  fails("n_embd", "32", "must be an integer");
  fails("n_layer", -1, "must be in [1, ");
  fails("tie_word_embeddings", "yes", "must be true or false");
  fails("layer_norm_epsilon", "small", "must be a number");
  // Accepted: the other tanh GELU spelling, an n_inner of 8·n_embd, reorder_and_upcast_attn.
  auto j = base;
  j["activation_function"] = "gelu_pytorch_tanh";
  j["n_inner"] = 256;
  j["reorder_and_upcast_attn"] = true;
  const auto c = model::hf_gpt2_config(j, "x");
  CHECK(c.mlp_ratio == 8);
  // gpt_config's own limits still apply (n_head must divide n_embd).
  j["n_head"] = 5;
  CHECK_THROWS_AS((void)model::hf_gpt2_config(j, "x"), rlhf::config_error);
}

TEST_CASE("load_hf_gpt2: missing, extra and mismatched tensors are io_errors naming them") {
  const auto src = model::load_safetensors(fixture_dir / "f32" / "model.safetensors");
  const auto with = [&](const fs::path& dir, auto edit) {
    std::vector<model::named_tensor> ts = src.tensors;
    edit(ts);
    model::save_safetensors(dir / "model.safetensors", std::span<const model::named_tensor>(ts));
  };
  const auto load_fails = [](const fs::path& dir, const std::string& text) {
    CHECK_THROWS_WITH_AS((void)model::load_hf_gpt2<B>(dir), doctest::Contains(text.c_str()),
                         rlhf::io_error);
  };
  temp_folder tmp;
  copy_fixture(tmp.path);

  with(tmp.path, [](auto& ts) {
    std::erase_if(ts, [](auto& t) { return t.name == "transformer.ln_f.bias"; });
  });
  load_fails(tmp.path, "tensor 'ln_f.bias' is missing");

  with(tmp.path, [](auto& ts) { ts.push_back(nt("transformer.h.0.extra", shape{2}, {1, 2})); });
  load_fails(tmp.path, "tensor 'transformer.h.0.extra' is not a parameter of GPT2LMHeadModel");

  with(tmp.path, [](auto& ts) {
    for (auto& t : ts) {
      if (t.name == "transformer.wpe.weight") t.shape = shape{16, 64};
    }
  });
  load_fails(tmp.path, "tensor 'transformer.wpe.weight' has shape (16, 64), expected (32, 32)");

  // Names without the prefix, the mask buffers of old checkpoints, a tied head equal to wte.
  with(tmp.path, [](auto& ts) {
    std::vector<model::named_tensor> extra;
    for (auto& t : ts) {
      t.name = t.name.substr(std::string("transformer.").size());
      if (t.name == "wte.weight") extra.push_back(nt("lm_head.weight", t.shape, t.data));
    }
    extra.push_back(nt("h.1.attn.bias", shape{1, 1, 4, 4}, std::vector<float>(16, 1.0f)));
    extra.push_back(nt("h.1.attn.masked_bias", shape{1}, {-1e4f}));
    ts.insert(ts.end(), extra.begin(), extra.end());
  });
  CHECK(same_bits(arena(model::load_hf_gpt2<B>(tmp.path)),
                  arena(model::load_hf_gpt2<B>(fixture_dir / "f32"))));

  // A tied head that differs from wte.
  with(tmp.path, [](auto& ts) {
    for (auto& t : ts) {
      if (t.name == "transformer.wte.weight") {
        auto head = t;
        head.name = "lm_head.weight";
        head.data[5] += 1.0f;
        ts.push_back(head);
        break;
      }
    }
  });
  load_fails(tmp.path, "tensor 'lm_head.weight' differs from wte.weight");

  // Both spellings of one name.
  with(tmp.path,
       [](auto& ts) { ts.push_back(nt("ln_f.bias", shape{32}, std::vector<float>(32))); });
  load_fails(tmp.path, "appears twice");

  // An untied config needs lm_head.weight.
  with(tmp.path, [](auto&) {});
  auto cj = read_json(tmp.path / "config.json");
  cj["tie_word_embeddings"] = false;
  write_json(tmp.path / "config.json", cj);
  load_fails(tmp.path, "tensor 'lm_head.weight' is missing");

  // No weights at all; no config.
  temp_folder empty;
  fs::copy_file(fixture_dir / "f32" / "config.json", empty.path / "config.json");
  load_fails(empty.path, "neither model.safetensors nor model.safetensors.index.json");
  temp_folder none;
  load_fails(none.path, "config.json: no such file");
}

TEST_CASE("load_hf_gpt2: a sharded index that does not match its shards") {
  temp_folder tmp;
  fs::copy(fixture_dir / "sharded", tmp.path,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  auto index = read_json(tmp.path / "model.safetensors.index.json");
  auto& wm = index.at("weight_map");
  const std::string shard = wm.at("transformer.ln_f.bias");
  const auto load_fails = [&](const std::string& text) {
    CHECK_THROWS_WITH_AS((void)model::load_hf_gpt2<B>(tmp.path), doctest::Contains(text.c_str()),
                         rlhf::io_error);
  };
  auto j = index;
  j["weight_map"]["transformer.h.9.mlp.c_fc.bias"] = shard;
  write_json(tmp.path / "model.safetensors.index.json", j);
  load_fails("tensor 'transformer.h.9.mlp.c_fc.bias' is missing");

  j = index;
  j["weight_map"].erase("transformer.ln_f.bias");
  write_json(tmp.path / "model.safetensors.index.json", j);
  load_fails("tensor 'transformer.ln_f.bias' is not mapped to this shard");

  j = index;
  j["weight_map"]["transformer.ln_f.bias"] = "../escape.safetensors";
  write_json(tmp.path / "model.safetensors.index.json", j);
  load_fails("which is not a file name in the folder");
}

TEST_CASE("bf16 and f16 conversions") {
  CHECK(model::f16_to_float(0x3c00) == 1.0f);
  CHECK(model::f16_to_float(0xc000) == -2.0f);
  CHECK(model::f16_to_float(0x7bff) == 65504.0f);
  CHECK(model::f16_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(model::f16_to_float(0x03ff) == std::ldexp(1023.0f, -24));
  CHECK(model::f16_to_float(0x0400) == std::ldexp(1.0f, -14));  // smallest normal
  CHECK(std::signbit(model::f16_to_float(0x8000)));
  CHECK(model::f16_to_float(0x7c00) == INFINITY);
  CHECK(model::f16_to_float(0xfc00) == -INFINITY);
  CHECK(std::isnan(model::f16_to_float(0x7e00)));
  CHECK(std::isnan(model::f16_to_float(0x7c01)));
  // Every binary16 value survives float and back; NaNs stay NaNs.
  for (std::uint32_t h = 0; h < 0x10000u; ++h) {
    const auto b = static_cast<std::uint16_t>(h);
    const float x = model::f16_to_float(b);
    if (std::isnan(x)) {
      REQUIRE(std::isnan(model::f16_to_float(model::float_to_f16(x))));
    } else {
      REQUIRE(model::float_to_f16(x) == b);
    }
    const float y = model::bf16_to_float(b);
    if (std::isnan(y)) {
      REQUIRE(std::isnan(model::bf16_to_float(model::float_to_bf16(y))));
    } else {
      REQUIRE(model::float_to_bf16(y) == b);
    }
  }
  // Round to nearest, ties to even; overflow and underflow.
  CHECK(model::float_to_f16(65519.0f) == 0x7bff);
  CHECK(model::float_to_f16(65520.0f) == 0x7c00);
  CHECK(model::float_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);      // tie -> even
  CHECK(model::float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);  // tie -> even
  CHECK(model::float_to_f16(std::ldexp(1.0f, -25)) == 0x0000);             // tie -> 0
  CHECK(model::float_to_f16(std::ldexp(1.5f, -25)) == 0x0001);
  CHECK(model::float_to_f16(std::ldexp(1.0f, -40)) == 0x0000);
  CHECK(model::float_to_f16(-std::ldexp(1.0f, -40)) == 0x8000);
  CHECK(model::float_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);  // tie -> even
  CHECK(model::float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3f82);
  CHECK(model::float_to_bf16(3.4e38f) == 0x7f80);  // rounds past the largest bf16: inf
}

// The folders save_hf_gpt2 writes load in transformers' GPT2LMHeadModel.from_pretrained,
// every weight from the file, and compute our logits (tools/reference/checks/hf_model_check.py,
// run with RLHF_TOOLS_PYTHON when it has transformers).
TEST_CASE("save_hf_gpt2: the folder loads in transformers and computes our logits") {
  const std::string python = RLHF_TOOLS_PYTHON;
  if (!rlhf_test::python_with(python, {"torch", "transformers"}, "the transformers check")) {
    return;
  }
  const auto script = fs::path(RLHF_CHECKPOINT_CHECK_SCRIPT).parent_path() / "hf_model_check.py";
  const auto loaded = model::load_hf_gpt2<B>(fixture_dir / "f32", false);
  model::gpt_config untied_cfg = loaded.config();
  untied_cfg.tie_embeddings = false;
  model::gpt<B> untied(untied_cfg, false);
  untied.init(11);
  const std::vector<std::int32_t> ids{5, 299, 17, 0, 42, 7, 100, 250, 3, 64};
  const auto tokens = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids),
                                                    shape{2, 5});
  const auto run = [&](const model::gpt<B>& m, model::tensor_dtype dtype) {
    CAPTURE(model::to_string(dtype));
    CAPTURE(m.config().tie_embeddings);
    temp_folder tmp;
    model::save_hf_gpt2(m, tmp.path / "model", dtype);
    // Our logits of what the folder holds (the weights rounded to dtype).
    const auto back = model::load_hf_gpt2<B>(tmp.path / "model", false);
    model::gpt_activations<B> acts(back.config(), 2, 5);
    acts.train = false;
    model::gpt_forward<B>(back, acts, tokens);
    nlohmann::json side;
    side["input_ids"] = {std::vector<std::int32_t>(ids.begin(), ids.begin() + 5),
                         std::vector<std::int32_t>(ids.begin() + 5, ids.end())};
    side["logits"] = host<B>(acts.logits);
    side["tied"] = m.config().tie_embeddings;
    side["architecture"] = "GPT2LMHeadModel";
    write_json(tmp.path / "side.json", side);
    const std::string cmd = python + " " + script.string() + " " + (tmp.path / "model").string() +
                            " " + (tmp.path / "side.json").string() + " 2>&1";
    CHECK_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
  };
  run(loaded, model::tensor_dtype::f32);
  run(loaded, model::tensor_dtype::bf16);
  run(untied, model::tensor_dtype::f32);
}

}  // namespace test_hf_gpt2_cases
