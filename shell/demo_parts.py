"""The demo's furniture: its settings and ports, the live panel, the regional shift it injects, and the
drift email it sends. The story itself is in shell.demo."""

from __future__ import annotations

import io
import json
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from roomsight.config import Settings, load_settings
from roomsight.listening import check_free, listen
from roomsight.modelpack import UNSURE
from rollout.control import Status
from shell.mailbox import Mailbox
from shell.reviewers import demo_tokens
from shell.traffic import Shot

SHIFTED_REGION = "ap-south"  # where night-time and low-resolution photos start arriving during gradual
TEAM = ("team@roomsight.demo",)
SWAPPED = ("bedroom", "living_room")  # the classes the bad candidate learnt the wrong way round
SHIFT_KINDS = ("night_street", "night_lamp", "night_grey", "small", "upscaled")


class LiveView:
    """The numbers the live panel shows; `render` draws them."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {"step": "starting"}
        self.served: Counter = Counter()  # the latest batch only: a running total would hide each step's split
        self.flags: Counter = Counter()

    def show(self, st: Status, shifted: bool) -> None:
        """Take the numbers from a status (rollout.control.Status)."""
        ev, state, f = st.evidence, st.state, self.fields
        f["step"] = (st.step or state.stage.value) + (" [paused]" if state.held else "")
        f["champion / candidate"] = f"v{state.champion.version} / " + (f"v{state.candidate.version}" if state.candidate else "-")
        f["agreement"] = "n/a" if ev.get("agreement") is None else f"{ev['agreement']:.1%} of {ev.get('compared', 0):.0f}"
        f["verdicts"] = f"{ev.get('reviewed') or 0:.0f}"
        f["watched"] = ", ".join(f"{c.name}: {c.outcome}" for c in st.watch) or "-"
        f["drift"] = "n/a" if ev.get("drift_alarm") is None else ("ALARM" if ev["drift_alarm"] else "ok")
        f[f"{SHIFTED_REGION} photos"] = "night-time / low-resolution" if shifted else "ordinary"

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


def shifted(shot: Shot, rng: np.random.Generator) -> Shot:
    """The same photo as a night-time or a low-resolution shot (monitoring.shifts), at a random strength."""
    from monitoring.shifts import shift

    img = Image.open(io.BytesIO(shot.jpeg)).convert("RGB").resize((256, 256))
    out = shift(img, str(rng.choice(SHIFT_KINDS)), float(rng.uniform()), int(rng.integers(2**31)))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=85)
    return replace(shot, jpeg=buf.getvalue())


def verdict(answered: str, truth: str) -> str:
    """An answer below its class's threshold is "unsure", the model abstaining at the target precision:
    counted apart, since it is neither right nor a mistake a user would see."""
    return "unsure" if answered == UNSURE else ("correct" if answered == truth else "wrong")


def demo_settings(home: Path, port: int) -> Settings:
    """Everything under `home`, on `port` and the two after it."""
    env = dict(os.environ)
    env.update({"ROOMSIGHT_HOME": str(home), "ROOMSIGHT_SERVE__PORT": str(port), "ROOMSIGHT_SERVE__STATE_POLL_S": "0.5",
                "ROOMSIGHT_LOG__FLUSH_INTERVAL_S": "0.2", "ROOMSIGHT_REVIEW__TOKENS": json.dumps(demo_tokens()),
                "ROOMSIGHT_REVIEW__PORT": str(port + 1), "ROOMSIGHT_SMTP__HOST": "127.0.0.1",
                "ROOMSIGHT_SMTP__PORT": str(port + 2), "ROOMSIGHT_SMTP__SECURITY": "none",
                "ROOMSIGHT_SMTP__RECIPIENTS": json.dumps(TEAM),
                # The demo's traffic is small: its drift checks compare the latest 60 predictions.
                "ROOMSIGHT_MONITORING__DRIFT_CHECK_WINDOW": "60"})
    for key in ("ROOMSIGHT_CONFIG", "ROOMSIGHT_DATABASE_URL", "ROOMSIGHT_MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    return load_settings(environ=env)


def claim_ports(settings: Settings, port: int) -> socket.socket:
    """The demo's three ports, checked before minutes of training. Found later, a taken Serve or SMTP
    port stops the demo half-way, and a taken reviewer port shows only as reviewers timing out and an
    analysis that never decides. The reviewer page's socket is kept for it; Ray Serve and the SMTP sink
    bind for themselves."""
    import ray

    fix = f"the demo uses --port {port} and the two ports after it; choose another --port"
    # A Serve already running in this process's Ray may hold the port itself: the demo then deploys onto it.
    if not ray.is_initialized():
        check_free(settings.serve.host, settings.serve.port, "serve", fix)
    check_free(settings.smtp.host, settings.smtp.port, "smtp", fix)
    return listen("127.0.0.1", settings.review.port, "review", fix)


def drift_email(console: Console, settings: Settings, engine: Engine, since: float | None, mailbox: Mailbox) -> dict:
    """A drift report on the shifted region since the shift began, emailed to the team's inbox."""
    from monitoring import drift, watch

    window = drift.Window(since=since, region=SHIFTED_REGION)
    rep = drift.report(settings, engine, window)
    watch.send(settings, engine, window, rep, settings.smtp.recipients)
    deadline = time.time() + 10
    while not mailbox.saved and time.time() < deadline:
        time.sleep(0.1)
    r = rep.result
    console.print(f"drift report on {SHIFTED_REGION}: {'[red]ALARM[/]' if r.alarm else 'ok'}, "
                  f"{r.ood_share:.0%} out-of-domain, {r.drifted_share:.0%} of columns drifted; emailed to {', '.join(TEAM)}")
    return {"drift_html": str(rep.html), "drift_alarm": r.alarm, "ood_share": r.ood_share,
            "email": str(mailbox.saved[0]) if mailbox.saved else None}


@dataclass
class Models:
    champion: str
    candidate: str | None  # None when the steps run do not use it
    swapped: str | None  # likewise


def train_models(settings: Settings, console: Console, data: Path | None, candidate: bool = True) -> Models:
    from training.pipeline import TrainConfig, train

    real = data is not None
    head = {"head_only": True} if real else {}

    def trained(label: str, cfg: TrainConfig) -> str:
        t0 = time.time()
        with console.status(f"training the {label} ..."):
            result = train(settings, cfg)
        console.print(f"{label}: {result.registered.ref.uri}  test accuracy {result.metrics['test_accuracy']:.3f}  "
                      f"({time.time() - t0:.0f} s)")
        return result.registered.ref.uri

    better = TrainConfig(data=data, seed=1, epochs=8 if real else 15, **head)
    return Models(trained("champion", TrainConfig(data=data, seed=0, epochs=3 if real else 6, **head)),
                  trained("candidate", better) if candidate else None,
                  trained("swapped candidate", TrainConfig(data=data, seed=2, epochs=3 if real else 6,
                                                           swap_labels=SWAPPED, **head)))
