// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The conformance kit on a backend with no overrides: tests every generic implementation.
#include <rlhf/testing/conformance.hpp>
#include <rlhf/testing/minimal_backend.hpp>

TYPE_TO_STRING_AS("minimal", rlhf::testing::minimal_backend);
RLHF_CONFORMANCE_SUITE(rlhf::testing::minimal_backend);
