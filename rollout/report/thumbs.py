"""The photos that decided it, as small inline JPEGs: reviewed disagreements where the candidate was
wrong, and photos flagged out-of-domain. Bounded in count and size, so a report stays a file one can
mail; taken from the review photo store (a photo it no longer holds is skipped, and counted).
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image
from sqlalchemy import Engine, select

from monitoring.review.photos import PhotoStore
from monitoring.review.stats import ABSTAIN, UNUSABLE
from roomsight.tables import predictions

MAX_WRONG = 8
MAX_OOD = 6
OOD_SCAN = 2000  # the rollout's most recent requests searched for flagged photos, shown after the reviewed ones
THUMB_PX = 192
THUMB_QUALITY = 80


@dataclass(frozen=True)
class Thumbnail:
    data_uri: str
    request_id: str
    region: str
    lines: tuple[str, ...]  # what it shows, in words (truth, each model's answer, flags)


@dataclass(frozen=True)
class Photos:
    wrong: tuple[Thumbnail, ...]
    ood: tuple[Thumbnail, ...]
    missing: int  # wanted, but no longer in the photo store


def data_uri(jpeg: bytes, px: int = THUMB_PX) -> str:
    """A downscaled JPEG of the photo as a data: URI (the original is never inlined)."""
    with Image.open(io.BytesIO(jpeg)) as im:
        im = im.convert("RGB")
        im.thumbnail((px, px))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=THUMB_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def candidate_wrong(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reviewed disagreements where the candidate answered a class and the reviewer said otherwise,
    newest verdict first; those where the champion was right lead."""
    wrong = [r for r in rows if r["disagreement"] and r["truth"] != UNUSABLE and r["candidate_label"]
             not in (None, ABSTAIN) and r["candidate_label"] != r["truth"]]
    return sorted(wrong, key=lambda r: (r["champion_label"] != r["truth"], -r["ts"]))


def _flagged_recent(engine: Engine, rollout_id: str, limit: int = OOD_SCAN) -> list[dict[str, Any]]:
    p = predictions.c
    q = (select(p.request_id, p.region, p.ood, p.champion_label, p.candidate_label, p.caption)
         .where(p.rollout_id == rollout_id).order_by(p.ts.desc()).limit(limit))
    with engine.connect() as conn:
        return [dict(r._mapping, ood_flags=list((r.ood or {}).get("flags") or [])) for r in conn.execute(q)
                if (r.ood or {}).get("flags")]


def photos(engine: Engine, store: PhotoStore, rollout_id: str, reviewed_rows: list[dict[str, Any]]) -> Photos:
    missing = 0
    seen: set[str] = set()  # a photo is shown once, in the first group that wants it

    def pick(rows: list[dict[str, Any]], limit: int, describe) -> tuple[Thumbnail, ...]:  # noqa: ANN001
        nonlocal missing
        out: list[Thumbnail] = []
        for r in rows:
            if len(out) >= limit:
                break
            if r["request_id"] in seen:
                continue
            seen.add(r["request_id"])
            data = store.get(r["request_id"])
            if data is None:
                missing += 1
                continue
            out.append(Thumbnail(data_uri(data), r["request_id"], r["region"], describe(r)))
        return tuple(out)

    def wrong_lines(r: dict[str, Any]) -> tuple[str, ...]:
        return (f"reviewer: {r['truth']}", f"candidate: {r['candidate_label']}",
                f"champion: {r['champion_label']}", r["region"] + _flags(r))

    def ood_lines(r: dict[str, Any]) -> tuple[str, ...]:
        answers = f"champion {r['champion_label'] or '-'} · candidate {r['candidate_label'] or '-'}"
        truth = (f"reviewer: {r['truth']}",) if r.get("truth") else ()
        return (", ".join(r["ood_flags"]), *truth, answers, r["region"])

    wrong = pick(candidate_wrong(reviewed_rows), MAX_WRONG, wrong_lines)
    reviewed_ood = sorted((r for r in reviewed_rows if r.get("ood_flags")), key=lambda r: -r["ts"])
    ood = pick([*reviewed_ood, *_flagged_recent(engine, rollout_id)], MAX_OOD, ood_lines)
    return Photos(wrong, ood, missing)


def _flags(r: dict[str, Any]) -> str:
    return f" · {', '.join(r['ood_flags'])}" if r.get("ood_flags") else ""
