# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# cmake -P script: `conan create` of the repository in a private, fresh, offline Conan home,
# with the profile `conan profile detect` makes (as README's `conan create .`), then checks:
#   - a profile below C++20 (a detected one says gnu17 with g++ 12) gets the recipe's warning,
#     and test_package is still compiled as C++20 (compile_commands.json);
#   - the package holds LICENSE and the CMake definition of every component;
#   - the package id is honest: no option but deps_from (which changes only the requires,
#     see conanfile.py) and exactly one package id in the cache.
#   -DCONAN=... -DCONAN_HOME=... (also set as the CONAN_HOME environment variable by ctest)
#   -DSOURCE_DIR=... -DTEST_BUILD_DIR=... -DGENERATOR=... -DCXX_COMPILER=...
cmake_minimum_required(VERSION 3.21)

if(NOT "$ENV{CONAN_HOME}" STREQUAL "${CONAN_HOME}")
  message(FATAL_ERROR "CONAN_HOME must be set to ${CONAN_HOME} (got '$ENV{CONAN_HOME}')")
endif()
# The package build and test_package are plain builds: no ccache, no flags from outside.
unset(ENV{CMAKE_CXX_COMPILER_LAUNCHER})
unset(ENV{CXXFLAGS})
set(ENV{CXX} "${CXX_COMPILER}")  # the compiler `profile detect` and CMake use

# conan(<what> <out-var> args...): run it, fail on error; stdout in <out-var>, stderr shown
# (and appended to <out-var>_LOG, where the warnings are).
function(conan what out)
  execute_process(COMMAND "${CONAN}" ${ARGN} RESULT_VARIABLE rc
                  OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr)
  message("${stderr}")
  if(NOT rc EQUAL 0)
    message("${stdout}")
    message(FATAL_ERROR "conan ${what} failed (${rc})")
  endif()
  set(${out} "${stdout}" PARENT_SCOPE)
  set(${out}_LOG "${stderr}" PARENT_SCOPE)
endfunction()

# A fresh home each run: repeatable, and proves nothing is needed from a remote.
file(REMOVE_RECURSE "${CONAN_HOME}" "${TEST_BUILD_DIR}")
conan("profile detect" _ profile detect --force)
conan("remote disable" _ remote disable conancenter)
file(READ "${CONAN_HOME}/profiles/default" _profile)
string(REGEX MATCH "compiler.cppstd=(gnu)?([0-9]+)" _ "${_profile}")
set(_cppstd "${CMAKE_MATCH_2}")
message(STATUS "detected profile: compiler.cppstd=${CMAKE_MATCH_1}${_cppstd}")

# As README says, with the detected profile; the test folder keeps the source tree clean.
conan("create" _create create "${SOURCE_DIR}" --no-remote
      -c tools.cmake.cmaketoolchain:generator=${GENERATOR}
      -c tools.cmake.cmake_layout:test_folder=${TEST_BUILD_DIR})

# C++ standards below 20 (98, 11, 14, 17; "98" sorts high, so list them).
if(_cppstd MATCHES "^(98|03|11|14|17)$")
  if(NOT _create_LOG MATCHES "rlhf\\+\\+ needs C\\+\\+20")
    message(FATAL_ERROR "compiler.cppstd=${_cppstd} but the recipe did not warn about C++20")
  endif()
endif()
# test_package's compile line: C++20 from cxx_std_20, whatever the profile said.
file(GLOB_RECURSE _ccdbs "${TEST_BUILD_DIR}/*/compile_commands.json")
if(NOT _ccdbs)
  message(FATAL_ERROR "no compile_commands.json of test_package under ${TEST_BUILD_DIR}")
endif()
foreach(_db IN LISTS _ccdbs)
  file(READ "${_db}" _cc)
  if(NOT _cc MATCHES "main\\.cpp")
    message(FATAL_ERROR "${_db} has no main.cpp")
  endif()
  if(NOT _cc MATCHES "-std=(c|gnu)\\+\\+(20|2a)[^0-9]")
    message(FATAL_ERROR "test_package was not compiled as C++20 (${_db}):\n${_cc}")
  endif()
  string(REGEX MATCH "-std=[a-z+0-9]+" _std "${_cc}")
  message(STATUS "test_package compiled with ${_std} (${_db})")
endforeach()

# The recipe's options: deps_from only (it changes the requires, never the package).
conan("inspect" _inspect inspect "${SOURCE_DIR}" --format=json)
string(JSON _opts ERROR_VARIABLE _err GET "${_inspect}" options)
if(_err)
  message(FATAL_ERROR "conan inspect: no options in\n${_inspect}")
endif()
string(JSON _n LENGTH "${_opts}")
math(EXPR _last "${_n} - 1")
foreach(_i RANGE ${_last})
  string(JSON _opt MEMBER "${_opts}" ${_i})
  if(NOT _opt STREQUAL "deps_from")
    message(FATAL_ERROR "the recipe has option '${_opt}': options that change what is "
            "packaged must give their own package ids (package_id() clears everything, so "
            "one binary would silently replace another); see conanfile.py")
  endif()
endforeach()

# Exactly one package id, and what it holds.
conan("list" _list list "rlhfpp/*:*" --format=json)
string(JSON _revs GET "${_list}" "Local Cache")
string(JSON _ref MEMBER "${_revs}" 0)
string(JSON _nrefs LENGTH "${_revs}")
string(JSON _rrevs GET "${_revs}" "${_ref}" revisions)
string(JSON _nrrevs LENGTH "${_rrevs}")
string(JSON _rrev MEMBER "${_rrevs}" 0)
string(JSON _pkgs GET "${_rrevs}" "${_rrev}" packages)
string(JSON _npkgs LENGTH "${_pkgs}")
if(NOT _nrefs EQUAL 1 OR NOT _nrrevs EQUAL 1 OR NOT _npkgs EQUAL 1)
  message(FATAL_ERROR "expected one rlhfpp reference, revision and package id, got "
          "${_nrefs}, ${_nrrevs}, ${_npkgs}:\n${_list}")
endif()
string(JSON _pkgid MEMBER "${_pkgs}" 0)
message(STATUS "one package: ${_ref}#${_rrev}:${_pkgid}")
conan("cache path" _pkgdir cache path "${_ref}:${_pkgid}")
string(STRIP "${_pkgdir}" _pkgdir)
foreach(_f licenses/LICENSE include/rlhf/rlhf.hpp share/cmake/rlhfpp/rlhfppConfig.cmake
           share/cmake/rlhfpp/rlhfpp-core-targets.cmake
           share/cmake/rlhfpp/rlhfppComponents.cmake)
  if(NOT EXISTS "${_pkgdir}/${_f}")
    message(FATAL_ERROR "the package has no ${_f} (${_pkgdir})")
  endif()
endforeach()
# Every component is defined in the package, whatever the machine that made it had.
file(STRINGS "${_pkgdir}/share/cmake/rlhfpp/rlhfppComponents.cmake" _all
     REGEX "^set\\(RLHFPP_ALL_COMPONENTS ")
foreach(_comp eigen xtensor thrust cuda model http mpi nccl)
  if(NOT _all MATCHES "[ (]${_comp}[ )]")
    message(FATAL_ERROR "the package does not define component ${_comp}: '${_all}'")
  endif()
endforeach()
