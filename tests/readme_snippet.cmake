# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# Fails when a code line of README's C++ example is not in examples/quickstart.cpp,
# so the README cannot drift from the compiled example.
file(READ "${README}" readme)
file(READ "${EXAMPLE}" example)
string(REGEX MATCH "```cpp\n(.*)\n```\n\nEvery op" block "${readme}")
if(NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "README has no ```cpp example block")
endif()
string(REPLACE "\n" ";" lines "${CMAKE_MATCH_1}")
set(count 0)
foreach(line IN LISTS lines)
  string(STRIP "${line}" line)
  if(line STREQUAL "")
    continue()
  endif()
  string(FIND "${example}" "${line}" pos)
  if(pos EQUAL -1)
    message(FATAL_ERROR "README line not in ${EXAMPLE}: ${line}")
  endif()
  math(EXPR count "${count} + 1")
endforeach()
message(STATUS "README example: ${count} lines found in the compiled example")
