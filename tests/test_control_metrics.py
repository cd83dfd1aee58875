"""`GET /metrics` of the control API over real HTTP (uvicorn, a real MLflow registry, SQLite log and review
queue): it passes `promtool check metrics`; each condition's and analysis's outcome is the one `rollout
status` gives (a rollout whose candidate is wrong on every reviewed disagreement shows its analysis as
fail); the candidate's share per region follows a promotion; the review items are the queue's; a scrape
token reads the series and nothing else. No Ray."""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollout.api import create_app
from rollout.report.live import LiveReport
from tests.test_control_api import OLGA, TOKENS
from tests.test_control_openapi import shadow_rollout
from tests.test_review_web import running

SCRAPE = {"prometheus": "scrape-only-token"}
PROMETHEUS = {"Authorization": "Bearer scrape-only-token"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by name and sorted labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def outcome_of(found: dict, name: str, **labels: str) -> str:
    """The outcome whose series is 1 for a labelled outcome gauge (exactly one must be)."""
    ones = [dict(k)["outcome"] for (n, k), v in found.items()
            if n == name and v == 1.0 and all(dict(k).get(a) == b for a, b in labels.items())]
    assert len(ones) == 1, (name, labels, ones)
    return ones[0]


def scrape(cp, check=None):
    live = LiveReport(cp)  # never asked for, so never built
    with running(create_app(cp, TOKENS, report=live, scrape_tokens=SCRAPE)) as url, \
            httpx.Client(base_url=url, timeout=120) as http:
        r = http.get("/metrics", headers=PROMETHEUS)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain")
        if check:
            check(http)
        return r


def promtool_ok(body: bytes) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus)")
    check = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()


def test_an_analysis_that_fails_reads_fail_as_status_judges_it(settings) -> None:
    cp, rid, given = shadow_rollout(settings, n=600, verdicts=80, champion_right=1.0)

    def only_metrics(http: httpx.Client) -> None:
        for path in ("/metrics", "/api/status"):
            assert http.get(path).status_code == 401
        assert http.get("/api/status", headers=PROMETHEUS).status_code == 401  # the scrape token reads nothing else
        assert http.post("/api/rollback", json={"reason": "x"}, headers=PROMETHEUS).status_code == 401
        assert http.get("/metrics", headers=OLGA).status_code == 200  # an operator may read them too

    r = scrape(cp, only_metrics)
    promtool_ok(r.content)
    status = cp.status()
    found = samples(r.text)
    quality = next(c for c in status.exit if c.kind == "analysis")
    assert quality.outcome == "fail", quality.detail  # the candidate is wrong wherever the two disagree
    assert outcome_of(found, "roomsight_rollout_analysis", analysis="quality") == "fail"
    assert outcome_of(found, "roomsight_rollout_exit_outcome") == "fail"
    for role, results in (("exit", status.exit), ("watch", status.watch)):
        for c in results:
            assert outcome_of(found, "roomsight_rollout_condition", condition=c.name, role=role) == c.outcome, c.name
    assert {dict(k)["condition"] for (n, k) in found if n == "roomsight_rollout_condition"} == {c.name for c in status.exit}
    difference = {dict(k)["bound"]: v for (n, k), v in found.items() if n == "roomsight_rollout_analysis_difference"}
    assert difference["upper"] < 0 and difference["lower"] <= difference["estimate"] <= difference["upper"]
    assert found[("roomsight_rollout_analysis_verdicts", (("analysis", "quality"),))] == quality.analysis.n > 0
    assert found[("roomsight_rollout_evidence", (("metric", "compared"),))] == status.evidence["compared"] > 0
    assert found[("roomsight_rollout_stage", (("stage", "shadow"),))] == 1.0
    assert found[("roomsight_rollout_step", ())] == 1.0
    # The queue's own counts: every verdict given resolved one item (one reviewer, no second opinions).
    assert found[("roomsight_review_items", (("status", "resolved"),))] == given == 80
    assert found[("roomsight_review_items", (("status", "pending"),))] > 0
    assert ("roomsight_rollout_info", (("candidate", "2"), ("champion", "1"), ("rollout_id", rid))) in found


def test_share_per_region_and_outcomes_follow_a_promotion(settings) -> None:
    cp, _, _ = shadow_rollout(settings, n=120, verdicts=10, champion_right=0.5)
    before = samples(scrape(cp).text)
    assert outcome_of(before, "roomsight_rollout_analysis", analysis="quality") == "inconclusive"
    assert {dict(k)["region"]: v for (n, k), v in before.items() if n == "roomsight_rollout_candidate_share"} == {
        "eu-west": 0.0, "us-east": 0.0, "ap-south": 0.0}

    cp.promote("limited", ("us-east",), percent=50, force=True, reason="metrics test")
    r = scrape(cp)
    promtool_ok(r.content)
    after = samples(r.text)
    assert {dict(k)["region"]: v for (n, k), v in after.items() if n == "roomsight_rollout_candidate_share"} == {
        region: cp.current().state.candidate_share(region) for region in ("eu-west", "us-east", "ap-south")} == {
        "eu-west": 0.0, "us-east": 0.5, "ap-south": 0.0}
    assert after[("roomsight_rollout_stage", (("stage", "limited"),))] == 1.0
    assert after[("roomsight_rollout_step", ())] == 2.0
    # The limited step's exit has no analysis; the guard now watches the budget and the plan's watch list.
    watched = {dict(k)["condition"] for (n, k), v in after.items() if n == "roomsight_rollout_condition"
               and dict(k)["role"] == "watch"}
    assert {"budget", "analysis quality", "drift_alarm <= 0"} <= watched, watched

    cp.rollback("metrics test done")
    r = scrape(cp)
    promtool_ok(r.content)  # families without samples outside a rollout are still well formed
    idle = samples(r.text)
    assert idle[("roomsight_rollout_stage", (("stage", "stable"),))] == 1.0
    assert not [k for k in idle if k[0] in ("roomsight_rollout_condition", "roomsight_rollout_analysis",
                                            "roomsight_review_items", "roomsight_rollout_exit_outcome")]
