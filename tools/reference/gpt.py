#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Golden reference for the bundled GPT-style decoder (include/rlhf/model/), in
llm.c's manner: a minimal GPT written here from gpt_config's semantics (no transformers),
float32 on the CPU, one thread, seeded. For each config it initialises the weights the GPT-2
way, runs one forward/backward on a seeded batch, then 10 torch.optim.AdamW steps on the same
batch, and writes

    tests/fixtures/gpt_<name>.safetensors   every parameter at init (GPT-2 names, (out, in)),
                                            "grad.<name>" of the first backward, "input_ids"
                                            (I32, (B, T)), "logits" (B, T, V_real); metadata:
                                            config (gpt_config's field names), loss,
                                            losses_10, weight_layout = out_in, ...
    tests/fixtures/gpt_<name>.json          summary (config, loss, 10 losses, checksums and
                                            the safetensors file's SHA-256) for
                                            check_fixtures.py

    /usr/bin/python3 tools/reference/gpt.py                       both files, in tests/fixtures
    /usr/bin/python3 tools/reference/gpt.py --out DIR             the JSON summaries only
    /usr/bin/python3 tools/reference/gpt.py --out DIR --safetensors-dir DIR2

check_fixtures.py runs every tools/reference/*.py with --out TMP and json.loads every file it
finds there, so with --out the binary file goes only where --safetensors-dir says; its
SHA-256 is in the JSON summary, so check_fixtures.py still notices when the committed binary
and this script drift apart. docs/model.md ("The GPT golden test") describes the test.
"""
import argparse
import hashlib
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

from common import ROOT, Fixture, S, T

# The two golden configs: each has a vocabulary that is not a multiple of 64 and a T that is
# not a power of two, so the padded-row and odd-length paths are exercised.
CONFIGS = [
    {"name": "tiny_a", "seed": 1337, "B": 2, "T": 7,
     "config": {"vocab_size": 259, "max_seq_len": 16, "n_layer": 2, "n_head": 2, "n_embd": 32,
                "tie_embeddings": True}},
    {"name": "tiny_b", "seed": 4242, "B": 2, "T": 11,
     "config": {"vocab_size": 100, "max_seq_len": 24, "n_layer": 3, "n_head": 4, "n_embd": 48,
                "tie_embeddings": False}},
]
# torch.optim.AdamW settings of the 10 steps (param_ref.decays selects weight_decay).
TRAIN = {"optimizer": "torch.optim.AdamW", "steps": 10, "lr": 1e-3, "beta1": 0.9,
         "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1}
INIT_STD = 0.02


def full_config(c):
    """gpt_config with its defaults (include/rlhf/model/config.hpp), fields named as there."""
    cfg = {"vocab_size": 259, "max_seq_len": 256, "n_layer": 4, "n_head": 4, "n_embd": 256,
           "mlp_ratio": 4, "tie_embeddings": True, "dropout": 0.0, "layernorm_eps": 1e-5,
           "vocab_multiple": 64}
    cfg.update(c)
    return cfg


def padded_vocab(cfg):
    m = cfg["vocab_multiple"]
    return (cfg["vocab_size"] + m - 1) // m * m


def param_table(cfg):
    """gpt_param_table: [(name, shape, decays)] in arena order."""
    C, V, H = cfg["n_embd"], padded_vocab(cfg), cfg["mlp_ratio"] * cfg["n_embd"]
    t = [("wte.weight", (V, C), True), ("wpe.weight", (cfg["max_seq_len"], C), True)]
    for l in range(cfg["n_layer"]):
        p = f"h.{l}."
        t += [(p + "ln_1.weight", (C,), False), (p + "ln_1.bias", (C,), False),
              (p + "attn.c_attn.weight", (3 * C, C), True), (p + "attn.c_attn.bias", (3 * C,), False),
              (p + "attn.c_proj.weight", (C, C), True), (p + "attn.c_proj.bias", (C,), False),
              (p + "ln_2.weight", (C,), False), (p + "ln_2.bias", (C,), False),
              (p + "mlp.c_fc.weight", (H, C), True), (p + "mlp.c_fc.bias", (H,), False),
              (p + "mlp.c_proj.weight", (C, H), True), (p + "mlp.c_proj.bias", (C,), False)]
    t += [("ln_f.weight", (C,), False), ("ln_f.bias", (C,), False)]
    if not cfg["tie_embeddings"]:
        t.append(("lm_head.weight", (V, C), True))
    return t


def init_params(cfg, g):
    """GPT-2 init, drawn in arena order from generator g (float32): matrices and embeddings
    N(0, 0.02), the c_proj weights (attn and mlp) N(0, 0.02/sqrt(2·n_layer)), biases 0,
    layernorm weight 1 / bias 0. For wte (and an untied lm_head) only the vocab_size real rows
    are drawn; the padded rows are 0."""
    V = cfg["vocab_size"]
    params = {}
    for name, shape, _ in param_table(cfg):
        if name.endswith(".bias"):
            w = torch.zeros(shape)
        elif name.startswith("ln") or ".ln_" in name:
            w = torch.ones(shape)
        else:
            std = INIT_STD
            if name.endswith("c_proj.weight"):
                std = INIT_STD / math.sqrt(2 * cfg["n_layer"])
            if name in ("wte.weight", "lm_head.weight"):
                w = torch.zeros(shape)
                w[:V] = torch.randn((V,) + shape[1:], generator=g) * std
            else:
                w = torch.randn(shape, generator=g) * std
        params[name] = w.to(torch.float32).contiguous()
    return params


def layernorm(x, w, b, eps):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def gelu_tanh(x):
    # 0.5·x·(1 + tanh(sqrt(2/π)·(x + 0.044715·x³))), as GPT-2 and llm.c.
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def forward(cfg, p, idx, return_hidden=False):
    """Logits (B, T, vocab_size) of the decoder; p maps GPT-2 names to (out, in) weights.
    With return_hidden: (logits, h) where h (B, T, C) is the final hidden state after ln_f."""
    B, Tn = idx.shape
    C, nh, V = cfg["n_embd"], cfg["n_head"], cfg["vocab_size"]
    hd, eps = C // nh, cfg["layernorm_eps"]
    x = p["wte.weight"][idx] + p["wpe.weight"][:Tn]  # (B, T, C)
    mask = torch.ones(Tn, Tn, dtype=torch.bool).tril()
    for l in range(cfg["n_layer"]):
        q_ = f"h.{l}."
        h = layernorm(x, p[q_ + "ln_1.weight"], p[q_ + "ln_1.bias"], eps)
        qkv = h @ p[q_ + "attn.c_attn.weight"].t() + p[q_ + "attn.c_attn.bias"]  # (B, T, 3C)
        q, k, v = qkv.split(C, dim=-1)  # c_attn rows: q, k, v
        q = q.view(B, Tn, nh, hd).transpose(1, 2)  # (B, nh, T, hd); head h = columns h·hd..
        k = k.view(B, Tn, nh, hd).transpose(1, 2)
        v = v.view(B, Tn, nh, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, Tn, C)
        x = x + (y @ p[q_ + "attn.c_proj.weight"].t() + p[q_ + "attn.c_proj.bias"])
        h = layernorm(x, p[q_ + "ln_2.weight"], p[q_ + "ln_2.bias"], eps)
        h = gelu_tanh(h @ p[q_ + "mlp.c_fc.weight"].t() + p[q_ + "mlp.c_fc.bias"])
        x = x + (h @ p[q_ + "mlp.c_proj.weight"].t() + p[q_ + "mlp.c_proj.bias"])
    x = layernorm(x, p["ln_f.weight"], p["ln_f.bias"], eps)
    head = p["wte.weight"] if cfg["tie_embeddings"] else p["lm_head.weight"]
    logits = x @ head[:V].t()  # the padded rows are not part of the softmax
    return (logits, x) if return_hidden else logits


def lm_loss(logits, idx):
    """Mean cross-entropy of the next token over all B·(T-1) positions: logits at t predict
    idx[:, t+1]; the last position has no target."""
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), idx[:, 1:].reshape(-1))


def run(cfg, init, idx, dtype=torch.float32):
    """One forward/backward, then 10 AdamW steps on the same batch. Returns (logits, loss,
    grads, losses_10) of the given dtype (float64: a shadow run for the report)."""
    table = param_table(cfg)
    params = {n: torch.nn.Parameter(init[n].to(dtype).clone()) for n, _, _ in table}
    logits = forward(cfg, params, idx)
    loss = lm_loss(logits, idx)
    loss.backward()
    grads = {n: params[n].grad.detach().clone() for n, _, _ in table}
    first_logits, first_loss = logits.detach().clone(), loss.detach().clone()
    opt = torch.optim.AdamW(
        [{"params": [params[n] for n, _, d in table if d], "weight_decay": TRAIN["weight_decay"]},
         {"params": [params[n] for n, _, d in table if not d], "weight_decay": 0.0}],
        lr=TRAIN["lr"], betas=(TRAIN["beta1"], TRAIN["beta2"]), eps=TRAIN["eps"])
    losses = []
    for step in range(TRAIN["steps"]):
        opt.zero_grad(set_to_none=True)
        loss = lm_loss(forward(cfg, params, idx), idx)
        losses.append(loss.detach().clone())  # the loss before step `step`
        loss.backward()
        opt.step()
    return first_logits, first_loss, grads, losses


def safetensors_bytes(tensors, metadata):
    """A safetensors file: tensors [(name, torch tensor F32/I32)] in the given order."""
    header = {"__metadata__": metadata}
    data = bytearray()
    for name, t in tensors:
        t = t.detach().contiguous()
        dtype = {torch.float32: "F32", torch.int32: "I32"}[t.dtype]
        raw = t.numpy().astype("<f4" if dtype == "F32" else "<i4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + bytes(data)


def write_atomic(path, blob):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(blob)
    os.replace(tmp, path)


def main(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--safetensors-dir", default=None)
    args = ap.parse_args(argv)
    default_dir = os.path.join(ROOT, "tests", "fixtures")
    out = args.out or default_dir
    st_dir = args.safetensors_dir or (None if args.out else default_dir)
    torch.set_num_threads(1)
    torch.manual_seed(0)  # nothing here uses the global generator; set for good measure

    for spec in CONFIGS:
        cfg = full_config(spec["config"])
        g = torch.Generator().manual_seed(spec["seed"])
        init = init_params(cfg, g)  # drawn first, in arena order
        idx = torch.randint(0, cfg["vocab_size"], (spec["B"], spec["T"]), generator=g)
        logits, loss, grads, losses = run(cfg, init, idx)
        table = param_table(cfg)

        # float64 shadow run from the same float32 weights: the noise floor of float32.
        l64, s64, g64, ls64 = run(cfg, init, idx, torch.float64)
        rel = lambda a, b: float((a.double() - b).norm() / b.norm().clamp_min(1e-300))
        print(f"{spec['name']}: loss {loss.item():.9g} (float64 {s64.item():.12g}); "
              f"float32 vs float64: logits {rel(logits, l64):.2e}, "
              f"worst grad {max(rel(grads[n], g64[n]) for n, _, _ in table if g64[n].norm() > 0):.2e}, "
              f"worst step loss {max(abs(a.item() - b.item()) / b.item() for a, b in zip(losses, ls64)):.2e}")

        losses_f = [S(x) for x in losses]
        meta = {
            "format": "pt",
            "config": json.dumps(cfg, separators=(",", ":")),
            "weight_layout": "out_in",
            "loss": repr(S(loss)),
            "losses_10": json.dumps(losses_f),
            "train": json.dumps(TRAIN, separators=(",", ":")),
            "init": json.dumps({"seed": spec["seed"], "std": INIT_STD,
                                "c_proj_std": INIT_STD / math.sqrt(2 * cfg["n_layer"])}),
            "batch": json.dumps({"B": spec["B"], "T": spec["T"]}),
            "generator": "tools/reference/gpt.py",
        }
        tensors = [(n, init[n]) for n, _, _ in table]
        tensors += [("grad." + n, grads[n]) for n, _, _ in table]
        tensors += [("input_ids", idx.to(torch.int32)), ("logits", logits)]
        blob = safetensors_bytes(tensors, meta)
        if st_dir:
            os.makedirs(st_dir, exist_ok=True)
            path = os.path.join(st_dir, f"gpt_{spec['name']}.safetensors")
            write_atomic(path, blob)
            print(f"wrote {path} ({len(blob)} bytes)")

        fx = Fixture("gpt_" + spec["name"])
        grad_all = torch.cat([grads[n].flatten() for n, _, _ in table])
        fx.add(spec["name"], {**cfg, "B": spec["B"], "T": spec["T"], "seed": spec["seed"],
                              "train": TRAIN},
               {"input_ids": T(idx.to(torch.int32)),
                "num_params": sum(init[n].numel() for n, _, _ in table)},
               {"loss": S(loss), "losses_10": losses_f,
                "logits_sum": S(logits.double().sum()),
                "logits_abs_sum": S(logits.double().abs().sum()),
                "grad_global_norm": S(grad_all.double().norm()),
                "grad_norms": {n: S(grads[n].double().norm()) for n, _, _ in table},
                "safetensors_bytes": len(blob),
                "safetensors_sha256": hashlib.sha256(blob).hexdigest()})
        fx.write(["--out", out])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
