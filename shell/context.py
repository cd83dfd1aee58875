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
    from rollout.plan import load_plan

    c = of(ctx)
    return load_plan(c.plan_path or c.settings.plan)


def control_of(ctx: typer.Context) -> ControlPlane:
    from rollout.control import ControlPlane

    return ControlPlane(of(ctx).settings, plan_of(ctx), actor=of(ctx).actor)
