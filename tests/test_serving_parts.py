"""The ingress's parts without Ray: the typed request and the schema that documents it, the warm-up hook's
hold on an unloadable champion, the answering call's fallback to the champion, what a shadow comparison
counts as a disagreement, and the rollout's configured series for Prometheus. Ray's deployment handles are stood in for where a part calls one."""

from __future__ import annotations

import io

import pytest
from starlette.datastructures import FormData, UploadFile

from roomsight.errors import RequestError
from roomsight.registry import ModelRef
from serving.metrics import rollout_families
from serving.models import ModelAnswer
from serving.request import TEXT_FIELDS, PredictRequest, form_schema, parse_batch, parse_predict
from roomsight.rollout_state import RoutingState, Stage
from serving.routing import on_candidate
from serving.shadow_dispatch import disagrees

V1, V2 = ModelRef("roomtype", "1"), ModelRef("roomtype", "2")


def upload(data: bytes = b"jpeg") -> UploadFile:
    return UploadFile(io.BytesIO(data), filename="p.jpg")


def form(*items: tuple[str, str | UploadFile]) -> FormData:
    return FormData(list(items))


# -- the typed request --------------------------------------------------------------------------------
def test_a_form_becomes_a_typed_request_with_blank_optionals_absent():
    image, req = parse_predict(form(("image", upload()), ("listing_id", " L1 "), ("region", "eu-west"),
                                    ("caption", "  "), ("taken_at", "2026-01-01")))
    assert req == PredictRequest(listing_id="L1", region="eu-west", photo_id=None, caption=None, taken_at="2026-01-01")
    assert image.filename == "p.jpg"
    with pytest.raises(AttributeError):
        req.region = "us-east"  # type: ignore[misc]  # frozen


@pytest.mark.parametrize("items, status, message", [
    ((("listing_id", "L"), ("region", "r")), 422, "missing form field: image"),
    ((("image", "text, not a file"), ("listing_id", "L"), ("region", "r")), 422, "image must be a file upload"),
    ((("image", upload()), ("region", "r")), 422, "missing form field: listing_id"),
    ((("image", upload()), ("listing_id", " \t"), ("region", "r")), 422, "missing form field: listing_id"),
    ((("image", upload()), ("listing_id", "L"), ("region", "r"), ("caption", "x" * 2001)), 422, "caption is longer than 2000"),
    ((("image", upload()), ("listing_id", upload()), ("region", "r")), 422, "listing_id must be a text field"),
    # PostgreSQL refuses a NUL in text: logged, it failed its batch at every retry and the log stalled for all.
    ((("image", upload()), ("listing_id", "L"), ("region", "r"), ("caption", "a\x00b")), 422, "caption contains a NUL"),
    ((("image", upload()), ("listing_id", "L\x00"), ("region", "r")), 422, "listing_id contains a NUL"),
])
def test_a_bad_form_is_refused_naming_the_field(items, status, message):
    with pytest.raises(RequestError) as err:
        parse_predict(form(*items))
    assert err.value.status == status and message in err.value.message


def test_a_batch_takes_one_value_for_all_photos_or_one_each():
    images = [("images", upload(b"a")), ("images", upload(b"b"))]
    items = parse_batch(form(*images, ("listing_id", "L1"), ("listing_id", "L2"), ("region", "eu-west")))
    assert [r for _, r in items] == [PredictRequest("L1", "eu-west"), PredictRequest("L2", "eu-west")]
    with pytest.raises(RequestError, match="one value for all images or one per image"):
        parse_batch(form(*images, ("listing_id", "L1"), ("listing_id", "L2"), ("listing_id", "L3"), ("region", "r")))
    with pytest.raises(RequestError, match="missing form field: listing_id"):  # a blank value is not dropped
        parse_batch(form(*images, ("listing_id", "L1"), ("listing_id", " "), ("region", "r")))
    with pytest.raises(RequestError, match="missing form field: images"):
        parse_batch(form(("listing_id", "L1"), ("region", "r")))
    with pytest.raises(RequestError, match="region contains a NUL"):
        parse_batch(form(*images, ("listing_id", "L1"), ("region", "eu-west"), ("region", "eu\x00west")))


@pytest.mark.parametrize("field", TEXT_FIELDS, ids=lambda f: f.name)
def test_the_published_schema_states_the_limits_the_parser_enforces(field):
    """Every field's documented constraints agree with the parser at their edges, judged by a JSON Schema
    validator whose regex dialect is not Python's (Rust's, as schemathesis uses): the schema is built from
    the same field table, and this fails if either drifts."""
    import jsonschema_rs

    body = form_schema()["content"]["multipart/form-data"]["schema"]
    assert set(body["required"]) == {"image"} | {f.name for f in TEXT_FIELDS if f.required}
    schema = jsonschema_rs.Draft202012Validator(body["properties"][field.name])
    others = {f.name: "x" for f in TEXT_FIELDS if f.required and f.name != field.name}
    for value in ("", " ", "\n", "\x1c", "\u3000", "a", " a ", "\x1ca", "a" * field.max_len, "a" * (field.max_len + 1),
                  " " + "a" * field.max_len, "\x00", "a\x00", "\x00 ", " a\x00b\n"):
        try:
            parse_predict(form(("image", upload()), *others.items(), (field.name, value)))
            accepted = True
        except RequestError:
            accepted = False
        assert accepted == schema.is_valid(value), (field.name, repr(value))
    batch = form_schema(batch=True)["content"]["multipart/form-data"]["schema"]
    assert batch["properties"]["images"]["minItems"] == 1 and "images" in batch["required"]


# -- the warm-up hook ---------------------------------------------------------------------------------
class _Call:
    def __init__(self, ok: bool) -> None:
        self.ok = ok

    def result(self, timeout_s: float) -> str:
        if not self.ok:
            raise RuntimeError("registry down")
        return "loaded"


class _Handle:
    """A model deployment's handle as the hook uses it (`warm.remote(ref).result(...)`)."""

    def __init__(self) -> None:
        self.broken: set[str] = set()
        self.warm = self

    def remote(self, ref: dict[str, str]) -> _Call:
        return _Call(ref["version"] not in self.broken)


def test_an_unloadable_new_champion_is_held_back_but_a_first_state_or_a_failing_candidate_is_not():
    from serving.calls import Warmer
    from roomsight.errors import NotReady

    champion, candidate = _Handle(), _Handle()
    warm = Warmer({"champion": champion, "candidate": candidate}, timeout_s=1.0)
    champion.broken = {"1"}
    warm(RoutingState(champion=V1))  # nothing is live yet: route on it anyway
    champion.broken = {"2"}
    with pytest.raises(NotReady):
        warm(RoutingState(champion=V2))  # V1 answers meanwhile
    candidate.broken = {"2"}
    warm(RoutingState(champion=V1, stage=Stage.SHADOW, candidate=V2, rollout_id="r"))  # the champion covers
    assert warm.live_champion == V1
    champion.broken, candidate.broken = set(), {"3"}
    warm(RoutingState(champion=V2, stage=Stage.SHADOW, candidate=ModelRef("roomtype", "3"), rollout_id="r2"))
    assert warm.live_champion == V2  # a new champion that loads is routed on, whatever its candidate does


# -- the answering call ------------------------------------------------------------------------------
class _Replica:
    """A model deployment's handle as the answering call uses it (`predict.remote(ref, image, priority)`):
    answers, or raises what a failing replica raises."""

    def __init__(self, fails: bool) -> None:
        self.fails, self.predict = fails, self

    def remote(self, ref: dict[str, str], image: object, priority: str):  # noqa: ANN201 - an awaitable
        async def result():  # noqa: ANN202
            if self.fails:
                raise RuntimeError("replica died")
            return ModelAnswer(version=ref["version"], label="kitchen", top_class="kitchen", score=0.9,
                               probs={"kitchen": 0.9, "bedroom": 0.1}, ms=1.0, model_scores={})
        return result()


@pytest.mark.parametrize("champion_fails", [False, True], ids=["champion answers", "champion fails too"])
def test_a_failing_candidate_is_answered_for_by_the_champion_or_refused_with_a_503(tmp_path, champion_fails):
    import asyncio

    from serving.calls import ModelCalls
    from serving.metrics import ServeMetrics
    from serving.pipeline import AnswerPipeline
    from serving.routing import CANDIDATE, Decision
    from serving.shadow_dispatch import ShadowDispatcher
    from tests.conftest import settings_for

    settings, metrics = settings_for(tmp_path), ServeMetrics()
    calls = ModelCalls({"champion": _Replica(champion_fails), "candidate": _Replica(True)}, metrics, "idle")
    shadow = ShadowDispatcher(settings.serve, calls, None, metrics)  # type: ignore[arg-type] - no shadow job here
    pipeline = AnswerPipeline(settings, lambda: None, calls, shadow, None, None, metrics)  # type: ignore[arg-type]
    state = RoutingState(champion=V1, stage=Stage.GRADUAL, candidate=V2, rollout_id="r", percent=100)
    call = pipeline._call(state, Decision(CANDIDATE, None, "slice"), b"image")  # type: ignore[arg-type]
    if champion_fails:
        with pytest.raises(RequestError) as refused:
            asyncio.run(call)
        assert refused.value.status == 503 and refused.value.reason == "champion-error"
    else:
        decision, answer, error = asyncio.run(call)
        assert (decision.served_by, decision.reason, answer.version) == ("champion", "candidate-fallback", "1")
        assert error and "replica died" in error
    assert metrics.fallbacks._value.get() == 1 and shadow._answering == 0


# -- the rollout's series -----------------------------------------------------------------------------
def _answer(label: str, top_class: str, score: float) -> ModelAnswer:
    return ModelAnswer(version="1", label=label, top_class=top_class, score=score, probs={top_class: score}, ms=1.0,
                       model_scores={})


@pytest.mark.parametrize("served, shadow, disagree", [
    (_answer("kitchen", "kitchen", 0.9), _answer("kitchen", "kitchen", 0.8), False),
    (_answer("unsure", "kitchen", 0.5), _answer("unsure", "kitchen", 0.4), False),
    # The paired analysis counts a photo outside the stratum as a tie: a model that answers `unsure` where
    # the other names a class must be reviewed, or one that answers nothing would pass as the other's equal.
    (_answer("kitchen", "kitchen", 0.9), _answer("unsure", "kitchen", 0.7), True),
    (_answer("unsure", "kitchen", 0.7), _answer("kitchen", "kitchen", 0.9), True),
    (_answer("unsure", "kitchen", 0.5), _answer("unsure", "bedroom", 0.5), True),
    (_answer("kitchen", "kitchen", 0.95), _answer("kitchen", "kitchen", 0.6), True),
])
def test_a_comparison_disagrees_when_the_answers_differ_not_only_the_top_classes(served, shadow, disagree):
    assert disagrees(served, shadow, gap=0.3) is disagree


def test_the_same_answer_is_a_tie_even_when_no_confidence_gap_is_allowed():
    # Two saturated models give the same score: with a gap of 0 that is still agreement, or every such
    # photo would crowd the review's disagreement stratum.
    assert disagrees(_answer("pool", "pool", 1.0), _answer("pool", "pool", 1.0), gap=0.0) is False
    assert disagrees(_answer("pool", "pool", 1.0), _answer("pool", "pool", 0.99), gap=0.0) is True


STATES = [
    RoutingState(champion=V1),
    RoutingState(champion=V1, stage=Stage.SHADOW, candidate=V2, rollout_id="r1"),
    RoutingState(champion=V1, stage=Stage.LIMITED, candidate=V2, rollout_id="r1", step=1, regions=("eu-west",),
                 region_percent=30),
    RoutingState(champion=V1, stage=Stage.GRADUAL, candidate=V2, rollout_id="r1", step=2, regions=("eu-west",),
                 region_percent=100, percent=25),
    RoutingState(champion=V1, stage=Stage.PAUSE, candidate=V2, rollout_id="r1", step=3, regions=("eu-west",),
                 region_percent=100, percent=25),
]


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.stage.value)
def test_the_configured_share_is_the_share_routing_gives_the_candidate(state):
    listings = [f"L{i}" for i in range(4000)]
    for region in ("eu-west", "us-east"):
        routed = sum(on_candidate(state, lid, region) for lid in listings) / len(listings)
        assert abs(state.candidate_share(region) - routed) < 0.03, (state.stage, region, routed)


def test_rollout_series_name_the_stage_the_versions_and_each_regions_share():
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.registry import Collector

    class Fixed(Collector):
        def collect(self):
            return rollout_families(STATES[2], ["us-east"])

    registry = CollectorRegistry()
    registry.register(Fixed())
    text = generate_latest(registry).decode()
    assert 'roomsight_rollout_stage{stage="limited"} 1.0' in text and 'roomsight_rollout_stage{stage="shadow"} 0.0' in text
    assert 'roomsight_rollout_info{candidate="2",champion="1",rollout_id="r1"} 1.0' in text
    assert "roomsight_rollout_step 2.0" in text
    assert 'roomsight_rollout_candidate_share{region="eu-west"} 0.3' in text
    assert 'roomsight_rollout_candidate_share{region="us-east"} 0.0' in text
    assert rollout_families(None, ["us-east"]) == []


def test_regions_a_caller_invents_share_one_series_past_the_limit():
    """A region is whatever a caller sends: a series each let one client grow the replica's memory and every
    scrape without bound."""
    from serving.metrics import MAX_REGION_SERIES, OTHER_REGIONS, ServeMetrics

    metrics = ServeMetrics()
    for i in range(MAX_REGION_SERIES + 50):
        metrics.answered("shadow", f"region-{i}", "champion")
    metrics.answered("shadow", "region-0", "champion")  # one seen before the limit keeps its own series
    metrics.disagreed("shadow", "somewhere-new")
    text = metrics.render().decode()
    series = [line for line in text.splitlines() if line.startswith("roomsight_requests_total{")]
    assert len(series) == MAX_REGION_SERIES + 1
    assert f'region="{OTHER_REGIONS}"' in text and 'region="region-0",served_by="champion",stage="shadow"} 2.0' in text
    assert 'roomsight_disagreements_total{region="(other)",stage="shadow"} 1.0' in text
