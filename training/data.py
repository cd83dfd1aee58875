"""Items, how to get them, how to split them: folder-per-class or CSV manifests -> labelled items ->
a seeded, stratified train/valid/test split -> decoded images (unreadable ones skipped and listed)."""

from __future__ import annotations

import hashlib
import os
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from roomsight.errors import DataError
from roomsight.images import IMAGE_SUFFIXES, SERVE_MAX_SIDE, decode_image
from roomsight.tables import LABEL_MAX
from roomsight.userfiles import read_csv
from roomsight.verdicts import UNSURE

OPTIONAL_COLUMNS = ("caption", "region", "listing_id", "taken_at")


@dataclass(frozen=True)
class Item:
    path: Path
    label: str
    caption: str = ""
    region: str = ""
    listing_id: str = ""
    taken_at: str = ""


@dataclass
class Split:
    train: list[Item]
    valid: list[Item]
    test: list[Item]


@dataclass
class Loaded:
    """Decoded images with their items; what could not be read is listed, not fatal."""

    items: list[Item]
    images: list[Image.Image]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)  # photo_digest of each item's bytes, in order


def load_manifest(source: Path | str) -> list[Item]:
    """Items from a folder with one sub-folder per class, or from a CSV with `path,label` and optional
    `caption,region,listing_id,taken_at` columns (paths relative to the CSV's folder)."""
    source = Path(source)
    if not source.exists():
        raise DataError(f"data not found: {source}")
    if source.is_dir():
        manifest = source / "manifest.csv"
        if manifest.exists():
            return _from_csv(manifest)
        return _from_folders(source)
    if source.suffix.lower() != ".csv":
        raise DataError(f"{source}: give a folder (one sub-folder per class) or a .csv manifest")
    return _from_csv(source)


def _from_folders(root: Path) -> list[Item]:
    items = [Item(path=p, label=d.name) for d in sorted(root.iterdir()) if d.is_dir()
             for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
    if not items:
        raise DataError(f"{root}: no images found in class sub-folders (expected {root}/<label>/*.jpg)")
    return items


def _from_csv(path: Path) -> list[Item]:
    header, rows = read_csv(path, "manifest", DataError)
    missing = {"path", "label"} - set(header)
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; found {sorted(header)}")
    items = []
    for row in rows:
        label = (row.get("label") or "").strip()
        if not label:
            continue  # unlabelled rows (e.g. a caption rule abstained) are not training data
        p = Path(row["path"])
        items.append(Item(path=p if p.is_absolute() else path.parent / p, label=label,
                          **{c: (row.get(c) or "").strip() for c in OPTIONAL_COLUMNS}))
    if not items:
        raise DataError(f"{path}: no labelled rows")
    return items


def check_trainable(items: list[Item], min_per_class: int = 2) -> list[str]:
    """The sorted class list, or a DataError before any training starts."""
    counts = Counter(i.label for i in items)
    if len(counts) < 2:
        raise DataError(f"need at least 2 classes to train a classifier; found {dict(counts) or 'none'}")
    # Every answer is logged under its class name: PostgreSQL would refuse a longer one in every row.
    long = sorted(k for k in counts if len(k) > LABEL_MAX)
    if long:
        raise DataError(f"class names longer than {LABEL_MAX} characters cannot be logged: {', '.join(long)}")
    if UNSURE in counts:
        # The model's answer when it abstains: a class of that name could not be told from an abstention.
        raise DataError(f"a class cannot be named '{UNSURE}': it is what the model answers when it abstains; "
                        "rename the class, or leave those photos unlabelled")
    check_splittable(items, min_per_class)
    return sorted(counts)


def check_splittable(items: list[Item], min_per_class: int = 2) -> None:
    """Every class can give a photo to each part of a split, or a DataError naming those that cannot."""
    small = {k: v for k, v in Counter(i.label for i in items).items() if v < min_per_class}
    if small:
        raise DataError(f"classes with fewer than {min_per_class} photos cannot be split: {small}")


def split(items: list[Item], *, seed: int = 0, valid: float = 0.15, test: float = 0.15,
          digests: list[str] | None = None) -> Split:
    """Stratified by label and seeded: the same items and seed give the same split, on any machine.
    Items sharing a digest (photo_digest, in the order of `items`) all go where the first of them by label
    and path goes: a photo listed twice would otherwise be measured on, or have its thresholds cut on, a
    copy of itself."""
    first: dict[str, Item] = {}
    copies: dict[int, list[Item]] = defaultdict(list)
    keys = digests if digests is not None else [str(k) for k in range(len(items))]
    for item, key in sorted(zip(items, keys), key=lambda pair: (pair[0].label, str(pair[0].path))):
        lead = first.setdefault(key, item)
        if lead is not item:
            copies[id(lead)].append(item)
    by_label: dict[str, list[Item]] = defaultdict(list)
    for item in first.values():  # in label and path order, as they were sorted
        by_label[item.label].append(item)
    rng = random.Random(seed)
    out = Split([], [], [])
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        n_valid = max(1, round(len(group) * valid)) if valid > 0 else 0
        n_test = max(1, round(len(group) * test)) if test > 0 and len(group) - n_valid > 1 else 0
        out.valid += group[:n_valid]
        out.test += group[n_valid:n_valid + n_test]
        out.train += group[n_valid + n_test:]
    return Split(*([x for it in part for x in (it, *copies[id(it)])] for part in (out.train, out.valid, out.test)))


def first_copies(digests: list[str]) -> list[int]:
    """The position of each photo's first copy, in order: thresholds are cut on each photo once, since the
    lower bound on precision counts its answers as independent, and a photo listed twice is one answer."""
    first: dict[str, int] = {}
    for k, digest in enumerate(digests):
        first.setdefault(digest, k)
    return sorted(first.values())


def load_images(items: list[Item], max_side: int | None = SERVE_MAX_SIDE) -> Loaded:
    """Decode every item to RGB, one thread per core (PIL decodes outside the GIL), and hash the bytes it
    read; a file that cannot be read is skipped and listed with the reason. Order is kept. Decoded as
    serving decodes an upload (roomsight.images), at serving's size unless told otherwise: the thresholds
    are cut on, and the reference statistics measured on, the pixels serving will answer on."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        results = list(pool.map(lambda item: _decode(item, max_side), items))
    out = Loaded([], [], [])
    for item, (rgb, digest, why) in zip(items, results):
        if rgb is None:
            out.skipped.append((item.path, why))
        else:
            out.items.append(item)
            out.images.append(rgb)
            out.digests.append(digest)
    return out


def _decode(item: Item, max_side: int | None) -> tuple[Image.Image | None, str, str]:
    try:
        raw = item.path.read_bytes()
        # Serving's byte and pixel limits guard it against hostile uploads; a training folder is trusted.
        rgb = decode_image(raw, max_bytes=max(1, len(raw)), max_pixels=sys.maxsize, max_side=max_side).image
        return rgb, photo_digest(raw), ""
    except Exception as exc:  # truncated, not an image, missing file...
        return None, "", f"{type(exc).__name__}: {exc}"


def manifest_hash(items: list[Item]) -> str:
    """Identifies the training data in the model's metadata: paths, labels and file sizes."""
    h = hashlib.sha256()
    for item in sorted(items, key=lambda i: str(i.path)):
        size = item.path.stat().st_size if item.path.exists() else -1
        h.update(f"{item.path.name}\t{item.label}\t{size}\n".encode())
    return h.hexdigest()


def photo_digest(raw: bytes) -> str:
    """A short content hash of a photo's bytes: recognises a photo the model trained on wherever it was
    copied or renamed. 16 hex digits keep a thousand of them small in the model's metadata, and two
    different photos sharing one is not a practical worry."""
    return hashlib.sha256(raw).hexdigest()[:16]
