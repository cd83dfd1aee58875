"""Which logged predictions a drift check compares: a window of the prediction log (time range, region,
served model version, rollout), read whole, or, when it holds more than `monitoring.drift_sample`
predictions, as a uniform sample of that many drawn with a seed (the same window and seed give the same
sample). Each row carries the descriptors, the answering model's class and the out-of-domain flags.
"""

from __future__ import annotations

import gc
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, or_, select

from roomsight.tables import predictions

if TYPE_CHECKING:
    import pandas as pd

PREDICTED = "predicted_class"
OOD = "out_of_domain"
@dataclass(frozen=True)
class Window:
    """Which logged predictions to compare: a time range, optionally one region, one served model
    version, one rollout, and of those only the `last` N."""

    since: float | None = None  # unix seconds
    until: float | None = None
    region: str | None = None
    model_version: str | None = None
    rollout_id: str | None = None
    last: int | None = None  # the latest N predictions of the window: a recent shift, undiluted by older traffic

    def describe(self) -> str:
        def when(ts: float | None) -> str:
            return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if ts else "…"

        parts = [f"{when(self.since)} to {when(self.until) if self.until else 'now'}"]
        if self.region:
            parts.append(f"region {self.region}")
        if self.model_version:
            parts.append(f"model version {self.model_version}")
        if self.rollout_id:
            parts.append(f"rollout {self.rollout_id[:8]}")
        described = ", ".join(parts)
        return f"the latest {self.last:,} predictions of {described}" if self.last else described


@dataclass(frozen=True)
class Frame:
    """The compared predictions of a window, and how many the window holds."""

    rows: pd.DataFrame
    n_window: int
    seed: int | None  # set when `rows` is a sample
    newest: float | None  # when the window's newest prediction was logged (None: the window is empty)


_COLUMNS = ("ts", "served_by", "champion_version", "candidate_version", "champion_scores", "candidate_scores",
            "label", "ood", "descriptors", "routing_reason")


def in_window(query: Any, window: Window) -> Any:  # noqa: ANN401 - a Select
    """`query` over the predictions table narrowed to `window`."""
    p = predictions.c
    if window.since is not None:
        query = query.where(p.ts >= window.since)
    if window.until is not None:
        query = query.where(p.ts < window.until)
    if window.region:
        query = query.where(p.region == window.region)
    if window.rollout_id:
        query = query.where(p.rollout_id == window.rollout_id)
    if window.model_version:
        v = window.model_version
        query = query.where(or_(and_(p.served_by == "champion", p.champion_version == v),
                                and_(p.served_by == "candidate", p.candidate_version == v)))
    if window.last is not None:
        query = query.order_by(p.ts.desc()).limit(window.last)
    return query


def current_frame(engine: Engine, window: Window) -> pd.DataFrame:
    """One row per logged prediction in the window: descriptors, predicted class, out-of-domain flags."""
    return window_frame(engine, window, sample=None).rows


def window_frame(engine: Engine, window: Window, sample: int | None, seed: int = 0) -> Frame:
    """The window's predictions as rows to compare; at most `sample` of them, a uniform sample drawn with
    `seed`, when the window holds more. The sample costs a read of the window's request ids (an index
    range) and of the sampled rows by key, not of every row's descriptors."""
    p = predictions.c
    with _cycle_collector_paused(), engine.connect() as conn:
        ids = None
        if sample is not None:
            # Ordered, so that the same window and seed draw the same sample.
            keyed = conn.execute(in_window(select(p.request_id, p.ts), window).order_by(p.ts, p.request_id)).all()
            ids = [r.request_id for r in keyed] if len(keyed) > sample else None  # else read it whole, in one pass
        if ids is None:
            rows = conn.execute(in_window(select(*(p[c] for c in _COLUMNS)), window)).all()
            return Frame(_records_frame(rows), len(rows), None, max((r.ts for r in rows), default=None))
        chosen = [ids[i] for i in sorted(random.Random(seed).sample(range(len(ids)), sample))]
        rows = []
        for start in range(0, len(chosen), 500):
            rows += conn.execute(select(*(p[c] for c in _COLUMNS))
                                 .where(p.request_id.in_(chosen[start:start + 500])).order_by(p.ts)).all()
        # Not keyed[-1]: with `last`, the window is ordered newest first before (ts, request_id).
        return Frame(_records_frame(rows), len(ids), seed, max(r.ts for r in keyed))


def _records_frame(rows: list[Any]) -> pd.DataFrame:
    import pandas as pd

    records = []
    for r in rows:
        served_champion = r.served_by == "champion"
        scores = (r.champion_scores if served_champion else r.candidate_scores) or {}
        ood = r.ood or {}
        rec: dict[str, Any] = dict(r.descriptors or {})
        rec[PREDICTED] = max(scores, key=scores.get) if scores else r.label
        rec[OOD] = "yes" if ood.get("flags") else "no"
        rec["_version"] = r.champion_version if served_champion else r.candidate_version
        rec["_ts"] = r.ts
        rec["_flags"] = list(ood.get("flags") or [])
        rec["_held"] = list(ood.get("held") or []) if r.routing_reason == "ood-held" else []
        records.append(rec)
    return pd.DataFrame.from_records(records)


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """A window's rows decode into several small dicts each, all kept until the frame is built; CPython's
    cycle collector, triggered by every few hundred of them, rescans the growing heap again and again
    (a large share of a big window's read). The rows hold no reference cycles, so nothing is
    lost by pausing it; reference counting still frees everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def never_logged(engine: Engine, window: Window) -> list[str]:
    """The window's region or model version, if no prediction in the whole log has it: a typo, which
    no widening of the window would cure."""
    p = predictions.c
    found = []
    with engine.connect() as conn:
        if window.region:
            regions = sorted(conn.execute(select(p.region).distinct()).scalars())
            if window.region not in regions:
                found.append(f"no prediction in the log is from region {window.region!r} "
                             f"(logged: {', '.join(regions) or 'none'})")
        if window.model_version:
            versions = {v for col in (p.champion_version, p.candidate_version)
                        for v in conn.execute(select(col).distinct()).scalars() if v is not None}
            if window.model_version not in versions:
                found.append(f"no prediction in the log was served by model version {window.model_version} "
                             f"(logged: {', '.join(sorted(versions, key=lambda v: (len(v), v))) or 'none'})")
    return found
