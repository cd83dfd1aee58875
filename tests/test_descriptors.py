"""Per-image descriptors and out-of-domain flags: pure logic on drawn and (when present) real photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from monitoring import descriptors as d
from monitoring.corruptions import low_resolution, night_time
from monitoring.ood import IMAGE_FLAGS, Calibration
from tests.conftest import REAL_ROOMS


def scenes(n: int, size: int = 64, seed: int = 0) -> list[Image.Image]:
    from training.synthetic import CLASSES, render

    return [render(CLASSES[i % len(CLASSES)], np.random.default_rng(seed + i), size) for i in range(n)]


def reference_of(images: list[Image.Image]) -> dict:
    rows = [d.describe(im) for im in images]
    return {"images": {"n": len(rows), "descriptors": {k: [r[k] for r in rows] for k in rows[0]}}}


def test_registry_adds_a_descriptor_with_one_function():
    @d.descriptor("test_red_share")
    def red_share(p: d.Prepared) -> float:
        return float(p.rgb[..., 0].mean())

    try:
        out = d.describe(Image.new("RGB", (40, 30), (255, 0, 0)), n_bytes=600)
        assert out["test_red_share"] == 1.0
        with pytest.raises(ValueError, match="twice"):
            d.descriptor("test_red_share")(red_share)
    finally:
        del d.DESCRIPTORS["test_red_share"]
    assert out["width"] == 40 and out["height"] == 30 and out["short_side"] == 30
    assert out["megapixels"] == pytest.approx(1200 / 1e6) and out["bytes_per_pixel"] == pytest.approx(0.5)


def test_descriptors_measure_what_they_say():
    flat_grey = d.describe(Image.new("RGB", (64, 64), (128, 128, 128)))
    assert flat_grey["brightness"] == pytest.approx(128 / 255, abs=1e-3)
    assert flat_grey["contrast"] == pytest.approx(0, abs=1e-6) and flat_grey["sharpness"] == pytest.approx(0, abs=1e-9)
    assert flat_grey["saturation"] == pytest.approx(0, abs=1e-6)
    checker = np.kron(np.indices((8, 8)).sum(0) % 2, np.ones((8, 8))) * 255
    sharp = d.describe(Image.fromarray(checker.astype(np.uint8)).convert("RGB"))
    blurred = d.describe(Image.fromarray(checker.astype(np.uint8)).convert("RGB").resize((8, 8)).resize((64, 64), Image.Resampling.BICUBIC))
    assert sharp["sharpness"] > 5 * blurred["sharpness"] and sharp["contrast"] > 0.4
    red = d.describe(Image.new("RGB", (10, 10), (200, 20, 20)))
    assert red["saturation"] > 0.8
    # Pixel descriptors see at most ANALYSIS_SIDE pixels, size descriptors the upload's size.
    big = d.prepare(Image.new("RGB", (1024, 512)), 4000, 2000, 1_000_000)
    assert max(big.rgb.shape[:2]) == d.ANALYSIS_SIDE and (big.width, big.height) == (4000, 2000)


def test_flags_fire_on_night_and_low_resolution_not_on_clean_scenes():
    cal = Calibration.from_reference(reference_of(scenes(60, seed=0)))
    rng = np.random.default_rng(1)
    clean = [cal.assess(d.describe(im), 0.5, IMAGE_FLAGS) for im in scenes(40, seed=500)]
    night = [cal.assess(d.describe(night_time(im, rng)), 0.5, IMAGE_FLAGS) for im in scenes(20, seed=600)]
    small = [cal.assess(d.describe(low_resolution(im, rng, short_side=16)), 0.5, IMAGE_FLAGS) for im in scenes(20, seed=700)]
    assert sum(bool(r.flags) for r in clean) <= 1
    assert all("night_time" in r.flags for r in night)
    assert all(r.flags == ["low_resolution"] for r in small)
    for r in clean + night + small:
        assert set(r.scores) == set(IMAGE_FLAGS) and all(0.0 <= v <= 1.0 for v in r.scores.values())
    # A darker photo never scores lower: the score is monotone in the statistic.
    base = scenes(1, seed=42)[0]
    dark = [cal.scores(d.describe(night_time(base, np.random.default_rng(0), darkness=k, noise=0.0)))["night_time"]
            for k in (0.6, 0.3, 0.15, 0.05)]
    assert dark == sorted(dark) and dark[0] < 0.5 < dark[-1]


def test_calibration_follows_the_reference():
    # The same 48 px photo is low resolution for a model trained on 256 px photos, normal for one trained at 48 px.
    photo = d.describe(Image.new("RGB", (48, 48), (120, 110, 100)))
    big = Calibration.from_reference(reference_of([im.resize((256, 256)) for im in scenes(10)]))
    small = Calibration.from_reference(reference_of([im.resize((48, 48)) for im in scenes(10)]))
    assert big.scores(photo)["low_resolution"] > 0.99 and small.scores(photo)["low_resolution"] < 0.01
    # Novelty needs the model's embedding distance; the exported embedding summary calibrates it.
    cal = Calibration.from_reference({"embedding": {"mean": [0.0], "scale": 1.0, "p99": 2.0}})
    assert cal.scores({"embedding_distance": 1.0})["novelty"] < 0.01
    assert cal.scores({"embedding_distance": 4.0})["novelty"] > 0.99
    assert "novelty" not in Calibration.from_reference(None).centre


def test_inspect_prints_json_lines(tmp_path):
    from rollout.cli import app

    paths = []
    for name, im in (("clean", scenes(1)[0].resize((300, 300))), ("night", night_time(scenes(1)[0].resize((300, 300)), np.random.default_rng(0))),
                     ("small", scenes(1)[0].resize((40, 30)))):
        paths.append(tmp_path / f"{name}.jpg")
        im.save(paths[-1], "JPEG")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    result = CliRunner().invoke(app, ["inspect", "--no-model", *map(str, paths), str(tmp_path / "bad.jpg")],
                                env={"ROOMSIGHT_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["flags"] for line in lines] == [[], ["night_time"], ["low_resolution"]]
    assert lines[2]["descriptors"]["width"] == 40 and "brightness" in lines[0]["descriptors"]
    assert "bad.jpg" in result.output


def test_inspect_takes_folders_of_photos(tmp_path):
    from rollout.cli import app

    (tmp_path / "photos" / "upstairs").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    scenes(1)[0].save(tmp_path / "photos" / "a.jpg", "JPEG")
    scenes(1)[0].resize((40, 30)).save(tmp_path / "photos" / "upstairs" / "b.png")
    (tmp_path / "photos" / "notes.txt").write_text("not a photo")
    result = CliRunner().invoke(app, ["inspect", "--no-model", str(tmp_path / "photos"), str(tmp_path / "empty")],
                                env={"ROOMSIGHT_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [Path(line["path"]).name for line in lines] == ["a.jpg", "b.png"]
    assert "empty: no images in this folder" in " ".join(result.output.split())


@pytest.mark.skipif(not REAL_ROOMS.exists(), reason="real photos not present (../shared/data/rooms)")
def test_real_photos_flags():
    paths = sorted(REAL_ROOMS.rglob("*.jpg"))[::10]
    images = [Image.open(p).convert("RGB") for p in paths]
    ref, rest = images[: len(images) // 2], images[len(images) // 2:]
    cal = Calibration.from_reference(reference_of(ref))
    rng = np.random.default_rng(0)
    clean = sum(bool(cal.assess(d.describe(im), 0.5, IMAGE_FLAGS).flags) for im in rest)
    night = sum("night_time" in cal.assess(d.describe(night_time(im, rng)), 0.5, IMAGE_FLAGS).flags for im in rest)
    assert clean <= 0.03 * len(rest) and night >= 0.97 * len(rest)

