"""The reviewer page over real HTTP (uvicorn on localhost): tokens, blind items, verdicts, undo, replays,
and a headless Chromium labelling with the keyboard. No Ray."""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import create_engine, func, select

from monitoring.review import queue
from monitoring.review.photos import PhotoStore
from monitoring.review.web import create_app
from roomsight.tables import metadata, review_items, review_verdicts
from tests.conftest import free_port, settings_for
from tests.test_review_queue import CLASSES, ROLLOUT, log_rows

CHROMIUM = Path("/usr/bin/chromium")
TOKENS = '{"ann": "ann-secret-token", "bob": "bob-secret-token"}'
ANN = {"Authorization": "Bearer ann-secret-token"}
BOB = {"Authorization": "Bearer bob-secret-token"}


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a free localhost port for the duration of the block."""
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


@pytest.fixture
def server(tmp_path: Path):
    """The review app on a free localhost port, over a log with 6 disagreements queued."""
    s = settings_for(tmp_path, ROOMSIGHT_REVIEW__TOKENS=TOKENS)
    engine = create_engine(f"sqlite:///{tmp_path / 'roomsight.db'}", connect_args={"timeout": 30, "check_same_thread": False})
    metadata.create_all(engine)
    log_rows(engine, PhotoStore.for_settings(s), [{"champion": "kitchen", "candidate": "bedroom"}] * 6)
    assert queue.fill(engine, s, ROLLOUT) == 6
    with running(create_app(s, engine)) as url:
        yield url, engine


def verdicts(engine) -> list:
    with engine.connect() as c:
        return c.execute(select(review_verdicts.c.reviewer, review_verdicts.c.label, review_verdicts.c.item_id)).all()


def test_api_tokens_blindness_and_bad_verdicts(server) -> None:
    url, engine = server
    with httpx.Client(base_url=url) as c:
        assert "roomsight review" in c.get("/").text
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "ann-secret-token"}):
            assert c.post("/api/claim", headers=headers).status_code == 401
            assert c.get("/api/progress", headers=headers).status_code == 401
        claim = c.post("/api/claim", headers=ANN).json()
        item = claim["item"]
        # Blind: nothing about either model, nor why the item was queued.
        text = str(claim).lower()
        assert not any(w in text for w in ("kitchen", "bedroom", "champion", "candidate", "disagree", "score"))
        assert c.get("/api/me", headers=ANN).json()["labels"] == list(CLASSES)
        photo = c.get(f"/{item['photo']}", headers=ANN)
        assert photo.status_code == 200 and photo.content[:2] == b"\xff\xd8"
        assert c.get(f"/{item['photo']}", headers=BOB).status_code == 404  # only its holder sees it

        body = {"item_id": item["item_id"], "claim_id": item["claim_id"], "label": "kitchen"}
        assert c.post("/api/verdict", json=body).status_code == 401
        assert c.post("/api/verdict", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert c.post("/api/verdict", json=body, headers=BOB).status_code == 409  # not bob's claim
        assert c.post("/api/verdict", json={**body, "label": "garage"}, headers=ANN).status_code == 422
        assert c.post("/api/verdict", json={**body, "extra": 1}, headers=ANN).status_code == 422
        assert verdicts(engine) == []

        r = c.post("/api/verdict", json=body, headers=ANN)
        assert r.status_code == 200 and r.json()["progress"]["mine"] == 1
        replay = c.post("/api/verdict", json=body, headers=ANN)
        assert replay.status_code == 409 and "already recorded" in replay.json()["error"]
        assert verdicts(engine) == [("ann", "kitchen", item["item_id"])]
        unknown = {"item_id": str(uuid.uuid4()), "claim_id": str(uuid.uuid4()), "label": "kitchen"}
        assert c.post("/api/verdict", json=unknown, headers=ANN).status_code == 404

        undone = c.post("/api/undo", headers=ANN).json()["item"]
        assert undone["item_id"] == item["item_id"] and verdicts(engine) == []
        assert c.post("/api/undo", headers=ANN).status_code == 409  # nothing left to undo
        p = c.get("/api/progress", headers=ANN).json()
        assert (p["pending"], p["claimed"], p["done"], p["mine"]) == (5, 1, 0, 0)


def test_two_reviewers_over_http_never_share_an_item(tmp_path: Path) -> None:
    s = settings_for(tmp_path, ROOMSIGHT_REVIEW__TOKENS=TOKENS)
    engine = create_engine(f"sqlite:///{tmp_path / 'roomsight.db'}", connect_args={"timeout": 30, "check_same_thread": False})
    metadata.create_all(engine)
    log_rows(engine, PhotoStore.for_settings(s), [{"champion": "kitchen", "candidate": "bedroom"}] * 200)
    assert queue.fill(engine, s, ROLLOUT) == 200
    with running(create_app(s, engine)) as url:
        done: dict[str, list[str]] = {"ann": [], "bob": []}
        failures: list[str] = []

        def work(who: str, headers: dict[str, str]) -> None:
            with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
                deadline = time.monotonic() + 100
                while time.monotonic() < deadline:
                    if (item := c.post("/api/claim").json()["item"]) is None:
                        # A photo the other reviewer holds may come back wanting a second opinion.
                        p = c.get("/api/progress").json()
                        if p["pending"] + p["claimed"] == 0:
                            return
                        time.sleep(0.05)
                        continue
                    r = c.post("/api/verdict", json={"item_id": item["item_id"], "claim_id": item["claim_id"],
                                                     "label": "bedroom"})
                    if r.status_code != 200:
                        failures.append(r.text)
                        return
                    done[who].append(item["item_id"])

        threads = [threading.Thread(target=work, args=("ann", ANN)), threading.Thread(target=work, args=("bob", BOB))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not failures, failures
    assert done["ann"] and done["bob"]
    # review.double_review_share of the photos go to both reviewers; every other photo to exactly one.
    with engine.connect() as conn:
        wanted = dict(conn.execute(select(review_items.c.id, review_items.c.reviews_wanted)).all())
        statuses = set(conn.execute(select(review_items.c.status)).scalars())
    assert 0 < sum(w == 2 for w in wanted.values()) < 200 and statuses == {"done"}
    assert all(len(set(ids)) == len(ids) for ids in done.values())  # nobody judged a photo twice
    assert Counter(done["ann"] + done["bob"]) == wanted
    rows = verdicts(engine)
    assert len(rows) == sum(wanted.values()) and {r.reviewer for r in rows} == {"ann", "bob"}


@contextlib.contextmanager
def reviewer_page(url: str) -> Iterator[object]:
    """A headless Chromium page on the reviewer page at `url` (skips the test without Chromium)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        try:
            page = browser.new_page()
            page.goto(url + "/")
            yield page
        finally:
            browser.close()


def signed_in(page) -> str:  # noqa: ANN001 - a playwright Page
    """Sign in as ann and wait for the first photo; returns its item id."""
    page.fill("#token", "ann-secret-token")
    page.press("#token", "Enter")
    page.wait_for_function("document.getElementById('photo').naturalWidth > 0")
    return page.locator("#photo").get_attribute("data-item")


def test_browser_login_label_with_keys_and_undo(server) -> None:
    from playwright.sync_api import expect

    url, engine = server
    with reviewer_page(url) as page:
        page.fill("#token", "wrong-token")
        page.press("#token", "Enter")
        expect(page.locator("#login-error")).to_contain_text("not accepted")

        page.fill("#token", "ann-secret-token")
        page.press("#token", "Enter")
        expect(page.locator("#who")).to_contain_text("ann")
        photo = page.locator("#photo")
        page.wait_for_function("document.getElementById('photo').naturalWidth > 0")
        first = photo.get_attribute("data-item")
        expect(page.locator("#labels button")).to_have_count(len(CLASSES) + 1)

        page.keyboard.press("3")  # the third class: kitchen
        expect(page.locator("#progress")).to_contain_text("yours 1")
        page.wait_for_function(f"document.getElementById('photo').dataset.item !== '{first}'")
        second = photo.get_attribute("data-item")
        page.keyboard.press("0")  # not a room / unusable
        expect(page.locator("#progress")).to_contain_text("yours 2")
        assert sorted((v.label, v.item_id) for v in verdicts(engine)) == sorted(
            [("kitchen", first), ("unusable", second)])
        # Keys pressed while an action is in flight are ignored (no double labels): let the next photo load.
        page.wait_for_function(f"!['{first}', '{second}'].includes(document.getElementById('photo').dataset.item)")

        page.keyboard.press("u")  # undo the last verdict: its photo comes back
        expect(page.locator("#progress")).to_contain_text("yours 1")
        page.wait_for_function(f"document.getElementById('photo').dataset.item === '{second}'")
        page.keyboard.press("1")
        expect(page.locator("#progress")).to_contain_text("yours 2")
        assert sorted((v.reviewer, v.label, v.item_id) for v in verdicts(engine)) == sorted(
            [("ann", "kitchen", first), ("ann", "bedroom", second)])
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(review_verdicts)).scalar_one() == 2


def test_browser_moves_on_when_its_item_was_taken_by_another_reviewer(server) -> None:
    """A lease that lapsed while the page sat idle, its item claimed by someone else since: the verdict is refused
    and the page said "claim the next item" with no way to but a reload, every key refused the same way."""
    from playwright.sync_api import expect
    from sqlalchemy import update

    url, engine = server
    with reviewer_page(url) as page:
        first = signed_in(page)
        with engine.begin() as c:  # ann's lease lapsed and bob claimed the photo
            c.execute(update(review_items).where(review_items.c.id == first)
                      .values(claim_id=str(uuid.uuid4()), claimed_by="bob", lease_until=time.time() + 600))

        page.keyboard.press("3")
        expect(page.locator("#error")).to_contain_text("not claimed by you")
        page.wait_for_function(f"document.getElementById('photo').dataset.item !== '{first}'")
        second = page.locator("#photo").get_attribute("data-item")
        page.keyboard.press("3")
        expect(page.locator("#progress")).to_contain_text("yours 1")
        assert verdicts(engine) == [("ann", "kitchen", second)]


def test_browser_never_shows_the_last_photo_for_an_item_whose_photo_is_gone(server, tmp_path: Path) -> None:
    """The next item's photo no longer stored: the page kept showing the photo just judged under the new item,
    so a reviewer who labelled what they saw gave the new item the last photo's room type."""
    from playwright.sync_api import expect

    url, engine = server
    with reviewer_page(url) as page:
        first = signed_in(page)
        with engine.connect() as c:
            shown = c.execute(select(review_items.c.request_id).where(review_items.c.id == first)).scalar_one()
        stored = list((tmp_path / "photos").glob("*/*.jpg"))
        assert len(stored) == 6
        for photo in stored:
            if photo.stem != shown:
                photo.unlink()  # every other photo pruned or lost

        page.keyboard.press("3")
        expect(page.locator("#error")).to_contain_text("no longer stored")
        expect(page.locator("#photo-box")).to_be_hidden()
        assert page.locator("#photo").get_attribute("data-item") != first


def test_ids_with_a_nul_are_refused_on_postgresql(tmp_path: Path, pg_database: str) -> None:
    """PostgreSQL's text cannot hold NUL: an item or claim id with one reached the query and was a 500 (SQLite
    took it and found nothing, so the fuzzing there never saw it)."""
    from fastapi.testclient import TestClient

    s = settings_for(tmp_path, ROOMSIGHT_REVIEW__TOKENS=TOKENS)
    engine = create_engine(pg_database)
    metadata.create_all(engine)
    try:
        api = TestClient(create_app(s, engine), raise_server_exceptions=False)
        for path in ("/api/photo/%00", f"/api/photo/{uuid.uuid4()}%00"):
            r = api.get(path, headers=ANN)
            assert r.status_code in (404, 422) and r.json()["error"], (path, r.status_code)
        for body in ({"item_id": "\u0000", "claim_id": str(uuid.uuid4()), "label": "unusable"},
                     {"item_id": str(uuid.uuid4()), "claim_id": "a\u0000", "label": "unusable"}):
            r = api.post("/api/verdict", json=body, headers=ANN)
            assert r.status_code in (404, 409, 422) and r.json()["error"], (body, r.status_code)
    finally:
        engine.dispose()
