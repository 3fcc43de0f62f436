#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Independent safetensors reader/writer for tests/model/test_safetensors.cpp.

    safetensors_check.py verify FILE SIDECAR   check FILE (written by the C++ side) against
                                               SIDECAR; exit 0 when they agree
    safetensors_check.py write FILE SIDECAR    write FILE with a fixed set of tensors and the
                                               expected values to SIDECAR (for the C++ reader)

SIDECAR: {"metadata": {str: str},
          "tensors": [{"name": str, "dtype": "F32"|"I32", "shape": [int],
                       "bits": [uint32, ...]}, ...]}          (tensors in file order)
Values travel as their 32-bit patterns so NaN payloads, -0.0 and denormals compare exactly.
The parser here uses only struct + json (the `safetensors` package is used as well when it
is importable). It lives under tools/reference/checks/ so check_fixtures.py, which runs
tools/reference/*.py, does not pick it up; `--out DIR` is accepted and ignored anyway.
"""
import json
import struct
import sys

DTYPES = {"F32": "f", "I32": "i"}


def fail(msg):
    print("safetensors_check: " + msg, file=sys.stderr)
    sys.exit(1)


def parse(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        fail(f"{path}: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        fail(f"{path}: header length {n} beyond the file")
    raw = blob[8:8 + n]
    if n % 8 != 0:
        fail(f"{path}: header length {n} is not a multiple of 8")
    text = raw.decode("utf-8")
    if not text.rstrip(" ").endswith("}"):
        fail(f"{path}: the header is not a JSON object padded with spaces")
    header = json.loads(text)
    data = blob[8 + n:]
    meta = header.pop("__metadata__", {})
    entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    pos = 0
    tensors = []
    for name, e in entries:
        begin, end = e["data_offsets"]
        if begin != pos:
            fail(f"{path}: tensor {name} begins at {begin}, expected {pos}")
        numel = 1
        for d in e["shape"]:
            numel *= d
        if end - begin != 4 * numel:
            fail(f"{path}: tensor {name}: {end - begin} bytes for shape {e['shape']}")
        if e["dtype"] not in DTYPES:
            fail(f"{path}: tensor {name}: dtype {e['dtype']}")
        bits = list(struct.unpack(f"<{numel}I", data[begin:end]))
        tensors.append({"name": name, "dtype": e["dtype"], "shape": e["shape"], "bits": bits})
        pos = end
    if pos != len(data):
        fail(f"{path}: data section has {len(data)} bytes, tensors cover {pos}")
    return tensors, meta


def verify(path, sidecar):
    with open(sidecar, encoding="utf-8") as f:
        want = json.load(f)
    tensors, meta = parse(path)
    if meta != want.get("metadata", {}):
        fail(f"metadata {meta!r} != {want.get('metadata')!r}")
    if [t["name"] for t in tensors] != [t["name"] for t in want["tensors"]]:
        fail(f"names/order {[t['name'] for t in tensors]} != "
             f"{[t['name'] for t in want['tensors']]}")
    for got, exp in zip(tensors, want["tensors"]):
        for k in ("dtype", "shape", "bits"):
            if got[k] != exp[k]:
                fail(f"tensor {got['name']}: {k} differs")
    try:
        from safetensors.numpy import load_file  # optional second opinion
    except ImportError:
        load_file = None
    if load_file is not None:
        loaded = load_file(path)
        for exp in want["tensors"]:
            arr = loaded[exp["name"]]
            if list(arr.shape) != exp["shape"] or \
                    list(arr.reshape(-1).view("<u4").tolist()) != exp["bits"]:
                fail(f"safetensors package disagrees on {exp['name']}")
    print(f"safetensors_check: {path}: {len(tensors)} tensors agree")


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def write(path, sidecar):
    # Header keys deliberately not in data order: the reader must order by offsets.
    tensors = [
        ("wte.weight", "F32", [2, 3],
         [f32_bits(v) for v in (1.5, -0.0, 1e-45, -2.5e-39, float("inf"), -1.0)]),
        ("h.0.attn.bias", "F32", [3], [0x7FC00001, 0xFFA00000, f32_bits(3.0)]),
        ("steps", "I32", [2], [7, struct.unpack("<I", struct.pack("<i", -3))[0]]),
        ("empty", "F32", [0], []),
    ]
    meta = {"format": "pt", "config": json.dumps({"n_layer": 2, "note": "π ≠ 3"})}
    header = {}
    data = b""
    for name, dtype, shape, bits in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [len(data), len(data) + 4 * len(bits)]}
        data += struct.pack(f"<{len(bits)}I", *bits)
    ordered = {"__metadata__": meta}
    for name in sorted(header, reverse=True):
        ordered[name] = header[name]
    text = json.dumps(ordered, ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
    with open(sidecar, "w", encoding="utf-8") as f:
        json.dump({"metadata": meta,
                   "tensors": [{"name": n, "dtype": d, "shape": s, "bits": b}
                               for n, d, s, b in tensors]}, f, ensure_ascii=False)


def main(argv):
    if "--out" in argv:  # run as a fixture script: nothing to write
        return 0
    if len(argv) != 4 or argv[1] not in ("verify", "write"):
        fail(__doc__)
    (verify if argv[1] == "verify" else write)(argv[2], argv[3])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
