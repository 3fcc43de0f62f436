# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# cmake -P script: configure, build and run a consumer project from a clean build dir.
#   -DMODE=package|subdirectory -DBUILD_DIR=... -DGENERATOR=... -DMAKE_PROGRAM=...
#   -DCXX_COMPILER=... -DEXPECT_VERSION=... and -DPREFIX=... (package) or
#   -DRLHF_SOURCE=... (subdirectory)
# Optional:
#   -DPROJECT_DIR=...      the consumer project (default: consumer/ beside this script)
#   -DEXTRA_ARGS=a|b|c     more configure arguments, separated by '|'
#   -DEXECUTABLE=name      the program to run (default: consumer); -DRUN=OFF builds only
#   -DLDD_FORBID=regex     the program must not load a library matching regex
#   -DLDD_NOT_BOTH=a|b     the program must not load both a library matching a and one
#                          matching b (e.g. two OpenMP runtimes)
cmake_minimum_required(VERSION 3.21)

# A consumer build of its own: no launcher (ccache) or flags inherited from the environment.
unset(ENV{CMAKE_CXX_COMPILER_LAUNCHER})
unset(ENV{CMAKE_CUDA_COMPILER_LAUNCHER})
unset(ENV{CXXFLAGS})
unset(ENV{CUDAFLAGS})

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("---- ${what}\n${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc})")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

if(NOT PROJECT_DIR)
  set(PROJECT_DIR "${CMAKE_CURRENT_LIST_DIR}/consumer")
endif()
if(NOT EXECUTABLE)
  set(EXECUTABLE consumer)
endif()

file(REMOVE_RECURSE "${BUILD_DIR}")
set(args -S "${PROJECT_DIR}" -B "${BUILD_DIR}" -G "${GENERATOR}"
         -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release
         -DRLHF_CONSUME=${MODE})
if(MAKE_PROGRAM)
  list(APPEND args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(EXTRA_ARGS)
  string(REPLACE "|" ";" _extra "${EXTRA_ARGS}")
  list(APPEND args ${_extra})
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
if(DEFINED RUN AND NOT RUN)
  return()
endif()
run_step("run" "${BUILD_DIR}/${EXECUTABLE}")
if(EXPECT_VERSION AND NOT step_output MATCHES "rlhf\\+\\+ ${EXPECT_VERSION} ")
  message(FATAL_ERROR "${EXECUTABLE} did not report version ${EXPECT_VERSION}")
endif()

if(LDD_FORBID OR LDD_NOT_BOTH)
  run_step("ldd" ldd "${BUILD_DIR}/${EXECUTABLE}")
  if(LDD_FORBID AND step_output MATCHES "${LDD_FORBID}")
    message(FATAL_ERROR "${EXECUTABLE} loads a library matching '${LDD_FORBID}'")
  endif()
  if(LDD_NOT_BOTH)
    string(REPLACE "|" ";" _pair "${LDD_NOT_BOTH}")
    list(GET _pair 0 _a)
    list(GET _pair 1 _b)
    if(step_output MATCHES "${_a}" AND step_output MATCHES "${_b}")
      message(FATAL_ERROR "${EXECUTABLE} loads both '${_a}' and '${_b}'")
    endif()
  endif()
endif()
