# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# cmake -P script: offline check that the recipe's deps_from="conan" requires resolve against
# recipes named, versioned and requiring exactly as ConanCenter's (stand-ins: standin.py).
#   -DCONAN=... -DCONAN_HOME=... (also set as the CONAN_HOME environment variable by ctest)
#   -DSOURCE_DIR=...
# It proves that the names and version ranges resolve, to the expected versions, together
# with xtensor's own pinned requires (nlohmann_json/3.12.0 is exported too: our range must
# still settle on the 3.11.3 that xtensor pins, not conflict with it), and that both
# deps_from values give one and the same package id. It does not test the real ConanCenter
# recipes' contents (headers, CMake file and target names): that needs the network.
cmake_minimum_required(VERSION 3.21)

if(NOT "$ENV{CONAN_HOME}" STREQUAL "${CONAN_HOME}")
  message(FATAL_ERROR "CONAN_HOME must be set to ${CONAN_HOME} (got '$ENV{CONAN_HOME}')")
endif()

function(conan what out)
  execute_process(COMMAND "${CONAN}" ${ARGN} RESULT_VARIABLE rc
                  OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr)
  if(NOT rc EQUAL 0)
    message("${stdout}\n${stderr}")
    message(FATAL_ERROR "conan ${what} failed (${rc})")
  endif()
  set(${out} "${stdout}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${CONAN_HOME}")
conan("profile detect" _ profile detect --force)
conan("remote disable" _ remote disable conancenter)

# What ConanCenter has (a subset, newest versions included) and what must be chosen.
set(_standins eigen/3.4.0 nlohmann_json/3.11.3 nlohmann_json/3.12.0 xsimd/13.0.0 xsimd/13.2.0
              xtl/0.7.5 xtl/0.8.0 xtensor/0.24.7 xtensor/0.25.0 xtensor/0.26.0)
set(_expect eigen/3.4.0 nlohmann_json/3.11.3 xsimd/13.0.0 xtensor/0.25.0 xtl/0.7.5)
foreach(_ref IN LISTS _standins)
  string(REPLACE "/" ";" _nv "${_ref}")
  list(GET _nv 0 _name)
  list(GET _nv 1 _version)
  conan("export ${_ref}" _ export "${CMAKE_CURRENT_LIST_DIR}/standin.py"
        --name ${_name} --version ${_version})
endforeach()

# graph_refs(<out-refs> <out-package-id> options...): the references (no revisions) of the
# dependency graph, sorted, and the package id of rlhfpp itself.
function(graph_refs out_refs out_id)
  conan("graph info" _json graph info "${SOURCE_DIR}" --no-remote --format=json ${ARGN})
  string(JSON _nodes GET "${_json}" graph nodes)
  string(JSON _n LENGTH "${_nodes}")
  math(EXPR _last "${_n} - 1")
  set(_refs "")
  foreach(_i RANGE ${_last})
    string(JSON _key MEMBER "${_nodes}" ${_i})
    string(JSON _ref GET "${_nodes}" ${_key} ref)
    string(REGEX REPLACE "#.*" "" _ref "${_ref}")
    if(_ref MATCHES "^rlhfpp/")
      string(JSON _id GET "${_nodes}" ${_key} package_id)
    else()
      list(APPEND _refs "${_ref}")
    endif()
  endforeach()
  list(SORT _refs)
  set(${out_refs} "${_refs}" PARENT_SCOPE)
  set(${out_id} "${_id}" PARENT_SCOPE)
endfunction()

graph_refs(_conan_refs _conan_id -o "rlhfpp/*:deps_from=conan")
message(STATUS "deps_from=conan resolves to: ${_conan_refs} (rlhfpp package id ${_conan_id})")
if(NOT _conan_refs STREQUAL _expect)
  message(FATAL_ERROR "deps_from=conan: expected ${_expect}, got ${_conan_refs}")
endif()

graph_refs(_system_refs _system_id)
message(STATUS "deps_from=system resolves to: '${_system_refs}' (package id ${_system_id})")
if(_system_refs)
  message(FATAL_ERROR "deps_from=system must have no requires, got ${_system_refs}")
endif()
if(NOT _conan_id STREQUAL _system_id)
  message(FATAL_ERROR "deps_from=conan and =system give different package ids "
          "(${_conan_id}, ${_system_id}) for the same package contents")
endif()
