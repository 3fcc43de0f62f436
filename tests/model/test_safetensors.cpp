// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// rlhf::model safetensors checkpoints (docs/model.md, "Checkpoints (safetensors)"):
// bit-exact round trips, the file layout, every corruption → io_error with its reason,
// atomic replacement, concurrent saves, per-tensor CRC32C checksums, hostile headers (deep
// nesting, many tensors), and a cross-check with an independent Python reader/writer.
#include <doctest/doctest.h>
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "rlhf/model/detail/crc32c.hpp"
#include "rlhf/model/safetensors.hpp"
#include "skip.hpp"

namespace test_safetensors_cases {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RLHF_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define RLHF_TEST_SANITIZED 1
#endif
#endif

namespace m = rlhf::model;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("rlhf_safetensors_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  [[nodiscard]] fs::path operator/(const std::string& name) const { return path / name; }
  [[nodiscard]] std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), {}));
  }
};

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}
void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}
std::string le64(std::uint64_t n) {
  std::string s(8, '\0');
  for (auto& c : s) {
    c = static_cast<char>(n & 0xffu);
    n >>= 8;
  }
  return s;
}
/// A file with the given header text (not padded) and `data_bytes` zero bytes of data.
std::string raw_file(const std::string& header, std::size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\0');
}

std::uint64_t header_length(const std::string& bytes) {
  std::uint64_t n = 0;
  for (std::size_t i = 8; i-- > 0;) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  return n;
}

float from_bits(std::uint32_t b) { return std::bit_cast<float>(b); }
std::uint32_t bits(float f) { return std::bit_cast<std::uint32_t>(f); }

std::vector<m::named_tensor> sample_tensors() {
  std::vector<m::named_tensor> ts;
  ts.push_back({"wte.weight", rlhf::shape{2, 4},
                {1.0f, -0.0f, 0.0f, from_bits(0x7FC00001u) /* quiet NaN with payload */,
                 from_bits(0xFF800001u) /* signalling NaN, sign set */,
                 from_bits(0x00000001u) /* smallest denormal */,
                 from_bits(0x807FFFFFu) /* largest negative denormal */,
                 std::numeric_limits<float>::infinity()},
                m::tensor_dtype::f32,
                {}});
  ts.push_back({"h.0.ln_1.weight", rlhf::shape{3}, {0.5f, -1e30f, 3.25f}, m::tensor_dtype::f32, {}});
  ts.push_back({"empty", rlhf::shape{0}, {}, m::tensor_dtype::f32, {}});
  ts.push_back({"step", rlhf::shape{1, 2}, {}, m::tensor_dtype::i32,
                {std::numeric_limits<std::int32_t>::min(), 42}});
  ts.push_back({"h.0.attn.c_attn.weight", rlhf::shape{1, 2, 1, 2}, {7, 8, 9, 10},
                m::tensor_dtype::f32, {}});
  return ts;
}

void check_same(const std::vector<m::named_tensor>& a, const std::vector<m::named_tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CAPTURE(a[i].name);
    CHECK(a[i].name == b[i].name);
    CHECK(a[i].shape == b[i].shape);
    CHECK(a[i].dtype == b[i].dtype);
    CHECK(a[i].int_data == b[i].int_data);
    REQUIRE(a[i].data.size() == b[i].data.size());
    for (std::size_t k = 0; k < a[i].data.size(); ++k) {
      CHECK(bits(a[i].data[k]) == bits(b[i].data[k]));
    }
  }
}

/// load_safetensors(p) throws io_error whose message contains `reason` and the path.
void check_load_fails(const fs::path& p, const std::string& reason) {
  CAPTURE(reason);
  try {
    (void)m::load_safetensors(p);
    FAIL("load_safetensors did not throw");
  } catch (const rlhf::io_error& e) {
    const std::string msg = e.what();
    CAPTURE(msg);
    CHECK(msg.find("load_safetensors: " + p.string() + ": ") == 0);
    CHECK(msg.find(reason) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("safetensors: load(save(x)) is bit-exact, in order, with metadata") {
  temp_dir dir;
  const auto p = dir / "model.safetensors";
  const auto ts = sample_tensors();
  const m::metadata_map meta{{"format", "pt"},
                             {"config", R"({"n_layer": 2, "n_head": 4})"},
                             {"empty", ""},
                             {"unicode", "\xCF\x80 \xE2\x89\xA0 3"}};
  m::save_safetensors(p, ts, meta);
  const auto f = m::load_safetensors(p);
  CHECK(f.path == p.string());
  check_same(f.tensors, ts);
  CHECK(f.metadata == meta);
  CHECK(std::isnan(f.tensors[0].data[3]));
  CHECK(std::signbit(f.tensors[0].data[1]));
  CHECK(dir.entries() == 1);  // no temporary file left behind

  SUBCASE("no metadata") {
    m::save_safetensors(p, ts);
    const auto g = m::load_safetensors(p);
    CHECK(g.metadata.empty());
    check_same(g.tensors, ts);
  }
  SUBCASE("views save without copies; a second save replaces the file") {
    const std::vector<float> w{1, 2, 3, 4, 5, 6};
    const std::vector<std::int32_t> k{-1, 1};
    const std::vector<m::tensor_view> views{m::tensor_view::f32("b", rlhf::shape{2, 3}, w),
                                            m::tensor_view::i32("a", rlhf::shape{2}, k)};
    m::save_safetensors(p, views, {{"k", "v"}});
    const auto g = m::load_safetensors(p);
    REQUIRE(g.tensors.size() == 2);
    CHECK(g.tensors[0].name == "b");  // file order, not alphabetical
    CHECK(g.tensors[0].data == w);
    CHECK(g.tensors[1].int_data == k);
    CHECK(g.metadata == m::metadata_map{{"k", "v"}});
    CHECK(dir.entries() == 1);
  }
  SUBCASE("an empty checkpoint") {
    m::save_safetensors(p, std::vector<m::named_tensor>{});
    const auto g = m::load_safetensors(p);
    CHECK(g.tensors.empty());
  }
}

TEST_CASE("safetensors: BF16 and F16 tensors are written as 2-byte values, read as float") {
  temp_dir dir;
  const auto p = dir / "half.safetensors";
  // 1, -2, the smallest F16 subnormal, +inf (F16); 1, -2, 2^-133 (a BF16 subnormal), NaN.
  const std::vector<std::uint16_t> h{0x3c00, 0xc000, 0x0001, 0x7c00};
  const std::vector<std::uint16_t> b{0x3f80, 0xc000, 0x0001, 0x7fc0};
  const std::vector<m::tensor_view> views{m::tensor_view::f16("h", rlhf::shape{2, 2}, h),
                                          m::tensor_view::bf16("b", rlhf::shape{4}, b)};
  m::save_safetensors(p, views);  // with checksums, verified on load
  const auto f = m::load_safetensors(p);
  REQUIRE(f.tensors.size() == 2);
  CHECK(f.tensors[0].dtype == m::tensor_dtype::f16);
  CHECK(f.tensors[0].data == std::vector<float>{1.0f, -2.0f, std::ldexp(1.0f, -24), INFINITY});
  CHECK(f.tensors[1].dtype == m::tensor_dtype::bf16);
  CHECK(f.tensors[1].data[0] == 1.0f);
  CHECK(f.tensors[1].data[1] == -2.0f);
  CHECK(f.tensors[1].data[2] == std::ldexp(1.0f, -133));
  CHECK(std::isnan(f.tensors[1].data[3]));
  // 2 bytes per value in the file; the header names the dtypes.
  const std::string bytes = read_bytes(p);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  CHECK(bytes.size() == 8 + n + 16);
  const auto j = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(j.at("h").at("dtype") == "F16");
  CHECK(j.at("b").at("dtype") == "BF16");
  CHECK(j.at("b").at("data_offsets") == nlohmann::json::array({8, 16}));
  // named_tensors keep their dtype: the floats are rounded to it (nearest even).
  auto ts = f.tensors;
  ts[1].data[0] = 1.0f + std::ldexp(1.0f, -9);  // below half an ulp of BF16 at 1: -> 1
  m::save_safetensors(p, ts);
  const auto g = m::load_safetensors(p);
  CHECK(g.tensors[1].dtype == m::tensor_dtype::bf16);
  CHECK(g.tensors[1].data[0] == 1.0f);
  CHECK(g.tensors[0].data == f.tensors[0].data);
  // A BF16 tensor whose byte count does not match its shape.
  write_bytes(p, raw_file(R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}})", 8));
  check_load_fails(p, "tensor 'a': shape (3) of BF16 needs 6 bytes, data_offsets [0, 8] hold 8");
}

TEST_CASE("safetensors: the file layout") {
  temp_dir dir;
  const auto p = dir / "a.safetensors";
  const std::vector<float> w{1.0f, 2.0f, 3.0f};
  m::save_safetensors(p, std::vector<m::tensor_view>{m::tensor_view::f32("w", rlhf::shape{3}, w)},
                      {{"format", "pt"}});
  const std::string bytes = read_bytes(p);
  REQUIRE(bytes.size() >= 8);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  CHECK(n % 8 == 0);
  CHECK(bytes.size() == 8 + n + 12);
  const std::string header = bytes.substr(8, n);
  const auto j = nlohmann::json::parse(header);  // trailing spaces are allowed
  CHECK(j.at("__metadata__").at("format") == "pt");
  CHECK(j.at("w").at("dtype") == "F32");
  CHECK(j.at("w").at("shape") == nlohmann::json::array({3}));
  CHECK(j.at("w").at("data_offsets") == nlohmann::json::array({0, 12}));
  CHECK(header.find_last_not_of(' ') == header.find_last_of('}'));
  // Little-endian data: 1.0f = 0x3F800000.
  CHECK(static_cast<unsigned char>(bytes[8 + n + 3]) == 0x3F);
  CHECK(static_cast<unsigned char>(bytes[8 + n + 2]) == 0x80);
}

TEST_CASE("safetensors: a truncated file is an io_error at every length") {
  temp_dir dir;
  const auto good = dir / "good.safetensors";
  m::save_safetensors(good, sample_tensors(), {{"format", "pt"}});
  const std::string bytes = read_bytes(good);
  const auto p = dir / "cut.safetensors";
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    CAPTURE(len);
    write_bytes(p, bytes.substr(0, len));
    check_load_fails(p, "truncated");
  }
  // A longer file (trailing garbage) is rejected too.
  write_bytes(p, bytes + "xyzw");
  check_load_fails(p, "4 trailing bytes");
}

TEST_CASE("safetensors: flipped header bytes never escape as anything but io_error") {
  temp_dir dir;
  const auto good = dir / "good.safetensors";
  m::save_safetensors(good, sample_tensors(), {{"format", "pt"}});
  const std::string bytes = read_bytes(good);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  const auto p = dir / "flip.safetensors";
  int rejected = 0;
  for (std::size_t i = 0; i < 8 + n; ++i) {
    for (unsigned mask : {0x01u, 0x20u, 0x80u}) {
      std::string b = bytes;
      b[i] = static_cast<char>(static_cast<unsigned>(static_cast<unsigned char>(b[i])) ^ mask);
      write_bytes(p, b);
      CAPTURE(i);
      try {
        (void)m::load_safetensors(p);  // e.g. a letter of a name changed: still valid
      } catch (const rlhf::io_error&) {
        ++rejected;
      }
    }
  }
  CHECK(rejected > 0);
}

TEST_CASE("safetensors: each corruption has its reason") {
  temp_dir dir;
  const auto p = dir / "bad.safetensors";
  const std::string t = R"("dtype":"F32","shape":[2],"data_offsets":)";

  check_load_fails(dir / "missing.safetensors", "no such file");
  check_load_fails(dir.path, "not a regular file");

  write_bytes(p, le64(1000) + "{}");
  check_load_fails(p, "truncated: header length 1000 exceeds the 2 bytes");
  write_bytes(p, le64(std::numeric_limits<std::uint64_t>::max()) + "{}");
  check_load_fails(p, "truncated: header length");

  write_bytes(p, raw_file(R"({"a": {)", 0));
  check_load_fails(p, "malformed JSON header");
  write_bytes(p, raw_file("[1, 2]", 0));
  check_load_fails(p, "expected a JSON object, got array");
  write_bytes(p, raw_file("", 0));
  check_load_fails(p, "malformed JSON header");

  write_bytes(p, raw_file(R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,4]}})", 4));
  check_load_fails(p, "tensor 'a': unsupported dtype 'F64' (supported: F32, I32, BF16, F16)");
  write_bytes(p, raw_file(R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", 8));
  check_load_fails(p, "unsupported dtype '7'");

  write_bytes(p, raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8));
  check_load_fails(p, "tensor 'a': shape (3) of F32 needs 12 bytes, data_offsets [0, 8] hold 8");
  write_bytes(p, raw_file(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})", 4));
  check_load_fails(p, "tensor 'a': rank 0 is not supported");
  write_bytes(p, raw_file(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4]}})", 4));
  check_load_fails(p, "rank 5 is not supported");
  write_bytes(p, raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8));
  check_load_fails(p, "shape entries must be non-negative integers");
  write_bytes(p, raw_file(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", 8));
  check_load_fails(p, "is too large");
  // Past rlhf::shape's element limit (2^48) but within the byte arithmetic, and with a zero
  // dimension beside it: still this reader's io_error, not a shape_error from rlhf::shape.
  write_bytes(
      p, raw_file(R"({"a":{"dtype":"F32","shape":[16777217,16777216],"data_offsets":[0,8]}})", 8));
  check_load_fails(p, "is too large");
  write_bytes(
      p, raw_file(R"({"a":{"dtype":"F32","shape":[0,281474976710657],"data_offsets":[0,0]}})", 0));
  check_load_fails(p, "is too large");
  write_bytes(p, raw_file(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8));
  check_load_fails(p, "tensor 'a': missing \"shape\"");
  write_bytes(p, raw_file(R"({"a":[1]})", 8));
  check_load_fails(p, "tensor 'a': entry must be an object");

  write_bytes(p, raw_file("{\"a\":{" + t + "[0,-8]}}", 8));
  check_load_fails(p, "data_offsets must be two non-negative integers");
  write_bytes(p, raw_file("{\"a\":{" + t + "[0]}}", 8));
  check_load_fails(p, "data_offsets must be [begin, end]");
  write_bytes(p, raw_file("{\"a\":{" + t + "[8,0]}}", 8));
  check_load_fails(p, "tensor 'a': data_offsets [8, 0] end before they begin");
  write_bytes(p, raw_file("{\"a\":{" + t + "[0,8]},\"b\":{" + t + "[4,12]}}", 12));
  check_load_fails(p, "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
  write_bytes(p, raw_file("{\"a\":{" + t + "[0,8]},\"b\":{" + t + "[12,20]}}", 20));
  check_load_fails(p, "tensor 'b': data_offsets [12, 20] leave a gap after byte 8");
  write_bytes(p, raw_file("{\"a\":{" + t + "[4,12]}}", 12));
  check_load_fails(p, "leave a gap after byte 0");
  write_bytes(p, raw_file("{\"a\":{" + t + "[0,8]},\"b\":{" + t + "[8,16]}}", 12));
  check_load_fails(p, "truncated: tensor 'b' data_offsets [8, 16] go beyond the data section of 12 bytes");
  write_bytes(p, raw_file("{\"a\":{" + t + "[0,8]}}", 9));
  check_load_fails(p, "the data section has 9 bytes but the tensors cover 8 (1 trailing bytes)");

  write_bytes(p, raw_file("{\"a\":{" + t + "[0,8]},\"a\":{" + t + "[8,16]}}", 16));
  check_load_fails(p, "duplicate tensor name 'a'");

  write_bytes(p, raw_file(R"({"__metadata__":{"n":1}})", 0));
  check_load_fails(p, "__metadata__ value of 'n' must be a string");
  write_bytes(p, raw_file(R"({"__metadata__":[1]})", 0));
  check_load_fails(p, "__metadata__ must be an object of strings");

  // Unordered header keys are fine: file order is the offset order.
  write_bytes(p, raw_file("{\"b\":{" + t + "[8,16]},\"a\":{" + t + "[0,8]}}", 16));
  const auto f = m::load_safetensors(p);
  REQUIRE(f.tensors.size() == 2);
  CHECK(f.tensors[0].name == "a");
  CHECK(f.tensors[1].name == "b");
}

TEST_CASE("safetensors: check_tensor names the tensor") {
  temp_dir dir;
  const auto p = dir / "c.safetensors";
  m::save_safetensors(p, sample_tensors());
  const auto f = m::load_safetensors(p);
  CHECK(m::check_tensor(f, "h.0.ln_1.weight", rlhf::shape{3}).data[0] == 0.5f);
  CHECK(m::check_tensor(f, "step", rlhf::shape{1, 2}, m::tensor_dtype::i32).int_data[1] == 42);
  CHECK_THROWS_WITH_AS(
      (void)m::check_tensor(f, "h.0.ln_1.weight", rlhf::shape{4}),
      ("check_tensor: " + p.string() + ": tensor 'h.0.ln_1.weight' has shape (3), expected (4)")
          .c_str(),
      rlhf::io_error);
  CHECK_THROWS_WITH_AS((void)m::check_tensor(f, "wpe.weight", rlhf::shape{4}),
                       ("check_tensor: " + p.string() + ": tensor 'wpe.weight' is missing").c_str(),
                       rlhf::io_error);
  CHECK_THROWS_WITH_AS((void)m::check_tensor(f, "step", rlhf::shape{1, 2}),
                       ("check_tensor: " + p.string() +
                        ": tensor 'step' has dtype I32, expected F32")
                           .c_str(),
                       rlhf::io_error);
}

TEST_CASE("safetensors: a failed save leaves the old file and no temporary file") {
  temp_dir dir;
  const auto p = dir / "keep.safetensors";
  const auto ts = sample_tensors();
  m::save_safetensors(p, ts, {{"v", "1"}});
  const std::string before = read_bytes(p);

  auto check_save_fails = [&](const std::vector<m::named_tensor>& bad, const std::string& reason,
                              const m::metadata_map& meta = {}) {
    CAPTURE(reason);
    try {
      m::save_safetensors(p, bad, meta);
      FAIL("save_safetensors did not throw");
    } catch (const rlhf::io_error& e) {
      const std::string msg = e.what();
      CAPTURE(msg);
      CHECK(msg.find("save_safetensors: " + p.string() + ": ") == 0);
      CHECK(msg.find(reason) != std::string::npos);
    }
    CHECK(read_bytes(p) == before);
    CHECK(dir.entries() == 1);
  };

  auto dup = ts;
  dup[1].name = dup[0].name;
  check_save_fails(dup, "duplicate tensor name 'wte.weight'");
  auto empty_name = ts;
  empty_name[2].name = "";
  check_save_fails(empty_name, "a tensor has an empty name");
  auto reserved = ts;
  reserved[0].name = "__metadata__";
  check_save_fails(reserved, "\"__metadata__\" is reserved");
  auto short_data = ts;
  short_data[1].data.pop_back();
  check_save_fails(short_data, "tensor 'h.0.ln_1.weight' has 2 values, its shape (3) needs 3");
  auto bad_utf8 = ts;
  bad_utf8[0].name = "w\xFF";
  check_save_fails(bad_utf8, "not valid UTF-8");
  check_save_fails(ts, "not valid UTF-8", {{"k", "\xC3"}});
  check_save_fails(ts, "metadata key \"rlhf.crc32c\" is reserved", {{"rlhf.crc32c", "{}"}});

  SUBCASE("the target directory does not exist") {
    const auto q = dir / "no_such_dir" / "x.safetensors";
    CHECK_THROWS_AS(m::save_safetensors(q, ts), rlhf::io_error);
    CHECK(dir.entries() == 1);
  }
  SUBCASE("the target directory is a regular file") {
    const auto q = p / "x.safetensors";
    try {
      m::save_safetensors(q, ts);
      FAIL("save below a regular file did not throw");
    } catch (const rlhf::io_error& e) {
      CHECK(std::string(e.what()).find("cannot create temporary file") != std::string::npos);
    }
    CHECK(read_bytes(p) == before);
    CHECK(dir.entries() == 1);
  }
  SUBCASE("the target is a directory: rename fails, the temporary file is removed") {
    const auto d = dir / "a_dir";
    fs::create_directories(d / "inside");
    try {
      m::save_safetensors(d, ts);
      FAIL("save over a directory did not throw");
    } catch (const rlhf::io_error& e) {
      CHECK(std::string(e.what()).find("cannot rename") != std::string::npos);
    }
    CHECK(dir.entries() == 2);  // keep.safetensors and a_dir, no temporary file
    CHECK(fs::is_directory(d / "inside"));
  }
  SUBCASE("the target directory is not writable") {
    // Root ignores permissions (CI runs as root), so the save runs in a child process that,
    // when root, first becomes nobody (uid and gid 65534), for whom the directory is
    // read-only too. The child reports by its exit status.
    enum : int { threw = 10, did_not_throw, other_message, no_setuid, cannot_read };
    fs::permissions(dir.path,
                    fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write,
                    fs::perm_options::remove);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      if (::geteuid() == 0 &&
          (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)) {
        ::_exit(no_setuid);
      }
      if (read_bytes(p) != before) {
        ::_exit(cannot_read);  // the directory is not reachable at all: not what is tested
      }
      try {
        m::save_safetensors(p, ts);
      } catch (const rlhf::io_error& e) {
        ::_exit(std::string(e.what()).find("cannot create temporary file") != std::string::npos
                    ? threw
                    : other_message);
      }
      ::_exit(did_not_throw);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    fs::permissions(dir.path, fs::perms::owner_all, fs::perm_options::add);
    REQUIRE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    CAPTURE(code);
    if (code == cannot_read) {
      rlhf_test::skip("nobody cannot read " + p.string() + ": read-only directory not tested");
    } else {
      CHECK_MESSAGE(code != did_not_throw, "save into a read-only directory did not throw");
      CHECK_MESSAGE(code != other_message, "the error is not 'cannot create temporary file'");
      CHECK_MESSAGE(code != no_setuid, "could not become nobody (uid 65534)");
      CHECK(code == threw);
    }
    CHECK(read_bytes(p) == before);
    CHECK(dir.entries() == 1);
  }
}

TEST_CASE("safetensors: an independent Python reader and writer agree") {
  const std::string python = RLHF_SYSTEM_PYTHON;
  const std::string script = RLHF_SAFETENSORS_CHECK_SCRIPT;
  REQUIRE_MESSAGE(fs::exists(script), script);
  if (!rlhf_test::python_with(python, {}, "the Python safetensors cross-check")) {
    return;
  }
  temp_dir dir;

  SUBCASE("C++ writes, Python reads") {
    const auto p = dir / "cpp.safetensors";
    const auto ts = sample_tensors();
    const m::metadata_map meta{{"format", "pt"}, {"config", R"({"n_embd": 8})"}};
    m::save_safetensors(p, ts, meta);
    nlohmann::json side;
    side["metadata"] = meta;
    side["tensors"] = nlohmann::json::array();
    for (const auto& t : ts) {
      std::vector<std::uint32_t> b;
      for (float v : t.data) b.push_back(bits(v));
      for (std::int32_t v : t.int_data) b.push_back(static_cast<std::uint32_t>(v));
      std::vector<rlhf::index_t> dims;
      for (int a = 0; a < t.shape.rank(); ++a) dims.push_back(t.shape[a]);
      side["tensors"].push_back(
          {{"name", t.name}, {"dtype", m::to_string(t.dtype)}, {"shape", dims}, {"bits", b}});
    }
    // Python sees our checksums as one more metadata string.
    const std::string bytes = read_bytes(p);
    const auto header = nlohmann::json::parse(bytes.substr(8, header_length(bytes)));
    auto file_meta = header.at("__metadata__").get<m::metadata_map>();
    CHECK(file_meta.erase("rlhf.crc32c") == 1);
    CHECK(file_meta == meta);
    side["metadata"] = header.at("__metadata__");
    write_bytes(dir / "cpp.json", side.dump());
    const std::string cmd = python + " " + script + " verify " + p.string() + " " +
                            (dir / "cpp.json").string();
    CHECK(std::system(cmd.c_str()) == 0);
  }
  SUBCASE("Python writes, C++ reads") {
    const auto p = dir / "py.safetensors";
    const std::string cmd = python + " " + script + " write " + p.string() + " " +
                            (dir / "py.json").string();
    REQUIRE(std::system(cmd.c_str()) == 0);
    const auto side = nlohmann::json::parse(read_bytes(dir / "py.json"));
    const auto f = m::load_safetensors(p);
    CHECK(f.metadata == side.at("metadata").get<m::metadata_map>());
    REQUIRE(f.tensors.size() == side.at("tensors").size());
    for (std::size_t i = 0; i < f.tensors.size(); ++i) {
      const auto& want = side.at("tensors")[i];
      const auto& got = f.tensors[i];
      CAPTURE(got.name);
      CHECK(got.name == want.at("name").get<std::string>());
      CHECK(m::to_string(got.dtype) == want.at("dtype").get<std::string>());
      std::vector<rlhf::index_t> dims;
      for (int a = 0; a < got.shape.rank(); ++a) dims.push_back(got.shape[a]);
      CHECK(dims == want.at("shape").get<std::vector<rlhf::index_t>>());
      std::vector<std::uint32_t> b;
      for (float v : got.data) b.push_back(bits(v));
      for (std::int32_t v : got.int_data) b.push_back(static_cast<std::uint32_t>(v));
      CHECK(b == want.at("bits").get<std::vector<std::uint32_t>>());
    }
  }
}

TEST_CASE("safetensors: a deeply nested header is an io_error, not a stack overflow") {
  temp_dir dir;
  const auto p = dir / "deep.safetensors";
  for (const std::size_t depth : {std::size_t{100'000}, std::size_t{1'000'000}}) {
    CAPTURE(depth);
    const std::string nest = std::string(depth, '[') + std::string(depth, ']');
    // Inside __metadata__ (a non-string value was quoted whole in the message).
    write_bytes(p, raw_file("{\"__metadata__\":{\"k\":" + nest + "}}", 0));
    check_load_fails(p, "malformed JSON header: the header is nested deeper than 16 levels");
    // As a tensor entry's dtype and shape (both were quoted whole in messages).
    write_bytes(
        p, raw_file("{\"a\":{\"dtype\":" + nest + ",\"shape\":[1],\"data_offsets\":[0,4]}}", 4));
    check_load_fails(p, "nested deeper than 16 levels");
    write_bytes(
        p,
        raw_file("{\"a\":{\"dtype\":\"F32\",\"shape\":" + nest + ",\"data_offsets\":[0,4]}}", 4));
    check_load_fails(p, "nested deeper than 16 levels");
    // As the tensor entry itself, and unterminated.
    write_bytes(p, raw_file("{\"a\":" + nest + "}", 0));
    check_load_fails(p, "nested deeper than 16 levels");
    write_bytes(p, raw_file("{\"a\":" + std::string(depth, '['), 0));
    check_load_fails(p, "nested deeper than 16 levels");
    // Inside the checksum metadata (a string holding JSON text).
    write_bytes(p, raw_file("{\"__metadata__\":{\"rlhf.crc32c\":\"" + nest + "\"}}", 0));
    check_load_fails(p, "malformed \"rlhf.crc32c\" metadata is nested deeper than 16 levels");
  }
  // Values quoted in messages are cut short.
  write_bytes(p, raw_file("{\"a\":{\"dtype\":[" + std::string(10'000, '7') +
                              "],\"shape\":[1],\"data_offsets\":[0,4]}}",
                          4));
  try {
    (void)m::load_safetensors(p);
    FAIL("load_safetensors did not throw");
  } catch (const rlhf::io_error& e) {
    CHECK(std::string(e.what()).size() < 400);
  }
}

TEST_CASE("safetensors: concurrent saves to one path never mix two models") {
  temp_dir dir;
  const auto p = dir / "shared.safetensors";
  // Two models with the same names and shapes (so their headers are the same size) and
  // recognisable values: all 1.0 or all 2.0, 2 MB each.
  const std::size_t big = 384 * 1024, small = 128 * 1024;
  std::vector<float> a_big(big, 1.0f), a_small(small, 1.0f), b_big(big, 2.0f), b_small(small, 2.0f);
  const std::vector<m::tensor_view> model_a{
      m::tensor_view::f32("w.big", rlhf::shape{384, 1024}, a_big),
      m::tensor_view::f32("w.small", rlhf::shape{128, 1024}, a_small)};
  const std::vector<m::tensor_view> model_b{
      m::tensor_view::f32("w.big", rlhf::shape{384, 1024}, b_big),
      m::tensor_view::f32("w.small", rlhf::shape{128, 1024}, b_small)};
  m::save_safetensors(p, model_a, {{"writer", "0"}});

  constexpr int rounds = 300;
  std::atomic<int> writers_left{2}, save_errors{0}, loads{0}, load_errors{0}, mixed{0};
  std::vector<std::string> messages(2);
  std::string load_message;
  auto writer = [&](int who, const std::vector<m::tensor_view>& model) {
    for (int r = 0; r < rounds; ++r) {
      try {
        m::save_safetensors(p, model, {{"writer", std::to_string(who)}});
      } catch (const rlhf::io_error& e) {
        if (save_errors.fetch_add(1) == 0) messages[static_cast<std::size_t>(who)] = e.what();
      }
    }
    writers_left.fetch_sub(1);
  };
  std::thread reader([&] {
    while (writers_left.load() > 0) {
      try {
        const auto f = m::load_safetensors(p);
        ++loads;
        const float v = f.tensors.at(0).data.at(0);
        bool whole = (v == 1.0f || v == 2.0f) && f.tensors.size() == 2;
        for (const auto& t : f.tensors) {
          whole = whole &&
                  std::all_of(t.data.begin(), t.data.end(), [v](float x) { return x == v; });
        }
        whole = whole && f.metadata.at("writer") == (v == 1.0f ? "0" : "1");
        if (!whole) ++mixed;
      } catch (const std::exception& e) {
        if (load_errors.fetch_add(1) == 0) load_message = e.what();
      }
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  std::thread w0(writer, 0, std::cref(model_a));
  std::thread w1(writer, 1, std::cref(model_b));
  w0.join();
  w1.join();
  reader.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("2 x ", rounds, " concurrent saves and ", loads.load(), " loads: ", seconds, " s");
  CAPTURE(messages[0]);
  CAPTURE(messages[1]);
  CAPTURE(load_message);
  CHECK(save_errors.load() == 0);  // serialised: no "cannot rename" failures
  CHECK(mixed.load() == 0);
  CHECK(load_errors.load() == 0);
  CHECK(loads.load() > 0);
  for (const auto& e : fs::directory_iterator(dir.path)) {
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
  }
  CHECK(dir.entries() == 1);
}

TEST_CASE("safetensors: a save removes its path's temporary files of dead writers only") {
  temp_dir dir;
  const auto p = dir / "ckpt.safetensors";
  // A pid that no longer exists: a child that exited and was reaped.
  const pid_t dead = ::fork();
  REQUIRE(dead >= 0);
  if (dead == 0) ::_exit(0);
  REQUIRE(::waitpid(dead, nullptr, 0) == dead);
  // A live writer: a child that sleeps until killed.
  const pid_t live = ::fork();
  REQUIRE(live >= 0);
  if (live == 0) {
    for (;;) ::pause();
  }
  const std::string d = std::to_string(dead), l = std::to_string(live);
  const fs::path stale = p.string() + ".tmp." + d + ".0123456789abcdef";
  const fs::path in_progress = p.string() + ".tmp." + l + ".fedcba9876543210";
  const std::vector<fs::path> kept{
      in_progress,
      dir / ("other.safetensors.tmp." + d + ".0123456789abcdef"),  // another target
      p.string() + ".tmp." + d,                                    // not our pattern
      p.string() + ".tmp." + d + ".0123456789ABCDEF",
      p.string() + ".tmp." + d + ".0123456789abcdef0",
      p.string() + ".tmp.x" + d + ".0123456789abcdef"};
  write_bytes(stale, "partial");
  for (const auto& k : kept) write_bytes(k, "partial");

  m::save_safetensors(p, sample_tensors());
  CHECK_FALSE(fs::exists(stale));
  for (const auto& k : kept) {
    CAPTURE(k.string());
    CHECK(fs::exists(k));
  }
  CHECK(dir.entries() == kept.size() + 1);
  check_same(m::load_safetensors(p).tensors, sample_tensors());
  ::kill(live, SIGKILL);
  ::waitpid(live, nullptr, 0);
}

namespace {

/// Seconds to save and (best of three) to load a file of `n` one-element tensors; checks
/// what it loaded.
std::pair<double, double> many_tensor_times(const fs::path& p, std::size_t n) {
  std::vector<float> values(n);
  std::vector<std::string> names(n);
  std::vector<m::tensor_view> views;
  views.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    values[i] = static_cast<float>(i);
    names[i] = "layer." + std::to_string(n - i) + ".w";  // header order is not sorted order
    views.push_back(
        m::tensor_view::f32(names[i], rlhf::shape{1}, std::span<const float>(&values[i], 1)));
  }
  const auto t0 = std::chrono::steady_clock::now();
  m::save_safetensors(p, views);
  const double save_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double load_s = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t1 = std::chrono::steady_clock::now();
    const auto f = m::load_safetensors(p);
    load_s = std::min(load_s,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count());
    REQUIRE(f.tensors.size() == n);
    for (std::size_t i = 0; i < n; i += 997) {
      CHECK(f.tensors[i].name == names[i]);
      CHECK(f.tensors[i].data == std::vector<float>{static_cast<float>(i)});
    }
  }
  return {save_s, load_s};
}

}  // namespace

TEST_CASE("safetensors: a header with 100,000 tensors loads in linear time") {
  // A quadratic reader took 0.2 s at 10,000 entries and 20 s at 100,000; the linear one
  // takes ~0.5 s at 100,000 on an idle 2-core machine and ~1 s beside a parallel test run.
  // The bound sits between the two with a 5x margin each way (a ratio of two timings was
  // tried and is the noisier check: memory-bound loads slow down unevenly under load).
  temp_dir dir;
  const auto [save_s, load_s] = many_tensor_times(dir / "big.safetensors", 100'000);
  MESSAGE("100,000 tensors: save ", save_s, " s, load ", load_s, " s (best of three)");
#if defined(RLHF_TEST_SANITIZED) || !defined(NDEBUG)
  const double bound = 60.0;  // sanitizers and unoptimised builds are ~10-20x slower
#else
  const double bound = 5.0;
#endif
  CHECK(load_s < bound);
  CHECK(save_s < bound);
}

TEST_CASE("safetensors: CRC32C known answers") {
  using rlhf::detail::crc32c;
  const std::string check = "123456789";
  CHECK(crc32c(check.data(), check.size()) == 0xE3069283u);
  CHECK(crc32c(nullptr, 0) == 0u);
  // RFC 3720 (iSCSI), B.4: 32 bytes of zeros, of ones, ascending.
  std::vector<unsigned char> b(32, 0x00);
  CHECK(crc32c(b.data(), b.size()) == 0x8A9136AAu);
  std::fill(b.begin(), b.end(), 0xFF);
  CHECK(crc32c(b.data(), b.size()) == 0x62A8AB43u);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<unsigned char>(i);
  CHECK(crc32c(b.data(), b.size()) == 0x46DD794Eu);
  // Every length and split agrees with the bitwise definition.
  auto bitwise = [](const unsigned char* p, std::size_t n) {
    std::uint32_t c = 0xFFFFFFFFu;
    for (std::size_t i = 0; i < n; ++i) {
      c ^= p[i];
      for (int k = 0; k < 8; ++k) c = (c & 1u) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    }
    return ~c;
  };
  std::vector<unsigned char> data(67);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<unsigned char>(i * 37 + 11);
  for (std::size_t n = 0; n <= data.size(); ++n) {
    CAPTURE(n);
    CHECK(crc32c(data.data(), n) == bitwise(data.data(), n));
    CHECK(crc32c(data.data() + n / 3, n - n / 3, crc32c(data.data(), n / 3)) ==
          bitwise(data.data(), n));
  }
}

TEST_CASE("safetensors: per-tensor CRC32C checksums catch a flipped data byte") {
  temp_dir dir;
  const auto p = dir / "sum.safetensors";
  const auto ts = sample_tensors();
  m::save_safetensors(p, ts, {{"format", "pt"}});
  const std::string bytes = read_bytes(p);
  const std::uint64_t n = header_length(bytes);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  const auto begin = header.at("h.0.ln_1.weight").at("data_offsets")[0].get<std::size_t>();
  for (const std::size_t byte : {std::size_t{0}, std::size_t{5}, std::size_t{11}}) {
    CAPTURE(byte);
    std::string flipped = bytes;
    flipped[8 + n + begin + byte] = static_cast<char>(flipped[8 + n + begin + byte] ^ 0x10);
    write_bytes(p, flipped);
    check_load_fails(p, "tensor 'h.0.ln_1.weight': CRC32C checksum mismatch");
  }
  const auto step = header.at("step").at("data_offsets")[0].get<std::size_t>();
  std::string flipped = bytes;
  flipped[8 + n + step + 7] = static_cast<char>(flipped[8 + n + step + 7] ^ 0x80);
  write_bytes(p, flipped);
  check_load_fails(p, "tensor 'step': CRC32C checksum mismatch");

  // The checksums are one metadata string: a JSON object {name: 8 hex digits}.
  write_bytes(p, bytes);
  CHECK(m::load_safetensors(p).metadata == m::metadata_map{{"format", "pt"}});  // key not returned
  const auto sums = nlohmann::json::parse(
      header.at("__metadata__").at("rlhf.crc32c").get<std::string>());
  REQUIRE(sums.size() == ts.size());
  CHECK(sums.at("h.0.ln_1.weight").get<std::string>().size() == 8);

  SUBCASE("without checksums a flipped byte loads (as files of other writers do)") {
    m::save_safetensors(p, ts, {}, m::safetensors_save_options{.checksums = false});
    std::string b = read_bytes(p);
    CHECK(b.find("rlhf.crc32c") == std::string::npos);
    const std::uint64_t hn = header_length(b);
    b[8 + hn] = static_cast<char>(b[8 + hn] ^ 0x01);
    write_bytes(p, b);
    const auto f = m::load_safetensors(p);
    CHECK(bits(f.tensors[0].data[0]) == (bits(1.0f) ^ 0x01u));
  }
  SUBCASE("malformed checksum metadata is an io_error") {
    const std::string t = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
    auto with_sums = [&](const std::string& sums_text) {
      return raw_file(
          "{\"__metadata__\":{\"rlhf.crc32c\":" + nlohmann::json(sums_text).dump() + "}," + t + "}",
          4);
    };
    // The CRC32C of four zero bytes.
    const std::string zeros(4, '\0');
    const std::string zero_sum = m::safetensors_detail::hex8(rlhf::detail::crc32c(zeros.data(), 4));
    write_bytes(p, with_sums("{\"a\":\"" + zero_sum + "\"}"));
    CHECK(m::load_safetensors(p).tensors.size() == 1);
    write_bytes(p, with_sums(R"({"a":"00000000"})"));
    check_load_fails(p, "tensor 'a': CRC32C checksum mismatch");
    write_bytes(p, with_sums("{\"a\":\"" + zero_sum + "\",\"b\":\"00000000\"}"));
    check_load_fails(p, "lists tensor 'b', which is not in the file");
    write_bytes(p, with_sums(R"({"a":"xyz"})"));
    check_load_fails(p, "the checksum of 'a' must be 8 hex digits");
    write_bytes(p, with_sums(R"({"a":1})"));
    check_load_fails(p, "the checksum of 'a' must be 8 hex digits");
    write_bytes(p, with_sums("[1]"));
    check_load_fails(p, "malformed \"rlhf.crc32c\" metadata: expected a JSON object");
    write_bytes(p, with_sums("{"));
    check_load_fails(p, "malformed \"rlhf.crc32c\" metadata is not valid JSON");
  }
}

}  // namespace test_safetensors_cases
