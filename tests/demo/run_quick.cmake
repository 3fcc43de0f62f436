# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# The demo pipeline shortened (tools/demo/pipeline.py --quick: tiny sizes, few steps) end to
# end: every stage must succeed, and the table, its JSON and (with matplotlib) the plots
# must be written.
#   cmake -DPYTHON=... -DPIPELINE=... -DRLHF=<rlhf binary> -DWORK=<folder> -P run_quick.cmake
file(REMOVE_RECURSE "${WORK}")
execute_process(COMMAND "${PYTHON}" "${PIPELINE}" --rlhf "${RLHF}" --out "${WORK}" --quick
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "demo --quick failed (${rc}):\n${err}\n${out}")
endif()
foreach(f summary.md summary.json)
  if(NOT EXISTS "${WORK}/${f}")
    message(FATAL_ERROR "demo --quick wrote no ${f}")
  endif()
endforeach()
file(READ "${WORK}/summary.md" table)
foreach(method sft bon ppo dpo kto grpo)
  if(NOT table MATCHES "\n\\| ${method} \\| [0-9.]+ \\|")
    message(FATAL_ERROR "the table has no row for ${method}:\n${table}")
  endif()
endforeach()
execute_process(COMMAND "${PYTHON}" -c "import matplotlib" RESULT_VARIABLE no_mpl
                OUTPUT_QUIET ERROR_QUIET)
if(no_mpl EQUAL 0)
  foreach(f plots/summary.png sft/plots ppo/plots grpo/plots)
    if(NOT EXISTS "${WORK}/${f}")
      message(FATAL_ERROR "demo --quick wrote no ${f}")
    endif()
  endforeach()
endif()
string(REGEX MATCH "[^\n]+\n$" last "${out}")
if(NOT last STREQUAL "${WORK}\n")
  message(FATAL_ERROR "the last line printed is not the output folder: ${last}")
endif()
