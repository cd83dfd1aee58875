"""Property-based fuzzing of the reviewer JSON API over real HTTP (uvicorn on localhost, SQLite queue):
whatever the headers, body or path, the answer is a 2xx or a 4xx whose JSON body carries an error
message, never a 5xx; valid requests mixed into the garbage still succeed, photos go only to the item's
holder, and afterwards the server still hands out and records a claim correctly. No Ray."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, reject, settings as hsettings, strategies as st
from sqlalchemy import create_engine, func, select

from monitoring.review import queue
from monitoring.review.photos import PhotoStore
from monitoring.review.web import create_app
from roomsight.tables import metadata, review_items, review_verdicts
from tests.conftest import settings_for
from tests.test_review_queue import CLASSES, ROLLOUT, log_rows
from tests.test_review_web import running

EXAMPLES = int(os.environ.get("ROOMSIGHT_FUZZ_EXAMPLES", "1000"))
TOKENS = {"ann": "ann-secret-token", "bob": "bob-secret-token"}
ANN = {"Authorization": f"Bearer {TOKENS['ann']}"}
N_ITEMS = 60
FUZZ = hsettings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[httpx.Client, Any]]:
    """One review app for the module over a queue of disagreements, and a client for it."""
    home: Path = tmp_path_factory.mktemp("fuzz-review")
    s = settings_for(home, ROOMSIGHT_REVIEW__TOKENS=json.dumps(TOKENS))
    engine = create_engine(f"sqlite:///{home / 'roomsight.db'}", connect_args={"timeout": 30, "check_same_thread": False})
    metadata.create_all(engine)
    log_rows(engine, PhotoStore.for_settings(s), [{"champion": "kitchen", "candidate": "bedroom"}] * N_ITEMS)
    assert queue.fill(engine, s, ROLLOUT) == N_ITEMS
    with running(create_app(s, engine)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client, engine
    engine.dispose()


# -- strategies ---------------------------------------------------------------------------------------
def _huge(piece: str, times: int) -> str:
    return piece * times


# What h11 lets a client put in a header value: visible Latin-1, inner spaces and tabs.
header_chars = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
header_text = st.text(header_chars, max_size=80).map(lambda t: t.strip(" \t"))
auths = st.one_of(
    st.none(),
    st.sampled_from([f"Bearer {t}" for t in TOKENS.values()]),
    st.sampled_from(["bearer ann-secret-token", "BEARER  bob-secret-token ", "Bearer", "Bearer ", "Basic YW5uOmFubg==",
                     "ann-secret-token", "Bearer ann-secret-tokeN", "Bearer ann-secret-token2", "Token ann-secret-token",
                     "Bearer ann-secret-token bob-secret-token", "Bearer\tann-secret-token", "Bearer \u00e9\u00ff"]),
    header_text.map("Bearer ".__add__),
    header_text,
    st.builds(_huge, st.sampled_from(["a", "ann-secret-token", "\u00e9"]), st.integers(500, 4000)).map("Bearer ".__add__),
).map(lambda a: None if a is None else a.strip(" \t"))

# Unicode beyond the defaults: lone surrogates (valid in JSON text as \ud800 escapes), NUL, bidi controls.
odd_text = st.one_of(st.text(max_size=60), st.text(st.characters(categories=["Cs", "Cc", "Cf", "Co"]), max_size=8),
                     st.builds(_huge, st.sampled_from(["x", "\u00e9", "\U0001f600", "\ud800"]), st.integers(37, 20_000)))
ids = st.one_of(odd_text, st.uuids().map(str), st.uuids().map(lambda u: str(u).upper()), st.just(""),
                st.sampled_from(["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "' OR 1=1 --", "%", "*"]))
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), odd_text)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(odd_text, inner, max_size=4), max_leaves=8)
labels = st.one_of(st.sampled_from([*CLASSES, "unusable"]), odd_text, json_scalars)
content_types = st.sampled_from([None, "application/json", "application/json; charset=utf-8", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                 "application/merge-patch+json"])
raw_bodies = st.one_of(st.binary(max_size=300), st.just(b'{"item_id": "\xff\xfe", "claim_id": 1}'),
                       st.just(b'{"item_id": '), st.just(b"[" * 5000 + b"]" * 5000), st.just(b"{" * 20000),
                       st.just(b"\xef\xbb\xbf{}"), st.just(b"null"), st.just(b'"a string"'))


def headers_for(auth: str | None, content_type: str | None = None) -> dict[str, bytes]:
    headers = {} if auth is None else {"Authorization": auth.encode("latin-1")}
    if content_type is not None:
        headers["Content-Type"] = content_type.encode()
    return headers


def canonical_reviewer(auth: str | None) -> str | None:
    """The reviewer a well-formed `Bearer <token>` header names; None for anything else."""
    return next((who for who, t in TOKENS.items() if auth == f"Bearer {t}"), None)


def names_no_token(auth: str | None) -> bool:
    return auth is None or not any(t in auth for t in TOKENS.values())


def names_token_of(auth: str | None, who: str) -> bool:
    """Whether the header holds `who`'s token at all: only then may it act as `who`."""
    return auth is not None and TOKENS[who] in auth


def check(r: httpx.Response) -> None:
    """Never a 5xx; every refusal is JSON with a non-empty error message the page can show."""
    assert r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/json"), (r.status_code, r.text[:300])
        error = r.json().get("error")
        assert isinstance(error, str) and error, r.text[:300]


def held_by_ann(client: httpx.Client) -> dict[str, Any]:
    """An item ann holds under a live claim: her current one, a fresh one, or (queue drained) her last
    verdict undone, so the fuzz never runs out of valid claims."""
    item = client.post("/api/claim", headers=ANN).json()["item"]
    if item is None:
        item = client.post("/api/undo", headers=ANN).json()["item"]
    assert item is not None
    return item


# -- the fuzz -----------------------------------------------------------------------------------------
ENDPOINTS = [("GET", "/api/me"), ("GET", "/api/progress"), ("POST", "/api/claim"), ("POST", "/api/undo")]
WRONG = [("GET", "/api/claim"), ("PUT", "/api/undo"), ("DELETE", "/api/verdict"), ("GET", "/api/verdict"),
         ("POST", "/api/me"), ("GET", "/api/nope"), ("PATCH", "/api/progress"), ("GET", "/api"), ("GET", "/api/photo")]


def test_auth_and_read_endpoints_never_5xx(server) -> None:
    client, _ = server

    @FUZZ
    @given(endpoint=st.sampled_from(ENDPOINTS + WRONG), auth=auths, body=st.one_of(st.none(), raw_bodies),
           ctype=content_types, query=st.dictionaries(st.sampled_from(["token", "access_token", "reviewer", "x"]),
                                                      st.sampled_from([*TOKENS.values(), *TOKENS, "", "\u00e9"]), max_size=2))
    def one(endpoint, auth, body, ctype, query):
        method, path = endpoint
        r = client.request(method, path, headers=headers_for(auth, ctype), content=body, params=query)
        check(r)
        if endpoint not in ENDPOINTS:
            assert r.status_code in (401, 404, 405), r.status_code
            return
        who = canonical_reviewer(auth)
        if names_no_token(auth):  # a token in the query string, or a near miss, authenticates nobody
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        elif who is not None:
            assert r.status_code == 200 or (path == "/api/undo" and r.status_code == 409), (r.status_code, r.text)
            if r.status_code == 200 and path == "/api/me":
                assert r.json()["reviewer"] == who and r.json()["labels"] == list(CLASSES)
            if r.status_code == 200 and path in ("/api/claim", "/api/undo"):
                assert not any(w in r.text.lower() for w in ("kitchen", "bedroom", "champion", "candidate", "score"))

    one()


def test_verdicts_never_5xx_and_valid_ones_still_count(server) -> None:
    client, engine = server
    accepted: list[str] = []
    live_or_id = st.one_of(st.just("live"), ids, json_values)  # the live claim's ids, other strings, wrong types

    @FUZZ
    @given(data=st.data(), kind=st.sampled_from(["valid", "fields", "json", "raw"]), auth=auths, ctype=content_types)
    def one(data, kind, auth, ctype):
        # Drawn per kind: generating every part for every case costs as much as the HTTP round trips.
        live = body = None
        if kind == "raw":
            content = data.draw(raw_bodies, label="raw")
        else:
            if kind == "json":
                body = data.draw(json_values, label="body")
            else:
                item_id, claim_id = (("live", "live") if kind == "valid" else
                                     (data.draw(live_or_id, label="item_id"), data.draw(live_or_id, label="claim_id")))
                if "live" in (item_id, claim_id):
                    live = held_by_ann(client)
                body = {"item_id": live["item_id"] if item_id == "live" else item_id,
                        "claim_id": live["claim_id"] if claim_id == "live" else claim_id,
                        "label": data.draw(labels, label="label")}
                if kind == "fields":
                    body.update(data.draw(st.dictionaries(odd_text, json_values, max_size=2), label="extra"))
            # json.dumps escapes lone surrogates (\ud800), as a browser's JSON.stringify does.
            content = json.dumps(body).encode()
        r = client.post("/api/verdict", headers=headers_for(auth, ctype or "application/json"), content=content)
        check(r)
        json_body = ctype is None or "json" in ctype
        if kind == "valid" and canonical_reviewer(auth) == "ann" and body["label"] in (*CLASSES, "unusable") and json_body:
            assert r.status_code == 200 and r.json()["recorded"] is True, r.text
        if r.status_code == 200:
            assert kind in ("valid", "fields") and names_token_of(auth, "ann"), (kind, auth)
            assert (body["item_id"], body["claim_id"]) == (live["item_id"], live["claim_id"])
            accepted.append(live["claim_id"])

    one()
    assert accepted, "the fuzz never produced a valid verdict: the oracle above checked nothing"
    with engine.connect() as c:
        items = {r.id: r for r in c.execute(select(review_items.c.id, review_items.c.status, review_items.c.reviews_done,
                                                       review_items.c.reviews_wanted))}
        stored = c.execute(select(review_verdicts.c.item_id, review_verdicts.c.claim_id, review_verdicts.c.reviewer)).all()
    # Each finished item has the verdicts it wanted (one, or two when double-reviewed), each item at most one
    # per reviewer and never more than it wants, and none comes from a refused request.
    per_item = Counter(s.item_id for s in stored)
    assert len({(s.item_id, s.reviewer) for s in stored}) == len(stored)
    assert all(per_item[i] == r.reviews_done <= r.reviews_wanted for i, r in items.items())
    assert all(per_item[i] == r.reviews_wanted for i, r in items.items() if r.status == "done")
    assert {s.claim_id for s in stored} <= set(accepted)


MAX_URL = 8192  # bytes of path up to which the app itself answers: far beyond any real item id
TRAVERSALS = ["../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..\\..\\etc\\passwd",
              "....//....//etc/passwd", "%252e%252e%252fetc%252fpasswd", "/etc/passwd", "..", ".", "%00", "a\x00b",
              "..%00/x.jpg", "C:\\Windows\\win.ini", "~root", "%ff%fe", "\u2025/\u2025/etc/passwd"]


def test_photo_paths_never_5xx_and_only_the_holder_sees_a_photo(server) -> None:
    client, engine = server
    base = str(client.base_url).rstrip("/")

    @FUZZ
    @given(item=st.one_of(st.just("live"), st.just("request"), ids, st.sampled_from(TRAVERSALS)), auth=auths,
           encoding=st.sampled_from(["quoted", "raw", "slashes", "twice"]))
    def one(item, auth, encoding):
        live = held_by_ann(client) if item in ("live", "request") else None
        if item == "live":
            raw = live["item_id"]
        elif item == "request":  # the photo's request id is not its item id: guessing it gets nothing
            raw = queue.holder_request(engine, "ann", live["item_id"])
        else:
            raw = item
        utf8 = raw.encode("utf-8", "surrogatepass")  # a lone surrogate goes as the bytes a sloppy client sends
        path = {"quoted": quote(utf8, safe=""), "raw": raw, "slashes": quote(utf8, safe="/%"),
                "twice": quote(quote(utf8, safe=""), safe="")}[encoding]
        try:
            r = client.get(f"{base}/api/photo/{path}", headers=headers_for(auth))
        except (httpx.InvalidURL, UnicodeEncodeError):
            reject()  # the client itself refuses to send it
        if len(r.request.url.raw_path) > MAX_URL:
            # uvicorn's HTTP parser refuses such a request line itself, as plain text, before any app runs.
            assert 400 <= r.status_code < 500, r.status_code
            return
        check(r)
        if r.status_code == 200:
            assert item == "live" and names_token_of(auth, "ann"), (item, auth)
            assert r.headers["content-type"] == "image/jpeg" and r.content[:2] == b"\xff\xd8"
        elif item == "live" and encoding in ("quoted", "raw", "slashes") and canonical_reviewer(auth) == "ann":
            raise AssertionError(f"the holder was refused her photo: {r.status_code} {r.text}")

    one()


def test_server_still_claims_and_records_after_the_fuzz(server) -> None:
    client, engine = server
    bob = {"Authorization": f"Bearer {TOKENS['bob']}"}
    item = client.post("/api/claim", headers=bob).json()["item"]
    if item is None:
        pytest.fail("the fuzz drained the queue for bob: raise N_ITEMS")
    photo = client.get(f"/{item['photo']}", headers=bob)
    assert photo.status_code == 200 and photo.content[:2] == b"\xff\xd8"
    r = client.post("/api/verdict", headers=bob, json={**{k: item[k] for k in ("item_id", "claim_id")}, "label": "bathroom"})
    assert r.status_code == 200 and r.json()["recorded"] is True
    with engine.connect() as c:
        row = c.execute(select(review_verdicts.c.reviewer, review_verdicts.c.label)
                        .where(review_verdicts.c.claim_id == item["claim_id"])).one()
    assert tuple(row) == ("bob", "bathroom")
    assert client.post("/api/verdict", headers=bob, json={**{k: item[k] for k in ("item_id", "claim_id")},
                                                          "label": "bathroom"}).status_code == 409
    p = client.get("/api/progress", headers=bob).json()
    assert p["pending"] + p["claimed"] + p["done"] == N_ITEMS and p["mine"] == 1
