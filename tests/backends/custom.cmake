# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# examples/custom_backend's custom::vector_backend (plain std::vector storage, every op
# generic except gemm): the conformance kit and every templated algorithm and model suite,
# as test_*_custom (label backend_custom), plus its DPO training example.
#   ctest -L backend_custom
if(NOT TARGET rlhf_custom_vector_backend)  # examples/custom_backend defines it when built
  add_library(rlhf_custom_vector_backend INTERFACE)
  target_include_directories(rlhf_custom_vector_backend INTERFACE
                             "${PROJECT_SOURCE_DIR}/examples/custom_backend")
  target_link_libraries(rlhf_custom_vector_backend INTERFACE rlhf::rlhf)
endif()

rlhf_add_templated_tests(custom NAME "vector" HEADER "vector_backend.hpp"
                         BACKENDS custom::vector_backend
                         LIBS rlhf::eigen rlhf_custom_vector_backend)

# The example trains the bundled GPT for a few DPO steps on the backend and prints this
# line only when the loss went down.
if(TARGET custom_backend_train_dpo)
  target_compile_options(custom_backend_train_dpo PRIVATE ${RLHF_TEST_WARNINGS})
  add_test(NAME example_custom_backend_train_dpo COMMAND custom_backend_train_dpo)
  set_tests_properties(example_custom_backend_train_dpo PROPERTIES
    LABELS backend_custom TIMEOUT 120
    PASS_REGULAR_EXPRESSION "DPO loss decreased: [0-9.]+ -> [0-9.]+")
endif()
