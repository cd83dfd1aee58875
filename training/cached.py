"""Fast fine-tuning on a CPU: the frozen first part of the backbone (the trunk) runs once per image and
its activations are cached; only the last blocks (the tail) and the head train, on the cache.

Why: a full fine-tune runs every block forward and backward for every image in every epoch, which on a
few CPU cores makes a few epochs over a thousand photos a long wait (BENCHMARKS.md, training, has the
times); the early blocks hold generic edges and textures that barely move when fine-tuned anyway. With `tail_blocks=0` this is head-only
training on cached pooled features.

Augmentation on a cache: every training image is cached as it is and as a few augmented views (mirrored,
and random crops of most of the picture, some mirrored: a mirrored or tighter-framed kitchen is a kitchen;
each with its brightness and contrast changed by up to `jitter`, as two cameras differ), so each epoch sees
one of them at random. The trunk runs once per view, not once per epoch: the tail and head see augmented
rooms at cached cost. Rotations are left out; what the tail learns from them is little next to a
different framing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image, ImageEnhance
from torch import nn

from roomsight.preprocess import Preprocessing, batch_tensor
from training.backbones import Backbone
from training.model import RoomNet


@dataclass(frozen=True)
class Views:
    """The augmented copies of each training image that are cached besides the image itself."""

    count: int = 1  # 1: the mirror image only; more: random crops too, every other one mirrored
    min_area: float = 0.5  # a crop keeps at least this share of the picture: the room type stays visible
    max_aspect: float = 4 / 3  # and changes the aspect ratio by at most this factor
    jitter: float = 0.0  # brightness and contrast each scaled by a factor within 1 +- jitter
    seed: int = 0


def cache_trunk(trunk: nn.Module, x: torch.Tensor, batch_size: int = 32,
                on_batch: Callable[[int], None] | None = None) -> torch.Tensor:
    """Trunk activations (in eval mode, no gradients) of `x`."""
    trunk.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            out.append(trunk(xb).clone())
            if on_batch:
                on_batch(len(xb))
    return torch.cat(out)


def crop_box(width: int, height: int, views: Views, rng: random.Random) -> tuple[int, int, int, int]:
    """A random crop (left, top, right, bottom) of at least `min_area` of the picture, inside it."""
    area = rng.uniform(views.min_area, 1.0) * width * height
    aspect = math.exp(rng.uniform(-math.log(views.max_aspect), math.log(views.max_aspect))) * width / height
    w = min(width, max(1, round(math.sqrt(area * aspect))))
    h = min(height, max(1, round(math.sqrt(area / aspect))))
    left, top = rng.randint(0, width - w), rng.randint(0, height - h)
    return left, top, left + w, top + h


def view_images(images: list[Image.Image], k: int, views: Views, rng: random.Random) -> list[Image.Image]:
    """View `k` (0-based) of each image: 0 is the mirror image; then crops, mirrored when k is even; each
    with its exposure jittered when `views.jitter` is set."""
    out = []
    for im in images:
        if k > 0:
            im = im.crop(crop_box(im.width, im.height, views, rng))
        im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if k % 2 == 0 else im
        if views.jitter:
            im = ImageEnhance.Brightness(im).enhance(rng.uniform(1 - views.jitter, 1 + views.jitter))
            im = ImageEnhance.Contrast(im).enhance(rng.uniform(1 - views.jitter, 1 + views.jitter))
        out.append(im)
    return out


def cache_views(trunk: nn.Module, images: list[Image.Image], prep: Preprocessing, views: Views,
                batch_size: int = 32, on_batch: Callable[[int], None] | None = None) -> torch.Tensor:
    """Trunk activations of `views.count` augmented views of every image: (N, views.count, ...). Views
    are made from the decoded picture, before resizing, so a crop is as sharp as the image itself."""
    rng = random.Random(views.seed)
    trunk.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            part = images[i:i + batch_size]
            per_view = [trunk(batch_tensor(view_images(part, k, views, rng), prep)).clone() for k in range(views.count)]
            out.append(torch.stack(per_view, dim=1))
            if on_batch:
                on_batch(len(part) * views.count)
    return torch.cat(out)


class TailNet(nn.Module):
    """Tail + head of a RoomNet, sharing its modules: training this trains the RoomNet in place."""

    def __init__(self, tail: nn.Module, model: RoomNet) -> None:
        super().__init__()
        self.tail = tail
        self.head = model.head

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.tail(z).flatten(1)
        return self.head(emb), emb

    def train(self, mode: bool = True) -> TailNet:
        super().train(mode)
        # Batch-norm statistics stay as pretrained: batches of 32 room photos estimate them worse
        # than ImageNet did, and the exported model must behave as it did in validation.
        for m in self.tail.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self


def prepare(model: RoomNet, backbone: Backbone, tail_blocks: int) -> tuple[nn.Module, TailNet]:
    """Freeze the trunk, leave the tail and head trainable; returns (trunk, trainable part). With
    `tail_blocks=0` the trunk is the whole backbone (head-only training). `model` is built on `backbone`."""
    if tail_blocks == 0:
        trunk, tail = model.backbone, nn.Flatten()
    else:
        trunk, tail = backbone.split(tail_blocks)
    for p in trunk.parameters():
        p.requires_grad_(False)
    for p in tail.parameters():
        p.requires_grad_(True)
    return trunk, TailNet(tail, model)
