# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# Registers the doctest cases of one test binary with ctest, one test per case, named after
# the source file that defines it: "<source name><suffix>: <case name>". Run after each link
# (rlhf_add_test_group in tests/CMakeLists.txt):
#   cmake -DEXE=<binary> -DOUT=<ctest file> -DSOURCES=<a.cpp|b.cpp|...> -DSUFFIX=<s>
#         -DLABEL=<label> -P register_cases.cmake
# A binary built from several sources (one unity batch or more) thus gives the same test
# names as one binary per source would.
string(REPLACE "|" ";" _sources "${SOURCES}")
set(_script "")
set(_seen "\n")
foreach(_src IN LISTS _sources)
  get_filename_component(_stem "${_src}" NAME_WE)
  # doctest's filters match the full __FILE__ with * and ?; the unity batches include each
  # source by its absolute path, so __FILE__ is that path.
  set(_file_filter "--source-file=*${_src}")
  execute_process(COMMAND "${EXE}" "${_file_filter}" --list-test-cases --no-version
                  OUTPUT_VARIABLE _out RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "listing the cases of ${EXE} (${_src}) failed (${_rc}):\n${_out}")
  endif()
  set(_count 0)
  # One case per line (walked with string(FIND): a case name may hold "[" or ";", which a
  # CMake list would not keep apart).
  string(APPEND _out "\n")
  string(FIND "${_out}" "\n" _end)
  while(_end GREATER_EQUAL 0)
    string(SUBSTRING "${_out}" 0 ${_end} _case)
    math(EXPR _next "${_end} + 1")
    string(SUBSTRING "${_out}" ${_next} -1 _out)
    string(FIND "${_out}" "\n" _end)
    # Skip doctest's banner lines, the separators and blank lines.
    if(_case STREQUAL "" OR _case MATCHES "^\\[doctest\\]" OR _case MATCHES "^=+$")
      continue()
    endif()
    set(_name "${_stem}${SUFFIX}:${_case}")
    string(FIND "${_seen}" "\n${_name}\n" _dup)
    if(_dup GREATER_EQUAL 0)
      message(FATAL_ERROR "${EXE}: two cases named \"${_case}\" in ${_src}")
    endif()
    string(APPEND _seen "${_name}\n")
    # doctest splits filters at commas; a literal comma is written "\\,".
    string(REPLACE "," "\\," _filter "${_case}")
    string(APPEND _script
      "add_test([==[${_name}]==] [==[${EXE}]==] [==[--test-case=${_filter}]==] "
      "[==[${_file_filter}]==])\n"
      "set_tests_properties([==[${_name}]==] PROPERTIES SKIP_RETURN_CODE 77")
    if(LABEL)
      string(APPEND _script " LABELS [==[${LABEL}]==]")
    endif()
    string(APPEND _script ")\n")
    math(EXPR _count "${_count} + 1")
  endwhile()
  if(_count EQUAL 0)
    message(FATAL_ERROR "${EXE}: no test case comes from ${_src}")
  endif()
endforeach()
file(WRITE "${OUT}.tmp" "${_script}")
file(RENAME "${OUT}.tmp" "${OUT}")
