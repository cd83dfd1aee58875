"""Batch augmentation for training images only: changes that keep the room type (a mirrored kitchen
is a kitchen). No vertical flips or large rotations: an upside-down room is not a room photo.

Done on the whole batch as tensor operations (one affine warp for every image) rather than image by
image: with a small model, a per-image Python loop would be a large part of each training step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Augmentation:
    flip_p: float = 0.5
    rotate_p: float = 0.3
    max_degrees: float = 5.0
    brightness: float = 0.2  # multiplicative jitter, +-20%
    contrast: float = 0.2

    def __call__(self, batch: torch.Tensor, gen: torch.Generator, mean: tuple[float, ...],
                 std: tuple[float, ...]) -> torch.Tensor:
        """`batch` is normalised (N, 3, H, W); jitter works on [0, 1] pixels, so un-normalise around it."""
        n = batch.shape[0]
        m = torch.tensor(mean).view(1, 3, 1, 1)
        s = torch.tensor(std).view(1, 3, 1, 1)
        x = batch * s + m
        flip = torch.rand(n, generator=gen) < self.flip_p
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        rotate = torch.rand(n, generator=gen) < self.rotate_p
        if rotate.any():
            angle = (torch.rand(n, generator=gen) * 2 - 1) * math.radians(self.max_degrees) * rotate
            cos, sin = torch.cos(angle), torch.sin(angle)
            theta = torch.stack([torch.stack([cos, -sin, torch.zeros(n)], 1), torch.stack([sin, cos, torch.zeros(n)], 1)], 1)
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        b = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * self.brightness
        c = 1 + (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1) * self.contrast
        grey = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x * b - grey * b) * c + grey * b).clamp(0, 1)
        return (x - m) / s
