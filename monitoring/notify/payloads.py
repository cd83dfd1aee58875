"""What a webhook receives, pure: an event -> the JSON body. Two kinds:

- `generic`: roomsight's own event, one flat object a receiver can switch on by `event`
  (`schema: roomsight.event/v1`); the README lists its keys.
- `slack`: a Slack incoming-webhook message, `text` (the notification and fallback line) plus Block Kit
  `blocks` (header, fields, the headline numbers, a context line). Text is escaped for Slack's mrkdwn and
  cut to Block Kit's length limits, so a long reason cannot get the whole message refused.
"""

from __future__ import annotations

from typing import Any

from roomsight.events import DriftAlarm, RolloutEvent, iso_time

SCHEMA = "roomsight.event/v1"
Event = RolloutEvent | DriftAlarm

# The evidence numbers a person reads first, in this order; the generic payload carries all of them.
HEADLINE = ("requests", "compared", "agreement", "candidate_error_rate", "candidate_p99_ms", "reviewed",
            "precision_margin", "candidate_win_rate", "ood_share", "step_ood_share", "drifted_share", "drift_alarm")
_HEADER_MAX, _TEXT_MAX, _FIELD_MAX = 150, 3000, 2000


def number(name: str, value: float | None) -> str:
    """A headline number as a person reads it: shares as percentages, latencies in ms, counts whole."""
    if value is None:
        return "no evidence yet"
    if name == "drift_alarm":
        return "ALARM" if value else "no alarm"
    if name.endswith(("_share", "_rate")) or name in ("agreement", "precision_margin"):
        return f"{value:+.1%}" if name == "precision_margin" else f"{value:.1%}"
    if name.endswith("_ms"):
        return f"{value:.0f} ms"
    # A count in full: four significant digits turn 12,345 requests into 1.234e+04.
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.4g}"


def headline_numbers(numbers: dict[str, float | None]) -> list[tuple[str, str]]:
    return [(k, number(k, numbers[k])) for k in HEADLINE if k in numbers]


def drift_numbers(a: DriftAlarm) -> dict[str, float]:
    return {"predictions": a.n_current, "drifted_share": a.drifted_share, "ood_share": a.ood_share,
            "reference_ood_share": a.reference_ood_share}


# -- generic ------------------------------------------------------------------------------------------
def generic(event: Event, delivery_id: str) -> dict[str, Any]:
    """roomsight's JSON event. `id` is the same on every retry of one delivery, so a receiver can drop
    duplicates."""
    base: dict[str, Any] = {"schema": SCHEMA, "id": delivery_id, "event": event.kind, "summary": event.headline(),
                            "time": iso_time(event.ts), "rollout_id": event.rollout_id}
    if isinstance(event, DriftAlarm):
        return {**base, "region": event.region, "window": event.window, "reference_model": event.reference_model,
                "numbers": drift_numbers(event), "drifted_columns": list(event.drifted_columns),
                "flag_counts": dict(event.flag_counts), "reasons": list(event.reasons), "report": event.report}
    return {**base, "stage": {"from": event.from_stage, "to": event.to_stage},
            "step": {"from": event.from_step, "to": event.to_step, "index": event.step},
            "champion": event.champion, "candidate": event.candidate, "actor": event.actor, "reason": event.reason,
            "forced": event.forced, "regions": list(event.regions), "region_percent": event.region_percent,
            "percent": event.percent, "numbers": dict(event.numbers),
            "conditions": [dict(c) for c in event.conditions], "mlflow_run_id": event.run_id}


# -- Slack --------------------------------------------------------------------------------------------
def escape(text: str) -> str:
    """Slack reads &, < and > as markup (links, mentions): escaped, a reason cannot ping @channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    kept = text[: limit - 1]
    # Never half an escape (`&am…` would show as text): drop an entity the cut went through.
    amp = kept.rfind("&", len(kept) - 4)
    if amp != -1 and ";" not in kept[amp:]:
        kept = kept[:amp]
    return kept + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _TEXT_MAX)}}


def _fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    # Block Kit allows at most 10 fields in a section.
    return {"type": "section", "fields": [{"type": "mrkdwn", "text": _cut(f"*{escape(k)}*\n{escape(v)}", _FIELD_MAX)}
                                          for k, v in pairs[:10]]}


_TITLE = {"start": "Rollout started", "promote": "Rollout promoted", "rollback": "Rollout rolled back",
          "auto-rollback": "Rollout rolled back automatically", "auto-pause": "Rollout paused automatically",
          "auto-promote": "Rollout promoted automatically"}
_ICON = {"start": ":seedling:", "promote": ":arrow_up:", "rollback": ":leftwards_arrow_with_hook:",
         "auto-rollback": ":rotating_light:", "auto-pause": ":double_vertical_bar:", "auto-promote": ":arrow_up:"}


def slack(event: Event, delivery_id: str) -> dict[str, Any]:
    """A Slack incoming-webhook message."""
    if isinstance(event, DriftAlarm):
        title, icon = "Drift alarm", ":warning:"
        pairs = [("Window", event.window), ("Reference", event.reference_model)]
        if event.rollout_id:
            pairs.append(("Rollout", event.rollout_id[:8]))
        numbers = [(k, number(k, v)) for k, v in drift_numbers(event).items()]
        lines = [f"• {escape(r)}" for r in event.reasons]
        if event.drifted_columns:
            lines.append(f"Drifted: {escape(', '.join(event.drifted_columns))}")
        if event.flag_counts:
            lines.append("Flags: " + escape(", ".join(f"{k} {v}" for k, v in event.flag_counts.items())))
        context = f"report {event.report}" if event.report else ""
    else:
        title, icon = _TITLE.get(event.action, event.action), _ICON.get(event.action, ":gear:")
        src, dst = event.from_step or event.from_stage, event.to_step or event.to_stage
        stage = dst if src == dst else f"{src} → {dst}"
        pairs = [("Step", stage + (f" ({event.where()})" if event.where() else "")), ("Actor", event.actor),
                 ("Champion", event.champion), ("Candidate", event.candidate or "none"),
                 ("Rollout", event.rollout_id[:8])]
        numbers = headline_numbers(event.numbers)
        lines = [f"*Reason:* {escape(event.reason)}"] if event.reason else []
        if event.forced:
            lines.append(":warning: forced past conditions that did not pass")
        failed = [c for c in event.conditions if c.get("outcome") != "pass"]
        if failed:
            lines.append("Not passed: " + escape(", ".join(f"{c.get('name')} ({c.get('outcome')})" for c in failed)))
        context = f"MLflow run {event.run_id}" if event.run_id else ""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, _HEADER_MAX), "emoji": True}},
        _section(f"{icon} {escape(event.headline())}"), _fields(pairs)]
    if lines:
        blocks.append(_section("\n".join(lines)))
    # A section holds ten fields and a full evidence has more headline numbers: the rest go in the next one.
    blocks += [_fields(numbers[i:i + 10]) for i in range(0, len(numbers), 10)]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(
        escape(" · ".join(x for x in (iso_time(event.ts), context, f"delivery {delivery_id}") if x)), _TEXT_MAX)}]})
    return {"text": _cut(f"{icon} roomsight: {escape(event.headline())}", _TEXT_MAX), "blocks": blocks}


KINDS = {"generic": generic, "slack": slack}
