"""The exported model when training cross-fitted K members: one frozen trunk, run once, and the K members'
tails and heads on its output. Its logits are the mean of the members' logits (the softmax of that is the
normalised geometric mean of their probabilities), its embedding the mean of their embeddings. It exports
as one torch.export program like any RoomNet, so serving loads it without knowing it is an ensemble.
"""

from __future__ import annotations

import torch
from torch import nn


class Ensemble(nn.Module):
    def __init__(self, trunk: nn.Module, members: list[nn.Module]) -> None:
        super().__init__()
        self.trunk = trunk
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.trunk(x)
        outs = [m(z) for m in self.members]
        return torch.stack([logits for logits, _ in outs]).mean(0), torch.stack([emb for _, emb in outs]).mean(0)
