"""Training parts that need no registry: the trunk/tail split and augmented views behind cached fine-tuning, the tune
modes, backbone weight errors, and augmentation that keeps the class."""

import pytest
import torch

from roomsight.errors import BackboneError
from training import backbones, cached
from training.model import RoomNet


@pytest.mark.parametrize("name,tail_blocks", [("efficientnet_lite0", 2), ("resnet18", 1)])
def test_tail_of_trunk_is_the_whole_backbone(name, tail_blocks):
    bb = backbones.create(name, pretrained=False)
    model = RoomNet(bb, 3).eval()
    trunk, net = cached.prepare(model, bb, tail_blocks)
    x = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():
        logits, emb = model(x)
        logits2, emb2 = net.eval()(trunk(x))
    assert torch.allclose(logits, logits2, atol=1e-5) and torch.allclose(emb, emb2, atol=1e-5)
    # only the tail and head train, and training the tail trains the model itself (shared modules)
    trainable = {id(p) for p in net.parameters() if p.requires_grad}
    assert trainable and not any(p.requires_grad for p in trunk.parameters())
    assert trainable <= {id(p) for p in model.parameters()}


def test_head_only_caches_the_whole_backbone():
    bb = backbones.create("tiny_cnn")
    model = RoomNet(bb, 4)
    trunk, net = cached.prepare(model, bb, 0)
    assert trunk is model.backbone
    assert {id(p) for p in net.parameters() if p.requires_grad} == {id(p) for p in model.head.parameters()}


def test_tail_batchnorm_stays_frozen_in_training():
    bb = backbones.create("efficientnet_lite0", pretrained=False)
    _, net = cached.prepare(RoomNet(bb, 3), bb, 1)
    net.train()
    bns = [m for m in net.tail.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and not any(m.training for m in bns) and net.head.training


def test_tune_modes():
    from roomsight.errors import DataError
    from training.pipeline import TrainConfig, tune_mode

    lite0 = backbones.create("efficientnet_lite0")
    assert tune_mode(TrainConfig(), lite0) == "head" and tune_mode(TrainConfig(tune="last"), lite0) == "last"
    assert tune_mode(TrainConfig(), backbones.create("efficientnet_lite0", pretrained=False)) == "full"
    tiny = backbones.create("tiny_cnn")
    assert tune_mode(TrainConfig(), tiny) == "full"
    assert tune_mode(TrainConfig(head_only=True), lite0) == "head"
    with pytest.raises(DataError, match="tiny_cnn has no trunk/tail split"):
        tune_mode(TrainConfig(tune="last"), tiny)


@pytest.mark.parametrize("options,says", [
    ({"tune": "most"}, "head, last or full"), ({"head_only": True, "tune": "full"}, "contradict"),
    ({"resize_mode": "zoom"}, "crop, pad, squish"), ({"backbone": "vgg99"}, "unknown backbone"),
    ({"threshold_method": "guess"}, "point, lcb"), ({"threshold_confidence": 1.0}, "between 0 and 1"),
    ({"folds": 0}, "at least 1"),
])
def test_bad_options_fail_before_any_photo_is_read(tmp_path, options, says):
    from roomsight.config import load_settings
    from roomsight.errors import UserError
    from training.pipeline import TrainConfig, train

    settings = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path)})
    with pytest.raises(UserError, match=says):  # not "data not found", which loading the photos would say
        train(settings, TrainConfig(data=tmp_path / "no-photos-here", **options))


def test_weights_files_that_are_not_the_backbones_are_clear_errors(tmp_path):
    junk, other = tmp_path / "photo.jpg", tmp_path / "linear.pt"
    junk.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    torch.save(torch.nn.Linear(3, 2).state_dict(), other)
    with pytest.raises(BackboneError, match="not a PyTorch weights file for tiny_cnn"):
        backbones.create("tiny_cnn", weights=junk)
    with pytest.raises(BackboneError, match=r"does not fit tiny_cnn.*missing.*2 unexpected \(first: weight\)"):
        backbones.create("tiny_cnn", weights=other)
    with pytest.raises(BackboneError, match="does not fit resnet18"):
        backbones.create("resnet18", weights=other)
    torch.save(backbones.create("tiny_cnn").module.state_dict(), other)
    assert backbones.create("tiny_cnn", weights=other).pretrained


def test_missing_imagenet_weights_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty torch cache
    with pytest.raises(BackboneError, match="--weights PATH.*--no-pretrained"):
        backbones.create("resnet18")
    assert not backbones.create("resnet18", pretrained=False).pretrained
    with pytest.raises(BackboneError, match="unknown backbone"):
        backbones.create("vgg99")


def test_efficientnet_loads_offline_imagenet_weights():
    bb = backbones.create("efficientnet_lite0")
    assert bb.pretrained and bb.features == 1280 and bb.input_size == 256
    random_init = backbones.create("efficientnet_lite0", pretrained=False)
    w1 = bb.module.conv_stem.weight
    assert not torch.allclose(w1, random_init.module.conv_stem.weight)


def test_augmentation_keeps_images_recognisable():
    from training.augment import Augmentation

    gen = torch.Generator().manual_seed(0)
    a = torch.linspace(-0.8, 0.8, 16).view(16, 1, 1, 1)
    x = torch.cat([a.expand(16, 3, 16, 32), (-a).expand(16, 3, 16, 32)], dim=2)  # top half a, bottom -a
    x = x + 0.05 * torch.randn(16, 3, 32, 32, generator=gen)
    y = Augmentation(rotate_p=1.0)(x, gen, (0.5,) * 3, (0.5,) * 3)
    assert y.shape == x.shape and not torch.allclose(x, y)
    # no vertical flips or large rotations: what was above stays above, for every image
    before = x[:, :, :16].mean((1, 2, 3)) - x[:, :, 16:].mean((1, 2, 3))
    after = y[:, :, :16].mean((1, 2, 3)) - y[:, :, 16:].mean((1, 2, 3))
    assert torch.equal(torch.sign(before), torch.sign(after))


def test_cached_views_are_the_mirror_image_then_crops():
    from PIL import Image

    from roomsight.preprocess import Preprocessing, to_tensor

    img = Image.new("RGB", (120, 90), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 40, 90))  # a white band on the left
    prep = Preprocessing(size=32)
    views = cached.cache_views(torch.nn.Identity(), [img, img], prep, cached.Views(count=3, seed=1))
    assert views.shape == (2, 3, 3, 32, 32)
    assert torch.equal(views[0, 0], to_tensor(img, prep).flip(-1))  # view 0: the mirror image
    left_minus_right = views[0, :, :, :, :16].mean((1, 2, 3)) - views[0, :, :, :, 16:].mean((1, 2, 3))
    assert left_minus_right[1] > 0 > left_minus_right[2]  # a crop, then a mirrored crop: the band moves side
    assert not torch.equal(views[0, 1], to_tensor(img, prep))  # a crop, not the picture itself
    assert not torch.equal(views[0, 1], views[1, 1])  # each image gets its own random crop


def test_crops_keep_most_of_the_picture():
    import random

    rng, v = random.Random(0), cached.Views(min_area=0.5)
    for _ in range(500):
        left, top, right, bottom = cached.crop_box(341, 256, v, rng)
        assert 0 <= left < right <= 341 and 0 <= top < bottom <= 256
        assert (right - left) * (bottom - top) >= 0.45 * 341 * 256  # rounding and the aspect clamp aside


def test_fit_learns_from_the_cached_views():
    """Training items that say the opposite class, with views that say the right one: the views are picked
    three times out of four, so only a fit that uses them learns the right direction."""
    from training.trainer import FitConfig, fit

    class Linear(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.fc(x), x

    gen = torch.Generator().manual_seed(0)

    def signal(labels: torch.Tensor) -> torch.Tensor:
        return (labels.float() * 2 - 1).view(-1, 1) + 0.5 * torch.randn(len(labels), 8, generator=gen)

    y, y_va = torch.randint(2, (200,), generator=gen), torch.randint(2, (100,), generator=gen)
    views = torch.stack([signal(y) for _ in range(3)], dim=1)
    cfg = FitConfig(epochs=10, lr=0.02, augment=False, patience=10)
    with_views = fit(Linear(), signal(1 - y), y, signal(y_va), y_va, cfg, x_train_views=views)
    without = fit(Linear(), signal(1 - y), y, signal(y_va), y_va, cfg)
    assert with_views.best_valid_accuracy >= 0.9 and without.best_valid_accuracy <= 0.3


def test_photos_too_few_to_keep_a_test_part_are_refused_before_fitting(tmp_path):
    """Two photos a class is enough to split into training and validation, none left to test: that was a
    `stack expects a non-empty TensorList` crash after fitting started."""
    from roomsight.config import load_settings
    from roomsight.errors import DataError
    from training.pipeline import TrainConfig, train

    settings = load_settings(environ={"ROOMSIGHT_HOME": str(tmp_path)})
    with pytest.raises(DataError, match="test part"):
        train(settings, TrainConfig(synthetic_per_class=2, synthetic_size=16, epochs=1, allow_always_unsure=True))


def test_a_class_without_test_photos_has_no_recall_or_ap_rather_than_zero():
    """`rollout evaluate` and the model's metrics gave such a class recall and AP 0.0, which reads as a
    class the model never finds, and drags a mean of APs down."""
    import numpy as np

    from training.evaluate import build_report
    from training.pipeline import at_thresholds

    probs, y = np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 0])
    cuts = {"a": 0.5, "b": 0.5}
    per_class = build_report(probs, y, np.array([0, 0]), ["a", "b"], cuts)["per_class"]
    assert per_class["b"]["recall"] is None and per_class["b"]["ap"] is None and per_class["b"]["support"] == 0
    assert per_class["a"]["recall"] == 1.0 and per_class["a"]["ap"] == 1.0
    measured = at_thresholds(probs, y, ["a", "b"], cuts)
    assert measured["test_recall_at_thresholds.b"] is None and measured["test_recall_at_thresholds.a"] == 1.0
