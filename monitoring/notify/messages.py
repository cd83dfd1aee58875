"""The email of a rollout event, pure: subject, a text/plain body that stands on its own (every number a
reader needs, in a terminal mail client too), and the same as HTML."""

from __future__ import annotations

import html
from typing import Any

from monitoring.notify.payloads import headline_numbers
from roomsight.events import RolloutEvent, iso_time


def gate_line(g: dict[str, Any]) -> str:
    op = ">=" if g.get("bound") == "min" else "<="
    value = g.get("value")
    shown = "no evidence" if value is None else f"{value:.4g}"
    return f"{'PASS' if g.get('passed') else 'FAIL'} {g.get('metric')} {op} {g.get('threshold', 0):g}: {shown}"


def facts(event: RolloutEvent) -> list[tuple[str, str]]:
    stage = event.to_stage if event.from_stage == event.to_stage else f"{event.from_stage} -> {event.to_stage}"
    where = event.where()
    rows = [("Event", event.action), ("Stage", stage + (f" ({where})" if where else "")),
            ("Champion", event.champion), ("Candidate", event.candidate or "none"), ("Actor", event.actor),
            ("Reason", event.reason or "(none given)"), ("Time", iso_time(event.ts)), ("Rollout", event.rollout_id)]
    if event.step is not None:
        rows.insert(2, ("Plan step", str(event.step)))
    if event.forced:
        rows.append(("Forced", "yes: promoted past failing gates"))
    if event.run_id:
        rows.append(("MLflow run", event.run_id))
    return rows


def rollout_email(event: RolloutEvent) -> tuple[str, str, str]:
    """(subject, text, html) of one rollout event."""
    subject = f"[roomsight] {event.headline()}"
    rows, numbers = facts(event), headline_numbers(event.numbers)
    width = max(len(k) for k, _ in rows) + 2
    text = [f"roomsight {event.headline()}", ""] + [f"{k + ':':<{width}}{v}" for k, v in rows]
    if numbers:
        nw = max(len(k) for k, _ in numbers) + 2
        text += ["", "Headline numbers"] + [f"  {k:<{nw}}{v}" for k, v in numbers]
    if event.gates:
        text += ["", "Gates"] + [f"  {gate_line(g)}" for g in event.gates]
    e = html.escape
    body = [f"<html><body style=\"font-family: sans-serif\"><h2>{e(event.headline())}</h2>",
            "<table cellpadding=\"4\" cellspacing=\"0\">"]
    body += [f"<tr><th align=\"left\">{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows]
    body.append("</table>")
    if numbers:
        body += ["<h3>Headline numbers</h3><table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">"]
        body += [f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in numbers]
        body.append("</table>")
    if event.gates:
        body += ["<h3>Gates</h3><ul>"] + [f"<li>{e(gate_line(g))}</li>" for g in event.gates] + ["</ul>"]
    body.append("</body></html>")
    return subject, "\n".join(text) + "\n", "\n".join(body)
