import io
import zlib
import struct

import numpy as np
import pytest
from PIL import Image

from roomsight.errors import ImageRejected
from roomsight.images import decode_image


def jpeg(w=64, h=48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 80, 40)).save(buf, "JPEG")
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h but whose data is tiny: a decompression bomb's shape."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_decodes_and_reports_original_size():
    d = decode_image(jpeg(640, 480), max_side=256)
    assert (d.width, d.height) == (640, 480)
    assert max(d.image.size) == 256 and d.image.mode == "RGB"


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_sixteen_bit_greyscale_is_scaled_not_clipped(fmt):
    """PIL's RGB conversion clipped 16-bit greyscale, so a mid-grey photo decoded almost all white, and its
    brightness and out-of-domain flags read a photo that was not there."""
    import numpy as np

    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, fmt)
    pixels = np.asarray(decode_image(buf.getvalue()).image, dtype=np.float64)
    assert pixels.shape == (64, 64, 3) and abs(pixels.mean() - 127.5) < 1 and pixels.min() == 0 and pixels.max() == 255


def _pgm16(ramp) -> bytes:  # noqa: ANN001 - a uint16 array
    """A 16-bit PGM, which PIL opens as 32-bit integers (mode I)."""
    h, w = ramp.shape
    return f"P5 {w} {h} 65535\n".encode() + ramp.astype(">u2").tobytes()


def _tiff(array) -> bytes:  # noqa: ANN001
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "TIFF")
    return buf.getvalue()


def test_a_dark_sixteen_bit_pgm_stays_dark():
    """A PGM says its depth (PIL scales every maxval above 255 to 16 bits): one whose pixels stay under 256 of
    65535 is a dark photo, not an 8-bit one to keep at full brightness."""
    import numpy as np

    dark = np.linspace(0, 255, 64 * 64).reshape(64, 64).astype(np.uint16)
    assert np.asarray(decode_image(_pgm16(dark)).image).max() <= 1


@pytest.mark.parametrize("made", ["pgm16", "int32 holding 8 bits", "int32 holding 16 bits", "int32 holding 32 bits",
                                  "float 0 to 1"])
def test_greyscale_wider_than_sixteen_bits_is_scaled_not_clipped(made):
    """PIL opens a 16-bit PGM and 32-bit TIFFs as 32-bit integers (mode I) and float TIFFs as mode F, and its RGB
    conversion clipped them: a ramp came out nearly all white (integers) or all black (floats from 0 to 1)."""
    import numpy as np

    ramp = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    data = {"pgm16": lambda: _pgm16((ramp * 65535).astype(np.uint16)),
            "int32 holding 8 bits": lambda: _tiff((ramp * 255).astype(np.int32)),
            "int32 holding 16 bits": lambda: _tiff((ramp * 65535).astype(np.int32)),
            "int32 holding 32 bits": lambda: _tiff((ramp * (2**31 - 1)).astype(np.int32)),
            "float 0 to 1": lambda: _tiff(ramp.astype(np.float32))}[made]()
    assert Image.open(io.BytesIO(data)).mode in ("I", "F"), "the case this test is about"
    pixels = np.asarray(decode_image(data).image, dtype=np.float64)
    assert pixels.shape == (64, 64, 3) and pixels.min() == 0
    assert abs(pixels.mean() - 127.5) < 1 and pixels.max() == 255


def _raw_tiff(pixels: bytes, width: int, height: int, bits: int, sample_format: int = 1) -> bytes:
    """A little-endian greyscale TIFF of one strip, for depths PIL does not write (12 bits, signed 16)."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, bits), (259, 3, 1), (262, 3, 1), (273, 4, 8), (277, 3, 1),
            (278, 4, height), (279, 4, len(pixels)), (339, 3, sample_format)]
    # One value of each tag, in the entry itself: a SHORT (type 3) left-justified is, little-endian, a LONG.
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", tag, kind, 1, value) for tag, kind, value in tags)
    ifd += struct.pack("<I", 0)
    return b"II" + struct.pack("<HI", 42, 8 + len(pixels)) + pixels + ifd


def _tiff12(values) -> bytes:  # noqa: ANN001 - a 2-D integer array, even width
    """A 12-bit TIFF: two samples in three bytes, most significant bits first."""
    a, b = values[:, 0::2].astype(np.uint32).ravel(), values[:, 1::2].astype(np.uint32).ravel()
    packed = np.stack([a >> 4, ((a & 0xF) << 4) | (b >> 8), b & 0xFF], axis=1).astype(np.uint8)
    return _raw_tiff(packed.tobytes(), values.shape[1], values.shape[0], 12)


def _tiff16s(values) -> bytes:  # noqa: ANN001 - a 2-D integer array
    return _raw_tiff(values.astype("<i2").tobytes(), values.shape[1], values.shape[0], 16, sample_format=2)


@pytest.mark.parametrize("made,top", [(_tiff12, 4095), (_tiff16s, 32767)])
def test_a_tiff_is_read_at_the_depth_it_declares(made, top):
    """A 12-bit TIFF (PIL opens it as 16-bit) was scaled as 16 bits, to a sixteenth of its brightness; a
    signed 16-bit one (PIL opens it as 32-bit integers) by its brightest pixel: at most half brightness at
    its full range, and a dark one brightened to full. Both say their depth, and are read at it."""
    ramp = np.linspace(0, 1, 64 * 64).reshape(64, 64)
    pixels = np.asarray(decode_image(made(np.rint(ramp * top))).image, dtype=np.float64)
    assert pixels.min() == 0 and abs(pixels.mean() - 127.5) < 1 and pixels.max() == 255
    dark = np.asarray(decode_image(made(np.rint(ramp * 255))).image)
    assert dark.max() <= 255 * 255 / top + 0.5


def test_sixteen_bits_decode_alike_in_every_format():
    """A 16-bit PNG or TIFF was cut to its top 8 bits while a 16-bit PGM was rounded to the nearest of 255
    levels, so the same photo reached the model as other pixels in another format."""
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    png, tiff = io.BytesIO(), io.BytesIO()
    Image.fromarray(ramp).save(png, "PNG")
    Image.fromarray(ramp).save(tiff, "TIFF")
    decoded = [np.asarray(decode_image(data).image) for data in (png.getvalue(), tiff.getvalue(), _pgm16(ramp))]
    assert np.array_equal(decoded[0], decoded[2]) and np.array_equal(decoded[1], decoded[2])


def test_a_dark_sixteen_bit_png_stays_dark_where_pil_opens_it_as_32_bit_integers(monkeypatch):
    """PIL before 10.3 opens a 16-bit greyscale PNG as mode I, as it opens a 32-bit TIFF, and a dark one
    (all under 256 of 65535) was read as 8-bit and brightened to full; a PNG holds at most 16 bits."""
    from PIL import PngImagePlugin

    monkeypatch.setitem(PngImagePlugin._MODES, (16, 0), ("I", "I;16B"))
    buf = io.BytesIO()
    Image.fromarray(np.linspace(0, 255, 64 * 64).reshape(64, 64).astype(np.uint16)).save(buf, "PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode == "I", "the case this test is about"
    assert np.asarray(decode_image(buf.getvalue()).image).max() <= 1


@pytest.mark.parametrize("data,status,message", [
    (b"", 400, "0 bytes"),
    (b"hello, not an image", 400, "not an image"),
    (jpeg()[:200], 400, "truncated or corrupt"),
    (png_header_only(10_000, 10_000), 413, "pixels"),
])
def test_rejections_are_clear(data, status, message):
    with pytest.raises(ImageRejected, match=message) as info:
        decode_image(data)
    assert info.value.status == status


def test_byte_limit():
    with pytest.raises(ImageRejected, match="limit") as info:
        decode_image(jpeg(), max_bytes=100)
    assert info.value.status == 413


def test_jpeg_metadata_is_removed_and_the_pixels_kept():
    from roomsight.images import jpeg_without_metadata

    picture = Image.effect_noise((40, 30), 60).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {2: (51.0, 30.0, 0.0)}  # GPSInfo: latitude
    icc = b"\x00" * 128  # stands in for a colour profile: it must survive
    buf = io.BytesIO()
    picture.save(buf, "JPEG", exif=exif, icc_profile=icc, comment=b"host caption")
    data = buf.getvalue()
    assert b"Exif" in data and b"PhoneMaker" in data and b"host caption" in data

    stripped = jpeg_without_metadata(data)
    assert stripped is not None and len(stripped) < len(data)
    assert b"Exif" not in stripped and b"PhoneMaker" not in stripped and b"host caption" not in stripped
    again = Image.open(io.BytesIO(stripped))
    assert again.info.get("icc_profile") == icc
    assert again.tobytes() == Image.open(io.BytesIO(data)).tobytes()


@pytest.mark.parametrize("data", [b"", b"not a jpeg", jpeg()[:3], b"\xff\xd8\xff\xe1\x00\xff" + b"x" * 10,
                                  b"\xff\xd8\x00\x00\x00\x02\xff\xda\x00\x02" + b"x" * 10])  # the last: no marker where one must be
def test_jpeg_metadata_walk_refuses_what_it_cannot_read(data):
    from roomsight.images import jpeg_without_metadata

    assert jpeg_without_metadata(data) is None


def test_the_pyfunc_flavour_decodes_a_photo_to_the_pixels_serving_answers_on():
    """The MLflow pyfunc opened the bytes with PIL alone: a 16-bit greyscale photo came out clipped almost
    all white, and a large one was resized from full size, so a tool using the pyfunc got other answers
    than serving gave for the same photo."""
    import numpy as np
    import pandas as pd

    from roomsight.config import ServeSettings
    from roomsight.images import decode_upload
    from roomsight.modelpack import RoomTypeModel

    class Recorder:
        images: list = []

        def predict(self, images):
            self.images.extend(images)
            return []

    buf = io.BytesIO()
    Image.fromarray(np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)).save(buf, "PNG")
    photos = [buf.getvalue(), jpeg(1600, 1200)]
    model = RoomTypeModel()
    model.pack = Recorder()
    model.predict(None, pd.DataFrame({"image": photos}))
    for got, data in zip(model.pack.images, photos, strict=True):
        assert np.array_equal(np.asarray(got), np.asarray(decode_upload(data, ServeSettings()).image))


def _photos_serving_decodes_its_own_way(folder):
    """A 16-bit greyscale PNG (PIL's RGB conversion clips it) and a JPEG large enough to be decoded at
    reduced scale and shrunk: the two places a decode of its own gives other pixels than serving's."""
    import numpy as np

    from training import data

    grey, big = folder / "a" / "grey.png", folder / "b" / "big.jpg"
    for p in (grey, big):
        p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)).save(grey)
    Image.effect_noise((1200, 900), 60).convert("RGB").save(big, quality=90)
    return [data.Item(path=grey, label="a"), data.Item(path=big, label="b")]


def test_training_decodes_a_photo_to_the_pixels_serving_answers_on(tmp_path):
    """Training decoded with PIL alone, at another size: a 16-bit greyscale photo came out clipped almost
    white and a large one was shrunk to other pixels, so the thresholds were cut on (and the reference
    statistics measured on) other pixels than serving answers on."""
    import numpy as np

    from roomsight.config import ServeSettings
    from roomsight.images import decode_upload
    from training import data

    items = _photos_serving_decodes_its_own_way(tmp_path)
    loaded = data.load_images(items)
    assert not loaded.skipped
    differ = [it.path.name for got, it in zip(loaded.images, items, strict=True)
              if not np.array_equal(np.asarray(got), np.asarray(decode_upload(it.path.read_bytes(), ServeSettings()).image))]
    assert differ == []


def test_evaluate_answers_on_the_pixels_serving_answers_on(tmp_path):
    """`rollout evaluate` reports the model "as exported", as it would answer: on serving's pixels."""
    import numpy as np
    import torch

    from roomsight.config import ServeSettings
    from roomsight.images import decode_upload
    from roomsight.modelpack import PackMeta
    from roomsight.preprocess import Preprocessing, batch_tensor
    from training.evaluate import predict_items

    items = _photos_serving_decodes_its_own_way(tmp_path)

    class Recorder:
        meta = PackMeta(classes=["a", "b"], preprocessing=Preprocessing(size=224))
        seen: list = []

        def forward(self, batch):
            self.seen.append(batch)
            return np.zeros((len(batch), 2), np.float32), np.zeros((len(batch), 4), np.float32)

    pack = Recorder()
    predict_items(pack, items)
    served = batch_tensor([decode_upload(it.path.read_bytes(), ServeSettings()).image for it in items], pack.meta.preprocessing)
    assert torch.equal(torch.cat(pack.seen), served)


def _turned_jpeg(orientation: int, size: tuple[int, int] = (60, 40)) -> tuple[bytes, Image.Image]:
    """A JPEG stored as phones store a photo taken turned: pixels as the sensor read them and an EXIF
    Orientation saying how to turn them for display; with the upright photo every viewer shows."""
    from PIL import ImageOps

    raw = Image.new("RGB", size, (230, 230, 230))
    raw.paste((20, 20, 20), (0, 0, size[0] // 3, size[1] // 2))  # a dark corner, so every turn is told apart
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    raw.save(buf, "JPEG", quality=95, exif=exif)
    return buf.getvalue(), ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue()))).convert("RGB")


@pytest.mark.parametrize("orientation", [3, 6, 8])
@pytest.mark.parametrize("max_side", [None, 30])
def test_a_photo_taken_turned_is_decoded_upright_as_it_is_shown(orientation, max_side):
    """Decoding ignored the EXIF orientation: a photo taken with the phone turned reached the model on its
    side or upside down, as no training photo is (they carry none), while its owner saw it upright."""
    import numpy as np

    data, upright = _turned_jpeg(orientation)
    d = decode_image(data, max_side=max_side)
    if max_side:
        upright.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    assert d.image.size == upright.size
    assert (d.width, d.height) == ((60, 40) if orientation == 3 else (40, 60))  # the photo's size, as shown
    off = float(np.abs(np.asarray(d.image, dtype=float) - np.asarray(upright, dtype=float)).mean())
    assert off < 4  # JPEG's own error, not a turned picture's


@pytest.mark.parametrize("over", [1.001, 1.5])
def test_floats_from_0_to_1_with_a_few_pixels_over_1_are_scaled_as_from_0_to_1(over):
    """A float TIFF from 0 to 1 whose brightest pixels overshoot 1 a little (resampling, a highlight) was
    scaled as integers: the ramp came out black (mean 0.5) for one pixel at 1.001. The few over 1 are white."""
    import numpy as np

    ramp = np.linspace(0, 1, 64 * 64).reshape(64, 64).astype(np.float32)
    ramp.flat[:20] = over  # under 1 pixel in 100
    pixels = np.asarray(decode_image(_tiff(ramp)).image, dtype=np.float64)
    assert abs(pixels.mean() - 127.5) < 2 and pixels.max() == 255


def test_a_large_float_greyscale_photo_is_scaled_in_a_few_bytes_a_pixel():
    """A compressed float TIFF of a few hundred KB can hold the 50-megapixel limit: scaled in float64 with a
    copy per step it took about 24 bytes a pixel (over a GB at the limit), beside PIL's own image."""
    import tracemalloc

    import numpy as np

    flat = np.zeros((2000, 1000), np.float32)
    flat[0, 0] = 0.5
    buf = io.BytesIO()
    Image.fromarray(flat).save(buf, "TIFF", compression="tiff_deflate")
    data = buf.getvalue()
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        decode_image(data, max_side=512)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * flat.size, f"{peak / flat.size:.1f} bytes a pixel"
