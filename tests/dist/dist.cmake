# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# Data-parallel transports (include/rlhf/dist/, docs/distributed.md), label `dist`; only
# with rlhf::mpi and an MPI launcher (FindMPI's MPIEXEC_EXECUTABLE):
#   dist_mpi                    test_dist_mpi under `mpiexec -np 2`: every case on both ranks
#   dist_mpi_dead_rank          rank 1 std::_Exit(3)s while rank 0 waits in all_reduce: the
#                               launcher must end the job, non-zero, naming the failure
#   dist_mpi_abort_on_exception rank 1 throws inside abort_on_exception while rank 0 waits
#                               in a barrier: MPI_Abort must end the job, with the message
#   dist_cli                    `mpiexec -np 2 rlhf sft|dpo` against one process with twice
#                               the micro-batch, resume, the world size, a failing run
#                               (tests/dist/cli_data_parallel.cmake)
# The dead-rank cases run tests/dist/failing_rank.cmake, which checks the exit status and the
# output (and that rank 0 never got past the collective), within a timeout of its own.
# Run them alone with `ctest -L dist`.
if(NOT TARGET rlhf::mpi)
  message(STATUS "rlhf++: no dist tests: rlhf::mpi is not available (MPI for C++; Debian: "
                 "libopenmpi-dev openmpi-bin)")
  return()
endif()
if(NOT MPIEXEC_EXECUTABLE)
  message(STATUS "rlhf++: no dist tests: no MPI launcher (mpiexec/mpirun; Debian: openmpi-bin)")
  return()
endif()

add_executable(test_dist_mpi ${CMAKE_CURRENT_LIST_DIR}/test_dist_mpi.cpp)
target_link_libraries(test_dist_mpi PRIVATE rlhf_doctest_main rlhf::mpi)
target_compile_options(test_dist_mpi PRIVATE ${RLHF_TEST_WARNINGS})

# 2 ranks whatever the number of cores: Open MPI needs --oversubscribe for that (on a
# 1-core machine), and refuses to run as root without the two variables below.
set(_rlhf_mpiexec "${MPIEXEC_EXECUTABLE}" ${MPIEXEC_NUMPROC_FLAG} 2)
execute_process(COMMAND "${MPIEXEC_EXECUTABLE}" --version OUTPUT_VARIABLE _rlhf_mpiexec_version
                ERROR_VARIABLE _rlhf_mpiexec_version RESULT_VARIABLE _rlhf_mpiexec_rc)
if(_rlhf_mpiexec_version MATCHES "Open MPI|OpenRTE")
  list(APPEND _rlhf_mpiexec --oversubscribe)
endif()
list(APPEND _rlhf_mpiexec ${MPIEXEC_PREFLAGS})
# OMP_NUM_THREADS=1: two ranks on a shared machine. LSan off: Open MPI's own allocations
# (MPI_Init's, never freed) would fail the sanitizer build.
set(_rlhf_dist_env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
                   ASAN_OPTIONS=detect_leaks=0)

add_test(NAME dist_mpi
         COMMAND ${_rlhf_mpiexec} $<TARGET_FILE:test_dist_mpi> ${MPIEXEC_POSTFLAGS})
set_tests_properties(dist_mpi PROPERTIES LABELS dist TIMEOUT 120
                     ENVIRONMENT "${_rlhf_dist_env}")

string(REPLACE ";" "|" _rlhf_launch "${_rlhf_mpiexec}")
foreach(_case IN ITEMS dead_rank abort_on_exception)
  add_test(NAME dist_mpi_${_case}
           COMMAND ${CMAKE_COMMAND} "-DLAUNCH=${_rlhf_launch}" -DEXE=$<TARGET_FILE:test_dist_mpi>
                   -DCASE=${_case} -DTIMEOUT=60
                   -P ${CMAKE_CURRENT_LIST_DIR}/failing_rank.cmake)
  set_tests_properties(dist_mpi_${_case} PROPERTIES LABELS dist TIMEOUT 120
                       ENVIRONMENT "${_rlhf_dist_env}")
endforeach()

# The command-line tool under the launcher (needs the tool and Python for the comparison).
find_program(RLHF_DIST_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(TARGET rlhf_cli AND RLHF_DIST_PYTHON)
  add_test(NAME dist_cli
           COMMAND ${CMAKE_COMMAND} -DRLHF=$<TARGET_FILE:rlhf_cli> "-DLAUNCH=${_rlhf_launch}"
                   -DPYTHON=${RLHF_DIST_PYTHON} -DWORK=${CMAKE_CURRENT_BINARY_DIR}/dist_cli
                   -P ${CMAKE_CURRENT_LIST_DIR}/cli_data_parallel.cmake)
  set_tests_properties(dist_cli PROPERTIES LABELS "dist;cli" TIMEOUT 600
                       ENVIRONMENT "${_rlhf_dist_env}")
elseif(PROJECT_IS_TOP_LEVEL)
  message(STATUS "rlhf++: no dist_cli test (needs the rlhf tool and /usr/bin/python3)")
endif()
