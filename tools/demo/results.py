#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""A demo over several seeds: runs tools/demo/pipeline.py (--demo main) or
tools/demo/cai.py (--demo cai) once per seed and writes the table of means and spreads, the
acceptance check and the plots into a results page.

    results.py --rlhf BUILD/rlhf --out DIR [--demo main|cai] [--seeds 0 1 2] [--reuse]
               [--doc docs/results.md] [--plots docs/results]

DIR/seed-N holds each seed's run (--reuse keeps a run whose summary.json exists). The page
(--doc) is rewritten between its `<!-- results:begin -->` and `<!-- results:end -->`
markers only (`cai-results` for --demo cai), so the prose around them stays; a missing page
is created with the markers. Spread: the sample standard deviation over the runs, with the
range beside it.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from stages import pyplot  # noqa: E402
import cai  # noqa: E402  (the Constitutional AI demo's table columns)
SCRIPTS = {"main": "pipeline.py", "cai": "cai.py"}
EACH_CELL = "Each cell: mean ± standard deviation over the runs, one per seed (min–max)."

# Curves of each stage, from its metrics.jsonl: (run, metric, title).
CURVES = [("sft", "loss", "SFT: training loss"),
          ("rm", "accuracy", "reward model: training pair accuracy"),
          ("ppo", "objective/scores", "PPO: reward-model score"),
          ("ppo", "objective/kl", "PPO: KL to the SFT model"),
          ("dpo", "rewards/accuracies", "DPO: implicit-reward accuracy"),
          ("kto", "kl", "KTO: KL estimate"),
          ("grpo", "reward", "GRPO: verifier reward"),
          ("grpo", "kl", "GRPO: KL to the SFT model")]


def run_seeds(args):
    runs = []
    for seed in args.seeds:
        out = os.path.join(args.out, f"seed-{seed}")
        summary = os.path.join(out, "summary.json")
        if not (args.reuse and os.path.exists(summary)):
            cmd = [sys.executable, os.path.join(HERE, SCRIPTS[args.demo]), "--rlhf", args.rlhf,
                   "--out", out, "--seed", str(seed)]
            print("$ " + " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True)
        with open(summary) as f:
            runs.append((out, json.load(f)))
    return runs


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": sd, "min": min(values), "max": max(values),
            "n": len(values)}


def cell(s, digits=3):
    if s is None:
        return "n/a"
    if s["n"] == 1:
        return f"{s['mean']:.{digits}f}"
    return (f"{s['mean']:.{digits}f} ± {s['sd']:.{digits}f} "
            f"({s['min']:.{digits}f}–{s['max']:.{digits}f})")


def machine():
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def table(runs):
    summaries = [s for _, s in runs]
    methods = list(summaries[0]["results"])
    kinds = sorted({k for s in summaries for r in s["results"].values() for k in r["kinds"]})
    stat = {m: {"accuracy": stats([s["results"][m]["accuracy"] for s in summaries]),
                "reward": stats([s["results"][m]["reward"] for s in summaries]),
                "kl": stats([s["results"][m]["kl"] for s in summaries]),
                "length": stats([s["results"][m]["length"] for s in summaries]),
                "time": stats([s["stage_seconds"].get(m) for s in summaries]),
                **{k: stats([s["results"][m]["kinds"].get(k) for s in summaries])
                   for k in kinds}}
            for m in methods}
    seeds = ", ".join(str(s["seed"]) for s in summaries)
    lines = [f"Seeds {seeds}; {datetime.date.today().isoformat()}; {machine()}. "
             + (EACH_CELL if len(summaries) > 1 else "One seed: no spread yet."), "",
             "| method | held-out accuracy (greedy) | reward-model score | KL to SFT | "
             "answer length (tokens) | wall time of the stage (s) |", "|---|---|---|---|---|---|"]
    for m in methods:
        st = stat[m]
        bound = next((s["results"][m]["kl_bound"] for s in summaries
                      if s["results"][m].get("kl_bound") is not None), None)
        kl = f"≤ {bound:.3f} (bound)" if bound is not None else cell(st["kl"])
        lines.append(f"| {m} | {cell(st['accuracy'])} | {cell(st['reward'])} | {kl} | "
                     f"{cell(st['length'], 2)} | {cell(st['time'], 0)} |")
    lines += ["", "Held-out accuracy per kind of problem (mean ± standard deviation; "
              "sort_repeats: digit lists with a repeated digit, where the demonstrations "
              "drop the repeats):", "",
              "| method | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for m in methods:
        lines.append(f"| {m} | " + " | ".join(
            "n/a" if stat[m][k] is None else f"{stat[m][k]['mean']:.3f} ± {stat[m][k]['sd']:.3f}"
            for k in kinds) + " |")
    sft = stat["sft"]["accuracy"]
    need = 2 * sft["sd"]
    lines += ["", f"Against SFT (twice the SFT accuracy's seed-to-seed standard deviation: "
              f"{need:.3f}; twice its range: {2 * (sft['max'] - sft['min']):.3f}):", "",
              "| method | gain in held-out accuracy over SFT | above twice the SFT spread |",
              "|---|---|---|"]
    for m in methods[1:]:
        gain = stat[m]["accuracy"]["mean"] - sft["mean"]
        lines.append(f"| {m} | {gain:+.3f} | {'yes' if gain > need else 'no'} |")
    rm = stats([s["reward_model_accuracy"] for s in summaries])
    total = stats([sum(s["stage_seconds"].values()) for s in summaries])
    fired = {}
    for s in summaries:
        for m, r in s["results"].items():
            for name in r.get("monitors", {}):
                fired.setdefault(f"{m}: {name}", []).append(str(s["seed"]))
    lines += ["", f"Reward model accuracy on held-out preference pairs: {cell(rm)}.",
              f"Whole pipeline (all stages, from a warm build): {cell(total, 0)} s.",
              "Failure monitors that fired: " + ("; ".join(
                  f"{k} (seeds {', '.join(v)})" for k, v in fired.items()) or "none") + "."]
    return "\n".join(lines), stat, methods, kinds


def metric_series(run_dir, metric):
    xs, ys = [], []
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return xs, ys
    for line in open(path):
        row = json.loads(line)
        if isinstance(row.get(metric), (int, float)) and "step" in row:
            xs.append(row["step"])
            ys.append(row[metric])
    return xs, ys


def grouped_bars(plt, stat, series, keys, labels, ylabel, path):
    """One group of bars per key, one bar per series: the mean over the seeds, with the
    standard deviation as its error bar; written to `path`."""
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(series)
    for i, m in enumerate(series):
        ax.bar([g + (i - (len(series) - 1) / 2) * width for g in range(len(keys))],
               [stat[m][k]["mean"] if stat[m][k] else 0 for k in keys], width,
               yerr=[stat[m][k]["sd"] if stat[m][k] else 0 for k in keys], capsize=2, label=m)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.legend(ncol=len(series), fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plots(runs, stat, methods, kinds, folder):
    plt = pyplot()
    if plt is None:
        return []
    os.makedirs(folder, exist_ok=True)
    # Summary: accuracy overall and per kind.
    written = [grouped_bars(plt, stat, methods, ["accuracy"] + kinds, ["all"] + kinds,
                            "held-out accuracy (greedy)", os.path.join(folder, "summary.png"))]
    # Curves of every stage, one line per seed.
    cols = 4
    rows = (len(CURVES) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows))
    for ax, (run, metric, title) in zip(axes.flat, CURVES):
        for out, s in runs:
            xs, ys = metric_series(os.path.join(out, run), metric)
            ax.plot(xs, ys, label=f"seed {s['seed']}")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(folder, "curves.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    written.append(path)
    return written


def cai_table(runs):
    """Constitutional AI: violation rates and accuracy before (sft) and after (dpo, ...)."""
    summaries = [s for _, s in runs]
    models = list(summaries[0]["results"])
    cols = cai.COLUMNS
    stat = {m: {k: stats([s["results"][m].get(k) for s in summaries]) for k, _ in cols}
            for m in models}
    seeds = ", ".join(str(s["seed"]) for s in summaries)
    lines = [f"Seeds {seeds}; {datetime.date.today().isoformat()}; {machine()}. "
             + (EACH_CELL if len(summaries) > 1 else "One seed: no spread yet."), "",
             "| model | " + " | ".join(t for _, t in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m in models:
        lines.append(f"| {m} | " + " | ".join(cell(stat[m][k]) for k, _ in cols) + " |")
    before, after = stat[models[0]], stat[models[1]]
    drop = [s["results"][models[0]]["violation_any"] - s["results"][models[1]]["violation_any"]
            for s in summaries]
    change = [s["results"][models[1]]["accuracy"] - s["results"][models[0]]["accuracy"]
              for s in summaries]
    total = stats([sum(s["stage_seconds"].values()) for s in summaries])
    judge = [s["judge_quality"] for s in summaries if "judge_quality" in s]
    if judge:
        agree = stats([j["agreement_with_checks"] for j in judge])
        kept = stats([j["rows"] for j in judge])
        soft = stats([j["mean_soft_label"] for j in judge])
        lines += ["", f"AI judge (the SFT model, both orders): {cell(kept, 0)} pairs kept per "
                  f"seed, mean soft label {cell(soft)}; on the kept pairs that the drawn "
                  f"principle tells apart it agrees with the checks on {cell(agree)}."]
    lines += ["", f"{models[1]} against {models[0]}: violation rate (T=1) "
              f"{before['violation_any']['mean']:.3f} → {after['violation_any']['mean']:.3f}, "
              f"lower on {sum(d > 0 for d in drop)} of {len(drop)} seeds (by "
              f"{min(drop):.3f} to {max(drop):.3f}); greedy task accuracy changes by "
              f"{min(change):+.3f} to {max(change):+.3f} (tolerance ±0.05: "
              f"{'within' if all(abs(c) <= 0.05 for c in change) else 'not within'} on every "
              "seed).",
              f"Whole demo (all stages, from a warm build): {cell(total, 0)} s."]
    return "\n".join(lines), stat, models, [k for k, _ in cols]


def cai_plots(stat, models, keys, folder):
    plt = pyplot()
    if plt is None:
        return []
    os.makedirs(folder, exist_ok=True)
    labels = [k.replace("violation_", "viol. ").replace("_", " ") for k in keys]
    return [grouped_bars(plt, stat, models, keys, labels, "held-out rate",
                         os.path.join(folder, "cai_summary.png"))]


def write_doc(doc, text, images, marker):
    BEGIN, END = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    rel = [os.path.relpath(p, os.path.dirname(os.path.abspath(doc))) for p in images]
    block = "\n".join([BEGIN, text, ""] + [f"![{os.path.basename(p)}]({p})" for p in rel] + [END])
    if os.path.exists(doc):
        page = open(doc).read()
        if BEGIN not in page or END not in page:
            sys.exit(f"results: {doc} has no {BEGIN} ... {END} block")
        page = page[:page.index(BEGIN)] + block + page[page.index(END) + len(END):]
    else:
        page = "# Results of the demo\n\n" + block + "\n"
    tmp = doc + ".tmp"
    with open(tmp, "w") as f:
        f.write(page)
    os.replace(tmp, doc)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rlhf", required=True, help="the rlhf binary")
    ap.add_argument("--out", required=True, help="folder of the runs (one per seed)")
    ap.add_argument("--demo", choices=sorted(SCRIPTS), default="main")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--reuse", action="store_true", help="keep runs that have a summary.json")
    ap.add_argument("--doc", help="results page to rewrite between its markers")
    ap.add_argument("--plots", help="folder for the page's plots [default: DOC's folder/results]")
    a = ap.parse_args()
    a.rlhf = os.path.abspath(a.rlhf)
    runs = run_seeds(a)
    folder = a.plots or (os.path.join(os.path.dirname(a.doc), "results") if a.doc
                         else os.path.join(a.out, "plots"))
    if a.demo == "cai":
        text, stat, models, keys = cai_table(runs)
        images = cai_plots(stat, models, keys, folder)
    else:
        text, stat, methods, kinds = table(runs)
        images = plots(runs, stat, methods, kinds, folder)
    print(text)
    if a.doc:
        write_doc(a.doc, text, images, "cai-results" if a.demo == "cai" else "results")
        print(f"results: wrote {a.doc}")


if __name__ == "__main__":
    main()
