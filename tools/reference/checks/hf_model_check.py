#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""A folder written by rlhf::model::save_hf_gpt2 / save_hf_llama / save_hf_model loads in
`transformers` with AutoModelForCausalLM.from_pretrained, every weight taken from the file
(no missing or unexpected key), and computes what the C++ model computed. Used by
tests/model/test_hf_gpt2.cpp and test_hf_llama.cpp.

    hf_model_check.py FOLDER SIDECAR

SIDECAR: {"input_ids": [[int]], "logits": [float] (B·T·vocab_size, row-major),
          "tied": bool, "architecture": "GPT2LMHeadModel" | "LlamaForCausalLM" | ...}
Checks: from_pretrained(FOLDER) in float32 builds the named architecture and reports no
missing, unexpected or mismatched keys; the LM head is tied to the input embeddings exactly
when "tied"; the eval-mode logits on input_ids
equal the C++ logits to 1e-5 relative + 1e-5 absolute (float32 round-off of two
implementations: transformers' own float32 logits of the Llama test models differ from its
float64 ones by up to 2.1e-6 on logits of magnitude ~3). Exit 0 when everything agrees; prints the first disagreement otherwise.
"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM


def main(folder, sidecar):
    with open(sidecar) as f:
        side = json.load(f)
    torch.set_num_threads(1)
    model, info = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32,
                                                       output_loading_info=True)
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info.get(k):
            print(f"hf_model_check: {folder}: {k}: {info[k]}")
            return 1
    arch = type(model).__name__
    if arch != side.get("architecture", arch):
        print(f"hf_model_check: {folder}: built {arch}, expected {side['architecture']}")
        return 1
    tied = (model.get_output_embeddings().weight.data_ptr() ==
            model.get_input_embeddings().weight.data_ptr())
    if tied != side["tied"]:
        print(f"hf_model_check: {folder}: lm_head tied {tied}, expected {side['tied']}")
        return 1
    model.eval()
    ids = torch.tensor(side["input_ids"], dtype=torch.long)
    with torch.no_grad():
        logits = model(ids).logits.flatten().double()
    want = torch.tensor(side["logits"], dtype=torch.float64)
    if logits.shape != want.shape:
        print(f"hf_model_check: {folder}: {logits.numel()} logits, expected {want.numel()}")
        return 1
    excess = ((logits - want).abs() - (1e-5 + 1e-5 * want.abs())).max().item()
    if excess > 0:
        worst = (logits - want).abs().max().item()
        print(f"hf_model_check: {folder}: logits differ by up to {worst}")
        return 1
    print(f"hf_model_check: {folder}: ok (max |diff| {(logits - want).abs().max().item():.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
