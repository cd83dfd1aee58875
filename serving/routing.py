"""Who answers this request: pure functions of the rollout state and the request, no I/O.

Assignment to the candidate is sticky per listing: a listing's bucket is a hash of the rollout id and
the listing id, uniform in [0, 100), and a listing is on the candidate while its bucket is below the
current percentage. The percentage only grows within a rollout, so the set of candidate listings only
grows: a listing once moved never flips back (monotone). A new rollout id reshuffles the buckets, so
the same listings are not always the first exposed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from roomsight.registry import ModelRef

CHAMPION = "champion"
CANDIDATE = "candidate"


class Stage(str, Enum):
    STABLE = "stable"  # no rollout: the champion answers everything
    SHADOW = "shadow"  # champion answers; candidate runs beside it on a sample, off the critical path
    LIMITED = "limited"  # candidate answers the plan's regions (a percentage within them)
    GRADUAL = "gradual"  # candidate answers a growing percentage everywhere

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class RoutingState:
    """What the Serve app needs to route; written by the control plane, read by every ingress."""

    champion: ModelRef
    stage: Stage = Stage.STABLE
    candidate: ModelRef | None = None
    rollout_id: str | None = None
    regions: tuple[str, ...] = ()
    percent: float = 0.0  # limited: share within `regions`; gradual: share of all listings
    shadow_sample: float = 1.0  # share of requests the other model also runs on
    hold_ood_on_champion: bool = False  # out-of-domain photos stay on the champion in limited/gradual
    previous_champion: ModelRef | None = None  # restored by a rollback after `full`

    def __post_init__(self) -> None:
        if self.stage is not Stage.STABLE and (self.candidate is None or self.rollout_id is None):
            raise ValueError(f"stage {self.stage} needs a candidate and a rollout id")
        if not 0.0 <= self.percent <= 100.0:
            raise ValueError(f"percent must be in [0, 100], got {self.percent}")
        if not 0.0 <= self.shadow_sample <= 1.0:
            raise ValueError(f"shadow_sample must be in [0, 1], got {self.shadow_sample}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "champion": self.champion.to_dict(),
            "stage": self.stage.value,
            "candidate": self.candidate.to_dict() if self.candidate else None,
            "rollout_id": self.rollout_id,
            "regions": list(self.regions),
            "percent": self.percent,
            "shadow_sample": self.shadow_sample,
            "hold_ood_on_champion": self.hold_ood_on_champion,
            "previous_champion": self.previous_champion.to_dict() if self.previous_champion else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoutingState:
        return cls(
            champion=ModelRef.from_dict(d["champion"]),
            stage=Stage(d.get("stage", "stable")),
            candidate=ModelRef.from_dict(d["candidate"]) if d.get("candidate") else None,
            rollout_id=d.get("rollout_id"),
            regions=tuple(d.get("regions") or ()),
            percent=float(d.get("percent", 0.0)),
            shadow_sample=float(d.get("shadow_sample", 1.0)),
            hold_ood_on_champion=bool(d.get("hold_ood_on_champion", False)),
            previous_champion=ModelRef.from_dict(d["previous_champion"]) if d.get("previous_champion") else None,
        )

    def evolve(self, **changes: Any) -> RoutingState:
        return replace(self, **changes)


@dataclass(frozen=True)
class Decision:
    served_by: str  # champion | candidate
    shadow: str | None  # the model that also runs, off the critical path, or None
    reason: str  # why, for the log and the metrics
    held_flags: tuple[str, ...] = field(default=())  # OOD flags that kept this request on the champion


def bucket(listing_id: str, rollout_id: str) -> float:
    """A listing's position in [0, 100) for this rollout: uniform, stable, independent per rollout."""
    digest = hashlib.sha256(f"{rollout_id}\x00{listing_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


def on_candidate(state: RoutingState, listing_id: str, region: str) -> bool:
    """Would the candidate answer this listing, ignoring out-of-domain holds?"""
    if state.stage in (Stage.STABLE, Stage.SHADOW) or state.rollout_id is None:
        return False
    in_slice = bucket(listing_id, state.rollout_id) < state.percent
    if state.stage is Stage.LIMITED:
        return region in state.regions and in_slice
    # Gradual keeps the limited regions on the candidate, so moving limited -> gradual never takes a
    # listing back: the candidate's population only grows.
    return region in state.regions or in_slice


def choose(state: RoutingState, listing_id: str, region: str, ood_flags: tuple[str, ...] = (),
           u: float = 0.0) -> Decision:
    """Route one request. `u` is a uniform draw in [0, 1) that decides shadow sampling; passing it in
    keeps this function pure and testable."""
    sampled = state.candidate is not None and u < state.shadow_sample
    if state.stage is Stage.STABLE or state.candidate is None:
        return Decision(CHAMPION, None, "stable")
    if state.stage is Stage.SHADOW:
        return Decision(CHAMPION, CANDIDATE if sampled else None, "shadow")
    if on_candidate(state, listing_id, region):
        if ood_flags and state.hold_ood_on_champion:
            # Never first expose the candidate to inputs nobody has checked it on; run it in shadow
            # so the disagreement lands in the review queue.
            return Decision(CHAMPION, CANDIDATE, "ood-held", tuple(ood_flags))
        return Decision(CANDIDATE, CHAMPION if sampled else None, "slice")
    return Decision(CHAMPION, CANDIDATE if sampled else None, "outside-slice")


def call_priority(state: RoutingState, role: str, shadow_priority: str = "idle") -> str:
    """The CPU priority a model call runs at (see serving.priority): the candidate runs at
    `shadow_priority` while it only shadows, so it cannot take cycles from the champion; whoever answers
    traffic runs at normal priority."""
    return shadow_priority if role == CANDIDATE and state.stage is Stage.SHADOW else "normal"
