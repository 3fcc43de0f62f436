#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""The demo's task: short problems with one checkable answer, and their verifier.

Three kinds of problem, each a one-line prompt ending in a newline:

    sort 3 1 2        ->  1 2 3        (3 to 4 digits, ascending)
    reverse abcd      ->  dcba         (3 to 5 letters)
    add 12 7          ->  19           (two numbers below 50)

Generate the data of a run (all from --seed; held-out prompts never appear in training):

    task.py make --out DIR [--seed 0] [--train 600] [--heldout 60] [--noise 0.15]

writes DIR/sft.jsonl ({"prompt", "completion"}: the demonstrations, a --noise share of them
deliberately wrong, so that the SFT model is short of perfect and the later methods have
headroom), DIR/prompts.jsonl ({"prompt"}: training prompts for the online methods and for
sampling preference pairs) and DIR/heldout.jsonl ({"prompt"}: evaluation only).

Score completions (the reward command of `rlhf grpo`, `rlhf bon`, ...):

    task.py verify < lines

reads one JSON object {"prompt", "completion"} per line and writes one line per object: 1
when the completion (surrounding whitespace and a trailing end-of-answer aside) is the
answer, 0 when it is not, null when the prompt is not a problem of this task.
"""
import argparse
import json
import random
import sys


def answer(prompt):
    """The right answer of a prompt, or None when it is not one of the task's problems."""
    words = prompt.split()
    if len(words) < 2:
        return None
    kind, args = words[0], words[1:]
    if kind == "sort" and all(a.isdigit() and len(a) == 1 for a in args):
        return " ".join(sorted(args))
    if kind == "reverse" and len(args) == 1 and args[0].isalpha():
        return args[0][::-1]
    if kind == "add" and len(args) == 2 and all(a.isdigit() for a in args):
        return str(int(args[0]) + int(args[1]))
    return None


def problem(rng):
    """A random prompt (with its trailing newline)."""
    kind = rng.choice(["sort", "reverse", "add"])
    if kind == "sort":
        digits = [str(rng.randrange(10)) for _ in range(rng.randint(3, 4))]
        return "sort " + " ".join(digits) + "\n"
    if kind == "reverse":
        letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 5)))
        return "reverse " + letters + "\n"
    return f"add {rng.randrange(50)} {rng.randrange(50)}\n"


def wrong(right, rng):
    """A plausible wrong answer: the right one with two characters swapped or one changed."""
    chars = list(right)
    if len(chars) >= 2 and rng.random() < 0.5:
        i = rng.randrange(len(chars) - 1)
        if chars[i] != chars[i + 1]:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
            return "".join(chars)
    i = rng.randrange(len(chars))
    pool = "0123456789" if chars[i].isdigit() else "abcdefghijklmnopqrstuvwxyz"
    chars[i] = rng.choice([c for c in pool if c != chars[i]] or ["x"])
    return "".join(chars)


def make(out, seed, n_train, n_heldout, noise):
    rng = random.Random(seed)
    heldout, train = [], []
    seen = set()
    while len(heldout) < n_heldout:
        p = problem(rng)
        if p not in seen:
            seen.add(p)
            heldout.append(p)
    while len(train) < n_train:
        p = problem(rng)
        if p not in seen:  # never a held-out prompt, no duplicates
            seen.add(p)
            train.append(p)
    with open(f"{out}/sft.jsonl", "w") as sft, open(f"{out}/prompts.jsonl", "w") as prompts:
        for p in train:
            right = answer(p)
            completion = wrong(right, rng) if rng.random() < noise else right
            sft.write(json.dumps({"prompt": p, "completion": completion}) + "\n")
            prompts.write(json.dumps({"prompt": p}) + "\n")
    with open(f"{out}/heldout.jsonl", "w") as f:
        for p in heldout:
            f.write(json.dumps({"prompt": p}) + "\n")


def verify(lines, out):
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        prompt = row.get("prompt")
        right = answer(prompt) if isinstance(prompt, str) else None
        if right is None:
            out.write("null\n")
            continue
        given = str(row.get("completion", "")).strip()
        out.write("1\n" if given == right else "0\n")
    out.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make", help="write sft.jsonl, prompts.jsonl and heldout.jsonl")
    mk.add_argument("--out", required=True)
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--train", type=int, default=600)
    mk.add_argument("--heldout", type=int, default=60)
    mk.add_argument("--noise", type=float, default=0.15)
    sub.add_parser("verify", help="score JSON lines from stdin")
    a = ap.parse_args()
    if a.command == "make":
        make(a.out, a.seed, a.train, a.heldout, a.noise)
    else:
        verify(sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()
