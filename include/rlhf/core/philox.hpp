// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Counter-based random numbers: Philox4x32-10 (Salmon et al., "Parallel Random Numbers:
// As Easy as 1, 2, 3", SC 2011). A draw is a pure function of (seed, stream, counter), so
// every backend, CPU or GPU, produces the same bits for the same request.
//
// Layout of one 128-bit block: key = seed (64 bits); counter = (block index low 32,
// block index high 32, stream low 32, stream high 32). Uniform draws use the four words of
// a block for four consecutive elements; normal draws use two words per element.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "rlhf/core/config.hpp"

namespace rlhf {
inline namespace v0 {

/// One Philox4x32 block: a 128-bit counter or its four 32-bit random words.
struct philox_block {
  std::uint32_t w[4];  ///< The four 32-bit words.
};

namespace detail {

RLHF_HD inline void philox_mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi,
                                   std::uint32_t& lo) {
  const std::uint64_t p = static_cast<std::uint64_t>(a) * static_cast<std::uint64_t>(b);
  hi = static_cast<std::uint32_t>(p >> 32);
  lo = static_cast<std::uint32_t>(p);
}

}  // namespace detail

/// Philox4x32 with 10 rounds on an explicit counter and key.
RLHF_HD inline philox_block philox4x32_10(philox_block ctr, std::uint32_t k0,
                                          std::uint32_t k1) {
  constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
  constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += w0;
      k1 += w1;
    }
    std::uint32_t hi0, lo0, hi1, lo1;
    detail::philox_mulhilo(m0, ctr.w[0], hi0, lo0);
    detail::philox_mulhilo(m1, ctr.w[2], hi1, lo1);
    ctr = philox_block{{hi1 ^ ctr.w[1] ^ k0, lo1, hi0 ^ ctr.w[3] ^ k1, lo0}};
  }
  return ctr;
}

/// The block number `block` of stream `stream` under `seed`.
RLHF_HD inline philox_block philox_draw(std::uint64_t seed, std::uint64_t stream,
                                        std::uint64_t block) {
  const philox_block ctr{{static_cast<std::uint32_t>(block),
                          static_cast<std::uint32_t>(block >> 32),
                          static_cast<std::uint32_t>(stream),
                          static_cast<std::uint32_t>(stream >> 32)}};
  return philox4x32_10(ctr, static_cast<std::uint32_t>(seed),
                       static_cast<std::uint32_t>(seed >> 32));
}

/// 24 random bits to a float in [0, 1), exactly representable.
RLHF_HD inline float uniform_from_bits(std::uint32_t u) {
  return static_cast<float>(u >> 8) * (1.0f / 16777216.0f);
}

/// Element `i` of a uniform [0, 1) draw that starts at block `first_block`.
RLHF_HD inline float philox_uniform(std::uint64_t seed, std::uint64_t stream,
                                    std::uint64_t first_block, std::uint64_t i) {
  const philox_block b = philox_draw(seed, stream, first_block + i / 4);
  return uniform_from_bits(b.w[i % 4]);
}

/// Element `i` of a standard-normal draw (Box-Muller, cosine branch) that starts at block
/// `first_block`. Bits are identical on every backend; the float result can differ by a
/// few ulp where the device's logf/cosf differ from the host's.
RLHF_HD inline float philox_normal(std::uint64_t seed, std::uint64_t stream,
                                   std::uint64_t first_block, std::uint64_t i) {
  const philox_block b = philox_draw(seed, stream, first_block + i / 2);
  const unsigned j = static_cast<unsigned>(i % 2) * 2;
  // u1 in (0, 1] so that log(u1) is finite.
  const float u1 = static_cast<float>((b.w[j] >> 8) + 1u) * (1.0f / 16777216.0f);
  const float u2 = uniform_from_bits(b.w[j + 1]);
  constexpr float two_pi = 6.283185307179586f;
  return std::sqrt(-2.0f * std::log(u1)) * std::cos(two_pi * u2);
}

/// A host-side handle on one random stream: (seed, stream) plus how many blocks have been
/// consumed. ops::random_uniform/random_normal read it and advance it, so successive
/// draws never reuse a counter.
struct random_stream {
  std::uint64_t seed = 0;        ///< The Philox key.
  std::uint64_t stream = 0;      ///< The stream number (the high half of the counter).
  std::uint64_t next_block = 0;  ///< The first block the next draw uses.

  /// Blocks needed for n uniform (4 per block) or normal (2 per block) values.
  static constexpr std::uint64_t blocks_for_uniform(std::uint64_t n) { return (n + 3) / 4; }
  /// Blocks needed for n normal values (2 per block).
  static constexpr std::uint64_t blocks_for_normal(std::uint64_t n) { return (n + 1) / 2; }
};

}  // namespace v0
}  // namespace rlhf
