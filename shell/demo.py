"""`rollout demo`: the staged rollout on the embedded synthetic photos (or a folder of real ones), every
part real, told as the named steps of `STORY`.

Three models are trained and registered in MLflow: a champion, a better candidate, and a candidate that
learnt two classes' labels swapped. The Serve app and the reviewer page start; listing traffic from three
regions is replayed over HTTP; simulated reviewers answer the review queue through the page's API. After
each batch the demo does, once, what `rollout serve` does in the background: a drift check and a tick of
the guard (rollout.guard), which acts on the plan's watched conditions by itself.

The good candidate moves shadow -> limited -> gradual as its exit conditions pass. During gradual, ap-south
starts sending night-time and low-resolution photos: the guard catches it before `full` (the shipped plan
pauses on a drift alarm and rolls back on a failed quality analysis), a drift report is emailed, and the
operator decides. Then the swapped candidate is forced into limited, and the guard takes it off traffic
when the quality analysis fails on the reviewed verdicts. A live panel shows the step, the split and the
evidence; everything is written under one run folder, printed at the end.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.live import Live

from roomsight.config import Settings
from roomsight.errors import DemoStuck
from rollout.conditions import overall
from rollout.control import ControlPlane, Outcome
from rollout.guard import GUARD_ACTOR, Guard
from rollout.plan import load_plan
from shell.demo_parts import (SHIFTED_REGION, SWAPPED, LiveView, Models, claim_ports, demo_settings, drift_email, shifted,
                              train_models, verdict)
from shell.mailbox import Mailbox
from shell.reviewers import ReviewServer, review_all, start_review_server
from shell.traffic import Shot, folder_shots, replay, synthetic_shots, wait_applied, wait_idle

SHADOW_REQUESTS = 120
STEP_REQUESTS = 90
OPERATOR = "operator"


@dataclass
class Demo:
    """One run of the story: the services it started, the traffic it has sent, and what it has seen."""

    settings: Settings
    console: Console
    control: ControlPlane
    models: Models
    url: str
    reviews: ReviewServer
    mailbox: Mailbox
    shots: list[Shot]
    scale: float
    live: Live | None = None
    view: LiveView = field(default_factory=LiveView)
    truth: dict[str, str] = field(default_factory=dict)  # request id -> the photo's true label, for the reviewers
    cursor: int = 0
    shift_since: float | None = None  # when ap-south's photos turned; None: they are ordinary
    shifted_answered: int = 0  # ap-south's answered photos since then: its drift report needs min_window
    shift_rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))
    summary: dict[str, Any] = field(default_factory=lambda: {"steps": [], "guard": []})

    def __post_init__(self) -> None:
        from monitoring.drift_checks import DriftChecker

        self.guard = Guard(self.control.with_actor(GUARD_ACTOR))
        self.drift_checker = DriftChecker(self.settings, self.control.engine, self._rollout_in_progress)

    # -- the story -------------------------------------------------------------------------------
    def warm_up(self) -> None:
        self.send(max(10, int(30 * self.scale)), "champion only")

    def shadow(self) -> None:
        assert self.models.candidate is not None, "trained whenever the story has this step"
        out = self.control.start(self.models.candidate, reason="demo: a better candidate")
        wait_applied(self.url, out.generation)
        self.console.print(f"{self.models.candidate} runs beside {self.models.champion} in shadow")
        self.until_exit("shadow", int(SHADOW_REQUESTS * self.scale))
        self.promote()

    def limited(self) -> None:
        self.until_exit("limited", int(STEP_REQUESTS * self.scale))
        self.promote()

    def gradual(self) -> None:
        """Expand step by step; from the first gradual step on, ap-south's photos turn night-time and low
        resolution, and the guard must act before `full`."""
        self.shift_since = time.time()
        self.console.print(f"[yellow]from now on, {SHIFTED_REGION} sends night-time and low-resolution photos[/]")
        while True:
            step = self.control.step_label(self.control.current().state)
            acted = self.until_exit(step, int(STEP_REQUESTS * self.scale))
            if acted is not None:
                self.summary["caught"] = {"action": acted.action, "step": acted.from_step,
                                          "stage": acted.before.stage.value, "shifted_photos": self.shifted_answered,
                                          "conditions": [c.to_dict() for c in acted.gates]}
                return
            if self.control.status().next_stage == "full":
                self.summary["caught"] = None  # the shift went unnoticed: the story's claim fails
                return
            self.promote()

    def operator(self) -> None:
        """The team reads the drift email. The flagged photos were held on the champion all along, so the
        alarm is about the photos, not the candidate: a paused rollout is taken to full, with the reason on
        record. A rolled-back one stays rolled back."""
        while self.shifted_answered < self.settings.monitoring.min_window:  # enough for the region's own report
            self.send(30, f"{SHIFTED_REGION} still shifted")
        self.summary.update(drift_email(self.console, self.settings, self.control.engine, self.shift_since, self.mailbox))
        self.shift_since = None
        state = self.control.current().state
        if state.in_progress and state.held:
            self.promote("full", actor=OPERATOR, force=True,
                         reason=f"drift alarm is {SHIFTED_REGION}'s night-time photos, held on the champion; "
                                "the candidate is no worse on the rest")
        self.send(max(10, int(30 * self.scale)), "after the decision")

    def swapped(self) -> None:
        """A candidate that learnt two classes the wrong way round, forced past shadow into limited: the
        guard's quality analysis must take it off traffic on the reviewed verdicts."""
        assert self.models.swapped is not None, "trained whenever the story has this step"
        out = self.control.start(self.models.swapped, reason="demo: a candidate worse on two classes")
        wait_applied(self.url, out.generation)
        self.summary["swapped_rollout"] = out.after.rollout_id
        self.promote("limited", force=True, reason="demo: forced past shadow, to show the guard take it off")
        sent, cap = 0, max(300, int(600 * self.scale))
        while sent < cap:
            acted = self.send(30, "limited (swapped candidate)")
            sent += 30
            if acted is not None:
                ev = acted.evidence
                self.summary["swapped"] = {"action": acted.action, "step": acted.from_step, "requests": sent,
                                           "candidate_served": ev.get("candidate_served"),
                                           "verdicts": ev.get("reviewed")}
                return
        raise DemoStuck(f"the guard did not take the swapped candidate off within {cap} requests")

    # -- the moves ---------------------------------------------------------------------------------
    def send(self, n: int, title: str) -> Outcome | None:
        """Replay `n` photos, let the reviewers answer the queue, then run the background checks once."""
        batch = [self.shots[(self.cursor + i) % len(self.shots)] for i in range(n)]
        if self.shift_since is not None:
            batch = [shifted(b, self.shift_rng) if b.region == SHIFTED_REGION else b for b in batch]
        self.cursor += n
        served, answers = Counter(), Counter()
        for shot, answer in replay(self.url, batch, concurrency=2):
            if answer["_status"] != 200:
                served["error"] += 1
                continue
            served[answer["served_by"]] += 1
            for flag in (answer.get("ood") or {}).get("flags", []):
                self.view.flags[flag] += 1
            answers[verdict(answer["label"], shot.label)] += 1
            self.truth[answer["request_id"]] = shot.label
            self.shifted_answered += self.shift_since is not None and shot.region == SHIFTED_REGION
        self.console.print(f"  {title}: {n} requests, served by {dict(served)}; "
                           + ", ".join(f"{k} {answers[k]}" for k in ("correct", "unsure", "wrong")))
        self.view.served = served
        wait_idle(self.url)
        self._review_round()
        acted = self.background()
        self.refresh()
        return acted

    def background(self) -> Outcome | None:
        """Once, what `rollout serve` runs on its own: a drift check, then the guard."""
        self.drift_checker.tick()
        acted = self.guard.tick()
        if acted is not None:
            wait_applied(self.url, acted.generation)
            why = "; ".join(c.describe() for c in acted.gates)
            self.console.print(f"[bold red]guard: {acted.action}[/] at {acted.from_step}: {why}")
            self.summary["guard"].append({"action": acted.action, "step": acted.from_step, "reason": why})
        return acted

    def until_exit(self, title: str, min_requests: int) -> Outcome | None:
        """Replay traffic until the step's exit conditions pass, as an operator would wait; the guard's
        action if it acts first."""
        sent, cap = 0, max(min_requests * 4, 300)
        while True:
            n = max(20, min_requests - sent) if sent < min_requests else 30
            acted = self.send(n, title)
            sent += n
            if acted is not None:
                return acted
            st = self.control.status()
            if sent >= min_requests and st.exit and overall(st.exit) == "pass":
                return None
            if sent >= cap:
                held = "; ".join(c.describe() for c in st.exit if not c.passed)
                raise DemoStuck(f"{title}: the exit conditions did not pass within {cap} requests: {held}")

    def promote(self, stage: str | None = None, actor: str = "demo", force: bool = False,
                reason: str | None = None) -> None:
        control = self.control if actor == self.control.actor else self.control.with_actor(actor)
        out = control.promote(stage, force=force, reason=reason or "demo: exit conditions passed")
        wait_applied(self.url, out.generation)
        self.console.print(f"[bold]{out.from_step} -> {out.to_step}[/]{' (forced)' if out.forced else ''} by {actor}; "
                           + "; ".join(c.describe() for c in out.gates))
        self.summary["steps"].append({"from": out.from_step, "to": out.to_step, "stage": out.after.stage.value,
                                      "actor": actor, "forced": out.forced,
                                      "conditions": [c.to_dict() for c in out.gates]})
        self.refresh()

    # -- around it ---------------------------------------------------------------------------------
    def _rollout_in_progress(self) -> str | None:
        from monitoring.review.queue import current_rollout

        return current_rollout(self.control.engine)

    def _review_round(self) -> None:
        from monitoring.review.queue import fill

        rid = self._rollout_in_progress()
        if rid is None:
            return
        fill(self.control.engine, self.settings, rid)
        n = review_all(self.reviews, self.control.engine, self.truth)
        if n:
            self.console.print(f"  reviewers labelled {n} queued photo(s)")

    def refresh(self) -> None:
        self.view.show(self.control.status(), shifted=self.shift_since is not None)
        if self.live is not None:
            self.live.update(self.view.render())


STORY: tuple[tuple[str, Callable[[Demo], None]], ...] = (
    ("warm-up: the champion answers alone", Demo.warm_up),
    ("shadow: the candidate answers beside the champion, off the users' path", Demo.shadow),
    ("limited: the candidate answers eu-west", Demo.limited),
    (f"gradual: the share grows while {SHIFTED_REGION}'s photos turn night-time", Demo.gradual),
    ("the operator reads the drift email and decides", Demo.operator),
    (f"a candidate that swapped {SWAPPED[0]} and {SWAPPED[1]}, forced into limited", Demo.swapped),
)


def run_demo(data: Path | None = None, run_dir: Path | None = None, port: int = 8765, console: Console | None = None,
             scale: float = 1.0, story: tuple[tuple[str, Callable[[Demo], None]], ...] = STORY,
             trainer: Callable[..., Models] = train_models) -> dict:
    """Run the story (or some of its steps); returns a summary (also what the end-to-end test checks).
    `scale` shrinks the traffic for quick runs; `trainer` (train_models' signature) trains other models."""
    from serving.runner import start_serve, stop_serve

    console = console or Console()
    run_dir = (run_dir or Path("demo-run") / time.strftime("%Y%m%d-%H%M%S")).resolve()
    home = run_dir / "home"
    settings = demo_settings(home, port)
    # Everything started is stopped however the story ends, a failure in training or start-up included.
    with ExitStack() as started:
        review_sock = started.enter_context(claim_ports(settings, port))
        console.rule("[bold]roomsight demo")
        console.print(f"run folder: {run_dir}")
        console.print("[dim]photos: " + (f"{data}" if data else "SYNTHETIC room scenes drawn by code (not real photos)") + "[/]")
        models = trainer(settings, console, data, candidate=any(step is Demo.shadow for _, step in story))
        control = ControlPlane(settings, load_plan(settings.plan), actor="demo")
        control.current()
        with console.status("starting Ray Serve ..."):
            url = start_serve(settings)
        started.callback(stop_serve)
        console.print(f"Serve app: {url}")
        reviews = start_review_server(settings, control.engine, review_sock)
        started.callback(reviews.stop)
        console.print(f"reviewer page: {reviews.url}  (simulated reviewers: {', '.join(reviews.tokens)})")
        shots = folder_shots(data) if data else synthetic_shots(int(600 * scale) + 50, seed=1234)
        demo = Demo(settings, console, control, models, url, reviews, Mailbox(run_dir / "mail", settings.smtp.port),
                    shots, scale)
        demo.summary.update(run_dir=str(run_dir), url=url, review_url=reviews.url, champion=models.champion,
                            candidate=models.candidate, swapped_candidate=models.swapped)
        started.enter_context(demo.mailbox)
        demo.live = Live(demo.view.render(), console=console, refresh_per_second=4, transient=False)
        if not console.is_terminal:  # off a terminal Live leaves the line open, and Serve's log lines would join it
            started.callback(console.line)  # after the stop below: an ExitStack unwinds last in, first out
        started.callback(demo.live.stop)
        demo.live.start()
        for title, step in story:
            console.rule(title)
            step(demo)
        demo.summary["final_state"] = control.current().state.to_dict()
        demo.summary["history"] = control.history()
    console.rule("where to look")
    # soft_wrap: commands and paths stay on one line for copying, in a narrow terminal or a log file
    for line in (f"MLflow UI:      mlflow ui --backend-store-uri {settings.tracking_uri}",
                 f"drift report:   {demo.summary.get('drift_html', '-')}",
                 f"email received: {demo.summary.get('email', '-')}",
                 f"replay:         ROOMSIGHT_HOME={home} rollout plan replay --rollout {demo.summary.get('swapped_rollout', '?')}",
                 f"review page:    ROOMSIGHT_HOME={home} rollout review serve   (it ran at {reviews.url} during the demo)",
                 f"history:        ROOMSIGHT_HOME={home} rollout history",
                 f"log DB:         {settings.db_url}"):
        console.print(line, soft_wrap=True)
    return demo.summary
