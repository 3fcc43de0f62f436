#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""A checkpoint written by rlhf::model::save_checkpoint loads in Python's own `safetensors`
package under the documented names (docs/model.md, "Checkpoints of a model") and computes
what the C++ model computed. Used by tests/model/test_checkpoint.cpp.

    checkpoint_check.py FILE SIDECAR

FILE: the checkpoint (trunk, optionally scalar heads listed in the "heads" metadata).
SIDECAR: {"input_ids": [[int]], "logits": [float] (B·T·vocab_size, row-major),
          "heads": {prefix: [float] (B·T values of that head on the final hidden state)}}
Checks, with safetensors.torch.load_file and safe_open's metadata:
  - the tensor names are exactly gpt.py's param_table (GPT-2 names, (out, in) shapes) plus
    "<prefix>.weight" (1, C) / "<prefix>.bias" (1) for every listed head, plus the optimizer
    state when "optimizer.step" is present;
  - metadata: format "pt", weight_layout "out_in", config with gpt_config's field names;
  - gpt.py's forward on the loaded weights reproduces the C++ logits, and each head the C++
    values, to 1e-4 of the tensor's largest magnitude (float32 rounding of two
    implementations).
Exit 0 when everything agrees; prints the first disagreement otherwise.
"""
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import gpt  # noqa: E402  (tools/reference/gpt.py)


def fail(msg):
    print("checkpoint_check: " + msg, file=sys.stderr)
    sys.exit(1)


def close(name, got, want, rel=1e-4):
    scale = max(want.abs().max().item(), 1e-30)
    err = (got - want).abs().max().item()
    if not err <= rel * scale:
        fail(f"{name}: max |python - C++| = {err:.3g} > {rel:g} * {scale:.3g}")


def main(path, sidecar_path):
    with safe_open(path, framework="pt") as f:
        md = f.metadata()
    tensors = load_file(path)
    with open(sidecar_path) as f:
        side = json.load(f)
    if md.get("format") != "pt" or md.get("weight_layout") != "out_in":
        fail(f"metadata format/weight_layout: {md.get('format')!r}/{md.get('weight_layout')!r}")
    cfg = gpt.full_config(json.loads(md["config"]))
    heads = json.loads(md.get("heads", "[]"))
    expected = {n: tuple(s) for n, s, _ in gpt.param_table(cfg)}
    for h in heads:
        expected[h["prefix"] + ".weight"] = (1, cfg["n_embd"])
        expected[h["prefix"] + ".bias"] = (1,)
    if "optimizer.step" in md:
        P = sum(torch.Size(s).numel() for n, s, _ in gpt.param_table(cfg))
        expected["optimizer.exp_avg"] = (P,)
        expected["optimizer.exp_avg_sq"] = (P,)
    if set(tensors) != set(expected):
        fail(f"names: missing {sorted(set(expected) - set(tensors))}, "
             f"unexpected {sorted(set(tensors) - set(expected))}")
    for n, s in expected.items():
        if tuple(tensors[n].shape) != s or tensors[n].dtype != torch.float32:
            fail(f"{n}: {tensors[n].dtype} {tuple(tensors[n].shape)}, expected float32 {s}")

    idx = torch.tensor(side["input_ids"], dtype=torch.long)
    B, T = idx.shape
    with torch.no_grad():
        logits, hidden = gpt.forward(cfg, tensors, idx, return_hidden=True)
    close("logits", logits.reshape(-1), torch.tensor(side["logits"]))
    for h in heads:
        p = h["prefix"]
        want = torch.tensor(side["heads"][p]).reshape(B, T)
        got = (hidden @ tensors[p + ".weight"].t() + tensors[p + ".bias"]).reshape(B, T)
        close(p, got, want)
    print(f"checkpoint_check: {len(tensors)} tensors, logits {tuple(logits.shape)} and "
          f"{len(heads)} head(s) agree")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail("usage: checkpoint_check.py FILE SIDECAR")
    main(sys.argv[1], sys.argv[2])
