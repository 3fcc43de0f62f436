#!/usr/bin/python3
# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reference for rlhf/model/layers.hpp: each layer of the GPT-style decoder (token + position
embedding, LayerNorm, linear projection x W^T + b, causal multi-head attention over a packed
q|k|v buffer, GELU with the tanh approximation) written with torch's own modules/functions,
in float64 from float32 inputs, with the gradients of L = sum(w * out) by autograd. Two
shape configs: a tiny one and an odd one (T not a power of two, 3 heads). Writes
tests/fixtures/layers.json."""
import math

import torch
import torch.nn.functional as F

from common import Fixture, T, f32


def encoder_case(fx, name, g, Bn, Tn, C, V, max_t):
    wte = f32(torch.randn(V, C, generator=g))
    wpe = f32(torch.randn(max_t, C, generator=g))
    tokens = torch.randint(0, V, (Bn, Tn), generator=g, dtype=torch.int64)
    w = f32(torch.randn(Bn, Tn, C, generator=g)).detach()
    out = F.embedding(tokens, wte) + wpe[:Tn].unsqueeze(0)
    (out * w).sum().backward()
    fx.add(name, {"layer": "encoder", "V": V, "max_T": max_t},
           {"tokens": T(tokens.to(torch.int32)), "wte": T(wte), "wpe": T(wpe), "w": T(w)},
           {"out": T(out), "dwte": T(wte.grad), "dwpe": T(wpe.grad)})


def layernorm_case(fx, name, g, Bn, Tn, C):
    x = f32(torch.randn(Bn, Tn, C, generator=g) * 2 + 0.5)
    weight = f32(torch.randn(C, generator=g))
    bias = f32(torch.randn(C, generator=g))
    w = f32(torch.randn(Bn, Tn, C, generator=g)).detach()
    eps = 1e-5
    out = F.layer_norm(x, (C,), weight, bias, eps)
    (out * w).sum().backward()
    xd = x.detach()
    mean = xd.mean(-1)
    rstd = 1.0 / torch.sqrt(xd.var(-1, unbiased=False) + eps)
    fx.add(name, {"layer": "layernorm", "eps": eps},
           {"inp": T(x), "weight": T(weight), "bias": T(bias), "w": T(w)},
           {"out": T(out), "mean": T(mean), "rstd": T(rstd), "dinp": T(x.grad),
            "dweight": T(weight.grad), "dbias": T(bias.grad)})


def matmul_case(fx, name, g, Bn, Tn, C, OC):
    x = f32(torch.randn(Bn, Tn, C, generator=g))
    weight = f32(torch.randn(OC, C, generator=g) / math.sqrt(C))
    bias = f32(torch.randn(OC, generator=g))
    w = f32(torch.randn(Bn, Tn, OC, generator=g)).detach()
    out = F.linear(x, weight, bias)
    (out * w).sum().backward()
    fx.add(name, {"layer": "matmul"},
           {"inp": T(x), "weight": T(weight), "bias": T(bias), "w": T(w)},
           {"out": T(out), "dinp": T(x.grad), "dweight": T(weight.grad),
            "dbias": T(bias.grad)})


def attention_case(fx, name, g, Bn, Tn, C, NH):
    qkv = f32(torch.randn(Bn, Tn, 3 * C, generator=g))
    w = f32(torch.randn(Bn, Tn, C, generator=g)).detach()
    hs = C // NH
    q, k, v = qkv.split(C, dim=2)
    q, k, v = (t.view(Bn, Tn, NH, hs).transpose(1, 2) for t in (q, k, v))  # (B, NH, T, hs)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)
    causal = torch.ones(Tn, Tn, dtype=torch.bool).tril()
    att = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)
    out = (att @ v).transpose(1, 2).reshape(Bn, Tn, C)
    (out * w).sum().backward()
    fx.add(name, {"layer": "attention", "NH": NH}, {"inp": T(qkv), "w": T(w)},
           {"out": T(out), "att": T(att), "dinp": T(qkv.grad)})


def gelu_case(fx, name, g, Bn, Tn, C):
    x = f32(torch.randn(Bn, Tn, C, generator=g) * 2)
    w = f32(torch.randn(Bn, Tn, C, generator=g)).detach()
    out = F.gelu(x, approximate="tanh")
    (out * w).sum().backward()
    fx.add(name, {"layer": "gelu"}, {"inp": T(x), "w": T(w)},
           {"out": T(out), "dinp": T(x.grad)})


def main():
    fx = Fixture("layers")
    g = torch.Generator().manual_seed(4242)
    for tag, (Bn, Tn, C, NH, OC, V) in (("tiny", (2, 3, 4, 2, 5, 7)),
                                        ("odd", (3, 5, 6, 3, 7, 11))):
        encoder_case(fx, f"encoder_{tag}", g, Bn, Tn, C, V, Tn + 2)
        layernorm_case(fx, f"layernorm_{tag}", g, Bn, Tn, C)
        matmul_case(fx, f"matmul_{tag}", g, Bn, Tn, C, OC)
        attention_case(fx, f"attention_{tag}", g, Bn, Tn, C, NH)
        gelu_case(fx, f"gelu_{tag}", g, Bn, Tn, C)
    fx.write()


if __name__ == "__main__":
    main()
