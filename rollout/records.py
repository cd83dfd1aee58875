"""The record of a rollout in MLflow: one run per event (start, promote, rollback, auto-rollback, auto-pause,
auto-promote) in the `roomsight-rollouts` experiment, with who, why, the conditions with their numbers and
the routing state after it; and reading them back, newest first or as of a moment.

Each condition is kept in the run's `conditions` tag as its `ConditionResult.to_dict()`, so history and a
past rollout's report read it with one search. A tag is short (`TAG_CHARS`): when the conditions do not fit,
the tag sheds their bulk in steps (`conditions_tag`) and the run's `evidence.json` artifact keeps them whole.
A start also keeps the plan it started with, its steps in words, in the `plan` tag: a report on the rollout names
its steps, not those of the plan file as edited since.

`live_at` is pure: from the event in force at a moment, which version answered a region then.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from roomsight import registry
from roomsight.errors import RecordLost
from roomsight.registry import ModelRef
from roomsight.rollout_state import RoutingState, Stage
from rollout.conditions import ConditionResult

# MLflow's MAX_TAG_VAL_LENGTH; it truncates a longer value, which would leave JSON that no longer parses.
TAG_CHARS = 8000
_ANALYSIS_HEADLINE = ("name", "outcome", "summary", "estimate", "lower", "upper", "n", "needed", "discordant")


@dataclass(frozen=True)
class Event:
    action: str  # start | promote | rollback | auto-rollback | auto-pause | auto-promote
    before: RoutingState
    after: RoutingState
    actor: str
    reason: str
    forced: bool
    conditions: list[ConditionResult]
    evidence: dict[str, float | None]
    generation: int
    from_step: str  # "3/7 gradual 10%", or the stage outside a rollout
    to_step: str
    at: float = 0.0  # when the change was made (unix seconds); 0: now
    event_id: str = ""  # names the run, so that a change written again (rollout.outbox) is recorded once
    plan: dict[str, Any] | None = None  # a start's: the plan it started with (`plan_text.as_recorded`)

    def to_dict(self) -> dict[str, Any]:
        """What `record` writes, as JSON: the conditions as they are recorded."""
        return {"action": self.action, "before": self.before.to_dict(), "after": self.after.to_dict(),
                "actor": self.actor, "reason": self.reason, "forced": self.forced,
                "conditions": [c.to_dict() for c in self.conditions], "evidence": self.evidence,
                "generation": self.generation, "from_step": self.from_step, "to_step": self.to_step,
                "at": self.at or time.time(), "event_id": self.event_id, "plan": self.plan}


def record(settings: Any, event: Event | dict[str, Any]) -> str:
    """Write one event (or its `to_dict()`) as an MLflow run, dated when the change was made; returns its run
    id. An event with an `event_id` already recorded (a finished run) is not recorded again: that run's id is
    returned."""
    e = event.to_dict() if isinstance(event, Event) else event
    exp_id = registry.ensure_experiment(settings, registry.ROLLOUT_EXPERIMENT)
    client = registry.client()
    if e["event_id"]:
        runs = client.search_runs([exp_id], filter_string=f"tags.event_id = '{e['event_id']}'", max_results=100)
        done = [r.info.run_id for r in runs if r.info.status == "FINISHED"]
        if done:
            return min(done)  # the one `_first_of` keeps
        # The caller holds the row's claim, so an unfinished run is a process's whose claim ran out (it died,
        # or is too slow to be waited for): not a record. Deleted, it leaves history, and that process's
        # next write to it fails instead of finishing a second record.
        for r in runs:
            _delete(client, r.info.run_id)
    ts = int(e["at"] * 1000)
    run = client.create_run(exp_id, start_time=ts, run_name=f"{e['action']}:{e['to_step']}", tags=_tags(e))
    for key, value in e["evidence"].items():
        if value is not None:
            client.log_metric(run.info.run_id, key, float(value), timestamp=ts)
    kept = {k: e.get(k) for k in ("conditions", "evidence", "before", "after", "plan")}  # older rows have no plan
    client.log_dict(run.info.run_id, kept, "evidence.json")
    client.set_terminated(run.info.run_id)
    return _first_of(client, exp_id, e["event_id"], run.info.run_id) if e["event_id"] else run.info.run_id


def _tags(e: dict[str, Any]) -> dict[str, str]:
    """What a change's run is tagged with, from its `Event.to_dict()`: what `history` reads back."""
    before, after = RoutingState.from_dict(e["before"]), RoutingState.from_dict(e["after"])
    candidate = candidate_of(before, after)
    return {
        "action": e["action"], "from_stage": before.stage.value, "to_stage": after.stage.value,
        "from_step": e["from_step"], "to_step": e["to_step"], "actor": e["actor"], "reason": e["reason"],
        "forced": str(e["forced"]).lower(), "rollout_id": rollout_of(e["action"], before, after),
        "champion": after.champion.uri, "candidate": candidate.uri if candidate else "",
        "regions": ",".join(after.regions), "percent": f"{after.percent:g}",
        "conditions": conditions_tag(e["conditions"]),
        "state_after": json.dumps(e["after"]), "generation": str(e["generation"]), "event_id": e["event_id"],
        **_plan_tag(e.get("plan")),
    }


def _plan_tag(plan: dict[str, Any] | None) -> dict[str, str]:
    """A start's plan as JSON, when it fits a tag; else only the artifact keeps it, and reports fall back on the
    plan at hand, as for a rollout started before starts kept their plan."""
    text = json.dumps(plan) if plan else ""
    return {"plan": text} if 0 < len(text) <= TAG_CHARS else {}


def _first_of(client: Any, exp_id: str, event_id: str, mine: str) -> str:
    """The one run a change keeps. The search before recording cannot stop two processes recording it (a claim
    ran out while the first still waited on a slow MLflow, and both found no run): whichever finishes last sees
    both, and the same rule in every process (the least run id) says which stays; the others are deleted.
    Our own run may be gone: another process found it unfinished and deleted it (`record`), and may yet fail
    before finishing its own. Its id is then no record, and RecordLost leaves the row to be caught up on."""
    runs = client.search_runs([exp_id], filter_string=f"tags.event_id = '{event_id}' and attributes.status = 'FINISHED'",
                              max_results=100)
    ids = sorted({r.info.run_id for r in runs})
    if not ids:
        raise RecordLost(f"run {mine} of change {event_id} was deleted before it was kept (another process found it "
                         "unfinished); the change waits to be caught up on")
    for extra in ids[1:]:
        _delete(client, extra)
    return ids[0]


def _delete(client: Any, run_id: str) -> None:
    try:
        client.delete_run(run_id)
    except Exception:  # another process deleted it first
        pass


def conditions_tag(conditions: list[dict[str, Any]], limit: int = TAG_CHARS) -> str:
    """The conditions (each a `ConditionResult.to_dict()`) as JSON in at most `limit` characters: each whole
    if they fit; else the analyses without their segments and per-model estimates; else without the analyses
    (the value, detail and numbers stay); at worst each name and outcome only."""
    whole = list(conditions)
    headline = [{**d, "analysis": _analysis_headline(d["analysis"])} for d in whole]
    bare = [{**d, "analysis": None} for d in whole]
    names = [{"name": d["name"], "outcome": d["outcome"]} for d in whole]
    for shape in (whole, headline, bare):
        text = json.dumps(shape)
        if len(text) <= limit:
            return text
    return json.dumps(names)


def _analysis_headline(analysis: dict[str, Any] | None) -> dict[str, Any] | None:
    """An analysis's overall result; empty segments and models keep the shape readers expect."""
    if analysis is None:
        return None
    return {**{k: analysis.get(k) for k in _ANALYSIS_HEADLINE}, "segments": [], "models": {}}


def rollout_of(action: str, before: RoutingState, after: RoutingState) -> str:
    """The rollout an event belongs to: a start begins a new one (the state before may still name the
    rollout that went to full); a rollback ends the one it leaves. The record, the notice and the report
    of an event all name it by this rule."""
    if action == "start":
        return after.rollout_id or ""
    return before.rollout_id or after.rollout_id or ""


def candidate_of(before: RoutingState, after: RoutingState) -> ModelRef | None:
    """The candidate an event is about. After full the state has none: the version full made champion is
    the one a rollback from there takes off, and naming the champion it restores would say the opposite."""
    if after.candidate is not None or before.candidate is not None:
        return after.candidate or before.candidate
    if before.stage is Stage.FULL and after.champion != before.champion:
        return before.champion
    return None


def history(limit: int = 50, at: float | None = None, rollout_id: str | None = None) -> list[dict[str, Any]]:
    """Rollout events newest first; with `at`, only those recorded at or before it; with `rollout_id`, only
    that rollout's (asked of MLflow: filtered afterwards, an old rollout's fell outside the newest `limit`).
    A change is one event: its record is a finished run, the one `_first_of` keeps. A run left unfinished
    (its process died, or lost its claim, before finishing it) is no record, and a second finished run of
    the same change (two processes both recorded it, and neither has deleted the other's yet) no second
    event."""
    if rollout_id is not None and not rollout_id.replace("-", "").isalnum():
        raise ValueError(f"not a rollout id: {rollout_id!r}")
    c = registry.client()
    with registry.reaching():
        exp = c.get_experiment_by_name(registry.ROLLOUT_EXPERIMENT)
        if exp is None:
            return []
        clauses = (["attributes.status = 'FINISHED'"] + ([] if at is None else [f"attributes.start_time <= {int(at * 1000)}"])
                   + ([] if rollout_id is None else [f"tags.rollout_id = '{rollout_id}'"]))
        runs: list[Any] = []
        token = None
        # Page on past `limit` runs while two runs of one change take two places: until a change beyond the
        # `limit`th shows (every run of those before it is then in hand, newest first) or none is left.
        while True:
            page = c.search_runs([exp.experiment_id], filter_string=" and ".join(clauses),
                                 order_by=["attributes.start_time DESC"], max_results=limit, page_token=token)
            runs.extend(page)
            token = page.token
            if not token or len({_change(run) for run in runs}) > limit:
                break
    kept: dict[str, str] = {}  # event_id -> the least run id, as `_first_of` keeps it
    for run in runs:
        event_id = run.data.tags.get("event_id")
        if event_id:
            kept[event_id] = min(kept.get(event_id, run.info.run_id), run.info.run_id)
    return [_event_dict(run) for run in runs
            if kept.get(run.data.tags.get("event_id") or "", run.info.run_id) == run.info.run_id][:limit]


def _change(run: Any) -> str:
    """What a run records: its change's event id (runs from before event ids: the run itself)."""
    return run.data.tags.get("event_id") or run.info.run_id


def listed(e: dict[str, Any]) -> dict[str, Any]:
    """A change not recorded yet (its `Event.to_dict()`), as `history` would list its run: no run id."""
    evidence = {k: float(v) for k, v in e["evidence"].items() if v is not None}
    return _listing(e["at"], _tags(e), evidence, None)


def _event_dict(run: Any) -> dict[str, Any]:
    return _listing(run.info.start_time / 1000.0, run.data.tags, dict(run.data.metrics), run.info.run_id)


def _listing(at: float, tags: dict[str, str], evidence: dict[str, float], run_id: str | None) -> dict[str, Any]:
    state = json.loads(tags["state_after"]) if tags.get("state_after") else None
    return {
        "time": at, "action": tags.get("action"), "from": tags.get("from_stage"),
        "to": tags.get("to_stage"), "from_step": tags.get("from_step", ""), "to_step": tags.get("to_step", ""),
        "actor": tags.get("actor"), "reason": tags.get("reason", ""), "forced": tags.get("forced") == "true",
        "champion": tags.get("champion"), "candidate": tags.get("candidate"), "regions": tags.get("regions", ""),
        "percent": tags.get("percent", ""), "rollout_id": tags.get("rollout_id"),
        "conditions": json.loads(tags.get("conditions") or tags.get("gates") or "[]"), "state": state,
        "evidence": evidence, "run_id": run_id, "plan": json.loads(tags["plan"]) if tags.get("plan") else None,
    }


@dataclass(frozen=True)
class LiveAt:
    """Who answered a region's listings at a moment."""

    champion: str  # version
    candidate: str | None
    candidate_share: float  # of the region's listings, in [0, 1]
    stage: str
    event_time: float | None  # when the state in force then was recorded

    def describe(self, region: str) -> str:
        if self.candidate is None or self.candidate_share == 0:
            shadow = f"; v{self.candidate} ran beside it in shadow" if self.candidate and self.stage != Stage.FULL.value else ""
            return f"in {region}, v{self.champion} answered every listing ({self.stage}){shadow}"
        if self.candidate_share >= 1:
            return f"in {region}, v{self.candidate} answered every listing ({self.stage}); v{self.champion} was champion"
        return (f"in {region}, v{self.candidate} answered {self.candidate_share:.0%} of listings and v{self.champion} "
                f"the rest ({self.stage})")


def live_at(event: dict[str, Any] | None, region: str) -> LiveAt | None:
    """From the latest event recorded at or before a moment (`history(1, at=...)`), who answered `region`."""
    if event is None:
        return None
    if event.get("state"):
        state = RoutingState.from_dict(event["state"])
    else:  # recorded before events carried the state: the tags say enough
        state = _state_from_tags(event)
    return LiveAt(champion=state.champion.version, candidate=state.candidate.version if state.candidate else None,
                  candidate_share=state.candidate_share(region), stage=state.stage.value, event_time=event["time"])


def _state_from_tags(event: dict[str, Any]) -> RoutingState:
    champion = registry.ModelRef(*event["champion"].removeprefix("models:/").split("/", 1))
    stage = event.get("to") or "stable"
    in_progress = stage in {s.value for s in (Stage.SHADOW, Stage.LIMITED, Stage.GRADUAL, Stage.PAUSE)}
    candidate = registry.ModelRef(*event["candidate"].removeprefix("models:/").split("/", 1)) if in_progress else None
    if stage == "full" or not in_progress:
        return RoutingState(champion=champion)
    return RoutingState.from_dict({"champion": champion.to_dict(), "candidate": candidate.to_dict() if candidate else None,
                                   "stage": stage, "rollout_id": event.get("rollout_id") or "?",
                                   "regions": [r for r in (event.get("regions") or "").split(",") if r],
                                   "percent": float(event.get("percent") or 0)})
