"""Who answers this request: pure functions of the rollout state and the request, no I/O.

Assignment to the candidate is sticky per listing: a listing's bucket is a hash of the rollout id and
the listing id, uniform in [0, 100), and a listing is on the candidate while its bucket is below the
current percentage. The percentage only grows within a rollout, so the set of candidate listings only
grows: a listing once moved never flips back (monotone). A new rollout id reshuffles the buckets, so
the same listings are not always the first exposed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from roomsight.rollout_state import RoutingState

CHAMPION = "champion"
CANDIDATE = "candidate"


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
    """Would the candidate answer this listing, ignoring out-of-domain holds? The state's traffic decides,
    whatever the step: its limited regions (a share within them) and its share of all listings."""
    if not state.answers_traffic or state.rollout_id is None:
        return False
    b = bucket(listing_id, state.rollout_id)
    return (region in state.regions and b < state.region_percent) or b < state.percent


def choose(state: RoutingState, listing_id: str, region: str, ood_flags: tuple[str, ...] = (),
           u: float = 0.0) -> Decision:
    """Route one request. `u` is a uniform draw in [0, 1) that decides shadow sampling; passing it in
    keeps this function pure and testable."""
    sampled = state.candidate is not None and u < state.shadow_sample
    if state.candidate is None:
        return Decision(CHAMPION, None, "stable")
    if not state.answers_traffic:
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
    return shadow_priority if role == CANDIDATE and not state.answers_traffic else "normal"
