#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Compares the float32 tensors of two .safetensors files by name.

    compare_safetensors.py A B TOLERANCE

Prints the largest |a - b| over every tensor and exits 1 when it is above TOLERANCE (0:
bit for bit), when the names or shapes differ, or when a value is not finite."""
import json
import math
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {t['dtype']}, not F32")
        begin, end = t["data_offsets"]
        out[name] = (tuple(t["shape"]), struct.unpack(f"<{(end - begin) // 4}f", data[begin:end]))
    return out


def main():
    a, b, tol = read(sys.argv[1]), read(sys.argv[2]), float(sys.argv[3])
    if sorted(a) != sorted(b):
        sys.exit(f"tensor names differ: {sorted(set(a) ^ set(b))}")
    worst, where = 0.0, ""
    for name in sorted(a):
        (sa, va), (sb, vb) = a[name], b[name]
        if sa != sb:
            sys.exit(f"{name}: shapes {sa} and {sb}")
        for x, y in zip(va, vb):
            if not (math.isfinite(x) and math.isfinite(y)):
                sys.exit(f"{name}: a value is not finite")
            if abs(x - y) > worst:
                worst, where = abs(x - y), name
    print(f"max |a - b| = {worst:.3g} ({where or 'equal'})")
    sys.exit(0 if worst <= tol else 1)


if __name__ == "__main__":
    main()
