# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Log-prob and entropy fixtures from TRL's own helpers in trl/trainer/utils.py
(selective_log_softmax, entropy_from_logits, selective_log_softmax_and_entropy; their torch
path, as on a machine without Triton), read from the installed package.

Each case: logits (N, T, V) and ids (N, T); position t-1 predicts id t, so TRL's helpers get
logits[:, :-1] and ids[:, 1:]. Recorded: the log-probs, the entropies, and torch autograd
d/d logits of Σ w·logps + Σ u·entropy for given weights w and u (N, T - 1).

    $RLHF_TOOLS_PYTHON tools/reference/trl/logprobs.py [--out DIR]   # tests/fixtures/trl/logprobs.json
"""
import torch
import torch.nn.functional as F

import trl_source as ts

N, T, V = 3, 6, 11


def helpers():
    ns = {"torch": torch, "F": F, "is_triton_available": lambda: False}
    ts.load_defs("trainer/utils.py", ["_supports_trl_loss_kernel", "selective_log_softmax",
                                      "entropy_from_logits", "selective_log_softmax_and_entropy"],
                 ns)
    return ns


def main():
    ts.quiet()
    ns = helpers()
    g = torch.Generator().manual_seed(17)
    cases = []
    for name, scale, temperature in [("random", 1.5, 1.0), ("temperature 0.7", 1.5, 0.7),
                                     ("temperature 1.8", 3.0, 1.8), ("peaked", 25.0, 1.0),
                                     ("large logits", 1000.0, 1.0)]:
        logits = (torch.randn(N, T, V, generator=g) * scale).float()
        if name == "large logits":
            logits += 500.0  # every logit far from 0
        ids = torch.randint(0, V, (N, T), generator=g)
        w = torch.randn(N, T - 1, generator=g).float()
        u = torch.randn(N, T - 1, generator=g).float()
        z = logits.clone().requires_grad_(True)
        logps, entropy = ns["selective_log_softmax_and_entropy"](z[:, :-1], ids[:, 1:],
                                                                 temperature=temperature)
        separate = ns["selective_log_softmax"](z[:, :-1].detach(), ids[:, 1:],
                                               temperature=temperature)
        assert torch.equal(separate, logps.detach())
        ((w * logps).sum() + (u * entropy).sum()).backward()
        cases.append({"name": name, "config": {"temperature": temperature},
                      "inputs": {"logits": ts.T(logits), "input_ids": ts.T(ids),
                                 "grad_logps": ts.T(w), "grad_entropy": ts.T(u)},
                      "outputs": {"logps": ts.T(logps), "entropy": ts.T(entropy),
                                  "grad_logits": ts.T(z.grad)}})
    ts.write("logprobs", "logprobs.py", cases)


if __name__ == "__main__":
    main()
