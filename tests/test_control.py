"""The control plane against a real MLflow registry and a real SQLite log; no Ray needed."""

import threading
import time
import uuid

import pytest

from roomsight import registry
from roomsight.db import engine_for
from rollout.control import ControlPlane
from rollout.plan import load_plan
from roomsight.errors import BadModelUri, GatesFailed, RegistryError, RolloutError
from serving.predlog import LogWriter, PredictionRecord
from roomsight.rollout_state import Stage
from rollout.plan import Gate
from tests.plans import open_plan, with_exit


def log_shadow_traffic(settings, rollout_id: str, n: int, agree: float = 1.0, served_by: str = "champion") -> None:
    w = LogWriter(engine_for(settings.db_url), flush_interval_s=0.05)
    for i in range(n):
        same = i < n * agree
        w.submit(PredictionRecord(
            request_id=str(uuid.uuid4()), ts=time.time(), rollout_id=rollout_id, stage="shadow", listing_id=f"L{i}",
            region="eu-west", served_by=served_by, label="kitchen", score=0.9, latency_ms=10.0,
            champion_version="1", champion_label="kitchen", champion_ms=5.0,
            candidate_version="2", candidate_label="kitchen" if same else "bedroom", candidate_ms=6.0,
            shadow="candidate", shadow_status="ok", disagreement=not same))
    assert w.flush()
    w.close()


def mlflow_away(*_a, **_k):  # noqa: ANN202 - stands for any MLflow call while MLflow is away
    raise ConnectionError("MLflow went away")


def test_bootstrap_needs_a_champion(tmp_path):
    from tests.conftest import settings_for

    s = settings_for(tmp_path / "empty")
    with pytest.raises(RolloutError, match="no champion.*rollout train"):
        ControlPlane(s, load_plan()).current()


def test_start_refuses_unknown_model(settings):
    cp = ControlPlane(settings, load_plan(), actor="t")
    with pytest.raises(RolloutError, match="does not resolve"):
        cp.start("models:/roomtype/99")
    with pytest.raises(RolloutError, match="not a registered-model URI"):
        cp.start("s3://bucket/model")


def log_gates_only():
    """The default plan with only its log gates to leave shadow: these tests feed log evidence only (the
    analyses have their own tests)."""
    shadow_exit = tuple(c for c in load_plan().steps[0].exit if isinstance(c, Gate))
    return with_exit(open_plan(), 0, shadow_exit)


def test_gates_refuse_with_numbers_then_pass_on_evidence(settings):
    cp = ControlPlane(settings, log_gates_only(), actor="alice")
    out = cp.start("models:/roomtype/2", reason="test")
    rid = out.after.rollout_id
    with pytest.raises(GatesFailed) as info:
        cp.promote("limited")
    assert "INCONCLUSIVE compared >= 30: 0 so far; 30 more wanted" in str(info.value)
    assert cp.current().state.stage is Stage.SHADOW  # nothing changed

    log_shadow_traffic(settings, rid, 40, agree=0.4)
    with pytest.raises(GatesFailed, match=r"FAIL agreement >= 0.5: 0.4"):
        cp.promote("limited")
    log_shadow_traffic(settings, rid, 60, agree=1.0)  # 76/100 agree now
    promoted = cp.promote("limited", ("eu-west",))
    assert promoted.after.stage is Stage.LIMITED and all(g.passed for g in promoted.gates)
    tags = registry.version_tags(registry.ModelRef("roomtype", "2"))
    assert (tags["stage"], tags["step"], tags["regions"], tags["region_percent"]) == ("limited", "2/7 limited eu-west 100%",
                                                                                      "eu-west", "100")

    history = cp.history()
    assert [e["action"] for e in history] == ["promote", "start"]
    assert history[0]["actor"] == "alice" and history[0]["to"] == "limited" and history[0]["to_step"] == "2/7 limited eu-west 100%"
    assert history[0]["from_step"] == "1/7 shadow"
    assert {c["name"] for c in history[0]["conditions"]} == {"compared >= 30", "agreement >= 0.5", "candidate_error_rate <= 0.02"}
    run = registry.client().get_run(history[0]["run_id"])
    assert run.data.metrics["agreement"] == pytest.approx(0.76)


def test_force_needs_a_reason_and_is_recorded(settings):
    cp = ControlPlane(settings, load_plan(), actor="bob")
    cp.start("models:/roomtype/2")
    with pytest.raises(RolloutError, match="--force needs --reason"):
        cp.promote("limited", force=True)
    out = cp.promote("limited", force=True, reason="hotfix for a broken champion")
    assert out.forced
    event = cp.history()[0]
    assert event["forced"] and event["reason"] == "hotfix for a broken champion"


def test_concurrent_promotes_exactly_one_wins(settings):
    plan = open_plan()
    ControlPlane(settings, plan).start("models:/roomtype/2")
    results, errors = [], []
    barrier = threading.Barrier(2)

    def go(actor: str, regions: tuple[str, ...]) -> None:
        cp = ControlPlane(settings, plan, actor=actor)
        cp.current()
        barrier.wait()
        try:
            results.append(cp.promote("limited", regions))
        except RolloutError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=go, args=("a", ("eu-west",))), threading.Thread(target=go, args=("b", ("us-east",)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = ControlPlane(settings, plan).current()
    # Whether the two overlapped (compare-and-swap refuses the loser) or ran one after the other (the second
    # would narrow limited, which is refused), exactly one change landed and nothing was half-written.
    assert len(results) == 1 and len(errors) == 1
    assert "changed since it was read" in errors[0] or "not shrink" in errors[0]
    assert final.state.regions == results[0].after.regions and final.generation == results[0].generation
    assert final.state.stage is Stage.LIMITED


def test_rollback_restores_aliases_with_routing(settings):
    plan = open_plan()
    cp = ControlPlane(settings, plan)
    cp.start("models:/roomtype/2")
    cp.promote("limited")
    cp.promote("gradual", percent=100)
    assert cp.promote("full").after.stage is Stage.FULL
    assert registry.alias_version("roomtype", "champion") == "2"
    # A completed rollout keeps its id, but nothing is in progress: the reviewer page and `rollout serve`'s drift
    # checker, which read this, stop working on it.
    assert cp.current().state.rollout_id is not None and cp.current().state.rollout_in_progress is None
    cp.rollback("bad numbers after full")
    assert cp.current().state.champion.version == "1"
    assert registry.alias_version("roomtype", "champion") == "1"
    assert registry.version_tags(registry.ModelRef("roomtype", "2"))["stage"] == "retired"
    with pytest.raises(RolloutError, match="nothing to roll back"):
        cp.rollback("again")


def test_status_and_rollback_work_when_the_plan_was_shortened_mid_rollout(settings):
    """A plan with fewer steps than the rollout has reached: promote refuses and says to roll back, and
    status and rollback crashed on the missing step (IndexError) instead."""
    cp = ControlPlane(settings, open_plan())
    cp.start("models:/roomtype/2")
    cp.promote("limited")
    cp.promote("gradual", percent=10)
    plan = open_plan()
    shortened = ControlPlane(settings, plan.model_copy(update={"steps": plan.steps[:2]}))
    with pytest.raises(RolloutError, match="was the plan changed"):
        shortened.promote()
    st = shortened.status()
    assert st.next_step is None and st.exit == [] and "requests" in st.evidence
    assert shortened.rollback("plan changed").after.candidate is None


def test_a_rollout_started_after_full_is_recorded_under_its_own_id(settings):
    """The state after full still names the finished rollout; the next start must not be filed under it,
    or replay and history would mix the two."""
    cp = ControlPlane(settings, open_plan())
    first = cp.start("models:/roomtype/2").after.rollout_id
    cp.promote("full", force=True, reason="test: straight to full")
    second = cp.start("models:/roomtype/1").after.rollout_id
    starts = [e for e in cp.history() if e["action"] == "start"]
    assert [e["rollout_id"] for e in starts] == [second, first] and first != second


def test_nothing_changes_while_mlflow_is_unreachable(settings, monkeypatch):
    from tests.conftest import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    plan = open_plan()
    ControlPlane(settings, plan).start("models:/roomtype/2")
    down = settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}"})  # nothing listens
    cp = ControlPlane(down, plan, actor="ops")
    with pytest.raises(RegistryError, match="MLflow registry is unreachable.*nothing was changed") as refused:
        cp.promote("limited", ("eu-west",))
    assert not isinstance(refused.value, RolloutError)  # a registry that is down is not a refusal: 503, not 409
    with pytest.raises(RegistryError, match="cannot reach MLflow") as refused:
        cp.start("models:/roomtype/1")  # a URI that cannot be looked up is not a bad URI
    assert not isinstance(refused.value, (RolloutError, BadModelUri))
    assert cp.current().state.stage is Stage.SHADOW and cp.current().generation == 2  # routing untouched

    from fastapi.testclient import TestClient

    from rollout.api import create_app
    api = TestClient(create_app(cp, {"ops": "ops-operator-token"}), raise_server_exceptions=False)
    r = api.post("/api/promote", json={"stage": "limited", "regions": ["eu-west"]},
                 headers={"Authorization": "Bearer ops-operator-token"})
    assert r.status_code == 503 and "nothing was changed" in r.json()["error"]
    assert cp.current().generation == 2

    back = ControlPlane(settings, plan, actor="ops")  # the registry is back
    assert back.promote("limited", ("eu-west",)).after.stage is Stage.LIMITED
    assert registry.version_tags(registry.ModelRef("roomtype", "2"))["stage"] == "limited"


def test_a_change_whose_aliases_could_not_be_moved_is_recorded_and_its_aliases_caught_up(settings, monkeypatch):
    """MLflow failing between the state's write and the aliases' move raised before the record: routing had
    changed with no MLflow run, so history, replay and reports never saw the change."""
    from rollout import outbox

    cp = ControlPlane(settings, open_plan(), actor="dana")
    cp.start("models:/roomtype/2")
    real = registry.set_alias

    monkeypatch.setattr(registry, "set_alias", mlflow_away)
    out = cp.promote("limited")
    assert out.mlflow_pending == ("aliases",) and out.run_id is not None
    assert cp.current().state.stage is Stage.LIMITED
    assert [e["action"] for e in cp.history()][:2] == ["promote", "start"]
    assert outbox.pending(cp.engine) == 1 and cp.status().unrecorded == 1
    assert cp.catch_up() == 0 and outbox.pending(cp.engine) == 1  # still down: kept for the next try
    monkeypatch.setattr(registry, "set_alias", real)
    assert cp.catch_up() == 1 and outbox.pending(cp.engine) == 0
    assert registry.version_tags(registry.ModelRef("roomtype", "2"))["stage"] == "limited"
    assert [e["action"] for e in cp.history()][:2] == ["promote", "start"]  # recorded once


def test_a_change_mlflow_could_not_record_is_told_and_recorded_once_it_can(settings, monkeypatch):
    """MLflow failing on the record after routing had changed raised out of the command before the notice:
    a rollback (the guard's too) happened with neither a record nor a word to anyone watching the hooks."""
    from rollout import records

    class Told:
        def __init__(self) -> None:
            self.events = []

        def send(self, event) -> None:  # noqa: ANN001
            self.events.append(event)

    told = Told()
    cp = ControlPlane(settings, open_plan(), actor="dana", notifier=told)
    cp.start("models:/roomtype/2")
    real = records.record

    monkeypatch.setattr(records, "record", mlflow_away)
    made = time.time()
    out = cp.rollback("bad kitchens")
    assert out.mlflow_pending == ("record",) and out.run_id is None
    assert cp.current().state.stage is Stage.STABLE
    assert [(e.action, e.run_id) for e in told.events] == [("start", told.events[0].run_id), ("rollback", None)]
    assert [e["action"] for e in cp.history()] == ["start"]
    monkeypatch.setattr(records, "record", real)
    time.sleep(0.05)
    assert cp.catch_up() == 1
    late = cp.history()[0]
    # Dated when it was made, not when MLflow took it: history --at and replay place it where it happened.
    assert late["action"] == "rollback" and late["actor"] == "dana" and late["reason"] == "bad kitchens"
    assert made - 1 <= late["time"] < made + 0.05
    assert cp.catch_up() == 0 and [e["action"] for e in cp.history()] == ["rollback", "start"]


def test_a_rollback_goes_ahead_while_mlflow_is_down_and_reaches_it_when_it_is_back(settings, monkeypatch):
    """Every change waited for MLflow, the guard's rollback included: with MLflow down, a candidate gone
    wrong kept answering users until it came back."""
    from tests.conftest import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    plan = open_plan()
    up = ControlPlane(settings, plan, actor="ops")
    up.start("models:/roomtype/2")
    up.promote("limited", ("eu-west",))
    down = ControlPlane(settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}"}), plan,
                        actor="guard", engine=up.engine)
    out = down.rollback("automatic: budget: error rate 0.3", auto=True, generation=up.current().generation)
    assert out.mlflow_pending == ("aliases", "record")
    assert up.current().state.stage is Stage.STABLE and up.current().state.candidate is None  # routing changed
    assert down.catch_up() == 0 and up.status().unrecorded == 1
    back = ControlPlane(settings, plan, actor="ops", engine=up.engine)  # MLflow is back (one per process)
    assert back.catch_up() == 1 and back.status().unrecorded == 0
    assert [(e["action"], e["actor"]) for e in back.history()][:2] == [("auto-rollback", "guard"), ("promote", "ops")]
    assert registry.version_tags(registry.ModelRef("roomtype", "2"))["stage"] == "rolled-back"
    assert registry.alias_version("roomtype", "candidate") is None


def test_a_change_is_recorded_once_though_its_process_died_before_settling(settings, monkeypatch):
    """The outbox row outlives a process that recorded the run and died before deleting it: once the row's
    claim runs out, catching up finds the run by its event id instead of recording the change twice."""
    from rollout import outbox

    cp = ControlPlane(settings, open_plan(), actor="dana")
    cp.start("models:/roomtype/2")
    monkeypatch.setattr(outbox, "settle", lambda *_a, **_k: (_ for _ in ()).throw(OSError("process died")))
    cp.promote("limited", force=True, reason="test")
    monkeypatch.undo()
    assert outbox.pending(cp.engine) == 1
    assert cp.catch_up() == 0  # still claimed by the process that died
    later = outbox.catch_up(cp.engine, settings, cp.move_aliases, lambda: cp.current().state,
                            clock=lambda: time.time() + outbox.LEASE_S + 1)
    assert later == 1 and outbox.pending(cp.engine) == 0
    assert [e["action"] for e in cp.history()] == ["promote", "start"]


def _rollback_mlflow_missed(settings, monkeypatch) -> ControlPlane:
    """A rollout in shadow whose rollback MLflow took nothing of: its row waits in the outbox."""
    from rollout import aliases, records

    cp = ControlPlane(settings, open_plan(), actor="dana")
    cp.start("models:/roomtype/2")

    monkeypatch.setattr(records, "record", mlflow_away)
    monkeypatch.setattr(aliases, "move", mlflow_away)
    assert cp.rollback("bad kitchens").mlflow_pending == ("aliases", "record")
    monkeypatch.undo()
    return cp


def test_a_change_is_recorded_once_though_its_claim_ran_out_while_mlflow_was_slow(settings, monkeypatch):
    """A claim that ran out while its process still waited on a slow MLflow let a second process record the
    change too: both searched for its event id before either had created the run, and history showed it twice."""
    from mlflow import MlflowClient

    from rollout import outbox

    cp = _rollback_mlflow_missed(settings, monkeypatch)
    real = MlflowClient.create_run
    overtaken: list[int] = []

    def slow(self, *a, **k):  # noqa: ANN001, ANN202
        if not overtaken:  # while this call is on its way, the claim runs out and another process catches up
            overtaken.append(-1)
            overtaken[0] = outbox.catch_up(cp.engine, settings, cp.move_aliases, lambda: cp.current().state,
                                           clock=lambda: time.time() + outbox.LEASE_S + 1)
        return real(self, *a, **k)

    monkeypatch.setattr(MlflowClient, "create_run", slow)
    cp.catch_up()
    assert overtaken == [1] and outbox.pending(cp.engine) == 0
    assert [e["action"] for e in cp.history()] == ["rollback", "start"]


def test_catching_up_leaves_mlflow_on_a_change_made_meanwhile_by_another_process(settings, monkeypatch):
    """Catching up moved MLflow's aliases last to the state it had read: a change another process made in
    between (its own aliases moved, its row gone) was undone in MLflow, with nothing left to correct it."""
    from rollout import outbox

    cp = _rollback_mlflow_missed(settings, monkeypatch)
    other = ControlPlane(settings, open_plan(), actor="ops", engine=cp.engine)
    started: list[str] = []

    def move(before, after) -> None:  # noqa: ANN001
        if before == after and not started:  # catching up's last word, with the state it read
            started.append(other.start("models:/roomtype/2").after.stage.value)
        cp.move_aliases(before, after)

    assert outbox.catch_up(cp.engine, settings, move, lambda: cp.current().state) == 1
    assert started == ["shadow"] and cp.current().state.candidate is not None
    assert registry.alias_version("roomtype", "candidate") == "2"
    assert registry.version_tags(registry.ModelRef("roomtype", "2"))["stage"] == "shadow"


def test_a_rollback_to_a_version_no_longer_registered_changes_nothing(settings):
    """A rollback after full routed to the previous champion without asking the registry for it: deleted
    since, routing named a model no replica could load, and the aliases failed only afterwards."""
    cp = ControlPlane(settings, open_plan(), actor="dana")
    cp.start("models:/roomtype/2")
    cp.promote("full", force=True, reason="test: straight to full")
    before = cp.current()
    registry.client().delete_model_version("roomtype", "1")
    with pytest.raises(RolloutError, match="models:/roomtype/1.*nothing was changed"):
        cp.rollback("bad numbers after full")
    assert cp.current() == before and [e["action"] for e in cp.history()][0] == "promote"


def test_dry_run_says_what_would_happen_and_changes_nothing(settings):
    cp = ControlPlane(settings, log_gates_only(), actor="dana")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    before = cp.current()
    preview = cp.promote(dry_run=True)
    assert not preview.applied and preview.to_step == "2/7 limited eu-west 100%"
    assert preview.after.stage is Stage.LIMITED and [g.outcome for g in preview.gates] == ["inconclusive"] * 3
    assert cp.current() == before and [e["action"] for e in cp.history()] == ["start"]
    log_shadow_traffic(settings, rid, 40)
    assert all(g.passed for g in cp.promote(dry_run=True).gates)
    assert cp.current().generation == before.generation


def test_status_names_the_step_and_its_conditions(settings):
    cp = ControlPlane(settings, log_gates_only(), actor="erin")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    log_shadow_traffic(settings, rid, 40, agree=0.4)
    st = cp.status()
    assert (st.step, st.next_step) == ("1/7 shadow", "2/7 limited eu-west 100%")
    assert {r.name: r.outcome for r in st.exit} == {"compared >= 30": "pass", "agreement >= 0.5": "fail",
                                                    "candidate_error_rate <= 0.02": "pass"}
    assert st.watch == [], "the candidate answers no user in shadow: nothing to watch"
    d = st.to_dict()
    assert d["exit_outcome"] == "fail" and d["state"]["step"] == 0


def test_history_at_says_which_version_answered_a_region(settings):
    from rollout.records import live_at

    cp = ControlPlane(settings, open_plan(), actor="fay")
    cp.start("models:/roomtype/2")
    time.sleep(0.05)
    mid = time.time()
    time.sleep(0.05)
    cp.promote("limited", ("eu-west",), percent=50)
    at_start = cp.history(1, at=mid)[0]
    assert at_start["action"] == "start"
    assert "v1 answered every listing (shadow); v2 ran beside it in shadow" in live_at(at_start, "eu-west").describe("eu-west")
    now = cp.history(1, at=time.time())[0]
    assert live_at(now, "eu-west").candidate_share == 0.5 and live_at(now, "us-east").candidate_share == 0
    assert cp.history(1, at=mid - 3600) == []


def test_status_names_every_condition_the_next_promotion_checks(settings):
    """A --percent override can put later steps behind the rollout: the next promotion skips them and must pass
    their exit conditions too, so `status` lists those conditions, not only the current step's."""
    cp = ControlPlane(settings, with_exit(open_plan(), 3, (Gate(metric="candidate_served", min=1000),)), actor="gus")
    cp.start("models:/roomtype/2")
    cp.promote("limited")
    cp.promote("gradual", percent=30)  # step 3 at 30%: step 4 (25%) is behind it
    st = cp.status()
    assert (st.step, st.next_step) == ("3/7 gradual 30%", "5/7 gradual 50%")
    with pytest.raises(GatesFailed, match="candidate_served >= 1000"):
        cp.promote()
    assert [r.name for r in st.exit] == ["candidate_served >= 1000"] and st.to_dict()["exit_outcome"] == "inconclusive"


def test_start_asks_the_registry_for_its_candidate_once(settings, monkeypatch):
    real, asked = registry.resolve, []

    def counted(uri: str):  # noqa: ANN202
        asked.append(uri)
        return real(uri)

    monkeypatch.setattr(registry, "resolve", counted)
    ControlPlane(settings, open_plan(), actor="dana").start("models:/roomtype/2")
    assert asked == ["models:/roomtype/2"]


def test_a_change_whose_numbers_are_not_finite_or_numpy_is_made_on_postgresql(settings, pg_database):
    """The outbox row is JSON in the state's transaction: PostgreSQL refuses NaN there, and no database takes
    a numpy scalar, either of which would refuse the change itself (a rollback with it)."""
    import numpy as np

    from rollout.conditions import ConditionResult

    cp = ControlPlane(settings.model_copy(update={"database_url": pg_database}), open_plan(), actor="dana")
    assert cp.engine.dialect.name == "postgresql"
    cp.start("models:/roomtype/2")
    odd = ConditionResult("budget", "budget", "fail", "no calls timed", float("nan"),
                          numbers={"p99_ms": float("inf"), "error_rate": 0.5, "calls": np.int64(40),
                                   "held": np.bool_(True), "rate": np.float64("nan")})
    out = cp.rollback("bad kitchens", gates=[odd])
    assert cp.current().state.stage is Stage.STABLE and out.mlflow_pending == () and cp.unrecorded() == 0
    [budget] = cp.history()[0]["conditions"]
    assert budget["numbers"] == {"p99_ms": None, "error_rate": 0.5, "calls": 40, "held": True, "rate": None}
    assert budget["value"] is None


def test_a_step_metric_asks_for_evidence_from_the_current_step_alone(settings):
    """`candidate_served >= 5` to leave gradual 10% passed on what limited had served; `step_candidate_served`
    counts from the step's start."""
    plan = with_exit(open_plan(), 2, (Gate(metric="step_candidate_served", min=5),))
    cp = ControlPlane(settings, plan, actor="gus")
    rid = cp.start("models:/roomtype/2").after.rollout_id
    cp.promote("limited", ("eu-west",))
    log_shadow_traffic(settings, rid, 10, served_by="candidate")
    assert cp.promote().to_step.startswith("3/7 gradual")
    st = cp.status()
    assert st.evidence["candidate_served"] == 10 and st.evidence["step_candidate_served"] == 0
    with pytest.raises(GatesFailed, match="step_candidate_served >= 5"):
        cp.promote()
    log_shadow_traffic(settings, rid, 5, served_by="candidate")
    assert cp.status().evidence["step_candidate_served"] == 5
    assert cp.promote().to_step.startswith("4/7 gradual")


def test_catching_up_an_earlier_change_leaves_each_version_tagged_as_the_latest_change_left_it(settings, monkeypatch):
    """A promotion whose aliases MLflow missed was caught up after a later rollback had tagged the candidate
    rolled back: replayed alone, the promotion tagged it as serving in limited again, and nothing undid that."""
    from rollout import outbox

    cp = ControlPlane(settings, open_plan(), actor="dana")
    cp.start("models:/roomtype/2")
    real = registry.set_alias

    monkeypatch.setattr(registry, "set_alias", mlflow_away)
    assert cp.promote("limited").mlflow_pending == ("aliases",)
    monkeypatch.setattr(registry, "set_alias", real)
    assert cp.rollback("bad kitchens").mlflow_pending == ()  # and, after it, catches the promotion up
    assert outbox.pending(cp.engine) == 0
    assert registry.version_tags(registry.ModelRef("roomtype", "2"))["stage"] == "rolled-back"
    assert registry.alias_version("roomtype", "candidate") is None
    with cp.engine.connect() as conn:  # nothing kept once every change is done
        assert conn.execute(outbox.select(outbox.func.count()).select_from(outbox.rollout_outbox)).scalar_one() == 0


def test_the_report_warns_of_changes_without_a_record_not_of_those_whose_aliases_wait(settings, monkeypatch):
    """The report's warning says the events it reads from MLflow lack the changes it counts: it counted every
    change MLflow had not fully taken, a recorded one whose aliases had not moved too."""
    from rollout import records
    from rollout.report.build import Views, report_input
    from rollout.report.render import render

    cp = ControlPlane(settings, open_plan(), actor="dana")
    cp.start("models:/roomtype/2")
    monkeypatch.setattr(registry, "set_alias", mlflow_away)
    assert cp.promote("limited").mlflow_pending == ("aliases",) and cp.unrecorded() == 1
    assert [e["action"] for e in cp.history()][:1] == ["promote"]  # its record is there
    inp = report_input(cp)
    assert inp.unrecorded == 0 and 'id="unrecorded"' not in render(inp, Views())
    monkeypatch.setattr(records, "record", mlflow_away)
    assert "record" in cp.rollback("bad kitchens").mlflow_pending
    inp = report_input(cp)
    assert inp.unrecorded == 1 and "1 rollout change not recorded in MLflow" in render(inp, Views())


def test_a_past_rollouts_report_does_not_warn_of_another_rollouts_unrecorded_changes(settings, monkeypatch):
    """The warning says the events this report reads lack the changes it counts: a past rollout's report, all
    of whose events are recorded, counted the current rollout's change that MLflow had not recorded."""
    from rollout import records
    from rollout.report.build import report_input

    cp = ControlPlane(settings, open_plan(), actor="dana")
    past = cp.start("models:/roomtype/2").after.rollout_id
    cp.rollback("done with it")
    now = cp.start("models:/roomtype/2").after.rollout_id
    monkeypatch.setattr(records, "record", mlflow_away)
    assert "record" in cp.rollback("bad kitchens").mlflow_pending
    assert report_input(cp, past).unrecorded == 0
    assert report_input(cp, now).unrecorded == 1 and report_input(cp).unrecorded == 1
