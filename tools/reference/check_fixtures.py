#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reruns every fixture script of tools/reference/ into a temporary directory and compares
the result with the committed tests/fixtures/*.json (same cases, same keys, numbers equal
to 1e-5 relative). Fails when a script and its committed fixture have drifted apart.

The tolerance is float32 round-off, not double's: the GPT fixtures run PyTorch's float32
GEMMs, whose last bits depend on the machine's OpenBLAS kernel (an AVX-512 machine and an
AVX2 one differ by up to ~5e-7 relative on a sum of logits). A script that changed what it
computes moves its numbers by far more. For the same reason a binary fixture's SHA-256
("safetensors_sha256" in gpt_<name>.json) is not compared with the rerun's: it must match
the committed tests/fixtures/gpt_<name>.safetensors exactly (the two committed files belong
together), while the rerun's tensors are compared through the summary numbers beside it.
Likewise the "files_sha256" of hf_gpt2.json, hf_llama.json and bpe_tokenizer.json must match
the committed folders tests/fixtures/hf_gpt2_tiny/, hf_llama_tiny/ and bpe_tokenizer_tiny/
file by file.

hf_gpt2.py and hf_llama.py need `transformers` and bpe_tokenizer.py `tokenizers`, which the system Python
lacks: each runs with the first of this Python, $RLHF_TOOLS_PYTHON and the tools venv
(~/.local/share/rlhfpp/venv, made by scripts/install-deps test) that can import it; when none
can, the check fails and says so.

    /usr/bin/python3 tools/reference/check_fixtures.py
"""
import glob
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def compare(a, b, path, errors):
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            errors.append(f"{path}: keys differ: {sorted(set(a) ^ set(b))}")
            return
        for k in a:
            if k not in ("torch", "safetensors_sha256", "files_sha256"):
                compare(a[k], b[k], f"{path}.{k}", errors)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            errors.append(f"{path}: length {len(a)} vs {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            compare(x, y, f"{path}[{i}]", errors)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if not math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-9):
            errors.append(f"{path}: {a} vs {b}")
    elif a != b:
        errors.append(f"{path}: {a!r} vs {b!r}")


def check_binary_hashes(name, committed, errors):
    """Every "safetensors_sha256" in a committed summary is the SHA-256 of the committed
    binary beside it (tests/fixtures/<summary stem>.safetensors)."""
    hashes = []

    def find(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "safetensors_sha256":
                    hashes.append(v)
                else:
                    find(v)
        elif isinstance(node, list):
            for v in node:
                find(v)

    find(committed)
    if not hashes:
        return
    binary = os.path.join(ROOT, "tests", "fixtures", os.path.splitext(name)[0] + ".safetensors")
    if not os.path.exists(binary):
        errors.append(f"{name}: names a SHA-256 but {binary} is not committed")
        return
    with open(binary, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    for h in hashes:
        if h != digest:
            errors.append(f"{name}: safetensors_sha256 {h} but the committed binary is {digest}")


def check_folder_hashes(name, committed, errors):
    """Every "files_sha256" ({relative path: SHA-256}) of a committed summary matches the
    committed files of tests/fixtures/<summary stem>_tiny/, and names all of them."""
    folder = os.path.join(ROOT, "tests", "fixtures", os.path.splitext(name)[0] + "_tiny")
    for case in committed.get("cases", []):
        hashes = case.get("outputs", {}).get("files_sha256")
        if hashes is None:
            continue
        present = sorted(os.path.relpath(os.path.join(r, f), folder)
                         for r, _, fs in os.walk(folder) for f in fs)
        if present != sorted(hashes):
            errors.append(f"{name}: files_sha256 lists {sorted(hashes)}, {folder} has {present}")
            return
        for rel, h in hashes.items():
            with open(os.path.join(folder, rel), "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            if digest != h:
                errors.append(f"{name}: {rel}: files_sha256 {h} but the committed file is {digest}")


# Scripts that import more than torch, and the module they need.
NEEDS = {"hf_gpt2.py": "transformers", "hf_llama.py": "transformers",
         "bpe_tokenizer.py": "tokenizers",
         "chat_template.py": "transformers"}


def python_for(module):
    """A Python that can import `module` (see the top of this file), or None."""
    candidates = [sys.executable, os.environ.get("RLHF_TOOLS_PYTHON", ""),
                  os.path.expanduser("~/.local/share/rlhfpp/venv/bin/python")]
    for py in candidates:
        if py and os.path.exists(py) and subprocess.run(
                [py, "-c", f"import {module}"], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode == 0:
            return py
    return None


def main():
    scripts = sorted(p for p in glob.glob(os.path.join(HERE, "*.py"))
                     if os.path.basename(p) not in ("common.py", "check_fixtures.py"))
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        skipped = []
        for script in scripts:
            python = sys.executable
            module = NEEDS.get(os.path.basename(script))
            if module:
                python = python_for(module)
                if python is None:  # a check that cannot run is a failure, not a pass
                    print(f"{os.path.basename(script)}: no Python here imports {module} "
                          f"(scripts/install-deps test installs it into the tools venv)")
                    failed = True
                    skipped.append(os.path.splitext(os.path.basename(script))[0] + ".json")
                    continue
            subprocess.run([python, script, "--out", tmp], check=True,
                           stdout=subprocess.DEVNULL)
        produced = sorted(os.listdir(tmp))
        for name in produced:
            committed = os.path.join(ROOT, "tests", "fixtures", name)
            if not os.path.exists(committed):
                print(f"{name}: not committed under tests/fixtures/")
                failed = True
                continue
            with open(os.path.join(tmp, name)) as f:
                new = json.load(f)
            with open(committed) as f:
                old = json.load(f)
            errors = []
            compare(new, old, name, errors)
            check_binary_hashes(name, old, errors)
            check_folder_hashes(name, old, errors)
            if errors:
                failed = True
                print(f"{name}: {len(errors)} differences, first: {errors[:3]}")
            else:
                print(f"{name}: matches")
    print(f"{len(scripts) - len(skipped)} scripts checked")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
