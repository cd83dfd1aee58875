"""Photos kept for the review page: JPEG bytes by request id, as files under `home/photos`.

The prediction log holds no image bytes; the ingress keeps each photo of a rollout here (`keep_photo`)
so a reviewer can see it later, and the review service prunes those never queued. A file's path is
derived only from a validated request id (a UUID), so no input can name a path outside the store.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import time
import uuid
from collections.abc import Collection
from pathlib import Path

from PIL import Image

from roomsight.config import Settings
from roomsight.errors import UserError

JPEG_QUALITY = 85

log = logging.getLogger(__name__)


class BadRequestId(UserError, ValueError):
    """A request id that is not a UUID: it could name a path outside the store."""


class PhotoStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_settings(cls, settings: Settings) -> PhotoStore:
        return cls(settings.home / "photos")

    def _path(self, request_id: str) -> Path:
        try:
            canonical = str(uuid.UUID(request_id))
        except (ValueError, TypeError, AttributeError):
            raise BadRequestId(f"not a request id: {request_id!r}") from None
        # Two hex characters of fan-out keep directories small at millions of photos.
        return self.root / canonical[:2] / f"{canonical}.jpg"

    def put(self, request_id: str, jpeg_bytes: bytes) -> None:
        path = self._path(request_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename: a reader never sees half a photo.
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(jpeg_bytes)
        os.replace(tmp, path)

    def put_image(self, request_id: str, image: Image.Image) -> None:
        """Re-encode a decoded image: strips metadata and bounds the size whatever was uploaded."""
        buf = io.BytesIO()
        image.convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY)
        self.put(request_id, buf.getvalue())

    def get(self, request_id: str) -> bytes | None:
        try:
            return self._path(request_id).read_bytes()
        except FileNotFoundError:
            return None

    def has(self, request_id: str) -> bool:
        return self._path(request_id).exists()

    def prune(self, keep: Collection[str], older_than_s: float, now: float | None = None) -> int:
        """Delete photos older than `older_than_s` whose request id is not in `keep`; returns how many."""
        cutoff = (time.time() if now is None else now) - older_than_s
        removed = 0
        for path in self.root.glob("*/*.jpg"):
            try:
                if path.stem not in keep and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass  # pruned concurrently
        return removed


@functools.cache
def _store(root: Path) -> PhotoStore:
    return PhotoStore(root)


def keep_photo(settings: Settings, request_id: str, image: Image.Image) -> None:
    """Keep a served photo for review. The ingress calls this fire-and-forget off the request path, so a
    full or read-only disk is logged here, never raised into serving."""
    try:
        _store(settings.home / "photos").put_image(request_id, image)
    except OSError as exc:
        log.warning("could not keep photo %s for review: %s", request_id, exc)
