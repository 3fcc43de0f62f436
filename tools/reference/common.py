# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Shared helpers of the reference scripts: every script here builds inputs from a seeded
torch generator, computes the reference in float64 with autograd, and writes
tests/fixtures/<name>.json, which the C++ tests read.

    /usr/bin/python3 tools/reference/<script>.py [--out DIR]

Layout: {"generator": script, "cases": [{"name", "config", "inputs", "outputs"}]}; a tensor
is {"shape": [...], "data": [...]} (row-major), a scalar a plain number. Inputs are float32
values (the C++ side reads them exactly); outputs are the float64 reference.
"""
import argparse
import json
import math
import os
import sys

import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def T(x):
    """A tensor as fixture JSON (float32 inputs print exactly as float64)."""
    x = torch.as_tensor(x).detach()
    if x.dtype in (torch.int32, torch.int64, torch.bool):
        data = [int(v) for v in x.flatten().tolist()]
    else:
        data = [float(v) for v in x.to(torch.float64).flatten().tolist()]
    for v in data:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError("fixtures hold finite numbers only (JSON has no NaN/Inf)")
    return {"shape": list(x.shape) if x.dim() > 0 else [1], "data": data}


def S(x):
    """A scalar as fixture JSON."""
    v = float(torch.as_tensor(x).item())
    if not math.isfinite(v):
        raise ValueError("fixtures hold finite numbers only")
    return v


def T32(x):
    """A float32 tensor as fixture JSON, each value the shortest decimal that reads back as
    the same float32 (half the size of T's float64 digits; the C++ test rounds to float)."""
    import numpy
    x = x.detach().to(torch.float32)
    data = [float(numpy.format_float_positional(v, unique=True)) for v in x.flatten().numpy()]
    return {"shape": list(x.shape), "data": data}


def files_of(folder):
    """{relative path: SHA-256} of every file under `folder`, sorted (a fixture folder's
    "files_sha256", which check_fixtures.py compares with the committed files)."""
    import hashlib
    out = {}
    for root, _, names in os.walk(folder):
        for n in sorted(names):
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, folder)] = hashlib.sha256(f.read()).hexdigest()
    return dict(sorted(out.items()))


def f32(x):
    """Rounds to float32 and returns float64 leaf with grad: the exact values C++ reads."""
    return torch.as_tensor(x).to(torch.float32).to(torch.float64).requires_grad_(True)


class Fixture:
    def __init__(self, name):
        self.name = name
        self.cases = []

    def add(self, case, config, inputs, outputs):
        self.cases.append({"name": case, "config": config, "inputs": inputs,
                           "outputs": outputs})

    def write(self, argv=None):
        p = argparse.ArgumentParser()
        p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures"))
        args = p.parse_args(argv)
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, self.name + ".json")
        doc = {"generator": "tools/reference/" + os.path.basename(sys.argv[0]),
               "torch": torch.__version__, "cases": self.cases}
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=None, separators=(",", ":"))
            f.write("\n")
        os.replace(tmp, path)
        print(f"wrote {path} ({len(self.cases)} cases)")
