"""The `rollout` command line: training, serving and the control plane behind one Typer app.

Heavy imports (torch, Ray, MLflow) happen inside the commands, so `rollout --help` is instant.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from roomsight.config import Settings, load_settings
from roomsight.console import console, err, friendly

app = typer.Typer(
    name="rollout",
    help="roomsight: train room-type photo classifiers and roll new versions out in stages "
         "(shadow -> limited -> gradual -> full) on Ray Serve, recorded in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
plan_app = typer.Typer(help="Rollout plans: what each stage does and which evidence it needs.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")

# Each area contributes its own commands; this module only composes them (and owns the control plane's).
from monitoring.cli import app as monitoring_app  # noqa: E402 - composed after the root app exists
from monitoring.review.cli import app as review_app  # noqa: E402
from training.cli import app as training_app  # noqa: E402

app.add_typer(training_app)  # train, labels, evaluate, embed
app.add_typer(monitoring_app)  # inspect, drift
app.add_typer(review_app, name="review")


class Ctx:
    def __init__(self, config: Path | None, plan: Path | None, actor: str | None) -> None:
        self.config_path, self.plan_path, self.actor = config, plan, actor
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    def plan(self):  # noqa: ANN201 - rollout.plan.Plan
        from rollout.plan import load_plan

        return load_plan(self.plan_path or self.settings.plan)

    def control(self):  # noqa: ANN201 - rollout.control.ControlPlane
        from rollout.control import ControlPlane

        return ControlPlane(self.settings, self.plan(), actor=self.actor)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", "-c", envvar="ROOMSIGHT_CONFIG",
                                          help="YAML settings file (default: $ROOMSIGHT_HOME/config.yaml if present)."),
    plan: Optional[Path] = typer.Option(None, "--plan", help="Rollout plan YAML (default: the `plan` setting, else the shipped plan)."),
    actor: Optional[str] = typer.Option(None, "--actor", help="Who is acting, recorded with every change (default: the OS user)."),
) -> None:
    ctx.obj = Ctx(config, plan, actor)


# -- serving ----------------------------------------------------------------------------------------
@app.command()
@friendly
def serve(
    ctx: typer.Context,
    port: Optional[int] = typer.Option(None, "--port", help="HTTP port (default: serve.port, 8000)."),
    host: Optional[str] = typer.Option(None, "--host", help="Bind address (default: serve.host, 127.0.0.1)."),
) -> None:
    """Start the Ray Serve app: POST /predict answers with the champion, the candidate per the rollout stage."""
    from serving.runner import start_serve

    from monitoring.drift_checks import DriftChecker
    from rollout.guard import GUARD_ACTOR, Guard

    settings = _with_address(ctx.obj.settings, "serve", host, port)
    control = ctx.obj.control()
    state = control.current().state
    console.print(f"champion {state.champion.uri}, stage {state.stage}")
    url = start_serve(settings)
    guard = Guard(control.with_actor(GUARD_ACTOR))
    guard.start()
    checker = DriftChecker(settings, control.engine, lambda: control.current().state.rollout_id)
    checker.start()
    console.print(f"serving on {url}  (POST /predict, POST /predict/batch, GET /healthz, GET /metrics); "
                  "the budget guard is watching the candidate, drift is checked every "
                  f"{settings.monitoring.drift_check_every_s:g} s; Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        guard.stop()
        checker.stop()
        console.print("stopping")


# -- control plane ----------------------------------------------------------------------------------
@app.command()
@friendly
def start(
    ctx: typer.Context,
    candidate: str = typer.Option(..., "--candidate", help="Model URI to roll out, e.g. models:/roomtype/2."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why, for the record."),
) -> None:
    """Start a rollout: the candidate runs in shadow beside the champion; the champion still answers."""
    out = ctx.obj.control().start(candidate, reason)
    console.print(f"rollout {out.after.rollout_id}: {out.after.candidate.uri} in [bold]shadow[/] "
                  f"(sampling {out.after.shadow_sample:.0%}); champion {out.after.champion.uri}")


@app.command()
@friendly
def promote(
    ctx: typer.Context,
    stage: str = typer.Option(..., "--stage", help="limited, gradual or full."),
    regions: Optional[str] = typer.Option(None, "--regions", help="Comma-separated regions for limited (default: the plan's)."),
    percent: Optional[float] = typer.Option(None, "--percent", help="Share of listings: within the regions (limited) or "
                                            "overall (gradual; default: the plan's next step)."),
    force: bool = typer.Option(False, "--force", help="Promote even if gates fail (needs --reason)."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why, for the record."),
) -> None:
    """Move the candidate to the next stage, if the plan's gates pass on the evidence."""
    from rollout.control import GatesFailed

    region_list = tuple(r.strip() for r in regions.split(",") if r.strip()) if regions else None
    try:
        out = ctx.obj.control().promote(stage, region_list, percent, force=force, reason=reason)
    except GatesFailed as exc:
        _print_gates(exc.results)
        err.print(f"[bold red]refused:[/] promotion to {exc.target} failed its gates (override: --force --reason ...)")
        raise typer.Exit(1) from None
    _print_gates(out.gates)
    if out.forced:
        console.print("[yellow]forced past failing gates[/]")
    console.print(f"now: {_describe_state(out.after)}")


@app.command()
@friendly
def rollback(
    ctx: typer.Context,
    reason: str = typer.Option(..., "--reason", help="Why, for the record."),
) -> None:
    """Take the candidate off all traffic (or, after full, restore the previous champion)."""
    out = ctx.obj.control().rollback(reason)
    console.print(f"rolled back; now: {_describe_state(out.after)}")


@app.command()
@friendly
def status(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show the stage, both versions, the traffic split, the evidence and the next gates."""
    st = ctx.obj.control().status()
    if as_json:
        print(json.dumps({"state": st.state.to_dict(), "generation": st.generation, "evidence": st.evidence,
                          "next_stage": st.next_stage, "gates": [g.to_dict() for g in st.next_gates]}, indent=1))
        return
    console.print(_describe_state(st.state))
    ev = st.evidence
    if st.state.rollout_id:
        console.print(f"rollout {st.state.rollout_id}: {ev.get('requests', 0):.0f} requests logged, "
                      f"{ev.get('compared', 0):.0f} compared, agreement {_pct(ev.get('agreement'))}, "
                      f"candidate served {ev.get('candidate_served', 0):.0f}, error rate {_pct(ev.get('candidate_error_rate'))}")
        from monitoring.drift_checks import describe

        console.print(describe(ev, ctx.obj.settings))
    if st.next_stage:
        console.print(f"gates for {st.next_stage}:")
        _print_gates(st.next_gates)


@app.command()
@friendly
def history(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit", min=1, help="Most events to show."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Rollout events as recorded in MLflow, newest first: who did what, why, and the gate evidence."""
    events = ctx.obj.control().history(limit)
    if as_json:
        print(json.dumps(events, indent=1))
        return
    table = Table("time (UTC)", "action", "from", "to", "actor", "champion", "candidate", "reason")
    for e in events:
        table.add_row(datetime.fromtimestamp(e["time"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), e["action"] or "",
                      e["from"] or "", e["to"] or "", e["actor"] or "", e["champion"] or "", e["candidate"] or "",
                      ("[forced] " if e["forced"] else "") + (e["reason"] or ""))
    console.print(table)


def _with_address(settings: Settings, section: str, host: str | None, port: int | None) -> Settings:
    """`settings` with the host and port of `section` (serve, control) replaced by the options given."""
    given = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    if not given:
        return settings
    return settings.model_copy(update={section: getattr(settings, section).model_copy(update=given)})


@app.command("api")
@friendly
def api(
    ctx: typer.Context,
    port: Optional[int] = typer.Option(None, "--port", help="HTTP port (default: control.port, 8082)."),
    host: Optional[str] = typer.Option(None, "--host", help="Bind address (default: control.host, 127.0.0.1)."),
) -> None:
    """Expose start/promote/rollback/status/history over HTTP, for operators holding a control.tokens token."""
    from roomsight.listening import listen, serve_http
    from rollout.api import create_app

    settings = _with_address(ctx.obj.settings, "control", host, port)
    web = create_app(ctx.obj.control(), settings.control.tokens)  # refuses without tokens, before binding
    host, port = settings.control.host, settings.control.port
    sock = listen(host, port, "control")
    console.print(f"control plane on http://{host}:{port}/api/ (status, history, start, promote, rollback); "
                  f"{len(settings.control.tokens)} operator token(s); Ctrl-C stops")
    serve_http(web, sock)


@plan_app.command("show")
@friendly
def plan_show(ctx: typer.Context) -> None:
    """Print the rollout plan in words."""
    from rollout.plan import METRICS

    for line in ctx.obj.plan().describe():
        console.print(line)
    console.print("Gate metrics: " + "; ".join(f"{k}: {v}" for k, v in METRICS.items()))


@app.command()
@friendly
def demo(
    ctx: typer.Context,
    data: Optional[Path] = typer.Option(None, "--data", help="Real photos to use instead of the synthetic ones."),
    keep: Optional[Path] = typer.Option(None, "--keep", help="Run folder to keep (default: a fresh folder under ./demo-run)."),
    port: int = typer.Option(8765, "--port", help="HTTP port for the demo's Serve app."),
) -> None:
    """Run the staged-rollout story end to end on the embedded synthetic photos."""
    from rollout.demo import run_demo

    run_demo(data=data, run_dir=keep, port=port, console=console)


# -- helpers ----------------------------------------------------------------------------------------
def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1%}"


def _describe_state(s) -> str:  # noqa: ANN001 - RoutingState
    champ = f"champion {s.champion.uri}"
    if s.candidate is None:
        return f"stage [bold]stable[/]: {champ} answers everything"
    cand = f"candidate {s.candidate.uri}"
    if s.stage.value == "shadow":
        return f"stage [bold]shadow[/]: {champ} answers; {cand} runs on {s.shadow_sample:.0%} in shadow"
    if s.stage.value == "limited":
        return f"stage [bold]limited[/]: {cand} answers {s.percent:g}% of listings in {', '.join(s.regions)}; {champ} the rest"
    return (f"stage [bold]gradual[/]: {cand} answers {s.percent:g}% of listings everywhere"
            + (f" (and all in {', '.join(s.regions)})" if s.regions else "") + f"; {champ} the rest")


def _print_gates(results) -> None:  # noqa: ANN001
    for r in results:
        colour = "green" if r.passed else "red"
        console.print(f"  [{colour}]{r.describe()}[/]")


def main() -> None:
    app()
