# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# cmake -P script: configure, build and run tests/packaging/consumer from a clean build dir.
#   -DMODE=package|subdirectory -DBUILD_DIR=... -DGENERATOR=... -DMAKE_PROGRAM=...
#   -DCXX_COMPILER=... -DEXPECT_VERSION=... and -DPREFIX=... (package) or
#   -DRLHF_SOURCE=... (subdirectory)
cmake_minimum_required(VERSION 3.21)

# A consumer build of its own: no launcher (ccache) or flags inherited from the environment.
unset(ENV{CMAKE_CXX_COMPILER_LAUNCHER})
unset(ENV{CXXFLAGS})

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("---- ${what}\n${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc})")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${BUILD_DIR}")
set(args -S "${CMAKE_CURRENT_LIST_DIR}/consumer" -B "${BUILD_DIR}" -G "${GENERATOR}"
         -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release
         -DRLHF_CONSUME=${MODE})
if(MAKE_PROGRAM)
  list(APPEND args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(MODE STREQUAL "package")
  # Only the test prefix: no user package registry, so a stray install cannot be picked.
  list(APPEND args -DCMAKE_PREFIX_PATH=${PREFIX} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
else()
  list(APPEND args -DRLHF_SOURCE_DIR=${RLHF_SOURCE})
endif()
run_step("configure" ${CMAKE_COMMAND} ${args})

if(MODE STREQUAL "package")
  # The package must come from the prefix we installed, not from somewhere else.
  file(STRINGS "${BUILD_DIR}/CMakeCache.txt" dir REGEX "^rlhfpp_DIR:")
  string(REGEX REPLACE "^[^=]*=" "" dir "${dir}")
  cmake_path(IS_PREFIX PREFIX "${dir}" NORMALIZE from_prefix)
  if(NOT from_prefix)
    message(FATAL_ERROR "rlhfpp was found in '${dir}', not under '${PREFIX}'")
  endif()
endif()

run_step("build" ${CMAKE_COMMAND} --build "${BUILD_DIR}")
run_step("run" "${BUILD_DIR}/consumer")
if(NOT step_output MATCHES "rlhf\\+\\+ ${EXPECT_VERSION} ")
  message(FATAL_ERROR "consumer did not report version ${EXPECT_VERSION}")
endif()
