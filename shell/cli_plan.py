"""`rollout plan ...`: a plan in words, a plan replayed over a logged rollout, an old plan converted."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
import yaml

from roomsight.console import console, err, friendly
from shell.cli_format import mlflow_behind
from shell.context import control_of, plan_of

app = typer.Typer(help="Rollout plans: the steps, what must pass to leave each, what is watched; replay one over a "
                       "logged rollout.", no_args_is_help=True)


@app.command("show")
@friendly
def show(ctx: typer.Context) -> None:
    """Print the rollout plan in words, step by step."""
    from rollout.metrics import METRICS
    from rollout.plan_identity import fingerprint
    from rollout.plan_text import describe

    plan = plan_of(ctx)
    for line in describe(plan):
        console.print(line, highlight=False)
    # What a rollout records at its start: the file a rollout started with is the one that prints the same.
    console.print(f"Fingerprint of its steps (kinds, traffic, durations; not conditions): {fingerprint(plan)}",
                  highlight=False)
    console.print("Gate metrics: " + "; ".join(f"{k}: {v}" for k, v in METRICS.items()), highlight=False)


@app.command("replay")
@friendly
def replay(
    ctx: typer.Context,
    rollout: str = typer.Option(..., "--rollout", help="The logged rollout (its id, or the id's first characters)."),
    plan: Optional[Path] = typer.Option(None, "--plan", help="The plan to try (default: the current plan)."),
) -> None:
    """Run a plan over a logged rollout (its predictions and verdicts, in time order) and print, step by step,
    when each condition would have passed or failed and what the plan would have done."""
    from rollout.plan import load_plan
    from rollout.report.build import resolve_rollout
    from rollout.replay import replay as run

    cp = control_of(ctx)
    if plan is not None:
        cp.plan = load_plan(plan)
    rid = resolve_rollout(cp, rollout)
    result = run(cp, rid)
    console.print(f"replay of rollout {rid} with plan {cp.plan.name!r} ({len(cp.plan.steps)} steps); the traffic is "
                  "judged as it was routed then, each shadow answer from when it landed", highlight=False)
    for line in result.lines:
        console.print(f"{_hms(line.time)}  {line.text}", highlight=False)
    live = ", ".join(f"{a} at {s} ({_hms(t)})" for t, a, s in result.recorded) or "none"
    console.print(f"the guard's actions live: {live}", highlight=False)
    if behind := cp.unrecorded():
        # The guard's own rollback or pause is what MLflow misses most often (it goes ahead while MLflow is
        # down): "differs" would blame the plan for an action the guard did take.
        err.print(mlflow_behind(behind))
        console.print(f"[yellow]the replay cannot be checked against them yet[/]: {behind} rollout change(s) not in "
                      "MLflow may be among them; replay again once `rollout status` counts none unrecorded")
        return
    console.print("the replay " + ("[green]reproduces them[/]" if result.matches else "[yellow]differs from them[/]"))


@app.command("convert")
@friendly
def convert(path: Path = typer.Argument(..., help="A plan file in the format before steps (stage sections and gates).")) -> None:
    """Print an old plan (shadow/limited/gradual sections, gates per stage) as a plan with steps."""
    from roomsight.errors import PlanError
    from rollout.plan_legacy import is_legacy, parse_converted, to_steps
    from roomsight.userfiles import read_yaml

    raw = read_yaml(path, "rollout plan", PlanError) or {}
    if not isinstance(raw, dict) or not is_legacy(raw):
        raise PlanError(f"{path} is not a plan in the old format (it has `steps`, or none of shadow/limited/gradual/gates)")
    converted = to_steps(raw, path)
    parse_converted(converted, path)  # the result must load
    print(f"# {path}, converted to steps by `rollout plan convert`")
    print(yaml.safe_dump(converted, sort_keys=False, default_flow_style=None), end="")


def _hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S")
