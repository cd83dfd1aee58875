"""`rollout demo`: the staged-rollout story on the embedded synthetic photos, every part real.

Two models are trained and registered in MLflow; the Serve app and the reviewer page start; listing
traffic from three regions is replayed over HTTP while the candidate moves shadow -> limited ->
gradual -> full behind the plan's gates; simulated reviewers label the review queue (disagreements,
spot checks, low-confidence answers) through the page's API; partway through, night-time and
low-resolution photos start arriving from one region and are flagged, held on the champion and reported
by a drift report emailed to a local SMTP server; a deliberately bad candidate is refused at a gate and
rolled back. A live view shows the stage, the split and the evidence as it runs.
Everything is written under one run folder, printed at the end.
"""

from __future__ import annotations

import io
import os
import socket
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.live import Live
from rich.table import Table

from roomsight.config import Settings, load_settings
from roomsight.listening import check_free, listen
from roomsight.modelpack import UNSURE
from rollout.control import ControlPlane, GatesFailed
from rollout.plan import load_plan
from rollout.reviewers import demo_tokens, review_all, start_review_server
from rollout.mailbox import Mailbox
from rollout.traffic import Shot, folder_shots, replay, synthetic_shots, wait_applied, wait_idle

SHADOW_REQUESTS = 120
STEP_REQUESTS = 90
SHIFTED_REGION = "ap-south"  # where night-time and low-resolution photos start arriving partway through
TEAM = ("team@roomsight.demo",)


class LiveView:
    """The numbers the live panel shows; `render` draws them."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {"stage": "starting"}
        self.served: Counter = Counter()  # the latest batch only: a running total would hide each step's split
        self.flags: Counter = Counter()

    def render(self) -> Table:
        t = Table(title="roomsight demo", show_header=False, expand=False)
        t.add_column(style="bold")
        t.add_column()
        for k, v in self.fields.items():
            t.add_row(k, v)
        total = sum(self.served.values()) or 1
        t.add_row("traffic split (last batch)", ", ".join(f"{k} {v / total:.0%}" for k, v in sorted(self.served.items())) or "-")
        t.add_row("OOD flags", ", ".join(f"{k} {v}" for k, v in sorted(self.flags.items())) or "none yet")
        return t


def _shifted(shot: Shot, rng: np.random.Generator) -> Shot:
    """The same photo as a night-time or a low-resolution shot (monitoring.shifts)."""
    from monitoring.shifts import shift

    img = Image.open(io.BytesIO(shot.jpeg)).convert("RGB").resize((256, 256))
    kind = str(rng.choice(["night_street", "night_lamp", "night_grey", "small", "upscaled"]))
    out = shift(img, kind, float(rng.uniform()), int(rng.integers(2**31)))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=85)
    return replace(shot, jpeg=buf.getvalue())


def demo_settings(home: Path, port: int) -> Settings:
    import json

    env = dict(os.environ)
    env.update({"ROOMSIGHT_HOME": str(home), "ROOMSIGHT_SERVE__PORT": str(port), "ROOMSIGHT_SERVE__STATE_POLL_S": "0.5",
                "ROOMSIGHT_LOG__FLUSH_INTERVAL_S": "0.2", "ROOMSIGHT_REVIEW__TOKENS": json.dumps(demo_tokens()),
                "ROOMSIGHT_REVIEW__PORT": str(port + 1), "ROOMSIGHT_SMTP__HOST": "127.0.0.1",
                "ROOMSIGHT_SMTP__PORT": str(port + 2), "ROOMSIGHT_SMTP__SECURITY": "none",
                "ROOMSIGHT_SMTP__RECIPIENTS": json.dumps(TEAM)})
    env.pop("ROOMSIGHT_CONFIG", None)
    env.pop("ROOMSIGHT_DATABASE_URL", None)
    env.pop("ROOMSIGHT_MLFLOW_TRACKING_URI", None)
    return load_settings(environ=env)


def claim_ports(settings: Settings, port: int) -> socket.socket:
    """The demo's three ports, checked before minutes of training. Found later, a taken Serve or SMTP
    port stops the demo half-way, and a taken reviewer port shows only as reviewers timing out and a
    gate refusing for want of verdicts. The reviewer page's socket is kept for it; Ray Serve and the
    SMTP sink bind for themselves."""
    import ray

    fix = f"the demo uses --port {port} and the two ports after it; choose another --port"
    # A Serve already running in this process's Ray may hold the port itself: the demo then deploys onto it.
    if not ray.is_initialized():
        check_free(settings.serve.host, settings.serve.port, "serve", fix)
    check_free(settings.smtp.host, settings.smtp.port, "smtp", fix)
    return listen("127.0.0.1", settings.review.port, "review", fix)


def run_demo(data: Path | None = None, run_dir: Path | None = None, port: int = 8765, console: Console | None = None,
             scale: float = 1.0) -> dict:
    """Run the story; returns a summary (also what the end-to-end test checks). `scale` shrinks the
    traffic for quick runs."""
    from monitoring.drift_checks import DriftChecker
    from serving.runner import start_serve, stop_serve
    from training.pipeline import TrainConfig, train

    console = console or Console()
    run_dir = (run_dir or Path("demo-run") / time.strftime("%Y%m%d-%H%M%S")).resolve()
    home = run_dir / "home"
    settings = demo_settings(home, port)
    review_sock = claim_ports(settings, port)
    console.rule("[bold]roomsight demo")
    console.print(f"run folder: {run_dir}")
    console.print("[dim]photos: " + (f"{data}" if data else "SYNTHETIC room scenes drawn by code (not real photos)") + "[/]")

    def trained(label: str, cfg: TrainConfig) -> str:
        t0 = time.time()
        with console.status(f"training the {label} ..."):
            result = train(settings, cfg)
        m = result.metrics
        console.print(f"{label}: {result.registered.ref.uri}  test accuracy {m['test_accuracy']:.3f}  "
                      f"({time.time() - t0:.0f} s)")
        return result.registered.ref.uri

    real = data is not None
    head = {"head_only": True} if real else {}
    champion_uri = trained("champion", TrainConfig(data=data, seed=0, epochs=3 if real else 6, **head))
    candidate_uri = trained("candidate", TrainConfig(data=data, seed=1, epochs=8 if real else 15, **head))

    plan = load_plan(settings.plan)
    control = ControlPlane(settings, plan, actor="demo")
    control.current()
    with console.status("starting Ray Serve ..."):
        url = start_serve(settings)
    console.print(f"Serve app: {url}")
    reviews = start_review_server(settings, control.engine, review_sock)
    console.print(f"reviewer page: {reviews.url}  (simulated reviewers: {', '.join(reviews.tokens)})")
    truth: dict[str, str] = {}

    shots = folder_shots(data) if real else synthetic_shots(int(600 * scale) + 50, seed=1234)
    cursor = 0
    shift = {"on": False, "since": None, "rng": np.random.default_rng(7), "answered": 0}
    view = LiveView()
    # What `rollout serve` runs in the background, here once per refresh: status reads the latest check.
    drift_checker = DriftChecker(settings, control.engine, lambda: control.current().state.rollout_id)

    def refresh() -> None:
        drift_checker.tick()
        st = control.status()
        ev = st.evidence
        view.fields["stage"] = st.state.stage.value + (f" {st.state.percent:g}%" if st.state.stage.value == "gradual" else "")
        view.fields["champion / candidate"] = f"v{st.state.champion.version} / " + (f"v{st.state.candidate.version}" if st.state.candidate else "-")
        view.fields["agreement"] = "n/a" if ev.get("agreement") is None else f"{ev['agreement']:.1%} of {ev.get('compared', 0):.0f}"
        cp, ch = ev.get("candidate_precision_lower"), ev.get("champion_precision_lower")
        if st.state.candidate is None:
            precision = "n/a"
        elif cp is not None and ch is not None:
            precision = f"candidate {cp:.1%} vs champion {ch:.1%} ({ev.get('reviewed', 0):.0f} verdicts)"
        else:
            precision = f"{ev.get('reviewed') or 0:.0f} verdicts"
        view.fields["reviewed precision (lower 95%)"] = precision
        view.fields["drift"] = ("ALARM" if ev.get("drift_alarm") else "ok") if ev.get("drift_alarm") is not None else "n/a"
        view.fields[f"{SHIFTED_REGION} photos"] = "night-time / low-resolution arriving" if shift["on"] else "normal"
        live.update(view.render())

    def traffic(n: int, title: str) -> None:
        nonlocal cursor
        batch = [shots[(cursor + i) % len(shots)] for i in range(n)]
        if shift["on"]:
            batch = [_shifted(b, shift["rng"]) if b.region == SHIFTED_REGION else b for b in batch]
        cursor += n
        served: Counter = Counter()
        answers: Counter = Counter()
        for shot, answer in replay(url, batch, concurrency=2):
            if answer["_status"] != 200:
                served["error"] += 1
                continue
            served[answer["served_by"]] += 1
            for flag in (answer.get("ood") or {}).get("flags", []):
                view.flags[flag] += 1
            answers[_verdict(answer["label"], shot.label)] += 1
            truth[answer["request_id"]] = shot.label
            shift["answered"] += shift["on"] and shot.region == SHIFTED_REGION
        console.print(f"  {title}: {n} requests, served by {dict(served)}; "
                      + ", ".join(f"{k} {answers[k]}" for k in ("correct", "unsure", "wrong")))
        view.served = served
        refresh()

    def review_round() -> None:
        from monitoring.review.queue import fill

        rid = control.current().state.rollout_id
        if rid is None:
            return
        fill(control.engine, settings, rid)
        n = review_all(reviews, control.engine, truth)
        if n:
            console.print(f"  reviewers labelled {n} queued photo(s)")

    def until_gates(stage: str, title: str, min_requests: int) -> None:
        """Replay traffic until the evidence for `stage` is in (its gates pass), as an operator would
        wait, or until a cap: a bad candidate never gets there."""
        sent = 0
        cap = max(min_requests * 2, 150)
        while True:
            n = max(20, min_requests - sent) if sent < min_requests else 30
            traffic(n, title)
            sent += n
            wait_idle(url)
            review_round()
            st = control.status()
            if (sent >= min_requests and st.next_stage == stage and all(g.passed for g in st.next_gates)) or sent >= cap:
                return

    summary: dict = {"run_dir": str(run_dir), "url": url, "review_url": reviews.url, "champion": champion_uri,
                     "candidate": candidate_uri, "steps": []}
    mailbox = Mailbox(run_dir / "mail", settings.smtp.port)
    live = Live(view.render(), console=console, refresh_per_second=4, transient=False)
    try:
        mailbox.__enter__()
        live.start()
        traffic(max(10, int(30 * scale)), "warm-up, champion only")
        out = control.start(candidate_uri, reason="demo: better candidate")
        wait_applied(url, out.generation)
        console.print(f"[bold]shadow[/]: {candidate_uri} runs beside {champion_uri}")
        until_gates("limited", "shadow", int(SHADOW_REQUESTS * scale))
        summary["steps"].append(_promote(console, control, "limited", url))
        until_gates("gradual", "limited (eu-west)", int(STEP_REQUESTS * scale))
        while True:
            summary["steps"].append(_promote(console, control, "gradual", url))
            percent = control.current().state.percent
            if not shift["on"]:
                shift.update(on=True, since=time.time())
                console.print(f"[yellow]from now on, {SHIFTED_REGION} sends night-time and low-resolution photos[/]")
            if percent >= 100:
                until_gates("full", f"gradual {percent:g}%", int(STEP_REQUESTS * scale))
                break
            until_gates("gradual", f"gradual {percent:g}%", int(STEP_REQUESTS * scale))
        summary["steps"].append(_promote(console, control, "full", url))
        traffic(max(10, int(30 * scale)), "after full")
        while shift["answered"] < settings.monitoring.min_window:  # enough of the region for a drift report
            traffic(30, "after full")
        wait_idle(url)
        summary.update(_drift_email(console, settings, control, shift["since"], mailbox))

        # a bad candidate: trained on mostly shuffled labels, refused at the first gate, rolled back
        bad_uri = trained("bad candidate", TrainConfig(data=data, seed=2, epochs=3, label_noise=0.9, synthetic_per_class=30, **head))
        wait_applied(url, control.start(bad_uri, reason="demo: a candidate that should not pass").generation)
        until_gates("limited", "shadow (bad candidate)", int(SHADOW_REQUESTS * scale))
        try:
            control.promote("limited")
            summary["bad_refused"] = False
        except GatesFailed as exc:
            summary["bad_refused"] = True
            console.print("[red]bad candidate refused at the gate:[/]")
            for r in exc.results:
                console.print(f"  {r.describe()}")
            control.rollback("demo: bad candidate refused at gate")
            console.print("rolled back: the champion keeps all traffic")
            refresh()
        summary["final_state"] = control.current().state.to_dict()
        summary["history"] = control.history()
    finally:
        live.stop()
        if not console.is_terminal:  # off a terminal Live leaves the line open, and Serve's log lines would join it
            console.line()
        mailbox.__exit__(None, None, None)
        reviews.stop()
        stop_serve()
    console.rule("where to look")
    # soft_wrap: commands and paths stay on one line for copying, in a narrow terminal or a log file
    for line in (f"MLflow UI:      mlflow ui --backend-store-uri {settings.tracking_uri}",
                 f"drift report:   {summary.get('drift_html', '-')}",
                 f"email received: {summary.get('email', '-')}",
                 f"review page:    ROOMSIGHT_HOME={home} rollout review serve   (it ran at {reviews.url} during the demo)",
                 f"history:        ROOMSIGHT_HOME={home} rollout history",
                 f"log DB:         {settings.db_url}"):
        console.print(line, soft_wrap=True)
    return summary


def _verdict(answered: str, truth: str) -> str:
    """An answer below its class's threshold is "unsure", the model abstaining at the target precision:
    counted apart, since it is neither right nor a mistake a user would see."""
    return "unsure" if answered == UNSURE else ("correct" if answered == truth else "wrong")


def _drift_email(console: Console, settings: Settings, control: ControlPlane, since: float | None,
                 mailbox: Mailbox) -> dict:
    """A drift report on the shifted region since the shift began, emailed to the team's inbox."""
    from monitoring import drift, watch

    window = drift.Window(since=since, region=SHIFTED_REGION)
    rep = drift.report(settings, control.engine, window)
    watch.send(settings, control.engine, window, rep, settings.smtp.recipients)
    deadline = time.time() + 10
    while not mailbox.saved and time.time() < deadline:
        time.sleep(0.1)
    r = rep.result
    console.print(f"drift report on {SHIFTED_REGION}: {'[red]ALARM[/]' if r.alarm else 'ok'}, "
                  f"{r.ood_share:.0%} out-of-domain, {r.drifted_share:.0%} of columns drifted; emailed to {', '.join(TEAM)}")
    return {"drift_html": str(rep.html), "drift_alarm": r.alarm, "ood_share": r.ood_share,
            "email": str(mailbox.saved[0]) if mailbox.saved else None}


def _promote(console: Console, control: ControlPlane, stage: str, url: str) -> dict:
    out = control.promote(stage, reason=f"demo: {stage}")
    wait_applied(url, out.generation)
    s = out.after
    where = f"{', '.join(s.regions)} {s.percent:g}%" if stage == "limited" else (f"{s.percent:g}%" if stage == "gradual" else "all traffic")
    console.print(f"[bold]{stage}[/] ({where}); gates: " + "; ".join(g.describe() for g in out.gates))
    return {"stage": stage, "percent": s.percent, "gates": [g.to_dict() for g in out.gates]}
