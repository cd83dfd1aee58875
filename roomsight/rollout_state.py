"""The routing-state contract: what the control plane writes and every ingress, the guard and monitoring
read. One row per database (id = 1), written with compare-and-swap, so of two concurrent changes exactly
one wins.

`Stage` is the one stage vocabulary: a plan's step kinds, the state's stage, the CLI and API words and the
records all use it. The state names the plan step the rollout is on (`step`, Argo Rollouts' currentStepIndex)
and carries the traffic that step set, so routing needs no plan: the candidate answers `region_percent`% of
listings in `regions` and `percent`% of all listings; a pause step keeps the traffic it found. The index
means a step of the plan the rollout started with, whose fingerprint the state keeps (rollout.stages.off_plan
compares it with the plan at hand).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from roomsight.errors import StateConflict
from roomsight.registry import ModelRef
from roomsight.tables import rollout_outbox, rollout_state

_ROW = 1


class Stage(str, Enum):
    STABLE = "stable"  # no rollout: the champion answers everything
    SHADOW = "shadow"  # the champion answers; the candidate runs beside it on a sample, off the critical path
    LIMITED = "limited"  # the candidate answers a share of listings in some regions
    GRADUAL = "gradual"  # the candidate answers a growing share of all listings
    PAUSE = "pause"  # traffic held as the previous step left it, for a time or until promoted
    FULL = "full"  # the rollout completed: the candidate became the champion

    def __str__(self) -> str:
        return self.value


IN_PROGRESS = (Stage.SHADOW, Stage.LIMITED, Stage.GRADUAL, Stage.PAUSE)


@dataclass(frozen=True)
class RoutingState:
    """What the Serve app needs to route, and where the rollout stands in its plan."""

    champion: ModelRef
    stage: Stage = Stage.STABLE
    candidate: ModelRef | None = None
    rollout_id: str | None = None
    step: int | None = None  # index of the current plan step; None outside a rollout
    since: float | None = None  # when the current step began (unix seconds)
    regions: tuple[str, ...] = ()  # regions where the candidate answers region_percent% of listings
    region_percent: float = 0.0
    percent: float = 0.0  # share of all listings the candidate answers, everywhere
    shadow_sample: float = 1.0  # share of requests the other model also runs on
    hold_ood_on_champion: bool = False  # out-of-domain photos stay on the champion while the candidate answers
    held: str | None = None  # why the guard holds the rollout where it is (no automatic advance), if it does
    previous_champion: ModelRef | None = None  # restored by a rollback after `full`
    # rollout.plan_identity's hash of the path of the plan the rollout started with: `step` indexes that plan,
    # and no other. None outside a rollout, and in rows written before it was kept.
    plan_fingerprint: str | None = None

    def __post_init__(self) -> None:
        if self.stage in IN_PROGRESS and (self.candidate is None or self.rollout_id is None):
            raise ValueError(f"stage {self.stage} needs a candidate and a rollout id")
        for name in ("percent", "region_percent"):
            if not 0.0 <= getattr(self, name) <= 100.0:
                raise ValueError(f"{name} must be in [0, 100], got {getattr(self, name)}")
        if not 0.0 <= self.shadow_sample <= 1.0:
            raise ValueError(f"shadow_sample must be in [0, 1], got {self.shadow_sample}")

    @property
    def in_progress(self) -> bool:
        return self.stage in IN_PROGRESS

    @property
    def rollout_in_progress(self) -> str | None:
        """The id of the rollout in progress; None when none is (a completed rollout keeps its id at `full`)."""
        return self.rollout_id if self.in_progress else None

    @property
    def answers_traffic(self) -> bool:
        """Whether the candidate answers any user's request (not only shadows)."""
        return self.candidate is not None and ((bool(self.regions) and self.region_percent > 0) or self.percent > 0)

    def candidate_share(self, region: str) -> float:
        """The share of a region's listings the candidate answers, in [0, 1] (before out-of-domain holds)."""
        if self.candidate is None:
            return 0.0
        within = self.region_percent if region in self.regions else 0.0
        # Listings below either cut are the candidate's; the cuts share one bucket order, so the larger wins.
        return max(within, self.percent) / 100.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion.to_dict(),
            "stage": self.stage.value,
            "candidate": self.candidate.to_dict() if self.candidate else None,
            "rollout_id": self.rollout_id,
            "step": self.step,
            "since": self.since,
            "regions": list(self.regions),
            "region_percent": self.region_percent,
            "percent": self.percent,
            "shadow_sample": self.shadow_sample,
            "hold_ood_on_champion": self.hold_ood_on_champion,
            "held": self.held,
            "previous_champion": self.previous_champion.to_dict() if self.previous_champion else None,
            "plan_fingerprint": self.plan_fingerprint,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoutingState:
        stage = Stage(d.get("stage", "stable"))
        regions = tuple(d.get("regions") or ())
        percent = float(d.get("percent", 0.0))
        if "region_percent" in d:
            region_percent = float(d["region_percent"])
        elif stage is Stage.LIMITED:  # a row written before plan steps: limited's percent was within its regions
            region_percent, percent = percent, 0.0
        else:  # ... and gradual kept the limited regions whole
            region_percent = 100.0 if regions else 0.0
        return cls(
            champion=ModelRef.from_dict(d["champion"]),
            stage=stage,
            candidate=ModelRef.from_dict(d["candidate"]) if d.get("candidate") else None,
            rollout_id=d.get("rollout_id"),
            step=d.get("step"),
            since=d.get("since"),
            regions=regions,
            region_percent=region_percent,
            percent=percent,
            shadow_sample=float(d.get("shadow_sample", 1.0)),
            hold_ood_on_champion=bool(d.get("hold_ood_on_champion", False)),
            held=d.get("held"),
            previous_champion=ModelRef.from_dict(d["previous_champion"]) if d.get("previous_champion") else None,
            plan_fingerprint=d.get("plan_fingerprint"),
        )

    def evolve(self, **changes: Any) -> RoutingState:
        return replace(self, **changes)


@dataclass(frozen=True)
class Versioned:
    generation: int
    state: RoutingState
    updated_at: float


def read_state(engine: Engine) -> Versioned | None:
    with engine.connect() as conn:
        row = conn.execute(select(rollout_state).where(rollout_state.c.id == _ROW)).first()
    if row is None:
        return None
    return Versioned(row.generation, RoutingState.from_dict(row.state), row.updated_at)


def write_state(engine: Engine, state: RoutingState, expected_generation: int | None,
                outbox: dict[str, Any] | None = None) -> Versioned:
    """Write `state` if the stored generation is still `expected_generation` (None: no row yet); with
    `outbox`, insert that row of `rollout_outbox` in the same transaction: both or neither."""
    now = time.time()
    with engine.begin() as conn:
        if outbox is not None:
            conn.execute(insert(rollout_outbox).values(**outbox))
        if expected_generation is None:
            try:
                conn.execute(insert(rollout_state).values(id=_ROW, generation=1, state=state.to_dict(), updated_at=now))
            except IntegrityError:
                raise StateConflict("the rollout state was created concurrently; read it again") from None
            return Versioned(1, state, now)
        result = conn.execute(
            update(rollout_state)
            .where(rollout_state.c.id == _ROW, rollout_state.c.generation == expected_generation)
            .values(generation=expected_generation + 1, state=state.to_dict(), updated_at=now)
        )
        if result.rowcount != 1:
            raise StateConflict("the rollout state changed since it was read (another command won); nothing was written")
    return Versioned(expected_generation + 1, state, now)
