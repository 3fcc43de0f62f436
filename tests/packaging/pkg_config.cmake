# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# cmake -P script: a build without CMake. Compiles consumer/main.cpp with the compiler and
# `pkg-config --cflags --libs rlhfpp-eigen` from the installed prefix, then runs it.
#   -DPKG_CONFIG=... -DPREFIX=... -DCXX_COMPILER=... -DBUILD_DIR=... -DEXPECT_VERSION=...
cmake_minimum_required(VERSION 3.21)

set(ENV{PKG_CONFIG_PATH} "${PREFIX}/share/pkgconfig")
execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs rlhfpp-eigen
                RESULT_VARIABLE rc OUTPUT_VARIABLE flags ERROR_VARIABLE err
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "pkg-config rlhfpp-eigen failed: ${err}")
endif()
if(NOT flags MATCHES "-I${PREFIX}/")
  message(FATAL_ERROR "pkg-config gave no -I for the prefix: ${flags}")
endif()
execute_process(COMMAND "${PKG_CONFIG}" --modversion rlhfpp OUTPUT_VARIABLE version
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT version STREQUAL EXPECT_VERSION)
  message(FATAL_ERROR "pkg-config rlhfpp version '${version}', expected '${EXPECT_VERSION}'")
endif()
separate_arguments(flags UNIX_COMMAND "${flags}")
file(MAKE_DIRECTORY "${BUILD_DIR}")
execute_process(COMMAND "${CXX_COMPILER}" -std=c++20 -O1 ${flags}
                        "${CMAKE_CURRENT_LIST_DIR}/consumer/main.cpp" -o "${BUILD_DIR}/consumer"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "compiling with pkg-config's flags (${flags}) failed:\n${out}")
endif()
execute_process(COMMAND "${BUILD_DIR}/consumer" RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message("${out}")
if(NOT rc EQUAL 0 OR NOT out MATCHES "rlhf\\+\\+ ${EXPECT_VERSION} ")
  message(FATAL_ERROR "the pkg-config consumer failed (${rc})")
endif()
