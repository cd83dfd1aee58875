"""Plans written before steps: top-level `shadow`, `limited`, `gradual: {steps: [...]}` sections and
`gates` keyed by the stage they guard the entry to. They still load: each is read as the list of steps
it meant, where a stage's entry gates become the exit conditions of the step before it, and is checked as
such, a problem with a gate named by its key in the old file. `rollout plan convert FILE` prints the result
as a plan with steps, to replace the old file."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Any

from roomsight.errors import PlanError
from rollout.plan import Plan, parse_plan
from rollout.plan_order import NO_SAMPLE

LEGACY_KEYS = frozenset({"shadow", "limited", "gradual", "gates"})
# A problem with a converted step's exit condition: its key, and its place as its message begins, for
# people ("steps.2 (gradual).exit.0: ...") or as a key ("steps.2.exit.0.metric: ...").
_EXIT_KEY = re.compile(r"steps\.(\d+)\.exit\.(\d+)")
_EXIT_WHERE = re.compile(r"^steps\.\d+(?: \(\w+\))?\.exit\.\d+")
# An old file has no shadow step to add, only its section whose sample is 0 (every gate comes after it).
_OLD_NO_SAMPLE = "the plan's `shadow: {sample: 0}` compares none; raise the sample, or drop the gate"


def is_legacy(raw: dict[str, Any]) -> bool:
    return "steps" not in raw and bool(LEGACY_KEYS & set(raw))


def to_steps(raw: dict[str, Any], path: Path | str = "plan") -> dict[str, Any]:
    """The same plan with `steps`. Promoting to gradual used to check `gates.gradual` at every gradual
    step, and to full `gates.full`; so `gates.gradual` guards leaving limited and each gradual step but the
    last, and `gates.full` leaving the last gradual step."""
    out = {k: v for k, v in raw.items() if k not in LEGACY_KEYS}
    gates = raw.get("gates") or {}
    if not isinstance(gates, dict) or set(gates) - {"limited", "gradual", "full"}:
        raise PlanError(f"rollout plan {path}: `gates` must map limited, gradual and full to lists of gates")
    for stage, listed in gates.items():
        # list() of a mapping or a text would make gates of its keys or letters.
        if listed is not None and not isinstance(listed, list):
            raise PlanError(f"rollout plan {path}: `gates.{stage}` must be a list of gates, e.g. "
                            "[{metric: compared, min: 30}]", f"gates.{stage}")
    shadow = raw.get("shadow") or {}
    limited = raw.get("limited") or {}
    section = raw.get("gradual") or {}
    if isinstance(section, dict) and set(section) - {"steps"}:
        raise PlanError(f"rollout plan {path}: `gradual` holds only `steps`; got "
                        f"{', '.join(map(repr, sorted(set(section) - {'steps'})))}", "gradual")
    gradual = section.get("steps", [10, 25, 50, 100]) if isinstance(section, dict) else None
    if not isinstance(gradual, list) or not gradual:
        raise PlanError(f"rollout plan {path}: `gradual` must be a mapping whose `steps` is a list of percentages")
    steps: list[dict[str, Any]] = [{"shadow": shadow, "exit": list(gates.get("limited") or [])},
                                   {"limited": limited, "exit": list(gates.get("gradual") or [])}]
    for i, pct in enumerate(gradual):
        last = i == len(gradual) - 1
        steps.append({"gradual": {"percent": pct}, "exit": list(gates.get("full" if last else "gradual") or [])})
    steps.append({"full": {}})
    out["steps"] = steps
    return out


def parse_converted(converted: dict[str, Any], path: Path | str) -> Plan:
    """`converted`, what `to_steps` made of the old file at `path`, as a Plan. Checked as steps, a gate's
    mistake was named by the steps it became ("steps.1.exit.0; steps.2.exit.0"), keys the old file does not
    have: each is named by the gate's own key instead."""
    # A step's exit guards the entry to the step after it, and the old file keyed it by that step's kind.
    entered = [next(iter(step)) for step in converted["steps"][1:]]
    return parse_plan(converted, str(path), partial(_by_old_key, entered))


def _by_old_key(entered: list[str], error: PlanError) -> PlanError:
    key = error.key or ""
    if (found := _EXIT_KEY.match(key)) is None:
        return error
    gate = f"gates.{entered[int(found[1])]}.{found[2]}"
    message = _EXIT_WHERE.sub(gate, str(error)).replace(NO_SAMPLE, _OLD_NO_SAMPLE)
    return PlanError(message, gate + key[found.end():])
