# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
# One case of the `rlhf` command-line tests (tests/cli/cli.cmake):
#   cmake -DRLHF=<binary> -DWORK=<scratch folder> -DCASE=<name> [-DPYTHON=...] [-DTIMEOUT=...]
#         -P run_case.cmake
cmake_minimum_required(VERSION 3.21)
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")

# The shipped constitution of checkable principles (share/rlhf/constitutions).
get_filename_component(CHECKABLE
  "${CMAKE_CURRENT_LIST_DIR}/../../share/rlhf/constitutions/checkable.json" ABSOLUTE)

# A small model and a short run: a few seconds per case.
set(SMALL --n-layer 1 --n-head 2 --n-embd 32 --max-seq-len 64 --learning-rate 0.01
          --per-device-train-batch-size 4 --logging-steps 1 --no-plot)

# Prompt-completion and preference data a tiny model can learn.
set(_sft "")
set(_pref "")
set(_prompts "")
set(_unpaired "")
foreach(i RANGE 23)
  math(EXPR _k "${i} % 6")
  string(SUBSTRING "abcdef" ${_k} 1 c)
  string(APPEND _sft "{\"prompt\": \"say ${c}\", \"completion\": \"${c}${c}${c}\"}\n")
  string(APPEND _pref "{\"prompt\": \"say ${c}\", \"chosen\": \"${c}${c}${c}\", \"rejected\": \"zq\"}\n")
  string(APPEND _unpaired "{\"prompt\": \"say ${c}\", \"completion\": \"${c}${c}${c}\", \"label\": true}\n")
  string(APPEND _unpaired "{\"prompt\": \"say ${c}\", \"completion\": \"zq\", \"label\": false}\n")
endforeach()
file(WRITE "${WORK}/unpaired.jsonl" "${_unpaired}")
file(WRITE "${WORK}/sft.jsonl" "${_sft}")
file(WRITE "${WORK}/pref.jsonl" "${_pref}")
file(WRITE "${WORK}/prompts.jsonl" "{\"prompt\": \"say a\"}\n{\"prompt\": \"say b\"}\n")

# run(<out prefix> args...): runs the tool; <prefix>_rc, <prefix>_out, <prefix>_err.
function(run prefix)
  execute_process(COMMAND "${RLHF}" ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err WORKING_DIRECTORY "${WORK}")
  set(${prefix}_rc "${rc}" PARENT_SCOPE)
  set(${prefix}_out "${out}" PARENT_SCOPE)
  set(${prefix}_err "${err}" PARENT_SCOPE)
endfunction()

function(fail what)
  message(FATAL_ERROR "cli ${CASE}: ${what}\n--- stdout:\n${r_out}\n--- stderr:\n${r_err}")
endfunction()

function(expect_rc want)
  if(NOT r_rc STREQUAL "${want}")
    fail("exit status ${r_rc}, expected ${want}")
  endif()
endfunction()

function(expect_match var regex)
  if(NOT "${${var}}" MATCHES "${regex}")
    fail("${var} does not match '${regex}'")
  endif()
endfunction()

function(expect_exists path)
  if(NOT EXISTS "${WORK}/${path}")
    fail("${path} was not written")
  endif()
endfunction()

# No carriage return and no escape character (the output is not a terminal here).
function(expect_plain)
  string(ASCII 27 esc)
  foreach(v r_out r_err)
    string(FIND "${${v}}" "\r" a)
    string(FIND "${${v}}" "${esc}" b)
    if(NOT a EQUAL -1 OR NOT b EQUAL -1)
      fail("${v} holds a control character")
    endif()
  endforeach()
endfunction()

# A usage or data error: exactly one line on stderr, "rlhf: error: ...", matching `regex`.
function(expect_one_error want_rc regex)
  expect_rc(${want_rc})
  if(NOT r_err MATCHES "^rlhf: error: [^\n]*\n$")
    fail("stderr is not one 'rlhf: error:' line")
  endif()
  expect_match(r_err "${regex}")
endfunction()

function(train_sft dir)
  run(r sft --train-file sft.jsonl --output-dir ${dir} ${SMALL} --max-steps 6 ${ARGN})
  set(r_rc "${r_rc}" PARENT_SCOPE)
  set(r_out "${r_out}" PARENT_SCOPE)
  set(r_err "${r_err}" PARENT_SCOPE)
  expect_rc(0)
endfunction()

# The metrics.jsonl line of training step `step` in `dir`.
function(metrics_line out dir step)
  file(STRINGS "${WORK}/${dir}/metrics.jsonl" lines REGEX "^\\{\"step\":${step},\"epoch\"")
  set(${out} "${lines}" PARENT_SCOPE)
endfunction()

if(CASE STREQUAL "sft_end_to_end")
  train_sft(run --eval-fraction 0.2 --save-steps 3)
  expect_plain()
  expect_match(r_err "step 6/6 \\| [0-9.]+ steps/s \\| ETA [0-9hms]+ \\| loss [0-9.]+")
  expect_match(r_out "rlhf sft: done: 6 steps")
  foreach(f config.json metrics.jsonl checkpoint-3/model.safetensors checkpoint-6/model.safetensors
            model.safetensors)
    expect_exists(run/${f})
  endforeach()
  file(READ "${WORK}/run/config.json" cfg)
  string(JSON lr GET "${cfg}" learning_rate)
  string(JSON ml GET "${cfg}" max_length)
  string(JSON method GET "${cfg}" method)
  if(NOT lr EQUAL 0.01 OR NOT ml EQUAL 64 OR NOT method STREQUAL "sft")
    fail("config.json: learning_rate ${lr}, max_length ${ml}, method ${method}")
  endif()
  file(READ "${WORK}/run/metrics.jsonl" m)
  expect_match(m "\"eval_loss\"")
elseif(CASE STREQUAL "dpo_end_to_end")
  run(r dpo --train-file pref.jsonl --output-dir run ${SMALL} --max-steps 6 --beta 0.2
      --loss-type sigmoid,ipo --loss-weights 1,0.5)
  expect_rc(0)
  expect_plain()
  expect_match(r_out "rlhf dpo: done: 6 steps")
  expect_exists(run/model.safetensors)
  expect_exists(run/checkpoint-6/model.safetensors)
  file(READ "${WORK}/run/metrics.jsonl" m)
  expect_match(m "\"rewards/margins\"")
  file(READ "${WORK}/run/config.json" cfg)
  string(JSON lt GET "${cfg}" loss_type 1)
  if(NOT lt STREQUAL "ipo")
    fail("config.json loss_type[1] is '${lt}'")
  endif()
  # Soft labels: rows without one are refused by name; rows with one train.
  run(r dpo --train-file pref.jsonl --output-dir soft_none ${SMALL} --max-steps 2
      --use-soft-labels)
  expect_one_error(1 "dpo: soft labels were asked for, but example [0-9]+ has no \"soft_label\"")
  string(REPLACE "\"rejected\": \"zq\"}" "\"rejected\": \"zq\", \"soft_label\": 0.8}" soft "${_pref}")
  file(WRITE "${WORK}/soft.jsonl" "${soft}")
  run(r dpo --train-file soft.jsonl --output-dir soft_run ${SMALL} --max-steps 2
      --use-soft-labels)
  expect_rc(0)
  expect_match(r_out "rlhf dpo: done: 2 steps")
elseif(CASE STREQUAL "reward_end_to_end")
  run(r reward --train-file pref.jsonl --output-dir run ${SMALL} --max-steps 6
      --eval-fraction 0.25)
  expect_rc(0)
  expect_plain()
  expect_match(r_out "rlhf reward: done: 6 steps")
  expect_exists(run/model.safetensors)
  expect_exists(run/checkpoint-6/heads_optimizer.safetensors)
  run(r eval --model run/model.safetensors --file pref.jsonl --method reward)
  expect_rc(0)
  expect_match(r_out "^\\{.*\"eval_accuracy\":")
elseif(CASE MATCHES "^(kto|orpo|cpo|bco)_end_to_end$")
  # Each method trains, writes its outputs and logs its own metrics; eval reads the result.
  string(REGEX REPLACE "_end_to_end$" "" method "${CASE}")
  set(data pref.jsonl)
  set(extra "")
  set(want "\"log_odds_ratio\"")
  if(method STREQUAL "kto" OR method STREQUAL "bco")
    set(data unpaired.jsonl)
    set(want "\"rewards/margins\"")
  endif()
  if(method STREQUAL "kto")
    set(extra --desirable-weight 1.0)
  elseif(method STREQUAL "cpo")
    set(extra --loss-type simpo --cpo-alpha 0 --beta 2)  # SimPO
    set(want "\"rewards/accuracies\"")
  elseif(method STREQUAL "bco")
    set(want "\"delta\"")
  endif()
  run(r ${method} --train-file ${data} --output-dir run ${SMALL} --max-steps 6
      --eval-fraction 0.25 --save-steps 3 ${extra})
  expect_rc(0)
  expect_plain()
  expect_match(r_out "rlhf ${method}: done: 6 steps")
  foreach(f config.json metrics.jsonl checkpoint-3/model.safetensors model.safetensors)
    expect_exists(run/${f})
  endforeach()
  file(READ "${WORK}/run/metrics.jsonl" m)
  expect_match(m "${want}")
  expect_match(m "\"eval_loss\"")
  file(READ "${WORK}/run/config.json" cfg)
  string(JSON got GET "${cfg}" method)
  if(NOT got STREQUAL method)
    fail("config.json: method ${got}")
  endif()
  run(r eval --model run/model.safetensors --file ${data} --method ${method})
  expect_rc(0)
  expect_match(r_out "^\\{.*\"eval_loss\":")
elseif(CASE STREQUAL "grpo_end_to_end")
  # A shell verifier as the reward (one score line per JSON line read), then a resume.
  # (Scripts in files: a semicolon in a CMake string would split it into a list.)
  file(WRITE "${WORK}/verifier.sh"
       "while IFS= read -r l\ndo case \"$l\" in *'\"completion\":\"'*a*) echo 1 ;; *) echo 0 ;; esac\ndone\n")
  file(WRITE "${WORK}/broken.sh" "cat >/dev/null\necho no such file >&2\nexit 3\n")
  set(verifier "sh verifier.sh")
  run(r grpo --train-file prompts.jsonl --output-dir run ${SMALL} --per-device-train-batch-size 8
      --num-generations 4 --max-completion-length 8 --max-steps 4 --save-steps 2
      --reward-command "${verifier}")
  expect_rc(0)
  expect_plain()
  expect_match(r_out "rlhf grpo: done: 4 steps")
  foreach(f config.json metrics.jsonl checkpoint-2/model.safetensors model.safetensors)
    expect_exists(run/${f})
  endforeach()
  file(READ "${WORK}/run/metrics.jsonl" m)
  foreach(name reward reward_std frac_reward_zero_std completions/mean_length entropy
               rewards/command/mean clip_ratio/region_mean)
    expect_match(m "\"${name}\":")
  endforeach()
  metrics_line(whole run 4)
  run(r grpo --train-file prompts.jsonl --output-dir run ${SMALL} --per-device-train-batch-size 8
      --num-generations 4 --max-completion-length 8 --max-steps 4 --save-steps 2
      --reward-command "${verifier}" --resume run/checkpoint-2)
  expect_rc(0)
  metrics_line(resumed run 4)
  if(NOT whole STREQUAL resumed)
    fail("step 4 after a resume differs:\n${whole}\n${resumed}")
  endif()
  # A verifier that fails: one error line naming the command and its status.
  run(r grpo --train-file prompts.jsonl --output-dir bad ${SMALL} --per-device-train-batch-size 8
      --num-generations 4 --max-completion-length 8 --max-steps 1
      --reward-command "sh broken.sh")
  expect_one_error(1 "reward command '/bin/sh -c sh broken.sh': exited with status 3, its stderr ends: no such file")
  run(r grpo --train-file prompts.jsonl --output-dir bad ${SMALL} --max-steps 1)
  expect_one_error(2 "give a reward")
elseif(CASE STREQUAL "rloo_end_to_end")
  # A reward model trained by `rlhf reward` scores RLOO's completions.
  run(r reward --train-file pref.jsonl --output-dir rm ${SMALL} --max-steps 2)
  expect_rc(0)
  run(r rloo --train-file prompts.jsonl --output-dir run ${SMALL} --num-generations 2
      --max-completion-length 8 --max-steps 3 --reward-model rm/model.safetensors)
  expect_rc(0)
  expect_plain()
  expect_match(r_out "rlhf rloo: done: 3 steps")
  file(READ "${WORK}/run/metrics.jsonl" m)
  foreach(name reward kl entropy rewards/reward_model/mean clip_ratio/low_min)
    expect_match(m "\"${name}\":")
  endforeach()
elseif(CASE STREQUAL "bon")
  # Best-of-4 of each prompt under a verifier that scores a completion's count of "a".
  file(WRITE "${WORK}/count_a.py"
       "import json, sys\nfor l in sys.stdin:\n    print(json.loads(l)['completion'].count('a'))\n")
  train_sft(sft)
  run(r bon --model sft/model.safetensors --prompts-file prompts.jsonl --n 4 --max-new-tokens 8
      --reward-command "${PYTHON} count_a.py" --output best.jsonl)
  expect_rc(0)
  expect_match(r_out "rlhf bon: 2 prompts, best of 4")
  # (Checked in Python: the sampled bytes may hold CMake's list separator.)
  file(WRITE "${WORK}/check.py" "import json\n"
       "rows = [json.loads(l) for l in open('best.jsonl')]\n"
       "assert len(rows) == 2, len(rows)\n"
       "for r in rows:\n"
       "    assert len(r['candidates']) == 4 and r['score'] == max(r['scores'])\n"
       "    assert r['score'] == r['completion'].count('a')\n"
       "    assert r['completion'] in r['candidates']\n")
  execute_process(COMMAND ${PYTHON} check.py WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    fail("best.jsonl: ${err}")
  endif()
  # The same model evaluated on the prompts: greedy reward and length, KL to itself 0.
  run(r eval --method policy --model sft/model.safetensors --file prompts.jsonl
      --reference sft/model.safetensors --max-new-tokens 8
      --reward-command "${PYTHON} count_a.py" --samples greedy.jsonl)
  expect_rc(0)
  expect_match(r_out "^\\{\"eval_kl\":0\\.0,\"eval_mean_length\":[0-9.]+,\"eval_reward\":[0-9.e+-]+,\"eval_unscorable\":0\\.0,\"examples\":2\\}")
  expect_exists(greedy.jsonl)
elseif(CASE STREQUAL "cai_revise")
  # Critique -> revision rows from a tiny model: every field of every row (checked in Python:
  # the sampled bytes may hold CMake's list separator), and the chat preference pairs.
  train_sft(sft)
  run(r cai revise --model sft --prompts-file prompts.jsonl --constitution "${CHECKABLE}"
      --output rows.jsonl --pairs pairs.jsonl --max-new-tokens 8 --batch-size 1 --seed 3)
  expect_rc(0)
  expect_plain()
  expect_match(r_out "rlhf cai revise: 2 prompts: 2 written, 0 skipped \\(already done\\), 0 fai")
  expect_match(r_out "preference pairs \\(revision over first answer\\) in pairs.jsonl")
  expect_match(r_err "2/2 prompts")
  file(WRITE "${WORK}/check.py" "import json\n"
       "rows = [json.loads(l) for l in open('rows.jsonl')]\n"
       "assert sorted(r['prompt'] for r in rows) == ['say a', 'say b'], rows\n"
       "fields = ['prompt_id', 'prompt', 'init_prompt', 'init_response', 'principle',\n"
       "          'principles', 'critic_prompt', 'critic_response', 'revision_prompt',\n"
       "          'revision_response', 'rounds', 'chosen', 'rejected', 'messages']\n"
       "for r in rows:\n"
       "    for f in fields:\n"
       "        assert f in r, (f, r)\n"
       "    assert r['principle'] in ('end_with_period', 'lowercase'), r['principle']\n"
       "    assert r['chosen'] == r['revision_response'] and r['rejected'] == r['init_response']\n"
       "    assert r['messages'][1]['content'] == r['chosen'] and len(r['rounds']) == 1\n"
       "    assert r['init_response'] in r['critic_prompt']\n"
       "pairs = [json.loads(l) for l in open('pairs.jsonl')]\n"
       "assert len(pairs) == sum(r['chosen'] != r['rejected'] for r in rows)\n"
       "for p in pairs:\n"
       "    assert p['prompt'][0]['role'] == 'user' and p['chosen'][0]['role'] == 'assistant'\n")
  execute_process(COMMAND ${PYTHON} check.py WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    fail("rows.jsonl: ${err}")
  endif()
elseif(CASE STREQUAL "cai_resume")
  # A second run over the same prompts finds every row done and writes nothing; a torn last
  # line (a killed run) is removed and its prompt done again.
  train_sft(sft)
  set(args cai revise --model sft/model.safetensors --prompts-file prompts.jsonl
           --output rows.jsonl --max-new-tokens 8)
  run(r ${args})
  expect_rc(0)
  file(READ "${WORK}/rows.jsonl" first)
  run(r ${args})
  expect_rc(0)
  expect_match(r_out "resuming: 2 rows already done")
  expect_match(r_out ": 0 written, 2 skipped")
  file(READ "${WORK}/rows.jsonl" second)
  if(NOT first STREQUAL second)
    fail("the second run changed rows.jsonl")
  endif()
  file(WRITE "${WORK}/prompts3.jsonl" "{\"prompt\": \"say a\"}\n{\"prompt\": \"say c\"}\n")
  file(APPEND "${WORK}/rows.jsonl" "{\"prompt\": \"say c\", \"init_resp")
  run(r cai revise --model sft/model.safetensors --prompts-file prompts3.jsonl
      --output rows.jsonl --max-new-tokens 8)
  expect_rc(0)
  expect_match(r_out "resuming: 1 rows already done")
  expect_match(r_out ": 1 written, 1 skipped \\(already done\\), 0 failed, 0 duplicates, torn")
  file(STRINGS "${WORK}/rows.jsonl" lines REGEX "prompt_id")
  list(LENGTH lines n)
  if(NOT n EQUAL 3)
    fail("rows.jsonl holds ${n} rows, expected 3")
  endif()
elseif(CASE STREQUAL "cai_bad_constitution")
  train_sft(sft)
  file(WRITE "${WORK}/bad.json" "{\"principles\": [{\"name\": \"short\", "
       "\"critique_request\": 3, \"revision_request\": \"x\"}]}")
  run(r cai revise --model sft --prompts-file prompts.jsonl --constitution bad.json
      --output rows.jsonl)
  expect_one_error(1 "bad.json: principle 0 \\('short'\\): field 'critique_request': expected a")
  if(EXISTS "${WORK}/rows.jsonl")
    fail("rows.jsonl was written")
  endif()
  run(r cai judge --model sft --prompts-file prompts.jsonl --constitution missing.json
      --output pairs.jsonl)
  expect_one_error(1 "missing.json: cannot open the constitution")
  # --rules needs a built-in check for every principle (the default constitution has none).
  run(r cai judge --model sft --prompts-file prompts.jsonl --rules --output pairs.jsonl)
  expect_one_error(1 "principle 'harmless' of the default constitution has no built-in check")
  # A judge model apart from the generator: not with --rules, and one of checkpoint or server.
  run(r cai judge --model sft --prompts-file prompts.jsonl --rules --judge-model sft
      --output pairs.jsonl)
  expect_one_error(2 "--rules judges with built-in checks, not with a model")
  run(r cai judge --model sft --prompts-file prompts.jsonl --judge-model sft
      --judge-endpoint http://127.0.0.1:9/v1 --output pairs.jsonl)
  expect_one_error(2 "give one of --judge-model CKPT or --judge-endpoint URL")
  run(r cai judge --model sft --prompts-file prompts.jsonl --judge-model nowhere
      --max-new-tokens 8 --output pairs.jsonl)
  expect_one_error(1 "nowhere: no such file")
  run(r cai judge --model sft --prompts-file prompts.jsonl --judge-endpoint http://127.0.0.1:9/v1
      --http-retries 0 --max-new-tokens 8 --output pairs.jsonl)
  if(r_rc STREQUAL "1")
    expect_one_error(1 "http://127.0.0.1:9/v1/chat/completions")
  else()
    expect_one_error(2 "built without")
  endif()
  if(EXISTS "${WORK}/pairs.jsonl")
    fail("pairs.jsonl was written")
  endif()
  run(r cai revise --model sft --prompts-file missing.jsonl --output rows.jsonl)
  expect_one_error(1 "missing.jsonl: no such file")
  run(r cai revise --model nowhere --prompts-file prompts.jsonl --output rows.jsonl)
  expect_one_error(1 "nowhere: no such file")
  run(r cai revise --prompts-file prompts.jsonl --output rows.jsonl)
  expect_one_error(2 "give one of --model CKPT or --endpoint URL")
  # Nothing listens on port 9: one error naming the URL (or, built without libcurl, saying so).
  run(r cai revise --endpoint http://127.0.0.1:9/v1 --http-retries 0 --prompts-file prompts.jsonl
      --output rows.jsonl)
  if(r_rc STREQUAL "1")
    expect_one_error(1 "http://127.0.0.1:9/v1/chat/completions")
  else()
    expect_one_error(2 "built without")
  endif()
  foreach(sub revise judge)
    run(r cai ${sub} --help)
    expect_rc(0)
    string(REGEX MATCHALL "\n  --[a-z]" opts "${r_out}")
    string(REGEX MATCHALL "\\[(default: [^]]*|required)\\]" defaults "${r_out}")
    list(LENGTH opts n_opts)
    list(LENGTH defaults n_defaults)
    if(NOT n_opts EQUAL n_defaults)
      fail("cai ${sub} --help: ${n_opts} options but ${n_defaults} defaults")
    endif()
  endforeach()
elseif(CASE STREQUAL "cai_judge_rules")
  # Four samples per prompt, every pair judged by the checkable constitution's rules: each row
  # prefers the response that follows more of them, with soft label 1.
  train_sft(sft)
  run(r cai judge --model sft --rules --constitution "${CHECKABLE}" --prompts-file prompts.jsonl
      --output pairs.jsonl --n 4 --max-new-tokens 8 --seed 1)
  expect_rc(0)
  expect_match(r_out "rlhf cai judge: 2 prompts, 12 pairs: [0-9]+ rows written, [0-9]+ identical")
  file(WRITE "${WORK}/check.py" "import json, re, sys\n"
       "out = sys.argv[1]\n"
       "rows = [json.loads(l) for l in open('pairs.jsonl')]\n"
       "m = re.search(r'(\\d+) rows written, (\\d+) identical, (\\d+) no judgment', out)\n"
       "assert m and int(m.group(1)) == len(rows), (out, len(rows))\n"
       "assert len(rows) + int(m.group(2)) + int(m.group(3)) == 12\n"
       "ok = lambda s: (s.rstrip().endswith('.')) + (not re.search('[A-Z]', s))\n"
       "for r in rows:\n"
       "    c, j = r['chosen'][0]['content'], r['rejected'][0]['content']\n"
       "    assert ok(c) > ok(j) and r['soft_label'] == 1.0, r\n"
       "    assert r['prompt'][0]['content'] in ('say a', 'say b')\n")
  execute_process(COMMAND ${PYTHON} check.py "${r_out}" WORKING_DIRECTORY "${WORK}"
                  RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    fail("pairs.jsonl: ${err}")
  endif()
elseif(CASE STREQUAL "cai_judge_model")
  # --judge-model: the generator's own checkpoint as the judge gives the rows of the generator
  # judging itself; another checkpoint judges the same samples with other soft labels. A second
  # run resumes and writes nothing; a killed run (a prompt's done line missing, a torn row) is
  # finished with the rows of an uninterrupted one.
  train_sft(sft)
  train_sft(judge --seed 7)
  # A judge prompt that fits the tiny context (the default one is cut to its last 64 bytes,
  # the same in both orders: every pair a tie).
  file(WRITE "${WORK}/judge.json" "{\"judge\": \"{response_a}|{response_b}?\"}")
  set(args cai judge --model sft --prompts-file prompts.jsonl --n 4 --max-new-tokens 8 --seed 1
           --templates judge.json)
  run(r ${args} --output self.jsonl)
  expect_rc(0)
  run(r ${args} --judge-model sft/model.safetensors --output same.jsonl)
  expect_rc(0)
  file(READ "${WORK}/self.jsonl" self)
  file(READ "${WORK}/same.jsonl" same)
  if(NOT self STREQUAL same)
    fail("--judge-model with the generator's checkpoint changed the rows")
  endif()
  run(r ${args} --judge-model judge --output other.jsonl)
  expect_rc(0)
  expect_plain()
  expect_match(r_out "rlhf cai judge: 2 prompts, 12 pairs: [0-9]+ rows written, [0-9]+ identical")
  expect_match(r_out "0 skipped \\(already done\\), 0 duplicates; rows in other.jsonl")
  expect_match(r_err "2/2 prompts")
  file(WRITE "${WORK}/check.py" "import json\n"
       "load = lambda f: [json.loads(l) for l in open(f)]\n"
       "self, other = load('self.jsonl'), load('other.jsonl')\n"
       "assert other, 'no rows'\n"
       "for r in other:\n"
       "    assert 0.5 < r['soft_label'] <= 1.0, r\n"
       "    assert r['prompt'][0]['role'] == 'user' and r['chosen'][0]['role'] == 'assistant'\n"
       "    assert r['prompt'][0]['content'] in ('say a', 'say b') and r['judge_reason']\n"
       "key = lambda r: (r['prompt'][0]['content'], r['chosen'][0]['content'],\n"
       "                 r['rejected'][0]['content'], r['soft_label'])\n"
       "assert sorted(map(key, self)) != sorted(map(key, other)), 'the judge model was not used'\n"
       "done = load('other.jsonl.done')\n"
       "assert [d['prompt'] for d in done] == ['say a', 'say b'], done\n"
       "assert sum(d['rows'] for d in done) == len(other)\n")
  execute_process(COMMAND ${PYTHON} check.py WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    fail("other.jsonl: ${err}")
  endif()
  file(READ "${WORK}/other.jsonl" whole)
  run(r ${args} --judge-model judge --output other.jsonl)
  expect_rc(0)
  expect_match(r_out "resuming: 2 prompts already done in other.jsonl")
  expect_match(r_out ": 0 rows written, .*2 skipped \\(already done\\)")
  file(READ "${WORK}/other.jsonl" again)
  if(NOT whole STREQUAL again)
    fail("the second run changed other.jsonl")
  endif()
  # A kill while 'say b' was written: its done line missing, a torn row at the end.
  file(WRITE "${WORK}/tear.py" "lines = open('other.jsonl.done').readlines()\n"
       "open('other.jsonl.done', 'w').write(lines[0])\n"
       "rows = open('other.jsonl').read()\n"
       "open('other.jsonl', 'a').write(rows.splitlines()[0][:20])\n")
  execute_process(COMMAND ${PYTHON} tear.py WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc)
  run(r ${args} --judge-model judge --output other.jsonl)
  expect_rc(0)
  expect_match(r_out "resuming: 1 prompts already done")
  expect_match(r_out "1 skipped \\(already done\\), 0 duplicates, torn end repaired")
  file(READ "${WORK}/other.jsonl" resumed)
  if(NOT whole STREQUAL resumed)
    fail("the resumed run's rows differ from the uninterrupted run's")
  endif()
elseif(CASE STREQUAL "ppo_end_to_end")
  # PPO against a reward model from `rlhf reward` (its trunk also starts the critic), then a
  # resume from the mid-run checkpoint; and the shared-trunk value head with a command reward.
  run(r reward --train-file pref.jsonl --output-dir rm ${SMALL} --max-steps 2)
  expect_rc(0)
  set(ppo_args --train-file prompts.jsonl --output-dir run ${SMALL} --per-device-train-batch-size 2
      --response-length 8 --num-ppo-epochs 2 --max-steps 4 --save-steps 2
      --reward-model rm/model.safetensors)
  run(r ppo ${ppo_args})
  expect_rc(0)
  expect_plain()
  expect_match(r_out "rlhf ppo: done: 4 steps")
  foreach(f checkpoint-2/model.safetensors checkpoint-2/value_model.safetensors model.safetensors)
    expect_exists(run/${f})
  endforeach()
  file(READ "${WORK}/run/metrics.jsonl" m)
  foreach(name objective/kl objective/scores objective/rlhf_reward policy/approxkl_avg
               policy/clipfrac_avg loss/value_avg val/clipfrac_avg)
    expect_match(m "\"${name}\":")
  endforeach()
  metrics_line(whole run 4)
  run(r ppo ${ppo_args} --resume run/checkpoint-2)
  expect_rc(0)
  metrics_line(resumed run 4)
  if(NOT whole STREQUAL resumed)
    fail("step 4 after a resume differs:\n${whole}\n${resumed}")
  endif()
  file(WRITE "${WORK}/one.sh" "while IFS= read -r l\ndo echo 1\ndone\n")
  run(r ppo --train-file prompts.jsonl --output-dir shared ${SMALL} --per-device-train-batch-size 2
      --response-length 8 --num-ppo-epochs 1 --max-steps 2 --value-model shared
      --reward-command "sh one.sh")
  expect_rc(0)
  expect_match(r_out "rlhf ppo: done: 2 steps")
elseif(CASE STREQUAL "wrong_format")
  # Preference pairs given to a method of unpaired feedback: one line naming file and format.
  run(r kto --train-file pref.jsonl --output-dir run ${SMALL} --max-steps 2)
  expect_one_error(1 "pref.jsonl.*unpaired")
elseif(CASE STREQUAL "help_lists_options")
  set(shared --train-file --eval-file --output-dir --config --model --init-from --resume
             --n-layer --n-embd --skip-bad-lines --plot --learning-rate
             --per-device-train-batch-size --per-device-eval-batch-size
             --gradient-accumulation-steps --num-train-epochs --max-steps --lr-scheduler-type
             --warmup-steps --warmup-ratio --weight-decay --adam-beta1 --adam-beta2
             --adam-epsilon --max-grad-norm --logging-steps --eval-steps --save-steps
             --save-total-limit --seed --eval-fraction)
  set(common ${shared} --max-length)
  set(sft_flags ${common} --completion-only-loss --loss-type)
  set(dpo_flags ${common} --beta --loss-type --loss-weights --label-smoothing
                --f-divergence-type --ld-alpha --max-prompt-length --max-completion-length
                --truncation-mode --precompute-ref-log-probs)
  set(reward_flags ${common} --center-rewards-coefficient --disable-dropout)
  set(lengths --max-prompt-length --max-completion-length --truncation-mode --disable-dropout)
  set(kto_flags ${common} ${lengths} --beta --loss-type --desirable-weight --undesirable-weight)
  set(orpo_flags ${common} ${lengths} --beta)
  set(cpo_flags ${common} ${lengths} --beta --loss-type --label-smoothing --simpo-gamma
                --cpo-alpha --alpha)
  set(bco_flags ${common} ${lengths} --beta)
  set(generate_flags --model --prompt --prompts-file --max-new-tokens --temperature --top-k
                     --top-p --seed --json)
  set(eval_flags --model --file --method --reference --batch-size --skip-bad-lines
                 --max-new-tokens --seed --reward-command --reward-model --samples)
  set(online --num-generations --num-generations-eval --max-completion-length --temperature
             --top-p --top-k --beta --epsilon --epsilon-high --mask-truncated-completions
             --disable-dropout --reward-command --reward-command-timeout --reward-model
             --reward-weights --monitor-reward-drift-sigmas --monitor-collapse-std-fraction
             --monitor-min-entropy --monitor-length-growth --monitor-max-kl)
  set(grpo_flags ${shared} ${online} --loss-type --scale-rewards --importance-sampling-level
                 --multi-objective-aggregation)
  set(rloo_flags ${shared} ${online} --normalize-advantages)
  set(ppo_flags ${shared} --num-ppo-epochs --num-mini-batches --kl-coef --kl-estimator
                --cliprange --vf-coef --cliprange-value --gamma --lam --whiten-rewards
                --response-length --temperature --missing-eos-penalty --adaptive-kl-target
                --adaptive-kl-horizon --target-kl --value-model --monitor-reward-drift-sigmas
                --monitor-collapse-std-fraction --monitor-min-entropy --monitor-length-growth
                --monitor-max-kl --reward-command
                --reward-command-timeout --reward-model --reward-weights)
  set(bon_flags --model --prompts-file --n --max-new-tokens --temperature --top-k --top-p --seed
                --reward-command --reward-command-timeout --reward-model --reward-weights --output)
  foreach(sub sft dpo reward kto orpo cpo bco ppo grpo rloo generate bon eval)
    run(r ${sub} --help)
    expect_rc(0)
    foreach(flag IN LISTS ${sub}_flags)
      expect_match(r_out "\n  ${flag}[ ,{]")
    endforeach()
    # Every option (all but --help) states its default or that it is required.
    string(REGEX MATCHALL "\n  --[a-z]" opts "${r_out}")
    string(REGEX MATCHALL "\\[(default: [^]]*|required)\\]" defaults "${r_out}")
    list(LENGTH opts n_opts)
    list(LENGTH defaults n_defaults)
    if(NOT n_opts EQUAL n_defaults)
      fail("${sub} --help: ${n_opts} options but ${n_defaults} defaults")
    endif()
  endforeach()
  run(r sft --help)
  expect_match(r_out "--learning-rate FLOAT +Peak learning rate \\[default: 2e-05\\]")
  run(r dpo --help)
  expect_match(r_out "--beta FLOAT +[^\n]*\\[default: 0.1\\]")
  run(r cpo --help)
  expect_match(r_out "--simpo-gamma FLOAT +[^\n]*\\[default: 0.5\\]")
  expect_match(r_out "--loss-type NAME +[^\n]*\\(sigmoid\\|hinge\\|ipo\\|simpo\\|alphapo\\)")
elseif(CASE STREQUAL "config_file")
  file(WRITE "${WORK}/run.json" "{\"max_steps\": 4, \"learning_rate\": 0.5, \"seed\": 3}")
  train_sft(run --config run.json --learning-rate 0.02)
  file(READ "${WORK}/run/config.json" cfg)
  string(JSON lr GET "${cfg}" learning_rate)
  string(JSON seed GET "${cfg}" seed)
  string(JSON steps GET "${cfg}" max_steps)
  # --max-steps 6 from train_sft and --learning-rate on the command line win over the file.
  if(NOT lr EQUAL 0.02 OR NOT seed EQUAL 3 OR NOT steps EQUAL 6)
    fail("config.json: learning_rate ${lr}, seed ${seed}, max_steps ${steps}")
  endif()
  file(WRITE "${WORK}/bad.json" "{\"learning_rat\": 1}")
  run(r sft --train-file sft.jsonl --output-dir run2 --config bad.json)
  expect_one_error(1 "bad.json: unknown option 'learning_rat'")
elseif(CASE STREQUAL "resume")
  train_sft(full --save-steps 3)
  run(r sft --train-file sft.jsonl --output-dir resumed ${SMALL} --max-steps 6
      --resume full/checkpoint-3)
  expect_rc(0)
  metrics_line(a full 6)
  metrics_line(b resumed 6)
  if(a STREQUAL "" OR NOT a STREQUAL b)
    fail("step 6 after resuming differs:\n${a}\n${b}")
  endif()
elseif(CASE STREQUAL "generate")
  train_sft(run)
  run(r generate --model run/model.safetensors --prompt "say a" --prompt "say b"
      --max-new-tokens 8 --temperature 0 --json)
  expect_rc(0)
  expect_match(r_out "^{\"completion\":\"[^\n]*\",\"prompt\":\"say a\"}\n{[^\n]*\"say b\"}\n$")
  run(r generate --model run/checkpoint-6 --prompts-file prompts.jsonl --max-new-tokens 4
      --seed 1 --top-k 5 --top-p 0.9)
  expect_rc(0)
  run(r generate --model run/model.safetensors)
  expect_one_error(2 "--prompt")
elseif(CASE STREQUAL "eval_sft")
  train_sft(run)
  run(r eval --model run/model.safetensors --file sft.jsonl)
  expect_rc(0)
  expect_match(r_out "^{[^\n]*\"eval_loss\":[0-9.e-]+[^\n]*\"examples\":24}\n$")
elseif(CASE STREQUAL "eval_dpo")
  train_sft(run)
  run(r eval --model run/model.safetensors --file pref.jsonl --method dpo)
  expect_rc(0)
  # The policy against itself: log-ratios 0, loss log 2.
  expect_match(r_out "\"eval_loss\":0.693147")
  run(r eval --model run/model.safetensors --file pref.jsonl --method dpo
      --reference run/checkpoint-6)
  expect_rc(0)
elseif(CASE STREQUAL "plot")
  train_sft(run --eval-fraction 0.2)
  run(r plot run)
  expect_rc(0)
  expect_exists(run/plots/loss.png)
  expect_exists(run/plots/learning_rate.png)
  expect_exists(run/plots/grad_norm.png)
  run(r sft --train-file sft.jsonl --output-dir run2 ${SMALL} --max-steps 2 --plot)
  expect_rc(0)
  expect_exists(run2/plots/loss.png)
elseif(CASE STREQUAL "bad_flag")
  run(r sft --train-file sft.jsonl --output-dir run --no-such-flag)
  expect_one_error(2 "--no-such-flag")
  run(r sft --train-file sft.jsonl --output-dir run --learning-rate fast)
  expect_one_error(2 "--learning-rate: expected a number, got 'fast'")
  run(r sft --train-file sft.jsonl --output-dir run --lr-scheduler-type steep)
  expect_one_error(2 "steep")
  run(r sft --output-dir run)
  expect_one_error(2 "--train-file")
  run(r frobnicate)
  expect_one_error(2 "frobnicate")
elseif(CASE STREQUAL "missing_file")
  run(r sft --train-file absent.jsonl --output-dir run ${SMALL})
  expect_one_error(1 "absent.jsonl: no such file")
  run(r generate --model absent.safetensors --prompt hi)
  expect_one_error(1 "absent.safetensors")
elseif(CASE STREQUAL "malformed_line")
  file(WRITE "${WORK}/bad.jsonl" "${_sft}{\"prompt\": \"x\", \"completion\": 5}\n")
  run(r sft --train-file bad.jsonl --output-dir run ${SMALL} --max-steps 2)
  expect_one_error(1 "bad.jsonl:25: field 'completion'")
  file(WRITE "${WORK}/bad2.jsonl" "${_pref}not json\n")
  run(r dpo --train-file bad2.jsonl --output-dir run ${SMALL} --max-steps 2)
  expect_one_error(1 "bad2.jsonl:25:")
elseif(CASE STREQUAL "skip_bad_lines")
  file(WRITE "${WORK}/bad.jsonl" "${_sft}{\"prompt\": \"x\", \"completion\": 5}\nnot json\n")
  train_sft(run --train-file bad.jsonl --skip-bad-lines)
  expect_match(r_err "skipped 2 bad data lines")
elseif(CASE STREQUAL "contradictory_config")
  run(r sft --train-file sft.jsonl --output-dir run ${SMALL} --max-length 100)
  expect_one_error(1 "max_length 100 exceeds the model's max_seq_len 64")
  run(r sft --train-file sft.jsonl --output-dir run ${SMALL} --warmup-ratio 1.5)
  expect_one_error(1 "warmup_ratio")
  run(r dpo --train-file pref.jsonl --output-dir run ${SMALL} --loss-type sigmoid,ipo
      --loss-weights 1)
  expect_one_error(1 "loss_weights")
  run(r sft --train-file sft.jsonl --output-dir run ${SMALL} --n-embd 30 --n-head 4)
  expect_one_error(1 "n_embd")
elseif(CASE STREQUAL "other_config_init_from")
  train_sft(run)
  run(r sft --train-file sft.jsonl --output-dir run2 --init-from run/model.safetensors
      --n-layer 2 --max-steps 2 --no-plot)
  expect_one_error(1 "n_layer 1.*asks for 2")
  # The same config as the checkpoint: fine.
  run(r sft --train-file sft.jsonl --output-dir run2 --init-from run/model.safetensors
      --n-layer 1 --max-steps 2 --no-plot)
  expect_rc(0)
elseif(CASE STREQUAL "other_config_resume")
  train_sft(run)
  run(r sft --train-file sft.jsonl --output-dir run2 ${SMALL} --n-embd 64 --max-steps 8
      --resume run/checkpoint-6)
  expect_one_error(1 "n_embd")
elseif(CASE STREQUAL "sigint")
  # --foreground: timeout signals only the program; without it GNU timeout signals the
  # program and then its process group, and the second SIGINT (the "stop now" one) races
  # the first one's checkpoint.
  execute_process(COMMAND "${TIMEOUT}" --foreground --preserve-status -s INT 3 "${RLHF}" sft
                          --train-file sft.jsonl --output-dir run ${SMALL} --max-steps 1000000
                  RESULT_VARIABLE r_rc OUTPUT_VARIABLE r_out ERROR_VARIABLE r_err
                  WORKING_DIRECTORY "${WORK}")
  expect_rc(130)
  expect_plain()
  expect_match(r_err "interrupted at step [0-9]+; checkpoint saved in run/checkpoint-[0-9]+")
  file(GLOB ckpts "${WORK}/run/checkpoint-*/model.safetensors")
  if(NOT ckpts)
    fail("no checkpoint folder after SIGINT")
  endif()
else()
  message(FATAL_ERROR "unknown case '${CASE}'")
endif()
