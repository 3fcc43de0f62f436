# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# The Thrust backend (include/rlhf/backends/thrust.hpp).
#
# 1. With rlhf::thrust (Thrust >= 1.17 headers + OpenMP; Debian: libthrust-dev): every
#    templated algorithm and model suite on thrust_backend<omp::tag> (label backend_thrust_omp
#    ...), the conformance kit on the serial CPP system too (backend_thrust_cpp), and three
#    suites on OMP declared not host-accessible (backend_thrust_host_as_device).
#    `ctest -L backend_thrust` runs all of them.
# 2. When CMake finds nvcc: `cuda_build`, a compile-only test that builds CUDA versions of
#    the conformance kit, test_logprobs, the golden transformer test, the CUDA benchmark and
#    the CUDA example (tests/cuda_build, one architecture) so that a broken CUDA build fails
#    CI. Running them needs a GPU: docs/cuda.md.
if(TARGET rlhf::thrust)
  find_package(nlohmann_json 3 CONFIG REQUIRED)
  rlhf_add_templated_tests(thrust_omp NAME "thrust-omp" HEADER "rlhf/backends/thrust.hpp"
                           BACKENDS "rlhf::thrust_backend<thrust::system::omp::tag>"
                           LIBS rlhf::thrust rlhf::eigen)

  # The kit's tensors are small: on OMP it runs every op on OpenMP threads regardless of
  # size (the suites above run small ops on the calling thread).
  target_compile_definitions(test_conformance_thrust_omp PRIVATE RLHF_THRUST_OMP_GRAIN=0)

  # The conformance kit on the CPP system (serial Thrust algorithms).
  rlhf_add_test(test_conformance_thrust_cpp SOURCES conformance_backend.cpp
                LIBS rlhf::thrust LABEL backend_thrust_cpp)
  rlhf_templated_test_setup(test_conformance_thrust_cpp NAME "thrust-cpp"
    HEADER "rlhf/backends/thrust.hpp"
    BACKENDS "rlhf::thrust_backend<thrust::system::cpp::tag>")
  # The conformance kit and a few suites whose host code branches on host_accessible
  # (token-id, mask and finiteness checks, sampling, the reward head, AdamW) on the OMP
  # system declared not host-accessible: the paths a GPU takes, tested without a GPU
  # (rlhf/backends/thrust/testing.hpp).
  rlhf_add_test(test_conformance_thrust_host_as_device SOURCES conformance_backend.cpp
                LIBS rlhf::thrust LABEL backend_thrust_host_as_device)
  rlhf_templated_test_setup(test_conformance_thrust_host_as_device NAME "thrust-omp-as-device"
    HEADER "rlhf/backends/thrust/testing.hpp"
    BACKENDS "rlhf::testing::thrust_host_as_device<thrust::system::omp::tag>")
  set(_t test_suites_thrust_host_as_device)
  rlhf_add_test_group(${_t} SUFFIX _thrust_host_as_device LABEL backend_thrust_host_as_device
    SOURCES algorithms/test_logprobs.cpp model/test_heads.cpp model/test_generate.cpp
            model/test_optim.cpp
    LIBS rlhf::thrust rlhf::eigen nlohmann_json::nlohmann_json)
  rlhf_templated_test_setup(${_t} NAME "thrust-omp-as-device"
    HEADER "rlhf/backends/thrust/testing.hpp"
    BACKENDS "rlhf::testing::thrust_host_as_device<thrust::system::omp::tag>")

  # (`ctest -L backend_thrust` selects all of them: labels are regular expressions.)

  # Every test case is its own process making many small OpenMP parallel regions; with
  # `ctest -j` two such processes spinning in OpenMP barriers on the same cores slow each
  # other down ~20x (2 s become 80 s on 2 cores). Passive waiting for these tests: a script
  # ctest runs after reading the discovered tests sets their ENVIRONMENT.
  set(_thrust_env "${CMAKE_CURRENT_BINARY_DIR}/thrust_tests_environment.cmake")
  file(CONFIGURE OUTPUT "${_thrust_env}" @ONLY CONTENT [=[
file(GLOB _files "@CMAKE_CURRENT_BINARY_DIR@/test_*_thrust_*_tests-*.cmake"
                 "@CMAKE_CURRENT_BINARY_DIR@/test_*_thrust_*_cases.cmake")
foreach(_f IN LISTS _files)
  file(STRINGS "${_f}" _lines REGEX "^add_test\\( ?\\[==\\[")
  foreach(_l IN LISTS _lines)
    if(_l MATCHES "^add_test\\( ?\\[==\\[([^]]*)\\]==\\]")
      set_tests_properties("${CMAKE_MATCH_1}" PROPERTIES ENVIRONMENT "OMP_WAIT_POLICY=passive")
    endif()
  endforeach()
endforeach()
]=])
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${_thrust_env}")
endif()

include(CheckLanguage)
check_language(CUDA)
option(RLHF_TEST_CUDA_BUILD
       "Test that the CUDA versions of a few tests, a benchmark and an example compile" ON)
if(CMAKE_CUDA_COMPILER AND RLHF_TEST_CUDA_BUILD AND TARGET rlhf::cuda)
  # sm_80 machine code only (ptxas runs, no PTX embedded); "80-virtual" skips ptxas
  # (about 25% less time, but resource errors of ptxas go unnoticed).
  set(RLHF_TEST_CUDA_BUILD_ARCH "80-real" CACHE STRING
      "The one CUDA architecture of the cuda_build compile check")
  set(_cuda_launcher "")
  find_program(RLHF_CCACHE ccache)
  if(RLHF_CCACHE)
    set(_cuda_launcher "-DCMAKE_CUDA_COMPILER_LAUNCHER=${RLHF_CCACHE}"
                       "-DCMAKE_CXX_COMPILER_LAUNCHER=${RLHF_CCACHE}")
  endif()
  # A project of its own (tests/cuda_build), configured and built by ctest: nothing of it
  # is part of `all`, and its build directory is kept, so reruns are incremental.
  add_test(NAME cuda_build
           COMMAND ${CMAKE_CTEST_COMMAND}
                   --build-and-test "${PROJECT_SOURCE_DIR}/tests/cuda_build"
                                    "${CMAKE_CURRENT_BINARY_DIR}/cuda_build"
                   --build-generator "${CMAKE_GENERATOR}"
                   --build-makeprogram "${CMAKE_MAKE_PROGRAM}" --build-noclean
                   --build-options "-DCMAKE_CUDA_COMPILER=${CMAKE_CUDA_COMPILER}"
                                   "-DCMAKE_CUDA_ARCHITECTURES=${RLHF_TEST_CUDA_BUILD_ARCH}"
                                   "-DCMAKE_BUILD_TYPE="  # no host -O3: compile check only
                                   "-DCMAKE_PREFIX_PATH=${CMAKE_PREFIX_PATH}"
                                   ${_cuda_launcher}
                                   "-DRLHF_CUDA_SET=check")
  set_tests_properties(cuda_build PROPERTIES LABELS "cuda_build" TIMEOUT 1500)
endif()
