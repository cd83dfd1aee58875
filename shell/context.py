"""The control plane as the command line builds it: the settings and `--actor` from the root command's
typed context (roomsight.cli_context), the plan from `--plan` or the settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from roomsight.cli_context import of

if TYPE_CHECKING:
    from rollout.control import ControlPlane
    from rollout.plan import Plan


def plan_of(ctx: typer.Context) -> Plan:
    from roomsight.errors import PlanError
    from rollout.plan import load_plan

    c = of(ctx)
    if c.plan_path is not None:
        return load_plan(c.plan_path)
    try:
        return load_plan(c.settings.plan)
    except PlanError as exc:
        if c.settings.plan is None:
            raise
        # A file no option named: "rollout plan not found: PATH" left the user to guess which setting gave it.
        raise PlanError(f"{exc} (from the `plan` setting: env ROOMSIGHT_PLAN or the config file; --plan overrides it)",
                        exc.key, exc.step) from None


def control_of(ctx: typer.Context) -> ControlPlane:
    from rollout.control import ControlPlane

    return ControlPlane(of(ctx).settings, plan_of(ctx), actor=of(ctx).actor)
