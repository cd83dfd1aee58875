"""Property-based fuzzing of /predict and /predict/batch over real HTTP: whatever arrives, the answer is
2xx or a 4xx with a JSON error (never a 5xx), and the server keeps answering."""

from __future__ import annotations

import io
import os

import httpx
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from PIL import Image


pytestmark = pytest.mark.ray
EXAMPLES = int(os.environ.get("ROOMSIGHT_FUZZ_EXAMPLES", "1000"))


def _png(w: int, h: int, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (w, h)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 100, 50)).save(buf, "JPEG")
    return buf.getvalue()


images = st.one_of(
    st.binary(max_size=2048),
    st.builds(_png, st.integers(1, 48), st.integers(1, 48), st.sampled_from(["RGB", "L", "RGBA", "P", "1", "I;16"])),
    st.builds(_jpeg, st.integers(1, 64), st.integers(1, 64)),
    st.builds(lambda b, k: b[:k], st.builds(_jpeg, st.integers(8, 64), st.integers(8, 64)), st.integers(0, 400)),
    st.just(b"GIF89a" + b"\x00" * 20),
)
texts = st.one_of(st.none(), st.text(max_size=300), st.just(""), st.just(" "), st.text(alphabet="\x00\n\r\t\u202e", max_size=5))


@pytest.fixture(scope="module")
def url(settings, ray_session, serve_port):
    from ray import serve

    from rollout.control import ControlPlane
    from rollout.plan import load_plan
    from serving.runner import APP_NAME, start_serve

    port = serve_port
    s = settings.model_copy(update={"serve": settings.serve.model_copy(update={"port": port})})
    ControlPlane(s, load_plan()).current()
    base = start_serve(s)
    yield base
    serve.delete(APP_NAME)


@pytest.fixture(scope="module")
def settings(trained_home, tmp_path_factory):
    import shutil

    from roomsight import registry
    from tests.conftest import settings_for

    home = tmp_path_factory.mktemp("fuzz-home")
    shutil.copy(trained_home / "mlflow.db", home / "mlflow.db")
    s = settings_for(home)
    registry.configure(s)
    return s


def check(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert isinstance(r.json().get("error"), str) and r.json()["error"]


def test_predict_never_5xx(url):
    client = httpx.Client(base_url=url, timeout=30)

    @hsettings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(image=st.one_of(st.none(), images), listing=texts, region=texts, photo=texts, caption=texts, taken=texts,
           filename=st.text(max_size=40), ctype=st.sampled_from(["image/jpeg", "application/octet-stream", "text/plain", ""]))
    def one(image, listing, region, photo, caption, taken, filename, ctype):
        data = {k: v for k, v in {"listing_id": listing, "region": region, "photo_id": photo, "caption": caption,
                                  "taken_at": taken}.items() if v is not None}
        files = {"image": (filename or "x", image, ctype)} if image is not None else None
        check(client.post("/predict", data=data, files=files))

    one()
    assert client.get("/healthz").json()["status"] == "ok"


def test_batch_never_5xx(url):
    client = httpx.Client(base_url=url, timeout=30)

    @hsettings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(imgs=st.lists(images, max_size=4), listings=st.lists(st.text(max_size=20), max_size=5),
           regions=st.lists(st.text(max_size=20), max_size=5))
    def one(imgs, listings, regions):
        files = [("images", (f"{i}.jpg", b, "image/jpeg")) for i, b in enumerate(imgs)]
        r = client.post("/predict/batch", data={"listing_id": listings, "region": regions}, files=files or None)
        check(r)
        if r.status_code == 200:
            results = r.json()["results"]
            assert len(results) == len(imgs)
            assert all(("label" in x) != ("error" in x) for x in results)

    one()
    assert client.get("/healthz").json()["status"] == "ok"
