#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""`rlhf dpo` and `rlhf sft` on Hugging Face model folders (label cli): a random-init
LlamaForCausalLM (grouped-query attention, untied head) and a Qwen2ForCausalLM (q/k/v
biases, tied head) made and saved by `transformers` here, with the byte-level BPE tokenizer of
tests/fixtures/bpe_tokenizer_tiny and a ChatML chat template in tokenizer_config.json. Checks:
the runs finish; <output>/hf_model loads in AutoModelForCausalLM with no missing or unexpected
weight, its weights moved from the start and its logits are finite; the tokenizer files came
along; the trained folder is itself a valid --model for a second run, whose --hf-dtype
bfloat16 output holds BF16 weights; a --model that is neither
a preset nor a model folder, and --model with --init-from, are refused by name.

    hf_model_case.py RLHF_BINARY FIXTURE_DIR WORK_DIR
"""
import json
import os
import shutil
import subprocess
import sys

import torch
from transformers import (AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
          "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def fail(msg):
    print(f"hf_model_case: {msg}")
    sys.exit(1)


def make_folder(path, family, tokenizer_dir):
    common = dict(vocab_size=640, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                  initializer_range=0.05)
    torch.manual_seed(7)
    if family == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common, tie_word_embeddings=False))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(**common, tie_word_embeddings=True))
    model.save_pretrained(path)
    shutil.copy(os.path.join(tokenizer_dir, "tokenizer.json"), path)
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump({"chat_template": CHATML, "eos_token": "<|im_end|>",
                   "bos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}, f)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def run(rlhf, args, expect_rc=0):
    r = subprocess.run([rlhf] + args, capture_output=True, text=True, timeout=600)
    if r.returncode != expect_rc:
        fail(f"{' '.join(args)}: exit {r.returncode}, expected {expect_rc}\n{r.stdout}\n{r.stderr}")
    return r


def check_output(out, start, family):
    folder = os.path.join(out, "hf_model")
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        if not os.path.isfile(os.path.join(folder, f)):
            fail(f"{folder}/{f} is missing")
    model, info = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32,
                                                       output_loading_info=True)
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        if info.get(k):
            fail(f"{folder}: {k}: {info[k]}")
    want = "LlamaForCausalLM" if family == "llama" else "Qwen2ForCausalLM"
    if type(model).__name__ != want:
        fail(f"{folder}: loads as {type(model).__name__}, expected {want}")
    moved = max((model.state_dict()[k] - v).abs().max().item() for k, v in start.items()
                if k in model.state_dict())
    if not moved > 0:
        fail(f"{folder}: no weight moved in training")
    with torch.no_grad():
        logits = model(torch.tensor([[1, 5, 9, 2]])).logits
    if not torch.isfinite(logits).all():
        fail(f"{folder}: non-finite logits")
    print(f"hf_model_case: {family}: {folder} loads as {want}, weights moved by up to {moved:.3g}")


def main(rlhf, fixtures, work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    tok_dir = os.path.join(fixtures, "bpe_tokenizer_tiny")
    pref = os.path.join(work, "pref.jsonl")
    sft = os.path.join(work, "sft.jsonl")
    with open(pref, "w") as f:
        for i in range(16):
            f.write(json.dumps({"prompt": f"What is {i} plus {i}?",
                                "chosen": f"It is {2 * i}.", "rejected": "I don't know."}) + "\n")
    with open(sft, "w") as f:
        for i in range(16):
            f.write(json.dumps({"prompt": f"Say {i}.", "completion": f"{i}"}) + "\n")
    small = ["--per-device-train-batch-size", "4", "--learning-rate", "1e-3", "--plot=false",
             "--max-length", "64"]
    for family in ("llama", "qwen2"):
        folder = os.path.join(work, family)
        start = make_folder(folder, family, tok_dir)
        out = os.path.join(work, f"dpo_{family}")
        r = run(rlhf, ["dpo", "--model", folder, "--train-file", pref, "--output-dir", out,
                       "--max-steps", "3", "--beta", "0.1"] + small)
        if "rlhf dpo: done: 3 steps" not in r.stdout:
            fail(f"dpo on {family}: unexpected output\n{r.stdout}")
        check_output(out, start, family)
        # The trained folder is a --model of its own.
        out2 = os.path.join(work, f"sft_{family}")
        run(rlhf, ["sft", "--model", os.path.join(out, "hf_model"), "--train-file", sft,
                   "--output-dir", out2, "--max-steps", "2", "--hf-dtype", "bfloat16"] + small)
        check_output(out2, start, family)
        with open(os.path.join(out2, "hf_model", "config.json")) as f:
            if json.load(f).get("torch_dtype") != "bfloat16":
                fail(f"{out2}/hf_model: --hf-dtype bfloat16 did not write bfloat16")
        with open(os.path.join(out2, "hf_model", "model.safetensors"), "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            dtypes = {v["dtype"] for k, v in json.loads(f.read(n)).items() if k != "__metadata__"}
        if dtypes != {"BF16"}:
            fail(f"{out2}/hf_model/model.safetensors holds {dtypes}, expected BF16")
    r = run(rlhf, ["dpo", "--model", os.path.join(work, "nowhere"), "--train-file", pref,
                   "--output-dir", os.path.join(work, "bad")], expect_rc=2)
    if "neither a preset" not in r.stderr:
        fail(f"a bad --model is not named:\n{r.stderr}")
    r = run(rlhf, ["dpo", "--model", os.path.join(work, "llama"), "--init-from",
                   os.path.join(work, "dpo_llama", "model.safetensors"), "--train-file", pref,
                   "--output-dir", os.path.join(work, "bad2")], expect_rc=2)
    if "give one" not in r.stderr:
        fail(f"--model with --init-from is not refused:\n{r.stderr}")
    print("hf_model_case: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3]))
