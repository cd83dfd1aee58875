"""The `rollout` command line, run as a user would (in-process via Typer's runner, or in a process of
its own where this process's state would change the outcome)."""

import json
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from shell.cli import app

runner = CliRunner()
SKELETON = ["train", "serve", "start", "promote", "status", "rollback", "history"]


def commands(typer_app, prefix=()):
    import typer.main

    group = typer.main.get_command(typer_app)
    stack = [(prefix, group)]
    while stack:
        path, cmd = stack.pop()
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append((path + (name,), sub))


def test_root_help_lists_the_skeleton_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in SKELETON:
        assert name in result.output


def test_every_command_has_help():
    paths = [p for p in commands(app) if p]
    assert len(paths) >= len(SKELETON)
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert "Usage" in result.output


def test_plan_show_in_words():
    result = runner.invoke(app, ["plan", "show"])
    assert result.exit_code == 0
    assert "1. shadow" in result.output and "eu-west" in result.output and "To leave it" in result.output
    from rollout.plan import load_plan
    from rollout.plan_identity import fingerprint

    assert fingerprint(load_plan()) in result.output  # what a rollout started with it records


def test_bad_config_fails_naming_the_key(tmp_path):
    result = runner.invoke(app, ["status"], env={"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_SERVE__PORT": "nope"})
    assert result.exit_code == 1
    assert "serve.port" in result.output and "Traceback" not in result.output


def test_status_promote_refusals_through_the_cli(home):
    env = {"ROOMSIGHT_HOME": str(home)}
    result = runner.invoke(app, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["state"]["champion"]["version"] == "1"
    result = runner.invoke(app, ["promote", "--stage", "limited"], env=env)
    assert result.exit_code == 1 and "no rollout in progress" in result.output
    result = runner.invoke(app, ["start", "--candidate", "7"], env=env)  # a number is a version of model_name
    assert result.exit_code == 1 and "models:/roomtype/7" in result.output, result.output
    result = runner.invoke(app, ["--actor", "carol", "start", "--candidate", " 2"], env=env)
    assert result.exit_code == 0 and "shadow" in result.output
    assert json.loads(runner.invoke(app, ["status", "--json"], env=env).output)["state"]["candidate"]["version"] == "2"
    result = runner.invoke(app, ["promote", "--stage", "sideways"], env=env)
    assert result.exit_code == 1 and "unknown stage 'sideways'" in result.output
    result = runner.invoke(app, ["promote", "--stage", "limited", "--regions", "mars-north"], env=env)
    assert result.exit_code == 1 and "unknown region" in result.output
    result = runner.invoke(app, ["promote", "--stage", "limited", "--dry-run"], env=env)
    assert result.exit_code == 0 and "dry run: would refuse to step 2/7 limited eu-west 100%" in result.output
    result = runner.invoke(app, ["promote", "--stage", "limited", "--dry-run", "--force", "--reason", "try"], env=env)
    assert result.exit_code == 0 and "dry run: would promote to step 2/7 limited eu-west 100%, forced past" in result.output
    result = runner.invoke(app, ["promote", "--stage", "limited"], env=env)
    assert result.exit_code == 1 and "INCONCLUSIVE compared >= 30: 0 so far" in result.output
    generation = json.loads(runner.invoke(app, ["status", "--json"], env=env).output)["generation"]
    result = runner.invoke(app, ["status"], env=env)
    assert result.exit_code == 0 and "step 1/7 shadow" in result.output and "to leave it for step 2/7 limited" in result.output
    assert f"(generation {generation})" in result.output
    # A person acts on the rollout status showed them: once it has changed, nothing is.
    result = runner.invoke(app, ["rollback", "--reason", "stale", "--generation", str(generation - 1)], env=env)
    assert result.exit_code == 1 and "the rollout changed since" in result.output
    # A generation ahead of the rollout's is a mistyped one, not a change since (it said "changed since it was judged").
    result = runner.invoke(app, ["rollback", "--reason", "typo", "--generation", str(generation + 5)], env=env)
    assert result.exit_code == 1 and "has not reached that generation" in result.output, result.output
    result = runner.invoke(app, ["rollback", "--reason", "changed my mind", "--generation", str(generation)], env=env)
    assert result.exit_code == 0
    result = runner.invoke(app, ["history", "--json"], env=env)
    events = json.loads(result.output)
    assert [e["action"] for e in events] == ["rollback", "start"] and events[1]["actor"] == "carol"


def test_status_says_when_the_plan_is_not_the_one_the_rollout_started_with(tmp_path, monkeypatch):
    """The plan on disk edited mid-rollout (the limited step taken out: gradual 25% where gradual 10% was): status
    says so, and that promotion is refused, where it showed the new plan's step 3 as the rollout's."""
    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState, Versioned
    from rollout import assess, stages
    from rollout.api_models import StatusOut
    from shell import cli
    from tests.plans import open_plan
    from tests.test_guard import RacedControl

    plan = open_plan()
    at_10 = stages.advance(stages.start(RoutingState(champion=ModelRef("roomtype", "1")), ModelRef("roomtype", "2"), "r",
                                        plan, now=0), plan, 2, now=0)
    cp = RacedControl(Versioned(7, at_10, 0.0))
    cp.unrecorded = lambda: 0
    monkeypatch.setattr(assess, "judge", lambda *a, **k: assess.Judged({}))
    monkeypatch.setattr(cli, "control_of", lambda ctx: cp)
    env = {"ROOMSIGHT_HOME": str(tmp_path)}
    assert cp.status().plan_changed is None
    assert "not the one the rollout started with" not in runner.invoke(app, ["status"], env=env).output
    cp.plan = plan.model_copy(update={"steps": plan.steps[:1] + plan.steps[2:]})
    st = cp.status()
    assert "restore the plan it started with" in st.plan_changed and st.next_step is None
    assert StatusOut.model_validate(st.to_dict()).plan_changed == st.plan_changed  # the API's contract has it
    assert json.loads(runner.invoke(app, ["status", "--json"], env=env).output)["plan_changed"] == st.plan_changed
    result = runner.invoke(app, ["status"], env=env)
    out = " ".join(result.output.split())
    assert result.exit_code == 0 and "the plan is not the one the rollout started with" in out, out
    assert "Roll back, or restore the plan it started with" in out


@pytest.mark.parametrize("regions", ["", ",", " , "])
def test_promote_with_regions_that_name_none_is_refused(tmp_path, regions):
    """`--regions "$REGIONS"` with the variable unset promoted to the plan's regions, as if none were given."""
    result = runner.invoke(app, ["promote", "--regions", regions], env={"ROOMSIGHT_HOME": str(tmp_path)})
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "--regions" in out and "names no region" in out, out


@pytest.mark.parametrize("store", ["mlflow", "postgres", "sqlite", "corrupt-sqlite", "corrupt-mlflow", "no-driver"])
def test_stores_out_of_reach_or_corrupt_are_one_line_errors_without_the_password(tmp_path, monkeypatch, store):
    from tests.conftest import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a refused connection needs no retries to show
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # configure() points it at the dead server; restore it after
    nobody = f"ops:hunter2@127.0.0.1:{free_port()}"
    junk = "not a database " * 100
    env, says = {
        "mlflow": ({"ROOMSIGHT_MLFLOW_TRACKING_URI": f"http://{nobody}"}, "cannot reach MLflow at http://127.0.0.1"),
        "postgres": ({"ROOMSIGHT_DATABASE_URL": f"postgresql+psycopg://{nobody}/rs"},
                     "cannot reach the database at postgresql+psycopg://ops:***@"),
        "sqlite": ({"ROOMSIGHT_HOME": str(tmp_path / "file" / "home")}, "cannot create the SQLite database"),
        "corrupt-sqlite": ({"ROOMSIGHT_DATABASE_URL": f"sqlite:///{tmp_path / 'file'}"}, "cannot use the database at sqlite:///"),
        "corrupt-mlflow": ({"ROOMSIGHT_MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'file'}"}, "cannot reach MLflow at sqlite:///"),
        "no-driver": ({"ROOMSIGHT_DATABASE_URL": f"mysql://{nobody}/rs"}, "the driver for mysql (the `database_url` setting)"),
    }[store]
    (tmp_path / "file").write_text(junk if store.startswith("corrupt") else "")
    result = runner.invoke(app, ["history"], env={"ROOMSIGHT_HOME": str(tmp_path), **env})
    out = " ".join(result.output.split())  # Rich wraps long lines
    assert result.exit_code == 1, out
    assert says in out and "Traceback" not in out and "hunter2" not in out


@pytest.mark.parametrize("command,section", [(["api"], "control"), (["review", "serve"], "review")])
def test_http_servers_on_a_taken_port_fail_before_announcing_themselves(tmp_path, command, section):
    import socket

    token = json.dumps({"ops": "a-token-long-enough-to-pass"})
    env = {"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_CONTROL__TOKENS": token, "ROOMSIGHT_REVIEW__TOKENS": token}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = runner.invoke(app, [*command, "--port", str(taken.getsockname()[1])], env=env)
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out
    assert "address already in use" in out and f"{section}.port" in out
    assert " on http://" not in out  # no address announced that nobody is listening on


@pytest.mark.parametrize("command,port", [(["api"], "70000"), (["api"], "-1"), (["serve"], "0"), (["demo"], "65535"),
                                          (["review", "serve"], "70000")])
def test_a_port_out_of_range_is_refused_as_the_option_before_anything_starts(tmp_path, command, port):
    """Each server's --port replaced a validated setting unchecked: the bind failed with a traceback, and
    port 0 served on a port nobody chose, announced as :0. The demo also uses the two ports after it."""
    env = {"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_CONTROL__TOKENS": json.dumps({"ops": "a-token-long-enough"})}
    result = runner.invoke(app, [*command, "--port", port], env=env)
    out = " ".join(result.output.split())
    assert result.exit_code == 2, out
    assert "Invalid value for '--port'" in out and "Traceback" not in out


@pytest.mark.parametrize("taken_offset,server", [(0, "Serve app"), (1, "reviewer page"), (2, "SMTP sink")])
def test_demo_on_a_taken_port_fails_before_training(tmp_path, taken_offset, server):
    """The demo uses --port and the two ports after it; any of them taken is said before minutes of
    training (a taken reviewer port used to show only as reviewers timing out and a gate refusing)."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1] - taken_offset
        run = tmp_path / "run"
        # A process of its own: one whose Ray already runs Serve (as pytest's may) deploys the demo onto it.
        result = subprocess.run([sys.executable, "-c", "from shell.cli import main; main()", "demo", "--port", str(port),
                                 "--keep", str(run)], capture_output=True, text=True, timeout=120,
                                env={**os.environ, "ROOMSIGHT_HOME": str(tmp_path), "COLUMNS": "200"})
    out = " ".join((result.stdout + result.stderr).split())
    assert result.returncode == 1, out
    assert f"cannot listen on 127.0.0.1:{port + taken_offset}: address already in use" in out, server
    assert f"the demo uses --port {port}" in out and "Traceback" not in out
    assert not (run / "home" / "mlflow.db").exists()  # nothing was trained


@pytest.mark.parametrize("args,says", [
    (["-c", "{binary}", "status"], "config file {binary} is not UTF-8 text"),
    (["--plan", "{folder}", "plan", "show"], "rollout plan {folder} is a folder"),
    (["labels", "--captions", "{captions}", "--out", "{tmp}/o.csv", "--rules", "{binary}"], "rules file {binary} is not UTF-8"),
    (["labels", "--captions", "{captions}", "--out", "{folder}"], "--out {folder} is a folder; give a file name, e.g. {folder}/out.csv"),
    (["labels", "--captions", "{captions}", "--out", "{tmp}/labelled.txt"], "--out {tmp}/labelled.txt: give a .csv file name"),
    # Checked before the work: a report built whole, then not written.
    (["report", "--out", "{binary}/r.html"], "--out {binary}/r.html: cannot create its folder {binary} (File exists)"),
])
def test_files_the_system_refuses_are_one_line_errors_naming_them(tmp_path, args, says):
    paths = {"binary": tmp_path / "photo.jpg", "folder": tmp_path / "folder", "captions": tmp_path / "c.csv", "tmp": tmp_path}
    paths["binary"].write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    paths["folder"].mkdir()
    paths["captions"].write_text("caption\nCosy bedroom\n")
    result = runner.invoke(app, [a.format(**paths) for a in args], env={"ROOMSIGHT_HOME": str(tmp_path)})
    out = " ".join(result.output.split())
    assert result.exit_code == 1, out
    assert says.format(**paths) in out and "Traceback" not in out


def test_ctrl_c_on_serve_stops_the_app_and_ignores_a_second_ctrl_c(tmp_path, monkeypatch):
    """A second Ctrl-C used to land in Ray's shutdown at exit, as a traceback; the app, killed with the
    local Ray, never closed its ingress (its log unwritten, its in-flight file left in /dev/shm)."""
    import signal

    import serving.runner
    import shell.cli_run
    from monitoring.drift_checks import DriftChecker
    from roomsight import registry
    from rollout.guard import Guard

    stopped = []
    monkeypatch.setattr(serving.runner, "start_serve", lambda settings: "http://127.0.0.1:1")
    monkeypatch.setattr(serving.runner, "stop_serve", lambda: stopped.append(signal.getsignal(signal.SIGINT)))
    for cls in (Guard, DriftChecker):
        monkeypatch.setattr(cls, "start", lambda self: None)
    monkeypatch.setattr(registry, "alias_version", lambda name, alias: "1")  # a champion, without training one

    def ctrl_c(_s: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(shell.cli_run.time, "sleep", ctrl_c)
    before = signal.getsignal(signal.SIGINT)
    try:
        result = runner.invoke(app, ["serve"], env={"ROOMSIGHT_HOME": str(tmp_path)})
    finally:
        signal.signal(signal.SIGINT, before)
    assert result.exit_code == 0, result.output
    assert "stopping" in result.output
    assert stopped == [signal.SIG_IGN]


def test_the_segment_table_names_no_level_its_bounds_do_not_have():
    """The header said "95% CS" whatever alpha was, where the pair is a 1 - 2 alpha interval and a cell's lower
    bound is read at a smaller part of alpha; the summary says the levels."""
    from rich.console import Console

    from analysis import AnalysisSpec
    from analysis.paired import Counts, decide
    from rollout.conditions import ConditionResult
    from shell.cli_format import segment_table

    spec = AnalysisSpec(margin=0.05, alpha=0.1, segments=("region",))
    r = decide("q", spec, Counts(2000, 100, 100, 200), {("eu-west",): Counts(2000, 100, 100, 200)})
    console = Console(record=True, width=120)
    console.print(segment_table(ConditionResult("q", "analysis", r.outcome, r.summary, r.estimate, "rollback", r)))
    text = console.export_text()
    seg = r.segments[0]
    assert "%" not in text.splitlines()[0] and f"[{seg.lower:+.3f}, {seg.upper:+.3f}]" in text


def test_lines_on_stderr_are_not_folded_at_the_console_width(tmp_path, monkeypatch):
    """Rich folded a long line on stderr at the console's width, and a path copied from it carried the fold:
    the error lines were soft-wrapped one call at a time, the warning that MLflow is behind was not."""
    from roomsight.console import err
    from shell.cli import _warn_behind

    monkeypatch.setattr(err, "_width", 40)
    with err.capture() as captured:
        _warn_behind(3)
    assert len(captured.get().splitlines()) == 1 and "given to MLflow once it is reachable" in captured.get()
    folder = tmp_path / ("a-folder-with-a-name-longer-than-the-console-is-wide" * 2)
    folder.mkdir()
    result = runner.invoke(app, ["--plan", str(folder), "plan", "show"], env={"ROOMSIGHT_HOME": str(tmp_path)})
    assert result.exit_code == 1 and f"rollout plan {folder} is a folder" in result.output, result.output


def test_python_m_shell_cli_runs_the_command_line():
    """`python -m shell.cli --help` printed nothing and exited 0: the module defined `main` but never called it."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-m", "shell.cli", "--help"], cwd=root, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage: " in result.stdout and "promote" in result.stdout


def test_a_group_lists_each_command_on_unbroken_lines():
    """A command's line in `rollout --help` (and a group's) broke where its docstring's first paragraph did,
    mid-sentence ("what the guard watches and" / "what must pass to leave the step")."""
    wide = {"COLUMNS": "400"}
    out = runner.invoke(app, ["--help"], env=wide).output
    assert "evidence, what the guard watches and what must pass to leave the step." in out
    assert "--json adds the conditions each was checked on" in out
    out = runner.invoke(app, ["review", "--help"], env=wide).output
    assert "(weighted by inverse inclusion probability), next to the raw counts" in out


def test_a_whole_region_reads_all_listings():
    """A limited step over whole regions read "candidate ... answers all of listings in eu-west"."""
    from roomsight.registry import ModelRef
    from roomsight.rollout_state import RoutingState, Stage
    from shell.cli_format import describe_state

    champ, cand = ModelRef("roomtype", "1"), ModelRef("roomtype", "2")
    whole = RoutingState(stage=Stage.LIMITED, champion=champ, candidate=cand, rollout_id="r1", regions=("eu-west",), region_percent=100)
    assert "answers all listings in eu-west; champion" in describe_state(whole, "2/7 limited eu-west 100%")
    part = RoutingState(stage=Stage.LIMITED, champion=champ, candidate=cand, rollout_id="r1", regions=("eu-west",), region_percent=40)
    assert "answers 40% of listings in eu-west; champion" in describe_state(part)


def test_a_mistyped_rollout_offers_the_one_in_progress_before_anything_is_logged(settings):
    """With a rollout started and no prediction logged yet, `review stats --rollout TYPO` said "nothing has been
    logged yet" and named no rollout, though one was in progress."""
    from rollout.control import ControlPlane
    from rollout.plan import load_plan

    rid = ControlPlane(settings, load_plan(), actor="t").start("models:/roomtype/2").after.rollout_id
    env = {"ROOMSIGHT_HOME": str(settings.home)}
    for args in (["review", "stats"], ["drift", "check"]):
        result = runner.invoke(app, [*args, "--rollout", "zz"], env=env)
        said = " ".join(result.output.split())
        assert result.exit_code == 1 and "--rollout zz: no such rollout" in said, said
        assert f"recent ones: {rid}" in said and "nothing has been logged" not in said


@pytest.mark.parametrize("args, says", [
    (["drift", "report", "--since", "1x"], "error: --since: not a duration: '1x'"),
    (["drift", "watch", "--every", "hourly", "--times", "1"], "error: --every: not a duration: 'hourly'"),
    (["drift", "watch", "--since", "0s", "--times", "1"], "error: --since: not a duration: '0s'"),
])
def test_a_bad_duration_option_is_named(tmp_path, args, says):
    """`drift report --since 1x` said only "not a duration: '1x'", naming no option, where `history --at` names its own."""
    result = runner.invoke(app, args, env={"ROOMSIGHT_HOME": str(tmp_path)})
    assert result.exit_code == 1 and says in " ".join(result.output.split()), result.output


def test_history_at_a_moment_to_come_is_refused(home):
    """`history --at 2999-01-01` said which version "answered" each region then: what is live now, as if it were past."""
    result = runner.invoke(app, ["history", "--at", "2999-01-01T00:00"], env={"ROOMSIGHT_HOME": str(home)})
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and "--at '2999-01-01T00:00' is in the future" in said, said
    assert "answered" not in said


def test_a_plan_setting_that_fails_is_named(tmp_path):
    """ROOMSIGHT_PLAN pointing at a missing or broken file said only "rollout plan not found: PATH", naming no setting."""
    missing = tmp_path / "missing.yaml"
    env = {"ROOMSIGHT_HOME": str(tmp_path), "ROOMSIGHT_PLAN": str(missing)}
    result = runner.invoke(app, ["plan", "show"], env=env)
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and f"rollout plan not found: {missing}" in said, said
    assert "from the `plan` setting: env ROOMSIGHT_PLAN or the config file" in said
    # --plan names its file itself, and wins over the setting.
    result = runner.invoke(app, ["--plan", str(missing), "plan", "show"], env={"ROOMSIGHT_HOME": str(tmp_path)})
    assert result.exit_code == 1 and "`plan` setting" not in result.output
    assert runner.invoke(app, ["--plan", str(default_plan()), "plan", "show"], env=env).exit_code == 0


def default_plan():
    from rollout.plan import default_plan_path

    return default_plan_path()


@pytest.mark.parametrize("args, says", [
    (["--tune", "most"], "error: --tune must be head, last or full; got 'most'"),
    (["--resize", "zoom"], "error: --resize must be one of"),
    (["--threshold-method", "best"], "error: --threshold-method must be one of"),
    (["--backbone", "vgg"], "error: unknown backbone 'vgg'"),
])
def test_train_refuses_a_bad_option_by_name_before_any_progress(tmp_path, args, says):
    """`train --tune most` printed a "preparing data" progress bar, then "tune must be ...", naming no option."""
    result = runner.invoke(app, ["train", *args], env={"ROOMSIGHT_HOME": str(tmp_path), "COLUMNS": "200"})
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and said.startswith(says), said
    assert "preparing data" not in said


@pytest.mark.parametrize("actor", ["", "   "])
def test_a_blank_actor_is_refused(home, actor):
    """`--actor "  "` recorded a rollback by "  ", and `--actor ""` one by the OS user: neither said so."""
    env = {"ROOMSIGHT_HOME": str(home)}
    result = runner.invoke(app, ["--actor", actor, "start", "--candidate", "models:/roomtype/2"], env=env)
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "--actor: blank; name who is acting" in said, said
    assert json.loads(runner.invoke(app, ["status", "--json"], env=env).output)["state"]["candidate"] is None


def test_history_with_no_events_says_so(home):
    """With nothing recorded, `rollout history` drew an empty table's header and borders, and said nothing."""
    env = {"ROOMSIGHT_HOME": str(home)}
    result = runner.invoke(app, ["history"], env=env)
    assert result.exit_code == 0 and "no rollout events recorded yet" in " ".join(result.output.split()), result.output
    assert "┏" not in result.output
    assert json.loads(runner.invoke(app, ["history", "--json"], env=env).output) == []


def test_serve_help_says_it_runs_the_guard_and_the_drift_check():
    """README: `rollout serve` starts the app "and beside it the guard ... and the background drift check"; its
    help named only the app, though the guard acts on the rollout by itself."""
    out = " ".join(runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "beside it the guard" in out and "background drift check" in out


@pytest.mark.parametrize("columns", ["80", "160"])
def test_history_shows_the_versions_the_date_and_the_whole_reason(home, columns):
    """At 80 columns every cell was cut: "models:…" for both versions, "2026-1…" for the date; then the reason, in the
    column the others left it, ran a few characters a line with its longer words cut. And "[forced]" was read as markup
    and dropped, at any width."""
    env = {"ROOMSIGHT_HOME": str(home), "COLUMNS": columns}
    forced, why = "asked by the listing team, checked by hand against the photos", (
        "drift alarm on brightness in eu-west: the candidate's answers parted from the champion's, Zanzibar")
    assert runner.invoke(app, ["start", "--candidate", "models:/roomtype/2", "--reason", "try v2"], env=env).exit_code == 0
    assert runner.invoke(app, ["promote", "--force", "--reason", forced], env=env).exit_code == 0
    assert runner.invoke(app, ["rollback", "--reason", why], env=env).exit_code == 0
    result = runner.invoke(app, ["history"], env=env)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if re.match(r"\s*\d{4}-\d\d-\d\d ", line)]
    actions = [a for row in rows for a in ("rollback", "promote", "start") if a in row]
    assert actions == ["rollback", "promote", "start"] and "…" not in result.output, result.output
    assert all("v1" in row and "v2" in row for row in rows), rows
    said = " ".join(result.output.split())
    assert why in said and "try v2" in said and f"[forced] {forced}" in said, result.output
