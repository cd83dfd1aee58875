"""Notifications without a network: the Slack and generic payloads, the text of a rollout email, the
choice of example photos for a drift email, and the `notify.*` settings (refused naming the key, the URL
never shown)."""

from __future__ import annotations

import json

import pytest

from monitoring.drift_mail import pick, spread
from monitoring.notify import messages, payloads
from roomsight.config import load_settings
from roomsight.errors import ConfigError
from roomsight.events import EVENT_TYPES, DriftAlarm, RolloutEvent

SECRET_URL = "https://hooks.slack.com/services/T0001/B0002/Xyz-SECRET-part"

PROMOTE = RolloutEvent(
    action="promote", rollout_id="0f1e2d3c-aaaa-bbbb-cccc-000000000001", from_stage="shadow", to_stage="limited",
    champion="models:/roomtype/1", candidate="models:/roomtype/2", actor="alice", reason="shadow looks clean",
    from_step="1/7 shadow", to_step="2/7 limited eu-west 10%", step=1,
    ts=1_790_000_000.0, regions=("eu-west",), region_percent=10.0, run_id="run123",
    numbers={"agreement": 0.973, "candidate_error_rate": 0.0, "candidate_p99_ms": 41.6, "reviewed": 120.0,
             "precision_margin": -0.012, "drift_alarm": 0.0, "not_headline": 5.0},
    conditions=({"name": "agreement >= 0.9", "kind": "gate", "outcome": "pass", "detail": "0.973"},
                {"name": "reviewed >= 200", "kind": "gate", "outcome": "inconclusive", "detail": "120 so far; 80 more wanted"}),
    forced=True)
ALARM = DriftAlarm(window="2026-09-21 10:00 UTC to now, region ap-south", reference_model="models:/roomtype/1",
                   n_current=90, drifted_share=0.41, ood_share=0.3, reference_ood_share=0.02,
                   reasons=("30% of photos out-of-domain (alarm at 10%)",), ts=1_790_000_100.0, region="ap-south",
                   drifted_columns=("brightness", "out_of_domain"), flag_counts={"night_time": 27},
                   report="/home/x/reports/drift.html")


def test_generic_payload_carries_every_documented_key():
    body = payloads.generic(PROMOTE, "d-1")
    assert json.loads(json.dumps(body)) == body  # plain JSON
    assert body["schema"] == "roomsight.event/v1" and body["id"] == "d-1" and body["event"] == "promote"
    assert body["time"] == "2026-09-21T14:13:20Z" and body["rollout_id"] == PROMOTE.rollout_id
    assert body["stage"] == {"from": "shadow", "to": "limited"}
    assert body["step"] == {"from": "1/7 shadow", "to": "2/7 limited eu-west 10%", "index": 1}
    assert (body["champion"], body["candidate"], body["actor"], body["reason"]) == (
        "models:/roomtype/1", "models:/roomtype/2", "alice", "shadow looks clean")
    assert body["numbers"]["agreement"] == 0.973 and body["numbers"]["not_headline"] == 5.0
    assert body["forced"] is True and body["conditions"][1]["outcome"] == "inconclusive" and body["mlflow_run_id"] == "run123"
    assert body["regions"] == ["eu-west"] and body["region_percent"] == 10.0 and body["percent"] == 0
    assert "10% of listings in eu-west" in body["summary"] and "forced" in body["summary"]

    drift = payloads.generic(ALARM, "d-2")
    assert drift["event"] == "drift-alarm" and drift["region"] == "ap-south" and drift["rollout_id"] is None
    assert drift["numbers"] == {"predictions": 90, "drifted_share": 0.41, "ood_share": 0.3, "reference_ood_share": 0.02}
    assert drift["drifted_columns"] == ["brightness", "out_of_domain"] and drift["flag_counts"] == {"night_time": 27}
    assert drift["report"] == ALARM.report and drift["reasons"] == list(ALARM.reasons)


def test_slack_payload_is_a_valid_incoming_webhook_message():
    for event in (PROMOTE, ALARM):
        body = payloads.slack(event, "d-1")
        assert set(body) == {"text", "blocks"} and body["text"].startswith(":")
        kinds = [b["type"] for b in body["blocks"]]
        assert kinds[0] == "header" and kinds[-1] == "context" and set(kinds) <= {"header", "section", "context"}
        assert len(body["blocks"][0]["text"]["text"]) <= 150 and body["blocks"][0]["text"]["type"] == "plain_text"
        for block in body["blocks"]:
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
            if "text" in block and block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
    text = json.dumps(payloads.slack(PROMOTE, "d-1"))
    assert "97.3%" in text and "42 ms" in text and "-1.2%" in text and "no alarm" in text  # headline numbers
    assert "not_headline" not in text and "Not passed: reviewed &gt;= 200 (inconclusive)" in text and "forced" in text
    assert "ALARM" not in text and "30.0%" in json.dumps(payloads.slack(ALARM, "d"))


def test_counts_read_whole_however_large():
    """Counts went through the 4-significant-digit format: 12,345 requests read "1.234e+04" in Slack and in
    the rollout email, and a drift alarm over 20,000 predictions "2e+04"."""
    assert payloads.number("requests", 12345.0) == "12,345" and payloads.number("reviewed", 120.0) == "120"
    big = DriftAlarm(**{**ALARM.__dict__, "n_current": 20_000})
    fields = [f["text"] for b in payloads.slack(big, "d")["blocks"] for f in b.get("fields", [])]
    assert "*predictions*\n20,000" in fields and big.headline().endswith("over 20,000 predictions")
    event = PROMOTE.__class__(**{**PROMOTE.to_dict(), "numbers": {"requests": 1_234_567.0, "compared": 10_000.0},
                                 "conditions": PROMOTE.conditions})
    _, text, _ = messages.rollout_email(event)
    assert "requests  1,234,567" in text and "compared  10,000" in text and "e+0" not in text


def test_slack_blocks_are_cut_to_block_kits_limits():
    """The events above stay far inside the limits; these do not."""
    many = payloads._fields([(f"k{i}", "v" * 3000) for i in range(12)])
    assert len(many["fields"]) == 10 and all(len(f["text"]) == 2000 for f in many["fields"])
    odd = PROMOTE.__class__(**{**PROMOTE.to_dict(), "action": "a" * 200, "conditions": PROMOTE.conditions})
    header = payloads.slack(odd, "d")["blocks"][0]["text"]["text"]
    assert len(header) == 150 and header.endswith("…")


def test_slack_text_is_escaped_and_cut():
    """A reason is free text: it must not ping a channel, link somewhere, or push a block past its limit."""
    loud = PROMOTE.__class__(**{**PROMOTE.to_dict(), "reason": "<!channel> see <https://x.example|this> & " + "z" * 5000,
                                "regions": ("eu-west",), "conditions": PROMOTE.conditions})
    body = payloads.slack(loud, "d")
    reason = next(b for b in body["blocks"] if b["type"] == "section" and "Reason" in b.get("text", {}).get("text", ""))
    shown = reason["text"]["text"]
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown and "&amp;" in shown
    assert len(shown) <= 3000 and shown.endswith("…")


def test_rollout_email_text_stands_on_its_own():
    subject, text, html = messages.rollout_email(PROMOTE)
    assert subject.startswith("[roomsight] rollout 0f1e2d3c: models:/roomtype/2 promoted 1/7 shadow -> 2/7 limited eu-west 10%")
    for line in ("Stage:", "1/7 shadow -> 2/7 limited eu-west 10% (10% of listings in eu-west)", "Actor:", "alice", "Reason:",
                 "shadow looks clean", "MLflow run:", "run123", "Forced:", "agreement", "97.3%",
                 "candidate_p99_ms", "42 ms", "PASS agreement >= 0.9: 0.973", "INCONCLUSIVE reviewed >= 200: 120 so far; 80 more wanted"):
        assert line in text, line
    assert "open it in" not in text and "<" not in text
    assert "97.3%" in html and "INCONCLUSIVE reviewed &gt;= 200: 120 so far" in html


def row(rid, flags=(), scores=None, **desc):
    return {"request_id": rid, "ts": 1_790_000_000.0, "region": "ap-south", "label": "kitchen",
            "ood": {"flags": list(flags), "scores": scores or {}}, "descriptors": desc}


def test_example_photos_flagged_first_then_furthest_from_the_reference():
    rows = [row("a", brightness=0.5), row("b", ["night_time"], {"night_time": 0.7}, brightness=0.1),
            row("c", brightness=0.05), row("d", ["night_time", "blur"], {"night_time": 0.95, "blur": 0.6}),
            row("e", brightness=0.3), row("f")]
    ref = {"brightness": (0.5, 0.1)}  # median, IQR
    chosen = pick(rows, ref, limit=4)
    assert [c.request_id for c in chosen] == ["d", "b", "c", "e"]
    assert chosen[0].why == "flagged night_time, blur (night_time 0.95)"
    assert chosen[2].why == "brightness below the reference by 4.5 IQR"
    assert [c.request_id for c in pick(rows, {}, limit=10)] == ["d", "b"]  # nothing drifted: flagged only
    assert pick(rows, ref, limit=0) == []
    assert spread([0.2] * 10) is None and spread([1, 2]) is None and spread([1, 2, 3, 4, 5]) == (3, 2)


def _load(**env):
    return load_settings(environ={"ROOMSIGHT_HOME": "/tmp/roomsight-notify-cfg", **env})


def test_webhook_settings_parse_and_never_show_the_url():
    s = _load(ROOMSIGHT_NOTIFY__WEBHOOKS=json.dumps([{"url": SECRET_URL, "kind": "slack", "events": ["rollback"]},
                                                     {"url": "http://127.0.0.1:9/x", "name": "ops-bridge"}]))
    slack, generic = s.notify.webhooks
    assert slack.kind == "slack" and slack.events == ("rollback",) and generic.events == EVENT_TYPES
    assert slack.label == "slack webhook at hooks.slack.com" and generic.label == "ops-bridge"
    assert "SECRET" not in repr(s) and "SECRET" not in str(s.notify)


@pytest.mark.parametrize("webhooks,key,says", [
    ([{"url": "ftp://hooks.example/T/SECRET"}], "notify.webhooks.0.url", "http:// or https:// URL"),
    ([{"url": "https:///SECRET"}], "notify.webhooks.0.url", "with a host"),
    ([{"url": SECRET_URL, "kind": "teams"}], "notify.webhooks.0.kind", "'slack' or 'generic'"),
    ([{"url": SECRET_URL, "events": ["promoted"]}], "notify.webhooks.0.events", "unknown event 'promoted'"),
    ([{"url": SECRET_URL, "events": []}], "notify.webhooks.0.events", "at least 1"),
    ([{"url": SECRET_URL, "retries": -1}], "notify.webhooks.0.retries", "greater than or equal to 0"),
    ([{"url": SECRET_URL, "timeout_s": 0}], "notify.webhooks.0.timeout_s", "greater than 0"),
    ([{"url": SECRET_URL, "retry": 2}], "notify.webhooks.0.retry", "no such setting"),
    ([{"kind": "slack"}], "notify.webhooks.0.url", "Field required"),
    (SECRET_URL, "notify.webhooks", "should be a list"),  # a bare URL instead of a list of webhooks
    ([SECRET_URL], "notify.webhooks.0", "should be a mapping"),
])
def test_bad_webhook_settings_name_the_key_and_not_the_url(webhooks, key, says):
    raw = webhooks if isinstance(webhooks, str) else json.dumps(webhooks)
    with pytest.raises(ConfigError) as info:
        _load(ROOMSIGHT_NOTIFY__WEBHOOKS=raw)
    assert f"{key} (env" in str(info.value) and says in str(info.value), str(info.value)
    assert "SECRET" not in str(info.value)


def test_email_events_need_smtp_and_are_rollout_events_only():
    with pytest.raises(ConfigError, match=r"notify \(env ROOMSIGHT_NOTIFY\): .*email_events needs smtp.host"):
        _load(ROOMSIGHT_NOTIFY__EMAIL_EVENTS='["rollback"]')
    smtp = {"ROOMSIGHT_SMTP__HOST": "localhost", "ROOMSIGHT_SMTP__RECIPIENTS": '["ops@example.org"]'}
    with pytest.raises(ConfigError, match="notify.email_events .*unknown event 'drift-alarm'"):
        _load(ROOMSIGHT_NOTIFY__EMAIL_EVENTS='["drift-alarm"]', **smtp)
    assert _load(ROOMSIGHT_NOTIFY__EMAIL_EVENTS='["rollback", "auto-rollback"]', **smtp).notify.email_events == (
        "rollback", "auto-rollback")


def test_slack_shows_every_headline_number_of_a_full_evidence():
    """The control plane's evidence has every metric, so every headline number is shown: Block Kit's ten fields a
    section left the eleventh, drift_alarm, out of every Slack message, an auto-pause for drift included."""
    numbers = {name: 1.0 if name == "drift_alarm" else 0.5 for name in payloads.HEADLINE}
    event = PROMOTE.__class__(**{**PROMOTE.to_dict(), "action": "auto-pause", "numbers": numbers,
                                 "conditions": PROMOTE.conditions})
    blocks = payloads.slack(event, "d")["blocks"]
    fields = [f["text"] for b in blocks for f in b.get("fields", [])]
    assert "*drift_alarm*\nALARM" in fields
    assert all(len(b.get("fields", [])) <= 10 for b in blocks)


def test_a_cut_never_leaves_half_an_escape():
    """Escaped first and cut after, a reason of ampersands was cut through an entity and showed `&am…`."""
    for shift in range(6):
        cut = payloads._cut("x" * shift + "&amp;" * 10, 12)
        assert len(cut) <= 12 and cut.endswith("…")
        assert all(part.startswith("amp;") for part in cut[:-1].split("&")[1:]), cut
