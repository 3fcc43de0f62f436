#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Golden reference for loading Hugging Face GPT-2 checkpoints (include/rlhf/model/hf_gpt2.hpp):
a small GPT2LMHeadModel from `transformers` itself, seeded, saved with save_pretrained, and
its float32 forward on a few sequences. Needs `transformers` (scripts/install-deps test
installs the pinned version into the tools venv); run it with that Python:

    ~/.local/share/rlhfpp/venv/bin/python tools/reference/hf_gpt2.py

writes

    tests/fixtures/hf_gpt2_tiny/f32/        save_pretrained (config.json, model.safetensors)
    tests/fixtures/hf_gpt2_tiny/bf16/       the same model cast to bfloat16
    tests/fixtures/hf_gpt2_tiny/sharded/    the float32 model in 2 shards + the index
    tests/fixtures/hf_gpt2.json             input ids, float32 logits and loss per case,
                                            the files' SHA-256

With --out DIR only the JSON summary is written (to DIR; check_fixtures.py compares it with
the committed one); --folders-dir DIR2 writes the folders there too. The weights are GPT-2's
initialisation, then every bias and LayerNorm parameter perturbed (so that a mixed-up bias
or a missed transpose changes the logits), vocab_size 300 (padded to 320 in the arena).
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

from common import ROOT, Fixture, S, T, T32, files_of

CONFIG = {"n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 32, "vocab_size": 300,
          "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}
SEED = 2024
# (B, T) of each case: an odd length, and the whole context.
CASES = [("short", 2, 7), ("full", 1, 32)]


def build():
    torch.manual_seed(SEED)
    model = GPT2LMHeadModel(GPT2Config(**CONFIG))
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif ".ln_" in name or "ln_f" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
    model.eval()
    return model


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--folders-dir", default=None)
    args = ap.parse_args(argv)
    default_dir = os.path.join(ROOT, "tests", "fixtures")
    out = args.out or default_dir
    folders = args.folders_dir or (None if args.out else default_dir)
    torch.set_num_threads(1)

    model = build()
    g = torch.Generator().manual_seed(SEED + 2)
    fx = Fixture("hf_gpt2")
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "hf_gpt2_tiny")
        model.save_pretrained(os.path.join(base, "f32"))
        model.save_pretrained(os.path.join(base, "sharded"), max_shard_size="100KB")
        build().to(torch.bfloat16).save_pretrained(os.path.join(base, "bf16"))
        for sub in ("f32", "sharded", "bf16"):
            # generation_config.json: not part of the model.
            gen = os.path.join(base, sub, "generation_config.json")
            if os.path.exists(gen):
                os.remove(gen)
        shards = [n for n in os.listdir(os.path.join(base, "sharded")) if n.startswith("model-")]
        assert len(shards) == 2, shards
        hashes = files_of(base)
        if folders:
            dst = os.path.join(folders, "hf_gpt2_tiny")
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(base, dst)
            print(f"wrote {dst} ({len(hashes)} files)")

    for name, b, t in CASES:
        ids = torch.randint(0, CONFIG["vocab_size"], (b, t), generator=g)
        with torch.no_grad():
            res = model(ids, labels=ids)
        fx.add(name, {**CONFIG, "B": b, "T": t, "seed": SEED,
                      "transformers": transformers.__version__},
               {"input_ids": T(ids.to(torch.int32))},
               {"logits": T32(res.logits), "loss": S(res.loss),
                "files_sha256": hashes})
        print(f"{name}: loss {res.loss.item():.9g}")
    fx.write(["--out", out])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
