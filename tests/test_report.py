"""The rollout report over real parts: prediction rows written through the LogWriter into SQLite (and
PostgreSQL for the time buckets), photos in the review photo store, verdicts through the review queue,
the control plane's gates and a real MLflow registry for the events and the attached report. No Ray."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import event, select
from typer.testing import CliRunner

from roomsight import registry
from roomsight.db import engine_for
from roomsight.tables import predictions
from shell.cli import app as cli
from rollout.evidence import log_evidence
from rollout.report import Condition, ReportInput, attach_event_report, gather, verdict, write_report
from rollout.report.series import bucket_width, planned_share, traffic
from rollout.report.thumbs import MAX_OOD, MAX_WRONG, THUMB_PX
from tests.conftest import settings_for
from tests.report_world import REGIONS, assert_self_contained, log_traffic, report_plan_file, review, started


# -- tests -----------------------------------------------------------------------------------------------
def test_report_shows_the_decision_with_the_gates_own_numbers(settings, tmp_path) -> None:
    cp, rid = started(settings)
    log_traffic(settings, cp.engine, rid, 240)
    assert review(settings, cp.engine, rid, 45) >= 30  # the shadow exit asks for 30
    status = cp.status()
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--plan", str(report_plan_file(tmp_path)), "report", "--out", str(out)],
                                env={"ROOMSIGHT_HOME": str(settings.home)})
    assert result.exit_code == 0, result.output
    html = out.read_text()
    page = assert_self_contained(html)

    # The verdict is the gates' verdict: precision_margin fails on these verdicts, the counts pass.
    gates = {g.name: g for g in status.exit}
    assert gates["precision_margin >= 0"].outcome == "fail" and gates["compared >= 30"].passed
    assert 'data-verdict="failing"' in html and "Not ready for 2/7 limited" in html
    assert f"precision_margin &gt;= 0: {gates['precision_margin >= 0'].value:.4g}" in html
    assert f"compared &gt;= 30: {gates['compared >= 30'].value:.4g}" in html
    assert f"<dt>compared</dt><dd>{int(status.evidence['compared']):,}</dd>" in html
    assert f"<dt>candidate p99</dt><dd>{status.evidence['candidate_p99_ms']:,.0f} ms</dd>" in html

    # Segments with Wilson intervals, per region, per predicted class and per out-of-domain flag.
    for group, value in (("region", "ap-south"), ("predicted class", "kitchen"), ("out-of-domain", "night_time")):
        assert re.search(rf"by {group}</th></tr>.*?<td>{value}</td>", html, re.S), group
    # Precision to a tenth of a percent (0.996 is not 100%), with its interval.
    assert len(re.findall(r"<b>\d+\.\d%</b> <span class=\"muted\">\d+–\d+%</span>", html)) >= 20

    plots = page.images("png")
    assert len(plots) == 5 and all(p.width >= 700 for p in plots)
    thumbs = page.images("jpeg")
    assert 2 <= len(thumbs) <= MAX_WRONG + MAX_OOD and all(max(t.size) <= THUMB_PX for t in thumbs)
    shown = [a["src"] for t, a in page.tags if t == "img" and a["src"].startswith("data:image/jpeg")]
    assert len(set(shown)) == len(shown)  # each photo once
    assert "Reviewed disagreements the candidate got wrong" in html and "night_time" in html
    assert len(re.findall(r'<div class="card(?: card--alarm)?">', html)) == 3  # a drift headline per region
    assert "No verdicts yet" not in html and "No traffic" not in html


def test_a_rollout_with_no_traffic_or_no_verdicts_says_so_in_words(settings, tmp_path) -> None:
    cp, rid = started(settings)
    html = write_report(cp, tmp_path / "empty.html").read_text()
    page = assert_self_contained(html)
    assert not page.images("png") and not page.images("jpeg")
    assert "No traffic has been logged for this rollout yet" in html and "No verdicts yet" in html
    assert 'data-verdict="waiting"' in html  # counts not reached: waiting, not failing

    log_traffic(settings, cp.engine, rid, 60, regions=("eu-west",))
    html = write_report(cp, tmp_path / "traffic.html").read_text()
    page = assert_self_contained(html)
    assert len(page.images("png")) == 4  # all but reviewed precision
    assert "Reviewed precision: no verdicts yet for this rollout." in html and "No verdicts yet" in html


def test_everything_user_supplied_is_escaped(settings, tmp_path) -> None:
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    cp, rid = started(settings, reason=hostile)
    log_traffic(settings, cp.engine, rid, 30, caption=hostile, regions=("ap-south", hostile))
    review(settings, cp.engine, rid, 30, champion_right=1.0)
    html = write_report(cp, tmp_path / "r.html").read_text()
    assert_self_contained(html)  # no script element, no on* attribute was injected
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in html


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_time_buckets_add_up_to_the_gate_evidence(db, tmp_path, request) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}" if db == "sqlite" else request.getfixturevalue("postgres_url")
    engine = engine_for(url)  # with the rollup triggers the evidence counts come from
    settings = settings_for(tmp_path)
    rid = str(uuid.uuid4())
    log_traffic(settings, engine, rid, 500, span_s=3 * 3600, candidate_regions=("eu-west",), stage="limited")
    log_traffic(settings, engine, str(uuid.uuid4()), 50, seed=1)  # another rollout beside it
    s = traffic(engine, rid)
    ev = log_evidence(engine, settings, rid)
    assert s is not None and s.width == 300 and len(s.times) <= 60
    assert s.total == ev["requests"] == 500
    assert sum(s.compared) == ev["compared"]
    assert 1 - sum(s.disagreements) / sum(s.compared) == pytest.approx(ev["agreement"])
    assert sum(sum(r.candidate_served) for r in s.regions.values()) == ev["candidate_served"]
    assert sum(s.candidate_calls) == ev["candidate_requests"] and sum(s.candidate_errors) == ev["candidate_errors"]
    assert set(s.regions) == set(REGIONS) and sum(s.regions["eu-west"].requests) == 167
    # Every bucket holds the requests logged in its interval.
    with engine.connect() as conn:
        times = sorted(conn.execute(select(predictions.c.ts).where(predictions.c.rollout_id == rid)).scalars())
    for i, t0 in enumerate(s.times):
        assert s.requests[i] == sum(1 for t in times if t0 <= t < t0 + s.width)
    # Buckets of whole minutes come from the rollup the triggers keep, latencies included: the same numbers
    # as the rows they count.
    from rollout.report import series

    lo, hi = series.span(engine, rid)
    key = lambda r: (int(r[0]), r[1])  # noqa: E731
    kept = sorted(series._from_minutes(engine, rid, s.times[0], s.width, lo, hi), key=key)
    counted = sorted(series._from_log(engine, rid, s.times[0], s.width, lo, hi), key=key)
    assert [key(r) for r in kept] == [key(r) for r in counted]
    for a, b in zip(kept, counted):
        assert [int(x or 0) for x in a[2:8]] == [int(x or 0) for x in b[2:8]]
        assert [float(x or 0) for x in a[8:]] == pytest.approx([float(x or 0) for x in b[8:]])
    assert any(r[9] for r in kept) and any(r[12] for r in kept)  # both models' latencies were timed
    engine.dispose()


def test_the_report_never_reads_every_row_of_a_rollout(settings) -> None:
    cp, rid = started(settings)
    log_traffic(settings, cp.engine, rid, 120)
    reviewed = review(settings, cp.engine, rid, 20)
    statements: list[str] = []
    event.listen(cp.engine, "before_cursor_execute", lambda *a: statements.append(a[2].lower()))
    inp = ReportInput(rid, cp.current().state.to_dict(), "default", (), None, None, (), {})
    views = gather(cp, inp, drift=lambda _rid, _n: [])
    assert views.series is not None and 10 < views.reviews.reviewed <= reviewed  # some wait for a second opinion
    reads = [s for s in statements if "from predictions" in s]
    assert reads
    for sql in reads:
        assert any(k in sql for k in ("group by", "limit", "request_id in", "count(*)", "min(predictions.ts)",
                                      "max(predictions.ts)")), sql


def test_a_report_is_attached_to_each_event_run(settings) -> None:
    cp, rid = started(settings)
    log_traffic(settings, cp.engine, rid, 90)
    review(settings, cp.engine, rid, 30)
    promoted = cp.promote("limited", ("eu-west",), force=True, reason="margin noisy; watch eu-west")
    assert attach_event_report(cp, promoted, "margin noisy; watch eu-west") == "report.html"
    rolled = cp.rollback("night photos in ap-south")
    assert attach_event_report(cp, rolled, "night photos in ap-south") == "report.html"

    client = registry.client()
    for outcome, words in ((promoted, ["report at promote to 2/7 limited eu-west 100%", "forced past conditions",
                                       "Conditions checked for 2/7 limited", 'data-stage="limited"']),
                           (rolled, ["Rolled back", "night photos in ap-south", 'data-verdict="ended"'])):
        assert [a.path for a in client.list_artifacts(outcome.run_id)] == ["evidence.json", "report.html"]
        html = open(client.download_artifacts(outcome.run_id, "report.html")).read()
        assert_self_contained(html)
        for w in words:
            assert w in html, w
    # A report that cannot be written never fails the change it describes.
    broken = type(promoted)(**{**promoted.__dict__, "run_id": "no-such-run"})
    assert attach_event_report(cp, broken, None) is None


def test_report_on_a_past_rollout_and_bad_options(settings, tmp_path) -> None:
    cp, rid = started(settings)
    log_traffic(settings, cp.engine, rid, 60)
    cp.promote("limited", ("eu-west",), force=True, reason="try it")
    cp.rollback("too many disagreements")
    env = {"ROOMSIGHT_HOME": str(settings.home)}
    out = tmp_path / "past.html"
    r = CliRunner().invoke(cli, ["report", "--rollout", rid[:8], "--out", str(out)], env=env)
    assert r.exit_code == 0, r.output
    html = out.read_text()
    assert rid in html and 'data-verdict="ended"' in html and "too many disagreements" in html
    assert "Conditions for 2/7 limited" in html and "precision_margin" in html  # the gates its promote was checked on

    r = CliRunner().invoke(cli, ["report", "--out", str(tmp_path / "latest.html")], env=env)
    assert r.exit_code == 0 and "reporting on the most recent one" in r.output and rid in (tmp_path / "latest.html").read_text()
    r = CliRunner().invoke(cli, ["report", "--rollout", "zzzz", "--out", str(out)], env=env)
    assert r.exit_code == 1 and "no such rollout" in r.output and rid in r.output.replace("\n", "")
    r = CliRunner().invoke(cli, ["report", "--out", str(tmp_path / "report.txt")], env=env)
    assert r.exit_code == 1 and "give a .html file name" in " ".join(r.output.split())


def test_limited_names_its_regions_share_and_a_rollout_at_full_is_reported_from_its_events(settings, tmp_path) -> None:
    cp, rid = started(settings)
    cp.promote("limited", ("eu-west",), percent=40, force=True, reason="try it")
    html = write_report(cp, tmp_path / "limited.html").read_text()
    assert "40% of listings in eu-west" in html  # the regions' share, not the share of all listings (0%)

    cp.promote("full", force=True, reason="ship it")
    assert not cp.current().state.in_progress and cp.current().state.rollout_id == rid  # full keeps the id
    env = {"ROOMSIGHT_HOME": str(settings.home)}
    for args in ([], ["--rollout", rid[:8]]):
        out = tmp_path / f"full{len(args)}.html"
        r = CliRunner().invoke(cli, ["report", *args, "--out", str(out)], env=env)
        assert r.exit_code == 0, r.output
        html = out.read_text()
        assert rid in html and 'data-verdict="ended"' in html and "ship it" in html, args
        assert ("reporting on the most recent one" in r.output) == (not args)


# -- pure parts ------------------------------------------------------------------------------------------
def test_conditions_read_gates_and_analysis_results() -> None:
    from analysis import AnalysisResult, SegmentResult
    from rollout import conditions
    from rollout.plan import AnalysisRef, Gate

    gate = Condition.from_dict(conditions.gate(Gate(metric="compared", min=30), {"compared": 12}).to_dict())
    assert (gate.outcome, gate.summary) == ("inconclusive", "compared >= 30: 12 so far; 18 more wanted")
    result = AnalysisResult("quality", "fail", "candidate worse on night_time photos in ap-south", -0.18, -0.29, -0.07,
                            140, None, (SegmentResult("region", "ap-south", "fail", -0.18, -0.29, -0.07, 40, 0.1, True,
                                                      "photos in ap-south"),))
    analysis = Condition.from_dict(conditions.analysis(AnalysisRef(analysis="quality"), result).to_dict())
    assert analysis.kind == "analysis" and analysis.numbers["value"] == -0.18 and analysis.segments[0].value == "ap-south"
    with pytest.raises(ValueError, match="unknown outcome"):
        Condition.from_dict({"name": "x", "outcome": "maybe"})

    base = ReportInput("r1", {"champion": {"name": "m", "version": "1"}, "stage": "shadow"}, "default", (), 0, "limited", (), {})
    assert verdict(base).kind == "ready"
    waiting = ReportInput(**{**base.__dict__, "conditions": (Condition("compared", "gate", "inconclusive", "compared >= 30: 3"),)})
    assert verdict(waiting).kind == "waiting" and "compared >= 30: 3" in verdict(waiting).detail
    failing = ReportInput(**{**waiting.__dict__, "conditions": waiting.conditions + (analysis,)})
    assert verdict(failing).kind == "failing" and "night_time" in verdict(failing).detail
    assert verdict(ReportInput(**{**base.__dict__, "rollout_id": None})).title == "No rollout in progress"


def test_planned_share_follows_the_recorded_events() -> None:
    def at(t, **state):
        base = {"champion": {"name": "m", "version": "1"}, "candidate": {"name": "m", "version": "2"}, "rollout_id": "r"}
        return {"time": t, "to": state["stage"], "state": {**base, **state}}

    events = [at(100, stage="shadow"), at(200, stage="limited", regions=["eu-west"], region_percent=50),
              at(300, stage="gradual", regions=["eu-west"], region_percent=100, percent=25)]
    times = [0, 150, 250, 350]
    assert planned_share(events, "eu-west", times, 10) == [0, 0, 0.5, 1.0]
    assert planned_share(events, "us-east", times, 10) == [0, 0, 0, 0.25]
    assert bucket_width(3600) == 60 and bucket_width(3 * 3600) == 300 and bucket_width(20) == 1


def test_with_no_rollout_the_report_says_so_and_shows_recent_events() -> None:
    from rollout.report.build import Views
    from rollout.report.render import render

    events = ({"time": 1.7e9, "action": "rollback", "to": "stable", "actor": "guard", "reason": "error budget", "forced": False},)
    idle = ReportInput(None, {"champion": {"name": "roomtype", "version": "3"}, "stage": "stable"}, "default", (), None,
                       None, (), {}, events=events)
    html = render(idle, Views())
    assert_self_contained(html)
    assert 'data-verdict="idle"' in html and "models:/roomtype/3 answers every request" in html
    assert "error budget" in html and 'id="plots"' not in html


def test_the_report_of_a_start_after_full_is_about_the_new_rollout() -> None:
    """The state after full still names the finished rollout; the report attached to the next start must show
    the new one (its id, its events, its traffic), not the rollout that ended."""
    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState
    from rollout import stages
    from rollout.control import Outcome
    from rollout.report.inputs import from_outcome
    from tests.plans import open_plan

    plan = open_plan()
    first = RoutingState(champion=ModelRef("roomtype", "1"))
    begun = stages.start(first, ModelRef("roomtype", "2"), "first", plan, 0.0)
    full = stages.advance(begun, plan, len(plan.steps) - 1, 1.0)
    again = stages.start(full, ModelRef("roomtype", "1"), "second", plan, 2.0)
    events = [{"time": 2.0, "action": "start", "rollout_id": "second"},
              {"time": 1.0, "action": "promote", "rollout_id": "first"},
              {"time": 0.0, "action": "start", "rollout_id": "first"}]
    inp = from_outcome(Outcome("start", full, again), plan, events, "t", None)
    assert inp.rollout_id == "second" and [e["rollout_id"] for e in inp.events] == ["second"]
    assert from_outcome(Outcome("promote", begun, full), plan, events, "t", None).rollout_id == "first"


def test_the_headline_agreement_is_shown_to_the_tenth_as_status_shows_it() -> None:
    """Rounded to the percent, an agreement of 0.496 failing `agreement >= 0.5` read "50%" above the
    condition that failed on it."""
    from types import SimpleNamespace

    from rollout.report.render import kpis

    shown = dict(kpis(SimpleNamespace(evidence={"agreement": 0.496}), None))
    assert shown["agreement"] == "49.6%"


def test_the_inlined_styles_are_the_stylesheet_as_written() -> None:
    """Autoescaped like a value, the stylesheet's quotes became `&#34;` inside <style>, where HTML does not
    decode entities: the font declaration and the done step's check mark were dropped as invalid CSS."""
    from rollout.report.build import Views
    from rollout.report.render import assets_dir, render

    idle = ReportInput(None, {"champion": {"name": "roomtype", "version": "3"}, "stage": "stable"}, "default", (), None,
                       None, (), {})
    html = render(idle, Views())
    css = (assets_dir() / "report.css").read_text(encoding="utf-8")
    assert f"<style>{css}</style>" in html


def test_error_plot_ticks_and_bounds_read_as_distinct_percentages(monkeypatch) -> None:
    """Rounded to the percent, the error plot's axis under the default 2% budget read 0%, 0%, 1%, 2%, 2%, 2%, and a
    0.5% budget's line was labelled "at most 0%"."""
    from rollout.report import plots
    from rollout.report.series import Series

    drawn = []
    encode = plots._encode
    monkeypatch.setattr(plots, "_encode", lambda fig: drawn.append(fig) or encode(fig))
    n = 3
    s = Series(width=60, times=[1.7e9 + 60 * i for i in range(n)], requests=[10] * n, compared=[10] * n,
               disagreements=[1] * n, candidate_calls=[100] * n, candidate_errors=[0, 1, 0],
               candidate_ms_mean=[None] * n, candidate_ms_max=[None] * n, champion_ms_mean=[None] * n,
               champion_ms_max=[None] * n)
    for budget, words in ((0.02, "budget: at most 2%"), (0.005, "budget: at most 0.5%")):
        assert plots.errors(s, [], budget) is not None
        ax = drawn[-1].axes[0]
        ticks = [t.get_text() for t in ax.get_yticklabels()]
        assert len(set(ticks)) == len(ticks), ticks
        assert words in [t.get_text() for t in ax.get_legend().get_texts()]
    assert plots.agreement(s, [], 0.955) is not None
    assert "gate: at least 95.5%" in [t.get_text() for t in drawn[-1].axes[0].get_legend().get_texts()]


def test_a_past_rollout_recorded_before_events_kept_the_state_is_reported_from_the_tags() -> None:
    """Its state was made of the stage and models alone, and the template's regions and percent of a limited or
    gradual step raised UndefinedError: no report at all."""
    from rollout.plan import load_plan
    from rollout.report.build import Views
    from rollout.report.inputs import from_events
    from rollout.report.render import render

    def event(t: float, action: str, src: str, dst: str, regions: str = "", percent: str = "") -> dict:
        return {"time": t, "action": action, "rollout_id": "r1", "from": src, "to": dst, "actor": "ann", "reason": "",
                "forced": False, "champion": "models:/roomtype/1", "candidate": "models:/roomtype/2",
                "regions": regions, "percent": percent, "conditions": [], "state": None}

    start = event(1.0, "start", "stable", "shadow")
    limited = event(2.0, "promote", "shadow", "limited", "eu-west", "50")  # before steps: within its regions
    gradual = event(3.0, "promote", "limited", "gradual", "eu-west", "25")
    for events, words in (([limited, start], "50% of listings in eu-west"),
                          ([gradual, limited, start], "25% of listings everywhere (all in eu-west)")):
        html = render(from_events("r1", load_plan(), events), Views())
        assert words in " ".join(html.split()), words


def test_the_report_of_a_start_or_rollback_does_not_say_no_step_is_left() -> None:
    """Neither change judges conditions for a next step; their reports said "No step left to promote to" of a
    rollout just started in shadow, with the whole plan ahead."""
    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState
    from rollout import stages
    from rollout.control import Outcome
    from rollout.report.build import Views
    from rollout.report.inputs import from_outcome
    from rollout.report.render import render
    from tests.plans import open_plan

    plan = open_plan()
    stable = RoutingState(champion=ModelRef("roomtype", "1"))
    begun = stages.start(stable, ModelRef("roomtype", "2"), "r1", plan, 0.0)
    events = [{"time": 0.0, "action": "start", "rollout_id": "r1", "to": "shadow", "actor": "ann", "reason": "",
               "forced": False}]
    for outcome in (Outcome("start", stable, begun), Outcome("rollback", begun, stable)):
        html = render(from_outcome(outcome, plan, events, "ann", "why"), Views())
        assert "No step left to promote to" not in html, outcome.action
        assert f"No conditions were judged at this {outcome.action}." in html


def test_a_region_with_dollar_signs_is_drawn_as_written(monkeypatch) -> None:
    """A region is what a /predict caller sent; matplotlib reads text between dollar signs as mathtext: `a$b$c`
    was drawn as a formula, and `eu$\\frac$west` failed the plot, and with it the whole report."""
    from rollout.report import plots
    from rollout.report.series import RegionSeries, Series

    drawn = []
    encode = plots._encode
    monkeypatch.setattr(plots, "_encode", lambda fig: drawn.append(fig) or encode(fig))
    n, regions = 3, ("a$b$c", "eu$\\frac$west")
    s = Series(width=60, times=[1.7e9 + 60 * i for i in range(n)], requests=[10] * n, compared=[10] * n,
               disagreements=[1] * n, candidate_calls=[100] * n, candidate_errors=[0, 1, 0],
               candidate_ms_mean=[None] * n, candidate_ms_max=[None] * n, champion_ms_mean=[None] * n,
               champion_ms_max=[None] * n, regions={r: RegionSeries([10] * n, [1] * n) for r in regions})
    assert plots.share(s, []) is not None
    legend = drawn[-1].axes[0].get_legend()
    assert [t.get_text().replace("\\$", "$") for t in legend.get_texts()][:2] == list(regions)
    assert not any(t._preprocess_math(t.get_text())[1] for t in legend.get_texts())  # none read as mathtext


def test_a_drift_card_says_when_its_region_was_compared_as_a_sample() -> None:
    """A region past monitoring.drift_sample is compared on a uniform sample: the card gave the sample's size as
    the region's requests, and called every reference "reference photos" whatever it holds."""
    from html import unescape

    from monitoring.drift import DriftResult
    from rollout.report.build import Views
    from rollout.report.regional_drift import RegionDrift
    from rollout.report.render import render

    result = DriftResult(window="rollout r1, region eu-west", reference_model="models:/roomtype/1", n_reference=900,
                         n_current=20000, columns={}, drifted_share=0.1, ood_share=0.01, reference_ood_share=0.01,
                         flag_counts={}, held_counts={}, predicted_share={}, alarm=False, n_window=52000,
                         sample_seed=7, reference_photos="validation photos")
    inp = ReportInput("r1", {"champion": {"name": "roomtype", "version": "1"}, "stage": "shadow"}, "default", (), 0,
                      None, (), {})
    html = unescape(" ".join(render(inp, Views(drift=[RegionDrift("eu-west", result)])).split()))
    assert "a uniform sample of 20,000 of the window's 52,000 predictions (seed 7)" in html
    assert "20,000 requests" not in html and "900 validation photos of models:/roomtype/1" in html


def test_a_past_rollout_the_guard_rolled_back_heads_its_conditions_as_what_it_acted_on() -> None:
    """The last event with conditions was the guard's rollback, whose conditions are the watched ones that failed:
    they were headed "Conditions for stable", as if stable were a step to promote to."""
    from rollout.plan import load_plan
    from rollout.report.build import Views
    from rollout.report.inputs import from_events
    from rollout.report.render import render

    state = {"champion": {"name": "roomtype", "version": "1"}, "candidate": {"name": "roomtype", "version": "2"},
             "rollout_id": "r1", "stage": "limited", "step": 1, "regions": ["eu-west"], "region_percent": 100.0,
             "percent": 0.0}
    failed = {"name": "budget", "kind": "budget", "outcome": "fail", "detail": "error rate 9% over 200 calls"}

    def event(t: float, action: str, src: str, dst: str, to_step: str, conditions: list, after: dict | None) -> dict:
        return {"time": t, "action": action, "rollout_id": "r1", "from": src, "to": dst, "to_step": to_step,
                "actor": "guard", "reason": "budget", "forced": False, "conditions": conditions, "state": after}

    events = [event(3.0, "auto-rollback", "limited", "stable", "stable", [failed],
                    {"champion": state["champion"], "stage": "stable"}),
              event(2.0, "promote", "shadow", "limited", "2/7 limited eu-west 100%", [], state),
              event(1.0, "start", "stable", "shadow", "1/7 shadow", [], {**state, "stage": "shadow", "step": 0})]
    html = render(from_events("r1", load_plan(), events), Views())
    assert "Conditions for stable" not in html and "error rate 9% over 200 calls" in html


def test_a_pause_is_marked_on_the_plots_as_a_pause(monkeypatch) -> None:
    """Its event's to_step is the step it held the rollout on: the line was labelled like a promotion to that step."""
    from rollout.report import plots
    from rollout.report.series import Series

    drawn = []
    encode = plots._encode
    monkeypatch.setattr(plots, "_encode", lambda fig: drawn.append(fig) or encode(fig))
    n, t0 = 3, 1.7e9
    s = Series(width=60, times=[t0 + 60 * i for i in range(n)], requests=[10] * n, compared=[10] * n,
               disagreements=[1] * n, candidate_calls=[100] * n, candidate_errors=[0, 1, 0],
               candidate_ms_mean=[None] * n, candidate_ms_max=[None] * n, champion_ms_mean=[None] * n,
               champion_ms_max=[None] * n)
    events = [{"time": t0 + 30, "action": "promote", "to": "gradual", "to_step": "3/7 gradual 10%"},
              {"time": t0 + 90, "action": "auto-pause", "to": "gradual", "to_step": "3/7 gradual 10%"}]
    assert plots.agreement(s, events, None) is not None
    assert [t.get_text() for t in drawn[-1].axes[0].texts] == ["3/7 gradual 10%", "auto-pause"]


def test_a_region_card_checks_the_regions_latest_window_as_the_gate_does(settings, monkeypatch) -> None:
    """The cards checked each region over the whole rollout while the drift_alarm gate reads the latest
    monitoring.drift_check_window predictions: a shift that began mid-rollout raised the gate beside cards
    that said no alarm."""
    from rollout.report import regional_drift

    windows = []
    monkeypatch.setattr(regional_drift, "check", lambda _s, _e, window: windows.append(window) or ("result", None))
    need = settings.monitoring.min_window
    cards = regional_drift.per_region(settings, None, "r1", {"eu-west": need, "us-east": need - 1})  # type: ignore[arg-type]
    assert [c.region for c in cards] == ["eu-west", "us-east"] and cards[1].result is None
    assert [(w.rollout_id, w.region, w.last) for w in windows] == [("r1", "eu-west", settings.monitoring.drift_check_window)]


def test_the_report_and_the_live_page_warn_of_changes_mlflow_has_not_recorded() -> None:
    """Both read the events from MLflow: with changes still in the outbox they showed a history short of them,
    and said nothing."""
    from types import SimpleNamespace

    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState
    from rollout.control import Status
    from rollout.plan import load_plan
    from rollout.report.build import Views, report_input
    from rollout.report.live import LiveReport
    from rollout.report.render import render

    state = RoutingState(champion=ModelRef("roomtype", "1"))
    past = {"time": 1.7e9, "action": "rollback", "from": "shadow", "to": "stable", "actor": "guard", "reason": "errors",
            "forced": False, "rollout_id": "r-past", "conditions": [], "evidence": {}, "state": state.to_dict()}
    pending = [3]
    control = SimpleNamespace(
        plan=load_plan(), history=lambda *_a, **_k: [past], current=lambda: SimpleNamespace(state=state, generation=1),
        status=lambda: Status(state, 1, 0.0, {}, None, None, [], [], unrecorded=pending[0]),
        events_without_run=lambda: [{**past, "run_id": None}] * pending[0])
    for rid in (None, "r-past"):
        html = render(report_input(control, rid), Views())  # type: ignore[arg-type]
        assert re.search(r'id="unrecorded"[^>]*><b>3 rollout changes not recorded in MLflow', html), rid
    live = LiveReport(control)  # type: ignore[arg-type]
    try:
        assert 'id="unrecorded"' in live.latest(wait_s=10).fragment
    finally:
        live.stop()
    pending[0] = 0
    assert 'id="unrecorded"' not in render(report_input(control), Views())  # type: ignore[arg-type]


def test_with_mlflow_out_of_reach_the_report_is_built_from_the_routing_database(settings, tmp_path, monkeypatch) -> None:
    """While MLflow was down, `rollout report` and its live page failed for every rollout, the one in progress
    included, though everything they show but the recorded events is in the routing database: the state, the
    conditions, the traffic, the verdicts, and the copies of the changes MLflow has not taken."""
    from roomsight.errors import RegistryError
    from rollout.control import ControlPlane
    from rollout.report.build import Views, latest_recorded, report_input, resolve_rollout
    from rollout.report.render import render
    from tests.conftest import free_port
    from tests.report_world import REPORT_PLAN

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a refused connection needs no retries to show
    cp, past = started(settings)
    cp.rollback("the first candidate was withdrawn")
    cp, rid = started(settings)
    log_traffic(settings, cp.engine, rid, 40)
    down = ControlPlane(settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}"}),
                        REPORT_PLAN, actor="guard")
    assert down.pause("drift in eu-west").mlflow_pending  # goes ahead, its record waits in the outbox

    inp = report_input(down)
    assert inp.rollout_id == rid and inp.state["held"] == "drift in eu-west" and "MLflow" in (inp.history_unreachable or "")
    assert [e["action"] for e in inp.events] == ["auto-pause"] and inp.unrecorded == 1 and inp.unrecorded_shown
    assert inp.evidence["requests"] == 40  # read from the log, as always
    html = render(inp, gather(down, inp))
    assert 'id="unreachable"' in html and "drift in eu-west" in html
    assert re.search(r'id="unrecorded"[^>]*><b>1 rollout change not recorded in MLflow yet:</b>\s*this report shows it', html)
    assert resolve_rollout(down, rid[:8]) == rid and latest_recorded(down) == rid
    with pytest.raises(RegistryError):  # its changes are all in MLflow, which is out of reach
        report_input(down, past)

    up = ControlPlane(settings, REPORT_PLAN, actor="alice")  # MLflow is back; the pause is not caught up yet
    inp = report_input(up)
    assert inp.history_unreachable is None and not inp.unrecorded_shown and inp.unrecorded == 1
    assert [e["action"] for e in inp.events] == ["start"]
    assert 'id="unreachable"' not in render(inp, Views()) and report_input(up, past).rollout_id == past


def test_a_report_reads_the_outbox_once_so_the_changes_it_shows_are_those_it_counts(settings, monkeypatch) -> None:
    """With MLflow out of reach, a report read the outbox to show the changes MLflow lacks, then again to count
    them: one that MLflow took in between (another process caught up) was shown and not counted, the warning
    saying "1 rollout change not recorded in MLflow yet: this report shows it" over the two it showed."""
    from sqlalchemy import update

    from roomsight.errors import RegistryError
    from roomsight.tables import rollout_outbox
    from rollout import outbox, records
    from rollout.control import ControlPlane
    from rollout.report.build import report_input
    from tests.plans import open_plan

    def mlflow_away(*_a, **_k):  # noqa: ANN202 - any MLflow call while MLflow is away
        raise RegistryError("MLflow is out of reach")

    cp = ControlPlane(settings, open_plan(), actor="dana")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    monkeypatch.setattr(records, "record", mlflow_away)
    assert "record" in cp.promote("limited").mlflow_pending and "record" in cp.pause("drift in eu-west").mlflow_pending
    monkeypatch.setattr(records, "history", mlflow_away)
    assert [e["action"] for e in outbox.events_without_run(cp.engine)] == ["promote", "auto-pause"]

    with cp.engine.connect() as conn:
        oldest = conn.execute(select(rollout_outbox.c.generation).where(rollout_outbox.c.run_id.is_(None))
                              .order_by(rollout_outbox.c.generation)).scalars().first()
    reads: list[str] = []  # the statements reading the outbox's changes
    caught_up: list[bool] = []

    def catch_up_after_the_first_read(_conn, _cursor, statement: str, *_a) -> None:  # noqa: ANN001 - SQLAlchemy's
        if reads and not caught_up:  # MLflow takes the oldest change waiting, right after the report's first read
            caught_up.append(True)
            with cp.engine.begin() as other:
                other.execute(update(rollout_outbox).where(rollout_outbox.c.generation == oldest).values(run_id="run-x"))
        if re.match(r"\s*SELECT rollout_outbox\.event\b", statement):
            reads.append(statement)

    event.listen(cp.engine, "before_cursor_execute", catch_up_after_the_first_read)
    try:
        inp = report_input(cp)
    finally:
        event.remove(cp.engine, "before_cursor_execute", catch_up_after_the_first_read)
    assert caught_up and inp.rollout_id == rid and inp.history_unreachable
    assert [e["action"] for e in inp.events] == ["promote", "auto-pause"] and inp.unrecorded_shown
    assert inp.unrecorded == len(inp.events) and len(reads) == 1


def test_a_past_rollout_none_of_whose_changes_mlflow_has_yet_is_reported_from_the_outbox(tmp_path) -> None:
    """Its start and rollback both waited in the outbox (MLflow down for both, back before the catch-up):
    `rollout report --rollout` answered that the rollout had no recorded events, as if it never happened,
    instead of the report and its warning that MLflow lacks them."""
    from types import SimpleNamespace

    from roomsight.errors import UserError
    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState, Stage
    from roomsight.tables import rollout_outbox
    from rollout import outbox
    from rollout.control import Status
    from rollout.plan import load_plan
    from rollout.records import Event
    from rollout.report.build import Views, report_input, resolve_rollout
    from rollout.report.render import render

    engine = engine_for(f"sqlite:///{tmp_path / 'waiting.db'}")
    stable = RoutingState(champion=ModelRef("roomtype", "1"))
    shadow = RoutingState(champion=stable.champion, stage=Stage.SHADOW, candidate=ModelRef("roomtype", "2"),
                          rollout_id="r-waiting", step=0)
    for gen, (action, before, after, reason) in enumerate(
            [("start", stable, shadow, ""), ("auto-rollback", shadow, stable, "budget: error rate 0.3")], 1):
        _, row = outbox.new_row(Event(action, before, after, "guard", reason, False, [], {"compared": 12.0},
                                      gen, "stable", "1/7 shadow"), 1.7e9 + gen)
        with engine.begin() as conn:
            conn.execute(rollout_outbox.insert().values(**row))
    control = SimpleNamespace(
        plan=load_plan(), engine=engine, history=lambda *_a, **_k: [],
        current=lambda: SimpleNamespace(state=stable, generation=2),
        status=lambda: Status(stable, 2, 0.0, {}, None, None, [], [], unrecorded=2),
        events_without_run=lambda: outbox.events_without_run(engine))

    assert resolve_rollout(control, "r-wait") == "r-waiting"  # type: ignore[arg-type]
    inp = report_input(control, "r-waiting")  # type: ignore[arg-type]
    assert [e["action"] for e in inp.events] == ["start", "auto-rollback"] and inp.unrecorded == 2
    assert verdict(inp).title == "Rolled back automatically" and verdict(inp).detail == "budget: error rate 0.3"
    html = render(inp, Views())
    assert re.search(r'id="unrecorded"[^>]*><b>2 rollout changes not recorded in MLflow yet:</b>\s*this report shows '
                     r"them as the routing database keeps them", html)
    with pytest.raises(UserError, match="no recorded events"):  # a rollout the outbox does not know of either
        report_input(control, "r-unknown")  # type: ignore[arg-type]
