"""`rollout` commands of the monitoring area (inspect, drift), composed into the root CLI.

Heavy imports happen inside the commands so `rollout --help` stays instant.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer

from roomsight.cli_context import of
from roomsight.console import console, err, friendly
from roomsight.durations import parse_duration
from roomsight.errors import DurationError, MailError, RegistryError, UserError

app = typer.Typer()
drift_app = typer.Typer(help="Drift of live traffic against the model's reference: checks, Evidently reports by email, alarms to webhooks.",
                        no_args_is_help=True)
app.add_typer(drift_app, name="drift")


@app.command()
@friendly
def inspect(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Image files to describe, or folders of them (searched recursively)."),
    model: Optional[str] = typer.Option(None, "--model", help="Calibrate on (and run) this version, models:/NAME/N "
                                        "or models:/NAME@ALIAS (default: the champion)."),
    no_model: bool = typer.Option(False, "--no-model", help="Image descriptors and flags only, default calibration, "
                                  "no registry access."),
) -> None:
    """Print each image's descriptors, out-of-domain scores and flags as JSON lines.

    A file that cannot be read as an image is skipped with a warning; if none can be, the command fails."""
    from monitoring.descriptors import describe
    from monitoring.ood import FLAGS, IMAGE_FLAGS, Calibration
    from monitoring.reference import model_descriptors
    from roomsight.errors import ImageRejected
    from roomsight.images import IMAGE_SUFFIXES, decode_upload

    if model is not None and no_model:
        # --no-model silently won: the lines read as the model's calibration, without its answers.
        raise UserError(f"--model {model} and --no-model contradict each other: give one")
    settings = of(ctx).settings
    pack = None if no_model else _load_model(settings, model)
    calibration = Calibration.from_reference(pack.meta.reference if pack else None)
    threshold = settings.monitoring.flag_threshold
    files: list[Path] = []
    for given in paths:
        if not given.exists():
            err.print(f"[yellow]skipped[/] no such file: {given}", highlight=False)
            continue
        found = sorted(x for x in given.rglob("*") if x.suffix.lower() in IMAGE_SUFFIXES) if given.is_dir() else [given]
        if not found:
            err.print(f"[yellow]skipped[/] {given}: no images in this folder", highlight=False)
        files += found
    described = 0
    for path in files:
        try:
            decoded = decode_upload(path.read_bytes(), settings.serve)
        except (OSError, ImageRejected) as exc:
            # An OSError's own text repeats the path after an errno: its reason alone reads better.
            reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else str(exc)
            err.print(f"[yellow]skipped[/] {path}: {reason}", highlight=False)
            continue
        descriptors = describe(decoded.image, decoded.width, decoded.height, decoded.n_bytes)
        line = {"path": str(path)}
        if pack is not None:
            out = pack.predict([decoded.image])[0]
            descriptors.update(model_descriptors(out.logits, out.embedding, pack.meta.reference.get("embedding")))
            line.update({"label": out.label, "score": round(out.score, 4), "model": f"{pack.version}"})
        ood = calibration.assess(descriptors, threshold, IMAGE_FLAGS if pack is None else FLAGS)
        line.update({"descriptors": descriptors, "scores": ood.scores, "flags": ood.flags})
        typer.echo(json.dumps(line))
        described += 1
    if not described:
        # A script checks the exit code: nothing described must not read as success.
        raise UserError("none of the inputs could be described as an image")


def _load_model(settings, uri: str | None):  # noqa: ANN001, ANN202 - Settings -> ModelPack
    from roomsight import registry

    try:
        return registry.load(settings, uri)
    except RegistryError as exc:
        raise UserError(f"{exc} (train a model with `rollout train`, or pass --no-model)") from None


@drift_app.command("report")
@friendly
def report(
    ctx: typer.Context,
    since: str = typer.Option("24h", "--since", help="Window length back from now: 30m, 24h, 7d, ..."),
    region: Optional[str] = typer.Option(None, "--region", help="Only this region's predictions."),
    model: Optional[str] = typer.Option(None, "--model", help="Only predictions served by this version: a version "
                                        "number (2), models:/NAME/2 or models:/NAME@ALIAS; its reference is used "
                                        "(default: all traffic against the champion's reference)."),
    email: Optional[list[str]] = typer.Option(None, "--email", help="Send the report to this address (repeatable); "
                                              "SMTP settings come from smtp.* / ROOMSIGHT_SMTP__*."),
    as_json: bool = typer.Option(False, "--json", help="Print the headline numbers as JSON."),
) -> None:
    """Compare a window of the prediction log with the model's reference (Evidently); save HTML and JSON.
    With --email, the report is emailed and an alarm also goes to the webhooks (notify.webhooks)."""
    from monitoring import drift, mailer
    from monitoring.notify import Notifier
    from monitoring.watch import alarm_event, send
    from roomsight.db import engine_for

    settings = of(ctx).settings
    version = served_version(settings, model) if model else None
    window = drift.Window(since=time.time() - _duration("--since", since), region=region, model_version=version)
    if email:
        mailer.ready(settings.smtp, email)
    engine = engine_for(settings.db_url)
    with console.status("comparing with the reference (Evidently)..."):
        rep = drift.report(settings, engine, window)
    notified = []
    if email:
        if rep.result.alarm:  # posted first: an SMTP failure must not swallow the alarm
            notified = Notifier.from_settings(settings).send(alarm_event(window, rep))
        send(settings, engine, window, rep, email)
    res = rep.result
    if as_json:
        typer.echo(json.dumps({**res.to_dict(), "html": str(rep.html), "json": str(rep.json), "emailed": email or [],
                               "notified": [{"target": d.target, "delivered": d.ok, "error": d.error} for d in notified]}))
        return
    _print_result(res)
    console.print(f"  report: {rep.html}\n  numbers: {rep.json}")
    if email:
        console.print(f"  emailed to {', '.join(email)}")
    for d in notified:
        console.print(f"  {d.describe()}", highlight=False)


def _duration(option: str, text: str) -> float:
    """An option's duration; a bad one is refused naming the option, as --at is (`rollout history`)."""
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise UserError(f"{option}: {exc}") from None


def served_version(settings, given: str) -> str:  # noqa: ANN001 - Settings
    """The version number `--model` names. The prediction log records served versions as bare numbers of
    the one registered model, so a URI is reduced to its number; an alias asks the registry."""
    from roomsight import registry

    given = given.strip()
    if given.isdigit():
        return given
    try:
        name, version, _alias = registry.parse_uri(given)
    except RegistryError:
        raise UserError(f"--model takes a version number (2), models:/NAME/VERSION or models:/NAME@ALIAS, "
                        f"not {given!r}") from None
    if name != settings.model_name:
        raise UserError(f"{given} is not a version of {settings.model_name!r}, the model the prediction log records "
                        "(the model_name setting)")
    if version is not None:
        return version
    registry.configure(settings)
    return registry.resolve(given).version


def _print_result(res) -> None:  # noqa: ANN001 - monitoring.drift.DriftResult
    status = "[bold red]ALARM[/]" if res.alarm else "[green]no alarm[/]"
    console.print(f"drift: {status} — {res.window}; {res.compared()} vs {res.n_reference:,} reference images "
                  f"of {res.reference_model}")
    for reason in res.reasons:
        console.print(f"  {reason}")
    console.print(f"  drifted columns: {', '.join(res.drifted_columns) or 'none'} ({res.drifted_share:.0%})")
    of = " of the sample" if res.sampled else ""
    console.print(f"  out-of-domain{of}: {res.ood_share:.1%} (reference {res.reference_ood_share:.1%}); flags: "
                  f"{res.flag_counts or 'none'}; held on the champion: {res.held_counts or 'none'}")


@drift_app.command("check")
@friendly
def check(
    ctx: typer.Context,
    rollout: Optional[str] = typer.Option(None, "--rollout", help="Rollout id, or its first characters (default: the "
                                          "rollout in progress)."),
    as_json: bool = typer.Option(False, "--json", help="Print the headline numbers as JSON."),
) -> None:
    """Check the rollout's traffic for drift now and record it for `rollout status` and the gates.

    `rollout serve` does this in the background every monitoring.drift_check_every_s."""
    from monitoring.drift_checks import run_check
    from roomsight.db import engine_for

    settings = of(ctx).settings
    engine = engine_for(settings.db_url)
    rollout_id = _rollout(engine, rollout)
    with console.status("comparing the rollout's traffic with the reference (Evidently)..."):
        res = run_check(settings, engine, rollout_id)
    if as_json:
        typer.echo(json.dumps({**res.to_dict(), "rollout_id": rollout_id}))
        return
    console.print(f"rollout {rollout_id}: check recorded")
    _print_result(res)


def _rollout(engine, given: str | None) -> str:  # noqa: ANN001 - Engine
    """The rollout a command names (an id or its first characters), else the one in progress."""
    from monitoring.review.queue import current_rollout, resolve_rollout

    if given:
        return resolve_rollout(engine, given)
    current = current_rollout(engine)
    if current is None:
        raise UserError("no rollout in progress: name one with --rollout")
    return current


@drift_app.command("watch")
@friendly
def watch(
    ctx: typer.Context,
    every: str = typer.Option("1h", "--every", help="How often to report: 30m, 1h, 1d, ..."),
    since: Optional[str] = typer.Option(None, "--since", help="Window of each report (default: the same as --every)."),
    region: Optional[str] = typer.Option(None, "--region", help="Only this region's predictions."),
    email: Optional[list[str]] = typer.Option(None, "--email", help="Recipients (repeatable; default smtp.recipients)."),
    only_alarms: bool = typer.Option(False, "--only-alarms", help="Email only reports that raise the alarm."),
    times: Optional[int] = typer.Option(None, "--times", min=1, help="Stop after this many reports (default: run until Ctrl-C)."),
) -> None:
    """Make a drift report on a schedule: email it, and post alarms to the webhooks (notify.webhooks).
    With webhooks for drift alarms and no email configured, alarms go to the webhooks only."""
    from monitoring import drift, mailer
    from monitoring.notify import Notifier
    from monitoring.watch import Outcome
    from monitoring.watch import watch as run_watch
    from roomsight.db import engine_for
    from roomsight.events import DRIFT_ALARM

    settings = of(ctx).settings
    every_s = _duration("--every", every)
    since_s = _duration("--since", since) if since else every_s
    notifier = Notifier.from_settings(settings)
    recipients: list[str] | None
    try:
        recipients = mailer.ready(settings.smtp, email or [])
    except MailError:
        if email or not notifier.wants(DRIFT_ALARM):
            raise
        recipients = None

    def show(o: Outcome) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        if o.report is not None:
            r = o.report.result
            console.print(f"{stamp} {'ALARM' if r.alarm else 'ok'}: {r.drifted_share:.0%} drifted, "
                          f"{r.ood_share:.1%} out-of-domain, {r.n_current} predictions -> {o.report.html}"
                          + (" (emailed)" if o.emailed else ""), highlight=False)
        for d in o.notified:
            (console if d.ok else err).print(f"{stamp} {d.describe()}", highlight=False)
        if o.skipped:
            err.print(f"{stamp} [yellow]{o.skipped}[/]", highlight=False)

    sends = "emailing each report" if recipients is not None else "no email (smtp.host or smtp.recipients not set)"
    console.print(f"reporting every {every} on the last {since or every}, {sends}; alarms to "
                  f"{sum(DRIFT_ALARM in t.events for t in notifier.targets)} webhook(s); Ctrl-C stops")
    try:
        run_watch(settings, engine_for(settings.db_url), every_s, since_s, region, recipients, only_alarms,
                  iterations=times, on_outcome=show, notifier=notifier)
    except KeyboardInterrupt:
        console.print("stopped")
