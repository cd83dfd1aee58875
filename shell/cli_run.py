"""`rollout serve`, `rollout api`, `rollout report` and `rollout demo`: the commands that run something
(the Serve app with its guard and drift checker, the control API, a report, the demo)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Optional

import typer

from roomsight.cli_context import of
from roomsight.config import Settings
from roomsight.console import console, friendly
from roomsight.listening import MAX_PORT
from shell.cli_format import describe_state
from shell.context import control_of

app = typer.Typer()
# --port replaces a setting after its validation (_with_address), so the option checks the range itself.


@app.command()
@friendly
def serve(
    ctx: typer.Context,
    port: Optional[int] = typer.Option(None, "--port", min=1, max=MAX_PORT, help="HTTP port (default: serve.port, 8000)."),
    host: Optional[str] = typer.Option(None, "--host", help="Bind address (default: serve.host, 127.0.0.1)."),
) -> None:
    """Start the Ray Serve app (POST /predict answers with the champion, the candidate per the rollout stage) and
    beside it the guard, which acts on the step's watched conditions, and the background drift check."""
    from serving.runner import start_serve, stop_serve

    from monitoring.drift_checks import DriftChecker
    from rollout.guard import GUARD_ACTOR, Guard

    settings = _with_address(of(ctx).settings, "serve", host, port)
    control = control_of(ctx)
    state = control.current().state
    console.print(describe_state(state, control.step_label(state) if state.in_progress else None))
    url = start_serve(settings)
    guard = Guard(control.with_actor(GUARD_ACTOR))
    guard.start()
    # The rollout in progress only: a completed one keeps its id at `full`, and checking it would cost an Evidently
    # comparison every period that no decision reads.
    checker = DriftChecker(settings, control.engine, lambda: control.current().state.rollout_in_progress)
    checker.start()
    console.print(f"serving on {url}  (POST /predict, POST /predict/batch, GET /healthz, GET /metrics); "
                  "the guard watches each step's conditions and acts as the plan says, drift is checked every "
                  f"{settings.monitoring.drift_check_every_s:g} s; Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        # What follows ends in Ray's own shutdown at exit, which waits for its processes: a second Ctrl-C
        # there broke it off with a traceback. Each wait is bounded, so the stop is let finish.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        guard.stop()
        checker.stop()
        console.print("stopping")
        if settings.ray.local:
            # The local Ray goes down with this process. Deleting the app first stops the ingress
            # gracefully, so it writes what its log holds and removes its in-flight file (serving.yielding).
            # An app on a cluster is left to it.
            stop_serve()


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
    port: Optional[int] = typer.Option(None, "--port", min=1, max=MAX_PORT, help="HTTP port (default: control.port, 8082)."),
    host: Optional[str] = typer.Option(None, "--host", help="Bind address (default: control.host, 127.0.0.1)."),
) -> None:
    """Expose start/promote/rollback/status/history over HTTP, for operators holding a control.tokens token."""
    from roomsight.listening import listen, serve_http
    from rollout.api import create_app

    settings = _with_address(of(ctx).settings, "control", host, port)
    web = create_app(control_of(ctx), settings.control.tokens)  # refuses without tokens, before binding
    host, port = settings.control.host, settings.control.port
    sock = listen(host, port, "control")
    console.print(f"control plane on http://{host}:{port}/api/ (status, history, start, promote, rollback; /metrics, /openapi.json); "
                  f"the read-only rollout page on http://{host}:{port}/; "
                  f"{len(settings.control.tokens)} operator token(s); Ctrl-C stops")
    serve_http(web, sock)


@app.command("report")
@friendly
def report(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="HTML file to write (one self-contained file: open it anywhere, offline)."),
    rollout: Optional[str] = typer.Option(None, "--rollout", help="Rollout id, or its first characters (default: the "
                                          "current rollout, else the most recently recorded one)."),
) -> None:
    """Write the rollout report: verdict, plan, each gate's outcome and numbers, segments, plots, drift, photos."""
    from rollout.report.build import latest_recorded, resolve_rollout, write_report
    from roomsight.userfiles import check_output_file

    check_output_file(out, "--out", ".html")
    control = control_of(ctx)
    target = resolve_rollout(control, rollout) if rollout else None
    if target is None and not control.current().state.in_progress:
        target = latest_recorded(control)
        if target:
            console.print(f"no rollout in progress; reporting on the most recent one, {target}")
    with console.status("gathering evidence, plots, drift checks and photos..."):
        write_report(control, out, target)
    console.print(f"wrote {out}")


@app.command()
@friendly
def demo(
    ctx: typer.Context,
    data: Optional[Path] = typer.Option(None, "--data", help="Real photos to use instead of the synthetic ones."),
    keep: Optional[Path] = typer.Option(None, "--keep", help="Run folder to keep (default: a fresh folder under ./demo-run)."),
    port: int = typer.Option(8765, "--port", min=1, max=MAX_PORT - 2, help="HTTP port for the demo's Serve app; the "
                             "reviewer page and the SMTP sink take the two after it."),
) -> None:
    """Run the staged-rollout story end to end on the embedded synthetic photos."""
    from shell.demo import run_demo

    run_demo(data=data, run_dir=keep, port=port, console=console)
