"""ReportInput + gathered views -> HTML. One Jinja2 template with autoescaping on, so every string that
came from a user (captions, reasons, actors, region and class names) is escaped; images are inlined
as data: URIs and the CSS is inlined, so the file opens with no network and no scripts."""

from __future__ import annotations

import functools
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from rollout.report.inputs import ReportInput, model_uri, verdict


def assets_dir() -> Path:
    return Path(str(resources.files("rollout") / "report" / "assets"))


def _pct(v: float | None, digits: int = 0) -> str:
    return "–" if v is None else f"{v * 100:.{digits}f}%"


def _num(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{int(v):,}"


def _utc(ts: float | None, seconds: bool = False) -> str:
    if ts is None:
        return "–"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else "") + " UTC")


def _ci(p: Any) -> str:
    """'84–95%': the Wilson 95% interval of a stats.Precision, '' without answers."""
    ci = p.interval
    return "" if ci is None else f"{ci[0] * 100:.0f}–{_pct(ci[1])}"


def _step_parts(line: str) -> tuple[str, str]:
    name, _, text = line.partition(": ")
    return name, text


@functools.cache
def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(assets_dir())), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(pct=_pct, num=_num, utc=_utc, ci=_ci, step_parts=_step_parts, model_uri=model_uri)
    return env


EVIDENCE_SHOWN = (("requests", "requests", "num"), ("compared", "compared", "num"), ("agreement", "agreement", "pct1"),
                  ("candidate_served", "answered by candidate", "num"), ("candidate_error_rate", "candidate errors", "pct1"),
                  ("candidate_p99_ms", "candidate p99", "ms"), ("reviewed", "reviewed", "num"),
                  ("ood_share", "out-of-domain", "pct1"), ("step_ood_share", "out-of-domain this step", "pct1"),
                  ("drift_alarm", "drift alarm", "alarm"))


def kpis(inp: ReportInput, total_requests: int | None) -> list[tuple[str, str]]:
    """The headline numbers under the verdict, from the gates' evidence."""
    ev = dict(inp.evidence)
    if "requests" not in ev and total_requests is not None:
        ev["requests"] = float(total_requests)
    out = []
    for key, label, kind in EVIDENCE_SHOWN:
        if key not in ev:
            continue
        v = ev[key]
        shown = {"num": _num(v), "pct": _pct(v), "pct1": _pct(v, 1), "ms": "–" if v is None else f"{v:,.0f} ms",
                 "alarm": "–" if v is None else ("raised" if v else "none")}[kind]
        out.append((label, shown))
    return out


def render(inp: ReportInput, views: Any, standalone: bool = True) -> str:
    """The whole self-contained page, or (standalone=False) the report's <article> for the live page."""
    # Our own stylesheet, not a value: <style> is raw text, where an escaped quote stays `&#34;` and breaks the CSS.
    css = Markup((assets_dir() / "report.css").read_text(encoding="utf-8")) if standalone else ""
    template = _env().get_template("report.html.j2")
    return template.render(inp=inp, v=views, verdict=verdict(inp), css=css, standalone=standalone,
                           kpis=kpis(inp, views.series.total if views.series else None),
                           short=(inp.rollout_id or "")[:8])
