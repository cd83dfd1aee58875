"""Plans for tests: the shipped plan with its conditions taken out, so a test feeds only the evidence it is about."""

from __future__ import annotations

from rollout.plan import Plan, load_plan


def open_plan(**changes: object) -> Plan:
    """The default plan's steps and regions, with no exit or watched conditions (the budget stays)."""
    return load_plan().unconditional(**changes)


def with_exit(plan: Plan, index: int, conditions: tuple) -> Plan:
    """`plan` with the exit conditions of step `index` replaced."""
    steps = list(plan.steps)
    steps[index] = steps[index].model_copy(update={"exit": conditions})
    return plan.model_copy(update={"steps": tuple(steps)})
