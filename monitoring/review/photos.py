"""Photos kept for the review page: JPEG bytes by request id, as files under `review.photo_dir`
(default `home/photos`). The ingress replicas write there and the review service reads there, so on a
cluster it must be a folder they share: a photo kept on another node is never queued (the fill records it
as unseen).

The prediction log holds no image bytes; the ingress keeps each photo of a rollout here (`PhotoKeeper`)
so a reviewer can see it later, and the review service prunes those never queued. A file's path is
derived only from a validated request id (a UUID), so no input can name a path outside the store.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Collection
from pathlib import Path

from PIL import Image
from sqlalchemy import Engine, select

from roomsight.config import Settings
from roomsight.errors import BadRequestId
from roomsight.images import DecodedImage, jpeg_without_metadata
from roomsight.tables import review_items

JPEG_QUALITY = 85

log = logging.getLogger(__name__)


class PhotoStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def for_settings(cls, settings: Settings) -> PhotoStore:
        return cls(settings.photo_dir)

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
        try:
            tmp.write_bytes(jpeg_bytes)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk leaves no half photo behind
            raise

    def put_image(self, request_id: str, image: Image.Image) -> None:
        """Re-encode a decoded image: strips metadata and bounds the size whatever was uploaded."""
        buf = io.BytesIO()
        image.convert("RGB").save(buf, "JPEG", quality=JPEG_QUALITY)
        self.put(request_id, buf.getvalue())

    def put_upload(self, request_id: str, decoded: DecodedImage) -> None:
        """Keep what the model saw, without metadata. A JPEG decoded at full size is kept as uploaded,
        minus its metadata segments: the same pixels, and no encoder run on the serving cores, which
        would cost the ingress CPU on every stored request. Anything else is re-encoded, a photo turned
        upright too: without its orientation tag the upload's bytes would show it as stored."""
        full_size = decoded.image.size == (decoded.width, decoded.height) and not decoded.turned
        stripped = jpeg_without_metadata(decoded.data) if decoded.format == "JPEG" and full_size else None
        if stripped is None:
            self.put_image(request_id, decoded.image)
        else:
            self.put(request_id, stripped)

    def get(self, request_id: str) -> bytes | None:
        try:
            return self._path(request_id).read_bytes()
        except FileNotFoundError:
            return None

    def has(self, request_id: str) -> bool:
        return self._path(request_id).exists()

    def prune(self, keep: Collection[str], older_than_s: float, now: float | None = None) -> int:
        """Delete photos older than `older_than_s` whose request id is not in `keep`, and half-written ones
        of that age a crash left (`*.tmp`: never a kept photo); returns how many."""
        cutoff = (time.time() if now is None else now) - older_than_s
        removed = 0
        for path in [*self.root.glob("*/*.jpg"), *self.root.glob("*/*.tmp")]:
            try:
                if (path.suffix == ".tmp" or path.stem not in keep) and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass  # pruned concurrently
        return removed


class PhotoKeeper:
    """Keeps served photos for review off the request path. `keep` only appends to a deque: no thread is
    woken per request. One thread writes whatever has gathered every `interval_s`.

    Why not a write per request on an executor thread: that hand-off added more to the median answer than
    the write itself takes (BENCHMARKS.md, serving, how the shadow overhead came down).
    Photos are best effort: a full or read-only disk is logged, and past `max_pending` unwritten photos
    new ones are dropped and counted, never raised into serving."""

    def __init__(self, store: PhotoStore, interval_s: float = 0.25, max_pending: int = 1000) -> None:
        self.store = store
        self.interval_s = interval_s
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: deque[tuple[str, DecodedImage]] = deque()
        self._writing = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="photo-keeper", daemon=True)
        self._thread.start()

    def keep(self, request_id: str, decoded: DecodedImage) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped += 1
            return
        self._pending.append((request_id, decoded))

    @property
    def pending(self) -> int:
        """Photos not yet on disk (queued or being written): may over-count for an instant, never under."""
        return len(self._pending) + self._writing

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._write_pending()
        self._write_pending()

    def _write_pending(self) -> None:
        self._writing = n = len(self._pending)  # counted before they leave the deque: `pending` never dips
        for _ in range(n):
            request_id, decoded = self._pending.popleft()
            try:
                self.store.put_upload(request_id, decoded)
            except OSError as exc:
                log.warning("could not keep photo %s for review: %s", request_id, exc)
            self._writing -= 1

    def close(self) -> None:
        """Write what is pending, then stop."""
        self._stop.set()
        self._thread.join(timeout=10)


def prune_photos(engine: Engine, settings: Settings, photos: PhotoStore | None = None) -> int:
    """Delete kept photos older than `review.photo_retention_h` that no review item refers to."""
    photos = photos or PhotoStore.for_settings(settings)
    with engine.connect() as conn:
        queued = {r for (r,) in conn.execute(select(review_items.c.request_id))}
    return photos.prune(queued, settings.review.photo_retention_h * 3600)
