"""The control API's contract as published at /openapi.json: the request and response bodies, the one error
body every refusal carries (a refused promotion adds the conditions that held it), which statuses each
operation answers with, and the bearer-token scheme. A test runs schemathesis with all its checks over real
HTTP against it (tests/test_control_openapi.py).

The response models mirror the `to_dict()` of the control plane's own dataclasses (RoutingState,
ConditionResult, AnalysisResult, Status, Outcome, the recorded events); FastAPI validates every answer
against them, so a change there that the contract does not follow fails loudly in the tests.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

OutcomeWord = Literal["pass", "fail", "inconclusive"]
StageWord = Literal["stable", "shadow", "limited", "gradual", "pause", "full"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests -------------------------------------------------------------------------------------------
# A person decides on the rollout they were shown; the guard may move it meanwhile (a timed step promoted, a
# rollback), and the change would then land on a rollout they never saw: promoted twice, or forced past a
# step whose conditions they never read.
GENERATION_MAX = 2**31 - 1  # the state row's Integer column
_GENERATION = ("Change the rollout only if it is still at this generation, as `/api/status` or a dry run gave it; "
               "if anyone (the guard too) changed it since, 409 and nothing is changed.")


class StartIn(_Body):
    candidate: str = Field(min_length=1, max_length=256, description="The candidate's model URI, e.g. models:/roomtype/2.")
    reason: str | None = Field(None, max_length=1000)


class PromoteIn(_Body):
    stage: str | None = Field(None, max_length=32, description="Go to the first later step of this kind; default: the next step.")
    regions: list[str] | None = Field(None, max_length=100, description="A limited step's regions, instead of the plan's.")
    percent: float | None = Field(None, gt=0, le=100, description="A limited or gradual step's share, instead of the plan's.")
    force: bool = Field(False, description="Promote past conditions that did not pass; needs `reason`.")
    dry_run: bool = Field(False, description="Say what would happen, with every condition's numbers; change nothing.")
    reason: str | None = Field(None, max_length=1000)
    generation: int | None = Field(None, ge=1, le=GENERATION_MAX, description=_GENERATION)


class RollbackIn(_Body):
    reason: str = Field(max_length=1000, description="Why, for the record; a blank reason is refused (409).")
    generation: int | None = Field(None, ge=1, le=GENERATION_MAX, description=_GENERATION)


INPUT_FIELDS = frozenset({*StartIn.model_fields, *PromoteIn.model_fields, *RollbackIn.model_fields})


# -- responses ------------------------------------------------------------------------------------------
class ApiError(_Body):
    error: str = Field(min_length=1, description="What was refused and why, in words.")


class ModelRefOut(_Body):
    name: str
    version: str


class RoutingStateOut(_Body):
    """The routing state (roomsight.rollout_state.RoutingState) every ingress routes on."""

    champion: ModelRefOut
    stage: StageWord
    candidate: ModelRefOut | None
    rollout_id: str | None
    step: int | None = Field(description="Index of the current plan step, from 0; null outside a rollout.")
    since: float | None = Field(description="When the current step began, unix seconds.")
    regions: list[str]
    region_percent: float = Field(ge=0, le=100, description="Share of the listings in `regions` the candidate answers.")
    percent: float = Field(ge=0, le=100, description="Share of all listings the candidate answers.")
    shadow_sample: float = Field(ge=0, le=1)
    hold_ood_on_champion: bool
    held: str | None = Field(description="Why the guard holds the rollout where it is, if it does.")
    previous_champion: ModelRefOut | None
    plan_fingerprint: str | None = Field(None, description="Fingerprint of the steps of the plan the rollout started "
                                         "with (kinds, traffic, durations); null outside a rollout and in states "
                                         "written before it was kept.")


class SegmentOut(_Body):
    key: str
    value: str
    outcome: OutcomeWord
    estimate: float | None
    lower: float | None
    upper: float | None
    n: int
    share: float
    judged: bool
    words: str


class AnalysisOut(_Body):
    """An analysis's result (analysis.AnalysisResult): candidate minus champion, with any-time-valid bounds."""

    name: str
    outcome: OutcomeWord
    summary: str
    estimate: float | None
    lower: float | None
    upper: float | None
    n: int = Field(description="Verdicts used.")
    needed: int | None = Field(description="When inconclusive: about how many more verdicts would likely decide it.")
    segments: list[SegmentOut]
    discordant: int
    models: dict[str, Any] = Field(description="Each model's weighted accuracy and precision with intervals.")


class ConditionOut(_Body):
    """One condition judged (rollout.conditions.ConditionResult): a gate, an analysis or the budget."""

    name: str
    kind: Literal["gate", "analysis", "budget"]
    outcome: OutcomeWord
    detail: str = Field(description="The numbers that decided it, in words.")
    value: float | None
    on_fail: Literal["rollback", "pause"]
    numbers: dict[str, float | None]
    analysis: AnalysisOut | None


class StatusOut(_Body):
    state: RoutingStateOut
    generation: int = Field(description="Generation of the routing state row; every change adds one.")
    updated_at: float
    step: str | None = Field(description='The current step in words, e.g. "3/7 gradual 10%".')
    next_step: str | None
    next_stage: str | None
    evidence: dict[str, float | None]
    exit: list[ConditionOut] = Field(description="The conditions to leave the current step.")
    exit_outcome: OutcomeWord | None
    watch: list[ConditionOut] = Field(description="What the guard watches on the current step.")
    unrecorded: int = Field(0, description="Changes MLflow has not fully taken yet (their record or aliases).")
    plan_changed: str | None = Field(None, description="Why the control plane's plan is not the one the rollout "
                                     "started with, and what to do; null when it is. Promotion is refused meanwhile.")


class OutcomeOut(_Body):
    """A change made (or, with `applied` false, previewed by a dry run)."""

    action: str
    applied: bool
    before: RoutingStateOut
    after: RoutingStateOut
    from_step: str
    to_step: str
    forced: bool
    gates: list[ConditionOut]
    generation: int
    mlflow_run_id: str | None
    mlflow_pending: list[str] = Field(default_factory=list, description="What MLflow could not take yet (aliases, "
                                      "record): routing changed all the same, and the change is given to MLflow later.")


class RecordedCondition(BaseModel):
    """A condition as its event recorded it: a ConditionOut, an analysis possibly without its segments and
    models when they did not fit the record (the run's evidence.json keeps them). Events recorded by older
    versions kept only the name and outcome."""

    name: str | None = None
    outcome: str | None = None
    kind: str | None = None
    detail: str | None = None
    value: float | None = None
    on_fail: str | None = None
    numbers: dict[str, float | None] | None = None
    analysis: AnalysisOut | None = None


class EventOut(BaseModel):
    """One rollout event as MLflow recorded it. Events written by older versions may lack the state."""

    time: float
    action: str | None
    from_: str | None = Field(alias="from")
    to: str | None
    from_step: str
    to_step: str
    actor: str | None
    reason: str
    forced: bool
    champion: str | None
    candidate: str | None
    regions: str = Field(description="Comma-separated.")
    percent: str
    rollout_id: str | None
    conditions: list[RecordedCondition]
    state: RoutingStateOut | None
    evidence: dict[str, float] = Field(default_factory=dict, description="The numbers the conditions were "
                                       "judged on (the run's metrics); a value that was missing is left out.")
    run_id: str


class GatesRefused(ApiError):
    """409 on promote: `gates` holds every condition judged when the conditions held the promotion."""

    gates: list[ConditionOut] | None = None


# -- statuses ---------------------------------------------------------------------------------------------
_WHY = {
    400: "The body could not be read (bytes the JSON parser cannot take at all).",
    401: "No valid operator token: send `Authorization: Bearer <token>` with a control.tokens token.",
    409: "Refused where the rollout stands (no rollout, a step that does not follow, a blank reason, a change "
         "another caller made first, an unknown model); a promotion held by its conditions lists them in `gates`.",
    422: "The body or query is invalid: JSON that does not parse, a missing, extra, mistyped or too long field, or "
         "a value out of range.",
    503: "MLflow is out of reach (retry), or the report is still being built (see Retry-After).",
}


def refusals(*statuses: int, conflict: type[ApiError] = ApiError) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these refusals, each with the error body; 401 always, with its challenge."""
    out: dict[int | str, dict[str, Any]] = {
        401: {"model": ApiError, "description": _WHY[401],
              "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}}}
    out.update({s: {"model": conflict if s == 409 else ApiError, "description": _WHY[s]} for s in statuses})
    return out


