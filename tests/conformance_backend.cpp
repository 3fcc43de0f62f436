// SPDX-FileCopyrightText: 2026 The rlhf++ authors
// SPDX-License-Identifier: Apache-2.0
// The conformance kit on one more backend, chosen at build time by rlhf_add_templated_tests
// (tests/CMakeLists.txt): RLHF_TEST_BACKEND_HEADER names its header, RLHF_TEST_BACKENDS the
// type and RLHF_TEST_BACKEND_NAME how doctest prints it.
#include RLHF_TEST_BACKEND_HEADER
#include <rlhf/testing/conformance.hpp>

TYPE_TO_STRING_AS(RLHF_TEST_BACKEND_NAME, RLHF_TEST_BACKENDS);
RLHF_CONFORMANCE_SUITE(RLHF_TEST_BACKENDS);
