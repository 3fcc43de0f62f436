# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# cmake -P script: the README's install command on a machine without the developer
# dependencies. `cmake -S <src> -B <dir>` as a user types it (top level, no options), with
# doctest, Google Benchmark and nlohmann-json made unfindable, then `cmake --install`.
#   -DSOURCE_DIR=... -DBUILD_DIR=... -DGENERATOR=... -DCXX_COMPILER=...
cmake_minimum_required(VERSION 3.21)
unset(ENV{CMAKE_CXX_COMPILER_LAUNCHER})

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("---- ${what}\n${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc})")
  endif()
endfunction()

file(REMOVE_RECURSE "${BUILD_DIR}")
run_step("configure" ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${BUILD_DIR}/build"
         -G "${GENERATOR}" -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
         -DCMAKE_DISABLE_FIND_PACKAGE_doctest=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON
         -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON)
run_step("build" ${CMAKE_COMMAND} --build "${BUILD_DIR}/build")
run_step("install" ${CMAKE_COMMAND} --install "${BUILD_DIR}/build"
         --prefix "${BUILD_DIR}/prefix")
foreach(_f IN ITEMS include/rlhf/rlhf.hpp share/cmake/rlhfpp/rlhfppConfig.cmake
                    share/cmake/rlhfpp/rlhfppComponents.cmake share/doc/rlhfpp/LICENSE
                    share/pkgconfig/rlhfpp.pc)
  if(NOT EXISTS "${BUILD_DIR}/prefix/${_f}")
    message(FATAL_ERROR "the install has no ${_f}")
  endif()
endforeach()
