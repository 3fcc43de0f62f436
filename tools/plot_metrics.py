#!/usr/bin/env python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Plots a training run's metrics.jsonl into RUN_DIR/plots/*.png (matplotlib, Agg backend).

Usage: plot_metrics.py RUN_DIR

One figure per group of metrics that the log holds: loss (train and eval), rewards
(margins and accuracies), learning rate, gradient norm, KL, lengths/token counts. A group
with no values in the log is skipped.
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

GROUPS = [
    ("loss", ["loss", "eval_loss"]),
    ("rewards", ["rewards/margins", "rewards/accuracies", "eval_rewards/margins",
                 "eval_rewards/accuracies", "accuracy", "margin", "eval_accuracy", "eval_margin"]),
    ("learning_rate", ["learning_rate"]),
    ("grad_norm", ["grad_norm"]),
    ("kl", ["kl", "objective/kl", "eval_kl"]),
    ("length", ["num_tokens", "mean_length", "completion_length", "length",
                "eval_num_tokens"]),
]


def read_records(path):
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"plot_metrics: {path}:{number}: not JSON: {e}")
            if isinstance(rec, dict) and "step" in rec:
                records.append(rec)
    return records


def series(records, name):
    xs, ys = [], []
    for rec in records:
        v = rec.get(name)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            xs.append(rec["step"])
            ys.append(v)
    return xs, ys


def main(argv):
    if len(argv) != 2:
        print("usage: plot_metrics.py RUN_DIR", file=sys.stderr)
        return 2
    run_dir = argv[1]
    metrics = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(metrics):
        print(f"plot_metrics: {metrics}: no such file", file=sys.stderr)
        return 1
    records = read_records(metrics)
    out_dir = os.path.join(run_dir, "plots")
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for title, names in GROUPS:
        lines = [(n, *series(records, n)) for n in names]
        lines = [line for line in lines if line[1]]
        if not lines:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, xs, ys in lines:
            ax.plot(xs, ys, marker="o" if len(xs) < 20 else None, label=name)
        ax.set_xlabel("step")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = os.path.join(out_dir, title + ".png")
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    print(f"plot_metrics: wrote {len(written)} plots to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
