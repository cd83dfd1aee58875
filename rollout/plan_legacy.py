"""Plans written before steps: top-level `shadow`, `limited`, `gradual: {steps: [...]}` sections and
`gates` keyed by the stage they guard the entry to. They still load: each is read as the list of steps
it meant, where a stage's entry gates become the exit conditions of the step before it.
`rollout plan convert FILE` prints the result as a plan with steps, to replace the old file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LEGACY_KEYS = frozenset({"shadow", "limited", "gradual", "gates"})


def is_legacy(raw: dict[str, Any]) -> bool:
    return "steps" not in raw and bool(LEGACY_KEYS & set(raw))


def to_steps(raw: dict[str, Any], path: Path | str = "plan") -> dict[str, Any]:
    """The same plan with `steps`. Promoting to gradual used to check `gates.gradual` at every gradual
    step, and to full `gates.full`; so `gates.gradual` guards leaving limited and each gradual step but the
    last, and `gates.full` leaving the last gradual step."""
    from roomsight.errors import PlanError

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
    _check_gates(gates, path, compares=not (isinstance(shadow, dict) and shadow.get("sample", 1.0) == 0))
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


def _check_gates(gates: dict[str, Any], path: Path | str, compares: bool) -> None:
    """Each old gate as a condition, named by its own key: checked once converted, a mistake was named by the
    steps it became ("steps.1.exit.0; steps.2.exit.0"), keys the old file does not have. `compares`: whether
    the old `shadow` section compares the models on a sample (every gate comes after it)."""
    from pydantic import TypeAdapter, ValidationError

    from roomsight.errors import PlanError
    from rollout.plan import Condition, problem
    from rollout.plan_order import unjudgeable

    adapter: TypeAdapter[Any] = TypeAdapter(Condition)
    for stage, listed in gates.items():
        for j, gate in enumerate(listed or []):
            try:
                cond = adapter.validate_python(gate)
            except ValidationError as exc:
                first = exc.errors()[0]
                named = problem({**first, "loc": ("gates", stage, j, *first["loc"])})
                raise PlanError(f"rollout plan {path} is invalid: {named}", named.key) from None
            # gates.limited is the shadow step's exit (to_steps): the candidate answers users after it.
            why = "the plan's `shadow: {sample: 0}` compares none; raise the sample, or drop the gate"
            if (found := unjudgeable(cond, compares, stage != "limited", why)) is not None:
                key = f"gates.{stage}.{j}"
                raise PlanError(f"rollout plan {path} is invalid: {key}: {found[0]}", f"{key}.{found[1]}")
