"""Drift reports (Evidently) over windows of a real SQLite prediction log, against the reference a real
registered model was exported with; the gate evidence; `rollout drift report` with email."""

from __future__ import annotations

import email
import json
import time
import uuid
from email import policy
from pathlib import Path

import numpy as np
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert
from typer.testing import CliRunner

from monitoring import drift
from monitoring.shifts import shift
from monitoring.descriptors import describe
from monitoring.ood import Calibration
from monitoring.reference import model_descriptors
from roomsight.durations import parse_duration
from roomsight.errors import DriftError, DurationError
from roomsight.tables import predictions
from tests.conftest import free_port


def scenes(n: int, seed: int):
    from training.synthetic import CLASSES, render

    return [render(CLASSES[i % len(CLASSES)], np.random.default_rng(seed + i), 64) for i in range(n)]


def log_traffic(engine, pack, images, region: str, rollout_id: str | None = None, held: bool = False) -> None:
    """What the ingress logs for each image, computed the same way, written to the real table."""
    cal = Calibration.from_reference(pack.meta.reference)
    rows = []
    for im, out in zip(images, pack.predict(images)):
        desc = describe(im, n_bytes=2000)
        desc.update(model_descriptors(out.logits, out.embedding, pack.meta.reference["embedding"]))
        ood = cal.assess(desc).to_dict()
        reason = "ood-held" if held and ood["flags"] else "stable"
        if reason == "ood-held":
            ood["held"] = ood["flags"]
        rows.append({"request_id": str(uuid.uuid4()), "ts": time.time(), "rollout_id": rollout_id, "stage": "stable",
                     "listing_id": "L", "region": region, "served_by": "champion", "label": out.label,
                     "score": out.score, "latency_ms": 10.0, "champion_version": pack.version,
                     "champion_scores": out.probs, "ood": ood, "descriptors": desc, "routing_reason": reason})
    with engine.begin() as conn:
        conn.execute(insert(predictions), rows)


@pytest.fixture
def logged(settings):
    """60 ordinary photos from eu-west, 60 with a third at night from us-east (some held on the champion)."""
    from roomsight import registry
    from roomsight.db import engine_for

    engine = engine_for(settings.db_url)
    pack = registry.load_model(registry.ModelRef("roomtype", "1"))
    rng = np.random.default_rng(0)
    log_traffic(engine, pack, scenes(60, seed=1000), "eu-west", rollout_id="r-clean")
    night = [shift(im, "night_street", rng.uniform(), i) if i % 3 == 0 else im for i, im in enumerate(scenes(60, seed=2000))]
    log_traffic(engine, pack, night, "us-east", rollout_id="r-night", held=True)
    return engine


def test_parse_duration():
    assert parse_duration("90s") == 90 and parse_duration("30m") == 1800
    assert parse_duration("24h") == 86400 and parse_duration("1.5d") == 1.5 * 86400
    for bad in ("", "soon", "-1h", "0h", "3y"):
        with pytest.raises(DurationError, match="not a duration"):
            parse_duration(bad)


def test_report_by_region_over_the_log(settings, logged, tmp_path):
    since = time.time() - 3600
    clean = drift.report(settings, logged, drift.Window(since=since, region="eu-west"))
    night = drift.report(settings, logged, drift.Window(since=since, region="us-east"))
    assert not clean.result.alarm and clean.result.ood_share < 0.05, clean.result.to_dict()
    assert night.result.alarm and night.result.ood_share >= 0.3
    assert night.result.flag_counts["night_time"] == 20 and night.result.held_counts["night_time"] >= 20
    assert {"brightness", "highlights", "out_of_domain"} <= set(night.result.drifted_columns)
    # One model's traffic against its own reference: the model-side columns are compared too.
    assert {"max_softmax", "energy", "embedding_distance", "predicted_class"} <= set(night.result.columns)
    assert night.result.n_current == 60 and night.result.reference_model == "models:/roomtype/1"
    for rep in (clean, night):
        assert rep.html.parent == settings.reports_dir and rep.html.stat().st_size > 10_000
        saved = json.loads(rep.json.read_text())
        assert saved["summary"]["alarm"] == rep.result.alarm and saved["evidently"]["metrics"]
    assert "us-east" in night.html.name

    # Each rule raises the alarm on its own: the drifted columns without the out-of-domain share, and not
    # when neither threshold is reached.
    def alarm_at(**thresholds: float) -> drift.DriftResult:
        s = settings.model_copy(update={"monitoring": settings.monitoring.model_copy(update=thresholds)})
        return drift.check(s, logged, drift.Window(since=since, region="us-east"))[0]

    columns = alarm_at(ood_share_alarm=1.0)
    assert columns.alarm and len(columns.reasons) == 1 and "of columns drifted" in columns.reasons[0]
    assert not alarm_at(ood_share_alarm=1.0, drift_share_alarm=1.0).alarm


def test_model_side_columns_are_compared_only_on_one_models_traffic(settings, logged):
    """Max softmax, energy and embedding distance are one model's view: against that model's reference when
    the window is its traffic alone, left out when another version answered some of it."""
    from roomsight import registry

    pack = registry.load_model(registry.ModelRef("roomtype", "1"))

    class AsVersion2:  # the same network answering as another version: only the version differs
        meta, version = pack.meta, "2"

        @staticmethod
        def predict(images):  # noqa: ANN001, ANN205 - the pack's own signature
            return pack.predict(images)

    log_traffic(logged, AsVersion2, scenes(20, seed=3000), "eu-west")
    since, model_side = time.time() - 3600, {"max_softmax", "energy", "embedding_distance"}
    mixed, _ = drift.check(settings, logged, drift.Window(since=since, region="eu-west"))
    one, _ = drift.check(settings, logged, drift.Window(since=since, region="eu-west", model_version="1"))
    assert mixed.n_current == 80 and not model_side & set(mixed.columns)
    assert one.n_current == 60 and model_side <= set(one.columns)


def test_too_small_a_window_is_a_clear_error(settings, logged):
    with pytest.raises(DriftError, match="only 0 logged prediction"):
        drift.check(settings, logged, drift.Window(since=time.time() + 60, region="eu-west", model_version="1"))
    with pytest.raises(DriftError, match="only 0"):
        drift.check(settings, logged, drift.Window(since=time.time() + 60))


def test_a_region_or_version_never_logged_is_named_not_blamed_on_the_window(settings, logged):
    """A mistyped --region or --model used to be told to widen the window."""
    with pytest.raises(DriftError) as info:
        drift.check(settings, logged, drift.Window(since=time.time() - 3600, region="ap-south", model_version="7"))
    assert str(info.value) == ("no prediction in the log is from region 'ap-south' (logged: eu-west, us-east); "
                               "no prediction in the log was served by model version 7 (logged: 1)")


def test_model_is_a_version_number_or_a_uri_of_the_logged_model(settings):
    """--model models:/roomtype/2 was taken as the version "models:/roomtype/2", which no prediction has."""
    from monitoring.cli import served_version
    from roomsight.errors import UserError

    assert served_version(settings, "2") == served_version(settings, "models:/roomtype/2") == "2"
    assert served_version(settings, "models:/roomtype@champion") == "1"
    with pytest.raises(UserError, match="not a version of 'roomtype'"):
        served_version(settings, "models:/other/2")
    with pytest.raises(UserError, match=r"--model takes a version number \(2\), models:/NAME/VERSION"):
        served_version(settings, "v2")


def test_cli_report_takes_a_model_uri(settings, logged):
    from shell.cli import app

    result = CliRunner().invoke(app, ["drift", "report", "--since", "1h", "--region", "eu-west", "--model",
                                      "models:/roomtype/1", "--json"], env={"ROOMSIGHT_HOME": str(settings.home)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["compared"] == "all 60 predictions in the window"


def test_gate_evidence_per_rollout_comes_from_the_latest_check(settings, logged):
    from monitoring.drift_checks import evidence, run_check

    assert evidence(logged, settings, "r-night")["drift_alarm"] is None, "no check yet: no drift evidence"
    run_check(settings, logged, "r-clean")
    run_check(settings, logged, "r-night")
    clean = evidence(logged, settings, "r-clean")
    night = evidence(logged, settings, "r-night")
    assert clean["drift_alarm"] == 0.0 and clean["ood_share"] < 0.05
    assert night["drift_alarm"] == 1.0 and night["ood_share"] >= 0.3 and night["drifted_share"] > 0
    assert 0 <= night["drift_age_s"] < 60
    few = settings.model_copy(update={"monitoring": settings.monitoring.model_copy(update={"min_window": 1000,
                                                                                        "drift_sample": 1000})})
    with pytest.raises(DriftError, match="only 60 logged prediction"):
        run_check(few, logged, "r-night")

    from rollout.evidence import collect

    assert collect(logged, settings, "r-night").get("drift_alarm") == 1.0


def test_a_large_window_is_compared_on_a_seeded_uniform_sample_shown_in_the_report(settings, logged):
    sampled = settings.model_copy(update={"monitoring": settings.monitoring.model_copy(
        update={"min_window": 20, "drift_sample": 40, "drift_sample_seed": 3})})
    window = drift.Window(since=time.time() - 3600)
    rep = drift.report(sampled, logged, window)
    res = rep.result
    assert (res.n_current, res.n_window, res.sample_seed) == (40, 120, 3) and res.sampled
    assert res.compared() == "a uniform sample of 40 of the window's 120 predictions (seed 3)"
    page = rep.html.read_text()
    top = page[page.index("<body"):]
    assert top.index(res.compared()) < top.index("<div", top.index("roomsight-headline") + 1), "named at the top of the page"
    assert json.loads(rep.json.read_text())["summary"]["n_window"] == 120
    again = drift.check(sampled, logged, window)[0]
    assert (again.flag_counts, again.predicted_share) == (res.flag_counts, res.predicted_share), "same seed, same sample"
    whole = drift.check(settings, logged, window)[0]
    assert (whole.n_current, whole.sampled) == (120, False) and whole.compared() == "all 120 predictions in the window"


def test_reports_made_in_the_same_second_are_kept_apart_in_time_order(tmp_path, monkeypatch):
    """Report files were named to the second: a second report within it (another region's run of the
    same name, another --model) overwrote the first's HTML and JSON, and its email attached the wrong page."""
    from tests.conftest import settings_for

    class Snapshot:
        def __init__(self, n: int) -> None:
            self.n = n

        def save_html(self, path: str) -> None:
            Path(path).write_text(f"<html><body>report {self.n}</body></html>")

        def dict(self) -> dict:
            return {"n": self.n}

    stamps = iter([1_800_000_000.25, 1_800_000_000.75, 1_800_000_000.75])
    made = iter(range(3))

    def check(settings, engine, window):  # noqa: ANN001, ANN202 - drift.check's signature
        result = drift.DriftResult(window="w", reference_model="models:/roomtype/1", n_reference=1, n_current=1,
                                   columns={}, drifted_share=0.0, ood_share=0.0, reference_ood_share=0.0,
                                   flag_counts={}, held_counts={}, predicted_share={}, alarm=False,
                                   created_at=next(stamps))
        return result, Snapshot(next(made))

    monkeypatch.setattr(drift, "check", check)
    settings = settings_for(tmp_path)
    reports = [drift.report(settings, None, drift.Window(region="eu-west")) for _ in range(3)]
    assert len({r.html for r in reports}) == len({r.json for r in reports}) == 3
    for n, rep in enumerate(reports):
        assert f"report {n}" in rep.html.read_text() and json.loads(rep.json.read_text())["evidently"] == {"n": n}
    # To the millisecond, so that names sort in time order; the same millisecond twice gets a count.
    assert [r.html.name for r in reports] == ["drift-20270115T080000.250Z-eu-west.html",
                                              "drift-20270115T080000.750Z-eu-west.html",
                                              "drift-20270115T080000.750Z-eu-west-2.html"]
    assert [r.json.stem for r in reports] == [r.html.stem for r in reports]


class Inbox:
    def __init__(self) -> None:
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802 - aiosmtpd's handler hook
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def test_cli_report_emails_the_summary(settings, logged):
    from shell.cli import app

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        env = {"ROOMSIGHT_HOME": str(settings.home), "ROOMSIGHT_SMTP__HOST": "127.0.0.1", "ROOMSIGHT_SMTP__PORT": str(port),
               "ROOMSIGHT_SMTP__SECURITY": "none"}
        result = CliRunner().invoke(app, ["drift", "report", "--since", "1h", "--region", "us-east", "--email",
                                          "ops@example.org", "--json"], env=env)
        assert result.exit_code == 0, result.output
        out = json.loads(result.stdout)
        assert out["alarm"] and out["emailed"] == ["ops@example.org"]
        assert out["compared"] == "all 60 predictions in the window"
        (msg,) = inbox.messages
        assert "ALARM" in msg["Subject"] and "ops@example.org" in msg["To"]
        assert "night_time" in msg.get_body(("html",)).get_content()
        (att,) = list(msg.iter_attachments())
        assert att.get_filename() == Path(out["html"]).name and att.get_payload(decode=True) == Path(out["html"]).read_bytes()

        from monitoring.watch import watch

        outcomes = []
        watch(settings.model_copy(update={"smtp": settings.smtp.model_copy(update={"host": "127.0.0.1", "port": port,
                                                                                     "security": "none"})}),
              logged, every_s=0.1, since_s=3600, region=None, recipients=["ops@example.org"], iterations=2,
              on_outcome=outcomes.append)
        assert [o.emailed for o in outcomes] == [True, True] and len(inbox.messages) == 3
    finally:
        controller.stop()

    bad = CliRunner().invoke(app, ["drift", "report", "--since", "1h", "--region", "ap-south"],
                             env={"ROOMSIGHT_HOME": str(settings.home)})
    assert bad.exit_code == 1 and "no prediction in the log is from region 'ap-south'" in " ".join(bad.output.split())
