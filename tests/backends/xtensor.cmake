# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# The templated algorithm and model suites and the conformance kit on rlhf::xtensor_backend
# (ctest label backend_xtensor). rlhf::eigen is linked too: the test support header
# includes the Eigen backend.
if(TARGET rlhf::xtensor)
  rlhf_add_templated_tests(xtensor NAME "xtensor" HEADER "rlhf/backends/xtensor.hpp"
                           BACKENDS rlhf::xtensor_backend LIBS rlhf::xtensor rlhf::eigen)
endif()
