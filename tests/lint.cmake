# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# Lint tests (label `lint`), each only when its tool is installed:
#   format_changed_lines  scripts/check-format: the lines changed since the commit that
#                         added .clang-format (and uncommitted ones) are formatted as it says
#   clang_tidy_headers    clang-tidy with .clang-tidy on tests/lint/all_headers.cpp, a
#                         translation unit that includes every public CPU header
# Run them alone with `ctest -L lint`.

find_program(RLHF_GIT_CLANG_FORMAT NAMES git-clang-format git-clang-format-14)
find_package(Git QUIET)
set(_rlhf_git_work_tree FALSE)
if(GIT_FOUND)
  execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse --is-inside-work-tree
                  WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
                  OUTPUT_VARIABLE _rlhf_inside OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE _rlhf_git_rc ERROR_QUIET)
  if(_rlhf_git_rc EQUAL 0 AND _rlhf_inside STREQUAL "true")
    set(_rlhf_git_work_tree TRUE)
  endif()
endif()
if(RLHF_GIT_CLANG_FORMAT AND _rlhf_git_work_tree)
  add_test(NAME format_changed_lines
           COMMAND bash ${PROJECT_SOURCE_DIR}/scripts/check-format
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(format_changed_lines PROPERTIES LABELS lint)
endif()

find_program(RLHF_CLANG_TIDY NAMES clang-tidy clang-tidy-14)
find_path(RLHF_LINT_EIGEN_DIR Eigen/Core PATH_SUFFIXES eigen3)
find_path(RLHF_LINT_XTENSOR_DIR xtensor/xmath.hpp)
find_path(RLHF_LINT_JSON_DIR nlohmann/json.hpp)
if(RLHF_CLANG_TIDY AND RLHF_LINT_EIGEN_DIR AND RLHF_LINT_XTENSOR_DIR AND RLHF_LINT_JSON_DIR)
  # Explicit compiler arguments instead of a compile_commands.json: the file is never built.
  # Third-party headers come in through -isystem, so their warnings are not reported.
  set(_rlhf_tidy_args -std=c++20 -I${PROJECT_SOURCE_DIR}/include -fopenmp -fopenmp-simd
      -DRLHF_OPENMP_SIMD)
  set(_rlhf_tidy_dirs ${RLHF_LINT_EIGEN_DIR} ${RLHF_LINT_XTENSOR_DIR} ${RLHF_LINT_JSON_DIR})
  list(REMOVE_DUPLICATES _rlhf_tidy_dirs)
  foreach(_dir IN LISTS _rlhf_tidy_dirs)
    # The compiler's own directories (/usr/include) are system ones already; naming them
    # again with -isystem would reorder them before the C++ library's.
    if(NOT _dir IN_LIST CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES
       AND NOT _dir STREQUAL "/usr/include")
      list(APPEND _rlhf_tidy_args -isystem ${_dir})
    endif()
  endforeach()
  add_test(NAME clang_tidy_headers
           COMMAND ${RLHF_CLANG_TIDY} --quiet
                   ${PROJECT_SOURCE_DIR}/tests/lint/all_headers.cpp -- ${_rlhf_tidy_args}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(clang_tidy_headers PROPERTIES LABELS lint TIMEOUT 600)
endif()
