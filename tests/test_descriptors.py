"""Per-image descriptors and out-of-domain flags: pure logic on drawn and (when present) real photos."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from typer.testing import CliRunner

from monitoring import descriptors as d
from monitoring.ood import IMAGE_FLAGS, RULES, Calibration
from monitoring.shifts import SHIFTS, shift
from monitoring.shifts.ops import jpeg, sensor_noise, to_array, to_image
from roomsight.errors import RegistrationError
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
        with pytest.raises(RegistrationError, match="twice"):
            d.descriptor("test_red_share")(red_share)
    finally:
        d.DESCRIPTORS.remove("test_red_share")
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
    # Pixel descriptors see at most ANALYSIS_SIDE pixels, detail ones detail_side, size ones the upload's size.
    big = d.prepare(Image.new("RGB", (1024, 512)), 4000, 2000, 1_000_000)
    assert max(big.rgb.shape[:2]) == d.ANALYSIS_SIDE and (big.width, big.height) == (4000, 2000)
    assert min(big.detail.size) == d.DETAIL_SHORT  # wider than 3:2: its short side is kept
    assert max(d.prepare(Image.new("RGB", (1200, 800))).detail.size) == d.DETAIL_SIDE


def texture(n: int = 256, seed: int = 0) -> Image.Image:
    """Random detail with a natural scene's spectrum (power ~ 1/f^2), at every scale down to the pixel."""
    rng = np.random.default_rng(seed)
    f = np.hypot(np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :])
    f[0, 0] = 1.0
    x = np.fft.ifft2((rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) / f).real
    return Image.fromarray(((x - x.min()) / (x.max() - x.min()) * 200 + 28).astype(np.uint8)).convert("RGB")


def enlarged(photo: Image.Image) -> Image.Image:
    """`photo` (256 px) reduced to 64 px and enlarged back: a quarter of its detail, all of its pixels."""
    return photo.resize((64, 64), Image.Resampling.BILINEAR).resize((256, 256), Image.Resampling.BICUBIC)


def luma(image: Image.Image) -> np.ndarray:
    """What monitoring.resolution reads: the photo's luma as float32 in [0, 1]."""
    return np.asarray(image.convert("L"), dtype=np.float32) / 255


@pytest.mark.parametrize("seed", [0, 1])
def test_resolved_side_sees_missing_detail_not_pixel_count(seed):
    """An upscaled photo has the pixel count of a sharp one but the detail of a small one; the short side
    alone (what the flag read first) cannot tell them apart, resolved_side can. Sharpening the enlargement
    raises the fine detail that is left, which fooled a ratio of fine to coarse detail (fine_detail), but
    puts back no frequency that is gone, and grain on top is taken off as noise."""
    photo = texture(seed=seed)
    upscaled = enlarged(photo)
    sharpened = upscaled.filter(ImageFilter.UnsharpMask(radius=2, percent=200, threshold=0))
    grained = to_image(sensor_noise(to_array(upscaled), np.random.default_rng(seed), 0.005))
    got = {name: d.describe(im) for name, im in [
        ("sharp", photo), ("upscaled", upscaled), ("sharpened", sharpened), ("grained", grained),
        ("small", photo.resize((64, 64), Image.Resampling.BILINEAR)), ("compressed", jpeg(photo, 40)),
        ("smaller", photo.resize((192, 192), Image.Resampling.BILINEAR))]}
    side = {name: row["resolved_side"] for name, row in got.items()}
    assert got["upscaled"]["short_side"] == got["sharp"]["short_side"] == 256
    assert side["sharp"] > 180 and side["compressed"] > 140 and side["smaller"] > 110
    assert side["upscaled"] < 60 and side["small"] <= 64 and side["grained"] < 60
    assert side["sharpened"] < 0.4 * side["sharp"]
    assert got["sharpened"]["fine_detail"] > 2 * got["upscaled"]["fine_detail"]
    # A flat picture holds no detail, so no evidence that any is missing.
    assert d.describe(Image.new("RGB", (256, 256), (120, 120, 120)))["resolved_side"] == 256


def test_resolved_share_falls_as_one_over_the_enlargement():
    """Enlarged f times, a photo's cutoff reads about 1/f of its own: the same multiple of 1/f for f from 1.5
    to 6, so the flag's log2 statistic moves by log2(f) whatever the factor."""
    from monitoring.resolution import resolved_share

    photo = texture(seed=2)
    base = resolved_share(luma(photo))
    by_factor = {f: photo.resize((round(256 / f),) * 2, Image.Resampling.BOX).resize((256, 256),
                                                                                     Image.Resampling.BICUBIC)
                 for f in (1.5, 2, 3, 4, 6)}
    times = [resolved_share(luma(im)) / base * f for f, im in by_factor.items()]
    assert all(0.9 < t < 1.5 for t in times) and max(times) / min(times) < 1.2, times


def stamped(image: Image.Image) -> Image.Image:
    """A site's name stamped across a corner: sharp white letters with a dark outline."""
    out = image.copy()
    ImageDraw.Draw(out).text((12, 12), "roomsite.example", font=ImageFont.load_default(size=24), fill=(255, 255, 255),
                             stroke_width=2, stroke_fill=(20, 20, 20))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_a_name_stamped_on_an_enlargement_does_not_make_it_sharp(seed):
    """Sharp letters in a corner put back the fine detail the spectrum of the whole photo looks for, so the
    cutoff alone reads a stamped enlargement as nearly sharp; block by block the letters are a few sharp
    blocks among soft ones, and resolved_side takes the lesser share. A stamped sharp photo stays sharp."""
    from monitoring.resolution import resolved_share

    photo = texture(seed=seed)
    big = enlarged(photo)
    assert resolved_share(luma(stamped(big))) > 2 * resolved_share(luma(big))
    side = {name: d.describe(im)["resolved_side"] for name, im in [
        ("enlarged", big), ("stamped", stamped(big)), ("sharp", photo), ("sharp stamped", stamped(photo))]}
    assert side["enlarged"] < 60 and side["stamped"] < 60
    assert side["sharp"] > 180 and side["sharp stamped"] > 180


def test_sharp_share_counts_the_structured_blocks_sharp_to_the_pixel():
    """Texture everywhere carries as much fine detail as coarse, and must not be taken for grain; an
    enlargement has none sharp, with grain on top or not; a photo half enlarged keeps its sharp half; a flat
    or tiny picture is no evidence."""
    from monitoring.resolution import SHARP_FLOOR, sharp_share

    def share(im: Image.Image) -> float:
        fine, _, coarse, _ = d.prepare(im).pyramid
        return sharp_share(fine, coarse)

    photo = texture(seed=3)
    big = enlarged(photo)
    half = photo.copy()
    half.paste(big.crop((128, 0, 256, 256)), (128, 0))
    grained = to_image(sensor_noise(to_array(big), np.random.default_rng(3), 0.005))
    assert share(photo) > 0.95 and share(half) > 0.6
    assert share(big) == share(grained) == SHARP_FLOOR
    assert share(Image.new("RGB", (256, 256), (120, 120, 120))) == share(photo.resize((24, 24))) == 1.0


def test_flags_fire_on_night_and_low_resolution_not_on_clean_scenes():
    cal = Calibration.from_reference(reference_of(scenes(60, seed=0)))
    rng = np.random.default_rng(1)
    clean = [cal.assess(d.describe(im), 0.5, IMAGE_FLAGS) for im in scenes(40, seed=500)]
    night = [cal.assess(d.describe(shift(im, "night_street", rng.uniform(), i)), 0.5, IMAGE_FLAGS) for i, im in enumerate(scenes(20, seed=600))]
    small = [cal.assess(d.describe(shift(im, "small", 0.3, i)), 0.5, IMAGE_FLAGS) for i, im in enumerate(scenes(20, seed=700))]
    assert sum(bool(r.flags) for r in clean) <= 1
    assert all("night_time" in r.flags for r in night)
    assert all(r.flags == ["low_resolution"] for r in small)
    for r in clean + night + small:
        assert set(r.scores) == set(IMAGE_FLAGS) and all(0.0 <= v <= 1.0 for v in r.scores.values())
    # A darker photo never scores lower: the score is monotone in the statistic.
    base = scenes(1, seed=42)[0]
    dark = [cal.scores(d.describe(shift(base, "dim", 0.0, 0)))["night_time"]] + [
        cal.scores(d.describe(shift(base, "night_street", s, 0)))["night_time"] for s in (0.0, 0.5, 1.0)]
    assert dark == sorted(dark) and dark[0] < 0.5 < dark[-1]


def test_calibration_follows_the_reference():
    # The same 48 px photo is low resolution for a model trained on 256 px photos, normal for one trained at 48 px.
    photo = d.describe(scenes(1, size=48, seed=9)[0])
    big = Calibration.from_reference(reference_of(scenes(10, size=256)))
    small = Calibration.from_reference(reference_of([im.resize((48, 48)) for im in scenes(10)]))
    assert big.scores(photo)["low_resolution"] > 0.5 > small.scores(photo)["low_resolution"]
    # Novelty needs the model's embedding distance; the exported embedding summary calibrates it.
    cal = Calibration.from_reference({"embedding": {"mean": [0.0], "scale": 1.0, "p99": 2.0}})
    assert cal.scores({"embedding_distance": 1.0})["novelty"] < 0.01
    assert cal.scores({"embedding_distance": 4.0})["novelty"] > 0.99
    assert "novelty" not in Calibration.from_reference(None).centre


def test_a_nan_descriptor_is_no_evidence_not_a_certain_flag():
    """A NaN statistic passed the score's clamp as its upper bound (min(60, nan) is 60), so a photo with a
    NaN descriptor scored 1.0 and was flagged, and held on the champion, on no evidence at all."""
    cal = Calibration.from_reference(reference_of(scenes(10)))
    photo = d.describe(scenes(1, seed=77)[0])
    for name in ("brightness", "resolved_side"):
        scores = cal.scores({**photo, name: math.nan})
        assert not any(math.isnan(v) for v in scores.values())
        assert set(scores) == set(IMAGE_FLAGS) - {"night_time" if name == "brightness" else "low_resolution"}
    assert Calibration.from_reference({"embedding": {"p99": 2.0}}).assess({"embedding_distance": math.nan}).flags == []


def test_a_reference_without_resolved_side_takes_the_default_not_another_column():
    """A model exported before resolved_side existed carries the pixel count and an older estimate of
    detail, both on other scales: calibrating on either would put the threshold where every photo is
    flagged (or none), so such a reference takes the rule's default."""
    photo = texture(seed=0)
    old = reference_of([photo] * 5)
    del old["images"]["descriptors"]["resolved_side"]
    old["images"]["descriptors"]["effective_short_side"] = [256.0] * 5
    cal = Calibration.from_reference(old)
    rule = RULES["low_resolution"]
    assert cal.centre["low_resolution"] == pytest.approx(rule.default_high(old) + rule.margin)
    assert cal.scores(d.describe(photo))["low_resolution"] < 0.5
    assert cal.scores(d.describe(photo.resize((48, 48))))["low_resolution"] > 0.5


def test_inspect_prints_json_lines(tmp_path):
    from shell.cli import app

    paths = []
    for name, im in (("clean", scenes(1, size=300)[0]), ("night", shift(scenes(1, size=300)[0], "night_street", 0.5, 0)),
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
    from shell.cli import app

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


def test_inspect_fails_when_nothing_could_be_described(tmp_path):
    """bad.jpg, empty.jpg and a missing file were each "skipped" (the missing one as "[Errno 2] ...") and
    the command exited 0."""
    from shell.cli import app

    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    (tmp_path / "empty.jpg").write_bytes(b"")
    missing = tmp_path / "nonexist.jpg"
    env = {"ROOMSIGHT_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(app, ["inspect", "--no-model", str(tmp_path / "bad.jpg"), str(tmp_path / "empty.jpg"),
                                      str(missing)], env=env)
    said = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert f"no such file: {missing}" in said and "Errno" not in said
    assert "bad.jpg" in said and "empty.jpg" in said and "error: none of the inputs could be described" in said
    assert not [line for line in result.stdout.splitlines() if line.startswith("{")]

    scenes(1)[0].save(tmp_path / "good.jpg", "JPEG")
    result = CliRunner().invoke(app, ["inspect", "--no-model", str(tmp_path / "good.jpg"), str(missing)], env=env)
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["path"] for line in result.stdout.splitlines() if line.startswith("{")] == [
        str(tmp_path / "good.jpg")]
    assert f"no such file: {missing}" in " ".join(result.output.split())


def test_every_shift_kind_is_seeded_and_keeps_an_image():
    photo = scenes(1, size=96, seed=5)[0]
    reseeded = []
    for kind in SHIFTS:
        a, b = shift(photo, kind, 0.7, 11), shift(photo, kind, 0.7, 11)
        assert a.mode == "RGB" and np.array_equal(np.asarray(a), np.asarray(b)), kind
        assert not np.array_equal(np.asarray(a), np.asarray(photo)), f"{kind} left the photo as it was"
        reseeded.append(not np.array_equal(np.asarray(a), np.asarray(shift(photo, kind, 0.7, 12))))
    assert sum(reseeded) > len(reseeded) / 2  # the seed is the kinds' randomness, not a constant
    assert all(set(k.expect) <= set(RULES) for _, k in SHIFTS.items())


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_ROOMS.exists(), reason="real photos not present (../shared/data/rooms)")
def test_real_photos_flags():
    """On real photos: the shipped margins flag night shots, including lamp-lit ones, and upscaled (also
    when sharpened, grained or stamped with a site's name after) and blurred photos, and leave untouched,
    dim, lamp-lit, compressed and mildly smaller ones alone."""
    paths = sorted(REAL_ROOMS.rglob("*.jpg"))[::8]
    images = [Image.open(p).convert("RGB") for p in paths]
    ref, rest = images[: len(images) // 2], images[len(images) // 2:]
    cal = Calibration.from_reference(reference_of(ref))

    def share(kind: str, flag: str) -> float:
        hits = [flag in cal.assess(d.describe(shift(im, kind, (i % 10) / 10 + 0.05, i)), 0.5, IMAGE_FLAGS).flags
                for i, im in enumerate(rest)]
        return sum(hits) / len(hits)

    assert sum(bool(cal.assess(d.describe(im), 0.5, IMAGE_FLAGS).flags) for im in rest) <= 0.02 * len(rest)
    for kind in ("night_street", "night_lamp", "night_grey"):
        assert share(kind, "night_time") >= 0.9, kind
    for kind in ("upscaled", "blurred", "small", "sharpened_upscale", "upscaled_grain", "watermarked"):
        assert share(kind, "low_resolution") >= 0.85, kind
    for kind in ("dim", "warm_lamp"):
        assert share(kind, "night_time") <= 0.05, kind
    for kind in ("jpeg", "smaller"):
        assert share(kind, "low_resolution") <= 0.05, kind



def _night_rows(kind: str, statistic: float, n: int) -> list:
    """`n` photos of `kind` whose night-time statistic is `statistic`."""
    from benchmarks.ood_flags import Shifted
    from monitoring.shifts.cases import Case

    light = math.exp(-statistic) - 0.01
    return [Shifted(Case(f"{kind}{i}.jpg", kind, 0.0, i, False), {"brightness": light, "highlights": light})
            for i in range(n)]


def _draw(seed: int, high: float, dark_dim: int):
    """A draw whose reference quantile is `high`: 200 dim photos just past it, `dark_dim` of them 1.02
    past it, and 50 night shots 2.02 past it."""
    from benchmarks.ood_flags import Draw

    tuning = (_night_rows("dim", high + 0.12, 200 - dark_dim) + _night_rows("dim", high + 1.02, dark_dim)
              + _night_rows("night_street", high + 2.02, 50))
    return Draw(seed, [r.descriptors for r in _night_rows("clean", high, 100)], [], tuning, [])


def test_a_margin_is_cut_where_the_false_flag_target_is_shown_not_where_it_is_touched():
    """Two dark photos in 200 dim ones (1%) pass "at most 2%" as a share; its 90% upper bound (2.7%)
    does not, so the margin moves past them, and the night shots beyond are still caught."""
    from benchmarks.ood_flags import CONFIDENCE, tune_margin
    from roomsight.binomial import clopper_pearson_upper

    tuned = tune_margin("night_time", [_draw(0, 0.7, dark_dim=2)])
    assert clopper_pearson_upper(2, 200, CONFIDENCE) > 0.02 >= clopper_pearson_upper(0, 200, CONFIDENCE)
    assert tuned["margin"] == pytest.approx(1.05)
    assert tuned["tuning_flagged"] == {"dim": 0.0, "night_street": 1.0}


def test_draws_pooled_show_what_one_cannot_each_counted_from_its_own_reference():
    """Ten dark dim photos in 1,000 over five draws (the same 1%) are shown under 2% (bound 1.5%), so the
    pooled margin need not pass them; each draw's reference sits elsewhere, and a threshold counted from
    any one reference but its own would flag its dim photos wholesale."""
    from benchmarks.ood_flags import CONFIDENCE, tune_margin
    from roomsight.binomial import clopper_pearson_upper

    draws = [_draw(seed, high, dark_dim=2) for seed, high in enumerate((0.7, 0.8, 0.65, 0.9, 0.73))]
    assert clopper_pearson_upper(10, 1000, CONFIDENCE) <= 0.02
    assert [tune_margin("night_time", [d])["margin"] for d in draws] == pytest.approx([1.05] * 5)
    pooled = tune_margin("night_time", draws)
    assert pooled["margin"] == pytest.approx(0.15)
    assert pooled["tuning_flagged"] == {"dim": 0.01, "night_street": 1.0}


def test_a_photo_at_the_flags_centre_is_flagged():
    """The centre is where the score is 0.5, and a score of the threshold flags: `assess` holds photos scoring
    at least it."""
    cal = Calibration({"novelty": 0.0}, {"novelty": 0.08})
    assert cal.assess({"embedding_distance": 1.0}) == cal.assess({"embedding_distance": 1.0}, 0.5)
    assert cal.assess({"embedding_distance": 1.0}).flags == ["novelty"]


def test_a_flag_without_a_calibration_is_not_scored():
    """A model exported without an embedding summary has no novelty centre: its photos get no novelty score,
    not a crash of the request."""
    assert "novelty" not in Calibration.from_reference(None).scores({"embedding_distance": 50.0})


def test_a_reference_photo_missing_a_descriptor_leaves_the_calibration_to_the_others():
    """A reference photo whose descriptor is missing (None) or NaN is no evidence: the quantile is the others'
    (a NaN among them made the centre NaN, and no photo was ever flagged)."""
    sides = [float(s) for s in range(200, 400, 5)]
    light = [0.3 + i / 100 for i in range(len(sides))]
    clean = Calibration.from_reference({"images": {"descriptors": {"resolved_side": sides, "brightness": light,
                                                                   "highlights": light}}})
    for gap in (None, math.nan):
        cal = Calibration.from_reference({"images": {"descriptors": {
            "resolved_side": sides + [gap], "brightness": light + [gap], "highlights": light + [0.5]}}})
        assert cal.centre == pytest.approx(clean.centre)
    assert clean.assess({"resolved_side": 16.0}).flags == ["low_resolution"]


def test_a_reference_photo_is_described_as_serving_describes_the_same_upload(tmp_path):
    """The reference read a photo's size from its stored header: for a photo taken turned, its width and
    height as the sensor stored them, where serving describes it upright."""
    from monitoring.reference import image_reference
    from roomsight.config import ServeSettings
    from roomsight.images import decode_upload
    from training import data

    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # a quarter turn to show it upright
    Image.effect_noise((90, 60), 40).convert("RGB").save(path, quality=90, exif=exif)
    loaded = data.load_images([data.Item(path=path, label="a")])
    ref = image_reference([path], loaded.images, np.zeros((1, 2), np.float32), np.zeros((1, 4), np.float32),
                          ["a", "b"], {})
    served = decode_upload(path.read_bytes(), ServeSettings())
    row = {k: v[0] for k, v in ref["descriptors"].items() if k in d.DESCRIPTORS}
    assert row == d.describe(served.image, served.width, served.height, served.n_bytes)


def test_inspect_refuses_model_and_no_model_together(tmp_path):
    """`--model models:/roomtype/1 --no-model` described the photos without the model, saying nothing of --model."""
    from shell.cli import app

    scenes(1)[0].save(tmp_path / "good.jpg", "JPEG")
    result = CliRunner().invoke(app, ["inspect", "--model", "models:/roomtype/1", "--no-model", str(tmp_path / "good.jpg")],
                                env={"ROOMSIGHT_HOME": str(tmp_path / "home")})
    assert result.exit_code == 1, result.output
    assert "--model models:/roomtype/1 and --no-model contradict each other" in " ".join(result.output.split())
    assert not [line for line in result.stdout.splitlines() if line.startswith("{")]
