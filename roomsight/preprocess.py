"""Item transforms shared by training and serving, so the preprocessing exported with a model is the
preprocessing it was trained with."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageOps

ResizeMode = Literal["crop", "pad", "squish"]
RESIZE_MODES: tuple[str, ...] = ("crop", "pad", "squish")


@dataclass(frozen=True)
class Preprocessing:
    size: int
    resize_mode: ResizeMode = "squish"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        return cls(size=int(d["size"]), resize_mode=d.get("resize_mode", "squish"),
                   mean=tuple(d.get("mean", (0.5,) * 3)), std=tuple(d.get("std", (0.5,) * 3)))


def resize(img: Image.Image, size: int, mode: ResizeMode) -> Image.Image:
    """Square `size` x `size`: crop keeps the centre, pad keeps everything (letterbox), squish distorts."""
    img = img.convert("RGB")
    if mode == "crop":
        return ImageOps.fit(img, (size, size), Image.Resampling.BILINEAR)
    if mode == "pad":
        return ImageOps.pad(img, (size, size), Image.Resampling.BILINEAR, color=(0, 0, 0))
    return img.resize((size, size), Image.Resampling.BILINEAR)


def to_tensor(img: Image.Image, prep: Preprocessing) -> torch.Tensor:
    """Resized RGB image -> normalised CHW float tensor."""
    arr = np.asarray(resize(img, prep.size, prep.resize_mode), dtype=np.float32) / 255.0
    arr = (arr - np.asarray(prep.mean, dtype=np.float32)) / np.asarray(prep.std, dtype=np.float32)
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def batch_tensor(images: list[Image.Image], prep: Preprocessing) -> torch.Tensor:
    return torch.stack([to_tensor(im, prep) for im in images])
