import io
import zlib
import struct

import pytest
from PIL import Image

from roomsight.images import ImageRejected, decode_image


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
