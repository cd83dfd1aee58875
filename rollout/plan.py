"""Rollout plans are data: a YAML file names the regions, the analyses, and the steps of a rollout in order,
each with what must hold to leave it (`exit`) and what is watched while it runs (`watch`). This module
parses one into a validated, immutable Plan; `plan_text` says it back in words and `plan_legacy` reads the
format of stage sections that came before steps.

    steps:
      - shadow: {sample: 1.0}
        exit: [{metric: compared, min: 30}, {analysis: quality}]
      - limited: {regions: [eu-west], percent: 100}
      - gradual: {percent: 25}
      - pause: {duration: 1h}         # or `pause: {}`: until someone promotes
      - full: {}

A mistake fails when the plan is loaded, naming the step and key, not at the moment of a promotion.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from analysis import AnalysisSpec
from roomsight.durations import parse_duration
from roomsight.errors import PlanError
from roomsight.plain_errors import plain_words
from roomsight.rollout_state import Stage
from roomsight.tables import REGION_MAX
from roomsight.userfiles import read_yaml
from rollout.metrics import METRICS
from rollout.plan_order import check_evidence, check_order

OnFail = Literal["rollback", "pause"]
# The values each metric can take (rollout.metrics; the rest are counts, latencies and ages, never below 0).
# A bound outside them, such as `agreement >= 50` (a percent where a share is meant), makes a gate that
# never passes, or never fails.
SHARE_METRICS = frozenset({"agreement", "candidate_error_rate", "candidate_precision_lower", "champion_precision_lower",
                           "min_class_precision", "candidate_win_rate", "ood_share", "drift_alarm", "drifted_share",
                           "step_agreement", "step_candidate_error_rate", "step_ood_share"})
DIFFERENCE_METRICS = frozenset({"precision_margin"})
MIN_BUDGET_CALLS = 20  # fewer candidate calls than this is too little to judge a rate on: a budget window's least
STEP_KINDS = (Stage.SHADOW, Stage.LIMITED, Stage.GRADUAL, Stage.PAUSE, Stage.FULL)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gate(_Strict):
    """A bound on one evidence metric."""

    metric: str
    min: float | None = Field(None, allow_inf_nan=False)  # NaN compares false: its gate could never pass
    max: float | None = Field(None, allow_inf_nan=False)
    on_fail: OnFail | None = None  # when watched: what a failure does (default: the step's on_fail)

    @model_validator(mode="after")
    def _check(self) -> Gate:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(METRICS)}")
        if (self.min is None) == (self.max is None):
            raise ValueError(f"gate on {self.metric} needs exactly one of min or max")
        bound = self.min if self.min is not None else self.max
        if self.metric in SHARE_METRICS and not 0 <= bound <= 1:
            raise ValueError(f"{self.metric} is a share from 0 to 1 (not a percent); got {bound:g}")
        if self.metric in DIFFERENCE_METRICS and not -1 <= bound <= 1:
            raise ValueError(f"{self.metric} is from -1 to 1; got {bound:g}")
        if self.metric not in SHARE_METRICS | DIFFERENCE_METRICS and bound < 0:
            raise ValueError(f"{self.metric} is never below 0; got {bound:g}")
        return self

    @property
    def name(self) -> str:
        return f"{self.metric} {'>=' if self.min is not None else '<='} {self.min if self.min is not None else self.max:g}"


class AnalysisRef(_Strict):
    """One of the plan's named analyses, by name."""

    analysis: str
    on_fail: OnFail | None = None

    @property
    def name(self) -> str:
        return f"analysis {self.analysis}"


def _condition_kind(value: Any) -> str:
    if isinstance(value, AnalysisRef) or (isinstance(value, dict) and "analysis" in value):
        return "analysis"
    return "gate"


# A condition is a gate or a reference to a named analysis; telling them apart by key keeps a mistake's
# message about the one the author meant.
Condition = Annotated[Annotated[Gate, Tag("gate")] | Annotated[AnalysisRef, Tag("analysis")], Discriminator(_condition_kind)]


class Budget(_Strict):
    """Errors and latency over the candidate's last `window` calls, watched whenever it answers users; its
    shadow calls from before it answered any (at shadow priority, under the shadow timeout) are left out."""

    max_error_rate: float = Field(0.05, ge=0, le=1)
    max_p99_ms: float = Field(5000, gt=0)
    window: int = Field(200, ge=MIN_BUDGET_CALLS)  # a smaller window would never be judged


class ShadowTraffic(_Strict):
    sample: float = Field(1.0, ge=0, le=1)


class LimitedTraffic(_Strict):
    regions: tuple[str, ...] = ()  # empty: named at promotion (--regions)
    percent: float = Field(100, gt=0, le=100)


class GradualTraffic(_Strict):
    percent: float = Field(gt=0, le=100)


class PauseSpec(_Strict):
    duration: float | None = None  # seconds; None: until someone promotes

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float | None:
        return None if v is None else parse_duration(v)


class FullSpec(_Strict):
    pass


class AutoAdvance(_Strict):
    after: float  # seconds in the step before the guard promotes, once the exit conditions pass

    @field_validator("after", mode="before")
    @classmethod
    def _after(cls, v: Any) -> float:
        return parse_duration(v)


class Step(_Strict):
    """One step: exactly one of the kinds, plus its conditions."""

    shadow: ShadowTraffic | None = None
    limited: LimitedTraffic | None = None
    gradual: GradualTraffic | None = None
    pause: PauseSpec | None = None
    full: FullSpec | None = None
    exit: tuple[Condition, ...] = ()  # what must hold to leave this step
    watch: tuple[Condition, ...] = ()  # checked continuously while the rollout is on this step
    auto_advance: AutoAdvance | None = None
    on_fail: OnFail = "rollback"  # what a failing watched condition does, unless it says otherwise

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"a step is a mapping with one of {', '.join(k.value for k in STEP_KINDS)}")
        kinds = [k.value for k in STEP_KINDS if k.value in data]
        unknown = [k for k in data if k not in cls.model_fields]
        if unknown:
            raise ValueError(f"unknown step key(s) {', '.join(map(repr, unknown))}; a step is one of "
                             f"{', '.join(k.value for k in STEP_KINDS)}, with exit, watch, auto_advance, on_fail")
        if len(kinds) != 1:
            raise ValueError(f"a step names exactly one kind of {', '.join(k.value for k in STEP_KINDS)}; got "
                             f"{', '.join(kinds) or 'none'}")
        # `full: {}` and `pause:` with nothing after them read as None in YAML.
        return {**data, kinds[0]: data[kinds[0]] or {}}

    @property
    def kind(self) -> Stage:
        return next(k for k in STEP_KINDS if getattr(self, k.value) is not None)

    @property
    def wait_s(self) -> float | None:
        """How long the rollout stays on this step before the guard may advance it, if it ever does."""
        if self.pause is not None and self.pause.duration is not None:
            return self.pause.duration
        return self.auto_advance.after if self.auto_advance else None


class Plan(_Strict):
    name: str = "default"
    regions: tuple[str, ...]
    hold_ood_on_champion: bool = True
    analyses: dict[str, AnalysisSpec] = Field(default_factory=dict)
    budget: Budget = Budget()
    watch: tuple[Condition, ...] = ()  # checked continuously on every step where the candidate answers users
    steps: tuple[Step, ...]

    @field_validator("regions")
    @classmethod
    def _regions(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("a plan names at least one region: limited steps and promote --regions may name only the plan's")
        twice = sorted({r for r in v if v.count(r) > 1})
        if twice:
            raise ValueError(f"{', '.join(map(repr, twice))} is named twice")
        long = [r for r in v if len(r) > REGION_MAX]
        if long:
            raise ValueError(f"{', '.join(map(repr, long))} is longer than the {REGION_MAX} characters a request's region may be")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        for where, key, step, cond in self._conditions():
            if isinstance(cond, AnalysisRef) and cond.analysis not in self.analyses:
                raise PlanError(f"{where} names analysis {cond.analysis!r}, which `analyses` does not define "
                                f"(defined: {', '.join(self.analyses) or 'none'})", key, step)
            # Only a watched condition's failure makes the guard act; on an exit it was read and silently ignored.
            if cond.on_fail is not None and key.split(".")[2:3] == ["exit"]:
                raise PlanError(f"{where}: on_fail says what a watched condition's failure does; an exit condition "
                                "that fails only holds the step (watch it to act on its failure)", f"{key}.on_fail", step)
        check_order(self.steps, self.regions)
        check_evidence(self.steps, self._conditions())
        return self

    def _conditions(self) -> list[tuple[str, str, int | None, Condition]]:
        """Every condition with where it is: for people ("steps.0 (shadow).exit.1"), as a key, its step."""
        found: list[tuple[str, str, int | None, Condition]] = [(f"watch.{i}", f"watch.{i}", None, c)
                                                               for i, c in enumerate(self.watch)]
        for i, step in enumerate(self.steps):
            found += [(f"steps.{i} ({step.kind}).{part}.{j}", f"steps.{i}.{part}.{j}", i, c)
                      for part in ("exit", "watch") for j, c in enumerate(getattr(step, part))]
        return found

    def step_label(self, index: int) -> str:
        """'3/7 gradual 25%': where a rollout stands, for people."""
        step = self.steps[index]
        detail = {Stage.GRADUAL: lambda s: f" {s.gradual.percent:g}%",
                  Stage.LIMITED: lambda s: f" {', '.join(s.limited.regions) or '(regions at promotion)'} {s.limited.percent:g}%",
                  Stage.PAUSE: lambda s: " " + ("until promoted" if s.wait_s is None else f"{s.wait_s:g} s")}
        return f"{index + 1}/{len(self.steps)} {step.kind}" + detail.get(step.kind, lambda s: "")(step)

    def watched(self, index: int, answers_traffic: bool) -> tuple[Condition, ...]:
        """What the guard checks on step `index` (besides the budget while the candidate answers users)."""
        return (self.watch if answers_traffic else ()) + self.steps[index].watch

    def unconditional(self, **changes: Any) -> Plan:
        """The same steps with no exit or watched conditions (the budget stays): for benchmarks and tests
        that drive a rollout by hand."""
        steps = tuple(s.model_copy(update={"exit": (), "watch": ()}) for s in self.steps)
        return self.model_copy(update={"steps": steps, "watch": (), **changes})

    def check_regions(self, regions: tuple[str, ...]) -> None:
        unknown = [r for r in regions if r not in self.regions]
        if unknown:
            raise PlanError(f"unknown region(s) {', '.join(unknown)}; this plan's regions are {', '.join(self.regions)}")


def default_plan_path() -> Path:
    return Path(str(resources.files("rollout") / "plans" / "default.yaml"))


def load_plan(path: Path | str | None = None) -> Plan:
    """A validated plan; a file in the format of stage sections (before steps) is converted, see plan_legacy."""
    from rollout.plan_legacy import is_legacy, parse_converted, to_steps

    path = Path(path).expanduser() if path else default_plan_path()  # --plan=~/p.yaml reaches here with its `~`
    raw = read_yaml(path, "rollout plan", PlanError) or {}
    if not isinstance(raw, dict):
        raise PlanError(f"rollout plan {path} must be a mapping with `regions` and `steps`")
    if is_legacy(raw):
        return parse_converted(to_steps(raw, path), path)
    return parse_plan(raw, str(path))


def parse_plan(raw: dict[str, Any], source: str = "rollout plan",
               rename: Callable[[PlanError], PlanError] | None = None) -> Plan:
    """`rename`: each problem as the file's author should read it (plan_legacy: by the old file's keys)."""
    try:
        return Plan.model_validate(raw)
    except ValidationError as exc:
        problems = [rename(p) if rename else p for p in map(problem, exc.errors())]
        message = "; ".join(dict.fromkeys(map(str, problems)))
        raise PlanError(f"rollout plan {source} is invalid: {message}", problems[0].key, problems[0].step) from None


def problem(e: Any) -> PlanError:
    """One of pydantic's errors (an ErrorDetails) as a PlanError; a validator's PlanError keeps its key and step."""
    parts = [str(p) for p in e["loc"] if not str(p).startswith(("function-", "tagged-union", "union["))]
    # After a condition's index pydantic names the kind it was read as (its Tag): no key of the plan, and
    # "exit.0.analysis.on_fail" sent the author looking for an on_fail under `analysis:`.
    loc = [p for i, p in enumerate(parts) if not (p in ("gate", "analysis") and i >= 1 and parts[i - 1].isdigit())]
    # A plan is only ever YAML, where `[a, b]` is how a list is written.
    msg = plain_words(e, "key", list_example="[a, b]")
    raised = (e.get("ctx") or {}).get("error")
    if isinstance(raised, PlanError):
        return PlanError(msg, raised.key, raised.step)
    step = int(loc[1]) if len(loc) > 1 and loc[0] == "steps" and loc[1].isdigit() else None
    return PlanError(f"{'.'.join(loc)}: {msg}" if loc else msg, ".".join(loc) or None, step)
