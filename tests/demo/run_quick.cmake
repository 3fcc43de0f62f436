# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# A demo shortened (its --quick: tiny sizes, few steps) end to end: every stage must succeed,
# the files and the table's rows must be written, with matplotlib the plots too, and the last
# line printed must be the output folder.
#   cmake -DPYTHON=... -DDEMO=<pipeline.py|cai.py> -DRLHF=<rlhf binary> -DWORK=<folder>
#         -DFILES=a,b -DROWS=sft,dpo -DPLOTS=plots/summary.png,sft/plots -P run_quick.cmake
foreach(_list FILES ROWS PLOTS)
  string(REPLACE "," ";" ${_list} "${${_list}}")
endforeach()
get_filename_component(name "${DEMO}" NAME)
file(REMOVE_RECURSE "${WORK}")
execute_process(COMMAND "${PYTHON}" "${DEMO}" --rlhf "${RLHF}" --out "${WORK}" --quick
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${name} --quick failed (${rc}):\n${err}\n${out}")
endif()
foreach(f summary.md summary.json ${FILES})
  if(NOT EXISTS "${WORK}/${f}")
    message(FATAL_ERROR "${name} --quick wrote no ${f}")
  endif()
endforeach()
file(READ "${WORK}/summary.md" table)
foreach(row IN LISTS ROWS)
  if(NOT table MATCHES "\n\\| ${row}( \\| [0-9]\\.[0-9][0-9][0-9])+ \\|")
    message(FATAL_ERROR "the table has no row for ${row}:\n${table}")
  endif()
endforeach()
execute_process(COMMAND "${PYTHON}" -c "import matplotlib" RESULT_VARIABLE no_mpl
                OUTPUT_QUIET ERROR_QUIET)
if(no_mpl EQUAL 0)
  foreach(f IN LISTS PLOTS)
    if(NOT EXISTS "${WORK}/${f}")
      message(FATAL_ERROR "${name} --quick wrote no ${f}")
    endif()
  endforeach()
endif()
string(REGEX MATCH "[^\n]+\n$" last "${out}")
if(NOT last STREQUAL "${WORK}\n")
  message(FATAL_ERROR "the last line printed is not the output folder: ${last}")
endif()
