// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Checkpoints in the safetensors format (docs/model.md, "Checkpoints (safetensors)").
//
//   save_safetensors(path, tensors, metadata)   atomic: temp file, fsync, rename, fsync dir;
//                                                per-tensor CRC32C in the metadata
//   load_safetensors(path) -> safetensors_file   tensors in file order + metadata; checks
//                                                the CRC32Cs when present
//   check_tensor(file, name, shape)              the tensor, or io_error naming it
//
// File layout (https://github.com/huggingface/safetensors):
//   8 bytes   N, unsigned little-endian
//   N bytes   JSON header, padded with spaces to a multiple of 8:
//             {"__metadata__": {str: str},
//              "<name>": {"dtype": "F32"|"I32"|"BF16"|"F16", "shape": [d0, ...],
//                         "data_offsets": [begin, end]}, ...}
//   the data  raw little-endian values; offsets are relative to the start of the data
//             section, tensors are contiguous in file order and cover it exactly.
//
// F32 and I32 (what the model stores) and the 16-bit floats BF16 and F16 (what Hugging Face
// checkpoints hold) are read and written; rank 1..4 (rlhf::shape). A 16-bit tensor is
// widened to float32 on load (exactly: every BF16 and F16 value is a float32 value).
// Every failure of save or load (missing or unreadable file, truncation, malformed JSON,
// unsupported dtype, shape/offset mismatch, overlapping or non-contiguous offsets,
// duplicate or invalid names, a directory that is not writable) is an rlhf::io_error whose
// message is "<function>: <path>: <reason>". Values are copied byte for byte, so
// load(save(x)) is bit-exact (NaN payloads, -0.0, denormals).
//
// Untrusted headers: JSON nested deeper than detail::max_json_depth is refused while parsing
// (no recursion over a hostile value), values quoted in messages are cut short, and loading
// a header with n tensors costs O(n log n).
//
// Dependency: this header needs nlohmann-json (<nlohmann/json.hpp>, CMake target
// nlohmann_json::nlohmann_json); the model component links it. Atomic replacement needs a
// POSIX system (fsync of the file and its directory); the few system calls are in
// rlhf/model/detail/platform_file.hpp, behind the atomic writer of
// rlhf/model/detail/atomic_file.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "rlhf/core/enum_names.hpp"
#include "rlhf/core/errors.hpp"
#include "rlhf/core/shape.hpp"
#include "rlhf/core/validate.hpp"
#include "rlhf/model/detail/atomic_file.hpp"
#include "rlhf/model/detail/crc32c.hpp"
#include "rlhf/model/detail/json_bounded.hpp"

namespace rlhf {
inline namespace v0 {
namespace model {

/// The element types a safetensors file may hold here: F32, I32, and the 16-bit floats
/// BF16 (bfloat16) and F16 (IEEE binary16).
enum class tensor_dtype { f32, i32, bf16, f16 };

}  // namespace model

/// The safetensors spellings of the element types.
template <>
struct enum_names<model::tensor_dtype> {
  /// Every type with its name, in declaration order.
  static constexpr std::array<enum_name<model::tensor_dtype>, 4> values{{
      {model::tensor_dtype::f32, "F32"},
      {model::tensor_dtype::i32, "I32"},
      {model::tensor_dtype::bf16, "BF16"},
      {model::tensor_dtype::f16, "F16"},
  }};
};
static_assert(enum_table_covers<model::tensor_dtype>(4));

namespace model {

/// "F32" / "I32" / "BF16" / "F16": the safetensors spelling.
[[nodiscard]] inline std::string_view to_string(tensor_dtype d) noexcept {
  return rlhf::to_string(d);
}

/// Bytes of one element: 4 (F32, I32) or 2 (BF16, F16).
[[nodiscard]] constexpr std::size_t dtype_size(tensor_dtype d) noexcept {
  return d == tensor_dtype::f32 || d == tensor_dtype::i32 ? 4 : 2;
}

/// The float32 value of bfloat16 bits `h`: they are the upper 16 bits of a float32.
[[nodiscard]] inline float bf16_to_float(std::uint16_t h) noexcept {
  return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16);
}

/// `x` rounded to bfloat16 (to nearest, ties to even, as torch's .to(torch.bfloat16)); a NaN
/// stays a NaN (quiet, its sign kept), infinities and overflow to infinity as in IEEE.
[[nodiscard]] inline std::uint16_t float_to_bf16(float x) noexcept {
  const auto u = std::bit_cast<std::uint32_t>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // NaN: keep it a NaN
  }
  const std::uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>((u + rounding) >> 16);
}

/// The float32 value of IEEE binary16 bits `h`: normals, subnormals (2^-24 steps), signed
/// zeros, infinities and NaNs (the payload shifted into float32's).
[[nodiscard]] inline float f16_to_float(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t mant = h & 0x3ffu;
  if (exp == 0x1fu) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  if (exp == 0) {
    // Zero or subnormal: mant · 2^-24, exact in float32.
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign != 0 ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

/// `x` rounded to IEEE binary16 (to nearest, ties to even; subnormals below 2^-14, overflow
/// to infinity); a NaN stays a quiet NaN with its sign.
[[nodiscard]] inline std::uint16_t float_to_f16(float x) noexcept {
  const auto u = std::bit_cast<std::uint32_t>(x);
  const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520: inf
  if (a < 0x38800000u) {
    // Below 2^-14: a subnormal (or zero) in steps of 2^-24; the float addition rounds to
    // nearest even at that step.
    const float magic = std::bit_cast<float>(0x3f000000u);  // 0.5: 2^-1 has ulp 2^-24
    const float r = std::bit_cast<float>(a) + magic;
    return static_cast<std::uint16_t>(sign | (std::bit_cast<std::uint32_t>(r) - 0x3f000000u));
  }
  // Normal: rebias the exponent (127 -> 15), round the 13 dropped bits to nearest even.
  const std::uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
  return static_cast<std::uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

/// A tensor as loaded (or to be saved): the values live in `data` (F32, and BF16/F16 widened
/// to float32) or `int_data` (I32) according to `dtype`; the other vector is empty.
struct named_tensor {
  std::string name;                        ///< The tensor's name in the file.
  rlhf::shape shape;                       ///< Its shape.
  std::vector<float> data;                 ///< The values unless dtype is I32, else empty.
  tensor_dtype dtype = tensor_dtype::f32;  ///< The dtype in the file (I32: `int_data`).
  std::vector<std::int32_t> int_data;      ///< The values when dtype is I32, else empty.
};

/// A tensor to save without copying it: name, shape and a pointer to `count` host values
/// of the dtype (float, int32, or the uint16 bit patterns of BF16/F16 values).
struct tensor_view {
  std::string_view name;                   ///< The tensor's name in the file.
  rlhf::shape shape;                       ///< Its shape.
  tensor_dtype dtype = tensor_dtype::f32;  ///< The element type of `values`.
  const void* values = nullptr;            ///< The first of `count` host values (not owned).
  std::size_t count = 0;                   ///< Number of values.

  /// A view of float values `v` with shape `s`.
  [[nodiscard]] static tensor_view f32(std::string_view name, const rlhf::shape& s,
                                       std::span<const float> v) noexcept {
    return {name, s, tensor_dtype::f32, v.data(), v.size()};
  }
  /// A view of int32 values `v` with shape `s`.
  [[nodiscard]] static tensor_view i32(std::string_view name, const rlhf::shape& s,
                                       std::span<const std::int32_t> v) noexcept {
    return {name, s, tensor_dtype::i32, v.data(), v.size()};
  }
  /// A view of bfloat16 bit patterns `v` (see float_to_bf16) with shape `s`.
  [[nodiscard]] static tensor_view bf16(std::string_view name, const rlhf::shape& s,
                                        std::span<const std::uint16_t> v) noexcept {
    return {name, s, tensor_dtype::bf16, v.data(), v.size()};
  }
  /// A view of IEEE binary16 bit patterns `v` (see float_to_f16) with shape `s`.
  [[nodiscard]] static tensor_view f16(std::string_view name, const rlhf::shape& s,
                                       std::span<const std::uint16_t> v) noexcept {
    return {name, s, tensor_dtype::f16, v.data(), v.size()};
  }
  /// A view of the values `t` owns (it must outlive the view). A BF16/F16 tensor holds
  /// float values, so it is viewed as F32 here; save_safetensors of named_tensors writes it
  /// in its own dtype.
  [[nodiscard]] static tensor_view of(const named_tensor& t) noexcept {
    return t.dtype == tensor_dtype::i32 ? i32(t.name, t.shape, t.int_data)
                                        : f32(t.name, t.shape, t.data);
  }
};

/// The "__metadata__" strings of a file: key to value.
using metadata_map = std::map<std::string, std::string>;

/// How save_safetensors writes a file.
struct safetensors_save_options {
  /// Store a CRC32C of each tensor's bytes in the metadata (key "rlhf.crc32c", a JSON
  /// object text {name: "8 hex digits"}); load_safetensors verifies them. Other readers
  /// (Python's safetensors) see one more metadata string.
  bool checksums = true;
};

/// What load_safetensors returns: the tensors in file order (by data offset) and the
/// "__metadata__" strings.
struct safetensors_file {
  std::string path;                   ///< The file it was read from (error messages name it).
  std::vector<named_tensor> tensors;  ///< The tensors, in order of their data offsets.
  metadata_map metadata;              ///< The metadata, less the reserved "rlhf.crc32c" key.

  /// The tensor called `name`, or nullptr.
  [[nodiscard]] const named_tensor* find(std::string_view name) const noexcept {
    for (const auto& t : tensors) {
      if (t.name == name) return &t;
    }
    return nullptr;
  }
};

namespace safetensors_detail {

inline constexpr std::uint64_t safetensors_max_header = 100'000'000;  // as Python's reader

using rlhf::detail::errno_text;
using rlhf::detail::hex8;

/// Little-endian bytes of 2-byte values (a plain copy on little-endian hosts).
inline void copy_le16(void* dst, const void* src, std::size_t count) {
  if (count == 0) return;
  std::memcpy(dst, src, count * 2);
  if constexpr (std::endian::native == std::endian::big) {
    auto* b = static_cast<unsigned char*>(dst);
    for (std::size_t i = 0; i < count; ++i) std::swap(b[2 * i], b[2 * i + 1]);
  }
}

/// Little-endian bytes of `count` values of dtype `d` (2 or 4 bytes each).
inline void copy_le(void* dst, const void* src, std::size_t count, tensor_dtype d);

/// Little-endian bytes of 4-byte values (a plain copy on little-endian hosts).
inline void copy_le32(void* dst, const void* src, std::size_t count) {
  if (count == 0) return;  // empty tensors: memcpy's pointers may be null, which is UB
  std::memcpy(dst, src, count * 4);
  if constexpr (std::endian::native == std::endian::big) {
    auto* b = static_cast<unsigned char*>(dst);
    for (std::size_t i = 0; i < count; ++i) {
      std::swap(b[4 * i], b[4 * i + 3]);
      std::swap(b[4 * i + 1], b[4 * i + 2]);
    }
  }
}

inline void copy_le(void* dst, const void* src, std::size_t count, tensor_dtype d) {
  if (dtype_size(d) == 2) {
    copy_le16(dst, src, count);
  } else {
    copy_le32(dst, src, count);
  }
}

/// The metadata key holding the per-tensor CRC32C checksums: a JSON object text
/// `{"<tensor name>": "<8 lowercase hex digits>", ...}` (metadata values must be strings).
inline constexpr std::string_view checksum_key = "rlhf.crc32c";

class safetensors_writer {
 public:
  explicit safetensors_writer(std::filesystem::path target) : target_(std::move(target)) {}

  [[noreturn]] void fail(std::string_view reason) const {
    throw io_error(rlhf::detail::concat("save_safetensors: ", target_.string(), ": ", reason));
  }

  /// `s` as a JSON string literal; io_error when it is not valid UTF-8.
  [[nodiscard]] std::string quote(std::string_view s) const {
    try {
      return nlohmann::json(std::string(s)).dump();
    } catch (const nlohmann::json::exception& e) {
      fail(rlhf::detail::concat("a tensor name or metadata string is not valid UTF-8 (", e.what(),
                                ")"));
    }
  }

  /// Checks every tensor and the metadata (before any file is touched).
  void validate(std::span<const tensor_view> tensors, const metadata_map& metadata) const {
    if (metadata.contains(std::string(checksum_key))) {
      fail(rlhf::detail::concat("metadata key \"", checksum_key,
                                "\" is reserved (the per-tensor CRC32C checksums)"));
    }
    std::unordered_set<std::string_view> seen;
    seen.reserve(tensors.size());
    for (const auto& t : tensors) {
      if (t.name.empty()) fail("a tensor has an empty name");
      if (t.name == "__metadata__") fail("\"__metadata__\" is reserved, not a tensor name");
      if (!seen.insert(t.name).second) {
        fail(rlhf::detail::concat("duplicate tensor name '", t.name, "'"));
      }
      if (static_cast<index_t>(t.count) != t.shape.numel()) {
        fail(rlhf::detail::concat("tensor '", t.name, "' has ", t.count, " values, its shape ",
                                  t.shape.str(), " needs ", t.shape.numel()));
      }
      if (t.count > 0 && t.values == nullptr) {
        fail(rlhf::detail::concat("tensor '", t.name, "' has no data"));
      }
    }
  }

  /// The padded header bytes; `crcs` (one per tensor) go into the metadata when non-empty.
  [[nodiscard]] std::string header(std::span<const tensor_view> tensors,
                                   const metadata_map& metadata,
                                   const std::vector<std::uint32_t>& crcs) const {
    // Written by hand, in the order given: a JSON object with n keys costs O(n), where
    // ordered_json's linear key lookup would cost O(n^2).
    std::string text = "{";
    if (!metadata.empty() || !crcs.empty()) {
      text += "\"__metadata__\":{";
      bool first = true;
      for (const auto& [k, v] : metadata) {
        if (!first) text += ',';
        first = false;
        text += quote(k);
        text += ':';
        text += quote(v);
      }
      if (!crcs.empty()) {
        std::string sums = "{";
        for (std::size_t i = 0; i < tensors.size(); ++i) {
          if (i > 0) sums += ',';
          sums += quote(tensors[i].name);
          sums += ":\"" + hex8(crcs[i]) + '"';
        }
        sums += '}';
        if (!first) text += ',';
        text += quote(checksum_key);
        text += ':';
        text += quote(sums);
      }
      text += '}';
    }
    std::uint64_t offset = 0;
    for (const auto& t : tensors) {
      if (text.size() > 1) text += ',';
      text += quote(t.name);
      text += R"(:{"dtype":")";
      text += to_string(t.dtype);
      text += R"(","shape":[)";
      for (int a = 0; a < t.shape.rank(); ++a) {
        if (a > 0) text += ',';
        text += std::to_string(t.shape[a]);
      }
      const std::uint64_t bytes = dtype_size(t.dtype) * static_cast<std::uint64_t>(t.count);
      text += "],\"data_offsets\":[" + std::to_string(offset) + ',' +
              std::to_string(offset + bytes) + "]}";
      offset += bytes;
    }
    text += '}';
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
  }

  void write(std::span<const tensor_view> tensors, const metadata_map& metadata,
             bool checksums) const {
    validate(tensors, metadata);
    std::vector<std::uint32_t> crcs;
    std::vector<unsigned char> chunk;
    if (checksums) {
      crcs.reserve(tensors.size());
      for (const auto& t : tensors) {
        const std::size_t bytes = dtype_size(t.dtype) * t.count;
        if constexpr (std::endian::native == std::endian::little) {
          crcs.push_back(t.count == 0 ? 0u : rlhf::detail::crc32c(t.values, bytes));
        } else {
          chunk.resize(bytes);
          copy_le(chunk.data(), t.values, t.count, t.dtype);
          crcs.push_back(rlhf::detail::crc32c(chunk.data(), chunk.size()));
        }
      }
    }
    const std::string head = header(tensors, metadata, crcs);
    rlhf::detail::atomic_file file(
        target_, rlhf::detail::concat("save_safetensors: ", target_.string(), ": "));
    unsigned char prefix[8];
    auto n = static_cast<std::uint64_t>(head.size());
    for (unsigned char& b : prefix) {
      b = static_cast<unsigned char>(n & 0xffu);
      n >>= 8;
    }
    file.write(prefix, sizeof prefix);
    file.write(head.data(), head.size());
    for (const auto& t : tensors) {
      if (t.count == 0) continue;
      const std::size_t bytes = dtype_size(t.dtype) * t.count;
      if constexpr (std::endian::native == std::endian::little) {
        file.write(t.values, bytes);
      } else {
        chunk.resize(bytes);
        copy_le(chunk.data(), t.values, t.count, t.dtype);
        file.write(chunk.data(), chunk.size());
      }
    }
    file.commit();
  }

 private:
  std::filesystem::path target_;
};

struct header_entry {
  std::string name;
  tensor_dtype dtype = tensor_dtype::f32;
  rlhf::shape shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

class safetensors_reader {
 public:
  explicit safetensors_reader(std::filesystem::path path) : path_(std::move(path)) {}

  [[noreturn]] void fail(std::string_view reason) const {
    throw io_error(rlhf::detail::concat("load_safetensors: ", path_.string(), ": ", reason));
  }

  [[nodiscard]] safetensors_file read() const {
    std::error_code ec;
    const auto st = std::filesystem::status(path_, ec);
    if (ec || !std::filesystem::exists(st)) fail("no such file");
    if (!std::filesystem::is_regular_file(st)) fail("not a regular file");
    std::ifstream in(path_, std::ios::binary);
    if (!in) fail(rlhf::detail::concat("cannot open: ", errno_text(errno)));
    // The size of the file we opened (the path may be renamed over meanwhile).
    in.seekg(0, std::ios::end);
    const std::streamoff end_pos = in.tellg();
    if (!in || end_pos < 0) fail("cannot read the file size");
    const auto size = static_cast<std::uint64_t>(end_pos);

    if (size < 8) {
      fail(rlhf::detail::concat("truncated: the file has ", size,
                  " bytes, fewer than the 8-byte header length"));
    }
    unsigned char prefix[8];
    read_at(in, 0, prefix, 8);
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
    if (n > size - 8) {
      fail(rlhf::detail::concat("truncated: header length ", n, " exceeds the ", size - 8,
                  " bytes after the length prefix"));
    }
    if (n > safetensors_max_header) {
      fail(rlhf::detail::concat("header length ", n, " is over the limit of ", safetensors_max_header,
                  " bytes"));
    }
    std::string text(static_cast<std::size_t>(n), '\0');
    read_at(in, 8, text.data(), text.size());

    safetensors_file out;
    out.path = path_.string();
    std::vector<header_entry> entries = parse_header(text, out.metadata);
    std::unordered_map<std::string, std::uint32_t> sums;
    if (const auto it = out.metadata.find(std::string(checksum_key)); it != out.metadata.end()) {
      sums = parse_checksums(it->second);
      out.metadata.erase(it);
    }

    // File order: by data offset (ties, i.e. empty tensors, keep header order).
    std::stable_sort(entries.begin(), entries.end(),
                     [](const header_entry& a, const header_entry& b) { return a.begin < b.begin; });
    const std::uint64_t data_size = size - 8 - n;
    std::uint64_t expected = 0;
    const header_entry* prev = nullptr;
    for (const auto& e : entries) {
      if (e.begin < expected) {
        fail(rlhf::detail::concat("tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
                    "] overlap tensor '", prev->name, "' [", prev->begin, ", ", prev->end, "]"));
      }
      if (e.begin > expected) {
        fail(rlhf::detail::concat("tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end,
                    "] leave a gap after byte ", expected,
                    " (offsets must be contiguous and in order)"));
      }
      if (e.end > data_size) {
        fail(rlhf::detail::concat("truncated: tensor '", e.name, "' data_offsets [", e.begin, ", ", e.end,
                    "] go beyond the data section of ", data_size, " bytes"));
      }
      expected = e.end;
      prev = &e;
    }
    if (expected != data_size) {
      fail(rlhf::detail::concat("the data section has ", data_size, " bytes but the tensors cover ",
                  expected, " (", data_size - expected, " trailing bytes)"));
    }

    // The tensors are contiguous and in order: one sequential read of the data section.
    in.seekg(static_cast<std::streamoff>(8 + n));
    out.tensors.reserve(entries.size());
    std::vector<unsigned char> raw;
    std::size_t verified = 0;
    for (auto& e : entries) {
      named_tensor t;
      t.name = std::move(e.name);
      t.shape = e.shape;
      t.dtype = e.dtype;
      const std::size_t width = dtype_size(e.dtype);
      const auto count = static_cast<std::size_t>((e.end - e.begin) / width);
      void* dst = nullptr;
      const void* bytes = nullptr;  // the file's bytes of the tensor, for the checksum
      if (width == 2) {
        // BF16/F16: the raw bits, then widened to float32.
        raw.resize(count * 2);
        if (count > 0) read_next(in, e.begin, raw.data(), raw.size());
        bytes = raw.data();
        t.data.resize(count);
        const bool bf = e.dtype == tensor_dtype::bf16;
        for (std::size_t i = 0; i < count; ++i) {
          const auto h = static_cast<std::uint16_t>(raw[2 * i] | (raw[2 * i + 1] << 8));
          t.data[i] = bf ? bf16_to_float(h) : f16_to_float(h);
        }
      } else {
        if (e.dtype == tensor_dtype::f32) {
          t.data.resize(count);
          dst = t.data.data();
        } else {
          t.int_data.resize(count);
          dst = t.int_data.data();
        }
        if (count > 0) {
          if constexpr (std::endian::native == std::endian::little) {
            read_next(in, e.begin, dst, count * 4);
          } else {
            raw.resize(count * 4);
            read_next(in, e.begin, raw.data(), raw.size());
            copy_le32(dst, raw.data(), count);
          }
        }
        bytes = std::endian::native == std::endian::little ? dst : raw.data();
      }
      if (const auto it = sums.find(t.name); it != sums.end()) {
        ++verified;
        const std::uint32_t got = count == 0 ? 0u : rlhf::detail::crc32c(bytes, count * width);
        if (got != it->second) {
          fail(rlhf::detail::concat("tensor '", t.name, "': CRC32C checksum mismatch (stored ",
                                    hex8(it->second), ", data ", hex8(got),
                                    "): the tensor's data is corrupt"));
        }
      }
      out.tensors.push_back(std::move(t));
    }
    if (verified != sums.size()) {
      std::unordered_set<std::string_view> names;
      for (const auto& t : out.tensors) names.insert(t.name);
      for (const auto& [name, sum] : sums) {
        if (!names.contains(name)) {
          fail(rlhf::detail::concat("the \"", checksum_key, "\" metadata lists tensor '", name,
                                    "', which is not in the file"));
        }
      }
    }
    return out;
  }

 private:
  void read_at(std::ifstream& in, std::uint64_t pos, void* dst, std::size_t n) const {
    in.seekg(static_cast<std::streamoff>(pos));
    read_next(in, pos, dst, n);
  }

  /// Reads the next `n` bytes (at file offset `pos`, for the message).
  void read_next(std::ifstream& in, std::uint64_t pos, void* dst, std::size_t n) const {
    in.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (!in || static_cast<std::size_t>(in.gcount()) != n) {
      fail(rlhf::detail::concat("read error: cannot read ", n, " bytes at offset ", pos));
    }
  }

  /// The checksums of the "rlhf.crc32c" metadata value: {name: 8 hex digits}.
  [[nodiscard]] std::unordered_map<std::string, std::uint32_t> parse_checksums(
      const std::string& text) const {
    const std::string label = rlhf::detail::concat("malformed \"", checksum_key, "\" metadata");
    const auto j = rlhf::detail::parse_json_bounded<nlohmann::json>(
        text, "load_safetensors", rlhf::detail::concat(path_.string(), ": ", label));
    if (!j.is_object()) fail(rlhf::detail::concat(label, ": expected a JSON object of strings"));
    std::unordered_map<std::string, std::uint32_t> sums;
    sums.reserve(j.size());
    for (const auto& [name, v] : j.items()) {
      const std::string* s = v.is_string() ? v.get_ptr<const std::string*>() : nullptr;
      const bool hex = s != nullptr && s->size() == 8 &&
                       std::all_of(s->begin(), s->end(), [](char c) {
                         return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                                (c >= 'A' && c <= 'F');
                       });
      if (!hex) {
        fail(rlhf::detail::concat(label, ": the checksum of '", name,
                                  "' must be 8 hex digits, got ", rlhf::detail::json_excerpt(v)));
      }
      sums.emplace(name, static_cast<std::uint32_t>(std::stoul(*s, nullptr, 16)));
    }
    return sums;
  }

  [[nodiscard]] std::uint64_t offset_value(const std::string& name, const nlohmann::json& v) const {
    if (!v.is_number_unsigned()) {
      fail(rlhf::detail::concat("tensor '", name,
                                "': data_offsets must be two non-negative integers, got ",
                                rlhf::detail::json_excerpt(v)));
    }
    return v.get<std::uint64_t>();
  }

  [[nodiscard]] std::vector<header_entry> parse_header(const std::string& text,
                                                       metadata_map& metadata) const {
    // nlohmann::json (a std::map per object; ordered_json finds keys by linear search), built
    // in linear time with the nesting limit; the header order is kept in top_level_keys.
    using json = nlohmann::json;
    json h;
    rlhf::detail::bounded_json_builder<json> b(h);
    try {
      rlhf::detail::build_json_bounded<json>(text, "malformed JSON header", "the header", b);
    } catch (const io_error& e) {
      fail(e.what());
    }
    const std::vector<std::string>& order = b.top_level_keys;
    const std::string& duplicate = b.duplicate_key;
    if (!h.is_object()) fail(rlhf::detail::concat("malformed header: expected a JSON object, got ", h.type_name()));
    if (!duplicate.empty()) fail(rlhf::detail::concat("duplicate tensor name '", duplicate, "' in the header"));

    std::vector<header_entry> entries;
    entries.reserve(order.size());
    for (const std::string& name : order) {
      const json& v = h.find(name).value();
      if (name == "__metadata__") {
        if (!v.is_object()) fail("malformed header: __metadata__ must be an object of strings");
        for (const auto& [k, s] : v.items()) {
          if (!s.is_string()) {
            fail(rlhf::detail::concat("malformed header: __metadata__ value of '", k,
                                      "' must be a string, got ", rlhf::detail::json_excerpt(s)));
          }
          metadata[k] = s.get<std::string>();
        }
        continue;
      }
      if (!v.is_object()) fail(rlhf::detail::concat("tensor '", name, "': entry must be an object"));
      for (const char* field : {"dtype", "shape", "data_offsets"}) {
        if (!v.contains(field)) fail(rlhf::detail::concat("tensor '", name, "': missing \"", field, "\""));
      }
      header_entry e;
      e.name = name;
      const auto& dt = v.at("dtype");
      const std::string dts = dt.is_string() ? dt.get<std::string>()
                                             : rlhf::detail::json_excerpt(dt);
      if (dts == "F32") {
        e.dtype = tensor_dtype::f32;
      } else if (dts == "I32") {
        e.dtype = tensor_dtype::i32;
      } else if (dts == "BF16") {
        e.dtype = tensor_dtype::bf16;
      } else if (dts == "F16") {
        e.dtype = tensor_dtype::f16;
      } else {
        fail(rlhf::detail::concat("tensor '", name, "': unsupported dtype '", dts.substr(0, 80),
                                  "' (supported: F32, I32, BF16, F16)"));
      }
      const auto& sh = v.at("shape");
      if (!sh.is_array()) fail(rlhf::detail::concat("tensor '", name, "': shape must be an array"));
      if (sh.empty() || sh.size() > static_cast<std::size_t>(rlhf::shape::max_rank)) {
        fail(rlhf::detail::concat("tensor '", name, "': rank ", sh.size(), " is not supported (1..",
                    rlhf::shape::max_rank, ")"));
      }
      std::vector<index_t> dims;
      std::uint64_t numel = 1;
      std::uint64_t nonzero_numel = 1;
      constexpr auto limit = static_cast<std::uint64_t>(std::numeric_limits<index_t>::max());
      for (const auto& d : sh) {
        if (!d.is_number_unsigned() || d.get<std::uint64_t>() > limit) {
          fail(rlhf::detail::concat("tensor '", name,
                                    "': shape entries must be non-negative integers, got ",
                                    rlhf::detail::json_excerpt(sh)));
        }
        const auto du = d.get<std::uint64_t>();
        // The product of the non-zero dimensions stays within rlhf::shape's element limit.
        constexpr auto max_numel = static_cast<std::uint64_t>(rlhf::shape::max_numel);
        if (du != 0 && nonzero_numel > max_numel / du) {
          fail(rlhf::detail::concat("tensor '", name, "': shape ", rlhf::detail::json_excerpt(sh),
                                    " is too large (more than ", max_numel, " elements)"));
        }
        if (du != 0) nonzero_numel *= du;
        numel *= du;
        dims.push_back(static_cast<index_t>(du));
      }
      switch (dims.size()) {
        case 1: e.shape = rlhf::shape{dims[0]}; break;
        case 2: e.shape = rlhf::shape{dims[0], dims[1]}; break;
        case 3: e.shape = rlhf::shape{dims[0], dims[1], dims[2]}; break;
        default: e.shape = rlhf::shape{dims[0], dims[1], dims[2], dims[3]}; break;
      }
      const auto& off = v.at("data_offsets");
      if (!off.is_array() || off.size() != 2) {
        fail(rlhf::detail::concat("tensor '", name, "': data_offsets must be [begin, end], got ",
                                  rlhf::detail::json_excerpt(off)));
      }
      e.begin = offset_value(name, off[0]);
      e.end = offset_value(name, off[1]);
      if (e.end < e.begin) {
        fail(rlhf::detail::concat("tensor '", name, "': data_offsets [", e.begin, ", ", e.end,
                    "] end before they begin"));
      }
      if (e.end - e.begin != dtype_size(e.dtype) * numel) {
        fail(rlhf::detail::concat("tensor '", name, "': shape ", e.shape.str(), " of ", dts,
                                  " needs ", dtype_size(e.dtype) * numel, " bytes, data_offsets [",
                                  e.begin, ", ", e.end, "] hold ", e.end - e.begin));
      }
      entries.push_back(std::move(e));
    }
    return entries;
  }

  std::filesystem::path path_;
};

}  // namespace safetensors_detail

/// Writes `tensors` (in this order) and `metadata` to `path` atomically: a temporary file
/// `path.tmp.<pid>.<random>` in the same directory is created exclusively, written and
/// fsynced, renamed over `path`, and the directory is fsynced. Saves to one path from
/// several threads of a process run one after the other; temporary files of this path left
/// by processes that no longer exist are removed. On failure the temporary file is removed
/// and an existing `path` is left as it was. Names must be unique, non-empty, valid UTF-8
/// and not "__metadata__"; each tensor must hold shape.numel() values; the metadata key
/// "rlhf.crc32c" is reserved for the per-tensor checksums (`options.checksums`).
inline void save_safetensors(const std::filesystem::path& path,
                             std::span<const tensor_view> tensors,
                             const metadata_map& metadata = {},
                             const safetensors_save_options& options = {}) {
  safetensors_detail::safetensors_writer(path).write(tensors, metadata, options.checksums);
}

/// As above, for tensors that own their values. A BF16/F16 tensor's float values are rounded
/// to its dtype (float_to_bf16, float_to_f16) and written as such.
inline void save_safetensors(const std::filesystem::path& path,
                             std::span<const named_tensor> tensors,
                             const metadata_map& metadata = {},
                             const safetensors_save_options& options = {}) {
  std::vector<tensor_view> views;
  std::vector<std::vector<std::uint16_t>> halves;  // the bits of the 16-bit tensors
  views.reserve(tensors.size());
  halves.reserve(tensors.size());
  for (const auto& t : tensors) {
    if (dtype_size(t.dtype) == 2) {
      auto& h = halves.emplace_back(t.data.size());
      for (std::size_t i = 0; i < h.size(); ++i) {
        h[i] = t.dtype == tensor_dtype::bf16 ? float_to_bf16(t.data[i]) : float_to_f16(t.data[i]);
      }
      views.push_back({t.name, t.shape, t.dtype, h.data(), h.size()});
    } else {
      views.push_back(tensor_view::of(t));
    }
  }
  save_safetensors(path, std::span<const tensor_view>(views), metadata, options);
}

/// Reads a safetensors file: the tensors in file order and the metadata. When the metadata
/// holds "rlhf.crc32c" (files saved with checksums), every tensor listed there is checked
/// against its CRC32C, and the key is not returned in `metadata`. Any problem with the file
/// is an io_error `"load_safetensors: <path>: <reason>"`.
[[nodiscard]] inline safetensors_file load_safetensors(const std::filesystem::path& path) {
  return safetensors_detail::safetensors_reader(path).read();
}

/// The tensor `name` of `file` with shape `expected` and dtype `dtype`, else an io_error
/// naming the tensor (missing, other shape, other dtype).
inline const named_tensor& check_tensor(const safetensors_file& file, std::string_view name,
                                        const rlhf::shape& expected,
                                        tensor_dtype dtype = tensor_dtype::f32) {
  const named_tensor* t = file.find(name);
  if (t == nullptr) {
    throw io_error(rlhf::detail::concat("check_tensor: ", file.path, ": tensor '", name,
                                  "' is missing"));
  }
  if (!(t->shape == expected)) {
    throw io_error(rlhf::detail::concat("check_tensor: ", file.path, ": tensor '", name,
                                  "' has shape ", t->shape.str(), ", expected ",
                                  expected.str()));
  }
  if (t->dtype != dtype) {
    throw io_error(rlhf::detail::concat("check_tensor: ", file.path, ": tensor '", name,
                                  "' has dtype ", to_string(t->dtype), ", expected ",
                                  to_string(dtype)));
  }
  return *t;
}

}  // namespace model
}  // namespace v0
}  // namespace rlhf
