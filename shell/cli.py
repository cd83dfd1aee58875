"""The `rollout` command line: one Typer app composing the commands each area contributes (training,
monitoring, the review queue, plans, `cli_run`'s serve/api/report/demo) and owning the control plane's
(start, promote, rollback, status, history). The settings reach every command through the typed context
(roomsight.cli_context).

Heavy imports (torch, Ray, MLflow) happen inside the commands, so `rollout --help` is instant.
"""

from __future__ import annotations

import inspect
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.text import Text
from typer.core import TyperGroup

from roomsight.cli_context import CliContext, of
from roomsight.console import console, err, friendly
from roomsight.errors import UserError
from shell.cli_format import describe_state, history_table, mlflow_behind, pct, print_conditions
from shell.context import control_of


class _RootGroup(TyperGroup):
    """The root command. Each command's line in a group's listing is its help's first paragraph, on one line:
    Typer kept the docstring's line breaks there, so the line broke mid-sentence."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        _one_line_listing(self)


def _one_line_listing(group: object) -> None:
    for cmd in getattr(group, "commands", {}).values():
        if cmd.short_help is None and cmd.help:
            cmd.short_help = " ".join(inspect.cleandoc(cmd.help).split("\n\n")[0].split())
        _one_line_listing(cmd)


app = typer.Typer(
    name="rollout",
    cls=_RootGroup,
    help="roomsight: train room-type photo classifiers and roll new versions out in stages "
         "(shadow -> limited -> gradual -> full) on Ray Serve, recorded in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each area contributes its own commands; this module only composes them (and owns the control plane's).
from monitoring.cli import app as monitoring_app  # noqa: E402 - composed after the root app exists
from monitoring.review.cli import app as review_app  # noqa: E402
from shell.cli_plan import app as plan_app  # noqa: E402
from shell.cli_run import app as run_app  # noqa: E402
from training.cli import app as training_app  # noqa: E402

app.add_typer(run_app)  # serve, api, report, demo
app.add_typer(training_app)  # train, labels, evaluate, embed
app.add_typer(monitoring_app)  # inspect, drift
app.add_typer(review_app, name="review")
app.add_typer(plan_app, name="plan")


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", envvar="ROOMSIGHT_CONFIG",
                                          help="YAML settings file (default: $ROOMSIGHT_HOME/config.yaml if present)."),
    plan: Optional[Path] = typer.Option(None, "--plan", help="Rollout plan YAML (default: the `plan` setting, else the shipped plan)."),
    actor: Optional[str] = typer.Option(None, "--actor", help="Who is acting, recorded with every change (default: the OS user)."),
) -> None:
    if actor is not None and not actor.strip():
        # An empty one fell back to the OS user unsaid, and one of spaces was recorded as who acted.
        raise typer.BadParameter("blank; name who is acting, or leave it out for the OS user", param_hint="--actor")
    ctx.obj = CliContext(config, plan, actor.strip() if actor else None)


# -- control plane ----------------------------------------------------------------------------------
@app.command()
@friendly
def start(
    ctx: typer.Context,
    candidate: str = typer.Option(..., "--candidate", help="Version to roll out: a number (2) of the model_name "
                                  "model, or a model URI, e.g. models:/roomtype/2 or models:/roomtype@challenger."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why, for the record."),
) -> None:
    """Start a rollout: the candidate runs in shadow beside the champion; the champion still answers."""
    cp = control_of(ctx)
    # A bare number as `drift report --model` takes it: a version of the one model the plane rolls out.
    uri = f"models:/{cp.settings.model_name}/{candidate.strip()}" if candidate.strip().isdigit() else candidate
    out = cp.start(uri, reason)
    console.print(f"rollout {out.after.rollout_id}: {describe_state(out.after, out.to_step)}")
    _warn_behind(out.mlflow_pending)


GENERATION_HELP = ("Change the rollout only if it is still at this generation, as `rollout status` showed it; refused if "
                   "anyone (the guard too) changed it since.")


@app.command()
@friendly
def promote(
    ctx: typer.Context,
    stage: Optional[str] = typer.Option(None, "--stage", help="Go to the first later step of this kind (shadow, limited, "
                                        "gradual, pause, full) instead of the next step; the steps skipped must pass too."),
    regions: Optional[str] = typer.Option(None, "--regions", help="Comma-separated regions for a limited step (default: the plan's)."),
    percent: Optional[float] = typer.Option(None, "--percent", help="Share of listings: within the regions (limited) or "
                                            "overall (gradual); default: the step's."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would happen, with every condition's numbers; change nothing."),
    force: bool = typer.Option(False, "--force", help="Promote even if conditions do not pass (needs --reason)."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why, for the record."),
    generation: Optional[int] = typer.Option(None, "--generation", min=1, help=GENERATION_HELP),
) -> None:
    """Move the rollout to its plan's next step, if the conditions to leave the current step pass."""
    from roomsight.errors import GatesFailed

    region_list = tuple(r.strip() for r in regions.split(",") if r.strip()) if regions is not None else None
    if region_list == ():
        # Read as absent, an empty list (an unset shell variable) promoted to the plan's regions, unasked.
        raise UserError(f"--regions {regions!r} names no region; give them comma-separated, e.g. eu-west,us-east")
    cp = control_of(ctx)
    try:
        out = cp.promote(stage, region_list, percent, force=force, reason=reason, dry_run=dry_run, generation=generation)
    except GatesFailed as exc:
        print_conditions(console, exc.results)
        err.print(f"[bold red]refused:[/] promotion to step {exc.target} did not pass its conditions "
                  "(override: --force --reason ...)")
        raise typer.Exit(1) from None
    print_conditions(console, out.gates)
    if not out.applied:
        if out.forced:
            said = f"would promote to step {out.to_step}, forced past conditions that did not pass"
        elif all(g.passed for g in out.gates):
            said = f"would promote to step {out.to_step}"
        else:
            said = f"would refuse to step {out.to_step} (--force would override)"
        console.print(f"dry run: {said}; nothing was changed")
        console.print(f"then: {describe_state(out.after, out.to_step)}")
        return
    if out.forced:
        console.print("[yellow]forced past conditions that did not pass[/]")
    console.print(f"now: {describe_state(out.after, out.to_step)}")
    _warn_behind(out.mlflow_pending)


@app.command()
@friendly
def rollback(
    ctx: typer.Context,
    reason: str = typer.Option(..., "--reason", help="Why, for the record."),
    generation: Optional[int] = typer.Option(None, "--generation", min=1, help=GENERATION_HELP),
) -> None:
    """Take the candidate off all traffic (or, after full, restore the previous champion)."""
    out = control_of(ctx).rollback(reason, generation=generation)
    console.print(f"rolled back; now: {describe_state(out.after)}")
    _warn_behind(out.mlflow_pending)


def _warn_behind(pending: tuple[str, ...] | int) -> None:
    if (said := mlflow_behind(pending)) is not None:
        err.print(said)


@app.command()
@friendly
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Where the rollout stands: its step, both versions, the split, the evidence, what the guard watches and
    what must pass to leave the step."""
    st = control_of(ctx).status()
    if as_json:
        print(json.dumps(st.to_dict(), indent=1))
        return
    console.print(f"{describe_state(st.state, st.step)} (generation {st.generation})")
    if st.plan_changed:
        console.print(f"[red]the plan is not the one the rollout started with[/]: {st.plan_changed}", highlight=False)
    _warn_behind(st.unrecorded)
    ev = st.evidence
    if st.state.rollout_id and st.state.in_progress:
        console.print(f"rollout {st.state.rollout_id}: {ev.get('requests', 0) or 0:.0f} requests logged, "
                      f"{ev.get('compared', 0) or 0:.0f} compared, agreement {pct(ev.get('agreement'))}, "
                      f"candidate served {ev.get('candidate_served', 0) or 0:.0f}, error rate {pct(ev.get('candidate_error_rate'))}, "
                      f"{ev.get('reviewed', 0) or 0:.0f} reviewed")
        from monitoring.drift_checks import describe

        console.print(describe(ev, of(ctx).settings))
    if st.watch:
        console.print("watched by the guard on this step:")
        print_conditions(console, st.watch)
    if st.next_step:
        console.print(f"to leave it for step {st.next_step}:")
        print_conditions(console, st.exit)


@app.command()
@friendly
def history(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", min=1, help="Most events to show."),
    at: Optional[str] = typer.Option(None, "--at", help="A moment (ISO time, e.g. 2026-12-04T10:30, UTC unless it says; "
                                     "or an age like 2h): which version answered then, per region."),
    region: Optional[str] = typer.Option(None, "--region", help="With --at: only this region."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Rollout events as recorded in MLflow, newest first: who did what and why; --json adds the conditions
    each was checked on, with their numbers. With --at, which version answered each region at that moment."""
    cp = control_of(ctx)
    _warn_behind(cp.unrecorded())  # not in MLflow yet, so not in what follows
    if at is not None:
        _live_at(cp, _moment(at), region, as_json)
        return
    if region is not None:
        raise UserError("--region goes with --at (which version answered a region at a moment)")
    events = cp.history(limit)
    if as_json:
        print(json.dumps(events, indent=1))
        return
    if not events:
        console.print("no rollout events recorded yet; `rollout start --candidate URI` begins a rollout")
        return
    rows = [(_utc(e["time"]), e["action"] or "", e["from_step"] or e["from"] or "", e["to_step"] or e["to"] or "",
             e["actor"] or "", _version(e["champion"]), _version(e["candidate"])) for e in events]
    reasons = [Text.assemble(("[forced] ", "yellow") if e["forced"] else "", e["reason"] or "") for e in events]
    console.print(history_table(rows, reasons, console.width))


def _version(uri: str | None) -> str:
    """models:/roomtype/2 as v2 (the name is the one registered model's); anything else as it is."""
    name, _, version = (uri or "").removeprefix("models:/").rpartition("/")
    return f"v{version}" if uri and uri.startswith("models:/") and name and version.isdigit() else uri or ""


def _live_at(cp, when: float, region: str | None, as_json: bool) -> None:  # noqa: ANN001 - ControlPlane
    from rollout.records import live_at

    regions = (region,) if region else cp.plan.regions
    if region:
        cp.plan.check_regions(regions)
    found = cp.history(1, at=when)
    event = found[0] if found else None
    answers = {r: live_at(event, r) for r in regions}
    if as_json:
        print(json.dumps({"at": when, "event": event, "regions": {r: (vars(a) if a else None) for r, a in answers.items()}},
                         indent=1, default=str))
        return
    if event is None:
        raise UserError(f"no rollout event was recorded at or before {_utc(when)}: nothing says what was live then")
    console.print(f"at {_utc(when)} (as set by {event['action']} at {_utc(event['time'])}, by {event['actor']}):")
    for r, a in answers.items():
        console.print(f"  {a.describe(r)}")  # type: ignore[union-attr]


def _moment(text: str) -> float:
    """An ISO time (UTC unless it names a zone) or an age ('2h': two hours ago) as unix seconds."""
    from roomsight.durations import parse_duration
    from roomsight.errors import DurationError

    try:
        return time.time() - parse_duration(text)
    except DurationError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--at {text!r}: not an ISO time (2026-12-04T10:30) or an age (90m, 2h)") from None
    when = (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()
    if when > time.time():
        # It answered with what is live now, in the past tense ("v1 answered every listing") for a time to come.
        raise UserError(f"--at {text!r} is in the future ({_utc(when)} UTC); give a past moment")
    return when


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def main() -> None:
    app()


if __name__ == "__main__":  # `python -m shell.cli`: the same command line from a checkout, without the installed script
    main()
