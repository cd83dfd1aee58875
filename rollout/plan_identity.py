"""A plan's fingerprint: a stable hash of the path its steps make, which `rollout start` records in the routing
state. The state names the step it is on by index; a plan edited mid-rollout that keeps the kind of step at
that index (a limited step taken out before gradual 10%, leaving gradual 25% there) would otherwise have the
rollout silently on another step, with other steps after it, and its next promotion skipping traffic it
never took. As Argo Rollouts makes a changed spec a new revision, a changed path here is another plan: the
rollout goes on only under the plan it started with, or is rolled back.

What the path is, and so what is hashed, step by step in order:
- the kind;
- the traffic the step sets: shadow's sample, limited's regions (as a set: their order routes nothing
  differently) and percent, gradual's percent;
- when the guard may move on by itself: a pause's duration and `auto_advance.after`. Shortened, they
  promote sooner than the rollout was approved for; lengthened, a rollout moves later than the plan it runs
  on says, and neither is visible in the state.

What is left out, on purpose: the conditions (`exit`, `watch`, `on_fail`, the plan-wide `watch`, `budget`,
`analyses`). They judge the evidence on the path and move no traffic; tightening a gate or watching a new
alarm mid-rollout is a reasonable answer to what the rollout shows, and every promotion records the
conditions it was judged on, a loosened one included. The plan's name, its `regions` (what a promotion may
name, checked at each promotion) and `hold_ood_on_champion` (copied into the state at start) are left out
for the same reason: none of them changes which step comes next or what traffic it sets.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from roomsight.rollout_state import Stage
from rollout.plan import Plan, Step

# Names the canonical form below. A fingerprint of another scheme (written by a version that hashed
# something else) cannot be compared with one of this scheme: it is read as no fingerprint at all.
SCHEME = "p1"
_HEX = 16  # enough to tell edits apart; a fingerprint is no secret and guards against accident, not malice


def path_of(plan: Plan) -> list[dict[str, Any]]:
    """The canonical form of what defines a plan's path, one mapping per step, in order."""
    return [_step_path(step) for step in plan.steps]


def _step_path(step: Step) -> dict[str, Any]:
    kind = step.kind
    out: dict[str, Any] = {"kind": kind.value,
                           "auto_advance_after": float(step.auto_advance.after) if step.auto_advance else None}
    if kind is Stage.SHADOW:
        out["sample"] = float(step.shadow.sample)
    elif kind is Stage.LIMITED:
        out["regions"] = sorted(step.limited.regions)
        out["percent"] = float(step.limited.percent)
    elif kind is Stage.GRADUAL:
        out["percent"] = float(step.gradual.percent)
    elif kind is Stage.PAUSE:
        out["duration"] = None if step.pause.duration is None else float(step.pause.duration)
    return out


def fingerprint(plan: Plan) -> str:
    """'p1:3f2a…': the scheme and a hash of `path_of(plan)`, the same for the same path whatever the file's
    layout, key order, comments or conditions."""
    text = json.dumps(path_of(plan), sort_keys=True, separators=(",", ":"))
    return f"{SCHEME}:{hashlib.sha256(text.encode()).hexdigest()[:_HEX]}"


def comparable(recorded: str | None) -> bool:
    """Whether a recorded fingerprint can be compared with today's: there is one, of this scheme. A state
    written before fingerprints (or by another scheme) is compared by the kind of its step only."""
    return recorded is not None and recorded.startswith(f"{SCHEME}:")
