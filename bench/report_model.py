#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Joins bench_model's Google Benchmark JSON with torch_model.py's JSON into a markdown
table (the model part of docs/benchmarks.md).

    report_model.py RLHF_JSON [RLHF_JSON ...] --torch TORCH_JSON
                    [--doc docs/benchmarks.md --meta KEY=VALUE ...]

Several RLHF_JSON files are merged: scripts/bench runs each train-step config in its own
process, because the peak RSS counter (getrusage ru_maxrss) is a per-process maximum.
ratio = PyTorch median / rlhf++ median (> 1: rlhf++ faster). GFLOP/s is model FLOP/s =
6 · params · tokens / time (params without the padded embedding rows); MFU = that over
BM_gemm_peak (ops::gemm 1024³, fp32, same binary, same run). A second table compares
BM_generate with torch_model.py's "generate" (greedy, KV cache, B=8, 16 prompt + 128 new
tokens on "small" with max_seq_len 144); tokens/s = B · new tokens / time. Stdlib only.
"""
import argparse
import sys

from report import fmt_time, load_rlhf, load_torch, meta_lines, write_doc

BEGIN, END = "<!-- bench-model:begin -->", "<!-- bench-model:end -->"
CONFIGS = ((0, "tiny", "V=256, T=64, C=128, L=2, H=4, B=8"),
           (1, "small", "V=256, T=128, C=256, L=4, H=4, B=8"))


def mb(x):
    return f"{x / 1e6:.1f} MB"


def rows(rlhf, torch, peak):
    for idx, name, desc in CONFIGS:
        b = rlhf.get(("BM_train_step", idx))
        if not b:
            continue
        theirs = torch.get(name)
        gflops = b["FLOPS"] / 1e9
        mfu = f"{100 * b['FLOPS'] / peak:.0f} %" if peak else "–"
        rss, base, ana = b["peak_rss_bytes"], b["baseline_rss_bytes"], b["analytic_bytes"]
        mem = (f"{mb(rss)} / {mb(ana)} = {rss / ana:.2f}× "
               f"(without the {mb(base)} baseline: {(rss - base) / ana:.2f}×)")
        yield (f"{name} ({desc})", b["seconds"], theirs, f"{b['tokens_per_second']:,.0f}",
               f"{gflops:.1f}", mfu, mem)


def table(rlhf, torch, peak):
    lines = ["| config | rlhf++ median | PyTorch median | ratio (PyTorch / rlhf++) "
             "| rlhf++ tokens/s | rlhf++ model GFLOP/s | MFU | peak RSS / analytic |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for cfg, ours, theirs, tps, gflops, mfu, mem in rows(rlhf, torch, peak):
        ratio = f"{theirs / ours:.2f}" if theirs else "–"
        lines.append(f"| {cfg} | {fmt_time(ours)} | {fmt_time(theirs)} | {ratio} | {tps} "
                     f"| {gflops} | {mfu} | {mem} |")
    return "\n".join(lines)


def generation_table(rlhf, torch_gen):
    """The generation table, or None when BM_generate did not run."""
    b = rlhf.get(("BM_generate",))
    if not b:
        return None
    theirs = torch_gen.get("small")
    n_tok = b["batch"] * b["new_tokens"]
    ratio = f"{theirs['seconds'] / b['seconds']:.2f}" if theirs else "–"
    their_tps = f"{n_tok / theirs['seconds']:,.0f}" if theirs else "–"
    desc = (f"small (V=256, C=256, L=4, H=4, max_seq_len 144), B={b['batch']:.0f}, "
            f"prompt {b['prompt_tokens']:.0f} + {b['new_tokens']:.0f} new tokens, greedy")
    lines = ["| generation | rlhf++ median | PyTorch median | ratio (PyTorch / rlhf++) "
             "| rlhf++ tokens/s | PyTorch tokens/s |",
             "|---|---:|---:|---:|---:|---:|",
             f"| {desc} | {fmt_time(b['seconds'])} "
             f"| {fmt_time(theirs['seconds'] if theirs else None)} | {ratio} "
             f"| {b['tokens_per_second']:,.0f} | {their_tps} |"]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rlhf_json", nargs="+")
    p.add_argument("--torch", required=True, dest="torch_json")
    p.add_argument("--doc")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    context, rlhf, loads = {}, {}, []
    for path in args.rlhf_json:
        ctx, r = load_rlhf(path)
        context = context or ctx
        if ctx.get("load_avg"):
            loads.append(ctx["load_avg"])
        rlhf.update(r)
    torch_doc, _ = load_torch(args.torch_json)
    torch = {r["config"]: r["seconds"] for r in torch_doc["results"]
             if r.get("op", "train_step") == "train_step"}
    torch_gen = {r["config"]: r for r in torch_doc["results"] if r.get("op") == "generate"}
    gemm = rlhf.get(("BM_gemm_peak",))
    peak = gemm["FLOPS"] if gemm else None
    t = table(rlhf, torch, peak)
    peak_line = (f"fp32 GEMM peak (BM_gemm_peak: ops::gemm 1024×1024×1024, Eigen backend): "
                 f"{fmt_time(gemm['seconds'])}, {peak / 1e9:.1f} GFLOP/s" if gemm else
                 "fp32 GEMM peak: not measured")
    gen = generation_table(rlhf, torch_gen)
    print(t)
    print("\n" + peak_line)
    if gen:
        print("\n" + gen)
    if args.doc:
        meta = ["### GPT train step and generation (`scripts/bench --only model`)", ""]
        meta += meta_lines(args.meta, torch_doc, "eager, fp32, torch.optim.AdamW", loads)
        meta.append(f"- **{peak_line}**")
        notes = ("One train step = forward → next-token cross-entropy (mean over B·(T-1) "
                 "positions; rlhf++: `losses::sft_loss` with a mask of ones) → zero grads → "
                 "backward → AdamW (lr 1e-3, weight decay 1e-2 on matrices and embeddings), on "
                 "random tokens. Medians of the repetitions (wall time). Model GFLOP/s = "
                 "6 · params · B·T / time with params counted WITHOUT the padded embedding "
                 "rows (the LM head is tied: wte counts once); it ignores the attention "
                 "score FLOPs, the usual model-FLOPs convention. MFU = model FLOP/s / the GEMM "
                 "peak above. Peak RSS = getrusage ru_maxrss after the steps, each config in "
                 "its own process; the baseline is the resident set before the model was "
                 "allocated (libraries, the benchmark runtime; not the BLAS work buffers, which the "
                 "first GEMM of the step allocates). Analytic = "
                 "4 bytes · (params + grads + 2 · params AdamW moments + the activation "
                 "floats of `gpt_activations::floats()`), arenas at their padded size. "
                 "PyTorch: the same GPT written plainly (bench/torch_model.py, masked-softmax "
                 "attention), `torch_ops.median_seconds`.")
        body = "\n".join(meta) + "\n\n" + t + "\n\n" + notes
        if gen:
            gen_notes = ("Generation: one call of `model::generate` (rlhf++) or of a plain "
                         "PyTorch loop (bench/torch_model.py `generate`: per-layer K, V cache "
                         "tensors (B, NH, Tmax, hs), prefill of the prompt, then one token at a "
                         "time under `torch.no_grad()`) = one (8, 16) prefill + 127 "
                         "single-token decode steps, greedy (argmax; both sides also compute "
                         "the chosen token's log-prob), no stop tokens, so both sides emit "
                         "8 · 128 tokens. The target is 128 new tokens on \"small\", whose "
                         "context is 128, so this bench uses max_seq_len 144 (16 + 128); the "
                         "cache allocation is inside the timed call on both sides. "
                         "tokens/s = B · new tokens / median time.")
            body += "\n\n" + gen + "\n\n" + gen_notes
        write_doc(args.doc, body, BEGIN, END)
        print(f"\nwrote {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
