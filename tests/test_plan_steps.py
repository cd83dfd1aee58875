"""Plans as steps: what loads, what is refused at load (naming the step and key), old plans converted,
the README quoting the shipped plan as it is, and the plan in words."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from roomsight.errors import PlanError
from roomsight.regions import REGIONS
from roomsight.rollout_state import Stage
from rollout.plan import default_plan_path, load_plan
from rollout.plan_legacy import to_steps
from rollout.plan_text import describe

ROOT = Path(__file__).resolve().parents[1]


def plan_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def steps_plan(tmp_path: Path, steps: str, extra: str = "") -> Path:
    return plan_file(tmp_path, "regions: [eu-west, us-east]\n" + textwrap.dedent(extra) + "steps:\n" + textwrap.indent(textwrap.dedent(steps), "  "))


def test_shipped_plan_loads_as_steps():
    plan = load_plan()
    assert [s.kind for s in plan.steps] == [Stage.SHADOW, Stage.LIMITED] + [Stage.GRADUAL] * 4 + [Stage.FULL]
    assert [s.gradual.percent for s in plan.steps if s.gradual] == [10, 25, 50, 100]
    assert plan.step_label(3) == "4/7 gradual 25%"
    assert {c.on_fail for c in plan.watch} == {"rollback", "pause"}
    assert plan.regions == REGIONS  # the regions generated traffic and photos use are the shipped plan's


@pytest.mark.parametrize("steps, extra, message", [
    ("- sideways: {}\n- full: {}\n", "", r"steps\.0: .*unknown step key\(s\) 'sideways'"),
    ("- shadow: {}\n  limited: {}\n- full: {}\n", "", r"steps\.0: .*exactly one kind.*shadow, limited"),
    ("- shadow: {}\n- gradual: {percent: 10}\n- full: {}\n", "", r"steps\.1 \(gradual\): gradual before any limited step"),
    ("- limited: {regions: [eu-west]}\n- gradual: {percent: 50}\n- gradual: {percent: 25}\n- full: {}\n", "",
     r"steps\.2 \(gradual\)\.gradual\.percent: 25 does not grow from the previous gradual step's 50"),
    ("- limited: {regions: [eu-west, us-east]}\n- limited: {regions: [eu-west]}\n- full: {}\n", "",
     r"steps\.1 \(limited\)\.limited: .*not shrink"),
    ("- limited: {regions: [eu-west]}\n- shadow: {}\n- full: {}\n", "", r"steps\.1 \(shadow\): shadow after"),
    ("- shadow: {}\n- pause: {duration: soon}\n- full: {}\n", "", r"steps\.1\.pause\.duration: .*not a duration: 'soon'"),
    ("- shadow: {}\n  auto_advance: {after: 5 minutes}\n- full: {}\n", "", r"steps\.0\.auto_advance\.after: .*not a duration"),
    ("- shadow: {}\n- full: {}\n- limited: {regions: [eu-west]}\n", "", r"steps\.2 \(limited\): the last step must be `full`"),
    ("- shadow: {}\n", "", r"the last step must be `full`"),
    ("- limited: {regions: [eu-west]}\n- pause: {duration: 1h}\n  auto_advance: {after: 5m}\n- full: {}\n", "",
     r"steps\.1 \(pause\)\.auto_advance: the guard would not follow it"),
    ("- shadow: {}\n- full: {}\n  auto_advance: {after: 5m}\n", "", r"steps\.1 \(full\)\.auto_advance: the guard would not follow it"),
    ("- pause: {}\n- full: {}\n", "", r"steps\.0 \(pause\): a pause holds"),
    # `rollout start` enters the first step and names no regions: every start of such a plan was refused.
    ("- limited: {}\n- full: {}\n", "", r"steps\.0 \(limited\)\.limited\.regions: .* entered by `rollout start`"),
    ("- shadow: {}\n  auto_advance: {after: 5m}\n- limited: {}\n- full: {}\n", "",
     r"steps\.1 \(limited\)\.limited\.regions: its regions are named at promotion .* advances on its own"),
    ("- shadow: {}\n  exit: [{analysis: quality}]\n- full: {}\n", "", r"steps\.0 \(shadow\)\.exit\.0 names analysis 'quality'"),
    ("- shadow: {}\n  exit: [{metric: vibes, min: 1}]\n- full: {}\n", "", r"steps\.0\.exit\.0: .*unknown metric 'vibes'"),
    ("- shadow: {}\n  exit: [{metric: agreement, min: .nan}]\n- full: {}\n", "", r"steps\.0\.exit\.0\.min: .*finite"),
    ("- limited: {regions: [mars-north]}\n- full: {}\n", "", r"steps\.0 \(limited\)\.limited\.regions: \['mars-north'\]"),
    ("- shadow: {}\n  watch: [{metric: drift_alarm, max: 0, on_fail: panic}]\n- full: {}\n", "", r"steps\.0\.watch\.0\.on_fail"),
    # A bound the metric never reaches (a percent where a share is meant) makes a gate that never passes, or never fails.
    ("- shadow: {}\n  exit: [{metric: agreement, min: 50}]\n- full: {}\n", "",
     r"steps\.0\.exit\.0: agreement is a share from 0 to 1 \(not a percent\); got 50"),
    ("- limited: {regions: [eu-west]}\n  exit: [{metric: candidate_error_rate, max: 2}]\n- full: {}\n", "",
     r"steps\.0\.exit\.0: candidate_error_rate is a share from 0 to 1 \(not a percent\); got 2"),
    ("- shadow: {}\n- full: {}\n", "watch: [{metric: drifted_share, max: 30, on_fail: pause}]\n",
     r"watch\.0: drifted_share is a share from 0 to 1"),
    ("- shadow: {}\n  exit: [{metric: compared, min: -30}]\n- full: {}\n", "", r"steps\.0\.exit\.0: compared is never below 0; got -30"),
    ("- shadow: {}\n  exit: [{metric: precision_margin, min: -5}]\n- full: {}\n", "",
     r"steps\.0\.exit\.0: precision_margin is from -1 to 1; got -5"),
    # A gate is one bound: with both, one would be dropped; with neither, it could never be judged.
    ("- shadow: {}\n  exit: [{metric: agreement, min: 0.5, max: 0.9}]\n- full: {}\n", "",
     r"steps\.0\.exit\.0: .*needs exactly one of min or max"),
    ("- shadow: {}\n  exit: [{metric: agreement}]\n- full: {}\n", "", r"steps\.0\.exit\.0: .*needs exactly one of min or max"),
    ("- shadow: {}\n  exit: [{metric: candidate_error_rate, max: .nan}]\n- full: {}\n", "", r"steps\.0\.exit\.0\.max: .*finite"),
    # Shares and limits out of their range: a sample over 1, no listing at 0%, more than all of them, a budget
    # of more than every call failing or of no time at all.
    ("- shadow: {sample: 1.5}\n- full: {}\n", "", r"steps\.0\.shadow\.sample"),
    ("- limited: {regions: [eu-west], percent: 0}\n- full: {}\n", "", r"steps\.0\.limited\.percent"),
    ("- limited: {regions: [eu-west]}\n- gradual: {percent: 150}\n- full: {}\n", "", r"steps\.1\.gradual\.percent"),
    ("- shadow: {}\n- full: {}\n", "budget: {max_error_rate: 1.5}\n", r"budget\.max_error_rate"),
    ("- shadow: {}\n- full: {}\n", "budget: {max_p99_ms: 0}\n", r"budget\.max_p99_ms"),
])
def test_a_bad_plan_is_refused_naming_step_and_key(tmp_path, steps, extra, message):
    with pytest.raises(PlanError, match=message):
        load_plan(steps_plan(tmp_path, steps, extra))


@pytest.mark.parametrize("steps, extra, key, step", [
    ("- shadow: {}\n- gradual: {percent: 10}\n- full: {}\n", "", "steps.1", 1),
    ("- shadow: {}\n- pause: {duration: soon}\n- full: {}\n", "", "steps.1.pause.duration", 1),
    ("- limited: {regions: [eu-west]}\n- gradual: {percent: 50}\n- gradual: {percent: 25}\n- full: {}\n", "",
     "steps.2.gradual.percent", 2),
    ("- shadow: {}\n  exit: [{analysis: quality}]\n- full: {}\n", "", "steps.0.exit.0", 0),
    ("- shadow: {}\n- full: {}\n", "analyses:\n  q: {margin: 1.5}\n", "analyses.q.margin", None),
    # A window smaller than the calls the budget is judged from would never be judged: the guard would not act.
    ("- shadow: {}\n- full: {}\n", "budget: {window: 10}\n", "budget.window", None),
])
def test_a_plan_error_carries_its_key_and_step(tmp_path, steps, extra, key, step):
    with pytest.raises(PlanError) as info:
        load_plan(steps_plan(tmp_path, steps, extra))
    assert (info.value.key, info.value.step) == (key, step)


@pytest.mark.parametrize("regions, message", [
    ("[]", r"regions: .*at least one region"),
    ("[eu-west, us-east, eu-west]", r"regions: .*'eu-west' is named twice"),
    # No request can carry it: the limited step would never answer anyone.
    (f"[eu-west, {'r' * 65}]", r"regions: .* is longer than the 64 characters a request's region may be"),
])
def test_a_plan_without_regions_or_with_one_twice_is_refused(tmp_path, regions, message):
    """With none, every region a limited step or --regions names is refused: no rollout could answer users."""
    with pytest.raises(PlanError, match=message) as info:
        load_plan(plan_file(tmp_path, f"regions: {regions}\nsteps:\n  - shadow: {{}}\n  - limited: {{}}\n  - full: {{}}\n"))
    assert info.value.key == "regions"


def test_a_bad_analysis_is_refused_naming_the_key(tmp_path):
    for spec, key in (("{margin: 1.5}", "analyses.q.margin"), ("{margin: 0.02, min_count: 0}", "analyses.q.min_count"),
                      ("{margin: 0.02, segments: [weather]}", "analyses.q.segments")):
        with pytest.raises(PlanError, match=re.escape(key)):
            load_plan(steps_plan(tmp_path, "- shadow: {}\n- full: {}\n", f"analyses:\n  q: {spec}\n"))


def test_pause_and_auto_advance_durations(tmp_path):
    plan = load_plan(steps_plan(tmp_path, """\
        - shadow: {}
          auto_advance: {after: 30m}
        - limited: {regions: [eu-west]}
        - pause: {duration: 1h}
        - pause:
        - full:
        """))
    assert [s.wait_s for s in plan.steps] == [1800, None, 3600, None, None]
    text = "\n".join(describe(plan))
    assert "After 30m on it, the guard promotes by itself" in text and "for 1h" in text and "until someone promotes" in text


def test_an_old_plan_loads_as_the_steps_it_meant(tmp_path):
    old = plan_file(tmp_path, """\
        regions: [eu-west, us-east, ap-south]
        shadow: {sample: 0.5}
        limited: {regions: [eu-west], percent: 50}
        gradual: {steps: [20, 100]}
        gates:
          limited: [{metric: compared, min: 30}]
          gradual: [{metric: candidate_served, min: 20}]
          full: [{metric: candidate_served, min: 50}]
        budget: {max_error_rate: 0.1, max_p99_ms: 800, window: 50}
        """)
    plan = load_plan(old)
    assert [s.kind.value for s in plan.steps] == ["shadow", "limited", "gradual", "gradual", "full"]
    assert plan.steps[0].shadow.sample == 0.5 and plan.steps[1].limited.percent == 50
    assert [[c.name for c in s.exit] for s in plan.steps] == [
        ["compared >= 30"], ["candidate_served >= 20"], ["candidate_served >= 20"], ["candidate_served >= 50"], []]
    assert plan.budget.window == 50


@pytest.mark.parametrize("section, message", [
    # A gate given as text was split into its letters, each refused as a gate of every step it became.
    ("gates:\n  gradual: {metric: candidate_served, min: 20}\n", r"`gates\.gradual` must be a list of gates"),
    ("gates:\n  limited: compared\n", r"`gates\.limited` must be a list of gates"),
    # Only `steps` was read: another key beside it was dropped unseen.
    ("gradual: {steps: [20, 100], pace: 10m}\n", r"`gradual` holds only `steps`; got 'pace'"),
])
def test_an_old_plan_with_a_section_of_the_wrong_shape_is_refused_naming_it(tmp_path, section, message):
    old = plan_file(tmp_path, "regions: [eu-west]\nlimited: {regions: [eu-west]}\n" + section)
    with pytest.raises(PlanError, match=message):
        load_plan(old)


@pytest.mark.parametrize("gates, key", [
    ("gates:\n  gradual: [{metric: compared, min: 1}, {metric: vibes, min: 1}]\n", "gates.gradual.1"),
    ("gates:\n  full: [{metric: agreement, min: 50}]\n", "gates.full.0"),
    ("gates:\n  limited: [{metric: compared, min: 3, extra: 1}]\n", "gates.limited.0.extra"),
])
def test_a_bad_gate_in_an_old_plan_is_named_by_its_own_key(tmp_path, gates, key):
    """Checked after conversion, an old plan's bad gate was named by the steps it became ("steps.1.exit.1;
    steps.2.exit.1"), keys the old file does not have."""
    with pytest.raises(PlanError) as info:
        load_plan(plan_file(tmp_path, "regions: [eu-west]\nlimited: {regions: [eu-west]}\n" + gates))
    # Once, though `gates.gradual` guards several steps and each refused it.
    assert info.value.key == key and str(info.value).count(f"{key}: ") == 1 and "steps." not in str(info.value)


@pytest.mark.parametrize("gates, key, message", [
    ("gates:\n  full: [{analysis: nope}]\n", "gates.full.0", r"gates\.full\.0 names analysis 'nope', which"),
    ("gates:\n  gradual: [{metric: compared, min: 3, on_fail: pause}]\n", "gates.gradual.0.on_fail",
     r"gates\.gradual\.0: on_fail says what a watched condition's failure does"),
])
def test_an_old_gate_the_whole_plan_refuses_is_named_by_its_own_key(tmp_path, gates, key, message):
    """An old plan is checked once, as the steps it became: a gate refused by the plan's own checks (an analysis
    it does not define, on_fail where nothing is watched) is named by its key too, not by its step
    ("steps.5 (gradual).exit.0"), which the old file does not have."""
    with pytest.raises(PlanError, match=message) as info:
        load_plan(plan_file(tmp_path, "regions: [eu-west]\nlimited: {regions: [eu-west]}\n" + gates))
    assert info.value.key == key and info.value.step is None and "steps." not in str(info.value)


def test_plan_convert_prints_a_plan_that_loads(tmp_path):
    from typer.testing import CliRunner

    from shell.cli import app

    old = plan_file(tmp_path, "regions: [eu-west]\nlimited: {regions: [eu-west]}\ngates:\n  limited: [{metric: compared, min: 3}]\n")
    result = CliRunner().invoke(app, ["plan", "convert", str(old)])
    assert result.exit_code == 0, result.output
    new = tmp_path / "new.yaml"
    new.write_text(result.output)
    assert load_plan(new) == load_plan(old)
    result = CliRunner().invoke(app, ["plan", "convert", str(default_plan_path())])
    # The console wraps at its width, so where the message breaks depends on the checkout's path.
    assert result.exit_code == 1 and "not a plan in the old format" in " ".join(result.output.split())
    bad = plan_file(tmp_path, "regions: [eu-west]\nlimited: {regions: [eu-west]}\ngates:\n  full: [{metric: vibes, min: 1}]\n")
    result = CliRunner().invoke(app, ["plan", "convert", str(bad)])
    assert result.exit_code == 1 and "gates.full.0: unknown metric 'vibes'" in " ".join(result.output.split())


def test_readme_quotes_the_shipped_plan():
    readme = (ROOT / "README.md").read_text()
    quoted = re.search(r"<!-- plan:begin -->\n```yaml\n(.*?)```\n<!-- plan:end -->", readme, re.S)
    assert quoted, "the README quotes rollout/plans/default.yaml between <!-- plan:begin --> and <!-- plan:end -->"
    assert yaml.safe_load(quoted.group(1)) == yaml.safe_load(default_plan_path().read_text())


def test_legacy_conversion_is_what_promotions_used_to_check():
    raw = {"regions": ["eu-west"], "gradual": {"steps": [10, 100]},
           "gates": {"gradual": [{"metric": "compared", "min": 1}], "full": [{"metric": "compared", "min": 2}]}}
    steps = to_steps(raw)["steps"]
    assert [s.get("exit") for s in steps] == [[], [{"metric": "compared", "min": 1}], [{"metric": "compared", "min": 1}],
                                              [{"metric": "compared", "min": 2}], None]
    for gradual in ([10, 100], {"steps": []}):  # a list where the mapping goes: an error naming it, not a traceback
        with pytest.raises(PlanError, match="`gradual` must be a mapping whose `steps` is a list of percentages"):
            to_steps({**raw, "gradual": gradual})


def test_the_shipped_plan_reads_as_sentences() -> None:
    # Conditions are joined by semicolons into one sentence per line: an analysis must read as one clause
    # among them, not end its own sentence or open a list of its own.
    text = describe(load_plan(default_plan_path()))
    conditions = [line for line in text if "To leave it:" in line or "the guard watches" in line]
    assert any("analysis 'quality' passes (paired: it passes once" in line for line in conditions)
    for line in conditions:
        assert line.endswith(".") and ".." not in line and "; fails once" not in line, line


def test_a_plan_wide_watched_condition_is_said_to_do_what_the_guard_does(tmp_path):
    # Without an on_fail of its own, a plan-wide watched condition does what the step it fails on says.
    plan = load_plan(steps_plan(tmp_path, "- limited: {regions: [eu-west]}\n  on_fail: pause\n- full: {}\n",
                                "watch: [{metric: drift_alarm, max: 0}]\n"))
    watched = next(line for line in describe(plan) if "the guard watches" in line)
    assert "drift_alarm at most 0" in watched and watched.endswith("(a failure pauses the rollout for a person to decide).")
    mixed = load_plan(steps_plan(tmp_path, "- limited: {regions: [eu-west]}\n  on_fail: pause\n- gradual: {percent: 50}\n"
                                 "- full: {}\n", "watch: [{metric: drift_alarm, max: 0}]\n"))
    assert "as the step's on_fail says" in next(line for line in describe(mixed) if "the guard watches" in line)


def test_the_metrics_a_gate_bound_is_checked_against_are_metrics():
    from rollout.metrics import METRICS
    from rollout.plan import DIFFERENCE_METRICS, SHARE_METRICS

    assert SHARE_METRICS | DIFFERENCE_METRICS <= set(METRICS)


def test_a_plan_path_written_with_tilde_is_found(monkeypatch, tmp_path):
    """--plan=~/plan.yaml (no shell expands a `~` after `=`) was looked for under a folder named `~`."""
    monkeypatch.setenv("HOME", str(tmp_path))
    steps_plan(tmp_path, "- shadow: {}\n- full: {}\n")
    assert [s.kind for s in load_plan("~/plan.yaml").steps] == [Stage.SHADOW, Stage.FULL]


def test_a_step_with_a_key_given_twice_is_refused_not_half_read(tmp_path):
    """PyYAML keeps the last of two `exit:` keys: the first's gates vanished from the step without a word."""
    from rollout.plan import load_plan

    plan = tmp_path / "plan.yaml"
    plan.write_text("name: twice\nregions: [eu-west]\nsteps:\n  - shadow: {sample: 0.5}\n"
                    "    exit: [\"compared >= 30\"]\n    exit: [\"agreement >= 0.6\"]\n  - full: {}\n")
    with pytest.raises(PlanError, match="'exit' is given twice"):
        load_plan(plan)


def test_the_plan_wide_watch_applies_only_where_the_candidate_answers_users():
    """In shadow the candidate answers no one: the plan's `watch` (a rollback on quality) waits for a step
    where it does; a step's own watch applies on its step."""
    plan = load_plan()
    assert plan.watch and plan.watched(0, answers_traffic=False) == plan.steps[0].watch
    assert plan.watched(1, answers_traffic=True) == plan.watch + plan.steps[1].watch


@pytest.mark.parametrize("steps, message", [
    ("- shadow: {}\n- full: {}\n- full: {}\n", r"steps\.1 \(full\): `full` can only be the last step"),
    ("- limited: {regions: [eu-west]}\n- gradual: {percent: 10}\n- limited: {regions: [eu-west, us-east]}\n- full: {}\n",
     r"steps\.2 \(limited\): limited after gradual would take listings back"),
    ("- limited: {regions: [eu-west], percent: 50}\n- limited: {regions: [eu-west], percent: 25}\n- full: {}\n",
     r"steps\.1 \(limited\)\.limited: .*not shrink"),
    ("- limited: {regions: [eu-west]}\n- gradual: {percent: 25}\n- gradual: {percent: 25}\n- full: {}\n",
     r"steps\.2 \(gradual\)\.gradual\.percent: 25 does not grow"),
])
def test_a_plan_that_would_move_listings_back_or_end_twice_is_refused(tmp_path, steps, message):
    with pytest.raises(PlanError, match=message):
        load_plan(steps_plan(tmp_path, steps))


@pytest.mark.parametrize("steps", [
    # The same share of listings in more regions only grows the traffic.
    "- limited: {regions: [eu-west], percent: 50}\n- limited: {regions: [eu-west, us-east], percent: 50}\n- full: {}\n",
    # A later limited step without regions keeps the earlier step's, so nobody needs to name them, even
    # where the step before advances on its own.
    "- limited: {regions: [eu-west], percent: 10}\n  auto_advance: {after: 5m}\n- limited: {percent: 50}\n- full: {}\n",
])
def test_a_plan_whose_traffic_only_grows_loads(tmp_path, steps):
    assert load_plan(steps_plan(tmp_path, steps)).steps[-1].kind is Stage.FULL


def test_an_untimed_pause_the_guard_advances_is_not_said_to_wait_for_a_person(tmp_path):
    """`pause: {}` with `auto_advance` is promoted by the guard once its time is up; `rollout plan show` and the
    step's label said it waits "until someone promotes"."""
    plan = load_plan(steps_plan(tmp_path, "- limited: {regions: [eu-west]}\n- pause: {}\n  auto_advance: {after: 30m}\n"
                                          "- full: {}\n"))
    text = "\n".join(describe(plan))
    assert "pause: traffic stays as it is for 30m." in text and "until someone promotes" not in text
    assert plan.step_label(1) == "2/3 pause 1800 s"


@pytest.mark.parametrize("condition, key", [
    ("{analysis: quality, on_fail: later}", "steps.0.watch.0.on_fail"),
    ("{analysis: null}", "steps.0.watch.0.analysis"),
    ("{metric: agreement, min: 0.5, extra: 1}", "steps.0.watch.0.extra"),
    ("{metric: vibes, max: 1}", "steps.0.watch.0"),
])
def test_a_bad_condition_is_refused_naming_its_own_key(tmp_path, condition, key):
    """pydantic names the kind a condition was read as (gate or analysis) in its path: the key read
    "steps.0.watch.0.analysis.on_fail", an on_fail under `analysis:` that no plan has."""
    with pytest.raises(PlanError) as info:
        load_plan(steps_plan(tmp_path, f"- shadow: {{}}\n  watch: [{condition}]\n- full: {{}}\n",
                             "analyses:\n  quality: {margin: 0.05}\n"))
    assert (info.value.key, info.value.step) == (key, 0) and f"{key}: " in str(info.value)


def test_on_fail_on_an_exit_condition_is_refused(tmp_path):
    """The guard acts only on watched conditions: `on_fail: rollback` on an exit loaded, and a failing exit
    only held the step, never rolling anything back as the plan seemed to say."""
    with pytest.raises(PlanError, match=r"steps\.0 \(shadow\)\.exit\.1: on_fail says what a watched") as info:
        load_plan(steps_plan(tmp_path, "- shadow: {}\n  exit: [{metric: compared, min: 30}, "
                                       "{metric: agreement, min: 0.5, on_fail: rollback}]\n- full: {}\n"))
    assert (info.value.key, info.value.step) == ("steps.0.exit.1.on_fail", 0)
    watched = "- shadow: {}\n  watch: [{metric: agreement, min: 0.5, on_fail: pause}]\n- full: {}\n"
    assert load_plan(steps_plan(tmp_path, watched)).steps[0].watch[0].on_fail == "pause"


@pytest.mark.parametrize("full, key", [
    ("- full: {}\n  exit: [{metric: compared, min: 30}]\n", "steps.2.exit"),
    ("- full: {}\n  watch: [{metric: drift_alarm, max: 0}]\n", "steps.2.watch"),
])
def test_conditions_on_the_full_step_are_refused(tmp_path, full, key):
    """The rollout ends on entering `full`: its exit and watch were never judged, yet the plan loaded and
    `rollout plan show` listed them as what is watched on it and what must hold to leave it."""
    with pytest.raises(PlanError, match=r"steps\.2 \(full\)\.(exit|watch): `full` ends the rollout") as info:
        load_plan(steps_plan(tmp_path, "- shadow: {}\n- limited: {regions: [eu-west]}\n" + full))
    assert (info.value.key, info.value.step) == (key, 2)


def test_a_plan_in_words_says_only_what_it_has(tmp_path):
    # A plan without analyses, OOD holds or timed pauses must not be described as having them.
    text = describe(load_plan(steps_plan(tmp_path, "- shadow: {}\n- limited: {}\n- pause: {}\n- full: {}\n",
                                         "hold_ood_on_champion: false\n")))
    assert "the candidate answers 100% of listings in the regions named at promotion" in text[3]
    assert not any("When the time is up" in line for line in text)
    assert [line for line in text if "To leave it" in line] == ["   To leave it: nothing beyond a promotion."] * 3
    assert not any("Out-of-domain" in line or "Analyses read" in line for line in text)


def test_a_plan_wide_watch_is_said_to_do_what_the_answering_steps_say_not_a_shadow_step(tmp_path):
    # Shadow rolls back by default, but the plan-wide watch never applies there.
    plan = load_plan(steps_plan(tmp_path, "- shadow: {}\n- limited: {regions: [eu-west]}\n  on_fail: pause\n"
                                "- full: {}\n", "watch: [{metric: drift_alarm, max: 0}]\n"))
    watched = next(line for line in describe(plan) if "the guard watches" in line)
    assert watched.endswith("(a failure pauses the rollout for a person to decide).")


def test_a_state_is_labelled_with_its_step_and_the_traffic_it_has(tmp_path):
    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState
    from rollout.plan_text import step_label

    plan = load_plan(steps_plan(tmp_path, "- shadow: {}\n- limited: {regions: [eu-west]}\n- gradual: {percent: 50}\n"
                                "- full: {}\n"))
    base = dict(champion=ModelRef("roomtype", "1"), candidate=ModelRef("roomtype", "2"), rollout_id="r")
    assert step_label(plan, RoutingState(stage=Stage.SHADOW, step=0, **base)) == "1/4 shadow"
    # An override at promotion: the state's traffic, not the plan step's.
    limited = RoutingState(stage=Stage.LIMITED, step=1, regions=("eu-west", "us-east"), region_percent=30, **base)
    assert step_label(plan, limited) == "2/4 limited eu-west, us-east 30%"
    gradual = RoutingState(stage=Stage.GRADUAL, step=2, regions=("eu-west",), region_percent=100, percent=40, **base)
    assert step_label(plan, gradual) == "3/4 gradual 40%"
    # A state written under a longer plan than the one read now: the stage alone, not an index error.
    assert step_label(plan, RoutingState(stage=Stage.GRADUAL, step=7, percent=40, **base)) == "gradual"


@pytest.mark.parametrize("text, says", [
    ("regions: eu-west\nsteps: [{shadow: {}}, {full: {}}]\n", "regions: should be a list, e.g. [a, b]"),
    ("regions: [eu-west]\nsteps:\n  - shadow: {}\n    exit: {metric: compared, min: 30}\n  - full: {}\n",
     "steps.0.exit: should be a list"),
    ("regions: [eu-west]\nbudget: {windw: 300}\nsteps: [{shadow: {}}, {full: {}}]\n", "budget.windw: no such key"),
    ("regions: [eu-west]\nbudget: 300\nsteps: [{shadow: {}}, {full: {}}]\n", "budget: should be a mapping"),
])
def test_a_plan_of_the_wrong_shape_is_said_in_yaml_terms(tmp_path, text, says):
    """`regions: eu-west` was refused with "Input should be a valid tuple", a key of no meaning with "Extra inputs
    are not permitted": pydantic's words, not the plan's."""
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    with pytest.raises(PlanError) as info:
        load_plan(path)
    assert says in str(info.value), str(info.value)
    assert "tuple" not in str(info.value) and "Extra inputs" not in str(info.value) and "Input should" not in str(info.value)
