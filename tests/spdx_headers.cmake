# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# cmake -P script: every source, build and script file of the repository carries the SPDX
# licence identifier (Apache-2.0) in its first lines.   -DROOT=<source tree>
cmake_minimum_required(VERSION 3.21)

set(_globs "")
foreach(_dir IN ITEMS include tests examples bench tools cmake scripts test_package apps)
  foreach(_ext IN ITEMS hpp cpp cu h py cmake in txt sh)
    list(APPEND _globs "${ROOT}/${_dir}/*.${_ext}")
  endforeach()
endforeach()
file(GLOB_RECURSE _files ${_globs})
list(APPEND _files "${ROOT}/CMakeLists.txt" "${ROOT}/conanfile.py" "${ROOT}/.ci/run")
file(GLOB _scripts "${ROOT}/scripts/*")
list(APPEND _files ${_scripts})
list(FILTER _files EXCLUDE REGEX "/(fixtures|corpus|regressions|build)/")
list(REMOVE_DUPLICATES _files)

set(_missing "")
foreach(_f IN LISTS _files)
  file(STRINGS "${_f}" _head LIMIT_COUNT 6)
  if(NOT _head MATCHES "SPDX-License-Identifier: Apache-2\\.0")
    file(RELATIVE_PATH _rel "${ROOT}" "${_f}")
    list(APPEND _missing "${_rel}")
  endif()
endforeach()
list(LENGTH _files _n)
if(_missing)
  string(REPLACE ";" "\n  " _missing "${_missing}")
  message(FATAL_ERROR "no 'SPDX-License-Identifier: Apache-2.0' in the first lines of:\n  ${_missing}")
endif()
message(STATUS "spdx_headers: ${_n} files carry the licence identifier")
