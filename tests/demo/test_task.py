#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Checks tools/demo/task.py (its path is the argument): the verifier's verdicts on known
answers, and the generated splits (disjoint, reproducible, the stated shares of random and
of systematic wrong demonstrations)."""
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
    ({"prompt": "add 12 7\n", "completion": "19"}, "null"),
    ({"prompt": "tell me a joke", "completion": "no"}, "null"),
    ({"prompt": "sort 3 1 3\n", "completion": "1 3"}, "0"),
    ({"prompt": "sort 3 1 3", "completion": "1 3 3"}, "1"),
    ({"prompt": [{"role": "user", "content": "x"}], "completion": "y"}, "null"),
    ({"prompt": [{"role": "system", "content": "sort 2 1"},
                 {"role": "user", "content": "sort 3 2"}], "completion": "2 3"}, "1"),
    ({"prompt": [{"role": "user", "content": "reverse ab"}], "completion": "ab"}, "0"),
    ({"prompt": 7, "completion": "7"}, "null"),
]
got = verify([c for c, _ in cases])
want = [w for _, w in cases]
assert got == want, (got, want)

with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
    for d in (a, b):
        subprocess.run([sys.executable, task, "make", "--out", d, "--seed", "3", "--train", "400",
                        "--heldout", "50", "--noise", "0.25", "--dedupe", "0.6"], check=True)
    read = lambda d, f: open(f"{d}/{f}").read()
    for f in ("sft.jsonl", "prompts.jsonl", "heldout.jsonl"):
        assert read(a, f) == read(b, f), f"{f} differs between two runs of one seed"
    sft = [json.loads(l) for l in read(a, "sft.jsonl").splitlines()]
    text = lambda messages: messages[-1]["content"]
    held = {text(json.loads(l)["prompt"]) for l in read(a, "heldout.jsonl").splitlines()}
    train = {text(r["prompt"]) for r in sft}
    assert len(sft) == 400 and len(train) == 400 and len(held) == 50
    assert not (train & held), "a held-out prompt is in the training data"
    scores = verify([{"prompt": r["prompt"], "completion": text(r["completion"])} for r in sft])
    assert "null" not in scores
    # Lists with repeats: deduplicated 60% of the time, else wrong at random 25% of the rest.
    repeats = [len(set(t.split()[1:])) < len(t.split()[1:]) and t.startswith("sort")
               for t in (text(r["prompt"]) for r in sft)]
    deduped = [text(r["completion"]) == " ".join(sorted(set(text(r["prompt"]).split()[1:])))
               for r in sft]
    n_rep = sum(repeats)
    share = sum(d for d, rep in zip(deduped, repeats) if rep) / n_rep
    assert n_rep > 60 and 0.45 < share < 0.75, f"{share} of {n_rep} lists with repeats deduplicated"
    others = [s for s, rep in zip(scores, repeats) if not rep]
    wrong = others.count("0") / len(others)
    assert 0.17 < wrong < 0.33, f"share of wrong demonstrations {wrong}, asked for 0.25"
print("demo task: verifier and generator as stated")
