"""`rollout demo` end to end at a reduced size: it must tell the whole story and leave its outputs."""

from pathlib import Path

import pytest


@pytest.mark.ray
def test_demo_runs_the_whole_story(tmp_path, ray_session, serve_port):
    from rich.console import Console

    from shell.demo import run_demo

    summary = run_demo(run_dir=tmp_path / "run", port=serve_port, console=Console(quiet=True), scale=0.3)
    # The good candidate left shadow and limited on passing exit conditions, by the demo's hand.
    moves = summary["steps"]
    assert [m["stage"] for m in moves[:2]] == ["limited", "gradual"]
    assert all(c["outcome"] == "pass" for m in moves[:2] for c in m["conditions"]) and not moves[0]["forced"]
    # ap-south's night-time shift during gradual was caught by the guard before full, as the plan says.
    caught = summary["caught"]
    assert caught is not None and caught["stage"] == "gradual"
    assert caught["action"] in ("auto-pause", "auto-rollback")
    failed = {c["name"] for c in caught["conditions"] if c["outcome"] == "fail"}
    assert failed & {"drift_alarm <= 0", "analysis quality"}, caught["conditions"]
    # ... the drift report went out by email, and the operator took a paused rollout to full on the record.
    assert summary["drift_alarm"] is True and summary["ood_share"] > 0.3
    assert Path(summary["drift_html"]).exists()
    mail = Path(summary["email"]).read_text(errors="replace")
    assert "team@roomsight.demo" in mail and "drift ALARM" in mail
    operator = [m for m in moves if m["actor"] == "operator"]
    if caught["action"] == "auto-pause":
        assert operator and operator[0]["stage"] == "full"
    # The swapped candidate, forced into limited, was taken off by the guard on the reviewed verdicts.
    bad = summary["swapped"]
    assert bad["action"] == "auto-rollback" and bad["step"].endswith("limited eu-west 100%") and bad["verdicts"] > 0
    assert summary["final_state"]["stage"] == "stable" and summary["final_state"]["candidate"] is None
    history = summary["history"]
    assert history[0]["action"] == "auto-rollback" and history[0]["actor"] == "guard"
    assert (tmp_path / "run" / "home" / "mlflow.db").exists() and (tmp_path / "run" / "home" / "roomsight.db").exists()

    # Replayed over the recorded rollout, the plan takes the decision the guard took live.
    from rollout.control import ControlPlane
    from rollout.plan import load_plan
    from rollout.replay import replay
    from shell.demo_parts import demo_settings

    settings = demo_settings(tmp_path / "run" / "home", serve_port)
    again = replay(ControlPlane(settings, load_plan(settings.plan), actor="test"), summary["swapped_rollout"])
    assert [a for _, a, _ in again.recorded] == ["auto-rollback"] and again.matches, again.lines


@pytest.mark.parametrize("answered,truth,verdict", [("kitchen", "kitchen", "correct"), ("bedroom", "kitchen", "wrong"),
                                                   ("unsure", "kitchen", "unsure")])
def test_the_traffic_tally_counts_an_abstention_apart_from_a_mistake(answered, truth, verdict):
    from shell.demo_parts import verdict as tally

    assert tally(answered, truth) == verdict


@pytest.mark.parametrize("fails_in", ["trainer", "start_review_server"])
def test_a_demo_that_fails_starting_up_stops_what_it_had_started(tmp_path, monkeypatch, fails_in):
    """The reviewer page's socket is claimed before training, and Serve starts before the reviewer page:
    a failure in between leaves neither behind."""
    import socket
    from types import SimpleNamespace

    from rich.console import Console

    import serving.runner
    import shell.demo
    from tests.conftest import free_port

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    stopped: list[bool] = []
    monkeypatch.setattr(shell.demo, "claim_ports", lambda settings, port: sock)
    monkeypatch.setattr(serving.runner, "start_serve", lambda settings: "http://127.0.0.1:1")
    monkeypatch.setattr(serving.runner, "stop_serve", lambda: stopped.append(True))

    def fail(*args, **kwargs):
        raise RuntimeError(fails_in)

    if fails_in == "start_review_server":
        monkeypatch.setattr(shell.demo, "ControlPlane", lambda *args, **kwargs: SimpleNamespace(current=dict, engine=None))
        monkeypatch.setattr(shell.demo, "start_review_server", fail)
    trainer = fail if fails_in == "trainer" else lambda *args, **kwargs: shell.demo.Models("1", None, None)
    with pytest.raises(RuntimeError, match=fails_in):
        shell.demo.run_demo(run_dir=tmp_path / "run", port=free_port(), console=Console(quiet=True), trainer=trainer)
    assert sock.fileno() == -1
    assert stopped == ([True] if fails_in == "start_review_server" else [])
