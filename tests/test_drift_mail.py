"""Drift alarms reach people: `rollout drift report --email` over a real registered model's reference and a
real SQLite log sends, through a real SMTP server (aiosmtpd), a text/plain part with the headline numbers
and the window's out-of-domain photos from the review photo store inline (bounded in number and size),
and posts the alarm to a webhook on a real local HTTP receiver; `rollout drift watch` with webhooks and
no email configured posts its alarms there."""

from __future__ import annotations

import email
import io
import json
import re
import time
import uuid
from email import policy

import pytest
from aiosmtpd.controller import Controller
from PIL import Image
from sqlalchemy import insert, select
from typer.testing import CliRunner

from monitoring.shifts import shift
from monitoring.descriptors import describe
from monitoring.ood import Calibration
from monitoring.reference import model_descriptors
from monitoring.review.photos import PhotoStore
from roomsight.tables import predictions
from tests.conftest import free_port
from tests.receiver import Receiver
from tests.test_drift import scenes

ROLLOUT = "r-night-" + uuid.uuid4().hex[:8]


def log_with_photos(settings, engine, images, region: str) -> None:
    """What the ingress logs and keeps for each image: descriptors, flags, and the photo in the store."""
    from roomsight import registry

    pack = registry.load_model(registry.ModelRef("roomtype", "1"))
    cal, store, rows = Calibration.from_reference(pack.meta.reference), PhotoStore.for_settings(settings), []
    for i, (im, out) in enumerate(zip(images, pack.predict(images))):
        desc = describe(im, n_bytes=2000)
        desc.update(model_descriptors(out.logits, out.embedding, pack.meta.reference["embedding"]))
        rid = str(uuid.uuid4())
        rows.append({"request_id": rid, "ts": time.time() + i * 1e-3, "rollout_id": ROLLOUT, "stage": "limited",
                     "listing_id": f"L{i}", "region": region, "served_by": "champion", "label": out.label,
                     "score": out.score, "latency_ms": 10.0, "champion_version": pack.version,
                     "champion_scores": out.probs, "ood": cal.assess(desc).to_dict(), "descriptors": desc})
        store.put_image(rid, im.resize((256, 256)))
    with engine.begin() as conn:
        conn.execute(insert(predictions), rows)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802 - aiosmtpd's handler hook
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@pytest.fixture
def night_log(settings):
    from roomsight.db import engine_for

    engine = engine_for(settings.db_url)
    log_with_photos(settings, engine, [shift(im, "night_street", 0.7, (3, i)) if i % 3 == 0 else im
                                       for i, im in enumerate(scenes(60, seed=4000))], "ap-south")
    return engine


def flagged_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return {r.request_id for r in conn.execute(select(predictions.c.request_id, predictions.c.ood))
                if (r.ood or {}).get("flags")}


def test_drift_report_email_has_text_numbers_and_flagged_photos_inline_and_the_alarm_is_posted(settings, night_log):
    from shell.cli import app

    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with Receiver() as hook:
            env = {"ROOMSIGHT_HOME": str(settings.home), "ROOMSIGHT_SMTP__HOST": "127.0.0.1",
                   "ROOMSIGHT_SMTP__PORT": str(port), "ROOMSIGHT_SMTP__SECURITY": "none",
                   "ROOMSIGHT_MONITORING__EMAIL_PHOTOS": "3", "ROOMSIGHT_MONITORING__EMAIL_PHOTO_PX": "96",
                   "ROOMSIGHT_NOTIFY__WEBHOOKS": json.dumps([{"url": hook.url + "/drift", "events": ["drift-alarm"]}])}
            result = CliRunner().invoke(app, ["drift", "report", "--since", "1h", "--region", "ap-south", "--email",
                                              "ops@example.org", "--json"], env=env)
            assert result.exit_code == 0, result.output
            out = json.loads(result.stdout)
            (alarm,) = hook.bodies()
    finally:
        controller.stop()
    assert out["alarm"] and out["notified"] == [{"target": "generic webhook at 127.0.0.1", "delivered": True, "error": None}]
    assert alarm["event"] == "drift-alarm" and alarm["region"] == "ap-south" and alarm["report"] == out["html"]
    assert alarm["numbers"]["ood_share"] == out["ood_share"] and alarm["numbers"]["predictions"] == 60
    assert "night_time" in alarm["flag_counts"] and alarm["drifted_columns"] == out["drifted_columns"]

    (msg,) = inbox.messages
    text = msg.get_body(("plain",)).get_content()
    assert "ALARM" in text and f"Out-of-domain share:     {out['ood_share']:.1%}" in text
    assert f"Predictions compared:    all 60 predictions in the window" in text and f"night_time: {out['flag_counts']['night_time']}" in text
    assert "Example photos (inline in the HTML version):" in text and "open it in" not in text
    # The test's model is one network (no cross-fitting): its reference is its validation photos only.
    assert f"Reference:               models:/roomtype/1, {out['n_reference']} validation photos" in text.splitlines()
    assert "trained and validated" not in text and "trained and validated" not in msg.get_body(("html",)).get_content()

    # Three inline photos (monitoring.email_photos), each the out-of-domain photo of a logged request,
    # at most 96 px (monitoring.email_photo_px), each referenced by the HTML.
    html_part = msg.get_body(("related",))
    html = msg.get_body(("html",)).get_content()
    images = [p for p in html_part.iter_parts() if p.get_content_type() == "image/jpeg"]
    assert len(images) == 3
    flagged = flagged_ids(night_log)
    for i, part in enumerate(images, 1):
        assert f'src="cid:{part["Content-ID"].strip("<>")}"' in html
        assert max(Image.open(io.BytesIO(part.get_content())).size) <= 96
        request = re.search(r"example\d+\.([0-9a-f-]{36})@", part["Content-ID"])[1]
        assert request in flagged and f"{i}. ap-south, answered" in text and request[:8] in text
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename().endswith(".html")


def test_drift_watch_with_webhooks_and_no_email_posts_its_alarms(settings, night_log):
    from shell.cli import app

    with Receiver() as hook:
        env = {"ROOMSIGHT_HOME": str(settings.home), "ROOMSIGHT_NOTIFY__WEBHOOKS": json.dumps([{"url": hook.url, "kind": "slack"}])}
        result = CliRunner().invoke(app, ["drift", "watch", "--times", "1", "--since", "1h", "--region", "ap-south"], env=env)
        assert result.exit_code == 0, result.output
        bodies = hook.bodies()
    assert len(bodies) == 1, result.output  # what the watch said of its report and its deliveries
    (alarm,) = bodies
    out = " ".join(result.output.split())
    assert "no email (smtp.host or smtp.recipients not set); alarms to 1 webhook(s)" in out
    assert "ALARM" in out and "drift-alarm delivered to slack webhook at 127.0.0.1" in out
    assert alarm["text"].startswith(":warning: roomsight: drift alarm in ap-south")

    # Without webhooks for drift alarms, a watch that could not email is refused before any report.
    bare = CliRunner().invoke(app, ["drift", "watch", "--times", "1"], env={"ROOMSIGHT_HOME": str(settings.home)})
    assert bare.exit_code == 1 and "email is not configured" in " ".join(bare.output.split())


@pytest.mark.parametrize("ends_in_s", [None, 3600.0], ids=["open to now", "ending after the check"])
def test_example_photos_are_from_what_the_check_read(settings, night_log, ends_in_s):
    """A window was read again for its example photos after the check, so a photo logged in between could be
    shown as evidence for a report that never compared it: with no end, or with one the log had not reached
    when it was checked (a watch's window ends when its run starts, and the log's flush writes a row later
    than the request it dates)."""
    from monitoring import drift
    from monitoring.drift_mail import example_photos

    window = drift.Window(rollout_id=ROLLOUT, until=None if ends_in_s is None else time.time() + ends_in_s)
    result, _ = drift.check(settings, night_log, window)
    before = flagged_ids(night_log)
    time.sleep(0.01)
    night = [shift(im, "night_street", 0.9, (5, i)) for i, im in enumerate(scenes(6, seed=77))]
    log_with_photos(settings, night_log, night, "ap-south")
    later = flagged_ids(night_log) - before
    assert later, "the photos logged after the check are flagged, so they would be picked first"
    shown = {p.example.request_id for p in example_photos(settings, night_log, window, result)}
    assert shown and shown <= before
