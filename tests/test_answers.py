"""What the ingress accepts from a model replica: a well-formed answer, or a BadAnswer it handles like
any model failure (fallback to the champion, a logged shadow error), never garbage passed to a client."""

import numpy as np
import pytest

from roomsight.errors import BadAnswer
from serving.models import ModelAnswer, check_answer


def answer(**kw) -> ModelAnswer:
    base = dict(version="1", label="kitchen", top_class="kitchen", score=np.float32(0.9),
                probs={"kitchen": np.float32(0.9), "bedroom": 0.1}, ms=1.0, model_scores={})
    return ModelAnswer(**{**base, **kw})


def test_a_well_formed_answer_passes_numpy_scalars_included():
    a = answer()
    assert check_answer(a) is a
    assert check_answer(answer(label="unsure")) is not None  # below threshold: the label is `unsure`


@pytest.mark.parametrize("bad, why", [
    (None, "NoneType"), ({"label": 42}, "dict"),
    (answer(score=float("nan")), "not a probability"), (answer(score=1.5), "not a probability"),
    (answer(probs={"kitchen": float("inf")}), "not finite"), (answer(probs={}), "missing"),
    (answer(top_class="sauna"), "not one of its classes"), (answer(label=None), "not one of its classes"),
    (answer(label="sauna"), "not one of its classes"), (answer(label="bedroom"), "not one of its classes"),
])
def test_garbage_is_refused_with_a_reason(bad, why):
    with pytest.raises(BadAnswer, match=why):
        check_answer(bad)


@pytest.mark.parametrize("fmt,size,sends_bytes", [("JPEG", (900, 600), True), ("PNG", (200, 100), False)])
def test_a_model_call_carries_what_decodes_to_the_ingress_pixels(fmt, size, sends_bytes):
    """A model call sends the upload's bytes when they are smaller than the pixels; the replica must
    then decode them to exactly the pixels the ingress described and routed on (downscaling included)."""
    import io

    from PIL import Image

    from roomsight.config import load_settings
    from roomsight.images import decode_upload
    from serving.calls import model_input
    from serving.models import picture

    settings = load_settings(environ={})
    buf = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(noise).save(buf, fmt)  # a PNG of noise is larger than its pixels
    decoded = decode_upload(buf.getvalue(), settings.serve)  # as the ingress decodes an upload
    pixels = np.asarray(decoded.image)
    sent = model_input(decoded)
    assert isinstance(sent, bytes) == sends_bytes
    assert np.array_equal(np.asarray(picture(sent, settings)), pixels)
