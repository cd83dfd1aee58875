"""Fast fine-tuning on a CPU: the frozen first part of the backbone (the trunk) runs once per image and
its activations are cached; only the last blocks (the tail) and the head train, on the cache.

Why: a full fine-tune of EfficientNet-Lite0 at 224 px costs about 0.15 s per image per epoch on two
cores, so a few epochs over a thousand photos take most of ten minutes; the early blocks hold generic
edges and textures that barely move when fine-tuned anyway. With `tail_blocks=0` this is head-only
training on cached pooled features.

Augmentation on a cache: every training image is cached as it is and mirrored (a mirrored kitchen is a
kitchen), so each epoch sees one of the two at random; rotations and colour jitter are left out, since
they would need the trunk to run again every epoch.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from training.model import RoomNet


def split_backbone(name: str, module: nn.Module, tail_blocks: int) -> tuple[nn.Module, nn.Module]:
    """(trunk, tail) with tail(trunk(x)) == module(x); the tail holds the last `tail_blocks` stages."""
    if name == "efficientnet_lite0":
        stages = list(module.blocks)
        k = len(stages) - tail_blocks
        trunk = nn.Sequential(module.conv_stem, module.bn1, *stages[:k])
        tail = nn.Sequential(*stages[k:], module.conv_head, module.bn2, module.global_pool)
    elif name in ("resnet18", "resnet50"):
        layers = [module.layer1, module.layer2, module.layer3, module.layer4]
        k = len(layers) - tail_blocks
        trunk = nn.Sequential(module.conv1, module.bn1, module.relu, module.maxpool, *layers[:k])
        tail = nn.Sequential(*layers[k:], module.avgpool, nn.Flatten())
    else:
        raise ValueError(f"{name}: no trunk/tail split; train it in full")
    return trunk, tail


def cache_trunk(trunk: nn.Module, x: torch.Tensor, batch_size: int = 32, mirror: bool = False,
                on_batch: Callable[[int], None] | None = None) -> torch.Tensor:
    """Trunk activations (in eval mode, no gradients) of `x`, or of `x` mirrored."""
    trunk.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            out.append(trunk(xb.flip(-1) if mirror else xb).clone())
            if on_batch:
                on_batch(len(xb))
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


def prepare(model: RoomNet, backbone_name: str, tail_blocks: int) -> tuple[nn.Module, TailNet]:
    """Freeze the trunk, leave the tail and head trainable; returns (trunk, trainable part). With
    `tail_blocks=0` the trunk is the whole backbone (head-only training)."""
    if tail_blocks == 0:
        trunk, tail = model.backbone, nn.Flatten()
    else:
        trunk, tail = split_backbone(backbone_name, model.backbone, tail_blocks)
    for p in trunk.parameters():
        p.requires_grad_(False)
    for p in tail.parameters():
        p.requires_grad_(True)
    return trunk, TailNet(tail, model)
