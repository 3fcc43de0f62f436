# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# Every page of docs/algorithms/ (but conventions.md) names at least one examples/*.cpp, and
# every file it names exists: the docs' examples are compiled files, run by example_* tests.
#   cmake -DDOCS=docs/algorithms -DROOT=<repo> -P docs_examples.cmake
file(GLOB _pages "${DOCS}/*.md")
set(_bad "")
foreach(_page IN LISTS _pages)
  get_filename_component(_name "${_page}" NAME)
  if(_name STREQUAL "conventions.md")
    continue()
  endif()
  file(READ "${_page}" _text)
  string(REGEX MATCHALL "examples/[A-Za-z0-9_]+\\.cpp" _examples "${_text}")
  if(NOT _examples)
    list(APPEND _bad "${_name}: names no examples/*.cpp")
  endif()
  foreach(_ex IN LISTS _examples)
    if(NOT EXISTS "${ROOT}/${_ex}")
      list(APPEND _bad "${_name}: ${_ex} does not exist")
    endif()
  endforeach()
endforeach()
if(_bad)
  string(REPLACE ";" "\n  " _msg "${_bad}")
  message(FATAL_ERROR "docs/algorithms examples:\n  ${_msg}")
endif()
list(LENGTH _pages _n)
message(STATUS "docs/algorithms: ${_n} pages, every named example exists")
