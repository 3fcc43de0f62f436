#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""PyTorch timings of the train step bench_model.cpp measures: the same GPT (GPT-2
architecture, pre-LayerNorm, tied LM head, GELU tanh, causal attention written plainly with
matmuls and a masked softmax; torch 1.13 has no F.scaled_dot_product_attention), the same
shapes, eager fp32, torch.optim.AdamW (its defaults, weight decay on matrices and
embeddings only, as the C++ side).

    train_step   forward -> next-token cross-entropy (mean over B·(T-1) positions)
                 -> zero_grad -> backward -> AdamW step, on random tokens

    generate     greedy generation with a KV cache written plainly: per layer cache tensors
                 K, V of shape (B, NH, Tmax, hs); prefill the (B, 16) prompt, then one token
                 at a time under torch.no_grad(), argmax plus the log-prob of the chosen
                 token (rlhf++'s generate returns it too); 128 new tokens, no stop tokens

    tiny    V=256, T=64,  C=128, L=2, H=4, B=8     (train_step)
    small   V=256, T=128, C=256, L=4, H=4, B=8     (train_step)
    small   V=256, T=144, C=256, L=4, H=4, B=8     (generate: 16 prompt + 128 new tokens)

Run with Debian's /usr/bin/python3. Prints {"torch_version", "threads", "blas", "results":
[{"op", "config", "shape": [V, T, C, L, H, B], "seconds", "samples", "params"}]},
seconds = median time of one step, or of one whole generate call (torch_ops.median_seconds);
generate records also carry "new_tokens" and "prompt_tokens".
"""
import argparse
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_ops import blas_in_use, median_seconds

CONFIGS = (("tiny", dict(V=256, T=64, C=128, L=2, H=4, B=8)),
           ("small", dict(V=256, T=128, C=256, L=4, H=4, B=8)))


class Block(nn.Module):
    def __init__(self, C, H, T):
        super().__init__()
        self.n_head = H
        self.ln_1 = nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)
        self.register_buffer("causal", torch.tril(torch.ones(T, T, dtype=torch.bool)))

    def attn(self, x):
        b, t, c = x.shape
        hd = c // self.n_head
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, hd).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(~self.causal[:t, :t], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(b, t, c)
        return self.c_proj(y)

    def attn_cached(self, x, kc, vc, pos):
        """x (B, S, C) at positions pos .. pos+S-1: writes their keys and values into kc, vc
        (B, NH, Tmax, hs) and attends to the cached keys 0 .. each query's own position."""
        b, s, c = x.shape
        hd = c // self.n_head
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, s, self.n_head, hd).transpose(1, 2) for z in (q, k, v))
        kc[:, :, pos:pos + s] = k
        vc[:, :, pos:pos + s] = v
        keys, vals = kc[:, :, :pos + s], vc[:, :, :pos + s]
        att = (q @ keys.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        if s > 1:  # the prefill: causal within the new positions
            att = att.masked_fill(~self.causal[pos:pos + s, :pos + s], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ vals).transpose(1, 2).contiguous().view(b, s, c)
        return self.c_proj(y)

    def forward_cached(self, x, kc, vc, pos):
        x = x + self.attn_cached(self.ln_1(x), kc, vc, pos)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, V, T, C, L, H):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.h = nn.ModuleList(Block(C, H, T) for _ in range(L))
        self.ln_f = nn.LayerNorm(C)
        std_resid = 0.02 / math.sqrt(2 * L)
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue  # biases 0, LayerNorm weights 1 (the defaults, set below for biases)
            std = std_resid if name.endswith(("c_proj.weight", "mlp_proj.weight")) else 0.02
            nn.init.normal_(p, 0.0, std)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)

    def hidden(self, ids):
        """The final LayerNorm's output (B, T, C): what value and reward heads read."""
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(t))
        for block in self.h:
            x = block(x)
        return self.ln_f(x)

    def forward(self, ids):
        return self.hidden(ids) @ self.wte.weight.t()  # tied LM head

    def forward_cached(self, ids, caches, pos):
        """Logits (B, V) of the last of ids' (B, S) positions pos .. pos+S-1."""
        s = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(pos, pos + s))
        for block, (kc, vc) in zip(self.h, caches):
            x = block.forward_cached(x, kc, vc, pos)
        return self.ln_f(x[:, -1]) @ self.wte.weight.t()


GEN_PROMPT, GEN_NEW = 16, 128


@torch.no_grad()
def sample_cached(model, prompts, new_tokens, temperature=1.0, stop_token=None, pad_token=0):
    """Samples up to new_tokens tokens after each row of prompts (B, P), all of length P,
    with a KV cache written plainly (per layer K, V of shape (B, NH, P + new_tokens, hs)):
    prefill the prompts, then one token at a time from softmax(logits / temperature)
    (torch.multinomial). A row ends after emitting stop_token (kept); later columns hold
    pad_token. Stops early when every row has ended. Returns (tokens (B, new_tokens) long,
    lengths (B,) long: generated tokens per row, the stop token included)."""
    b, p = prompts.shape
    first = model.h[0]
    heads = first.n_head
    hs = first.c_attn.in_features // heads
    tmax = p + new_tokens
    caches = [(torch.empty(b, heads, tmax, hs), torch.empty(b, heads, tmax, hs))
              for _ in model.h]
    out = torch.full((b, new_tokens), pad_token, dtype=torch.long)
    lengths = torch.full((b,), new_tokens, dtype=torch.long)
    done = torch.zeros(b, dtype=torch.bool)
    logits = model.forward_cached(prompts, caches, 0)  # prefill
    for step in range(new_tokens):
        probs = F.softmax(logits if temperature == 1.0 else logits / temperature, dim=-1)
        tok = torch.multinomial(probs, 1)[:, 0]
        tok = tok.masked_fill(done, pad_token)
        out[:, step] = tok
        if stop_token is not None:
            ended = ~done & (tok == stop_token)
            lengths[ended] = step + 1
            done |= ended
            if bool(done.all()):
                break
        if step + 1 == new_tokens:
            break
        logits = model.forward_cached(tok[:, None], caches, p + step)
    return out, lengths


def generate(V, T, C, L, H, B):
    """One greedy generate call: T = GEN_PROMPT + GEN_NEW = max_seq_len (144)."""
    model = GPT(V, T, C, L, H).eval()
    prompts = torch.randint(0, V, (B, GEN_PROMPT))
    hs = C // H

    @torch.no_grad()
    def run():
        caches = [(torch.empty(B, H, T, hs), torch.empty(B, H, T, hs)) for _ in range(L)]
        out = torch.empty(B, GEN_NEW, dtype=torch.long)
        logprobs = torch.empty(B, GEN_NEW)
        logits = model.forward_cached(prompts, caches, 0)  # prefill
        pos = GEN_PROMPT
        for step in range(GEN_NEW):
            lp = F.log_softmax(logits, dim=-1)
            tok = lp.argmax(dim=-1)
            out[:, step] = tok
            logprobs[:, step] = lp.gather(1, tok[:, None])[:, 0]
            if step + 1 == GEN_NEW:
                break
            logits = model.forward_cached(tok[:, None], caches, pos)
            pos += 1
        return out, logprobs
    return run, sum(p.numel() for p in model.parameters())


def train_step(V, T, C, L, H, B):
    model = GPT(V, T, C, L, H)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-2},
                             {"params": no_decay, "weight_decay": 0.0}], lr=1e-3)
    ids = torch.randint(0, V, (B, T))

    def run():
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss
    return run, sum(p.numel() for p in model.parameters())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--samples", type=int, default=5)
    p.add_argument("--target", type=float, default=1.0, help="seconds of calls per sample")
    p.add_argument("--only", choices=[n for n, _ in CONFIGS], help="one config")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []
    for name, c in CONFIGS:
        if args.only and name != args.only:
            continue
        run, params = train_step(**c)
        s = median_seconds(run, args.samples, args.target)
        shape = [c[k] for k in ("V", "T", "C", "L", "H", "B")]
        results.append({"op": "train_step", "config": name, "shape": shape, "seconds": s,
                        "samples": args.samples, "params": params})
        print(f"torch train_step {name}: {s * 1e3:.3f} ms "
              f"({c['B'] * c['T'] / s:.0f} tokens/s)", file=sys.stderr)
    if not args.only or args.only == "small":
        c = dict(CONFIGS[1][1], T=GEN_PROMPT + GEN_NEW)
        run, params = generate(**c)
        s = median_seconds(run, args.samples, args.target)
        shape = [c[k] for k in ("V", "T", "C", "L", "H", "B")]
        results.append({"op": "generate", "config": "small", "shape": shape, "seconds": s,
                        "samples": args.samples, "params": params,
                        "new_tokens": GEN_NEW, "prompt_tokens": GEN_PROMPT})
        print(f"torch generate small: {s * 1e3:.3f} ms "
              f"({c['B'] * GEN_NEW / s:.0f} tokens/s)", file=sys.stderr)
    json.dump({"torch_version": torch.__version__, "threads": torch.get_num_threads(),
               "blas": blas_in_use(), "results": results}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
