#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""The RLHF pipeline end to end on a task with checkable answers, with the `rlhf` tool.

    pipeline.py --rlhf BUILD/rlhf --out DIR [--seed 0] [--quick] [--keep]

Stages, each one `rlhf` command printed before it runs (copy it to run it on your data):

  1. data      tools/demo/task.py make: demonstrations (imperfect: some wrong at random,
               and one systematic mistake), training prompts, held-out prompts (never
               trained on), all as chat messages
  2. sft       supervised fine-tuning on the demonstrations
  3. samples   the SFT model answers every training prompt 8 times; the verifier labels each
               answer (rlhf bon with the verifier as its reward keeps every candidate)
  4. pairs     preference pairs (a right answer over a wrong one of the same prompt), and
               the same pairs unpaired for KTO, in TRL's JSONL formats
  5. reward    a reward model on the pairs; its accuracy on held-out pairs
  6. ppo       PPO from the SFT model against the reward model
  7. dpo, kto  from the SFT model on the same pairs (DPO with an NLL term on the chosen
               answers, TRL's loss_type ["sigmoid", "sft"]; KTO on the pairs unpaired)
  8. grpo      from the SFT model with the verifier as the reward function
  9. bon       best-of-8 (temperature 0.5) under the reward model: the baseline that
               needs no training

Then every model is evaluated on the held-out prompts (rlhf eval --method policy): the
verifier's accuracy of its greedy answers (overall and per kind of problem), the reward
model's mean score, the KL to the SFT model, the mean answer length; with each stage's wall
time this is the table printed at the end and written to DIR/summary.md, beside
DIR/summary.json and the plots (DIR/plots/*.png and each run's DIR/RUN/plots/*.png, when
matplotlib is installed). The last line printed is DIR.

--keep reuses the models a previous run left in DIR (a stage whose model.safetensors
exists is not run again): rerun after a failure or after changing a later stage.
"""
import argparse
import json
import math
import os
import random
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TASK = os.path.join(HERE, "task.py")
sys.path.insert(0, HERE)
import task  # noqa: E402  (the verifier, for per-kind accuracies)
from stages import Stages, pyplot  # noqa: E402

BON_N = 8  # best-of-N's samples per prompt (and the pairs' samples per training prompt)
MAX_NEW_TOKENS = 16  # the longest answer, "0 1 2 3 4 5", and its end-of-sequence fit
METHODS = ("sft", "bon", "ppo", "dpo", "kto", "grpo")
RUNS = ("sft", "rm", "ppo", "dpo", "kto", "grpo")  # the training runs, each a folder of DIR


class Pipeline(Stages):
    def __init__(self, rlhf, out, seed, quick, keep):
        super().__init__(rlhf, out, seed, quick)
        self.keep = keep
        self.verifier = f"{shlex.quote(sys.executable)} {shlex.quote(TASK)} verify"
        # A small model: byte vocabulary, 2 layers, width 128, context 64.
        self.model = ["--model", "tiny"]

    def train(self, stage, run, args):
        """A training stage writing DIR/run; skipped under --keep when its model exists."""
        if self.keep and os.path.exists(self.path(run, "model.safetensors")):
            print(f"\ndemo: {stage}: kept {self.path(run)}", flush=True)
            return
        print(f"\n=== {stage}", flush=True)
        self.run(stage, args)

    # ---- stages -----------------------------------------------------------------------

    def data(self):
        os.makedirs(self.path("data"), exist_ok=True)
        args = [sys.executable, TASK, "make", "--out", self.path("data"), "--seed", self.seed,
                "--train", self.steps(3000, 300), "--heldout", self.steps(500, 60)]
        print("\n=== data\n$ " + " ".join(shlex.quote(str(a)) for a in args), flush=True)
        subprocess.run([str(a) for a in args], check=True)

    def common(self, name):
        return ["--output-dir", self.path(name), "--seed", self.seed,
                "--logging-steps", self.steps(10, 5), "--lr-scheduler-type", "constant"]

    def sft(self):
        self.train("sft", "sft", [
            "sft", "--train-file", self.path("data", "sft.jsonl"), *self.model,
            *self.common("sft"), "--learning-rate", 1e-3, "--per-device-train-batch-size", 32,
            "--completion-only-loss", "--max-steps", self.steps(2000, 100),
            "--eval-fraction", 0.05])

    def samples(self):
        if self.keep and os.path.exists(self.path("samples.jsonl")):
            return
        print("\n=== samples", flush=True)
        self.run("samples", ["bon", "--model", self.path("sft", "model.safetensors"),
                             "--prompts-file", self.path("data", "prompts.jsonl"), "--n", BON_N,
                             "--max-new-tokens", MAX_NEW_TOKENS, "--seed", self.seed,
                             "--batch-size", 32, "--reward-command", self.verifier,
                             "--output", self.path("samples.jsonl")])

    def pairs(self):
        """Preference pairs from the labelled samples: per prompt, up to two pairs of a right
        answer over a wrong one; and the same pairs unpaired for KTO (each chosen answer
        desirable, each rejected one undesirable, as TRL unpairs preference data)."""
        rng = random.Random(self.seed)
        pairs, unpaired = [], []
        for line in open(self.path("samples.jsonl")):
            row = json.loads(line)
            # A conversational prompt takes answers as assistant messages (TRL's format).
            reply = ((lambda text: [{"role": "assistant", "content": text}])
                     if isinstance(row["prompt"], list) else (lambda text: text))
            good = sorted({c for c, s in zip(row["candidates"], row["scores"]) if s == 1})
            bad = sorted({c for c, s in zip(row["candidates"], row["scores"]) if s == 0})
            combos = [(g, b) for g in good for b in bad]
            for g, b in rng.sample(combos, min(2, len(combos))):
                pairs.append({"prompt": row["prompt"], "chosen": reply(g), "rejected": reply(b)})
        rng.shuffle(pairs)
        held = max(1, len(pairs) // 10)
        for p in pairs[held:]:
            unpaired.append({"prompt": p["prompt"], "completion": p["chosen"], "label": True})
            unpaired.append({"prompt": p["prompt"], "completion": p["rejected"], "label": False})
        rng.shuffle(unpaired)
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
        self.train("reward", "rm", [
            "reward", "--train-file", self.path("pairs.jsonl"),
            "--eval-file", self.path("pairs_heldout.jsonl"),
            "--init-from", self.path("sft", "model.safetensors"), *self.common("rm"),
            "--learning-rate", 1e-4, "--per-device-train-batch-size", 16,
            "--max-steps", self.steps(500, 30)])
        out = self.run("reward", ["eval", "--model", self.path("rm", "model.safetensors"),
                                  "--file", self.path("pairs_heldout.jsonl"), "--method", "reward"],
                       capture=True)
        self.rm_accuracy = json.loads(out)["eval_accuracy"]
        print(f"demo: reward model accuracy on held-out pairs {self.rm_accuracy:.3f}")

    def init(self):
        return ["--init-from", self.path("sft", "model.safetensors")]

    def ppo(self):
        self.train("ppo", "ppo", [
            "ppo", "--train-file", self.path("data", "prompts.jsonl"), *self.init(),
            *self.common("ppo"), "--reward-model", self.path("rm", "model.safetensors"),
            "--learning-rate", 3e-5, "--per-device-train-batch-size", 64,
            "--num-mini-batches", 4, "--response-length", MAX_NEW_TOKENS,
            "--temperature", 1.0, "--kl-coef", 0.05, "--max-steps", self.steps(240, 16)])

    def dpo(self):
        self.train("dpo", "dpo", [
            "dpo", "--train-file", self.path("pairs.jsonl"), *self.init(), *self.common("dpo"),
            "--loss-type", "sigmoid,sft", "--learning-rate", 5e-5, "--beta", 0.1,
            "--per-device-train-batch-size", 16, "--max-steps", self.steps(300, 20)])

    def kto(self):
        self.train("kto", "kto", [
            "kto", "--train-file", self.path("unpaired.jsonl"), *self.init(), *self.common("kto"),
            "--learning-rate", 3e-5, "--beta", 0.5, "--per-device-train-batch-size", 16,
            "--max-steps", self.steps(300, 20)])

    def grpo(self):
        self.train("grpo", "grpo", [
            "grpo", "--train-file", self.path("data", "prompts.jsonl"), *self.init(),
            *self.common("grpo"), "--reward-command", self.verifier, "--learning-rate", 5e-5,
            "--num-generations", 8, "--per-device-train-batch-size", 32,
            "--max-completion-length", MAX_NEW_TOKENS, "--beta", 0.04,
            "--max-steps", self.steps(200, 10)])

    # ---- evaluation -------------------------------------------------------------------

    @staticmethod
    def kind_accuracy(rows):
        """Accuracy per kind of problem; digit lists with a repeated digit apart (the
        demonstrations' systematic mistake)."""
        right, total = {}, {}
        for r in rows:
            problem = task.problem_text(r["prompt"])
            words = problem.split()
            kind = words[0]
            if kind == "sort" and len(set(words[1:])) < len(words[1:]):
                kind = "sort_repeats"
            total[kind] = total.get(kind, 0) + 1
            right[kind] = right.get(kind, 0) + (r["completion"].strip() == task.answer(problem))
        return {k: right[k] / total[k] for k in sorted(total)}

    def evaluate(self, name, model):
        """Held-out accuracy, reward-model score, KL to SFT and length of `model`."""
        print(f"\n=== eval {name}", flush=True)
        base = ["eval", "--method", "policy", "--model", model,
                "--file", self.path("data", "heldout.jsonl"), "--max-new-tokens", MAX_NEW_TOKENS,
                "--seed", self.seed, "--batch-size", 64]
        samples = self.path(f"heldout_{name}.jsonl")
        acc = json.loads(self.run("eval", base + [
            "--reference", self.path("sft", "model.safetensors"),
            "--reward-command", self.verifier, "--samples", samples], capture=True))
        rm = json.loads(self.run("eval", base + [
            "--reward-model", self.path("rm", "model.safetensors")], capture=True))
        rows = [json.loads(line) for line in open(samples)]
        return {"accuracy": acc["eval_reward"], "reward": rm["eval_reward"],
                "kl": acc.get("eval_kl"), "length": acc["eval_mean_length"],
                "kinds": self.kind_accuracy(rows)}

    def bon(self):
        """Best-of-8 under the reward model on the held-out prompts, scored by the verifier."""
        print("\n=== bon", flush=True)
        self.run("bon", ["bon", "--model", self.path("sft", "model.safetensors"),
                         "--prompts-file", self.path("data", "heldout.jsonl"), "--n", BON_N,
                         "--temperature", 0.5,
                         "--max-new-tokens", MAX_NEW_TOKENS, "--seed", self.seed,
                         "--batch-size", 32, "--reward-model", self.path("rm", "model.safetensors"),
                         "--output", self.path("heldout_bon.jsonl")])
        rows = [json.loads(line) for line in open(self.path("heldout_bon.jsonl"))]
        lines = "".join(json.dumps({"prompt": r["prompt"], "completion": r["completion"]}) + "\n"
                        for r in rows)
        verdicts = subprocess.run([sys.executable, TASK, "verify"], input=lines,
                                  capture_output=True, text=True, check=True).stdout.split()
        right = sum(v == "1" for v in verdicts)
        # Best-of-n is never further than log n - (n - 1)/n nats from the model it samples
        # (Beirami et al. 2024, "Theoretical guarantees on the best-of-n alignment policy").
        n = BON_N
        return {"accuracy": right / len(rows),
                "reward": sum(r["score"] for r in rows) / len(rows), "kl": None,
                "kl_bound": math.log(n) - (n - 1) / n, "length": None,
                "kinds": self.kind_accuracy(rows)}

    def monitors(self, run):
        """The failure monitors that fired during an online run: name -> logging steps."""
        fired = {}
        path = self.path(run, "metrics.jsonl")
        if not os.path.exists(path):
            return fired
        for line in open(path):
            row = json.loads(line)
            for key, value in row.items():
                if key.startswith("monitor/") and value:
                    fired.setdefault(key[len("monitor/"):], []).append(row.get("step"))
        return fired

    # ---- report -----------------------------------------------------------------------

    def report(self, results):
        kinds = sorted({k for r in results.values() for k in r["kinds"]})
        cols = ["accuracy", "reward", "kl", "length"]
        lines = ["| method | held-out accuracy (greedy) | " + " | ".join(kinds) +
                 " | reward-model score | KL to SFT | answer length (tokens) | "
                 "wall time of the stage (s) |",
                 "|---" * (len(kinds) + 6) + "|"]
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        for name, r in results.items():
            t = self.times.get(name)
            cells = [fmt(r["accuracy"])] + [fmt(r["kinds"].get(k)) for k in kinds] + \
                    [fmt(r[c]) for c in cols[1:]] + ["n/a" if t is None else f"{t:.0f}"]
            if r.get("kl_bound") is not None:
                cells[len(kinds) + 2] = f"≤ {r['kl_bound']:.3f}"
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        total = sum(self.times.values())
        lines.append("")
        for run in ("ppo", "grpo"):
            fired = results[run].get("monitors", {})
            lines.append(f"Monitors during {run}: " + (", ".join(
                f"{k} at steps {', '.join(map(str, v[:5]))}{' ...' if len(v) > 5 else ''}"
                for k, v in fired.items()) if fired else "none fired") + ".")
        lines.append("")
        lines.append(f"Reward model: accuracy {self.rm_accuracy:.3f} on held-out preference "
                     f"pairs ({self.times.get('reward', 0):.0f} s). Sampling the preference "
                     f"data: {self.times.get('samples', 0):.0f} s; evaluation: "
                     f"{self.times.get('eval', 0):.0f} s; all stages: {total:.0f} s. "
                     "Best-of-8 samples the SFT model 8 times per prompt (temperature 0.5) and "
                     "keeps the reward "
                     "model's favourite (no training); its KL is the bound log 8 - 7/8. KL: mean over held-out prompts of sum "
                     "log pi - log pi_sft over one sampled answer. sort_repeats: digit lists "
                     "with a repeated digit, where the demonstrations drop the repeats.")
        self.write_summary("\n".join(lines) + "\n",
                           {"seed": self.seed, "results": results,
                            "reward_model_accuracy": self.rm_accuracy,
                            "stage_seconds": self.times})
        self.plots(results)

    def plots(self, results):
        plt = pyplot()
        if plt is None:
            return
        for run in RUNS:
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
    ap.add_argument("--keep", action="store_true", help="reuse the models already in --out")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    p = Pipeline(os.path.abspath(a.rlhf), os.path.abspath(a.out), a.seed, a.quick, a.keep)
    if not (a.keep and os.path.exists(p.path("data", "heldout.jsonl"))):
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
    for name in METHODS[2:]:
        results[name] = p.evaluate(name, p.path(name, "model.safetensors"))
    for name in ("ppo", "grpo"):
        results[name]["monitors"] = p.monitors(name)
    p.report(results)
    print(p.out)


if __name__ == "__main__":
    main()
