"""What a drift email says: the headline numbers as text/plain and as HTML, and a few example photos of
the window from the review photo store, shown inline.

Examples are the window's out-of-domain photos first (highest flag score first), then the photos
furthest from the reference on the drifted columns (in reference interquartile ranges from its median).
The choice (`pick`) is pure; reading the log and the store is at the edge (`example_photos`). Only the
newest `SCAN` rows of a window are looked at, so a week-long window costs no more than an hour's, and
the photo store keeps photos of rollout traffic only, for `review.photo_retention_h` unless queued: an
email without examples says why.
"""

from __future__ import annotations

import html
import io
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from PIL import Image
from sqlalchemy import Engine, select

from monitoring.drift import DriftReport, DriftResult, Window, model_reference
from monitoring.drift_window import in_window
from monitoring.mailer import InlineImage
from monitoring.review.photos import PhotoStore
from roomsight.config import Settings
from roomsight.tables import predictions

SCAN = 2000


@dataclass(frozen=True)
class Example:
    """One logged request chosen as an example, and why."""

    request_id: str
    ts: float
    region: str
    label: str
    why: str

    def caption(self) -> str:
        when = datetime.fromtimestamp(self.ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return f"{self.region}, answered {self.label}, {when}: {self.why} (request {self.request_id[:8]})"


@dataclass(frozen=True)
class ExamplePhoto:
    example: Example
    jpeg: bytes  # downscaled to monitoring.email_photo_px

    def inline(self, n: int) -> InlineImage:
        return InlineImage(cid=f"example{n}.{self.example.request_id}@roomsight",
                           data=self.jpeg, filename=f"example-{n}-{self.example.request_id[:8]}.jpg")


# -- choosing -----------------------------------------------------------------------------------------
def spread(values: Sequence[float]) -> tuple[float, float] | None:
    """(median, interquartile range) of a reference column, or None when it has no spread to measure by."""
    if len(values) < 4:
        return None
    q1, med, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (med, q3 - q1) if q3 > q1 else None


def pick(rows: Sequence[dict[str, Any]], reference: dict[str, tuple[float, float]], limit: int) -> list[Example]:
    """Up to `limit` examples from `rows` (request_id, ts, region, label, ood, descriptors): flagged
    out-of-domain first, by top flag score; then by distance from the reference on the drifted columns
    in `reference` (column -> (median, IQR))."""
    flagged, shifted = [], []
    for r in rows:
        ood = r.get("ood") or {}
        if ood.get("flags"):
            scores = ood.get("scores") or {}
            top = max(ood["flags"], key=lambda f: scores.get(f, 0.0))
            flagged.append((scores.get(top, 0.0), r, f"flagged {', '.join(ood['flags'])} ({top} {scores.get(top, 0.0):.2f})"))
            continue
        desc = r.get("descriptors") or {}
        far = [(abs(desc[c] - med) / iqr, c, desc[c] - med) for c, (med, iqr) in reference.items()
               if isinstance(desc.get(c), (int, float))]
        if far:
            dist, col, delta = max(far)
            shifted.append((dist, r, f"{col} {'above' if delta > 0 else 'below'} the reference by {dist:.1f} IQR"))
    chosen = sorted(flagged, key=lambda x: -x[0]) + sorted(shifted, key=lambda x: -x[0])
    return [Example(r["request_id"], r["ts"], r["region"], r["label"], why) for _, r, why in chosen[:limit]]


# -- reading ------------------------------------------------------------------------------------------
def _window_rows(engine: Engine, window: Window, result: DriftResult) -> list[dict[str, Any]]:
    """The newest SCAN rows of the window, where the examples are looked for: not the selection drift.check
    compared, which is the whole window or, past `monitoring.drift_sample`, a uniform sample of it. The window
    ends at the newest prediction the check read: one logged since, or written by the log's flush after the
    check though dated before its end, was never compared. (A row of a replica whose flush lags the others',
    dated before that newest one, can still be shown.)"""
    p = predictions.c
    read_to = result.created_at if result.newest_logged is None else result.newest_logged
    until = read_to if window.until is None else min(window.until, read_to)
    newest = replace(window, last=min(SCAN, window.last or SCAN), until=until)
    q = in_window(select(p.request_id, p.ts, p.region, p.label, p.ood, p.descriptors), newest)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


def _reference_spread(settings: Settings, result: DriftResult) -> dict[str, tuple[float, float]]:
    drifted = [c for c, d in result.columns.items() if d.drifted]
    if not drifted:
        return {}
    version = result.reference_model.rsplit("/", 1)[-1]
    columns = ((model_reference(settings, version).get("images") or {}).get("descriptors") or {})
    return {c: s for c in drifted if (s := spread([v for v in columns.get(c) or () if v is not None])) is not None}


def thumbnail(jpeg: bytes, max_px: int) -> bytes:
    image = Image.open(io.BytesIO(jpeg))
    image.thumbnail((max_px, max_px))
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue()


def example_photos(settings: Settings, engine: Engine, window: Window, result: DriftResult) -> list[ExamplePhoto]:
    """Up to `monitoring.email_photos` examples whose photos the store still holds, downscaled."""
    limit = settings.monitoring.email_photos
    if limit == 0:
        return []
    store = PhotoStore.for_settings(settings)
    rows = [r for r in _window_rows(engine, window, result) if store.has(r["request_id"])]
    out = []
    for ex in pick(rows, _reference_spread(settings, result), limit):
        data = store.get(ex.request_id)
        if data is not None:
            out.append(ExamplePhoto(ex, thumbnail(data, settings.monitoring.email_photo_px)))
    return out


# -- the message --------------------------------------------------------------------------------------
def subject(result: DriftResult) -> str:
    return (f"[roomsight] drift {'ALARM' if result.alarm else 'ok'}: {result.drifted_share:.0%} columns drifted, "
            f"{result.ood_share:.0%} out-of-domain ({result.n_current} predictions)")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


NO_PHOTOS = ("No example photos: none of this window's photos are in the review photo store (it keeps photos "
             "of rollout traffic, for review.photo_retention_h unless queued for review).")


def summary_text(result: DriftResult, report_name: str, photos: Sequence[ExamplePhoto]) -> str:
    r = result
    lines = [f"roomsight drift report: {'ALARM' if r.alarm else 'no alarm'}", ""]
    lines += [f"  * {reason}" for reason in r.reasons] + ([""] if r.reasons else [])
    lines += [f"Window:                  {r.window}",
              f"Reference:               {r.reference_model}, {r.n_reference} {r.reference_photos}",
              f"Predictions compared:    {r.compared()}",
              f"Columns drifted:         {r.drifted_share:.0%} ({', '.join(r.drifted_columns) or 'none'})",
              f"Out-of-domain share:     {r.ood_share:.1%} (reference {r.reference_ood_share:.1%})",
              f"Flags raised:            {_counts(r.flag_counts)}",
              f"Held on the champion:    {_counts(r.held_counts)}", "", "Columns:"]
    width = max((len(c) for c in r.columns), default=0) + 2
    lines += [f"  {c:<{width}}{d.method}  score {d.score:.4g}  {'DRIFTED' if d.drifted else 'ok'}"
              for c, d in r.columns.items()]
    lines.append("")
    if photos:
        lines.append("Example photos (inline in the HTML version):")
        lines += [f"  {i}. {p.example.caption()}" for i, p in enumerate(photos, 1)]
    else:
        lines.append(NO_PHOTOS)
    lines += ["", f"The full Evidently report is attached ({report_name})."]
    return "\n".join(lines) + "\n"


def summary_html(result: DriftResult, report_name: str, photos: Sequence[ExamplePhoto]) -> str:
    e, r = html.escape, result
    status = "ALARM" if r.alarm else "no alarm"
    colour = "#b00020" if r.alarm else "#1b5e20"
    rows = "".join(f"<tr><td>{e(name)}</td><td>{e(col.method)}</td><td>{col.score:.4g}</td>"
                   f"<td>{'<b>drifted</b>' if col.drifted else 'ok'}</td></tr>" for name, col in r.columns.items())
    reasons = "".join(f"<li>{e(x)}</li>" for x in r.reasons)
    figures = "".join(f'<figure style="display:inline-block;margin:4px"><img src="cid:{e(p.inline(i).cid)}" '
                      f'alt="example {i}" style="max-width:240px"><figcaption style="font-size:small;max-width:240px">'
                      f"{e(p.example.caption())}</figcaption></figure>" for i, p in enumerate(photos, 1))
    examples = f"<h3>Example photos</h3><div>{figures}</div>" if photos else f"<p><i>{e(NO_PHOTOS)}</i></p>"
    return f"""<html><body style="font-family: sans-serif">
<h2>roomsight drift report: <span style="color:{colour}">{status}</span></h2>
<ul>{reasons}</ul>
<p>Window: {e(r.window)}<br>Reference: {e(r.reference_model)}, {r.n_reference} {e(r.reference_photos)}<br>
Logged predictions compared: {e(r.compared())}</p>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th>share of columns drifted</th><td>{r.drifted_share:.0%}</td></tr>
<tr><th>out-of-domain share (reference)</th><td>{r.ood_share:.1%} ({r.reference_ood_share:.1%})</td></tr>
<tr><th>flags raised</th><td>{e(_counts(r.flag_counts))}</td></tr>
<tr><th>held on the champion</th><td>{e(_counts(r.held_counts))}</td></tr>
</table>
{examples}
<h3>Columns</h3>
<table border="1" cellpadding="4" cellspacing="0"><tr><th>column</th><th>test</th><th>score</th><th></th></tr>{rows}</table>
<p>The full Evidently report is attached ({e(report_name)}).</p>
</body></html>"""


def compose(settings: Settings, engine: Engine, window: Window, rep: DriftReport) -> dict[str, Any]:
    """The keyword arguments of mailer.send for one report: subject, text, html, inline photos, attachment."""
    photos = example_photos(settings, engine, window, rep.result)
    return {"subject": subject(rep.result), "text": summary_text(rep.result, rep.html.name, photos),
            "html": summary_html(rep.result, rep.html.name, photos),
            "images": [p.inline(i) for i, p in enumerate(photos, 1)], "attachments": [rep.html]}
