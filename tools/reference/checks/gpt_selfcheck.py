#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Self-consistency check of the GPT golden fixtures (tests/fixtures/gpt_<name>.safetensors,
written by tools/reference/gpt.py; docs/model.md ("The GPT golden test")).

    /usr/bin/python3 tools/reference/checks/gpt_selfcheck.py [FIXTURE_DIR]

For each fixture it reads the file with the independent parser of safetensors_check.py
(struct + json only), checks the tensor names, order, dtypes and shapes against
gpt_param_table's layout, the metadata (config, weight_layout, loss, losses_10), the zero
padded embedding rows and the SHA-256 recorded in gpt_<name>.json, then rebuilds the model from
the stored weights and verifies that it reproduces the stored logits, loss, every gradient
and the 10 AdamW losses. The forward is checked twice: with gpt.py's own forward (expected
bit-exact on the machine that wrote the files) and with a second, separately written
formulation here (per-head loop, F.gelu(approximate="tanh"), log-softmax + gather), to
1e-5 relative (float32 rounding). Exit 0 when everything agrees.
Lives under checks/ so check_fixtures.py does not run it; `--out DIR` is ignored anyway.
"""
import hashlib
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import gpt  # noqa: E402  tools/reference/gpt.py
from safetensors_check import parse  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


def to_tensor(t):
    fmt = {"F32": "f", "I32": "i"}[t["dtype"]]
    raw = struct.pack(f"<{len(t['bits'])}I", *t["bits"])
    vals = struct.unpack(f"<{len(t['bits'])}{fmt}", raw)
    dtype = torch.float32 if t["dtype"] == "F32" else torch.int64
    return torch.tensor(vals, dtype=dtype).reshape(t["shape"])


def rel(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


def forward_alt(cfg, p, idx):
    """A second formulation of the same model: explicit per-head loop over weight slices."""
    B, Tn = idx.shape
    C, nh, V, eps = cfg["n_embd"], cfg["n_head"], cfg["vocab_size"], cfg["layernorm_eps"]
    hd = C // nh
    x = F.embedding(idx, p["wte.weight"]) + F.embedding(torch.arange(Tn), p["wpe.weight"])
    causal = torch.triu(torch.full((Tn, Tn), float("-inf")), diagonal=1)
    for l in range(cfg["n_layer"]):
        q_ = f"h.{l}."
        h = F.layer_norm(x, (C,), p[q_ + "ln_1.weight"], p[q_ + "ln_1.bias"], eps)
        W, b = p[q_ + "attn.c_attn.weight"], p[q_ + "attn.c_attn.bias"]
        heads = []
        for i in range(nh):
            s = slice(i * hd, (i + 1) * hd)
            q = F.linear(h, W[0 * C:1 * C][s], b[0 * C:1 * C][s])
            k = F.linear(h, W[1 * C:2 * C][s], b[1 * C:2 * C][s])
            v = F.linear(h, W[2 * C:3 * C][s], b[2 * C:3 * C][s])
            a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(hd) + causal, dim=-1)
            heads.append(a @ v)
        x = x + F.linear(torch.cat(heads, dim=-1), p[q_ + "attn.c_proj.weight"],
                         p[q_ + "attn.c_proj.bias"])
        h = F.layer_norm(x, (C,), p[q_ + "ln_2.weight"], p[q_ + "ln_2.bias"], eps)
        h = F.gelu(F.linear(h, p[q_ + "mlp.c_fc.weight"], p[q_ + "mlp.c_fc.bias"]),
                   approximate="tanh")
        x = x + F.linear(h, p[q_ + "mlp.c_proj.weight"], p[q_ + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], eps)
    head = p["wte.weight"] if cfg["tie_embeddings"] else p["lm_head.weight"]
    return F.linear(x, head[:V])


def loss_alt(logits, idx):
    lp = torch.log_softmax(logits[:, :-1], dim=-1)
    return -lp.gather(-1, idx[:, 1:].unsqueeze(-1)).mean()


def check_file(fixdir, name):
    path = os.path.join(fixdir, f"gpt_{name}.safetensors")
    n0 = len(errors)
    with open(path, "rb") as f:
        blob = f.read()
    summary_path = os.path.join(fixdir, f"gpt_{name}.json")
    if os.path.exists(summary_path):
        with open(summary_path) as f:
            out = json.load(f)["cases"][0]["outputs"]
        check(out["safetensors_sha256"] == hashlib.sha256(blob).hexdigest(),
              f"{name}: SHA-256 differs from {summary_path}")
    tensors, meta = parse(path)
    cfg = json.loads(meta["config"])
    check(cfg == gpt.full_config(cfg), f"{name}: config lacks gpt_config fields: {cfg}")
    check(meta.get("weight_layout") == "out_in", f"{name}: weight_layout {meta.get('weight_layout')}")
    table = gpt.param_table(cfg)
    want = [(n, "F32", list(s)) for n, s, _ in table]
    want += [("grad." + n, "F32", list(s)) for n, s, _ in table]
    batch = json.loads(meta["batch"])
    B, Tn, V = batch["B"], batch["T"], cfg["vocab_size"]
    want += [("input_ids", "I32", [B, Tn]), ("logits", "F32", [B, Tn, V])]
    got = [(t["name"], t["dtype"], t["shape"]) for t in tensors]
    if not check(got == want, f"{name}: tensors {got} != {want}"):
        return
    ts = {t["name"]: to_tensor(t) for t in tensors}
    idx = ts["input_ids"]
    check(bool(((idx >= 0) & (idx < V)).all()), f"{name}: input_ids outside [0, {V})")
    init = {n: ts[n] for n, _, _ in table}
    for n in ("wte.weight", "lm_head.weight"):
        if n in init:
            check(bool((init[n][V:] == 0).all()), f"{name}: {n} padded rows are not 0")
            check(bool((ts["grad." + n][V:] == 0).all()), f"{name}: grad.{n} padded rows not 0")

    torch.set_num_threads(1)
    # 1. gpt.py's forward/backward/AdamW from the stored weights: bit-exact expected.
    logits, loss, grads, losses = gpt.run(cfg, init, idx)
    exact = torch.equal(logits, ts["logits"]) and all(
        torch.equal(grads[n], ts["grad." + n]) for n, _, _ in table)
    check(rel(logits, ts["logits"]) < 1e-6, f"{name}: logits rel {rel(logits, ts['logits'])}")
    check(float(loss) == float(meta["loss"]) or
          abs(float(loss) - float(meta["loss"])) < 1e-6 * abs(float(meta["loss"])),
          f"{name}: loss {float(loss)} vs {meta['loss']}")
    for n, _, _ in table:
        check(rel(grads[n], ts["grad." + n]) < 1e-5 or ts["grad." + n].norm() < 1e-6,
              f"{name}: grad.{n} rel {rel(grads[n], ts['grad.' + n])}")
    stored = json.loads(meta["losses_10"])
    check(stored[0] == float(meta["loss"]), f"{name}: losses_10[0] != loss")
    for i, (a, b) in enumerate(zip(losses, stored)):
        check(abs(float(a) - b) <= 1e-6 * abs(b), f"{name}: step {i} loss {float(a)} vs {b}")

    # 2. the separately written formulation, on the stored weights.
    p = {n: torch.nn.Parameter(init[n].clone()) for n, _, _ in table}
    lg = forward_alt(cfg, p, idx)
    ls = loss_alt(lg, idx)
    ls.backward()
    alt_logits = rel(lg.detach(), ts["logits"])
    check(alt_logits < 1e-5, f"{name}: alt logits rel {alt_logits}")
    check(abs(float(ls) - float(meta["loss"])) < 1e-5 * float(meta["loss"]),
          f"{name}: alt loss {float(ls)} vs {meta['loss']}")
    worst = 0.0
    for n, _, _ in table:
        ref = ts["grad." + n]
        if ref.norm() > 1e-6:
            worst = max(worst, rel(p[n].grad, ref))
            check(rel(p[n].grad, ref) < 1e-4, f"{name}: alt grad.{n} rel {rel(p[n].grad, ref)}")
    status = "ok" if len(errors) == n0 else "FAILED"
    print(f"gpt_selfcheck: {path}: {len(tensors)} tensors, loss {meta['loss']}, "
          f"bit-exact rerun {exact}, alt logits rel {alt_logits:.1e}, "
          f"alt worst grad rel {worst:.1e}: {status}")


def main(argv):
    if "--out" in argv:
        return 0
    fixdir = argv[1] if len(argv) > 1 else os.path.join(ROOT, "tests", "fixtures")
    for spec in gpt.CONFIGS:
        check_file(fixdir, spec["name"])
    for e in errors:
        print("gpt_selfcheck: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
