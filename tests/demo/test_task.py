#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Checks tools/demo/task.py (its path is the argument): the verifier's verdicts on known
answers, and the generated splits (disjoint, reproducible, the stated share of wrong
demonstrations)."""
import json
import subprocess
import sys
import tempfile

task = sys.argv[1]


def verify(rows):
    inp = "".join(json.dumps(r) + "\n" for r in rows)
    out = subprocess.run([sys.executable, task, "verify"], input=inp, capture_output=True,
                         text=True, check=True).stdout.split("\n")
    return out[:-1]


cases = [
    ({"prompt": "sort 3 1 2\n", "completion": "1 2 3"}, "1"),
    ({"prompt": "sort 3 1 2\n", "completion": " 1 2 3\n"}, "1"),
    ({"prompt": "sort 3 1 2\n", "completion": "1 3 2"}, "0"),
    ({"prompt": "reverse abcd\n", "completion": "dcba"}, "1"),
    ({"prompt": "reverse abcd\n", "completion": "abcd"}, "0"),
    ({"prompt": "add 12 7\n", "completion": "19"}, "1"),
    ({"prompt": "add 12 7\n", "completion": "20"}, "0"),
    ({"prompt": "tell me a joke", "completion": "no"}, "null"),
    ({"prompt": [{"role": "user", "content": "x"}], "completion": "y"}, "null"),
]
got = verify([c for c, _ in cases])
want = [w for _, w in cases]
assert got == want, (got, want)

with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
    for d in (a, b):
        subprocess.run([sys.executable, task, "make", "--out", d, "--seed", "3", "--train", "400",
                        "--heldout", "50", "--noise", "0.25"], check=True)
    read = lambda d, f: open(f"{d}/{f}").read()
    for f in ("sft.jsonl", "prompts.jsonl", "heldout.jsonl"):
        assert read(a, f) == read(b, f), f"{f} differs between two runs of one seed"
    sft = [json.loads(l) for l in read(a, "sft.jsonl").splitlines()]
    held = {json.loads(l)["prompt"] for l in read(a, "heldout.jsonl").splitlines()}
    train = {r["prompt"] for r in sft}
    assert len(sft) == 400 and len(train) == 400 and len(held) == 50
    assert not (train & held), "a held-out prompt is in the training data"
    scores = verify(sft)
    wrong = scores.count("0") / len(scores)
    assert "null" not in scores
    assert 0.17 < wrong < 0.33, f"share of wrong demonstrations {wrong}, asked for 0.25"
print("demo task: verifier and generator as stated")
