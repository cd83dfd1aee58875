"""What `resolved_side` and `highlights` read on drawn pictures whose answer is known: which side counts,
which of the two shares decides, what flat areas and a bright corner do."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from monitoring import descriptors as d
from monitoring.ood import Calibration
from monitoring.shifts import shift
from tests.test_descriptors import texture


def checker(width: int, height: int, covered: float, background: int = 200) -> Image.Image:
    """A checkerboard sharp to the pixel over the left `covered` share of a flat background."""
    a = np.full((height, width), background, np.uint8)
    cols = int(width * covered)
    yy, xx = np.mgrid[:height, :cols]
    a[:, :cols] = ((yy // 8 + xx // 8) % 2) * 255
    return Image.fromarray(a).convert("RGB")


def test_a_sharp_photo_mostly_flat_is_as_resolved_as_one_sharp_everywhere():
    # A clipped window or a plain wall over most of the frame is no missing detail; counted as
    # structured, its flat blocks read as soft, and a sharp photo was read at 40% of its detail.
    full = d.describe(checker(512, 512, 1.0))["resolved_side"]
    for covered in (0.3, 0.45):
        assert d.describe(checker(512, 512, covered))["resolved_side"] == pytest.approx(full, rel=0.05)


def test_a_wide_photo_is_as_resolved_as_its_short_side():
    # Both are read whole (within DETAIL_SIDE): the extra width adds no detail across the short side.
    wide = d.describe(checker(256, 128, 1.0))["resolved_side"]
    square = d.describe(checker(128, 128, 1.0))["resolved_side"]
    assert wide == pytest.approx(square, rel=0.1)
    assert wide <= 128


def band(photo: Image.Image, ratio: float) -> Image.Image:
    w = photo.width
    top = (photo.height - round(w / ratio)) // 2
    return photo.crop((0, top, w, top + round(w / ratio)))


def test_a_sharp_panorama_is_read_at_the_detail_of_a_3_2_photo():
    # Reduced to DETAIL_SIDE on its long side, a sharp 3:1 photo was read at half a 3:2 photo's detail and
    # flagged low resolution; its enlargement must still be flagged.
    photo = texture(768, seed=1)
    flag = Calibration.from_reference(None)
    as_3_2 = d.describe(band(photo, 1.5))["resolved_side"]
    for ratio in (16 / 9, 2.0, 3.0):
        wide = band(photo, ratio)
        assert d.prepare(wide).detail.height == d.DETAIL_SHORT
        row = d.describe(wide)
        assert row["resolved_side"] == pytest.approx(as_3_2, rel=0.15)
        assert "low_resolution" not in flag.assess(row).flags
        small = wide.resize((wide.width // 6, wide.height // 6), Image.Resampling.BILINEAR)
        assert "low_resolution" in flag.assess(d.describe(small.resize(wide.size, Image.Resampling.BICUBIC))).flags


def test_the_detail_image_grows_only_for_photos_wider_than_3_2():
    assert [d.detail_side(w, h) for w, h in [(4000, 4000), (3000, 2000), (2000, 3000), (4000, 3000)]] == [256] * 4
    assert d.detail_side(1920, 1080) == 303 and d.detail_side(3000, 1000) == 510
    assert d.detail_side(10000, 1000) == d.DETAIL_LONG  # a banner's cost stays bounded


def test_a_sharp_border_on_an_enlargement_does_not_hide_it():
    # The border's blocks pass the block-by-block reading as sharp; the spectrum, the lesser of the two
    # shares, still sees the enlargement inside it.
    for seed in range(3):
        photo = texture(seed=seed)
        clean = d.describe(photo)["resolved_side"]
        assert d.describe(shift(photo, "framed", 0.5, seed))["resolved_side"] < 0.25 * clean


def test_highlights_read_the_brightest_tenth_so_a_lit_lamp_is_not_night():
    # A dark room with a bright lamp or window over 15% of the frame has light; a mean over the
    # brighter half would read it as dark.
    a = np.zeros((100, 100, 3), np.uint8)
    a[:15] = 255
    assert d.describe(Image.fromarray(a))["highlights"] == pytest.approx(1.0)


def test_serving_keeps_a_3_2_photos_short_side_for_photos_up_to_3_1_only():
    # As the README says: serving decodes at most SERVE_MAX_SIDE a side, so DETAIL_LONG is never reached there.
    import io

    from roomsight.images import SERVE_MAX_SIDE, decode_image

    def served(w: int, h: int) -> tuple[int, int]:
        buf = io.BytesIO()
        Image.new("RGB", (w, h), (90, 90, 90)).save(buf, "JPEG")
        return d.prepare(decode_image(buf.getvalue(), max_side=SERVE_MAX_SIDE).image).detail.size

    assert min(served(3000, 1000)) == d.DETAIL_SHORT
    assert served(4000, 1000) == (SERVE_MAX_SIDE, SERVE_MAX_SIDE // 4)
