# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# cmake -P script: `conan create` of the repository in a private, fresh, offline Conan home.
#   -DCONAN=... -DCONAN_HOME=... (also set as the CONAN_HOME environment variable by ctest)
#   -DSOURCE_DIR=... -DTEST_BUILD_DIR=... -DGENERATOR=... -DCXX_COMPILER=...
cmake_minimum_required(VERSION 3.21)

if(NOT "$ENV{CONAN_HOME}" STREQUAL "${CONAN_HOME}")
  message(FATAL_ERROR "CONAN_HOME must be set to ${CONAN_HOME} (got '$ENV{CONAN_HOME}')")
endif()
# The package build and test_package are plain builds: no ccache, no flags from outside.
unset(ENV{CMAKE_CXX_COMPILER_LAUNCHER})
unset(ENV{CXXFLAGS})
set(ENV{CXX} "${CXX_COMPILER}")  # the compiler `profile detect` and CMake use

function(conan what)
  execute_process(COMMAND "${CONAN}" ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "conan ${what} failed (${rc})")
  endif()
endfunction()

# A fresh home each run: repeatable, and proves nothing is needed from a remote.
file(REMOVE_RECURSE "${CONAN_HOME}" "${TEST_BUILD_DIR}")
conan("profile detect" profile detect --force)
conan("remote disable" remote disable conancenter)
conan("create" create "${SOURCE_DIR}" --build=missing --no-remote
      -s compiler.cppstd=20 -s build_type=Release
      -c tools.cmake.cmaketoolchain:generator=${GENERATOR}
      # Build test_package under the build tree, not in the source tree.
      -c tools.cmake.cmake_layout:test_folder=${TEST_BUILD_DIR})
