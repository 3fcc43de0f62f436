#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Golden reference for Llama-family Hugging Face checkpoints (include/rlhf/model/hf_llama.hpp
and the Llama blocks of the bundled decoder): small random-init models built by
`transformers` itself, seeded, saved with save_pretrained, and their float32 forward and
autograd gradients. Needs `transformers` (scripts/install-deps test installs the pinned
version into the tools venv); run it with that Python:

    ~/.local/share/rlhfpp/venv/bin/python tools/reference/hf_llama.py

writes

    tests/fixtures/hf_llama_tiny/<model>/             save_pretrained (config.json,
                                                      model.safetensors) for each model below
    tests/fixtures/hf_llama_tiny/<model>_grads.safetensors
                                                      d loss / d parameter of the "short" case,
                                                      under the checkpoint's names
    tests/fixtures/hf_llama_tiny/llama_bf16/          the "llama" model cast to bfloat16
    tests/fixtures/hf_llama.json                      per model and case: input ids, float32
                                                      logits, the loss, the files' SHA-256

Models (vocab 80, padded to 128 in the arena; width 32, 2 layers, 4 heads of 8):
  llama        LlamaForCausalLM, 2 key/value heads (grouped-query), intermediate 48, untied
               head, rope_theta 10000
  llama3_tied  LlamaForCausalLM, 1 key/value head, tied head, rope_theta 500000 with
               Llama 3.1's rope scaling (factor 8, original context 16 < 32: every branch of
               the frequency ramp is used)
  qwen2        Qwen2ForCausalLM (q/k/v biases), 2 key/value heads, intermediate 40, tied head,
               rope_theta 1e6
The weights are transformers' initialisation with initializer_range 0.15 (so that attention
and positions change the logits clearly), then every norm weight and bias perturbed. The loss
is transformers' own (labels = input ids: mean next-token cross-entropy).

With --out DIR only the JSON summary is written (to DIR; check_fixtures.py compares it with
the committed one); --folders-dir DIR2 writes the folders there too.
"""
import argparse
import os
import shutil
import sys
import tempfile

import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from common import ROOT, Fixture, S, T, T32, files_of

COMMON = {"vocab_size": 80, "hidden_size": 32, "num_hidden_layers": 2,
          "num_attention_heads": 4, "max_position_embeddings": 32, "rms_norm_eps": 1e-6,
          "initializer_range": 0.15, "hidden_act": "silu"}
MODELS = {
    "llama": (LlamaConfig, LlamaForCausalLM,
              {**COMMON, "num_key_value_heads": 2, "intermediate_size": 48,
               "tie_word_embeddings": False, "rope_theta": 10000.0}),
    "llama3_tied": (LlamaConfig, LlamaForCausalLM,
                    {**COMMON, "num_key_value_heads": 1, "intermediate_size": 48,
                     "tie_word_embeddings": True, "rope_theta": 500000.0,
                     "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
                                      "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                      "original_max_position_embeddings": 16}}),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM,
              {**COMMON, "num_key_value_heads": 2, "intermediate_size": 40,
               "tie_word_embeddings": True, "rope_theta": 1000000.0}),
}
SEED = 2025
# (B, T) of each case: an odd length, and the whole context.
CASES = [("short", 2, 7), ("full", 1, 32)]


def build(name):
    config_cls, model_cls, kwargs = MODELS[name]
    torch.manual_seed(SEED)
    model = model_cls(config_cls(**kwargs))
    g = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "norm" in pname:
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

    fx = Fixture("hf_llama")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, "hf_llama_tiny")
        for name in MODELS:
            model = build(name)
            model.save_pretrained(os.path.join(base, name))
            if name == "llama":
                build(name).to(torch.bfloat16).save_pretrained(os.path.join(base, "llama_bf16"))
            g = torch.Generator().manual_seed(SEED + 2)
            for case, b, t in CASES:
                ids = torch.randint(0, COMMON["vocab_size"], (b, t), generator=g)
                model.zero_grad()
                res = model(ids, labels=ids)
                res.loss.backward()
                if case == "short":
                    grads = {n: p.grad.detach().clone().contiguous()
                             for n, p in model.named_parameters()}
                    if model.config.tie_word_embeddings:
                        grads.pop("lm_head.weight", None)  # the same tensor as embed_tokens
                    save_file(grads, os.path.join(base, f"{name}_grads.safetensors"))
                results.append((name, case, b, t, model.config.to_dict(), ids, res))
                print(f"{name}/{case}: loss {res.loss.item():.9g}")
        for sub in list(MODELS) + ["llama_bf16"]:
            gen = os.path.join(base, sub, "generation_config.json")
            if os.path.exists(gen):
                os.remove(gen)  # not part of the model
        hashes = files_of(base)
        if folders:
            dst = os.path.join(folders, "hf_llama_tiny")
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(base, dst)
            print(f"wrote {dst} ({len(hashes)} files)")

    for name, case, b, t, config, ids, res in results:
        fx.add(f"{name}/{case}", {"model": name, "B": b, "T": t, "seed": SEED,
                                  "transformers": transformers.__version__},
               {"input_ids": T(ids.to(torch.int32))},
               {"logits": T32(res.logits), "loss": S(res.loss), "files_sha256": hashes})
    fx.write(["--out", out])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
