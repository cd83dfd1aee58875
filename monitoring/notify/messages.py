"""The email of a rollout event, pure: subject, a text/plain body that stands on its own (every number a
reader needs, in a terminal mail client too), and the same as HTML."""

from __future__ import annotations

import html
from typing import Any

from monitoring.notify.payloads import headline_numbers
from roomsight.events import RolloutEvent, iso_time


def condition_line(c: dict[str, Any]) -> str:
    return f"{str(c.get('outcome', '')).upper()} {c.get('name')}: {c.get('detail', '')}"


def facts(event: RolloutEvent) -> list[tuple[str, str]]:
    src, dst = event.from_step or event.from_stage, event.to_step or event.to_stage
    stage = dst if src == dst else f"{src} -> {dst}"
    where = event.where()
    rows = [("Event", event.action), ("Stage", stage + (f" ({where})" if where else "")),
            ("Champion", event.champion), ("Candidate", event.candidate or "none"), ("Actor", event.actor),
            ("Reason", event.reason or "(none given)"), ("Time", iso_time(event.ts)), ("Rollout", event.rollout_id)]
    if event.forced:
        rows.append(("Forced", "yes: promoted past conditions that did not pass"))
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
    if event.conditions:
        text += ["", "Conditions"] + [f"  {condition_line(c)}" for c in event.conditions]
    e = html.escape
    body = [f"<html><body style=\"font-family: sans-serif\"><h2>{e(event.headline())}</h2>",
            "<table cellpadding=\"4\" cellspacing=\"0\">"]
    body += [f"<tr><th align=\"left\">{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows]
    body.append("</table>")
    if numbers:
        body += ["<h3>Headline numbers</h3><table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">"]
        body += [f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in numbers]
        body.append("</table>")
    if event.conditions:
        body += ["<h3>Conditions</h3><ul>"] + [f"<li>{e(condition_line(c))}</li>" for c in event.conditions] + ["</ul>"]
    body.append("</body></html>")
    return subject, "\n".join(text) + "\n", "\n".join(body)
