#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Constitutional AI end to end on the bundled tiny transformer, with the `rlhf` tool.

    cai.py --rlhf BUILD/rlhf --out DIR [--seed 0] [--quick]

The constitution is share/rlhf/constitutions/checkable.json: two principles a program can
check, so that every number below is measured, not judged:

    end_with_period   the answer ends with a full stop
    lowercase         the answer holds no capital letter

The task is tools/demo/task.py's (sort a digit list, reverse a word). An answer is correct
when, once a final full stop is dropped and capitals are made small, it is the task's answer:
correctness and the principles never contradict each other.

Stages, each one `rlhf` command printed before it runs:

  1. data      prompts (training and held-out, never both) and the SFT data, all as chat
               messages: answers in which the demonstrators break each principle half of the
               time (no final full stop; a capital first letter on reversed words), worked
               critiques and revisions in the loop's template format (the critique names the
               problem or says "ok"; the revision fixes exactly that principle), and worked
               judgments: two answers that differ on a principle, and the letter of the one
               that follows it
  2. sft       the tiny model learns to answer, to critique, to revise and to judge
  3. revise    `rlhf cai revise`: the SFT model answers each training prompt, critiques its
               answer against a principle drawn from the constitution and revises it
               (rows.jsonl); --pairs keeps (revision, first answer) pairs that differ
  4. judge     `rlhf cai judge`: four sampled answers per training prompt, every pair judged
               by the SFT model itself (RLAIF): asked in both orders which answer better
               follows a principle drawn at random, its probabilities of "A" and "B" give a
               soft label; pairs it is unsure of (soft label below 0.7) are left out. Its
               agreement with the checks is measured on the pairs they decide
  5. dpo       DPO from the SFT model on both sets of pairs, trained on the soft labels
               (--use-soft-labels; the revision pairs count as certain, 1.0), with an NLL term
               of weight 2 on the chosen answers (TRL's loss_type ["sigmoid", "sft"],
               loss_weights [1, 2]: neither judge looks at correctness, and without the NLL
               term the task accuracy falls); dpo_revise: the same on the revision pairs alone

Then the SFT and DPO models answer the held-out prompts: greedily (task accuracy, and the
greedy violation rate) and sampled at temperature 1 (four answers per prompt: the
violation rate per principle and overall). The table is printed and written to
DIR/summary.md, beside DIR/summary.json and DIR/plots/summary.png (with matplotlib); the
last line printed is DIR.
"""
import argparse
import json
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import task  # noqa: E402  (the problems and their answers)
from stages import Stages, pyplot  # noqa: E402

CONSTITUTION = os.path.join(ROOT, "share", "rlhf", "constitutions", "checkable.json")
MAX_NEW_TOKENS = 16  # the longest answer, "0 1 2 3 4 5.", and its end-of-sequence fit
SAMPLES = 4  # sampled answers per held-out prompt

# The loop's templates, short enough for the tiny model's context: the principle is named
# (its requests are for larger models; the rows record which principle was drawn). The
# revision prompt repeats the request, so the model can answer again while fixing the answer
# instead of copying it letter by letter.
TEMPLATES = {
    "critique": "{response}\n{principle}?",
    "revision": "{prompt}\n{response}\n{principle}? {critique}\nfix:",
}
# The AI judge's prompt (cai judge); it answers with the letter of the better response.
JUDGE_TEMPLATES = {"judge": "A: {response_a}\nB: {response_b}\n{principle}?"}
MIN_CONFIDENCE = 0.2  # judged pairs with a soft label below 0.5 + this are left out
# The summary table's columns (summary.json keys, headings); results.py shows the same.
COLUMNS = [("violation_end_with_period", "end_with_period violated (T=1)"),
           ("violation_lowercase", "lowercase violated (T=1)"),
           ("violation_any", "any principle violated (T=1)"),
           ("greedy_violation_any", "any violated (greedy)"),
           ("accuracy", "task accuracy (greedy)"),
           ("sampled_accuracy", "task accuracy (T=1)")]
CRITIQUE_OK = "ok"
CRITIQUES = {"end_with_period": "no period", "lowercase": "capitals"}


# ---- the principles, checked -------------------------------------------------------------

def ends_with_period(text):
    return text.rstrip().endswith(".")


def lowercase(text):
    return not any("A" <= c <= "Z" for c in text)


CHECKS = {"end_with_period": ends_with_period, "lowercase": lowercase}


def fix(text, principle):
    """`text` made to follow `principle`, nothing else changed."""
    if principle == "end_with_period":
        return text if ends_with_period(text) else text.rstrip() + "."
    return text.lower()


def violate(text, principle):
    """`text` made to break `principle`, nothing else changed; None where it cannot (a
    digit list has no letter to capitalise)."""
    if principle == "end_with_period":
        return text.rstrip().rstrip(".")
    return text[0].upper() + text[1:] if text[:1].isalpha() else None


def correct(prompt, text):
    """The answer is right once a final full stop is dropped and capitals made small."""
    t = text.strip()
    if t.endswith("."):
        t = t[:-1]
    return t.lower() == task.answer(prompt)


# ---- the data --------------------------------------------------------------------------

def styled(prompt, rng, p_violate):
    """A demonstrator's answer: right, but without a final full stop with probability
    p_violate, and with capital first letters (reverse problems) with probability p_violate."""
    text = task.answer(prompt)
    if prompt.startswith("reverse") and rng.random() < p_violate:
        text = text[0].upper() + text[1:]
    if rng.random() >= p_violate:
        text += "."
    return text


def critique_of(text, principle):
    return CRITIQUE_OK if CHECKS[principle](text) else CRITIQUES[principle]


def fill(template, **values):
    out = template
    for k, v in values.items():
        out = out.replace("{" + k + "}", v)
    return out


def chat(user, assistant=None):
    row = {"prompt": [{"role": "user", "content": user}]}
    if assistant is not None:
        row["completion"] = [{"role": "assistant", "content": assistant}]
    return row


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Demo(Stages):
    def __init__(self, rlhf, out, seed, quick):
        super().__init__(rlhf, out, seed, quick)
        # The tiny preset (byte vocabulary, 2 layers, width 128) with room for the revision
        # prompts: 96 positions.
        self.model = ["--model", "tiny", "--max-seq-len", 96]

    # ---- stages ------------------------------------------------------------------------

    def data(self):
        print("\n=== data", flush=True)
        start = time.monotonic()
        os.makedirs(self.path("data"), exist_ok=True)
        rng = random.Random(self.seed)
        n_train, n_heldout = self.steps(1500, 120), self.steps(200, 40)
        seen, heldout, train = set(), [], []
        while len(heldout) < n_heldout or len(train) < n_train:
            p = task.problem(rng)
            if p in seen:
                continue
            seen.add(p)
            (heldout if len(heldout) < n_heldout else train).append(p)
        principles = [p["name"] for p in json.load(open(CONSTITUTION))["principles"]]
        assert sorted(principles) == sorted(CHECKS), principles
        sft = []
        for p in train:
            # The answer, as the demonstrators write it.
            sft.append(chat(p, styled(p, rng, 0.5)))
            # A worked critique and revision of another answer, for a random principle.
            principle = rng.choice(principles)
            answer = styled(p, rng, 0.5)
            crit = critique_of(answer, principle)
            sft.append(chat(fill(TEMPLATES["critique"], response=answer, principle=principle),
                            crit))
            sft.append(chat(fill(TEMPLATES["revision"], prompt=p, response=answer,
                                 principle=principle, critique=crit), fix(answer, principle)))
            # A worked judgment: two answers that differ on a principle they can differ on.
            principle = rng.choice([q for q in principles
                                    if violate(task.answer(p), q) is not None])
            good = fix(styled(p, rng, 0.5), principle)
            bad = violate(styled(p, rng, 0.5), principle)
            first_good = rng.random() < 0.5
            a, b = (good, bad) if first_good else (bad, good)
            sft.append(chat(fill(JUDGE_TEMPLATES["judge"], response_a=a, response_b=b,
                                 principle=principle), "A" if first_good else "B"))
        rng.shuffle(sft)
        write_jsonl(self.path("data", "sft.jsonl"), sft)
        write_jsonl(self.path("data", "prompts.jsonl"), [chat(p) for p in train])
        write_jsonl(self.path("data", "heldout.jsonl"), [chat(p) for p in heldout])
        with open(self.path("data", "templates.json"), "w") as f:
            json.dump(TEMPLATES, f, indent=2)
        with open(self.path("data", "judge_templates.json"), "w") as f:
            json.dump(JUDGE_TEMPLATES, f, indent=2)
        self.times["data"] = time.monotonic() - start
        print(f"demo: {len(train)} training prompts, {len(heldout)} held-out prompts, "
              f"{len(sft)} SFT examples (answers, critiques, revisions, judgments)", flush=True)

    def common(self, name):
        return ["--output-dir", self.path(name), "--seed", self.seed, "--no-plot",
                "--logging-steps", self.steps(20, 5), "--lr-scheduler-type", "constant"]

    def sft(self):
        print("\n=== sft", flush=True)
        self.run("sft", [
            "sft", "--train-file", self.path("data", "sft.jsonl"), *self.model,
            *self.common("sft"), "--learning-rate", 2e-3, "--per-device-train-batch-size", 32,
            "--completion-only-loss", "--max-steps", self.steps(2000, 60)])

    def revise(self):
        print("\n=== revise", flush=True)
        self.run("revise", [
            "cai", "revise", "--model", self.path("sft"),
            "--prompts-file", self.path("data", "prompts.jsonl"),
            "--constitution", CONSTITUTION, "--templates", self.path("data", "templates.json"),
            "--output", self.path("rows.jsonl"), "--pairs", self.path("revision_pairs.jsonl"),
            "--max-new-tokens", MAX_NEW_TOKENS, "--temperature", 1.0, "--batch-size", 64,
            "--seed", self.seed])

    def revision_quality(self):
        """How well the SFT model critiqued and revised (known here: the checks are exact)."""
        rows = read_jsonl(self.path("rows.jsonl"))
        n = len(rows)
        q = {"rows": n,
             "critique_right": sum(r["critic_response"] == critique_of(r["init_response"],
                                                                       r["principle"])
                                   for r in rows) / n,
             "first_answer_breaks_principle": sum(not CHECKS[r["principle"]](r["init_response"])
                                                  for r in rows) / n,
             "revision_breaks_principle": sum(not CHECKS[r["principle"]](r["revision_response"])
                                              for r in rows) / n,
             "first_answer_correct": sum(correct(r["prompt"], r["init_response"])
                                         for r in rows) / n,
             "revision_correct": sum(correct(r["prompt"], r["revision_response"])
                                     for r in rows) / n}
        self.quality = q
        print("demo: critique -> revision rows: " + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in q.items()),
            flush=True)

    def judge(self):
        print("\n=== judge", flush=True)
        self.run("judge", [
            "cai", "judge", "--model", self.path("sft"),
            "--templates", self.path("data", "judge_templates.json"),
            "--prompts-file", self.path("data", "prompts.jsonl"),
            "--constitution", CONSTITUTION, "--output", self.path("judged_pairs.jsonl"),
            "--n", 4, "--max-new-tokens", MAX_NEW_TOKENS, "--temperature", 1.0,
            "--min-confidence", MIN_CONFIDENCE, "--batch-size", 64, "--seed", self.seed])

    def judge_quality(self):
        """How often the model judge agreed with the checks, on the judged pairs that the
        drawn principle (named in judge_reason) tells apart."""
        rows = read_jsonl(self.path("judged_pairs.jsonl"))
        decided = agree = 0
        for r in rows:
            principle = r["judge_reason"].split(";")[0].removeprefix("principle ").strip()
            chosen = CHECKS[principle](r["chosen"][0]["content"])
            rejected = CHECKS[principle](r["rejected"][0]["content"])
            if chosen != rejected:
                decided += 1
                agree += chosen
        self.judge_stats = {
            "rows": len(rows),
            "decided_by_checks": decided,
            "agreement_with_checks": agree / decided if decided else 0.0,
            "mean_soft_label": sum(r["soft_label"] for r in rows) / len(rows) if rows else 0.0}
        print("demo: AI-judged pairs: " + ", ".join(
            f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
            for k, v in self.judge_stats.items()), flush=True)

    def dpo(self):
        """DPO on both kinds of pairs (dpo), and on the revision pairs alone (dpo_revise):
        what the critique -> revision loop buys by itself."""
        pairs = read_jsonl(self.path("revision_pairs.jsonl"))
        judged = read_jsonl(self.path("judged_pairs.jsonl"))
        self.pair_counts = {"revision": len(pairs), "judged": len(judged)}
        # The revision pairs carry no judge's probability: they count as certain.
        rows = [{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"],
                 "soft_label": r.get("soft_label", 1.0)} for r in pairs + judged]
        random.Random(self.seed).shuffle(rows)
        write_jsonl(self.path("pairs.jsonl"), rows)
        write_jsonl(self.path("revision_pairs_labelled.jsonl"),
                    [dict(r, soft_label=1.0) for r in pairs])
        print(f"\ndemo: {len(pairs)} revision pairs + {len(judged)} AI-judged pairs",
              flush=True)
        if len(pairs) < 8:
            sys.exit("demo: too few preference pairs")
        for run, data in (("dpo", "pairs.jsonl"),
                          ("dpo_revise", "revision_pairs_labelled.jsonl")):
            print(f"\n=== {run}", flush=True)
            self.run(run, [
                "dpo", "--train-file", self.path(data),
                "--init-from", self.path("sft", "model.safetensors"), *self.common(run),
                "--loss-type", "sigmoid,sft", "--loss-weights", "1,2", "--use-soft-labels",
                "--learning-rate", 1e-4, "--beta", 0.1,
                "--per-device-train-batch-size", 32, "--max-steps", self.steps(120, 10)])

    # ---- evaluation ------------------------------------------------------------------

    def answers(self, name, model, temperature, seed):
        out = self.run("eval", [
            "generate", "--model", model, "--prompts-file", self.path("data", "heldout.jsonl"),
            "--max-new-tokens", MAX_NEW_TOKENS, "--temperature", temperature, "--seed", seed,
            "--json"], capture=True)
        texts = [json.loads(line)["completion"] for line in out.splitlines() if line.strip()]
        with open(self.path(f"heldout_{name}_t{temperature}_s{seed}.jsonl"), "w") as f:
            for t in texts:
                f.write(json.dumps({"completion": t}) + "\n")
        return texts

    def evaluate(self, name, model):
        print(f"\n=== eval {name}", flush=True)
        prompts = [r["prompt"][0]["content"]
                   for r in read_jsonl(self.path("data", "heldout.jsonl"))]
        greedy = self.answers(name, model, 0, self.seed)
        assert len(greedy) == len(prompts)
        sampled = []
        for k in range(SAMPLES):
            sampled += list(zip(prompts, self.answers(name, model, 1, self.seed + 1 + k)))
        rate = lambda rows, ok: sum(not ok(t) for _, t in rows) / len(rows)  # noqa: E731
        follows_all = lambda t: all(c(t) for c in CHECKS.values())  # noqa: E731
        r = {f"violation_{p}": rate(sampled, c) for p, c in CHECKS.items()}
        r["violation_any"] = rate(sampled, follows_all)
        r["greedy_violation_any"] = rate(list(zip(prompts, greedy)), follows_all)
        r["accuracy"] = sum(correct(p, t) for p, t in zip(prompts, greedy)) / len(prompts)
        r["sampled_accuracy"] = sum(correct(p, t) for p, t in sampled) / len(sampled)
        return r

    # ---- report ------------------------------------------------------------------------

    def report(self, results):
        cols = COLUMNS
        lines = ["| model | " + " | ".join(c for _, c in cols) + " |",
                 "|---" * (len(cols) + 1) + "|"]
        for name, r in results.items():
            lines.append(f"| {name} | " + " | ".join(f"{r[k]:.3f}" for k, _ in cols) + " |")
        sft, dpo = results["sft"], results["dpo"]
        drop = sft["violation_any"] - dpo["violation_any"]
        acc = dpo["accuracy"] - sft["accuracy"]
        total = sum(self.times.values())
        lines += ["", f"Overall violation rate (sampled) {sft['violation_any']:.3f} -> "
                  f"{dpo['violation_any']:.3f} ({-drop:+.3f}); greedy task accuracy "
                  f"{sft['accuracy']:.3f} -> {dpo['accuracy']:.3f} ({acc:+.3f}, tolerance "
                  f"0.05: {'within' if abs(acc) <= 0.05 else 'outside'}).",
                  "", "dpo: DPO from the SFT model on the revision pairs and the AI-judged "
                  "pairs, trained on the judge's soft labels; dpo_revise: on the revision "
                  "pairs alone.",
                  "", f"Preference pairs: {self.pair_counts['revision']} from critique -> "
                  f"revision (cai revise --pairs), {self.pair_counts['judged']} judged by the "
                  f"SFT model (cai judge, soft label >= {0.5 + MIN_CONFIDENCE:.1f}). Held-out "
                  f"prompts: first answers only, no revision; {SAMPLES} samples per prompt at "
                  f"temperature 1.",
                  "", f"AI judge: agrees with the checks on "
                  f"{self.judge_stats['agreement_with_checks']:.3f} of the "
                  f"{self.judge_stats['decided_by_checks']} kept pairs that the drawn principle "
                  f"tells apart; mean soft label {self.judge_stats['mean_soft_label']:.3f}.",
                  "", "Critique -> revision on the training prompts (the drawn principle): "
                  f"critique right {self.quality['critique_right']:.3f}; principle broken by "
                  f"the first answer {self.quality['first_answer_breaks_principle']:.3f}, by "
                  f"the revision {self.quality['revision_breaks_principle']:.3f}; answer "
                  f"correct: first {self.quality['first_answer_correct']:.3f}, revision "
                  f"{self.quality['revision_correct']:.3f}.",
                  "", "Stage wall times (s): " + ", ".join(
                      f"{k} {v:.0f}" for k, v in self.times.items()) + f"; all {total:.0f}."]
        self.write_summary("\n".join(lines) + "\n",
                           {"seed": self.seed, "quick": self.quick, "results": results,
                            "pairs": self.pair_counts, "revision_quality": self.quality,
                            "judge_quality": self.judge_stats,
                            "stage_seconds": self.times})
        self.plots(results)

    def plots(self, results):
        plt = pyplot()
        if plt is None:
            return
        os.makedirs(self.path("plots"), exist_ok=True)
        keys = [("violation_end_with_period", "end_with_period"),
                ("violation_lowercase", "lowercase"),
                ("violation_any", "any"), ("accuracy", "accuracy (greedy)")]
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.27
        for i, (name, color) in enumerate((("sft", "#a0a0a0"), ("dpo", "#4878a8"),
                                           ("dpo_revise", "#8fb3d9"))):
            xs = [k + (i - 1) * width for k in range(len(keys))]
            ax.bar(xs, [results[name][k] for k, _ in keys], width, label=name, color=color)
        ax.set_xticks(range(len(keys)), [label for _, label in keys])
        ax.set_ylim(0, 1)
        ax.set_title("held-out: violation rate per principle (T=1) and task accuracy")
        ax.legend()
        fig.tight_layout()
        fig.savefig(self.path("plots", "summary.png"), dpi=120)
        plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rlhf", required=True, help="the rlhf binary")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="few steps: checks the demo runs")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    d = Demo(os.path.abspath(a.rlhf), os.path.abspath(a.out), a.seed, a.quick)
    d.data()
    d.sft()
    d.revise()
    d.revision_quality()
    d.judge()
    d.judge_quality()
    d.dpo()
    results = {name: d.evaluate(name, d.path(name, "model.safetensors"))
               for name in ("sft", "dpo", "dpo_revise")}
    d.report(results)
    print(d.out)


if __name__ == "__main__":
    main()
