#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""The RLHF pipeline end to end on a task with checkable answers, with the `rlhf` tool.

    pipeline.py --rlhf BUILD/rlhf --out DIR [--seed 0] [--quick]

Stages, each one `rlhf` command printed before it runs (copy it to run it on your data):

  1. data      tools/demo/task.py make: demonstrations (some deliberately wrong), training
               prompts, held-out prompts (never trained on)
  2. sft       supervised fine-tuning on the demonstrations
  3. samples   the SFT model answers every training prompt 4 times; the verifier labels
               each answer (rlhf bon with the verifier as its reward keeps every candidate)
  4. pairs     preference pairs (a right answer over a wrong one of the same prompt) and
               unpaired feedback (every answer with its label), in TRL's JSONL formats
  5. reward    a reward model on the pairs; its accuracy on held-out pairs
  6. ppo       PPO from the SFT model against the reward model
  7. dpo, kto  from the SFT model on the same pairs / feedback
  8. grpo      from the SFT model with the verifier as the reward function
  9. bon       best-of-4 under the reward model: the baseline that needs no training

Then every model is evaluated on the held-out prompts (rlhf eval --method policy): the
verifier's accuracy of its greedy answers, the reward model's mean score, the KL to the SFT
model, the mean answer length; with each stage's wall time this is the table printed at the
end and written to DIR/summary.md, beside DIR/summary.json and the plots (DIR/plots/*.png,
when matplotlib is installed). The last line printed is DIR.
"""
import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TASK = os.path.join(HERE, "task.py")


class Pipeline:
    def __init__(self, rlhf, out, seed, quick):
        self.rlhf, self.out, self.seed, self.quick = rlhf, out, seed, quick
        self.times = {}
        self.verifier = f"{shlex.quote(sys.executable)} {shlex.quote(TASK)} verify"
        # A small model: byte vocabulary, 2 layers, width 128, context 64.
        self.model = ["--model", "tiny"]

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def run(self, stage, args, capture=False):
        """Runs `rlhf args...` (printed first), timing it under `stage`."""
        cmd = [self.rlhf] + [str(a) for a in args]
        print("\n$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
        start = time.monotonic()
        res = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None, text=True)
        self.times[stage] = self.times.get(stage, 0.0) + time.monotonic() - start
        if res.returncode != 0:
            sys.exit(f"demo: stage {stage} failed (exit status {res.returncode})")
        return res.stdout

    def steps(self, full, quick):
        return quick if self.quick else full

    # ---- stages -----------------------------------------------------------------------

    def data(self):
        os.makedirs(self.path("data"), exist_ok=True)
        args = [sys.executable, TASK, "make", "--out", self.path("data"), "--seed", self.seed,
                "--train", self.steps(3000, 600), "--heldout", self.steps(200, 60)]
        print("\n$ " + " ".join(shlex.quote(str(a)) for a in args), flush=True)
        subprocess.run([str(a) for a in args], check=True)

    def common(self, name):
        return ["--output-dir", self.path(name), "--seed", self.seed, "--logging-steps", 10,
                "--lr-scheduler-type", "constant"]

    def sft(self):
        self.run("sft", ["sft", "--train-file", self.path("data", "sft.jsonl"), *self.model,
                         *self.common("sft"), "--learning-rate", 1e-3,
                         "--per-device-train-batch-size", 32, "--completion-only-loss",
                         "--max-steps", self.steps(1500, 200), "--eval-fraction", 0.05])

    def samples(self):
        self.run("samples", ["bon", "--model", self.path("sft", "model.safetensors"),
                             "--prompts-file", self.path("data", "prompts.jsonl"), "--n", 4,
                             "--max-new-tokens", 12, "--seed", self.seed,
                             "--reward-command", self.verifier,
                             "--output", self.path("samples.jsonl")])

    def pairs(self):
        """Preference pairs and unpaired feedback from the labelled samples."""
        rng = random.Random(self.seed)
        pairs, unpaired = [], []
        for line in open(self.path("samples.jsonl")):
            row = json.loads(line)
            good = [c for c, s in zip(row["candidates"], row["scores"]) if s == 1]
            bad = [c for c, s in zip(row["candidates"], row["scores"]) if s == 0]
            for c in set(good):
                unpaired.append({"prompt": row["prompt"], "completion": c, "label": True})
            for c in set(bad):
                unpaired.append({"prompt": row["prompt"], "completion": c, "label": False})
            if good and bad:
                pairs.append({"prompt": row["prompt"], "chosen": rng.choice(good),
                              "rejected": rng.choice(bad)})
        rng.shuffle(pairs)
        rng.shuffle(unpaired)
        held = max(1, len(pairs) // 10)
        for name, rows in (("pairs_heldout.jsonl", pairs[:held]), ("pairs.jsonl", pairs[held:]),
                           ("unpaired.jsonl", unpaired)):
            with open(self.path(name), "w") as f:
                for r in rows:
                    f.write(json.dumps(r) + "\n")
        print(f"\ndemo: {len(pairs)} preference pairs ({held} held out for the reward model), "
              f"{len(unpaired)} unpaired examples", flush=True)
        if len(pairs) < 20:
            sys.exit("demo: too few pairs (the SFT model is always right or always wrong)")

    def reward(self):
        self.run("reward", ["reward", "--train-file", self.path("pairs.jsonl"),
                            "--eval-file", self.path("pairs_heldout.jsonl"),
                            "--init-from", self.path("sft", "model.safetensors"),
                            *self.common("rm"), "--learning-rate", 1e-4,
                            "--per-device-train-batch-size", 16,
                            "--max-steps", self.steps(400, 60)])
        out = self.run("reward", ["eval", "--model", self.path("rm", "model.safetensors"),
                                  "--file", self.path("pairs_heldout.jsonl"), "--method", "reward"],
                       capture=True)
        self.rm_accuracy = json.loads(out)["eval_accuracy"]
        print(f"demo: reward model accuracy on held-out pairs {self.rm_accuracy:.3f}")

    def init(self):
        return ["--init-from", self.path("sft", "model.safetensors")]

    def ppo(self):
        self.run("ppo", ["ppo", "--train-file", self.path("data", "prompts.jsonl"), *self.init(),
                         *self.common("ppo"), "--reward-model", self.path("rm", "model.safetensors"),
                         "--learning-rate", 3e-5, "--per-device-train-batch-size", 16,
                         "--response-length", 12, "--temperature", 1.0, "--kl-coef", 0.05,
                         "--max-steps", self.steps(400, 40)])

    def dpo(self):
        self.run("dpo", ["dpo", "--train-file", self.path("pairs.jsonl"), *self.init(),
                         *self.common("dpo"), "--learning-rate", 1e-4, "--beta", 0.1,
                         "--per-device-train-batch-size", 16, "--max-steps", self.steps(300, 40)])

    def kto(self):
        self.run("kto", ["kto", "--train-file", self.path("unpaired.jsonl"), *self.init(),
                         *self.common("kto"), "--learning-rate", 1e-4, "--beta", 0.1,
                         "--per-device-train-batch-size", 16, "--max-steps", self.steps(300, 40)])

    def grpo(self):
        self.run("grpo", ["grpo", "--train-file", self.path("data", "prompts.jsonl"), *self.init(),
                          *self.common("grpo"), "--reward-command", self.verifier,
                          "--learning-rate", 3e-5, "--num-generations", 8,
                          "--per-device-train-batch-size", 32, "--max-completion-length", 12,
                          "--beta", 0.04, "--max-steps", self.steps(200, 20)])

    def evaluate(self, name, model):
        """Held-out accuracy, reward-model score, KL to SFT and length of `model`."""
        base = ["eval", "--method", "policy", "--model", model,
                "--file", self.path("data", "heldout.jsonl"), "--max-new-tokens", 12,
                "--seed", self.seed]
        acc = json.loads(self.run("eval", base + [
            "--reference", self.path("sft", "model.safetensors"),
            "--reward-command", self.verifier,
            "--samples", self.path(f"heldout_{name}.jsonl")], capture=True))
        rm = json.loads(self.run("eval", base + [
            "--reward-model", self.path("rm", "model.safetensors")], capture=True))
        return {"accuracy": acc["eval_reward"], "reward": rm["eval_reward"],
                "kl": acc.get("eval_kl"), "length": acc["eval_mean_length"]}

    def bon(self):
        """Best-of-4 under the reward model on the held-out prompts, scored by the verifier."""
        self.run("bon", ["bon", "--model", self.path("sft", "model.safetensors"),
                         "--prompts-file", self.path("data", "heldout.jsonl"), "--n", 4,
                         "--max-new-tokens", 12, "--seed", self.seed,
                         "--reward-model", self.path("rm", "model.safetensors"),
                         "--output", self.path("heldout_bon.jsonl")])
        rows = [json.loads(l) for l in open(self.path("heldout_bon.jsonl"))]
        lines = "".join(json.dumps({"prompt": r["prompt"], "completion": r["completion"]}) + "\n"
                        for r in rows)
        verdicts = subprocess.run([sys.executable, TASK, "verify"], input=lines,
                                  capture_output=True, text=True, check=True).stdout.split()
        right = sum(v == "1" for v in verdicts)
        return {"accuracy": right / len(rows),
                "reward": sum(r["score"] for r in rows) / len(rows),
                "kl": None,
                "length": None}

    # ---- report -----------------------------------------------------------------------

    def report(self, results):
        cols = ["accuracy", "reward", "kl", "length"]
        lines = ["| method | held-out accuracy (greedy) | reward-model score | KL to SFT | "
                 "answer length (tokens) | wall time of the stage (s) |",
                 "|---|---|---|---|---|---|"]
        for name, r in results.items():
            cells = [("n/a" if r[c] is None else f"{r[c]:.3f}") for c in cols]
            t = self.times.get(name)
            lines.append(f"| {name} | " + " | ".join(cells) +
                         f" | {'n/a' if t is None else f'{t:.0f}'} |")
        lines.append("")
        lines.append(f"Reward model: accuracy {self.rm_accuracy:.3f} on held-out preference "
                     f"pairs ({self.times.get('reward', 0):.0f} s). Best-of-4 samples the SFT "
                     "model 4 times per prompt and keeps the reward model's favourite "
                     "(no training). KL: mean over held-out prompts of sum log pi - log "
                     "pi_sft over one sampled answer.")
        text = "\n".join(lines) + "\n"
        with open(self.path("summary.md"), "w") as f:
            f.write(text)
        with open(self.path("summary.json"), "w") as f:
            json.dump({"results": results, "reward_model_accuracy": self.rm_accuracy,
                       "stage_seconds": self.times}, f, indent=2)
        print("\n" + text)
        self.plots(results)

    def plots(self, results):
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("demo: matplotlib not found: no plots")
            return
        for run in ("sft", "rm", "ppo", "dpo", "kto", "grpo"):
            subprocess.run([self.rlhf, "plot", self.path(run)], stdout=subprocess.DEVNULL)
        os.makedirs(self.path("plots"), exist_ok=True)
        names = list(results)
        fig, axes = plt.subplots(1, 3, figsize=(13, 4))
        for ax, key, title in zip(axes, ("accuracy", "reward", "kl"),
                                  ("held-out accuracy (greedy)", "reward-model score",
                                   "KL to the SFT model")):
            vals = [results[n][key] if results[n][key] is not None else 0.0 for n in names]
            ax.bar(names, vals, color="#4878a8")
            ax.set_title(title)
            ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        fig.savefig(self.path("plots", "summary.png"), dpi=120)
        plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rlhf", required=True, help="the rlhf binary")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="few steps: checks the pipeline runs")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    p = Pipeline(os.path.abspath(a.rlhf), os.path.abspath(a.out), a.seed, a.quick)
    p.data()
    p.sft()
    p.samples()
    p.pairs()
    p.reward()
    p.ppo()
    p.dpo()
    p.kto()
    p.grpo()
    results = {"sft": p.evaluate("sft", p.path("sft", "model.safetensors"))}
    results["bon"] = p.bon()
    for name in ("ppo", "dpo", "kto", "grpo"):
        results[name] = p.evaluate(name, p.path(name, "model.safetensors"))
    p.report(results)
    print(p.out)


if __name__ == "__main__":
    main()
