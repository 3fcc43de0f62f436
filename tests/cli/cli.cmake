# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# The `rlhf` command-line tool end to end (label cli): each case runs the built binary from
# tests/cli/run_case.cmake on JSONL data that script writes, and checks exit codes, files and
# output. The plot case needs matplotlib in the system Python; without it, it is reported as
# skipped (exit 77, docs/testing.md "Skipped tests").
if(NOT TARGET rlhf_cli)
  return()
endif()

set(_cli_cases sft_end_to_end dpo_end_to_end reward_end_to_end kto_end_to_end
               orpo_end_to_end cpo_end_to_end bco_end_to_end ppo_end_to_end grpo_end_to_end
               rloo_end_to_end
               wrong_format help_lists_options
               config_file resume generate eval_sft eval_dpo bad_flag missing_file
               malformed_line skip_bad_lines contradictory_config other_config_init_from
               other_config_resume sigint cai_resume cai_bad_constitution)
find_program(RLHF_CLI_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(RLHF_CLI_PYTHON)
  execute_process(COMMAND ${RLHF_CLI_PYTHON} -c "import matplotlib"
                  RESULT_VARIABLE _no_matplotlib OUTPUT_QUIET ERROR_QUIET)
  if(_no_matplotlib EQUAL 0)
    list(APPEND _cli_cases plot)
  endif()
endif()
if(NOT RLHF_CLI_PYTHON OR NOT _no_matplotlib EQUAL 0)
  add_test(NAME cli_plot
           COMMAND sh -c "echo 'SKIPPED: no /usr/bin/python3 with matplotlib'; exit 77")
  set_tests_properties(cli_plot PROPERTIES LABELS cli SKIP_RETURN_CODE 77)
endif()
if(RLHF_CLI_PYTHON)
  list(APPEND _cli_cases bon)  # its verifier is a Python script
  list(APPEND _cli_cases cai_revise cai_judge_rules cai_judge_model)  # rows checked in Python
endif()
find_program(RLHF_CLI_TIMEOUT NAMES timeout)
if(NOT RLHF_CLI_TIMEOUT)
  list(REMOVE_ITEM _cli_cases sigint)
endif()

foreach(_case IN LISTS _cli_cases)
  add_test(NAME cli_${_case}
           COMMAND ${CMAKE_COMMAND} -DRLHF=$<TARGET_FILE:rlhf_cli>
                   -DWORK=${CMAKE_CURRENT_BINARY_DIR}/cli/${_case} -DCASE=${_case}
                   -DPYTHON=${RLHF_CLI_PYTHON} -DTIMEOUT=${RLHF_CLI_TIMEOUT}
                   -P ${CMAKE_CURRENT_LIST_DIR}/run_case.cmake)
  set_tests_properties(cli_${_case} PROPERTIES LABELS cli TIMEOUT 120)
endforeach()

# Trainers on Hugging Face model folders (Llama and Qwen2 made by transformers in the test):
# needs the tools Python, whose transformers scripts/install-deps test installs; a Python
# without it fails the case rather than skipping it.
if(RLHF_TOOLS_PYTHON)
  add_test(NAME cli_hf_model
           COMMAND ${RLHF_TOOLS_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/hf_model_case.py
                   $<TARGET_FILE:rlhf_cli> ${PROJECT_SOURCE_DIR}/tests/fixtures
                   ${CMAKE_CURRENT_BINARY_DIR}/cli/hf_model)
  set_tests_properties(cli_hf_model PROPERTIES LABELS cli TIMEOUT 300)
endif()

# The demo pipeline, shortened (tools/demo/pipeline.py --quick), end to end (label demo).
if(RLHF_CLI_PYTHON)
  add_test(NAME demo_pipeline_quick
           COMMAND ${CMAKE_COMMAND} -DPYTHON=${RLHF_CLI_PYTHON}
                   -DDEMO=${PROJECT_SOURCE_DIR}/tools/demo/pipeline.py
                   -DRLHF=$<TARGET_FILE:rlhf_cli> -DWORK=${CMAKE_CURRENT_BINARY_DIR}/demo_quick
                   -DROWS=sft,bon,ppo,dpo,kto,grpo
                   -DPLOTS=plots/summary.png,sft/plots,ppo/plots,grpo/plots
                   -P ${CMAKE_CURRENT_LIST_DIR}/../demo/run_quick.cmake)
  set_tests_properties(demo_pipeline_quick PROPERTIES LABELS demo TIMEOUT 600)
  # The Constitutional AI demo, shortened (tools/demo/cai.py --quick).
  add_test(NAME demo_cai_quick
           COMMAND ${CMAKE_COMMAND} -DPYTHON=${RLHF_CLI_PYTHON}
                   -DDEMO=${PROJECT_SOURCE_DIR}/tools/demo/cai.py
                   -DRLHF=$<TARGET_FILE:rlhf_cli> -DWORK=${CMAKE_CURRENT_BINARY_DIR}/demo_cai_quick
                   -DFILES=rows.jsonl,revision_pairs.jsonl,judged_pairs.jsonl,dpo/model.safetensors,dpo_revise/model.safetensors
                   -DROWS=sft,dpo,dpo_revise -DPLOTS=plots/summary.png
                   -P ${CMAKE_CURRENT_LIST_DIR}/../demo/run_quick.cmake)
  set_tests_properties(demo_cai_quick PROPERTIES LABELS demo TIMEOUT 300)
endif()

