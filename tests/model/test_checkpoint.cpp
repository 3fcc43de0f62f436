// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Checkpoints of a whole GPT (rlhf/model/checkpoint.hpp): bit-exact round trip of the
// parameters and the AdamW state, config/tensor mismatches and damaged files as io_error,
// the golden fixtures loading through load_checkpoint, the config JSON helpers, and untrusted
// files: deeply nested JSON, non-finite values, malformed step counts, long strings in
// messages.
#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "fixture.hpp"
#include "rlhf/model/checkpoint.hpp"
#include "skip.hpp"

namespace test_checkpoint_cases {

using namespace rlhf_test;
namespace model = rlhf::model;
using rlhf::index_t;
using rlhf::shape;

namespace {

model::gpt_config tiny(bool tied) {
  model::gpt_config c;
  c.vocab_size = 70;
  c.max_seq_len = 8;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 8;
  c.tie_embeddings = tied;
  return c;
}

/// This process's scratch directory, removed when the test binary exits.
struct scratch_dir {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("rlhf_test_checkpoint_" + std::to_string(::getpid()));
  scratch_dir() { std::filesystem::create_directories(dir); }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

std::filesystem::path tmp_path(const std::string& name) {
  static const scratch_dir scratch;
  return scratch.dir / name;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// A few AdamW steps with seeded pseudo-gradients, so that m, v and step are nontrivial.
template <class B>
void train_a_bit(model::gpt<B>& m, model::adamw<B>& opt, int steps, std::uint64_t seed) {
  const auto mask = model::make_decay_mask<B>(m.num_params(), model::decay_ranges(m));
  std::vector<float> g(static_cast<std::size_t>(m.num_params()));
  for (int s = 0; s < steps; ++s) {
    for (std::size_t i = 0; i < g.size(); ++i) {
      g[i] = rlhf::philox_normal(seed, static_cast<std::uint64_t>(s), 0, i);
    }
    rlhf::ops::copy_from_host<B>(std::span<const float>(g), m.grads());
    opt.step(m.params(), m.grads(), mask);
  }
}

template <class F>
std::string io_error_of(F&& f) {
  try {
    f();
  } catch (const rlhf::io_error& e) {
    return e.what();
  }
  return "(no io_error)";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE_TEMPLATE("checkpoint round trip is bit-exact (params and AdamW state)", B,
                   RLHF_TEST_BACKENDS) {
  for (bool tied : {true, false}) {
    CAPTURE(tied);
    const auto cfg = tiny(tied);
    model::gpt<B> m(cfg);
    m.init(7);
    model::adamw<B> opt(m.num_params(), {.lr = 1e-2f, .weight_decay = 0.1f});
    train_a_bit(m, opt, 3, 11);
    const auto path = tmp_path(tied ? "tied.safetensors" : "untied.safetensors");
    model::save_checkpoint<B>(path, m, &opt, {{"note", "hello"}});

    CHECK(model::load_config(path).n_layer == cfg.n_layer);
    model::gpt<B> m2(model::load_config(path));
    model::adamw<B> opt2(m2.num_params(), {.lr = 1e-2f, .weight_decay = 0.1f});
    const auto md = model::load_checkpoint<B>(path, m2, &opt2);
    CHECK(md.at("note") == "hello");
    CHECK(md.at("weight_layout") == "out_in");
    CHECK(md.at("optimizer.step") == "3");
    CHECK(same_bits(host<B>(m.params()), host<B>(m2.params())));
    CHECK(same_bits(host<B>(opt.exp_avg()), host<B>(opt2.exp_avg())));
    CHECK(same_bits(host<B>(opt.exp_avg_sq()), host<B>(opt2.exp_avg_sq())));
    CHECK(opt2.step_count() == 3);
    // Training continues bit-identically.
    train_a_bit(m, opt, 2, 99);
    train_a_bit(m2, opt2, 2, 99);
    CHECK(same_bits(host<B>(m.params()), host<B>(m2.params())));

    // Every parameter under its GPT-2 name, in the arena's shape; optimizer state (P,).
    const auto f = model::load_safetensors(path);
    for (const auto& p : m.table()) CHECK_NOTHROW((void)model::check_tensor(f, p.name, p.dims));
    CHECK(f.find("optimizer.exp_avg")->shape == shape{m.num_params()});
    CHECK(f.tensors.size() == m.table().size() + 2);

    // Without the optimizer: only the parameters; asking for the state then fails.
    const auto p2 = tmp_path("params_only.safetensors");
    model::save_checkpoint<B>(p2, m);
    model::gpt<B> m3(cfg);
    (void)model::load_checkpoint<B>(p2, m3);
    CHECK(same_bits(host<B>(m.params()), host<B>(m3.params())));
    CHECK(model::load_safetensors(p2).tensors.size() == m.table().size());
    model::adamw<B> opt3(m3.num_params());
    const auto e = io_error_of([&] { (void)model::load_checkpoint<B>(p2, m3, &opt3); });
    CHECK(contains(e, "no optimizer state"));
    CHECK(contains(e, p2.string()));
    // A checkpoint with optimizer state loads into a model alone.
    model::gpt<B> m4(cfg);
    CHECK_NOTHROW((void)model::load_checkpoint<B>(path, m4));
  }
}

TEST_CASE_TEMPLATE("checkpoint mismatches are io_errors naming the field or tensor", B,
                   RLHF_TEST_BACKENDS) {
  const auto cfg = tiny(true);
  model::gpt<B> m(cfg);
  m.init(3);
  const auto path = tmp_path("mismatch.safetensors");
  model::save_checkpoint<B>(path, m);
  const auto before = host<B>(m.params());

  SUBCASE("config field") {
    auto other = cfg;
    other.n_layer = 3;
    model::gpt<B> m2(other);
    const auto e = io_error_of([&] { (void)model::load_checkpoint<B>(path, m2); });
    CHECK(contains(e, "load_checkpoint: "));
    CHECK(contains(e, "config field 'n_layer' is 2 in the file but 3 in the model"));
    auto eps = cfg;
    eps.layernorm_eps = 1e-6f;
    model::gpt<B> m3(eps);
    CHECK(contains(io_error_of([&] { (void)model::load_checkpoint<B>(path, m3); }),
                   "config field 'layernorm_eps'"));
    auto untied = cfg;
    untied.tie_embeddings = false;
    model::gpt<B> m4(untied);
    CHECK(contains(io_error_of([&] { (void)model::load_checkpoint<B>(path, m4); }),
                   "config field 'tie_embeddings' is true in the file but false in the model"));
  }

  // Rewrite the file's tensors by hand.
  auto f = model::load_safetensors(path);
  auto rewrite = [&](std::vector<model::named_tensor> ts) {
    const auto p = tmp_path("edited.safetensors");
    model::save_safetensors(p, std::span<const model::named_tensor>(ts), f.metadata);
    return p;
  };
  model::gpt<B> target(cfg);

  SUBCASE("missing tensor") {
    auto ts = f.tensors;
    ts.erase(ts.begin() + 3);
    const auto name = f.tensors[3].name;
    const auto e = io_error_of([&] { (void)model::load_checkpoint<B>(rewrite(ts), target); });
    CHECK(contains(e, "tensor '" + name + "' is missing"));
  }
  SUBCASE("wrong shape") {
    auto ts = f.tensors;
    ts[0].shape = shape{ts[0].shape[1], ts[0].shape[0]};  // wte transposed
    const auto e = io_error_of([&] { (void)model::load_checkpoint<B>(rewrite(ts), target); });
    CHECK(contains(e, "tensor 'wte.weight' has shape (8, 128), expected (128, 8)"));
  }
  SUBCASE("extra tensor") {
    auto ts = f.tensors;
    ts.push_back({"lm_head.weight", shape{2}, {1.0f, 2.0f}, model::tensor_dtype::f32, {}});
    const auto p = rewrite(ts);
    const auto e = io_error_of([&] { (void)model::load_checkpoint<B>(p, target); });
    CHECK(contains(e, "tensor 'lm_head.weight' is not a parameter of this model"));
    model::checkpoint_load_options opts;
    opts.allow_extra_tensors = true;
    CHECK_NOTHROW((void)model::load_checkpoint<B>(p, target, nullptr, opts));
    model::checkpoint_load_options by_prefix;
    by_prefix.extra_tensor_prefixes = {"lm_head."};
    CHECK_NOTHROW((void)model::load_checkpoint<B>(p, target, nullptr, by_prefix));
    CHECK(same_bits(host<B>(target.params()), before));
  }
  SUBCASE("no config, bad layout, bad optimizer step") {
    auto md = f.metadata;
    md.erase("config");
    const auto p = tmp_path("noconfig.safetensors");
    model::save_safetensors(p, std::span<const model::named_tensor>(f.tensors), md);
    CHECK(contains(io_error_of([&] { (void)model::load_checkpoint<B>(p, target); }),
                   "no \"config\" in the metadata"));
    CHECK(contains(io_error_of([&] { (void)model::load_config(p); }), "no \"config\""));
    md = f.metadata;
    md["weight_layout"] = "in_out";
    model::save_safetensors(p, std::span<const model::named_tensor>(f.tensors), md);
    CHECK(contains(io_error_of([&] { (void)model::load_checkpoint<B>(p, target); }),
                   "weight_layout is 'in_out'"));
  }
  SUBCASE("a failed load leaves the model untouched") {
    model::gpt<B> fresh(cfg);
    fresh.init(5);
    const auto mine = host<B>(fresh.params());
    auto ts = f.tensors;
    ts.pop_back();  // ln_f.bias
    CHECK(contains(io_error_of([&] { (void)model::load_checkpoint<B>(rewrite(ts), fresh); }),
                   "tensor 'ln_f.bias' is missing"));
    CHECK(same_bits(host<B>(fresh.params()), mine));
  }
  SUBCASE("reserved metadata key") {
    CHECK(contains(io_error_of([&] {
                     model::save_checkpoint<B>(tmp_path("r.safetensors"), m, nullptr,
                                               {{"config", "{}"}});
                   }),
                   "extra metadata key 'config' is reserved"));
  }
}

TEST_CASE_TEMPLATE("truncated or corrupted checkpoints are io_errors", B, RLHF_TEST_BACKENDS) {
  const auto cfg = tiny(false);
  model::gpt<B> m(cfg);
  m.init(1);
  model::adamw<B> opt(m.num_params());
  train_a_bit(m, opt, 1, 2);
  const auto path = tmp_path("good.safetensors");
  model::save_checkpoint<B>(path, m, &opt);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const auto bad = tmp_path("bad.safetensors");
  auto write = [&](const std::string& b) {
    std::ofstream out(bad, std::ios::binary | std::ios::trunc);
    out.write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  model::gpt<B> target(cfg);
  model::adamw<B> topt(target.num_params());
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, std::size_t{100}, bytes.size() / 2,
                          bytes.size() - 4}) {
    CAPTURE(cut);
    write(bytes.substr(0, cut));
    const auto e = io_error_of([&] { (void)model::load_checkpoint<B>(bad, target, &topt); });
    CHECK(contains(e, bad.string()));
    CHECK(contains(e, "truncated"));
  }
  // A corrupted header (a '{' turned into garbage).
  std::string c = bytes;
  c[8] = '#';
  write(c);
  CHECK(contains(io_error_of([&] { (void)model::load_checkpoint<B>(bad, target); }),
                 "malformed JSON header"));
  CHECK(contains(io_error_of([&] { (void)model::load_config(bad); }),
                 "JSON header is not valid JSON"));
  // Trailing garbage.
  write(bytes + "xxxx");
  CHECK(contains(io_error_of([&] { (void)model::load_checkpoint<B>(bad, target); }),
                 "trailing bytes"));
  // No such file.
  CHECK(contains(io_error_of([&] {
                   (void)model::load_checkpoint<B>(tmp_path("nothing.safetensors"), target);
                 }),
                 "no such file"));
  CHECK(contains(io_error_of([&] { (void)model::load_config(tmp_path("nothing.json")); }),
                 "no such file"));
  // The good file still loads.
  CHECK_NOTHROW((void)model::load_checkpoint<B>(path, target, &topt));
}

TEST_CASE_TEMPLATE("golden fixtures load through load_checkpoint", B, RLHF_TEST_BACKENDS) {
  for (const char* name : {"gpt_tiny_a", "gpt_tiny_b"}) {
    CAPTURE(name);
    const std::string path = std::string(RLHF_FIXTURE_DIR) + "/" + name + ".safetensors";
    const auto cfg = model::load_config(path);
    model::gpt<B> m(cfg);
    const auto e = io_error_of([&] { (void)model::load_checkpoint<B>(path, m); });
    CHECK(contains(e, "tensor 'grad.wte.weight' is not a parameter of this model"));
    model::checkpoint_load_options opts;
    opts.extra_tensor_prefixes = {"grad.", "input_ids", "logits"};
    const auto md = model::load_checkpoint<B>(path, m, nullptr, opts);
    CHECK(md.contains("losses_10"));
    const auto f = model::load_safetensors(path);
    const auto params = host<B>(m.params());
    for (const auto& p : m.table()) {
      const auto* t = f.find(p.name);
      REQUIRE(t != nullptr);
      CHECK(std::memcmp(params.data() + p.offset, t->data.data(), t->data.size() * 4) == 0);
    }
    // The fixture holds no optimizer state.
    model::adamw<B> opt(m.num_params());
    CHECK(contains(io_error_of([&] { (void)model::load_checkpoint<B>(path, m, &opt, opts); }),
                   "no optimizer state"));
  }
}

TEST_CASE("gpt_config JSON helpers") {
  model::gpt_config c = tiny(false);
  c.layernorm_eps = 1.2345e-6f;
  c.mlp_ratio = 3;
  const auto j = model::to_json(c);
  const auto back = model::gpt_config_from_json(nlohmann::json::parse(j.dump()));
  CHECK(model::to_json(back) == j);
  CHECK(back.layernorm_eps == c.layernorm_eps);
  // Missing fields keep their defaults.
  const auto partial = model::gpt_config_from_json(nlohmann::json{{"n_layer", 1}, {"n_embd", 16}});
  CHECK(partial.n_layer == 1);
  CHECK(partial.vocab_size == model::gpt_config{}.vocab_size);
  CHECK_THROWS_WITH_AS((void)model::gpt_config_from_json(nlohmann::json{{"n_layers", 1}}),
                       "gpt_config_from_json: unknown field 'n_layers'", rlhf::config_error);
  CHECK_THROWS_WITH_AS((void)model::gpt_config_from_json(nlohmann::json{{"n_head", 1.5}}),
                       "gpt_config_from_json: field 'n_head' must be an integer, got 1.5",
                       rlhf::config_error);
  CHECK_THROWS_AS((void)model::gpt_config_from_json(nlohmann::json{{"n_head", 0}}),
                  rlhf::config_error);
  // load_config from a JSON file.
  const auto p = tmp_path("cfg.json");
  {
    std::ofstream out(p);
    out << j.dump(2);
  }
  CHECK(model::to_json(model::load_config(p)) == j);
  {
    std::ofstream out(p);
    out << "{\"n_layer\": 0}";
  }
  const auto e = io_error_of([&] { (void)model::load_config(p); });
  CHECK(contains(e, "load_config: "));
  CHECK(contains(e, "n_layer"));
}

TEST_CASE_TEMPLATE("checkpoints carry scalar heads by prefix", B, RLHF_TEST_BACKENDS) {
  const auto cfg = tiny(true);
  model::gpt<B> m(cfg);
  m.init(3);
  auto vh = model::make_value_head<B>(cfg.n_embd);
  auto rh = model::make_reward_head<B>(cfg.n_embd);
  vh.init(5);
  rh.init(6);
  const auto path = tmp_path("with_heads.safetensors");
  model::save_checkpoint<B>(path, m, {&vh, &rh});

  const auto f = model::load_safetensors(path);
  CHECK(f.tensors.size() == m.table().size() + 4);
  CHECK(f.find("v_head.weight")->shape == shape{1, cfg.n_embd});
  CHECK(f.find("score.bias")->shape == shape{1});
  CHECK(f.metadata.at("heads") ==
        R"([{"n_embd":8,"prefix":"v_head"},{"n_embd":8,"prefix":"score"}])");

  // Bit-exact round trip of the trunk and both heads.
  model::gpt<B> m2(cfg);
  auto vh2 = model::make_value_head<B>(cfg.n_embd);
  auto rh2 = model::make_reward_head<B>(cfg.n_embd);
  (void)model::load_checkpoint<B>(path, m2, {&vh2, &rh2});
  CHECK(same_bits(host<B>(m.params()), host<B>(m2.params())));
  CHECK(same_bits(host<B>(vh.params()), host<B>(vh2.params())));
  CHECK(same_bits(host<B>(rh.params()), host<B>(rh2.params())));

  // Heads the caller does not ask for are skipped (a policy from a reward model's trunk);
  // an unlisted tensor of the same name still is not.
  model::gpt<B> m3(cfg);
  CHECK_NOTHROW((void)model::load_checkpoint<B>(path, m3));
  CHECK(same_bits(host<B>(m.params()), host<B>(m3.params())));

  // A head the file does not hold, a nonmatching width, duplicates and the reserved key.
  auto other = model::scalar_head<B>(cfg.n_embd, "critic");
  std::string e = io_error_of([&] { (void)model::load_checkpoint<B>(path, m3, {&other}); });
  CHECK(contains(e, "no head 'critic' in the file"));
  auto wide = model::make_value_head<B>(cfg.n_embd + 1);
  const auto before = host<B>(m3.params());
  model::gpt<B> m4(cfg);
  e = io_error_of([&] { (void)model::load_checkpoint<B>(path, m4, {&wide}); });
  CHECK(contains(e, "v_head.weight"));
  CHECK(same_bits(host<B>(m4.params()), std::vector<float>(before.size(), 0.0f)));
  e = io_error_of([&] { model::save_checkpoint<B>(tmp_path("dup.safetensors"), m, {&vh, &vh}); });
  CHECK(contains(e, "head tensor 'v_head.weight' is written twice"));
  CHECK_FALSE(std::filesystem::exists(tmp_path("dup.safetensors")));
  e = io_error_of([&] {
    model::save_checkpoint<B>(tmp_path("reserved.safetensors"), m, {&vh}, nullptr,
                              {{"heads", "[]"}});
  });
  CHECK(contains(e, "extra metadata key 'heads' is reserved"));
  // Without a "heads" listing, head-named tensors are unknown tensors.
  const auto plain = tmp_path("plain.safetensors");
  model::save_checkpoint<B>(plain, m);
  e = io_error_of([&] { (void)model::load_checkpoint<B>(plain, m4, {&vh2}); });
  CHECK(contains(e, "no head 'v_head' in the file"));
}

// Python's own `safetensors` package reads our checkpoints under the documented names, and
// tools/reference/gpt.py's forward on those weights gives our logits and head values.
TEST_CASE("checkpoints load in Python safetensors with the documented names") {
  using B = rlhf::eigen_backend;
  const std::string python = RLHF_TOOLS_PYTHON;
  if (!rlhf_test::python_with(python, {"torch", "safetensors"}, "the Python checkpoint check")) {
    return;
  }
  for (bool tied : {true, false}) {
    CAPTURE(tied);
    auto cfg = tiny(tied);
    cfg.vocab_size = 67;  // padded to 128 rows in the file
    model::gpt<B> m(cfg);
    m.init(tied ? 21 : 22);
    model::adamw<B> opt(m.num_params());
    train_a_bit(m, opt, 2, 5);
    auto vh = model::make_value_head<B>(cfg.n_embd);
    vh.init(8);
    const index_t batch = 2, steps = 5;
    std::vector<std::int32_t> ids(static_cast<std::size_t>(batch * steps));
    for (std::size_t i = 0; i < ids.size(); ++i) {
      ids[i] = static_cast<std::int32_t>((i * 37 + 3) % 67);
    }
    const auto tokens =
        rlhf::ops::index_from_host<B>(std::span<const std::int32_t>(ids), shape{batch, steps});
    model::gpt_activations<B> acts(cfg, batch, steps);
    model::gpt_forward(m, acts, tokens);
    typename B::tensor values(shape{batch, steps});
    model::value_head_forward<B>(values, acts.lnf, vh.weight(), vh.bias());

    const auto path = tmp_path(tied ? "py_tied.safetensors" : "py_untied.safetensors");
    model::save_checkpoint<B>(path, m, {&vh}, &opt);
    nlohmann::json side;
    side["input_ids"] = nlohmann::json::array();
    for (index_t b = 0; b < batch; ++b) {
      side["input_ids"].push_back(std::vector<std::int32_t>(ids.begin() + b * steps,
                                                            ids.begin() + (b + 1) * steps));
    }
    side["logits"] = host<B>(acts.logits);
    side["heads"]["v_head"] = host<B>(values);
    const auto side_path = tmp_path(tied ? "py_tied.json" : "py_untied.json");
    std::ofstream(side_path) << side.dump();
    const std::string cmd = python + " " + RLHF_CHECKPOINT_CHECK_SCRIPT + " " + path.string() +
                            " " + side_path.string() + " 2>&1";
    CHECK_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
  }
}

// ---------------------------------------------------------------------------------------
// Untrusted input: deep nesting, poisoned values, long strings in messages.

namespace {

/// `depth` nested JSON lists: "[[[...]]]".
std::string nested_lists(std::size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

void write_text(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
}

/// A copy of the checkpoint `f` under `name`, with `edit` applied to its tensors and
/// metadata first.
template <class F>
std::filesystem::path edited_copy(const model::safetensors_file& f, const std::string& name,
                                  F&& edit) {
  auto ts = f.tensors;
  auto md = f.metadata;
  edit(ts, md);
  const auto p = tmp_path(name);
  model::save_safetensors(p, std::span<const model::named_tensor>(ts), md);
  return p;
}

model::named_tensor& tensor_named(std::vector<model::named_tensor>& ts, const std::string& n) {
  for (auto& t : ts) {
    if (t.name == n) return t;
  }
  FAIL("no tensor " << n);
  return ts.front();
}

template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error of the expected type)";
}

}  // namespace

TEST_CASE("load_config refuses deeply nested JSON files with an io_error") {
  const auto p = tmp_path("deep.json");
  for (std::size_t depth : {std::size_t{17}, std::size_t{100'000}, std::size_t{1'000'000}}) {
    CAPTURE(depth);
    write_text(p, nested_lists(depth));
    const auto e = io_error_of([&] { (void)model::load_config(p); });
    CHECK(contains(e, "load_config: "));
    CHECK(contains(e, p.string()));
    CHECK(contains(e, "nested deeper than 16 levels"));
    CHECK(e.size() < 1000);
    // Inside a field.
    write_text(p, "{\"n_layer\": " + nested_lists(depth) + "}");
    const auto e2 = io_error_of([&] { (void)model::load_config(p); });
    CHECK(contains(e2, "nested deeper than 16 levels"));
    CHECK(e2.size() < 1000);
  }
  // Shallow structured values are named, not crashed on.
  write_text(p, nested_lists(16));
  CHECK(contains(io_error_of([&] { (void)model::load_config(p); }), "expected a JSON object"));
}

TEST_CASE_TEMPLATE("deeply nested checkpoint metadata is an io_error", B, RLHF_TEST_BACKENDS) {
  const auto cfg = tiny(true);
  model::gpt<B> m(cfg);
  m.init(4);
  auto vh = model::make_value_head<B>(cfg.n_embd);
  vh.init(2);
  const auto path = tmp_path("deep_md_src.safetensors");
  model::save_checkpoint<B>(path, m, {&vh});
  const auto f = model::load_safetensors(path);
  model::gpt<B> target(cfg);
  auto vh2 = model::make_value_head<B>(cfg.n_embd);
  for (std::size_t depth : {std::size_t{100'000}, std::size_t{1'000'000}}) {
    CAPTURE(depth);
    const auto deep_config = edited_copy(
        f, "deep_config.safetensors", [&](auto&, auto& md) { md["config"] = nested_lists(depth); });
    auto e = io_error_of([&] { (void)model::load_checkpoint<B>(deep_config, target); });
    CHECK(contains(e, "load_checkpoint: "));
    CHECK(contains(e, "\"config\" metadata"));
    CHECK(contains(e, "nested deeper than 16 levels"));
    CHECK(e.size() < 1000);
    e = io_error_of([&] { (void)model::load_config(deep_config); });
    CHECK(contains(e, "load_config: "));
    CHECK(contains(e, "nested deeper than 16 levels"));
    // A deep value inside the config object.
    const auto deep_field = edited_copy(f, "deep_field.safetensors", [&](auto&, auto& md) {
      md["config"] = "{\"n_head\": " + nested_lists(depth) + "}";
    });
    e = io_error_of([&] { (void)model::load_checkpoint<B>(deep_field, target); });
    CHECK(contains(e, "nested deeper than 16 levels"));
    const auto deep_heads = edited_copy(
        f, "deep_heads.safetensors", [&](auto&, auto& md) { md["heads"] = nested_lists(depth); });
    e = io_error_of([&] { (void)model::load_checkpoint<B>(deep_heads, target, {&vh2}); });
    CHECK(contains(e, "\"heads\" metadata"));
    CHECK(contains(e, "nested deeper than 16 levels"));
  }
  CHECK_NOTHROW((void)model::load_checkpoint<B>(path, target, {&vh2}));
}

TEST_CASE_TEMPLATE("non-finite parameters and bad optimizer state are io_errors", B,
                   RLHF_TEST_BACKENDS) {
  const auto cfg = tiny(false);
  model::gpt<B> m(cfg);
  m.init(9);
  model::adamw<B> opt(m.num_params());
  train_a_bit(m, opt, 2, 3);
  auto vh = model::make_value_head<B>(cfg.n_embd);
  vh.init(1);
  const auto path = tmp_path("poison_src.safetensors");
  model::save_checkpoint<B>(path, m, {&vh}, &opt);
  const auto f = model::load_safetensors(path);

  model::gpt<B> target(cfg);
  target.init(5);
  model::adamw<B> topt(target.num_params());
  auto tvh = model::make_value_head<B>(cfg.n_embd);
  const auto target_params = host<B>(target.params());
  const auto target_m2 = host<B>(topt.exp_avg_sq());
  auto untouched = [&] {
    CHECK(same_bits(host<B>(target.params()), target_params));
    CHECK(same_bits(host<B>(topt.exp_avg_sq()), target_m2));
    CHECK(topt.step_count() == 0);
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();

  struct poison {
    std::string tensor;
    std::size_t index;
    float value;
  };
  for (const poison& p :
       {poison{"h.0.ln_1.weight", 3, nan}, poison{"wte.weight", 17, inf},
        poison{"lm_head.weight", 0, -inf}, poison{"v_head.weight", 2, nan},
        poison{"v_head.bias", 0, inf}, poison{"optimizer.exp_avg", 40, nan},
        poison{"optimizer.exp_avg", 41, -inf}, poison{"optimizer.exp_avg_sq", 7, -1.0f},
        poison{"optimizer.exp_avg_sq", 8, -1e-30f}, poison{"optimizer.exp_avg_sq", 9, nan},
        poison{"optimizer.exp_avg_sq", 10, inf}}) {
    CAPTURE(p.tensor);
    CAPTURE(p.value);
    const auto bad = edited_copy(f, "poison.safetensors", [&](auto& ts, auto&) {
      tensor_named(ts, p.tensor).data[p.index] = p.value;
    });
    const auto e = io_error_of(
        [&] { (void)model::load_checkpoint<B>(bad, target, {&tvh}, &topt); });
    CHECK(contains(e, "load_checkpoint: "));
    CHECK(contains(e, "tensor '" + p.tensor + "'"));
    CHECK(contains(e, "flat index " + std::to_string(p.index)));
    untouched();
  }
  // -0 is a valid second moment.
  const auto neg_zero = edited_copy(f, "neg_zero.safetensors", [&](auto& ts, auto&) {
    tensor_named(ts, "optimizer.exp_avg_sq").data[4] = -0.0f;
  });
  model::gpt<B> m2(cfg);
  model::adamw<B> opt2(m2.num_params());
  CHECK_NOTHROW((void)model::load_checkpoint<B>(neg_zero, m2, &opt2));
  // The clean file loads and resumes bit-identically.
  CHECK_NOTHROW((void)model::load_checkpoint<B>(path, target, {&tvh}, &topt));
  CHECK(same_bits(host<B>(target.params()), host<B>(m.params())));
  train_a_bit(m, opt, 1, 77);
  train_a_bit(target, topt, 1, 77);
  CHECK(same_bits(host<B>(target.params()), host<B>(m.params())));
  CHECK(same_bits(host<B>(topt.exp_avg_sq()), host<B>(opt.exp_avg_sq())));
}

TEST_CASE_TEMPLATE("optimizer.step must be a plain decimal integer in range", B,
                   RLHF_TEST_BACKENDS) {
  const auto cfg = tiny(true);
  model::gpt<B> m(cfg);
  m.init(2);
  model::adamw<B> opt(m.num_params());
  train_a_bit(m, opt, 1, 4);
  const auto path = tmp_path("step_src.safetensors");
  model::save_checkpoint<B>(path, m, &opt);
  const auto f = model::load_safetensors(path);
  model::gpt<B> target(cfg);
  model::adamw<B> topt(target.num_params());
  for (const std::string& bad :
       std::vector<std::string>{"9223372036854775807", "9223372036854775806", "9007199254740992",
                                "99999999999999999999999", " 7", "7 ", "+7", "-7", "-0", "7x", "07",
                                "00", "", "0x7", "7.0", "1e3", std::string("7\0", 2)}) {
    CAPTURE(bad);
    const auto p = edited_copy(f, "step.safetensors",
                               [&](auto&, auto& md) { md["optimizer.step"] = bad; });
    const auto e = io_error_of([&] { (void)model::load_checkpoint<B>(p, target, &topt); });
    CHECK(contains(e, "load_checkpoint: "));
    CHECK(contains(e, "\"optimizer.step\""));
    CHECK(topt.step_count() == 0);
  }
  for (const std::string good : {"0", "7", "1000000", "9007199254740991"}) {
    CAPTURE(good);
    const auto p = edited_copy(f, "step.safetensors",
                               [&](auto&, auto& md) { md["optimizer.step"] = good; });
    REQUIRE_NOTHROW((void)model::load_checkpoint<B>(p, target, &topt));
    CHECK(std::to_string(topt.step_count()) == good);
  }
  CHECK(model::max_checkpoint_step == 9007199254740991);
  // AdamW itself never counts past the bound (adamw_max_step), so every step count a
  // checkpoint can be saved with loads back; from the largest, the next step is refused.
  CHECK(topt.step_count() == model::max_checkpoint_step);
  CHECK_THROWS_AS(train_a_bit(target, topt, 1, 6), rlhf::config_error);
  CHECK(topt.step_count() == model::max_checkpoint_step);
  for (float v : host<B>(target.params())) REQUIRE(std::isfinite(v));
}

TEST_CASE("gpt_config_from_json: integer fields in range, float fields representable") {
  using J = nlohmann::json;
  auto config_error_of = [](const J& j) {
    return error_of<rlhf::config_error>([&] { (void)model::gpt_config_from_json(j); });
  };
  for (const char* text : {R"({"n_layer": 18446744073709551615})",
                           R"({"n_layer": 9223372036854775808})", R"({"n_embd": 7.5})",
                           R"({"n_embd": 1e300})", R"({"n_embd": 16.0})", R"({"n_embd": "16"})"}) {
    CAPTURE(text);
    const auto e = config_error_of(J::parse(text));
    CHECK(contains(e, "gpt_config_from_json: field '"));
    CHECK(contains(e, "must be an integer"));
  }
  for (const char* text : {R"({"layernorm_eps": 1e39})", R"({"layernorm_eps": -1e300})",
                           R"({"dropout": 1e300})", R"({"layernorm_eps": "1e-5"})"}) {
    CAPTURE(text);
    const auto e = config_error_of(J::parse(text));
    CHECK(contains(e, "gpt_config_from_json: field '"));
    CHECK(contains(e, "must be a number"));
  }
  CHECK(model::gpt_config_from_json(J::parse(R"({"n_layer": 3, "layernorm_eps": 1e-6})")).n_layer ==
        3);
  // Also through load_config, as an io_error naming the file and the field.
  const auto p = tmp_path("eps.json");
  write_text(p, R"({"layernorm_eps": 1e39})");
  const auto e = io_error_of([&] { (void)model::load_config(p); });
  CHECK(contains(e, p.string()));
  CHECK(contains(e, "'layernorm_eps'"));
}

TEST_CASE_TEMPLATE("long untrusted strings are cut in messages", B, RLHF_TEST_BACKENDS) {
  const std::string huge(4'000'000, 'x');
  // Config files: an unknown field, a string where a number belongs, a syntax error inside
  // a long token.
  const auto p = tmp_path("long.json");
  for (const std::string& text :
       {"{\"" + huge + "\": 1}", "{\"n_layer\": \"" + huge + "\"}",
        "{\"n_layer\": [\"" + huge + "\"]}", "{\"n_layer\": \"" + huge + "\n\"}",
        "{\"n_layer\": 1" + std::string(2'000'000, '0') + "x}", "{\"" + huge}) {
    write_text(p, text);
    const auto e = io_error_of([&] { (void)model::load_config(p); });
    CHECK(contains(e, "load_config: "));
    CHECK(e.size() < 1000);
  }
  // Checkpoint metadata.
  const auto cfg = tiny(true);
  model::gpt<B> m(cfg);
  m.init(2);
  model::adamw<B> opt(m.num_params());
  const auto path = tmp_path("long_src.safetensors");
  model::save_checkpoint<B>(path, m, &opt);
  const auto f = model::load_safetensors(path);
  model::gpt<B> target(cfg);
  model::adamw<B> topt(target.num_params());
  const std::vector<std::pair<std::string, std::string>> edits = {
      {"weight_layout", huge},
      {"optimizer.step", huge},
      {"optimizer.step", std::string(4'000'000, '7')},
      {"config", "{\"n_head\": \"" + huge + "\"}"},
      {"config", "{\"" + huge + "\": 2}"},
      {"config", "\"" + huge + "\""},
      {"config", huge},
      {"heads", "{\"" + huge + "\": 1}"},
  };
  for (const auto& [key, value] : edits) {
    CAPTURE(key);
    CAPTURE(value.substr(0, 20));
    const auto bad = edited_copy(f, "long.safetensors", [&](auto&, auto& md) { md[key] = value; });
    const auto e = io_error_of([&] { (void)model::load_checkpoint<B>(bad, target, &topt); });
    CHECK(contains(e, "load_checkpoint: "));
    CHECK(e.size() < 1000);
  }
  // A long head prefix listed in the file, asked for by another name.
  const auto heads = edited_copy(f, "long_heads.safetensors", [&](auto&, auto& md) {
    md["heads"] = nlohmann::json::array({{{"prefix", huge}, {"n_embd", 8}}}).dump();
  });
  auto vh = model::make_value_head<B>(cfg.n_embd);
  const auto e = io_error_of([&] { (void)model::load_checkpoint<B>(heads, target, {&vh}); });
  CHECK(contains(e, "no head 'v_head'"));
  CHECK(e.size() < 1000);
}

namespace {

/// Best of three load_config timings on a checkpoint-like file of `n` one-element tensors.
double load_config_seconds(std::size_t n, const model::gpt_config& cfg) {
  std::vector<float> values(n, 1.0f);
  std::vector<std::string> names(n);
  std::vector<model::tensor_view> views;
  views.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    names[i] = "t." + std::to_string(i);
    views.push_back(
        model::tensor_view::f32(names[i], shape{1}, std::span<const float>(&values[i], 1)));
  }
  const auto p = tmp_path("many_tensors_" + std::to_string(n) + ".safetensors");
  model::save_safetensors(p, views, {{"config", model::to_json(cfg).dump()}});
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    const model::gpt_config got = model::load_config(p);
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    CHECK(got.n_embd == cfg.n_embd);
    CHECK(got.vocab_size == cfg.vocab_size);
  }
  return best;
}

}  // namespace

TEST_CASE("load_config reads a 100,000-tensor header in linear time") {
  // The header is parsed by the same linear, depth-limited builder as load_safetensors;
  // nlohmann's callback parser took ~50 s here (it rescans the parent on each object's
  // end), the builder ~0.3 s idle. The bound sits between them with a wide margin each way.
  const double s = load_config_seconds(100'000, model::gpt_config::tiny());
  MESSAGE("load_config on 100,000 tensors: ", s, " s (best of three)");
#if defined(__SANITIZE_ADDRESS__) || !defined(NDEBUG)
  CHECK(s < 60.0);
#else
  CHECK(s < 5.0);
#endif
}

}  // namespace test_checkpoint_cases
