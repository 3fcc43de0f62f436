// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Writes the seed corpora of the fuzz targets with the library itself, plus a few
// hand-made edge cases:
//   make_corpus <dir>   creates <dir>/{safetensors,checkpoint,config}/
// The committed corpus (tests/fuzz/corpus/) is this program's output; rerun it (target
// fuzz_make_corpus of tests/fuzz/CMakeLists.txt) when the file formats change.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <span>
#include <string>
#include <vector>

#include "rlhf/backends/eigen.hpp"
#include "rlhf/model/checkpoint.hpp"
#include "tiny_model.hpp"

namespace model = rlhf::model;
namespace fs = std::filesystem;
using B = rlhf::eigen_backend;

namespace {

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// 8-byte little-endian length prefix.
std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>(n >> (8 * i));
  return s;
}

/// A safetensors file with `header` as its (unpadded) header and `data` after it.
std::string raw_file(const std::string& header, const std::string& data = "") {
  return le64(header.size()) + header + data;
}

/// Hand-made inputs every reader must reject with an rlhf::error.
void edge_cases(const fs::path& dir) {
  write_bytes(dir / "edge_empty", "");
  write_bytes(dir / "edge_short_prefix", std::string("\x10\x00\x00", 3));
  write_bytes(dir / "edge_length_past_end", le64(std::uint64_t{1} << 40) + "{}");
  write_bytes(dir / "edge_length_max", le64(~std::uint64_t{0}) + "{\"a\":1}");
  write_bytes(dir / "edge_nested_arrays", raw_file(std::string(512, '[')));
  write_bytes(dir / "edge_nested_objects", raw_file([] {
                std::string s;
                for (int i = 0; i < 256; ++i) s += "{\"a\":";
                return s;
              }()));
  write_bytes(dir / "edge_not_json", raw_file("not json at all"));
  write_bytes(dir / "edge_array_header", raw_file("[1,2,3]"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_corpus <output directory>\n";
    return 2;
  }
  const fs::path root = argv[1];
  const fs::path st = root / "safetensors";
  const fs::path ck = root / "checkpoint";
  const fs::path cf = root / "config";
  for (const auto& d : {st, ck, cf}) fs::create_directories(d);

  // safetensors: tensors of both dtypes, ranks 1..4, an empty tensor, metadata.
  {
    const std::vector<float> a{1.0f, -0.0f, 2.5f, 3.0f, 1e-40f, -7.0f};
    const std::vector<std::int32_t> ids{0, 1, -1, 2147483647};
    const std::vector<float> none;
    const std::vector<float> cube(8, 0.5f);
    const std::vector<model::tensor_view> views{
        model::tensor_view::f32("a", rlhf::shape{2, 3}, a),
        model::tensor_view::i32("ids", rlhf::shape{4}, ids),
        model::tensor_view::f32("empty", rlhf::shape{0, 3}, none),
        model::tensor_view::f32("cube", rlhf::shape{1, 2, 2, 2}, cube)};
    model::save_safetensors(st / "valid_mixed.safetensors", views,
                            {{"format", "pt"}, {"note", "fuzz seed"}});
    model::save_safetensors(st / "valid_one.safetensors", std::vector<model::tensor_view>{views[0]},
                            {});
    model::save_safetensors(st / "valid_no_tensors.safetensors", std::vector<model::tensor_view>{},
                            {{"only", "metadata"}});
    edge_cases(st);
  }

  // checkpoint: the tiny model alone, with AdamW state, with a value head and AdamW state.
  {
    model::gpt<B> m(rlhf_fuzz::tiny_config());
    m.init(1);
    model::adamw<B> opt(m.num_params());
    model::scalar_head<B> head(m.config().n_embd, rlhf_fuzz::head_prefix);
    model::save_checkpoint<B>(ck / "trunk.safetensors", m);
    model::save_checkpoint<B>(ck / "trunk_adamw.safetensors", m, &opt, {{"note", "seed"}});
    model::save_checkpoint<B>(ck / "trunk_head_adamw.safetensors", m,
                              std::vector<const model::scalar_head<B>*>{&head}, &opt);
    auto other = rlhf_fuzz::tiny_config();
    other.tie_embeddings = false;
    model::gpt<B> untied(other);
    untied.init(2);
    model::save_checkpoint<B>(ck / "untied.safetensors", untied);
    edge_cases(ck);
  }

  // config: JSON objects (written as .json files are read) and a checkpoint's header.
  {
    write_bytes(cf / "full.json", model::to_json(rlhf_fuzz::tiny_config()).dump());
    write_bytes(cf / "partial.json", R"({"n_layer": 2, "n_embd": 16, "n_head": 4})");
    write_bytes(cf / "empty_object.json", "{}");
    write_bytes(cf / "bad_type.json", R"({"n_layer": 1.5, "dropout": "x"})");
    write_bytes(cf / "unknown_field.json", R"({"vocab": 3})");
    write_bytes(cf / "trunk.safetensors", read_bytes(ck / "trunk.safetensors"));
    write_bytes(cf / "config_only.safetensors",
                raw_file(nlohmann::json{
                    {"__metadata__", {{"config", model::to_json(rlhf_fuzz::tiny_config()).dump()}}}}
                             .dump()));
    edge_cases(cf);
  }

  for (const auto& d : {st, ck, cf}) {
    for (const auto& e : fs::directory_iterator(d)) {
      std::cout << e.path().string() << " " << fs::file_size(e.path()) << "\n";
    }
  }
  return 0;
}
