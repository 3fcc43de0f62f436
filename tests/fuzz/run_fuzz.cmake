# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# cmake -P script behind the `fuzz` tests (fuzz.cmake).
#   -DMODE=build  configure and build the fuzz project (this directory) from a clean build
#                 dir with clang++: -DBUILD_DIR=... -DCXX_COMPILER=... -DGENERATOR=...
#                 [-DMAKE_PROGRAM=...] -DRLHF_SOURCE=...
#   -DMODE=run    run one target: -DBUILD_DIR=... (the fuzz project's build) -DTARGET=name
#                 -DWORK_DIR=... (scratch under the build tree) -DSECONDS=default seconds
#                 First every file of regressions/<name>/ once (no fuzzing), then fuzzing
#                 for $ENV{RLHF_FUZZ_SECONDS} (else SECONDS) seconds on a fresh copy of
#                 corpus/<name>/; crash inputs go to WORK_DIR/artifacts/. The source tree
#                 is never written.
cmake_minimum_required(VERSION 3.21)

# A build of its own: no launcher (ccache) or flags inherited from the environment.
unset(ENV{CMAKE_CXX_COMPILER_LAUNCHER})
unset(ENV{CXXFLAGS})
unset(ENV{LDFLAGS})

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  message("---- ${what}\n${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc})")
  endif()
endfunction()

set(_here "${CMAKE_CURRENT_LIST_DIR}")

if(MODE STREQUAL "build")
  file(REMOVE_RECURSE "${BUILD_DIR}")
  set(args -S "${_here}" -B "${BUILD_DIR}" -G "${GENERATOR}"
           -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DRLHF_SOURCE_DIR=${RLHF_SOURCE})
  if(MAKE_PROGRAM)
    list(APPEND args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
  endif()
  run_step("configure" ${CMAKE_COMMAND} ${args})
  run_step("build" ${CMAKE_COMMAND} --build "${BUILD_DIR}")
  return()
endif()

if(NOT MODE STREQUAL "run")
  message(FATAL_ERROR "run_fuzz.cmake: MODE must be build or run, got '${MODE}'")
endif()

set(exe "${BUILD_DIR}/fuzz_${TARGET}")
if(NOT EXISTS "${exe}")
  message(FATAL_ERROR "${exe} is missing: the fuzz_build test builds it")
endif()
set(seconds "${SECONDS}")
if(DEFINED ENV{RLHF_FUZZ_SECONDS} AND NOT "$ENV{RLHF_FUZZ_SECONDS}" STREQUAL "")
  set(seconds "$ENV{RLHF_FUZZ_SECONDS}")
endif()
if(NOT seconds MATCHES "^[0-9]+$")
  message(FATAL_ERROR "RLHF_FUZZ_SECONDS must be a whole number of seconds, got '${seconds}'")
endif()

# Findings are fatal and reported with a symbolised stack.
set(ENV{ASAN_OPTIONS} "abort_on_error=1:detect_leaks=1:symbolize=1")
set(ENV{UBSAN_OPTIONS} "halt_on_error=1:print_stacktrace=1:symbolize=1")

set(corpus "${WORK_DIR}/corpus")
set(artifacts "${WORK_DIR}/artifacts/")
file(REMOVE_RECURSE "${corpus}")
file(MAKE_DIRECTORY "${corpus}" "${artifacts}")
file(GLOB seeds "${_here}/corpus/${TARGET}/*")
if(seeds)
  file(COPY ${seeds} DESTINATION "${corpus}")
endif()
set(limits -timeout=10 -rss_limit_mb=2048 -artifact_prefix=${artifacts})

# Regressions: each file once, as libFuzzer runs files given on its command line.
file(GLOB regressions LIST_DIRECTORIES false "${_here}/regressions/${TARGET}/*")
list(FILTER regressions EXCLUDE REGEX "/(README[^/]*|\\.[^/]*)$")  # notes, .gitkeep
if(regressions)
  list(LENGTH regressions n)
  run_step("regressions of ${TARGET} (${n} files)" "${exe}" ${limits} ${regressions})
endif()

run_step("fuzzing ${TARGET} for ${seconds} s" "${exe}" ${limits} -max_len=65536
         -max_total_time=${seconds} -print_final_stats=1 "${corpus}")
