# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# One failing-rank case of the dist tests (tests/dist/dist.cmake): runs one skipped case of
# test_dist_mpi on 2 ranks and checks that the job ends by itself, within TIMEOUT seconds,
# with a non-zero exit status and a message naming the failure, and that rank 0 never got
# past the collective it was waiting in (it must not pretend the job went on).
#   cmake -DLAUNCH=<mpiexec -np 2 ..., '|'-separated> -DEXE=<test_dist_mpi>
#         -DCASE=dead_rank|abort_on_exception -DTIMEOUT=<seconds> -P failing_rank.cmake
cmake_minimum_required(VERSION 3.21)
string(REPLACE "|" ";" _launch "${LAUNCH}")

if(CASE STREQUAL "dead_rank")
  set(_test_case "failing rank: rank 1 exits before a collective")
  # Open MPI: "Process name: [[job,1],1]" then "Exit code: 3"; MPICH's hydra: "EXIT CODE: 3".
  set(_want "(Process name: \\[\\[[0-9]+,[0-9]+\\],1\\][ \t\r\n]+Exit code:[ \t]+3|EXIT CODE: 3)")
  set(_must_not "returned from all_reduce")
elseif(CASE STREQUAL "abort_on_exception")
  set(_test_case "failing rank: rank 1 throws inside abort_on_exception")
  set(_want "rlhf: rank 1: uncaught exception: rank 1 lost its data file; aborting every rank \\(MPI_Abort\\)")
  set(_must_not "passed the barrier")
else()
  message(FATAL_ERROR "failing_rank.cmake: unknown CASE '${CASE}'")
endif()

string(TIMESTAMP _t0 "%s")
execute_process(COMMAND ${_launch} "${EXE}" "--test-case=${_test_case}" --no-skip
                RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _err
                TIMEOUT ${TIMEOUT})
string(TIMESTAMP _t1 "%s")
math(EXPR _seconds "${_t1} - ${_t0}")
set(_all "${_out}\n${_err}")
message("---- ${CASE}: exit status '${_rc}' after ${_seconds} s\n--- stdout:\n${_out}\n--- stderr:\n${_err}")

if(NOT _rc MATCHES "^[0-9]+$")
  message(FATAL_ERROR "${CASE}: the job did not end by itself within ${TIMEOUT} s (${_rc}): "
                      "a rank hangs")
endif()
if(_rc EQUAL 0)
  message(FATAL_ERROR "${CASE}: the job exited with status 0; a failed rank must fail it")
endif()
if(NOT _all MATCHES "${_want}")
  message(FATAL_ERROR "${CASE}: no message naming the failure (expected to match '${_want}')")
endif()
if(_all MATCHES "${_must_not}")
  message(FATAL_ERROR "${CASE}: rank 0 went on past the collective ('${_must_not}')")
endif()
message(STATUS "${CASE}: the job ended in ${_seconds} s with status ${_rc}, naming the failure")
