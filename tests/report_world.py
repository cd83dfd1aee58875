"""A rollout with evidence for the report's tests: requests logged through the real LogWriter, photos in
the review photo store, verdicts given through the review queue, and readers of the HTML produced."""

from __future__ import annotations

import base64
import io
import time
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image, ImageEnhance
from sqlalchemy import select

from monitoring.review import queue
from monitoring.review.photos import PhotoStore
from roomsight.regions import REGIONS
from roomsight.tables import predictions
from rollout.control import ControlPlane
from rollout.plan import Gate, default_plan_path, load_plan
from serving.predlog import LogWriter, PredictionRecord
from tests.plans import with_exit
from training.synthetic import render

CLASSES = ("bedroom", "bathroom", "kitchen", "living_room")


def photo(label: str, seed: int, night: bool) -> bytes:
    im = render(label, np.random.default_rng(seed), size=(160, 120))
    if night:
        im = ImageEnhance.Brightness(im).enhance(0.25)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def log_traffic(settings: Any, engine: Any, rollout_id: str, n: int, *, seed: int = 0, span_s: float = 7200.0,
                end: float | None = None, stage: str = "shadow", candidate_regions: tuple[str, ...] = (),
                caption: str | None = None, regions: tuple[str, ...] = REGIONS) -> list[str]:
    """`n` requests over `span_s` seconds before `end`: ap-south has night-time photos (flagged out-of-domain)
    on which the candidate often disagrees; a few candidate timeouts. Photos of disagreements, flagged ones
    and a sample of the rest go to the review photo store, as the ingress keeps them."""
    rng = np.random.default_rng(seed)
    store = PhotoStore.for_settings(settings)
    end = time.time() if end is None else end
    writer = LogWriter(engine, flush_interval_s=0.05)
    ids = []
    for i in range(n):
        rid, region = str(uuid.uuid4()), regions[i % len(regions)]
        champ = CLASSES[int(rng.integers(len(CLASSES)))]
        night = region == "ap-south" and rng.random() < 0.3
        cand: str | None = champ
        if rng.random() < (0.55 if night else 0.1):
            cand = CLASSES[(CLASSES.index(champ) + 1 + int(rng.integers(len(CLASSES) - 1))) % len(CLASSES)]
        timeout = rng.random() < 0.01
        if timeout:
            cand = None
        served = "candidate" if region in candidate_regions and not night else "champion"
        label = cand if served == "candidate" and cand else champ
        cand_ms = None if timeout else float(18 + rng.gamma(2.0, 3.0))
        writer.submit(PredictionRecord(
            request_id=rid, ts=end - span_s + span_s * i / n, rollout_id=rollout_id, stage=stage, listing_id=f"L{i}",
            region=region, served_by=served, label=label, score=0.9, latency_ms=30.0, caption=caption,
            champion_version="1", champion_label=champ, champion_scores={champ: 0.9}, champion_ms=float(12 + rng.gamma(2.0, 2.0)),
            candidate_version="2", candidate_label=cand, candidate_scores={cand: 0.9} if cand else None, candidate_ms=cand_ms,
            candidate_error="timeout" if timeout else None, shadow="champion" if served == "candidate" else "candidate",
            shadow_status="timeout" if timeout else "ok", disagreement=None if timeout else cand != champ,
            ood={"flags": ["night_time"] if night else [], "scores": {"night_time": 0.9 if night else 0.1}, "held": []},
            descriptors={"brightness": float(rng.normal(0.2 if night else 0.55, 0.05))},
            routing_reason="ood-held" if night and region in candidate_regions else "shadow"))
        if cand != champ or night or i % 5 == 0:
            store.put(rid, photo(champ, seed * 100_000 + i, night))
        ids.append(rid)
    assert writer.flush()
    writer.close()
    return ids


def review(settings: Any, engine: Any, rollout_id: str, limit: int, champion_right: float = 0.75, seed: int = 0) -> int:
    """Queue the rollout's photos and give `limit` verdicts through the queue: on a disagreement the
    champion is right with probability `champion_right`, elsewhere the answer given is."""
    rng = np.random.default_rng(seed)
    queue.fill(engine, settings, rollout_id)
    done = 0
    while done < limit and (claim := queue.claim_next(engine, "ann", 300, rollout_id)) is not None:
        with engine.connect() as conn:
            row = conn.execute(select(predictions.c.champion_label, predictions.c.candidate_label)
                               .where(predictions.c.request_id == claim.request_id)).one()
        truth = row.champion_label if row.candidate_label in (None, row.champion_label) or rng.random() < champion_right \
            else row.candidate_label
        queue.submit(engine, "ann", claim.item_id, claim.claim_id, truth, CLASSES)
        done += 1
    return done


# The shipped plan, with review gates to leave shadow: the report shows their own numbers.
SHADOW_EXIT = ({"metric": "compared", "min": 30}, {"metric": "agreement", "min": 0.6},
               {"metric": "candidate_error_rate", "max": 0.02}, {"metric": "reviewed", "min": 30},
               {"metric": "precision_margin", "min": 0})
REPORT_PLAN = with_exit(load_plan(), 0, tuple(Gate.model_validate(g) for g in SHADOW_EXIT))


def report_plan_file(folder: Path) -> Path:
    """REPORT_PLAN as a file, for the command line's --plan."""
    raw = yaml.safe_load(default_plan_path().read_text())
    raw["steps"][0]["exit"] = [dict(g) for g in SHADOW_EXIT]
    path = folder / "report-plan.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def started(settings: Any, reason: str = "new candidate") -> tuple[ControlPlane, str]:
    cp = ControlPlane(settings, REPORT_PLAN, actor="alice")
    return cp, cp.start("models:/roomtype/2", reason=reason).after.rollout_id


# -- reading the HTML ------------------------------------------------------------------------------------
class Parsed(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def images(self, kind: str) -> list[Image.Image]:
        prefix = f"data:image/{kind};base64,"
        return [Image.open(io.BytesIO(base64.b64decode(a["src"][len(prefix):])))
                for t, a in self.tags if t == "img" and a.get("src", "").startswith(prefix)]


def assert_self_contained(html: str) -> Parsed:
    """Nothing is fetched when the file is opened: no script, no stylesheet link, no http(s) reference."""
    page = Parsed(html)
    for tag, attrs in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        for key in ("src", "href", "srcset", "action", "data"):
            assert not attrs.get(key, "").lower().lstrip().startswith(("http:", "https:", "//")), (tag, attrs)
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
    assert "url(http" not in html and "@import" not in html
    return page


