"""The registry helper behind backbones, descriptors, out-of-domain rules, shift kinds and painters, and
what a registration must carry: a backbone registered in one place trains, caches and exports by its spec."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from roomsight.errors import RegistrationError
from roomsight.registries import Registry


def test_a_name_is_registered_once_and_an_unknown_one_lists_the_known():
    reg: Registry[int] = Registry("widget")
    reg.add("a", 1)
    assert reg.register("b")(2) == 2
    assert reg["b"] == 2 and list(reg) == ["a", "b"] and "a" in reg and len(reg) == 2
    with pytest.raises(RegistrationError, match="widget 'a' is registered twice"):
        reg.add("a", 3)
    with pytest.raises(RegistrationError, match="unknown widget 'c'; choose one of a, b"):
        reg["c"]
    reg.remove("a")
    assert reg.names() == ("b",)


def test_an_owner_raises_its_own_error_for_unknown_names():
    from roomsight.errors import BackboneError
    from training.backbones import BACKBONES

    with pytest.raises(BackboneError, match="unknown backbone 'vgg99'; choose one of tiny_cnn, efficientnet_lite0"):
        BACKBONES["vgg99"]


@pytest.fixture
def mini_backbone():
    """A backbone registered by a test as a user would add one: one registration, nothing else."""
    from training.backbones import BACKBONES, BackboneSpec

    def build() -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                             nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU()),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def split(module: nn.Module, tail_blocks: int) -> tuple[nn.Module, nn.Module]:
        return nn.Sequential(*module[:2]), nn.Sequential(*module[2:])

    BACKBONES.add("test_mini", BackboneSpec(build=build, features=16, input_size=40, mean=(0.4, 0.4, 0.4),
                                            std=(0.2, 0.2, 0.2), weights=None, split=split))
    yield "test_mini"
    BACKBONES.remove("test_mini")


def test_a_backbone_registered_in_one_place_trains_on_its_cache_and_exports(mini_backbone, tmp_path):
    from roomsight import registry
    from tests.conftest import settings_for
    from training import backbones
    from training.pipeline import TrainConfig, train

    weights = tmp_path / "mini.pt"
    torch.save(backbones.create(mini_backbone).module.state_dict(), weights)
    settings = settings_for(tmp_path / "home")
    result = train(settings, TrainConfig(backbone=mini_backbone, weights=weights, tune="last", epochs=2,
                                         synthetic_per_class=8, synthetic_size=32, allow_always_unsure=True))
    registry.configure(settings)
    pack = registry.load_model(result.registered.ref)
    assert pack.meta.backbone == mini_backbone
    assert (pack.meta.preprocessing.size, pack.meta.preprocessing.mean) == (40, (0.4, 0.4, 0.4))
    run = registry.client().get_run(result.registered.run_id)
    assert run.data.params["tune"] == "last" and run.data.params["image_size"] == "40"
