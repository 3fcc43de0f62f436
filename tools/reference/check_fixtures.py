#!/usr/bin/python3
"""Reruns every fixture script of tools/reference/ into a temporary directory and compares
the result with the committed tests/fixtures/*.json (same cases, same keys, numbers equal
to 1e-9 relative). Fails when a script and its committed fixture have drifted apart.

    /usr/bin/python3 tools/reference/check_fixtures.py
"""
import glob
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
            if k != "torch":
                compare(a[k], b[k], f"{path}.{k}", errors)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            errors.append(f"{path}: length {len(a)} vs {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            compare(x, y, f"{path}[{i}]", errors)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
            errors.append(f"{path}: {a} vs {b}")
    elif a != b:
        errors.append(f"{path}: {a!r} vs {b!r}")


def main():
    scripts = sorted(p for p in glob.glob(os.path.join(HERE, "*.py"))
                     if os.path.basename(p) not in ("common.py", "check_fixtures.py"))
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for script in scripts:
            subprocess.run([sys.executable, script, "--out", tmp], check=True,
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
            if errors:
                failed = True
                print(f"{name}: {len(errors)} differences, first: {errors[:3]}")
            else:
                print(f"{name}: matches")
    print(f"{len(scripts)} scripts checked")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
