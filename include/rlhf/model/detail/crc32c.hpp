// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// CRC32C (Castagnoli: reflected polynomial 0x82F63B78, initial value and final xor
// 0xFFFFFFFF), the checksum safetensors.hpp stores per tensor. Portable software version,
// slicing by 8 bytes (tables built at compile time); crc32c("123456789") == 0xE3069283.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace rlhf {
inline namespace v0 {
namespace detail {

/// The eight 256-entry tables of slicing-by-8: t[0] is the byte-at-a-time table, t[k][i]
/// the CRC of byte i followed by k zero bytes.
[[nodiscard]] constexpr std::array<std::array<std::uint32_t, 256>, 8> make_crc32c_tables() {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int b = 0; b < 8; ++b) c = (c & 1u) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t[0][i] = c;
  }
  for (std::size_t k = 1; k < 8; ++k) {
    for (std::size_t i = 0; i < 256; ++i) {
      t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xffu];
    }
  }
  return t;
}

inline constexpr auto crc32c_tables = make_crc32c_tables();

/// CRC32C of the `n` bytes at `data`, continuing from `crc` (the CRC32C of the bytes before
/// them; 0 to start): crc32c(b, n2, crc32c(a, n1)) is the CRC32C of a followed by b.
[[nodiscard]] inline std::uint32_t crc32c(const void* data, std::size_t n,
                                          std::uint32_t crc = 0) noexcept {
  const auto& t = crc32c_tables;
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    const std::uint32_t lo = crc ^ (std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 |
                                    std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24);
    crc = t[7][lo & 0xffu] ^ t[6][(lo >> 8) & 0xffu] ^ t[5][(lo >> 16) & 0xffu] ^ t[4][lo >> 24] ^
          t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
  }
  for (; n > 0; --n, ++p) crc = t[0][(crc ^ *p) & 0xffu] ^ (crc >> 8);
  return ~crc;
}

}  // namespace detail
}  // namespace v0
}  // namespace rlhf
