# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reruns every fixture script of tools/reference/trl/ (TRL's own loss code, read from the
installed trl package) into a temporary directory and compares the result with the committed
tests/fixtures/trl/*.json: same cases and keys, the same TRL version, numbers equal to 1e-5
relative (1e-6 absolute: TRL computes in float32, whose last bits depend on the machine's
vector kernels), NaN (null) where TRL had NaN. Fails when a script, the installed TRL or the
committed fixtures have drifted apart.

    $RLHF_TOOLS_PYTHON tools/reference/trl/check_fixtures.py
"""
import glob
import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
HELPERS = ("trl_source.py", "check_fixtures.py")


def compare(a, b, path, errors):
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            errors.append(f"{path}: keys differ: {sorted(set(a) ^ set(b))}")
            return
        for k in a:
            if k != "torch":
                compare(a[k], b[k], f"{path}.{k}", errors)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            errors.append(f"{path}: length {len(a)} vs {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            compare(x, y, f"{path}[{i}]", errors)
    elif isinstance(a, bool) or isinstance(b, bool):
        if a is not b:
            errors.append(f"{path}: {a!r} vs {b!r}")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if not math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6):
            errors.append(f"{path}: {a} vs {b}")
    elif a != b:
        errors.append(f"{path}: {a!r} vs {b!r}")


def main():
    scripts = sorted(p for p in glob.glob(os.path.join(HERE, "*.py"))
                     if os.path.basename(p) not in HELPERS)
    committed_dir = os.path.join(ROOT, "tests", "fixtures", "trl")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for script in scripts:
            subprocess.run([sys.executable, script, "--out", tmp], check=True, cwd=HERE,
                           stdout=subprocess.DEVNULL)
        produced = sorted(os.listdir(tmp))
        for name in sorted(set(produced) | set(os.listdir(committed_dir))):
            committed = os.path.join(committed_dir, name)
            if name not in produced:
                print(f"{name}: committed under tests/fixtures/trl/ but no script writes it")
                failed = True
                continue
            if not os.path.exists(committed):
                print(f"{name}: not committed under tests/fixtures/trl/")
                failed = True
                continue
            with open(os.path.join(tmp, name)) as f:
                new = json.load(f)
            with open(committed) as f:
                old = json.load(f)
            errors = []
            compare(new, old, name, errors)
            if errors:
                failed = True
                print(f"{name}: {len(errors)} differences, first: {errors[:3]}")
            else:
                print(f"{name}: matches")
    print(f"{len(scripts)} scripts checked")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
