"""Drift of live traffic against a model's reference: an Evidently (0.7 API) data-drift report over a
window of the prediction log, the headline numbers, and the alarm the promotion gates read (through
monitoring.drift_checks, which keeps the latest check of a rollout).

A window larger than `monitoring.drift_sample` predictions is compared on a uniform sample of that many,
drawn with `monitoring.drift_sample_seed`: the same window and seed give the same sample. Its size and
the window's are in the result, the report's headline and the CLI's output.

Compared columns: every registered image descriptor, the model-side descriptors (when the window is
one model's traffic, so they are comparable with that model's reference), the predicted class, and
whether the photo was flagged out-of-domain. The reference is the model's validation set, exported
with it (monitoring.reference). The alarm fires when at least `monitoring.drift_share_alarm` of the
columns drifted, or at least `monitoring.ood_share_alarm` of the window was flagged out-of-domain.
"""

from __future__ import annotations

import gc
import html
import json
import random
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, or_, select

from monitoring.descriptors import DESCRIPTORS, MODEL_DESCRIPTORS
from monitoring.ood import Calibration
from roomsight.config import Settings
from roomsight.errors import UserError
from roomsight.tables import predictions, rollout_state

if TYPE_CHECKING:
    import pandas as pd

PREDICTED = "predicted_class"
OOD = "out_of_domain"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class DriftError(UserError):
    """A drift report cannot be made (no model, too few logged predictions, a bad window)."""


def parse_duration(text: str) -> float:
    """'90s', '30m', '24h', '7d', '2w' (or plain seconds) -> seconds."""
    m = _DURATION.match(text)
    if not m or float(m[1]) <= 0:
        raise DriftError(f"not a duration: {text!r} (use e.g. 30m, 24h, 7d)")
    return float(m[1]) * _UNIT_S[m[2]]


@dataclass(frozen=True)
class Window:
    """Which logged predictions to compare: a time range, optionally one region, one served model
    version, one rollout."""

    since: float | None = None  # unix seconds
    until: float | None = None
    region: str | None = None
    model_version: str | None = None
    rollout_id: str | None = None

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
        return ", ".join(parts)


@dataclass(frozen=True)
class ColumnDrift:
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass
class DriftResult:
    """The headline numbers of one drift check."""

    window: str
    reference_model: str
    n_reference: int
    n_current: int  # predictions compared: the whole window, or a uniform sample of it
    columns: dict[str, ColumnDrift]
    drifted_share: float
    ood_share: float
    reference_ood_share: float
    flag_counts: dict[str, int]
    held_counts: dict[str, int]  # requests kept on the champion, per flag
    predicted_share: dict[str, float]
    alarm: bool
    reasons: list[str] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    n_window: int | None = None  # predictions in the window (None: n_current, nothing was sampled)
    sample_seed: int | None = None  # the seed of the sample, when one was drawn

    @property
    def drifted_columns(self) -> list[str]:
        return [c for c, d in self.columns.items() if d.drifted]

    @property
    def sampled(self) -> bool:
        return self.n_window is not None and self.n_window > self.n_current

    def compared(self) -> str:
        """Which predictions were compared, in words."""
        if self.sampled:
            return (f"a uniform sample of {self.n_current:,} of the window's {self.n_window:,} predictions "
                    f"(seed {self.sample_seed})")
        return f"all {self.n_current:,} predictions in the window"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drifted_columns"] = self.drifted_columns
        out["compared"] = self.compared()
        return out


@dataclass(frozen=True)
class DriftReport:
    result: DriftResult
    html: Path
    json: Path


# -- frames -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """The compared predictions of a window, and how many the window holds."""

    rows: pd.DataFrame
    n_window: int
    seed: int | None  # set when `rows` is a sample


_COLUMNS = ("ts", "served_by", "champion_version", "candidate_version", "champion_scores", "candidate_scores",
            "label", "ood", "descriptors", "routing_reason")


def _in_window(query: Any, window: Window) -> Any:  # noqa: ANN401 - a Select
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
            ids = list(conn.execute(_in_window(select(p.request_id), window).order_by(p.ts, p.request_id)).scalars())
            if len(ids) <= sample:
                ids = None  # the whole window: read it in one pass
        if ids is None:
            rows = conn.execute(_in_window(select(*(p[c] for c in _COLUMNS)), window)).all()
            return Frame(_records_frame(rows), len(rows), None)
        chosen = [ids[i] for i in sorted(random.Random(seed).sample(range(len(ids)), sample))]
        rows = []
        for start in range(0, len(chosen), 500):
            rows += conn.execute(select(*(p[c] for c in _COLUMNS))
                                 .where(p.request_id.in_(chosen[start:start + 500])).order_by(p.ts)).all()
        return Frame(_records_frame(rows), len(ids), seed)


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
    (about 40% of the window read at 100,000 rows). The rows hold no reference cycles, so nothing is
    lost by pausing it; reference counting still frees everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def reference_frame(reference: dict[str, Any], calibration: Calibration | None = None,
                    flag_threshold: float = 0.5) -> pd.DataFrame:
    """The model's validation set as Evidently's reference: the same columns as `current_frame`."""
    import pandas as pd

    images = (reference or {}).get("images") or {}
    columns = images.get("descriptors") or {}
    if not columns:
        raise DriftError("the model has no reference statistics (it was exported before monitoring existed): "
                         "retrain it with `rollout train` to get drift reports")
    frame = pd.DataFrame(columns)
    frame[PREDICTED] = images.get("labels") or None
    cal = calibration or Calibration.from_reference(reference)
    frame[OOD] = ["yes" if cal.assess(row, flag_threshold).flags else "no" for row in frame.to_dict("records")]
    return frame


# -- comparison -------------------------------------------------------------------------------------
def compare(reference: pd.DataFrame, current: pd.DataFrame, settings: Settings, *, window: str = "",
            reference_model: str = "", same_model: bool = True) -> tuple[DriftResult, Any]:
    """Run Evidently's drift preset on the shared columns; returns the numbers and the snapshot."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    m = settings.monitoring
    numeric = [c for c in (*DESCRIPTORS, *(MODEL_DESCRIPTORS if same_model else ()))
               if c in reference.columns and c in current.columns and current[c].notna().any()
               and not _same_constant(reference[c], current[c])]
    categorical = [c for c in (PREDICTED, OOD) if c in reference.columns and c in current.columns
                   and reference[c].notna().all()]
    cols = numeric + categorical
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    report = Report([DataDriftPreset(columns=cols, drift_share=m.drift_share_alarm)])
    with warnings.catch_warnings():
        # Evidently's statistics divide by zero on constant columns (e.g. one image size everywhere) and
        # say so on stderr; the result is still right (no drift on a constant), so keep the output clean.
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = report.run(Dataset.from_pandas(current[cols], data_definition=definition),
                              Dataset.from_pandas(reference[cols], data_definition=definition))
    columns = _column_drift(snapshot.dict())
    drifted_share = sum(d.drifted for d in columns.values()) / len(columns) if columns else 0.0
    ood_share = float((current[OOD] == "yes").mean()) if len(current) else 0.0
    flags = Counter(f for fl in current.get("_flags", []) for f in fl)
    held = Counter(f for fl in current.get("_held", []) for f in fl)
    reasons = []
    if drifted_share >= m.drift_share_alarm:
        reasons.append(f"{drifted_share:.0%} of columns drifted (alarm at {m.drift_share_alarm:.0%})")
    if ood_share >= m.ood_share_alarm:
        reasons.append(f"{ood_share:.0%} of photos out-of-domain (alarm at {m.ood_share_alarm:.0%})")
    result = DriftResult(
        window=window, reference_model=reference_model, n_reference=len(reference), n_current=len(current),
        columns=columns, drifted_share=drifted_share, ood_share=ood_share,
        reference_ood_share=float((reference[OOD] == "yes").mean()) if len(reference) else 0.0,
        flag_counts=dict(flags), held_counts=dict(held),
        predicted_share={k: round(float(v), 4) for k, v in current[PREDICTED].value_counts(normalize=True).items()}
        if PREDICTED in current else {},
        alarm=bool(reasons), reasons=reasons,
    )
    return result, snapshot


def _same_constant(a: pd.Series, b: pd.Series) -> bool:
    """One value throughout both (e.g. every photo 256 px high): nothing to test, and the tests divide by zero."""
    values = set(a.dropna().unique()) | set(b.dropna().unique())
    return len(values) <= 1


def _column_drift(snapshot: dict[str, Any]) -> dict[str, ColumnDrift]:
    out = {}
    for metric in snapshot.get("metrics", []):
        config = metric.get("config", {})
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        method, threshold, score = str(config.get("method", "")), float(config.get("threshold", 0.05)), float(metric["value"])
        # Evidently's convention: p-value tests drift below the threshold, distances at or above it.
        drifted = score < threshold if "p_value" in method else score >= threshold
        out[config["column"]] = ColumnDrift(method=method, score=score, threshold=threshold, drifted=drifted)
    return out


# -- references -------------------------------------------------------------------------------------
def model_reference(settings: Settings, version: str) -> dict[str, Any]:
    """A registered version's reference statistics, cached as JSON in the data directory (versions are
    immutable, so the cache never goes stale)."""
    from roomsight import registry
    from roomsight.modelpack import read_meta

    cache = settings.home / "cache" / "references" / f"{settings.model_name}-{version}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    registry.configure(settings)
    ref = registry.ModelRef(settings.model_name, version)
    with registry.pack_files(ref) as directory:
        reference = read_meta(directory, ref.uri).reference
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(reference))
    return reference


def champion_version(settings: Settings, engine: Engine) -> str:
    """The champion as the serving side sees it (the rollout state), else the registry's alias."""
    with engine.connect() as conn:
        row = conn.execute(select(rollout_state.c.state).where(rollout_state.c.id == 1)).first()
    if row is not None:
        return str(row.state["champion"]["version"])
    from roomsight import registry

    registry.configure(settings)
    version = registry.alias_version(settings.model_name, registry.CHAMPION)
    if version is None:
        raise DriftError(f"no champion for model {settings.model_name!r}: train one with `rollout train`")
    return version


# -- the report ---------------------------------------------------------------------------------------
def _never_logged(engine: Engine, window: Window) -> list[str]:
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


def check(settings: Settings, engine: Engine, window: Window, reference_version: str | None = None) -> tuple[DriftResult, Any]:
    """Compare a log window (or a uniform sample of it, see the module's doc) with a model's reference
    (default: the champion); needs `min_window` rows."""
    m = settings.monitoring
    frame = window_frame(engine, window, m.drift_sample, m.drift_sample_seed)
    current = frame.rows
    if len(current) < m.min_window:
        if unlogged := _never_logged(engine, window):
            raise DriftError("; ".join(unlogged))
        raise DriftError(f"only {len(current)} logged prediction(s) in {window.describe()}; a drift report needs at "
                         f"least {m.min_window} (monitoring.min_window): widen the window with --since")
    version = reference_version or window.model_version or champion_version(settings, engine)
    reference = model_reference(settings, version)
    ref = reference_frame(reference, flag_threshold=m.flag_threshold)
    same_model = bool((current["_version"] == version).all())
    result, snapshot = compare(ref, current, settings, window=window.describe(),
                               reference_model=f"models:/{settings.model_name}/{version}", same_model=same_model)
    result.n_window, result.sample_seed = frame.n_window, frame.seed
    return result, snapshot


def report(settings: Settings, engine: Engine, window: Window, reference_version: str | None = None,
           out_dir: Path | None = None) -> DriftReport:
    """Run a check and save the Evidently HTML and the headline JSON under the reports directory."""
    result, snapshot = check(settings, engine, window, reference_version)
    out_dir = out_dir or settings.reports_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "drift-" + datetime.fromtimestamp(result.created_at, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if window.region:
        stem += f"-{re.sub(r'[^A-Za-z0-9_-]', '_', window.region)}"
    page, js = out_dir / f"{stem}.html", out_dir / f"{stem}.json"
    snapshot.save_html(str(page))
    _add_headline(page, result)
    js.write_text(json.dumps({"summary": result.to_dict(), "evidently": snapshot.dict()}, indent=1, default=str))
    return DriftReport(result=result, html=page, json=js)


def _add_headline(page: Path, result: DriftResult) -> None:
    """Put what was compared (window, sample, reference) at the top of Evidently's page, which shows only
    its own tables."""
    def e(s: str) -> str:
        return html.escape(s, quote=False)

    status = "ALARM: " + "; ".join(result.reasons) if result.alarm else "no alarm"
    headline = (f'<div id="roomsight-headline" style="font-family: sans-serif; padding: 8px 16px; '
                f'border-bottom: 1px solid #ccc"><b>roomsight drift report</b> ({e(status)}): {e(result.window)}; '
                f"{e(result.compared())}, against {result.n_reference:,} reference images of {e(result.reference_model)}.</div>")
    text = page.read_text()
    body = re.search(r"<body[^>]*>", text)
    at = body.end() if body else 0
    page.write_text(text[:at] + headline + text[at:])
