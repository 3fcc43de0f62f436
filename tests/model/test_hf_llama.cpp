// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Llama-family Hugging Face checkpoints (rlhf/model/hf_llama.hpp, hf_model.hpp) and the Llama
// blocks of the bundled decoder against `transformers` itself (tools/reference/hf_llama.py):
// LlamaForCausalLM with grouped-query attention and an untied head, one with Llama 3.1's
// rope scaling, multi-query attention and a tied head, and Qwen2ForCausalLM with q/k/v
// biases. The folders save_pretrained wrote load into the bundled model, whose float32 logits
// match transformers' to 1e-5 relative + 1e-5 absolute (transformers' own float32 logits of
// these models differ from its float64 ones by up to 2.1e-6 on logits of magnitude ~3; ours
// from its float32 ones by the worst printed), whose loss matches to 1e-5 relative,
// and whose gradients of that loss match torch autograd's to 1e-4 relative + 1e-6 absolute
// (float32 round-off; the worst differences are printed). The BF16 copy loads to the
// BF16-rounded weights; save -> load is bit-exact; the saved folders load in transformers'
// AutoModelForCausalLM with our logits; KV-cache decoding equals the full forward; unsupported
// config fields are errors naming them. Eigen backend.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "fixture.hpp"
#include "rlhf/backends/eigen.hpp"
#include "rlhf/losses/sft.hpp"
#include "rlhf/model/generate.hpp"
#include "rlhf/model/hf_model.hpp"
#include "skip.hpp"
#include "temp_folder.hpp"

namespace test_hf_llama_cases {

using namespace rlhf_test;
namespace model = rlhf::model;
namespace fs = std::filesystem;
using B = rlhf::eigen_backend;
using rlhf::index_t;
using rlhf::shape;

namespace {

const fs::path fixture_dir = fs::path(RLHF_FIXTURE_DIR) / "hf_llama_tiny";

/// Next-token cross-entropy, mean over the B·(T-1) predicted positions (transformers'
/// labels=ids), and its gradient on the logits.
float next_token_loss(const B::tensor& logits, const B::index_tensor& ids, B::tensor& dlogits) {
  const index_t b = logits.shape()[0], t = logits.shape()[1];
  B::tensor ones(shape{b, t});
  rlhf::ops::fill<B>(ones, 1.0f);
  rlhf::losses::sft_config cfg;
  cfg.compute_entropy = false;
  return rlhf::losses::sft_loss<B>({logits, ids, ones}, dlogits, cfg).loss;
}

/// max |a - b|, for the messages.
double worst(const std::vector<float>& a, const std::vector<float>& b) {
  double w = 0.0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    w = std::max(w, std::abs(static_cast<double>(a[i]) - b[i]));
  }
  return w;
}

/// The tensors of `m`'s gradient arena under the checkpoint's names (the same table the
/// loader reads).
std::map<std::string, std::vector<float>> grads_by_hf_name(const model::gpt<B>& m) {
  const auto g = host<B>(m.grads());
  std::map<std::string, std::vector<float>> out;
  for (const auto& slot : model::hf_llama_tensor_map(m.config())) {
    const auto& p = model::find_param(m.table(), slot.arena_name);
    const index_t width = slot.cols == 0 ? 1 : slot.cols;
    const auto first = g.begin() + static_cast<std::ptrdiff_t>(p.offset + slot.row0 * width);
    out[slot.hf_name] = std::vector<float>(first, first + slot.rows * width);
  }
  return out;
}

}  // namespace

TEST_CASE("hf_llama: logits, loss and gradients equal transformers' on three families") {
  const std::map<std::string, nlohmann::json> configs = {
      {"llama", read_json(fixture_dir / "llama" / "config.json")},
      {"llama3_tied", read_json(fixture_dir / "llama3_tied" / "config.json")},
      {"qwen2", read_json(fixture_dir / "qwen2" / "config.json")}};
  int cases = 0;
  for (const auto& c : load_fixture("hf_llama.json")) {
    const std::string case_name = c.name();
    CAPTURE(case_name);
    const std::string name = case_name.substr(0, case_name.find('/'));
    auto m = model::load_hf_model<B>(fixture_dir / name);
    const auto& cfg = m.config();
    CHECK(cfg.norm == model::norm_type::rmsnorm);
    CHECK(cfg.position == model::position_type::rotary);
    CHECK(cfg.mlp == model::mlp_type::swiglu);
    CHECK(cfg.vocab_size == 80);
    CHECK(cfg.padded_vocab_size() == 128);
    CHECK(cfg.n_kv_head == configs.at(name).at("num_key_value_heads").get<index_t>());
    CHECK(cfg.mlp_width() == configs.at(name).at("intermediate_size").get<index_t>());
    CHECK(cfg.tie_embeddings == configs.at(name).at("tie_word_embeddings").get<bool>());
    CHECK(cfg.qkv_bias == (name == "qwen2"));
    CHECK_FALSE(cfg.proj_bias);
    CHECK(cfg.rope.scaling == (name == "llama3_tied" ? model::rope_scaling_type::llama3
                                                     : model::rope_scaling_type::none));

    const auto ids = c.index_tensor<B>("input_ids");
    model::gpt_activations<B> acts(cfg, ids.shape()[0], ids.shape()[1]);
    acts.train = false;
    model::gpt_forward<B>(m, acts, ids);
    const auto got = host<B>(acts.logits);
    const auto want = c.output("logits");
    MESSAGE(case_name << ": max |logit - transformers'| = " << worst(got, want));
    check_close(got, want, "logits", 1e-5, 1e-5);
    B::tensor dlogits(acts.logits.shape());
    const float loss = next_token_loss(acts.logits, ids, dlogits);
    check_close(loss, c.output_scalar("loss"), "loss", 1e-5, 0.0);
    ++cases;
    if (case_name.ends_with("/short")) {  // the gradients transformers' autograd gave
      m.zero_grads();
      model::gpt_backward<B>(m, acts, ids, dlogits);
      const auto file = model::load_safetensors(fixture_dir / (name + "_grads.safetensors"));
      const auto ours = grads_by_hf_name(m);
      CHECK(file.tensors.size() == ours.size());
      double w = 0.0;
      for (const auto& t : file.tensors) {
        CAPTURE(t.name);
        REQUIRE(ours.count(t.name) == 1);
        const std::vector<float>& ref = t.data;
        w = std::max(w, worst(ours.at(t.name), ref));
        check_close(ours.at(t.name), ref, t.name, 1e-4, 1e-6);
      }
      MESSAGE(case_name << ": max |grad - autograd's| = " << w);
    }
  }
  CHECK(cases == 6);
}

TEST_CASE("hf_llama: the BF16 copy loads to the BF16-rounded weights") {
  const auto f32 = host<B>(model::load_hf_llama<B>(fixture_dir / "llama").params());
  const auto bf16 = host<B>(model::load_hf_llama<B>(fixture_dir / "llama_bf16").params());
  REQUIRE(f32.size() == bf16.size());
  std::size_t differ = 0;
  for (std::size_t i = 0; i < f32.size(); ++i) {
    REQUIRE(bf16[i] == model::bf16_to_float(model::float_to_bf16(f32[i])));
    differ += bf16[i] != f32[i] ? 1 : 0;
  }
  CHECK(differ > f32.size() / 2);  // the copy really is rounded
}

TEST_CASE("hf_llama: save -> load is bit-exact, with save_pretrained's names and shapes") {
  for (const char* name : {"llama", "llama3_tied", "qwen2"}) {
    CAPTURE(name);
    const auto m = model::load_hf_model<B>(fixture_dir / name, false);
    temp_folder tmp;
    model::save_hf_model(m, tmp.path / "out");
    const auto back = model::load_hf_model<B>(tmp.path / "out", false);
    CHECK(back.config() == m.config());
    const auto a = host<B>(m.params()), b = host<B>(back.params());
    REQUIRE(a.size() == b.size());
    CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    // The same tensor names and shapes as save_pretrained's file.
    const auto theirs = model::load_safetensors(fixture_dir / name / "model.safetensors");
    const auto ours = model::load_safetensors(tmp.path / "out" / "model.safetensors");
    std::map<std::string, shape> want, got;
    for (const auto& t : theirs.tensors) want[t.name] = t.shape;
    for (const auto& t : ours.tensors) got[t.name] = t.shape;
    CHECK(got == want);
    const auto cfg_json = read_json(tmp.path / "out" / "config.json");
    CHECK(cfg_json.at("model_type") ==
          read_json(fixture_dir / name / "config.json").at("model_type"));
  }
}

TEST_CASE("hf_llama: KV-cache decoding equals the full forward on a loaded model") {
  const auto m = model::load_hf_model<B>(fixture_dir / "llama3_tied", false);
  const std::vector<std::int32_t> ids{3,  17, 42, 5,  79, 0, 11, 23, 64, 8,
                                      30, 2,  7,  50, 61, 9, 44, 1,  12, 70};
  const index_t T = 20;
  const auto tokens = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids),
                                                    shape{1, T});
  model::gpt_activations<B> acts(m.config(), 1, T);
  acts.train = false;
  model::gpt_forward<B>(m, acts, tokens);
  const auto full = host<B>(acts.logits);
  // Logits near zero carry the rounding of the larger ones (the cached path sums in another
  // order than the full forward's GEMMs): absolute tolerance 1e-5 of the logits' scale.
  double scale = 1.0;
  for (const float x : full) scale = std::max(scale, std::abs(double{x}));
  const double atol = 1e-5 * scale;
  // Prefill 12 positions, then decode the other 8 one at a time (positions 12..19 cross the
  // rope's original context of 16).
  model::kv_cache<B> cache(m.config(), 1, T);
  const index_t P = 12, V = m.config().vocab_size;
  const auto prompt = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids.data(), P),
                                                    shape{1, P});
  B::tensor logits(shape{1, P, V});
  const std::vector<index_t> start0{0};
  model::gpt_forward_cached<B>(m, cache, prompt, start0, logits);
  const std::vector<float> want(full.begin(), full.begin() + P * V);
  check_close(host<B>(logits), want, "prefill logits", 1e-5, atol);
  for (index_t t = P; t < T; ++t) {
    const auto one = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids.data() + t, 1),
                                                   shape{1, 1});
    B::tensor step(shape{1, V});
    const std::vector<index_t> start{t};
    model::gpt_forward_cached<B>(m, cache, one, start, step);
    const std::vector<float> row(full.begin() + t * V, full.begin() + (t + 1) * V);
    CAPTURE(t);
    check_close(host<B>(step), row, "decode logits", 1e-5, atol);
  }
}

TEST_CASE("hf_llama_config: every field the bundled model cannot compute is named") {
  const auto base = read_json(fixture_dir / "llama" / "config.json");
  const auto qwen = read_json(fixture_dir / "qwen2" / "config.json");
  const auto fails = [&](const nlohmann::json& start, const char* field,
                         const nlohmann::json& value, const char* text) {
    CAPTURE(field);
    auto j = start;
    j[field] = value;
    const std::string want = std::string("hf_llama_config: cfg.json: field '") + field + "' " +
                             text;
    CHECK_THROWS_WITH_AS((void)model::hf_llama_config(j, "cfg.json"),
                         doctest::Contains(want.c_str()), rlhf::config_error);
  };
  fails(base, "hidden_act", "gelu", "must be \"silu\"");
  fails(base, "model_type", "mistral", "must be \"llama\" or \"qwen2\"");
  fails(base, "num_key_value_heads", 3, "must divide num_attention_heads = 4");
  fails(base, "num_key_value_heads", 8, "must be in [1, 4]");
  fails(base, "head_dim", 16, "must be hidden_size / num_attention_heads = 8");
  fails(base, "attention_dropout", 0.1, "must be 0");
  fails(base, "attention_bias", true, "must equal mlp_bias = false");
  fails(base, "mlp_bias", true, "must equal attention_bias = false");
  {
    auto j = base;
    j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
    CHECK_THROWS_WITH_AS((void)model::hf_llama_config(j, "cfg.json"),
                         doctest::Contains("field 'rope_type' must be \"default\" or \"linear\" "
                                           "or \"llama3\""),
                         rlhf::config_error);
  }
  fails(base, "rope_scaling", "linear", "must be null or an object");
  fails(base, "hidden_size", "32", "must be an integer");
  fails(base, "rms_norm_eps", "tiny", "must be a number");
  fails(qwen, "use_sliding_window", true, "must be false");
  // Accepted: linear scaling (legacy "type" key), both biases on, no rope_scaling.
  auto j = base;
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  const auto c = model::hf_llama_config(j, "x");
  CHECK(c.rope.scaling == model::rope_scaling_type::linear);
  CHECK(c.rope.factor == 2.0f);
  j["attention_bias"] = true;
  j["mlp_bias"] = true;
  CHECK(model::hf_llama_config(j, "x").proj_bias);
  // The dispatcher names unsupported architectures.
  temp_folder tmp;
  auto other = base;
  other["model_type"] = "mixtral";
  write_json(tmp.path / "config.json", other);
  CHECK_THROWS_WITH_AS((void)model::hf_architecture_of(tmp.path),
                       doctest::Contains("field 'model_type' must be \"gpt2\" or \"llama\" or "
                                         "\"qwen2\""),
                       rlhf::config_error);
}

TEST_CASE("load_hf_llama: missing, extra and misshapen tensors are io_errors naming them") {
  const auto src = model::load_safetensors(fixture_dir / "llama" / "model.safetensors");
  const auto write = [&](const fs::path& folder, std::vector<model::named_tensor> tensors) {
    fs::create_directories(folder);
    fs::copy_file(fixture_dir / "llama" / "config.json", folder / "config.json");
    model::save_safetensors(folder / "model.safetensors",
                            std::span<const model::named_tensor>(tensors), {{"format", "pt"}});
  };
  const auto without = [&](const std::string& name) {
    std::vector<model::named_tensor> out;
    for (const auto& t : src.tensors) {
      if (t.name != name) out.push_back(t);
    }
    return out;
  };
  temp_folder tmp;
  write(tmp.path / "missing", without("model.layers.1.self_attn.k_proj.weight"));
  CHECK_THROWS_WITH_AS(
      (void)model::load_hf_llama<B>(tmp.path / "missing"),
      doctest::Contains("tensor 'model.layers.1.self_attn.k_proj.weight' is missing"),
      rlhf::io_error);
  auto extra = src.tensors;
  extra.push_back(extra.front());
  extra.back().name = "model.layers.0.mlp.gate_proj.bias";
  write(tmp.path / "extra", extra);
  CHECK_THROWS_WITH_AS((void)model::load_hf_llama<B>(tmp.path / "extra"),
                       doctest::Contains("tensor 'model.layers.0.mlp.gate_proj.bias' is not a "
                                         "parameter"),
                       rlhf::io_error);
  auto shaped = src.tensors;
  for (auto& t : shaped) {
    if (t.name == "model.norm.weight") {
      t.shape = shape{16, 2};
    }
  }
  write(tmp.path / "shape", shaped);
  CHECK_THROWS_WITH_AS(
      (void)model::load_hf_llama<B>(tmp.path / "shape"),
      doctest::Contains("tensor 'model.norm.weight' has shape (16, 2), expected (32)"),
      rlhf::io_error);
  // Old checkpoints' rotary buffers are ignored.
  auto buffers = src.tensors;
  buffers.push_back(src.tensors.front());
  buffers.back().name = "model.layers.0.self_attn.rotary_emb.inv_freq";
  buffers.back().shape = shape{4};
  buffers.back().data.assign(4, 1.0f);
  write(tmp.path / "buffers", buffers);
  CHECK_NOTHROW((void)model::load_hf_llama<B>(tmp.path / "buffers"));
}

// The folders save_hf_model writes load in transformers' AutoModelForCausalLM, every weight
// from the file, and compute our logits (tools/reference/checks/hf_model_check.py, run with
// RLHF_TOOLS_PYTHON when it has transformers).
TEST_CASE("save_hf_model: Llama and Qwen2 folders load in transformers with our logits") {
  const std::string python = RLHF_TOOLS_PYTHON;
  if (!rlhf_test::python_with(python, {"torch", "transformers"}, "the transformers check")) {
    return;
  }
  const auto script = fs::path(RLHF_CHECKPOINT_CHECK_SCRIPT).parent_path() / "hf_model_check.py";
  const std::vector<std::int32_t> ids{5, 79, 17, 0, 42, 7, 10, 25, 3, 64};
  const auto tokens = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids),
                                                    shape{2, 5});
  // A model of our own: init() weights, linear rope scaling, grouped-query attention.
  model::gpt_config own = model::load_hf_llama_config(fixture_dir / "llama");
  own.rope.scaling = model::rope_scaling_type::linear;
  own.rope.factor = 2.0f;
  model::gpt<B> ours(own, false);
  ours.init(5);
  const auto run = [&](const model::gpt<B>& m, model::tensor_dtype dtype, const std::string& arch) {
    CAPTURE(arch);
    CAPTURE(model::to_string(dtype));
    temp_folder tmp;
    model::save_hf_model(m, tmp.path / "model", dtype);
    const auto back = model::load_hf_model<B>(tmp.path / "model", false);
    model::gpt_activations<B> acts(back.config(), 2, 5);
    acts.train = false;
    model::gpt_forward<B>(back, acts, tokens);
    nlohmann::json side;
    side["input_ids"] = {std::vector<std::int32_t>(ids.begin(), ids.begin() + 5),
                         std::vector<std::int32_t>(ids.begin() + 5, ids.end())};
    side["logits"] = host<B>(acts.logits);
    side["tied"] = m.config().tie_embeddings;
    side["architecture"] = arch;
    write_json(tmp.path / "side.json", side);
    const std::string cmd = python + " " + script.string() + " " + (tmp.path / "model").string() +
                            " " + (tmp.path / "side.json").string() + " 2>&1";
    CHECK_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
  };
  run(model::load_hf_model<B>(fixture_dir / "llama", false), model::tensor_dtype::f32,
      "LlamaForCausalLM");
  run(model::load_hf_model<B>(fixture_dir / "llama3_tied", false), model::tensor_dtype::bf16,
      "LlamaForCausalLM");
  run(model::load_hf_model<B>(fixture_dir / "qwen2", false), model::tensor_dtype::f32,
      "Qwen2ForCausalLM");
  run(ours, model::tensor_dtype::f32, "LlamaForCausalLM");
}

TEST_CASE("gpt_forward and gpt_backward refuse activations sized for another model") {
  auto llama = model::load_hf_model<B>(fixture_dir / "llama");
  const auto qwen = model::load_hf_model<B>(fixture_dir / "qwen2", false);
  const std::vector<std::int32_t> ids{1, 2, 3, 4};
  const auto tokens = rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids),
                                                    shape{1, 4});
  model::gpt_activations<B> acts(qwen.config(), 1, 4);  // intermediate 40, not 48
  CHECK_THROWS_WITH_AS(model::gpt_forward<B>(llama, acts, tokens),
                       doctest::Contains("gpt_forward: acts was sized for another model"),
                       rlhf::config_error);
  model::gpt_config fewer = llama.config();
  fewer.n_layer = 1;
  model::gpt_activations<B> one_layer(fewer, 1, 4);
  CHECK_THROWS_WITH_AS(model::gpt_forward<B>(llama, one_layer, tokens),
                       doctest::Contains("acts was sized for another model (1 layers"),
                       rlhf::config_error);
  B::tensor dlogits(one_layer.logits.shape());
  CHECK_THROWS_WITH_AS(model::gpt_backward<B>(llama, one_layer, tokens, dlogits),
                       doctest::Contains("gpt_backward: acts was sized for another model"),
                       rlhf::config_error);
  model::gpt_activations<B> own(llama.config(), 1, 4);
  CHECK_NOTHROW(model::gpt_forward<B>(qwen, acts, tokens));
  CHECK_NOTHROW(model::gpt_forward<B>(llama, own, tokens));
}

}  // namespace test_hf_llama_cases
