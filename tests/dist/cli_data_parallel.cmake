# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# `mpirun -np 2 rlhf ...` end to end (ctest dist_cli): for SFT, DPO and GRPO, 2 processes ×
# b examples per micro-batch end with the parameters of 1 process × 2b (to 1e-5: float32
# round-off of another summation order through 6 AdamW steps); a 2-process run resumed from
# its step-3 checkpoint ends bit for bit as the uninterrupted one; the header names the world
# size; an error on the ranks ends the job with the message instead of a hang.
# AdamW's epsilon is 1e-6 here, not 1e-8: the keys' bias has a gradient of exactly 0 in
# exact arithmetic (softmax ignores a shift of every score), so in float32 it is round-off
# of about 1e-9, which an epsilon of 1e-8 would turn into steps of a sizeable share of the
# learning rate in a direction the summation order decides.
#   cmake -DRLHF=... -DLAUNCH=mpiexec|-n|2|... -DPYTHON=... -DWORK=... -P cli_data_parallel.cmake
string(REPLACE "|" ";" launch "${LAUNCH}")
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(compare "${CMAKE_CURRENT_LIST_DIR}/compare_safetensors.py")

set(pref "")
set(sft "")
foreach(i RANGE 47)
  math(EXPR k "${i} % 6")
  string(SUBSTRING "abcdef" ${k} 1 c)
  string(APPEND pref "{\"prompt\": \"say ${c}\", \"chosen\": \"${c}${c}${c}\", \"rejected\": \"zq\"}\n")
  string(APPEND sft "{\"prompt\": \"say ${c}\", \"completion\": \"${c}${c}${c}\"}\n")
endforeach()
file(WRITE "${WORK}/dpo.jsonl" "${pref}")
file(WRITE "${WORK}/sft.jsonl" "${sft}")
# GRPO: 16 prompts; the reward is the share of a completion's characters with an even code
# point (one score line per JSON line read), which varies within every group.
set(prompts "")
foreach(i RANGE 15)
  math(EXPR k "${i} % 6")
  string(SUBSTRING "abcdef" ${k} 1 c)
  string(APPEND prompts "{\"prompt\": \"say ${c}\"}\n")
endforeach()
file(WRITE "${WORK}/grpo.jsonl" "${prompts}")
file(WRITE "${WORK}/verifier.py"
     "import json, sys\nfor line in sys.stdin:\n    c = json.loads(line)['completion']\n"
     "    print(sum(ord(ch) % 2 == 0 for ch in c) / max(1, len(c)), flush=True)\n")

function(fail what)
  message(FATAL_ERROR "dist_cli: ${what}\n--- stdout:\n${out}\n--- stderr:\n${err}")
endfunction()

# run(<ranks> <method> <output dir> <examples per micro-batch> args...)
function(run ranks method dir batch)
  set(cmd "${RLHF}")
  if(ranks GREATER 1)
    set(cmd ${launch} "${RLHF}")
  endif()
  execute_process(
    COMMAND ${cmd} ${method} --train-file ${method}.jsonl --output-dir ${dir} --model tiny
            --per-device-train-batch-size ${batch} --eval-fraction 0 --learning-rate 5e-3
            --lr-scheduler-type constant --save-steps 3 --logging-steps 1 --adam-epsilon 1e-6 --no-plot ${ARGN}
    WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
    TIMEOUT 300)
  set(out "${out}" PARENT_SCOPE)
  set(err "${err}" PARENT_SCOPE)
  if(NOT rc EQUAL 0)
    fail("${ranks} x ${method} in ${dir} exited with ${rc}")
  endif()
endfunction()

function(same a b tol)
  execute_process(COMMAND "${PYTHON}" "${compare}" "${WORK}/${a}" "${WORK}/${b}" ${tol}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "dist_cli: ${a} vs ${b}: ${out}")
  if(NOT rc EQUAL 0)
    fail("${a} and ${b} differ by more than ${tol}")
  endif()
endfunction()

foreach(method sft dpo)
  run(1 ${method} ${method}_one 4 --max-steps 6)
  run(2 ${method} ${method}_two 2 --max-steps 6)
  if(NOT err MATCHES "rlhf ${method}: data parallel over 2 processes")
    fail("no world size in the header")
  endif()
  same(${method}_one/model.safetensors ${method}_two/model.safetensors 1e-5)
endforeach()
# GRPO: 8 completions (2 prompts × 4) per micro-batch against 2 × 4 (1 prompt each).
set(grpo_args --max-steps 6 --num-generations 4 --max-completion-length 8
    --reward-command "${PYTHON} verifier.py")
run(1 grpo grpo_one 8 ${grpo_args})
run(2 grpo grpo_two 4 ${grpo_args})
file(STRINGS "${WORK}/grpo_one/metrics.jsonl" flat REGEX "\"reward_std\":0\\.0[,}]")
list(LENGTH flat flat_steps)
if(flat_steps GREATER 1)
  fail("GRPO saw no reward variance in ${flat_steps} of 6 steps (too little to compare)")
endif()
same(grpo_one/model.safetensors grpo_two/model.safetensors 1e-5)

# Resume: 3 steps, then on to 6 from checkpoint-3 (a constant learning rate: the same
# schedule either way), against the uninterrupted 6-step run.
run(2 dpo dpo_parts 2 --max-steps 3)
run(2 dpo dpo_parts 2 --max-steps 6 --resume dpo_parts/checkpoint-3)
same(dpo_parts/model.safetensors dpo_two/model.safetensors 0)
file(STRINGS "${WORK}/dpo_parts/metrics.jsonl" resumed)
file(STRINGS "${WORK}/dpo_two/metrics.jsonl" whole)
if(NOT resumed STREQUAL whole)
  fail("the resumed run's metrics.jsonl differs from the uninterrupted run's")
endif()

# An error on the ranks (a missing file) ends the job with the message, not a hang.
execute_process(COMMAND ${launch} "${RLHF}" dpo --train-file missing.jsonl --output-dir bad
                WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_VARIABLE out
                ERROR_VARIABLE err TIMEOUT 120)
if(rc EQUAL 0 OR NOT err MATCHES "missing.jsonl" OR NOT err MATCHES "aborting every rank")
  fail("a failing run ended with '${rc}' and without the message")
endif()
