"""The review queue on a real SQLite log (and PostgreSQL where installed): filling, leases, verdicts,
undo, replays, gate evidence, `rollout review stats/export`. No Ray."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select, update

from monitoring.review import queue
from monitoring.review.photos import PhotoStore, prune_photos
from roomsight.errors import BadRequestId, ReviewError
from roomsight.tables import metadata, review_items, review_verdicts
from roomsight.verdicts import DISPUTED
from tests.conftest import free_port, settings_for

CLASSES = ("bedroom", "bathroom", "kitchen")
ROLLOUT = "11111111-2222-3333-4444-555555555555"


def jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), ((seed * 37) % 256, (seed * 91) % 256, 120)).save(buf, "JPEG")
    return buf.getvalue()


def scores(label: str, top: float) -> dict[str, float]:
    rest = (1 - top) / (len(CLASSES) - 1)
    return {c: (top if c == label else rest) for c in CLASSES}


def log_rows(engine, store: PhotoStore | None, specs: list[dict], rollout_id: str = ROLLOUT) -> list[str]:
    """Write predictions through the real LogWriter; each spec gives champion/candidate labels and
    optionally region, score, photo_id. Returns the request ids (photos stored unless photo=False)."""
    from serving.predlog import LogWriter, PredictionRecord

    writer = LogWriter(engine, flush_interval_s=0.02)
    ids = []
    for i, s in enumerate(specs):
        rid = str(uuid.uuid4())
        champ, cand, top = s["champion"], s.get("candidate"), s.get("score", 0.9)
        writer.submit(PredictionRecord(
            request_id=rid, ts=time.time() + i * 1e-3, rollout_id=rollout_id, stage="shadow", listing_id=f"L{i}",
            region=s.get("region", "eu-west"), served_by="champion", label=champ, score=top, latency_ms=5.0,
            photo_id=s.get("photo_id"), champion_version="1", champion_label=champ, champion_scores=scores(champ, top),
            candidate_version="2" if cand else None, candidate_label=cand,
            candidate_scores=scores(cand, top) if cand else None, shadow="candidate",
            shadow_status="ok" if cand else None, disagreement=(cand != champ) if cand else None))
        if store is not None and s.get("photo", True):
            store.put(rid, jpeg(i))
        ids.append(rid)
    assert writer.flush()
    writer.close()
    return ids


@pytest.fixture
def env(tmp_path: Path):
    s = settings_for(tmp_path, ROOMSIGHT_REVIEW__SPOT_CHECK_SHARE="0.1", ROOMSIGHT_REVIEW__LOW_CONFIDENCE="0.5")
    engine = create_engine(f"sqlite:///{tmp_path / 'roomsight.db'}", connect_args={"timeout": 30, "check_same_thread": False})
    metadata.create_all(engine)
    return s, engine, PhotoStore.for_settings(s)


def test_photos_kept_on_one_node_are_queued_by_a_review_server_on_another_through_a_shared_photo_dir(tmp_path: Path) -> None:
    """The ingress and the review server each looked in their own home/photos: on a cluster, a
    disagreement served on another node was never queued, and nothing said so."""
    shared = {"ROOMSIGHT_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.db'}"}
    engine = create_engine(shared["ROOMSIGHT_DATABASE_URL"])
    metadata.create_all(engine)
    serving_node = settings_for(tmp_path / "node-a", **shared)
    log_rows(engine, PhotoStore.for_settings(serving_node), [{"champion": "kitchen", "candidate": "bedroom"}] * 2)
    apart = settings_for(tmp_path / "node-b", **shared)
    assert queue.fill(engine, apart, ROLLOUT) == 0  # the photos are on node A's disk

    mount = {**shared, "ROOMSIGHT_REVIEW__PHOTO_DIR": str(tmp_path / "nfs" / "photos")}
    serving_node, review_node = settings_for(tmp_path / "node-a", **mount), settings_for(tmp_path / "node-b", **mount)
    ids = log_rows(engine, PhotoStore.for_settings(serving_node), [{"champion": "kitchen", "candidate": "bedroom"}] * 2,
                   rollout_id="22222222-2222-3333-4444-555555555555")
    assert queue.fill(engine, review_node, "22222222-2222-3333-4444-555555555555") == 2
    assert all((tmp_path / "nfs" / "photos" / rid[:2] / f"{rid}.jpg").exists() for rid in ids)


def items(engine) -> list:
    with engine.connect() as c:
        return c.execute(select(review_items)).all()


def n_verdicts(engine) -> int:
    with engine.connect() as c:
        return c.execute(select(func.count()).select_from(review_verdicts)).scalar_one()


def test_photo_store_round_trip_and_refuses_non_ids(tmp_path: Path) -> None:
    store = PhotoStore(tmp_path / "photos")
    rid = str(uuid.uuid4())
    store.put(rid, b"\xff\xd8jpeg")
    assert store.get(rid) == b"\xff\xd8jpeg" and store.has(rid)
    assert store.get(str(uuid.uuid4())) is None
    for bad in ("../../etc/passwd", "/tmp/x", "", "a/b", rid + "/../x"):
        with pytest.raises(BadRequestId):
            store.get(bad)
    store.put_image(rid, Image.new("RGB", (10, 10)))
    assert Image.open(io.BytesIO(store.get(rid))).format == "JPEG"
    assert all(p.resolve().is_relative_to(tmp_path / "photos") for p in (tmp_path / "photos").rglob("*"))


def test_kept_photos_are_pruned_unless_queued(env) -> None:
    import os

    from monitoring.review.photos import PhotoKeeper

    s, engine, store = env
    queued, stray = log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"},
                                             {"champion": "kitchen", "candidate": "kitchen"}])
    queue.fill(engine, s.model_copy(update={"review": s.review.model_copy(update={"spot_check_share": 0.0})}), ROLLOUT)
    fresh = str(uuid.uuid4())
    keeper = PhotoKeeper(PhotoStore.for_settings(s), interval_s=60)
    keeper.keep(fresh, _upload("PNG", (8, 8)))
    keeper.close()  # writes what is pending
    old = time.time() - s.review.photo_retention_h * 3600 - 60
    for rid in (queued, stray):
        path = next(store.root.glob(f"*/{rid}.jpg"))
        os.utime(path, (old, old))
    # Half-written photos a crash left between write and rename go once they are as old; a new one stays.
    crashed = store.root / queued[:2] / f"{queued}.4242.tmp"
    crashed.write_bytes(b"half a photo")
    os.utime(crashed, (old, old))
    writing = store.root / queued[:2] / f"{fresh}.4243.tmp"
    writing.write_bytes(b"being written")
    assert prune_photos(engine, s) == 2
    assert store.has(queued) and store.has(fresh) and not store.has(stray)
    assert not crashed.exists() and writing.exists()


def test_fill_samples_each_stratum_at_its_rate_and_records_the_probability(env) -> None:
    from monitoring.review.sampling import unit

    s, engine, store = env  # spot checks at 0.1, disagreements and low confidence at 1.0
    specs = ([{"champion": "kitchen", "candidate": "bedroom"}] * 5  # disagreements
             + [{"champion": "kitchen", "candidate": "kitchen", "score": 0.4}] * 3  # low confidence
             + [{"champion": "bedroom", "candidate": "bedroom", "region": "eu-west"}] * 300
             + [{"champion": "kitchen", "candidate": "bedroom", "photo": False}]  # no photo kept: cannot be shown
             + [{"champion": "kitchen"}])  # shadow answer not in yet: decided later
    ids = log_rows(engine, store, specs)
    added = queue.fill(engine, s, ROLLOUT)
    got = items(engine)
    assert added == len(got)
    reasons = [i.reason for i in got]
    assert reasons.count("disagreement") == 5 and reasons.count("low_confidence") == 3
    assert {i.reason: i.pi for i in got} == {"disagreement": 1.0, "low_confidence": 1.0, "spot_check": 0.1}
    # Poisson sampling by a stable hash: queued exactly when the photo's number is below the rate.
    agreeing = ids[8:308]
    assert {i.request_id for i in got if i.reason == "spot_check"} == {r for r in agreeing if unit(r) < 0.1}
    assert 10 <= reasons.count("spot_check") <= 55  # 300 x 0.1, far beyond 4 standard deviations
    assert queue.fill(engine, s, ROLLOUT) == 0  # idempotent
    assert len({i.photo_key for i in got}) == len(got)


def test_one_item_per_photo(env) -> None:
    s, engine, store = env
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "kitchen", "score": 0.3, "photo_id": "P1"},
                             {"champion": "kitchen", "candidate": "bedroom", "photo_id": "P1"},
                             {"champion": "bedroom", "candidate": "kitchen", "photo_id": "P2"}])
    assert queue.fill(engine, s, ROLLOUT) == 2
    # A photo sent twice is sampled once, as its first request: its inclusion probability is that one's.
    assert sorted((i.photo_key, i.reason) for i in items(engine)) == [("P1", "low_confidence"), ("P2", "disagreement")]


def test_claim_verdict_undo_replay_and_lease(env) -> None:
    s, engine, store = env
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"}] * 3)
    queue.fill(engine, s, ROLLOUT)
    a = queue.claim_next(engine, "ann", 60)
    assert queue.claim_next(engine, "ann", 60) == a  # one item at a time: the held one comes back
    b = queue.claim_next(engine, "bob", 60)
    assert b.item_id != a.item_id

    with pytest.raises(ReviewError) as e:
        queue.submit(engine, "bob", a.item_id, a.claim_id, "kitchen", CLASSES)  # not bob's
    assert e.value.status == 409
    with pytest.raises(ReviewError) as e:
        queue.submit(engine, "ann", a.item_id, a.claim_id, "garage", CLASSES)
    assert e.value.status == 422
    with pytest.raises(ReviewError) as e:
        queue.submit(engine, "ann", a.item_id, str(uuid.uuid4()), "kitchen", CLASSES)  # forged claim id
    assert e.value.status == 409
    assert n_verdicts(engine) == 0

    queue.submit(engine, "ann", a.item_id, a.claim_id, "kitchen", CLASSES)
    with pytest.raises(ReviewError) as e:
        queue.submit(engine, "ann", a.item_id, a.claim_id, "bedroom", CLASSES)  # replay
    assert e.value.status == 409 and "already recorded" in str(e.value)
    assert n_verdicts(engine) == 1

    back = queue.undo(engine, "ann", 60)
    assert back.item_id == a.item_id and back.claim_id != a.claim_id and n_verdicts(engine) == 0
    with pytest.raises(ReviewError):
        queue.submit(engine, "ann", a.item_id, a.claim_id, "bedroom", CLASSES)  # the undone claim is dead
    queue.submit(engine, "ann", back.item_id, back.claim_id, "unusable", CLASSES)
    with engine.connect() as c:
        assert c.execute(select(review_verdicts.c.reviewer, review_verdicts.c.label)).all() == [("ann", "unusable")]

    # An expired lease returns the item to the queue, and the late holder can no longer decide it.
    with engine.begin() as c:
        c.execute(update(review_items).where(review_items.c.id == b.item_id).values(lease_until=time.time() - 1))
    c2 = queue.claim_next(engine, "cat", 60)
    c3 = queue.claim_next(engine, "dan", 60)
    assert b.item_id in {c2.item_id, c3.item_id}
    with pytest.raises(ReviewError):
        queue.submit(engine, "bob", b.item_id, b.claim_id, "kitchen", CLASSES)
    assert queue.claim_next(engine, "eve", 60) is None
    p = queue.progress(engine, "ann")
    assert (p.pending, p.claimed, p.done, p.mine) == (0, 2, 1, 1)


def test_the_held_claim_that_comes_back_is_of_the_rollout_asked_for(env) -> None:
    """A claim held in another rollout was handed back as the next item of this one: the reviewer saw,
    and gave a verdict on, a photo of a rollout they had not opened."""
    s, engine, store = env
    other = "99999999-2222-3333-4444-555555555555"
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"}] * 2)
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"}] * 2, rollout_id=other)
    queue.fill(engine, s, ROLLOUT)
    queue.fill(engine, s, other)
    rollout_of = {i.id: i.rollout_id for i in items(engine)}
    elsewhere = queue.claim_next(engine, "ann", 60, rollout_id=other)
    assert rollout_of[elsewhere.item_id] == other
    here = queue.claim_next(engine, "ann", 60, rollout_id=ROLLOUT)
    assert here is not None and rollout_of[here.item_id] == ROLLOUT
    assert queue.claim_next(engine, "ann", 60, rollout_id=ROLLOUT) == here  # the held one of this rollout comes back
    assert queue.claim_next(engine, "ann", 60, rollout_id=other) == elsewhere


def _two_reviewers(engine, n: int) -> dict[str, list[str]]:
    done: dict[str, list[str]] = {"ann": [], "bob": []}
    errors: list[BaseException] = []

    def work(who: str) -> None:
        try:
            while (c := queue.claim_next(engine, who, 60)) is not None:
                queue.submit(engine, who, c.item_id, c.claim_id, "kitchen", CLASSES)
                done[who].append(c.item_id)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in done]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return done


def _check_concurrency(s, engine, store) -> None:
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"}] * 200)
    assert queue.fill(engine, s, ROLLOUT) == 200
    done = _two_reviewers(engine, 200)
    all_done = done["ann"] + done["bob"]
    assert len(all_done) == 200 and len(set(all_done)) == 200  # none twice, none lost
    assert done["ann"] and done["bob"]  # both really worked
    with engine.connect() as c:
        rows = c.execute(select(review_verdicts.c.item_id, review_verdicts.c.reviewer)).all()
        assert len(rows) == 200 and len({r.item_id for r in rows}) == 200
        assert c.execute(select(func.count()).where(review_items.c.status != "done")).scalar_one() == 0


def test_two_reviewers_200_items_sqlite(env) -> None:
    _check_concurrency(*env)


def test_two_reviewers_200_items_postgres(postgres_url: str, tmp_path: Path) -> None:
    s = settings_for(tmp_path, ROOMSIGHT_DATABASE_URL=postgres_url)
    engine = create_engine(postgres_url)
    metadata.drop_all(engine, tables=[review_items, review_verdicts])
    metadata.create_all(engine)
    try:
        _check_concurrency(s, engine, PhotoStore.for_settings(s))
    finally:
        engine.dispose()


def test_gate_evidence_and_stats_export_cli(env, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shell.cli import app
    from rollout.evidence import collect
    from rollout.conditions import gate
    from rollout.plan import Gate

    s, engine, store = env
    # Candidate right on the disagreements (truth = candidate's answer), both right on agreements.
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom", "region": "eu-west"}] * 12
             + [{"champion": "bathroom", "candidate": "bathroom", "score": 0.45, "region": "us-east"}] * 8)
    queue.fill(engine, s, ROLLOUT)
    truth = {"disagreement": "bedroom", "low_confidence": "bathroom"}
    while (c := queue.claim_next(engine, "ann", 60)) is not None:
        with engine.connect() as conn:
            reason = conn.execute(select(review_items.c.reason).where(review_items.c.id == c.item_id)).scalar_one()
        queue.submit(engine, "ann", c.item_id, c.claim_id, truth[reason], CLASSES)

    ev = collect(engine, s, ROLLOUT).values
    assert ev["reviewed"] == 20 and ev["candidate_win_rate"] == 1.0 and ev["decided_disagreements"] == 12
    assert ev["precision_margin"] > 0 and ev["candidate_precision_lower"] > ev["champion_precision_lower"]
    assert ev["candidate_reviewed"] == ev["champion_reviewed"] == 20
    # No class has 20 answers of the candidate's yet (bedroom 12, bathroom 8), and none is shown low.
    assert ev["min_class_precision"] == 1.0
    gates = (Gate(metric="reviewed", min=20), Gate(metric="precision_margin", min=0),
             Gate(metric="min_class_precision", min=0.8))
    assert all(gate(g, ev).passed for g in gates)
    assert gate(Gate(metric="reviewed", min=21), ev).outcome == "inconclusive"
    assert gate(Gate(metric="candidate_win_rate", min=0.5), ev).outcome == "inconclusive"  # 12 decided so far

    runner = CliRunner()
    envvars = {"ROOMSIGHT_HOME": str(s.home)}
    r = runner.invoke(app, ["review", "stats", "--rollout", ROLLOUT, "--json"], env=envvars)
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["overall"]["candidate"]["overall"]["n"] == 20 and out["gates"]["reviewed"] == 20
    assert set(out["regions"]) == {"eu-west", "us-east"}
    # On the traffic (weighted): every logged photo here was queued (rates 1.0), so the estimates are exact.
    weighted = out["weighted"]["overall"]
    assert weighted["candidate"]["accuracy"]["value"] == 1.0 and weighted["champion"]["accuracy"]["value"] == 0.4
    assert weighted["champion"]["coverage"] == 1.0 and out["raw"]["about"].startswith("unweighted")
    r = runner.invoke(app, ["review", "stats", "--rollout", ROLLOUT], env=envvars)
    assert r.exit_code == 0 and "candidate win rate 100.0%" in r.output, r.output
    assert "on the traffic" in r.output and "raw counts on the review queue" in r.output

    gold = tmp_path / "out" / "gold.csv"
    r = runner.invoke(app, ["review", "export", "--out", str(gold)], env=envvars)
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(gold.open()))
    assert len(rows) == 20 and {r["label"] for r in rows} == {"bedroom", "bathroom"}
    assert all((gold.parent / r["path"]).read_bytes()[:2] == b"\xff\xd8" for r in rows)


def test_review_cli_refuses_a_mistyped_rollout_and_an_export_with_nothing_or_nowhere_to_go(env, tmp_path: Path) -> None:
    """A mistyped --rollout used to read as a rollout with nothing reviewed (and `serve` as an empty
    queue); an export with no verdicts wrote an empty manifest; `--out FOLDER` made FOLDER_photos first."""
    from typer.testing import CliRunner

    from shell.cli import app

    s, engine, store = env
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"}] * 3)
    other = "99999999-2222-3333-4444-555555555555"
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "kitchen"}], rollout_id=other)
    envvars = {"ROOMSIGHT_HOME": str(s.home), "ROOMSIGHT_REVIEW__TOKENS": json.dumps({"ann": "ann-long-enough-token"})}
    out_dir = tmp_path / "exports"
    out_dir.mkdir()

    def run(*args: str) -> str:
        r = CliRunner().invoke(app, list(args), env=envvars)
        text = " ".join(r.output.split())
        assert r.exit_code == 1 and "Traceback" not in text, text
        return text

    typo = ROLLOUT[:-1] + "6"
    for command in (["stats"], ["export", "--out", str(out_dir / "x.csv")], ["serve", "--port", str(free_port())]):
        text = run("review", *command, "--rollout", typo)
        assert f"--rollout {typo}: no such rollout" in text and f"recent ones: {other}, {ROLLOUT}" in text
    assert "nothing to export: no usable verdicts yet" in run("review", "export", "--out", str(out_dir / "x.csv"))
    assert f"for rollout {other} yet" in run("review", "export", "--out", str(out_dir / "x.csv"), "--rollout", other)
    assert f"--out {out_dir} is a folder" in run("review", "export", "--out", str(out_dir))
    assert "give a .csv file name" in run("review", "export", "--out", str(out_dir / "gold"))
    assert list(out_dir.iterdir()) == [] and not (tmp_path / "exports_photos").exists()  # nothing written anywhere

    # Reports show ids cut to 8 characters: a unique beginning is enough, an ambiguous one is said.
    r = CliRunner().invoke(app, ["review", "stats", "--json", "--rollout", other[:8]], env=envvars)
    assert r.exit_code == 0 and json.loads(r.output)["rollout_id"] == other, r.output
    sibling = ROLLOUT[:9] + "9999" + ROLLOUT[13:]
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "kitchen"}], rollout_id=sibling)
    assert f"--rollout {ROLLOUT[:8]} is ambiguous: it begins {ROLLOUT}, {sibling}" in run("review", "stats", "--rollout", ROLLOUT[:8])


def _upload(fmt: str, size: tuple[int, int], max_side: int | None = None):
    from roomsight.images import decode_image

    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    Image.effect_noise(size, 50).convert("RGB").save(buf, fmt, exif=exif)
    return decode_image(buf.getvalue(), max_side=max_side)


def test_kept_photo_is_what_the_model_saw_without_metadata(tmp_path) -> None:
    from roomsight.images import jpeg_without_metadata

    store = PhotoStore(tmp_path)
    as_uploaded = _upload("JPEG", (60, 40))  # full size: kept byte for byte, minus metadata
    store.put_upload(rid := str(uuid.uuid4()), as_uploaded)
    kept = store.get(rid)
    assert b"PhoneMaker" in as_uploaded.data and kept is not None and b"PhoneMaker" not in kept
    assert kept == jpeg_without_metadata(as_uploaded.data)  # the uploaded bytes, metadata segments out
    assert Image.open(io.BytesIO(kept)).tobytes() == as_uploaded.image.tobytes()
    for decoded in (_upload("JPEG", (600, 400), max_side=120), _upload("PNG", (60, 40))):  # re-encoded
        store.put_upload(rid := str(uuid.uuid4()), decoded)
        kept = store.get(rid)
        assert kept is not None and b"PhoneMaker" not in kept
        assert Image.open(io.BytesIO(kept)).size == decoded.image.size


def test_a_photo_taken_upside_down_is_kept_upright_as_the_model_saw_it(tmp_path) -> None:
    """Its size unchanged by the turn, an upside-down photo was kept as its uploaded bytes minus their
    metadata, the orientation tag with them: reviewers saw it upside down, not as the model did."""
    import numpy as np

    from roomsight.images import decode_image

    raw = Image.new("RGB", (60, 40), (230, 230, 230))
    raw.paste((20, 20, 20), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 3  # turned half a turn
    buf = io.BytesIO()
    raw.save(buf, "JPEG", quality=95, exif=exif)
    decoded = decode_image(buf.getvalue())
    store = PhotoStore(tmp_path)
    store.put_upload(rid := str(uuid.uuid4()), decoded)
    kept = np.asarray(Image.open(io.BytesIO(store.get(rid) or b"")).convert("RGB"), dtype=float)
    assert np.abs(kept - np.asarray(decoded.image, dtype=float)).mean() < 4


def test_export_leaves_out_disputed_photos(env, tmp_path: Path) -> None:
    """A photo whose reviewers never agreed has no truth; the export wrote it with the label `disputed`,
    a class no model has, into the manifest `rollout train --data` reads."""
    from typer.testing import CliRunner

    from shell.cli import app

    s, engine, store = env
    two = settings_for(s.home, ROOMSIGHT_REVIEW__DOUBLE_REVIEW_SHARE="1.0",
                       ROOMSIGHT_REVIEW__TOKENS=json.dumps({"ann": "ann-long-enough-token", "bob": "bob-long-enough-token"}))
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"}] * 2)
    queue.fill(engine, two, ROLLOUT)
    # Both photos go to both reviewers, who agree on one and not on the other; with no third reviewer
    # the second is disputed (stats.resolve).
    for who, labels in (("ann", ["bedroom", "bedroom"]), ("bob", ["bedroom", "kitchen"])):
        for label in labels:
            c = queue.claim_next(engine, who, 60)
            queue.submit(engine, who, c.item_id, c.claim_id, label, CLASSES, reviewers=2)
    with engine.connect() as conn:
        assert sorted(conn.execute(select(review_items.c.truth)).scalars()) == ["bedroom", DISPUTED]
    gold = tmp_path / "out" / "gold.csv"
    r = CliRunner().invoke(app, ["review", "export", "--out", str(gold)], env={"ROOMSIGHT_HOME": str(s.home)})
    assert r.exit_code == 0, r.output
    assert [row["label"] for row in csv.DictReader(gold.open())] == ["bedroom"]


def query_plans(engine, run):  # noqa: ANN001, ANN201
    """SQLite's plan of each SELECT `run()` executes: what it returned, and the plans."""
    from sqlalchemy import text
    from sqlalchemy.engine import Connection

    statements: list[str] = []
    real_execute = Connection.execute

    def spy(conn, stmt, params=None, *args, **kwargs):  # noqa: ANN001, ANN202
        if hasattr(stmt, "selected_columns"):
            statements.append(str(stmt.compile(engine, compile_kwargs={"literal_binds": True})))
        return real_execute(conn, stmt, params, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Connection, "execute", spy)
        out = run()
    with engine.connect() as conn:
        return out, [" ".join(str(r) for r in conn.execute(text("EXPLAIN QUERY PLAN " + q))) for q in statements]


def test_a_rollout_named_by_its_first_characters_is_found_by_index_seeks_not_a_scan_of_the_log(env) -> None:
    """`--rollout 0f1e` resolved with a LIKE on the prefix, which no index serves: every command naming a
    rollout read an entry per logged request."""
    s, engine, store = env
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"}] * 3)
    queue.fill(engine, s, ROLLOUT)
    other = ROLLOUT[:9] + "9" + ROLLOUT[10:]
    log_rows(engine, None, [{"champion": "kitchen", "candidate": "kitchen"}], rollout_id=other)
    found, plans = query_plans(engine, lambda: [queue.rollouts_matching(engine, given)
                                                for given in (ROLLOUT[:8], ROLLOUT[:10], "2")])
    assert found == [{ROLLOUT, other}, {ROLLOUT}, set()]
    assert plans and not [p for p in plans if "SCAN" in p], plans


def test_the_review_gate_evidence_reads_the_resolved_items_index(env) -> None:
    """By the rollout alone SQLite's planner took the index of every queued item (`rollout status` read
    an entry per queued photo, most never reviewed); the resolved items' partial index holds only those
    with a truth."""
    from monitoring.review.evidence import evidence

    s, engine, store = env
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"}] * 3)
    queue.fill(engine, s, ROLLOUT)
    found, (plan,) = query_plans(engine, lambda: evidence(engine, s, ROLLOUT))
    assert found["reviewed"] == 0
    assert "ix_review_items_resolved" in plan, plan


def test_review_stats_prints_a_region_as_it_was_sent(env, monkeypatch) -> None:
    """A region is whatever a /predict caller sent: read as console markup, `eu[/x]west` stopped `rollout review
    stats` with a MarkupError, and `[bold]us-east` printed as us-east, beside the real one."""
    from typer.testing import CliRunner

    from roomsight import console
    from shell.cli import app

    # Wide enough that no cell wraps. Not COLUMNS: the console read it once, when whichever test first imported it.
    monkeypatch.setattr(console.console, "_width", 250)

    s, engine, store = env
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom", "region": "eu[/x]west"},
                             {"champion": "kitchen", "candidate": "bedroom", "region": "[bold]us-east"}])
    queue.fill(engine, s, ROLLOUT)
    while (c := queue.claim_next(engine, "ann", 60)) is not None:
        queue.submit(engine, "ann", c.item_id, c.claim_id, "bedroom", CLASSES)
    r = CliRunner().invoke(app, ["review", "stats", "--rollout", ROLLOUT], env={"ROOMSIGHT_HOME": str(s.home)})
    assert r.exit_code == 0, r.output
    assert "eu[/x]west" in r.output and "[bold]us-east" in r.output


def test_undo_reaches_only_the_verdicts_of_the_queue_it_serves(env) -> None:
    """A reviewer's last verdict may be on a rollout that ended: `u` on the page serving the next one reopened it,
    its truth gone from the finished rollout's figures, the photo back in the reviewer's hands."""
    s, engine, store = env
    log_rows(engine, store, [{"champion": "kitchen", "candidate": "bedroom"}])
    queue.fill(engine, s, ROLLOUT)
    c = queue.claim_next(engine, "ann", 60, ROLLOUT)
    queue.submit(engine, "ann", c.item_id, c.claim_id, "bedroom", CLASSES)
    later = "22222222-2222-3333-4444-555555555555"
    with pytest.raises(ReviewError, match="nothing to undo") as refused:
        queue.undo(engine, "ann", 60, later)
    assert refused.value.status == 409
    with engine.connect() as conn:
        assert conn.execute(select(review_items.c.truth).where(review_items.c.id == c.item_id)).scalar_one() == "bedroom"
    assert queue.undo(engine, "ann", 60, ROLLOUT).item_id == c.item_id  # in its own queue, as before


def test_a_photo_that_cannot_be_written_leaves_no_half_file(tmp_path, monkeypatch) -> None:
    import os

    def full_disk(src, dst):  # noqa: ANN001, ARG001
        raise OSError(28, "No space left on device")

    store = PhotoStore(tmp_path / "photos")
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        store.put(str(uuid.uuid4()), b"jpeg")
    assert list(store.root.glob("*/*")) == []
