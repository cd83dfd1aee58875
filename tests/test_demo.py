"""`rollout demo` end to end at a reduced size: it must tell the whole story and leave its outputs."""

import pytest


@pytest.mark.ray
def test_demo_runs_the_whole_story(tmp_path, ray_session, serve_port):
    from rich.console import Console

    from rollout.demo import run_demo

    summary = run_demo(run_dir=tmp_path / "run", port=serve_port, console=Console(quiet=True), scale=0.3)
    stages = [s["stage"] for s in summary["steps"]]
    assert stages[0] == "limited" and stages[-1] == "full" and stages.count("gradual") == 4
    assert all(g["passed"] for s in summary["steps"] for g in s["gates"])
    assert summary["bad_refused"] is True
    assert summary["final_state"]["stage"] == "stable"
    assert summary["final_state"]["champion"]["version"] == "2"  # the good candidate stayed champion
    actions = [e["action"] for e in summary["history"]]
    assert actions[0] == "rollback" and "start" in actions and actions.count("promote") == 6
    assert (tmp_path / "run" / "home" / "mlflow.db").exists() and (tmp_path / "run" / "home" / "roomsight.db").exists()
    # the regional shift to night-time / low-resolution photos was reported, and the email arrived
    assert summary["drift_alarm"] is True and summary["ood_share"] > 0.3
    from pathlib import Path

    assert Path(summary["drift_html"]).exists()
    mail = Path(summary["email"]).read_text(errors="replace")
    assert "team@roomsight.demo" in mail and "drift ALARM" in mail and ".html" in mail


@pytest.mark.parametrize("answered,truth,verdict", [("kitchen", "kitchen", "correct"), ("bedroom", "kitchen", "wrong"),
                                                   ("unsure", "kitchen", "unsure")])
def test_the_traffic_tally_counts_an_abstention_apart_from_a_mistake(answered, truth, verdict):
    from rollout.demo import _verdict

    assert _verdict(answered, truth) == verdict
