#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""A folder written by rlhf::model::save_hf_gpt2 loads in `transformers` with
GPT2LMHeadModel.from_pretrained, every weight taken from the file (no missing or unexpected
key), and computes what the C++ model computed. Used by tests/model/test_hf_gpt2.cpp.

    hf_gpt2_check.py FOLDER SIDECAR

SIDECAR: {"input_ids": [[int]], "logits": [float] (B·T·vocab_size, row-major),
          "tied": bool}
Checks: from_pretrained(FOLDER) in float32 reports no missing, unexpected or mismatched
keys; the LM head is tied to wte exactly when "tied"; the eval-mode logits on input_ids
equal the C++ logits to 1e-5 relative + 1e-6 absolute (float32 round-off of two
implementations). Exit 0 when everything agrees; prints the first disagreement otherwise.
"""
import json
import sys

import torch
from transformers import GPT2LMHeadModel


def main(folder, sidecar):
    with open(sidecar) as f:
        side = json.load(f)
    torch.set_num_threads(1)
    model, info = GPT2LMHeadModel.from_pretrained(folder, torch_dtype=torch.float32,
                                                  output_loading_info=True)
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info.get(k):
            print(f"hf_gpt2_check: {folder}: {k}: {info[k]}")
            return 1
    tied = model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    if tied != side["tied"]:
        print(f"hf_gpt2_check: {folder}: lm_head tied {tied}, expected {side['tied']}")
        return 1
    model.eval()
    ids = torch.tensor(side["input_ids"], dtype=torch.long)
    with torch.no_grad():
        logits = model(ids).logits.flatten().double()
    want = torch.tensor(side["logits"], dtype=torch.float64)
    if logits.shape != want.shape:
        print(f"hf_gpt2_check: {folder}: {logits.numel()} logits, expected {want.numel()}")
        return 1
    excess = ((logits - want).abs() - (1e-6 + 1e-5 * want.abs())).max().item()
    if excess > 0:
        worst = (logits - want).abs().max().item()
        print(f"hf_gpt2_check: {folder}: logits differ by up to {worst}")
        return 1
    print(f"hf_gpt2_check: {folder}: ok (max |diff| {(logits - want).abs().max().item():.3g})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
