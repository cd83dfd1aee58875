"""Drift of live traffic against a model's reference: an Evidently (0.7 API) data-drift report over a
window of the prediction log, the headline numbers, and the alarm the promotion gates read (through
monitoring.drift_checks, which keeps the latest check of a rollout).

A window larger than `monitoring.drift_sample` predictions is compared on a uniform sample of that many,
drawn with `monitoring.drift_sample_seed` (monitoring.drift_window): the same window and seed give the same
sample. Its size and the window's are in the result, the report's headline and the CLI's output.

Compared columns: every registered image descriptor, the model-side descriptors (when the window is
one model's traffic, so they are comparable with that model's reference), the predicted class, and
whether the photo was flagged out-of-domain. The reference is the model's reference photos (its training
and validation photos when cross-fitted, its validation photos otherwise), their statistics exported with
it (monitoring.reference). The alarm fires when at least `monitoring.drift_share_alarm` of the
columns drifted, or at least `monitoring.ood_share_alarm` of the window was flagged out-of-domain. Which
test each column gets is monitoring.drift_tests'.
"""

from __future__ import annotations

import html
import json
import re
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from monitoring.descriptors import DESCRIPTORS, MODEL_DESCRIPTORS
from monitoring.drift_tests import DISPLAY_NAMES, per_column_tests
from monitoring.drift_window import (  # noqa: F401 - the drift API: windows and frames too
    OOD,
    PREDICTED,
    Window,
    never_logged,
    current_frame,
    window_frame,
)
from monitoring.ood import Calibration
from monitoring.reference import reference_photos
from roomsight.config import Settings
from roomsight.errors import DriftError
from roomsight.tables import rollout_state

if TYPE_CHECKING:
    import pandas as pd


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
    reference_photos: str = "reference photos"  # what the n_reference photos are (monitoring.reference)
    newest_logged: float | None = None  # when the window's newest prediction was logged, by the log's clocks

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


def reference_frame(reference: dict[str, Any], calibration: Calibration | None = None,
                    flag_threshold: float = 0.5) -> pd.DataFrame:
    """The model's reference photos as Evidently's reference: the same columns as `current_frame`."""
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
    report = Report([DataDriftPreset(columns=cols, drift_share=m.drift_share_alarm,
                                     per_column_method=per_column_tests(reference, current, numeric, categorical))])
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
        method = DISPLAY_NAMES.get(str(config.get("method", "")), str(config.get("method", "")))
        threshold, score = float(config.get("threshold", 0.05)), float(metric["value"])
        # Evidently's convention: p-value tests drift below the threshold, distances at or above it.
        drifted = score < threshold if "p_value" in method else score >= threshold
        out[config["column"]] = ColumnDrift(method=method, score=score, threshold=threshold, drifted=drifted)
    return out


# -- references -------------------------------------------------------------------------------------
def model_reference(settings: Settings, version: str) -> dict[str, Any]:
    """A registered version's reference statistics, with what its photos are under "photos" (from how it
    was fitted), cached as JSON in the data directory (versions are immutable, so the cache never goes stale)."""
    from roomsight import registry
    from roomsight.modelpack import read_meta

    cache = settings.home / "cache" / "references" / f"{settings.model_name}-{version}.json"
    if cache.exists():
        cached = json.loads(cache.read_text())
        if "photos" in cached:  # a cache written before it was recorded is read again from the pack
            return cached
    registry.configure(settings)
    ref = registry.ModelRef(settings.model_name, version)
    with registry.pack_files(ref) as directory:
        meta = read_meta(directory, ref.uri)
    reference = {**meta.reference, "photos": reference_photos(meta.thresholding.get("members"))}
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
def check(settings: Settings, engine: Engine, window: Window) -> tuple[DriftResult, Any]:
    """Compare a log window (or a uniform sample of it, see the module's doc) with the reference of the
    window's model version, else the champion's; needs `min_window` rows."""
    m = settings.monitoring
    frame = window_frame(engine, window, m.drift_sample, m.drift_sample_seed)
    current = frame.rows
    if len(current) < m.min_window:
        if unlogged := never_logged(engine, window):
            raise DriftError("; ".join(unlogged))
        more = "widen the window with --since" if window.last is None else "check again once the step has logged more"
        raise DriftError(f"only {len(current)} logged prediction(s) in {window.describe()}; a drift report needs at "
                         f"least {m.min_window} (monitoring.min_window): {more}")
    version = window.model_version or champion_version(settings, engine)
    reference = model_reference(settings, version)
    ref = reference_frame(reference, flag_threshold=m.flag_threshold)
    same_model = bool((current["_version"] == version).all())
    result, snapshot = compare(ref, current, settings, window=window.describe(),
                               reference_model=f"models:/{settings.model_name}/{version}", same_model=same_model)
    result.n_window, result.sample_seed, result.newest_logged = frame.n_window, frame.seed, frame.newest
    result.reference_photos = reference["photos"]
    return result, snapshot


def report(settings: Settings, engine: Engine, window: Window, out_dir: Path | None = None) -> DriftReport:
    """Run a check and save the Evidently HTML and the headline JSON under the reports directory."""
    result, snapshot = check(settings, engine, window)
    out_dir = out_dir or settings.reports_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    made = datetime.fromtimestamp(result.created_at, timezone.utc)
    stem = f"drift-{made:%Y%m%dT%H%M%S}.{made.microsecond // 1000:03d}Z"
    if window.region:
        stem += f"-{re.sub(r'[^A-Za-z0-9_-]', '_', window.region)}"
    page, js = _new_files(out_dir, stem)
    snapshot.save_html(str(page))
    _add_headline(page, result)
    js.write_text(json.dumps({"summary": result.to_dict(), "evidently": snapshot.dict()}, indent=1, default=str))
    return DriftReport(result=result, html=page, json=js)


def _new_files(out_dir: Path, stem: str) -> tuple[Path, Path]:
    """The report's HTML and JSON paths: `stem`, or `stem-2`, `stem-3`... when a report of the same
    millisecond (and region) exists. Claimed by creating the JSON file exclusively, so that two processes
    reporting at once never write over each other's files."""
    name, n = stem, 1
    while True:
        try:
            (out_dir / f"{name}.json").open("x").close()
            return out_dir / f"{name}.html", out_dir / f"{name}.json"
        except FileExistsError:
            n += 1
            name = f"{stem}-{n}"


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
