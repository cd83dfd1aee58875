"""The read-only rollout page of `rollout api`, over real HTTP (uvicorn on localhost) with a real MLflow
registry, SQLite log, photo store and review queue, and in headless Chromium at desktop and phone widths:
sign-in with an operator token, the verdict first, outcomes, plots and photos, no request leaving the
server, and the page following a promotion without reloading. No Ray."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from rollout.api import create_app
from rollout.report.live import LiveReport
from tests.test_control_api import OLGA, TOKENS
from tests.report_world import log_traffic, review, started
from tests.test_review_web import CHROMIUM, running

SHOTS = Path(os.environ.get("ROOMSIGHT_SCREENSHOTS", "")) if os.environ.get("ROOMSIGHT_SCREENSHOTS") else None


@pytest.fixture
def live_rollout(settings):
    cp, rid = started(settings)
    log_traffic(settings, cp.engine, rid, 180)
    review(settings, cp.engine, rid, 40)
    live = LiveReport(cp, rebuild_s=3, poll_s=1, drift_every_s=600)
    with running(create_app(cp, TOKENS, report=live)) as url:
        yield cp, rid, url, live
    live.stop()


def test_report_api_needs_a_token_and_is_read_only(live_rollout) -> None:
    cp, rid, url, live = live_rollout
    with httpx.Client(base_url=url, timeout=120) as http:
        page = http.get("/")
        assert page.status_code == 200 and 'id="token"' in page.text and rid not in page.text  # no data without a token
        for path in ("/api/report", "/api/report/file"):
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                r = http.get(path, headers=headers)
                assert r.status_code == 401 and "token" in r.json()["error"]
        r = http.get("/api/report", headers=OLGA)
        assert r.status_code == 200 and rid in r.text and r.text.lstrip().startswith("<article")
        assert r.headers["x-operator"] == "olga" and r.headers["x-refresh-s"] == "1"
        etag, answers = r.headers["etag"], []
        for _ in range(5):  # a rebuild may land in between: its 200 carries a new ETag, asked about next
            again = http.get("/api/report", headers={**OLGA, "If-None-Match": etag})
            answers.append(again.status_code)
            if again.status_code == 304:
                assert again.headers["etag"] == etag and not again.content
                break
            assert again.status_code == 200 and again.headers["etag"] != etag
            etag = again.headers["etag"]
        assert answers[-1] == 304, answers  # an unchanged report costs no body
        whole = http.get("/api/report/file", headers=OLGA)
        assert whole.status_code == 200 and whole.text.lstrip().startswith("<!doctype html>")
        assert f'filename="rollout-{rid[:8]}.html"' in whole.headers["content-disposition"]
        assert http.get("/report/assets/../api.py").status_code == 404
        assert http.get("/report/assets/secrets.txt").status_code == 404
        for asset in ("page.js", "page.css", "report.css"):
            assert http.get(f"/report/assets/{asset}").status_code == 200
        # Only GET: the page's routes change nothing.
        assert http.post("/api/report", headers=OLGA).status_code == 405


def test_a_report_that_cannot_be_built_says_why(tmp_path, pg_database, postgres_server) -> None:
    """The routing database out of reach (MLflow out of reach is not enough: the report is built without it)."""
    from rollout.control import ControlPlane
    from rollout.plan import load_plan
    from tests.conftest import settings_for

    control = ControlPlane(settings_for(tmp_path, ROOMSIGHT_DATABASE_URL=pg_database), load_plan())
    postgres_server.stop()
    live = LiveReport(control, poll_s=1)
    try:
        with running(create_app(control, TOKENS, report=live)) as url, httpx.Client(base_url=url, timeout=120) as http:
            r = http.get("/api/report", headers=OLGA)
            assert r.status_code == 503 and "could not be built" in r.json()["error"] and r.headers["retry-after"] == "5"
    finally:
        live.stop()
        postgres_server.start()


def test_page_in_chromium_at_desktop_and_phone_widths_follows_a_promotion(live_rollout, tmp_path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    cp, rid, url, live = live_rollout
    shots = SHOTS or tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        try:
            for name, width, height in (("desktop", 1280, 900), ("phone", 390, 844)):
                page = browser.new_page(viewport={"width": width, "height": height})
                requested: list[str] = []
                page.on("request", lambda req: requested.append(req.url))
                page.goto(url + "/")
                page.fill("#token", "wrong-token")
                page.press("#token", "Enter")
                expect(page.locator("#login-error")).to_contain_text("not accepted")
                page.fill("#token", "olga-operator-token")
                page.press("#token", "Enter")
                expect(page.locator("#stage")).to_have_text("shadow", timeout=120_000)
                expect(page.locator("#who")).to_contain_text("olga")

                verdict = page.locator(".verdict")
                expect(verdict).to_contain_text("Failing")
                box = verdict.bounding_box()
                assert box is not None and box["y"] < height / 2  # the verdict first, above the fold
                assert page.locator(".conditions .outcome--pass").count() >= 2
                assert page.locator(".conditions .outcome--fail").count() >= 1
                page.wait_for_function("[...document.querySelectorAll('.plot img')].every(i => i.naturalWidth > 0)")
                assert page.locator(".plot img").count() == 5
                page.wait_for_function("[...document.querySelectorAll('.thumb img')].some(i => i.naturalWidth > 0)")
                assert page.locator(".thumb").count() >= 2
                # Readable on a phone: nothing wider than the screen except inside a scrolling table.
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.screenshot(path=str(shots / f"rollout-page-{name}.png"), full_page=True)
                page.screenshot(path=str(shots / f"rollout-page-{name}-top.png"))
                assert all(u.startswith(url) or u.startswith(("data:", "blob:")) for u in requested), requested

                if name == "phone":
                    # The page follows the rollout: a promotion shows up without a reload.
                    page.evaluate("window.__notReloaded = true")
                    cp.promote("limited", ("eu-west",), force=True, reason="watch eu-west closely")
                    log_traffic(cp.settings, cp.engine, rid, 30, seed=3, span_s=5, end=time.time(), stage="limited",
                                candidate_regions=("eu-west",))
                    expect(page.locator("#stage")).to_have_text("limited", timeout=60_000)
                    expect(page.locator(".step--current .step__name")).to_have_text("limited")
                    expect(page.locator(".verdict")).to_contain_text("gradual")
                    expect(page.locator("#events")).to_contain_text("watch eu-west closely", timeout=60_000)
                    assert page.evaluate("window.__notReloaded") is True
                    page.screenshot(path=str(shots / "rollout-page-phone-after-promote.png"), full_page=True)
                page.close()
        finally:
            browser.close()


def test_after_an_idle_stop_the_first_request_waits_for_a_fresh_report(monkeypatch) -> None:
    """The thread stops when nobody asks; the next request got the report from before the stop as the live one
    (a promotion made meanwhile unseen, and a downloaded file stale however long the pause had been)."""
    from types import SimpleNamespace

    from rollout.report import live as live_module
    from rollout.report.live import Built

    generation = [1]
    control = SimpleNamespace(current=lambda: SimpleNamespace(generation=generation[0]))

    def build(_self: LiveReport) -> Built:
        return Built(f"<article>{generation[0]}</article>", "", f'"{generation[0]}"', None)

    monkeypatch.setattr(LiveReport, "_build", build)
    monkeypatch.setattr(live_module, "CHECK_S", 0.01)
    live = LiveReport(control, idle_s=0.05)  # type: ignore[arg-type]
    try:
        assert live.latest(wait_s=5).fragment == "<article>1</article>"
        deadline = time.monotonic() + 5
        while live._thread is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert live._thread is None  # stopped: nobody asked for idle_s
        generation[0] = 2  # promoted while nobody watched
        assert live.latest(wait_s=5).fragment == "<article>2</article>"
    finally:
        live.stop()


def test_an_operator_named_outside_latin_1_gets_the_report(monkeypatch) -> None:
    """`X-Operator` carried the token holder's name as it is: a header is Latin-1, and an operator named Łukasz
    got a 500 on every refresh of the page."""
    from types import SimpleNamespace

    from fastapi.testclient import TestClient

    from rollout.report.live import Built

    class Control(SimpleNamespace):
        def with_actor(self, actor: str) -> Control:
            return Control(settings=self.settings, actor=actor)

    control = Control(settings=SimpleNamespace(control=SimpleNamespace(scrape_tokens={})), actor="?")
    live = SimpleNamespace(latest=lambda: Built("<article></article>", "<!doctype html>", '"e"', None), error=None,
                           poll_s=5.0)
    api = TestClient(create_app(control, {"Łukasz": "lukasz-token"}, report=live), raise_server_exceptions=False)  # type: ignore[arg-type]
    r = api.get("/api/report", headers={"Authorization": "Bearer lukasz-token"})
    assert r.status_code == 200 and r.text == "<article></article>"
    from urllib.parse import unquote

    assert unquote(r.headers["x-operator"]) == "Łukasz"


def test_a_failing_build_is_retried_after_a_doubling_pause_not_at_every_check(monkeypatch) -> None:
    """A build that failed left its generation unbuilt, so the thread tried again at every one-second check
    while a page was open, hammering an MLflow or a database already out of reach."""
    from types import SimpleNamespace

    from rollout.report import live as live_module

    attempts = []
    control = SimpleNamespace(current=lambda: SimpleNamespace(generation=1))

    def build(_self: LiveReport) -> None:
        attempts.append(time.monotonic())
        raise ConnectionError("MLflow is down")

    monkeypatch.setattr(LiveReport, "_build", build)
    monkeypatch.setattr(live_module, "CHECK_S", 0.01)
    live = LiveReport(control, rebuild_s=30, idle_s=60)  # type: ignore[arg-type]
    try:
        assert live.latest(wait_s=5) is None and "MLflow is down" in (live.error or "")
        time.sleep(1.0)  # a hundred checks
        assert 3 <= len(attempts) <= 8  # pauses of 0.02, 0.04, 0.08, ... s at these checks
    finally:
        live.stop()
