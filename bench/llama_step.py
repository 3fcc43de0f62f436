#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""One Llama-family train step (SmolLM-135M's shape), rlhf++ against PyTorch in the same run.

    llama_step.py --rlhf BUILD/bench/bench_llama [--threads 2] [--rounds 5] [--k 1]
                  [--batch 4] [--seq 256] [--layers 30] [--no-check]
                  [--doc docs/benchmarks.md --meta KEY=VALUE ...]

The model: SmolLM-135M's LlamaConfig (V=49152, C=576, MLP 1536 SwiGLU, 30 layers, 9 heads,
3 key/value heads, RMSNorm eps 1e-5, rope theta 10000, tied embeddings, no biases;
134,515,008 parameters). The step (both sides): forward -> next-token cross-entropy (mean
over B·(T-1) positions) -> zero grads -> backward -> AdamW (lr 1e-3, weight decay 1e-2 on
matrices and embeddings, torch's other defaults), on random tokens. rlhf++: bench_llama
(bench/train_step.hpp's step on the config model::hf_llama_config maps from the JSON).
PyTorch: transformers.LlamaForCausalLM(LlamaConfig(...)), eager fp32
(attn_implementation "eager", use_cache False), loss = model(ids, labels=ids).loss,
torch.optim.AdamW.

Check (unless --no-check): a PyTorch model (seed 0) is written with save_pretrained to a
temporary folder with B·T random token ids; PyTorch runs two steps on them and bench_llama
--check loads the folder (model::load_hf_model) and runs two steps of its own on the same
ids: the first losses (same weights, same tokens) and the losses after one AdamW update
must agree.

Interleaving: each side runs in a process of its own that serves "step K" requests
(bench_llama --serve, and this script with --torch-serve), each warmed up by one step; every
round asks one side for K steps, then the other, swapping which goes first each round, so a
busy neighbour slows both. Each round gives a ratio of tokens/s, rlhf++ / PyTorch (> 1:
rlhf++ faster); the report is its median with the spread over the rounds. Peak memory is
each serving process's getrusage ru_maxrss after all its steps; the baseline is its resident
set before the model was built (the libraries: for PyTorch, Python, torch and transformers).

Run it with a Python that has torch and transformers (the tools venv:
~/.local/share/rlhfpp/venv/bin/python, transformers 4.46.3 over Debian's torch); the PyTorch
processes it starts use the same interpreter. Prints a markdown block (written into `--doc` between its markers) and, on stderr, the
per-round numbers.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

BEGIN, END = "<!-- bench-llama:begin -->", "<!-- bench-llama:end -->"

SMOLLM_135M = dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                   num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                   max_position_embeddings=2048, rms_norm_eps=1e-5, rope_theta=10000.0,
                   tie_word_embeddings=True, hidden_act="silu", attention_bias=False,
                   mlp_bias=False)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB


def torch_step(args, seed=0, ids=None):
    """(model, step function, ids): the PyTorch train step of the docstring."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.set_num_threads(args.threads)
    torch.manual_seed(seed)
    cfg = LlamaConfig(**dict(SMOLLM_135M, num_hidden_layers=args.layers),
                      attn_implementation="eager", use_cache=False, torch_dtype="float32")
    model = LlamaForCausalLM(cfg).float().train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-2},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    if ids is None:
        ids = torch.randint(0, cfg.vocab_size, (args.batch, args.seq))

    def run():
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()
    return model, run, ids


def torch_serve(args):
    """The PyTorch side's server: "step K" -> seconds of K steps; "quit" -> a JSON line."""
    import torch
    from torch_ops import blas_in_use
    baseline = rss_bytes()
    _, step, _ = torch_step(args)
    loss = step()  # warm up
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if cmd and cmd[0] == "quit":
            break
        k = int(cmd[1])
        t0 = time.perf_counter()
        for _ in range(k):
            loss = step()
        print(f"{time.perf_counter() - t0:.9f}", flush=True)
    print(json.dumps({"peak_rss_bytes": peak_rss_bytes(), "baseline_rss_bytes": baseline,
                      "last_loss": loss, "torch_version": torch.__version__,
                      "threads": torch.get_num_threads(), "blas": blas_in_use()}), flush=True)


def torch_check(args):
    """Writes a seed-0 model (save_pretrained) and its token ids into args.torch_check and
    prints the losses of its first two steps on them."""
    import torch
    model, step, ids = torch_step(args)
    model.save_pretrained(args.torch_check, safe_serialization=True)
    ids.to(torch.int32).numpy().tofile(os.path.join(args.torch_check, "ids.bin"))
    loss0 = step()
    loss1 = step()
    print(json.dumps({"loss0": loss0, "loss1": loss1,
                      "params": sum(p.numel() for p in model.parameters())}), flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return ", ".join(f.read().split()[:3])


def cmake_cache(binary, key):
    """A variable of the CMake cache of the build tree holding `binary` (BUILD/bench/x)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(binary))),
                        "CMakeCache.txt")
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return ""


class Server:
    """A serving subprocess: waits for its "ready", times "step K", ends with a JSON line."""

    def __init__(self, cmd, env):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=env)
        line = self.p.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"{cmd[0]}: expected 'ready', got {line!r}")

    def steps(self, k):
        self.p.stdin.write(f"step {k}\n")
        self.p.stdin.flush()
        return float(self.p.stdout.readline())

    def quit(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.flush()
        out = json.loads(self.p.stdout.readline())
        self.p.stdin.close()
        self.p.wait()
        return out


def mb(x):
    return f"{x / 1e6:,.0f} MB"


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rlhf", help="the bench_llama binary")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--k", type=int, default=1, help="steps per side per round")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--layers", type=int, default=30)
    p.add_argument("--no-check", action="store_true", help="skip the loss agreement check")
    p.add_argument("--blas-dir", help="directory of the libblas.so.3 PyTorch loads (default: "
                   "the OpenMP OpenBLAS rlhf++ links, read from the build's CMake cache)")
    p.add_argument("--doc")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--torch-serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--torch-check", metavar="DIR", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.torch_serve:
        return torch_serve(args)
    if args.torch_check:
        return torch_check(args)
    if not args.rlhf:
        p.error("--rlhf is required")

    # Both sides on n OpenMP threads. When rlhf++ links Debian's OpenMP OpenBLAS, PyTorch
    # loads the same library as its libblas.so.3 (as scripts/bench does): one thread pool.
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    torch_env = dict(env)
    blas_dir = args.blas_dir
    if blas_dir is None and cmake_cache(args.rlhf, "RLHF_CBLAS_OPENMP_USED") == "ON":
        blas_dir = os.path.dirname(cmake_cache(args.rlhf, "RLHF_CBLAS_LIBRARIES"))
    if blas_dir:
        torch_env["LD_LIBRARY_PATH"] = blas_dir + (
            ":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    shape = ["--batch", str(args.batch), "--seq", str(args.seq)]
    me = [sys.executable, os.path.abspath(__file__), "--threads", str(args.threads),
          "--layers", str(args.layers)] + shape
    loads = [loadavg()]

    check = None
    if not args.no_check:
        with tempfile.TemporaryDirectory(prefix="rlhf_llama_check_") as d:
            theirs = json.loads(subprocess.run(me + ["--torch-check", d], env=torch_env,
                                               check=True, capture_output=True,
                                               text=True).stdout.splitlines()[-1])
            ours = json.loads(subprocess.run(
                [args.rlhf, "--check", d, os.path.join(d, "ids.bin")] + shape, env=env,
                check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        check = {"ours": ours, "theirs": theirs,
                 "rel0": abs(ours["loss0"] - theirs["loss0"]) / abs(theirs["loss0"]),
                 "rel1": abs(ours["loss1"] - theirs["loss1"]) / abs(theirs["loss1"])}
        print(f"check: first-step loss rlhf++ {ours['loss0']:.6f}, PyTorch "
              f"{theirs['loss0']:.6f} (relative difference {check['rel0']:.2e}); after one "
              f"AdamW step rlhf++ {ours['loss1']:.6f}, PyTorch {theirs['loss1']:.6f} "
              f"({check['rel1']:.2e}); parameters {ours['params']:,} / {theirs['params']:,}; "
              f"config from the JSON matches the loaded one: {ours['config_matches']}",
              file=sys.stderr)
        loads.append(loadavg())

    # Built one after the other (each warms up by one step), so their set-ups never overlap.
    ours = Server([args.rlhf, "--serve", "--layers", str(args.layers)] + shape, env)
    theirs = Server(me + ["--torch-serve"], torch_env)
    loads.append(loadavg())
    tokens = args.batch * args.seq * args.k
    ours_tps, theirs_tps, ratios = [], [], []
    for r in range(args.rounds):
        if r % 2 == 0:
            a = ours.steps(args.k)
            b = theirs.steps(args.k)
        else:
            b = theirs.steps(args.k)
            a = ours.steps(args.k)
        ours_tps.append(tokens / a)
        theirs_tps.append(tokens / b)
        ratios.append(b / a)
        print(f"round {r}: rlhf++ {a / args.k:.2f} s/step ({tokens / a:.1f} tokens/s), "
              f"PyTorch {b / args.k:.2f} s/step ({tokens / b:.1f} tokens/s), ratio "
              f"{b / a:.2f}; load {loadavg()}", file=sys.stderr)
    loads.append(loadavg())
    ours_mem, theirs_mem = ours.quit(), theirs.quit()

    from report import fmt, meta_lines, spread, write_doc
    rs, ot, tt = spread(ratios), spread(ours_tps), spread(theirs_tps)
    torch_doc = {k: theirs_mem[k] for k in ("torch_version", "threads", "blas")}
    # transformers imports scipy, whose own BLAS wrappers show up in the mapped libraries.
    info, _, libs = torch_doc["blas"].partition(" (")
    if libs:
        libs = [x for x in libs.rstrip(")").split(", ") if "scipy" not in x]
        torch_doc["blas"] = f"{info} ({', '.join(libs)})"
    import transformers  # noqa: F401 (its version only; the driver runs no model)
    lines = meta_lines(args.meta, torch_doc,
                       f"transformers {transformers.__version__} LlamaForCausalLM, eager fp32")
    lines.append("- **load average (1, 5, 15 min)**: " + "; ".join(
        ["at start " + loads[0]] + (["after the check " + loads[1]] if check else []) +
        [f"after the warm-ups {loads[-2]}", f"at the end {loads[-1]}"]))
    shape_s = (f"SmolLM-135M shape ({ours_mem['params']:,} parameters"
               + ("" if args.layers == 30 else f", {args.layers} layers") +
               f"), B={args.batch}, T={args.seq}, {args.threads} threads")
    lines += ["", f"| train step, {shape_s} | rlhf++ | PyTorch |", "|---|---:|---:|",
              f"| step time (median over rounds) | {args.batch * args.seq / ot['median']:.2f} s "
              f"| {args.batch * args.seq / tt['median']:.2f} s |",
              f"| tokens/s (median over rounds) | {ot['median']:.1f} | {tt['median']:.1f} |",
              f"| tokens/s, min-max over rounds | {ot['min']:.1f}-{ot['max']:.1f} "
              f"| {tt['min']:.1f}-{tt['max']:.1f} |",
              f"| peak RSS (ru_maxrss) | {mb(ours_mem['peak_rss_bytes'])} "
              f"| {mb(theirs_mem['peak_rss_bytes'])} |",
              f"| RSS before the model (libraries) | {mb(ours_mem['baseline_rss_bytes'])} "
              f"| {mb(theirs_mem['baseline_rss_bytes'])} |",
              f"| peak RSS - that baseline | "
              f"{mb(ours_mem['peak_rss_bytes'] - ours_mem['baseline_rss_bytes'])} | "
              f"{mb(theirs_mem['peak_rss_bytes'] - theirs_mem['baseline_rss_bytes'])} |",
              f"| of which parameters + gradients + AdamW moments (16 B/param) | "
              f"{mb(16 * ours_mem['params'])} | {mb(16 * ours_mem['params'])} |"]
    if check:
        lines += [f"| first-step loss, same weights and tokens | {check['ours']['loss0']:.6f} "
                  f"| {check['theirs']['loss0']:.6f} |",
                  f"| loss after one AdamW step | {check['ours']['loss1']:.6f} "
                  f"| {check['theirs']['loss1']:.6f} |"]
    lines += ["", f"Ratio of tokens/s, rlhf++ / PyTorch (> 1: rlhf++ faster), per round of "
                  f"{args.k} step(s) a side: **{fmt(rs)}**."]
    if check:
        lines.append(f"Loss agreement (relative): first step {check['rel0']:.1e}, after one "
                     f"AdamW step {check['rel1']:.1e}.")
    body = "\n".join(lines)
    print(body)
    if args.doc:
        write_doc(args.doc, body, BEGIN, END)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
