# SPDX-FileCopyrightText: 2026 The rlhf++ authors
# SPDX-License-Identifier: Apache-2.0
"""Reward-model fixtures from TRL's own RewardTrainer.compute_loss
(trl/trainer/reward_trainer.py), read from the installed package.

The model stand-in returns the given rewards (2N, 1) as its logits ([chosen; rejected]);
recorded: the loss, the metrics and d loss / d rewards (torch autograd).

    $RLHF_TOOLS_PYTHON tools/reference/trl/reward.py [--out DIR]   # tests/fixtures/trl/reward.json
"""
import types

import torch
from torch import nn

import trl_source as ts

N = 5


def trainer_class():
    ns = {"torch": torch, "nn": nn}
    ts.load_defs("trainer/reward_trainer.py", ["RewardTrainer.compute_loss"], ns)
    return type("RewardTrainerStandIn", (), {"compute_loss": ns["compute_loss"]})


class RewardModel:
    """A sequence-classification stand-in: its logits are the given rewards (2N, 1)."""

    def __init__(self, rewards):
        self.rewards = rewards.detach().clone().float().reshape(-1, 1).requires_grad_(True)
        self.training = True

    def __call__(self, **kwargs):
        return types.SimpleNamespace(logits=self.rewards)


def run_case(Trainer, name, rewards, margin=None, center=None):
    model = RewardModel(rewards)
    self = Trainer()
    self.model = model
    self.accelerator = ts.Accelerator()
    self.args = types.SimpleNamespace(center_rewards_coefficient=center)
    self._metrics = ts.new_metrics()
    self._total_train_tokens = 0
    self._tp_size = 1
    inputs = {"attention_mask": torch.ones(2 * N, 3, dtype=torch.int64)}
    if margin is not None:
        inputs["margin"] = margin
    loss = self.compute_loss(model, inputs)
    loss.backward()
    case_inputs = {"rewards": ts.T(model.rewards.detach().reshape(-1))}
    if margin is not None:
        case_inputs["margin"] = ts.T(margin)
    return {"name": name, "config": {"center_rewards_coefficient": center}, "inputs": case_inputs,
            "outputs": {"loss": ts.S(loss), "metrics": ts.last_metrics(self._metrics),
                        "grad_rewards": ts.T(model.rewards.grad.reshape(-1))}}


def main():
    ts.quiet()
    Trainer = trainer_class()
    g = torch.Generator().manual_seed(3)
    r = lambda s=1.5: (torch.randn(2 * N, generator=g) * s).float()
    margin = (torch.rand(N, generator=g) * 2.0).float()
    cases = [run_case(Trainer, "bradley-terry", r()),
             run_case(Trainer, "with margin", r(), margin=margin),
             run_case(Trainer, "center 0.01", r(), center=0.01),
             run_case(Trainer, "margin and center 0.1", r(3.0), margin=margin, center=0.1),
             run_case(Trainer, "large rewards", r(40.0), center=0.01),
             run_case(Trainer, "ties", torch.tensor([0.5] * (2 * N)))]
    ts.write("reward", "reward.py", cases)


if __name__ == "__main__":
    main()
