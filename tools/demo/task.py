#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""The demo's task: short problems with one checkable answer, and their verifier.

Two kinds of problem, each a one-line user message:

    sort 3 1 3 2      ->  1 2 3 3      (3 to 5 digits, ascending, repeats kept)
    reverse abcd      ->  dcba         (3 to 6 letters)

Generate the data of a run (all from --seed; held-out prompts never appear in training):

    task.py make --out DIR [--seed 0] [--train 600] [--heldout 60] [--noise 0.1]
                 [--dedupe 0.6]

writes, in TRL's conversational formats (the trainers render them through the chat
template):

  DIR/sft.jsonl       {"prompt": [user message], "completion": [assistant message]}: the
                      demonstrations. They are imperfect the way human demonstrations are:
                      a --noise share of them is wrong at random (two characters swapped or
                      one changed), and the demonstrators make one systematic mistake: on
                      digit lists with a repeated digit they drop the repeats a --dedupe
                      share of the time ("sort 3 1 3" -> "1 3"). An SFT model imitates the
                      majority, so it learns the mistake; a verifier (or a comparison) sees
                      it at once. That gap is what the preference and RL methods can close.
  DIR/prompts.jsonl   {"prompt": [user message]}: training prompts for the online methods
                      and for sampling preference pairs
  DIR/heldout.jsonl   {"prompt": [user message]}: evaluation only

Score completions (the reward command of `rlhf grpo`, `rlhf bon`, ...):

    task.py verify < lines

reads one JSON object {"prompt", "completion"} per line (the prompt as text or as a list of
messages, whose last user message is the problem) and writes one line per object: 1 when
the completion (surrounding whitespace aside) is the answer, 0 when it is not, null when
the prompt is not a problem of this task.
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
    return None


def problem(rng):
    """A random problem as text."""
    if rng.random() < 0.5:
        digits = [str(rng.randrange(10)) for _ in range(rng.randint(3, 5))]
        return "sort " + " ".join(digits)
    letters = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 6)))
    return "reverse " + letters


def demonstration(prompt, rng, noise, dedupe):
    """What a (fallible) demonstrator answers: the right answer, a random slip with
    probability `noise`, or, on a digit list with repeats, the list without its repeats with
    probability `dedupe` (the systematic mistake)."""
    right = answer(prompt)
    words = prompt.split()
    if words[0] == "sort" and len(set(words[1:])) < len(words[1:]) and rng.random() < dedupe:
        return " ".join(sorted(set(words[1:])))
    return wrong(right, rng) if rng.random() < noise else right


def user(text):
    return [{"role": "user", "content": text}]


def problem_text(prompt):
    """The problem of a prompt given as text or as a list of chat messages."""
    if isinstance(prompt, list):
        users = [m.get("content") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        prompt = users[-1] if users else None
    return prompt if isinstance(prompt, str) else None


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


def make(out, seed, n_train, n_heldout, noise, dedupe):
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
            completion = [{"role": "assistant", "content": demonstration(p, rng, noise, dedupe)}]
            sft.write(json.dumps({"prompt": user(p), "completion": completion}) + "\n")
            prompts.write(json.dumps({"prompt": user(p)}) + "\n")
    with open(f"{out}/heldout.jsonl", "w") as f:
        for p in heldout:
            f.write(json.dumps({"prompt": user(p)}) + "\n")


def verify(lines, out):
    for line in lines:
        if not line.strip():
            continue
        row = json.loads(line)
        prompt = problem_text(row.get("prompt"))
        right = answer(prompt) if prompt is not None else None
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
    mk.add_argument("--noise", type=float, default=0.1)
    mk.add_argument("--dedupe", type=float, default=0.6)
    sub.add_parser("verify", help="score JSON lines from stdin")
    a = ap.parse_args()
    if a.command == "make":
        make(a.out, a.seed, a.train, a.heldout, a.noise, a.dedupe)
    else:
        verify(sys.stdin, sys.stdout)


if __name__ == "__main__":
    main()
