# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# The Constitutional AI demo shortened (tools/demo/cai.py --quick: tiny sizes, few steps) end
# to end: every stage must succeed, and the table, its JSON and (with matplotlib) the plot
# must be written.
#   cmake -DPYTHON=... -DDEMO=<cai.py> -DRLHF=<rlhf binary> -DWORK=<folder> -P run_cai_quick.cmake
file(REMOVE_RECURSE "${WORK}")
execute_process(COMMAND "${PYTHON}" "${DEMO}" --rlhf "${RLHF}" --out "${WORK}" --quick
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cai demo --quick failed (${rc}):\n${err}\n${out}")
endif()
foreach(f summary.md summary.json rows.jsonl revision_pairs.jsonl judged_pairs.jsonl
          dpo/model.safetensors dpo_revise/model.safetensors)
  if(NOT EXISTS "${WORK}/${f}")
    message(FATAL_ERROR "cai demo --quick wrote no ${f}")
  endif()
endforeach()
file(READ "${WORK}/summary.md" table)
foreach(model sft dpo dpo_revise)
  if(NOT table MATCHES "\n\\| ${model}( \\| [0-9]\\.[0-9][0-9][0-9])+ \\|\n")
    message(FATAL_ERROR "the table has no row for ${model}:\n${table}")
  endif()
endforeach()
execute_process(COMMAND "${PYTHON}" -c "import matplotlib" RESULT_VARIABLE no_mpl
                OUTPUT_QUIET ERROR_QUIET)
if(no_mpl EQUAL 0 AND NOT EXISTS "${WORK}/plots/summary.png")
  message(FATAL_ERROR "cai demo --quick wrote no plots/summary.png")
endif()
string(REGEX MATCH "[^\n]+\n$" last "${out}")
if(NOT last STREQUAL "${WORK}\n")
  message(FATAL_ERROR "the last line printed is not the output folder: ${last}")
endif()
