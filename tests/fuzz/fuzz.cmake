# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# Fuzz tests (label `fuzz`) of the file readers, with libFuzzer: only where a clang++ whose
# -fsanitize=fuzzer links is found (Debian: clang and libclang-rt-<version>-dev).
#   fuzz_build              configures and builds tests/fuzz/ (a project of its own, with
#                           clang++, ASan and UBSan) from a clean directory; a fixture
#   fuzz_<target>           runs tests/fuzz/regressions/<target>/* once each, then fuzzes
#                           for RLHF_FUZZ_SECONDS (environment, at test time; default 30)
#                           a copy of tests/fuzz/corpus/<target>/ under the build tree;
#                           a crash input is left in <build>/fuzz/<target>/artifacts/
# Targets: safetensors (load_safetensors), checkpoint (load_checkpoint), config
# (load_config), jsonl (the JSONL dataset reader and tokenize). Run them alone with
# `ctest -L fuzz`; -DRLHF_FUZZ=OFF leaves them out.
# A fixed crash's input goes into tests/fuzz/regressions/<target>/ (any file name).
option(RLHF_FUZZ "Register the libFuzzer tests when a clang++ with libFuzzer is found" ON)
set(RLHF_FUZZ_SECONDS 30 CACHE STRING "Default fuzzing time of each fuzz test (seconds)")

if(RLHF_FUZZ)
  find_program(RLHF_FUZZ_CXX NAMES clang++ clang++-19 clang++-18 clang++-17 clang++-16
                                   clang++-15 clang++-14)
endif()
if(RLHF_FUZZ AND RLHF_FUZZ_CXX)
  # Does it build a fuzzer? Checked once per compiler (a cached result).
  if(NOT DEFINED RLHF_FUZZ_CXX_WORKS OR NOT RLHF_FUZZ_CXX_CHECKED STREQUAL RLHF_FUZZ_CXX)
    set(_dir "${CMAKE_CURRENT_BINARY_DIR}/fuzz/check")
    file(MAKE_DIRECTORY "${_dir}")
    file(WRITE "${_dir}/check.cpp"
         "#include <cstddef>\n#include <cstdint>\n"
         "extern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) "
         "{ return 0; }\n")
    execute_process(COMMAND "${RLHF_FUZZ_CXX}" -std=c++20
                            -fsanitize=fuzzer,address,undefined "${_dir}/check.cpp"
                            -o "${_dir}/check"
                    RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
    set(_works OFF)
    if(_rc EQUAL 0)
      set(_works ON)
    endif()
    set(RLHF_FUZZ_CXX_WORKS ${_works} CACHE INTERNAL "RLHF_FUZZ_CXX links -fsanitize=fuzzer")
    set(RLHF_FUZZ_CXX_CHECKED "${RLHF_FUZZ_CXX}" CACHE INTERNAL "")
  endif()
  if(NOT RLHF_FUZZ_CXX_WORKS)
    message(STATUS "rlhf++: fuzz tests off (${RLHF_FUZZ_CXX} cannot link -fsanitize=fuzzer; "
                   "Debian: install libclang-rt-dev)")
  else()
    set(_fuzz "${CMAKE_CURRENT_BINARY_DIR}/fuzz")
    add_test(NAME fuzz_build
             COMMAND ${CMAKE_COMMAND} -DMODE=build -DBUILD_DIR=${_fuzz}/build
                     -DCXX_COMPILER=${RLHF_FUZZ_CXX} -DGENERATOR=${CMAKE_GENERATOR}
                     -DMAKE_PROGRAM=${CMAKE_MAKE_PROGRAM} -DRLHF_SOURCE=${PROJECT_SOURCE_DIR}
                     -P ${CMAKE_CURRENT_LIST_DIR}/run_fuzz.cmake)
    set_tests_properties(fuzz_build PROPERTIES FIXTURES_SETUP rlhf_fuzz_built LABELS fuzz
                         TIMEOUT 900)
    # The ctest timeout allows for the configure-time RLHF_FUZZ_SECONDS (or the
    # environment's, when set at configure time) plus the regressions and start-up.
    set(_seconds "${RLHF_FUZZ_SECONDS}")
    if(DEFINED ENV{RLHF_FUZZ_SECONDS} AND "$ENV{RLHF_FUZZ_SECONDS}" MATCHES "^[0-9]+$")
      set(_seconds "$ENV{RLHF_FUZZ_SECONDS}")
    endif()
    math(EXPR _timeout "${_seconds} + 300")
    foreach(_target IN ITEMS safetensors checkpoint config jsonl)
      add_test(NAME fuzz_${_target}
               COMMAND ${CMAKE_COMMAND} -DMODE=run -DBUILD_DIR=${_fuzz}/build
                       -DTARGET=${_target} -DWORK_DIR=${_fuzz}/${_target}
                       -DSECONDS=${RLHF_FUZZ_SECONDS}
                       -P ${CMAKE_CURRENT_LIST_DIR}/run_fuzz.cmake)
      set_tests_properties(fuzz_${_target} PROPERTIES FIXTURES_REQUIRED rlhf_fuzz_built
                           LABELS fuzz TIMEOUT ${_timeout})
    endforeach()
  endif()
elseif(RLHF_FUZZ)
  message(STATUS "rlhf++: fuzz tests off (no clang++ found)")
endif()
