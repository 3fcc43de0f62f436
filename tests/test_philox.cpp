// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// Philox4x32-10 against the known-answer vectors published with the Random123 library
// (Salmon et al. 2011), an independent reference.
#include <doctest/doctest.h>

#include <rlhf/core/philox.hpp>

namespace {
void check_kat(rlhf::philox_block ctr, std::uint32_t k0, std::uint32_t k1,
               rlhf::philox_block want) {
  const rlhf::philox_block got = rlhf::philox4x32_10(ctr, k0, k1);
  for (int i = 0; i < 4; ++i) CHECK(got.w[i] == want.w[i]);
}
}  // namespace

TEST_CASE("philox4x32-10 known-answer vectors") {
  check_kat({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}});
  check_kat({{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
            {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}});
  check_kat({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
            {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}});
}

TEST_CASE("philox_draw packs (block, stream) into the counter and the seed into the key") {
  const auto a = rlhf::philox_draw(0x299f31d0a4093822ull, 0x0370734413198a2eull,
                                   0x85a308d3243f6a88ull);
  CHECK(a.w[0] == 0xd16cfe09);
  CHECK(a.w[3] == 0x24126ea1);
}

TEST_CASE("uniform and normal draws are in range") {
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const float u = rlhf::philox_uniform(1, 2, 3, i);
    CHECK(u >= 0.0f);
    CHECK(u < 1.0f);
    const float z = rlhf::philox_normal(1, 2, 3, i);
    CHECK(std::isfinite(z));
  }
  CHECK(rlhf::uniform_from_bits(0xffffffffu) == doctest::Approx(1.0 - 1.0 / 16777216.0));
  CHECK(rlhf::uniform_from_bits(0) == 0.0f);
}
