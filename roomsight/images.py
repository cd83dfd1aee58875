"""Safe image decoding for untrusted uploads and user-given files.

Limits are checked before pixels are decoded: the byte size first, then the header's width x height,
so a decompression bomb is refused without allocating it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from roomsight.errors import ImageRejected

if TYPE_CHECKING:
    from roomsight.config import ServeSettings

# We enforce our own pixel limit before decoding; PIL's global guard would fire with a less
# helpful message (and only as a warning below 2x its limit).
Image.MAX_IMAGE_PIXELS = None

# Files taken for photos when a folder is given (training folders, `rollout inspect DIR`).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})

# Serving's model inputs have at most this many pixels per side; larger uploads are decoded at reduced
# scale, once by the ingress and, from the same bytes, identically by a model replica.
SERVE_MAX_SIDE = 512


# EXIF Orientation -> the turn that shows a photo as it was taken (ImageOps.exif_transpose's table). Phones
# store a turned photo's pixels as the sensor read them; every viewer turns them, and training photos carry
# no such tag, so the model must see them turned too.
_TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
          5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_90}
_QUARTER_TURNS = frozenset({5, 6, 7, 8})  # the orientations whose turn swaps width and height


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # RGB, fully loaded, turned upright as its EXIF orientation says
    width: int  # as uploaded (upright), before any resizing
    height: int
    n_bytes: int
    format: str
    data: bytes  # the upload as received: decoding it again with the same limits gives the same pixels
    turned: bool = False  # its pixels were turned: the upload's own pixels are not what the model saw


def decode_image(data: bytes, *, max_bytes: int = 20 * 1024 * 1024, max_pixels: int = 50_000_000,
                 max_side: int | None = None) -> DecodedImage:
    """Decode `data` to RGB or raise ImageRejected. `max_side` downsizes big photos once, here,
    so nothing downstream moves more pixels than the model and the descriptors need."""
    if not data:
        raise ImageRejected("empty upload: the image has 0 bytes")
    if len(data) > max_bytes:
        raise ImageRejected(f"image is {len(data)} bytes; the limit is {max_bytes}", status=413)
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRejected("not an image: the bytes are not a format we can read (JPEG, PNG, WebP, ...)") from None
    except Exception as exc:  # PIL raises assorted errors on hostile headers
        raise ImageRejected(f"image data is truncated or corrupt: {exc}") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageRejected("image has no pixels")
    if width * height > max_pixels:
        raise ImageRejected(f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}", status=413)
    fmt = img.format or "unknown"
    try:
        if max_side and max(width, height) > max_side and fmt == "JPEG":
            # JPEG can decode at 1/2, 1/4, 1/8 scale: far cheaper than decoding then resizing.
            img.draft("RGB", (max_side, max_side))
        img.load()
        rgb = _eight_bit(img).convert("RGB")
    except Exception as exc:
        raise ImageRejected(f"image data is truncated or corrupt: {exc}") from None
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    orientation = _orientation(img)
    turn = _TURNS.get(orientation)
    if turn is not None:
        rgb = rgb.transpose(turn)
    if orientation in _QUARTER_TURNS:
        width, height = height, width
    return DecodedImage(image=rgb, width=width, height=height, n_bytes=len(data), format=fmt, data=data,
                        turned=turn is not None)


def shown_size(img: Image.Image) -> tuple[int, int]:
    """An opened photo's width and height as it is shown (and decoded): turned a quarter when its EXIF
    orientation says so."""
    width, height = img.size
    return (height, width) if _orientation(img) in _QUARTER_TURNS else (width, height)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation, 1 (as stored) when there is none or it cannot be read: a damaged tag is no
    reason to refuse a photo whose pixels decode."""
    try:
        return int(img.getexif().get(0x0112, 1))
    except Exception:  # PIL raises assorted errors on a malformed EXIF block
        return 1


def _eight_bit(img: Image.Image) -> Image.Image:
    """Greyscale wider than 8 bits scaled to 8 bits: PIL's RGB conversion clips it instead, so nearly every
    pixel of such a photo came out white (or, for floats from 0 to 1, black). Integers are read at the depth
    their file declares (`_declared_bits`), else at the narrowest of 8, 16 or 31 bits (mode I is signed)
    that holds the brightest pixel. Floats (mode F) are from 0 to 1 when they stay in it, the usual
    convention, but for a few pixels (at most 1 in 100: an overshoot, a highlight, clipped to white), which
    otherwise scaled the whole photo as integers, to black; else they are read as integers.
    In float32 and in place: a float TIFF of a few hundred KB compressed can hold the pixel limit, and a
    float64 copy per step multiplies what each such upload holds in memory."""
    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return img
    x = np.array(img, dtype=np.float32)  # a copy of its own: changed in place below
    if img.mode == "F":
        np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    x *= _scale(img, x)
    np.clip(x, 0, 255, out=x)
    np.rint(x, out=x)
    return Image.fromarray(x.astype(np.uint8))


def _scale(img: Image.Image, x: np.ndarray) -> float:
    """What `x`, the pixels of `img`, are multiplied by to span 0 to 255."""
    bits = None if img.mode == "F" else _declared_bits(img)
    if bits is None:
        top = float(x.max()) if x.size else 0.0
        if img.mode == "F" and (top <= 1.0 or np.count_nonzero(x > 1.0) * 100 <= x.size):
            return 255.0
        bits = next(b for b in (8, 16, 31) if top <= 2.0 ** b - 1 or b == 31)
    return 255.0 / (2.0 ** bits - 1)


def _declared_bits(img: Image.Image) -> int | None:
    """The bits an integer image's values use, as its file says; None where it does not say.
    - TIFF: BitsPerSample (12 or 16; less one for signed samples, whose negatives are clipped to black),
      but 32 is only the width of the container: PIL saves every mode I image so, 16-bit data included, so
      a 32-bit TIFF is read by its brightest pixel (one truly using 32 bits with every pixel under 256,
      all but black at its depth, is then read as 8-bit).
    - PNG, PGM: 16, the most they hold (PIL scales any PGM maxval to 16 bits; PIL before 10.3 opens a
      16-bit PNG as mode I).
    - any other 16-bit mode: 16."""
    if img.format == "TIFF":
        bits = int(img.tag_v2.get(258, (32,))[0])
        if bits >= 32:
            return None
        return bits - 1 if img.tag_v2.get(339, (1,))[0] == 2 else bits
    if img.format in ("PNG", "PPM") or img.mode != "I":
        return 16
    return None


def decode_upload(data: bytes, serve: ServeSettings) -> DecodedImage:
    """An upload decoded as serving decodes it (`serve.max_upload_bytes`, `serve.max_pixels`,
    `SERVE_MAX_SIDE`): the ingress, a model replica given the same bytes, and the offline checks of
    what serving would see all get the same pixels."""
    return decode_image(data, max_bytes=serve.max_upload_bytes, max_pixels=serve.max_pixels, max_side=SERVE_MAX_SIDE)


# APP2 ICC profiles (colours) and APP14 Adobe (how CMYK/YCCK data decodes) change what a JPEG looks
# like; every other APPn segment (EXIF with its GPS position, XMP, ...) and comments are only metadata.
_KEEP_APP = {0xE2: b"ICC_PROFILE\0", 0xEE: b"Adobe"}


def jpeg_without_metadata(data: bytes) -> bytes | None:
    """The JPEG `data` with its metadata segments removed and every image byte kept, so it decodes to
    the same pixels; None if `data` is not a JPEG this can walk (then re-encode it instead)."""
    if data[:2] != b"\xff\xd8":
        return None
    out, i = [b"\xff\xd8"], 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if length < 2 or i + 2 + length > len(data):
            return None
        if marker == 0xDA:  # start of scan: entropy-coded data and the rest of the file, as they are
            out.append(data[i:])
            return b"".join(out)
        segment = data[i:i + 2 + length]
        keep = not (0xE1 <= marker <= 0xEF or marker == 0xFE) or (
            marker in _KEEP_APP and segment[4:].startswith(_KEEP_APP[marker]))
        if keep:
            out.append(segment)
        i += 2 + length
    return None
