"""The classifier: a pretrained backbone, then two fully connected layers (softmax applied at
inference), as in the seed. It returns the logits and the backbone's pooled embedding, which
monitoring uses to tell familiar inputs from novel ones."""

from __future__ import annotations

import torch
from torch import nn

from training.backbones import Backbone

HIDDEN = 256


class RoomNet(nn.Module):
    def __init__(self, backbone: Backbone, n_classes: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.backbone = backbone.module
        self.head = nn.Sequential(nn.Linear(backbone.features, HIDDEN), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(HIDDEN, n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.backbone(x)
        return self.head(emb), emb

    def freeze_backbone(self) -> None:
        """Head-only training: the backbone's weights and its batch-norm statistics stay as pretrained."""
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> RoomNet:
        super().train(mode)
        if mode and not any(p.requires_grad for p in self.backbone.parameters()):
            self.backbone.eval()
        return self
