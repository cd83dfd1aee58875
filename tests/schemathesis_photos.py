"""Schemathesis hooks (SCHEMATHESIS_HOOKS=tests.schemathesis_photos) for the Serve app's contract test.

They correct schemathesis where a multipart form says less than JSON would, and nowhere else:

- The schema can say that `image` is a file, not that its bytes decode to a picture: by default schemathesis
  sends arbitrary bytes, which the app refuses with its documented 400, and then reports that valid data
  was refused. Here a file field gets real JPEG, PNG and WebP pictures of varied sizes and modes, so data
  the schema calls valid is valid. Undecodable uploads are fuzzed by tests/test_fuzz_http.py.
- A form field reaches the server as text. A "negative" case that makes `listing_id` the number 0 sends the
  text "0", a valid listing id; accepting it is right. Such a failure is dropped only when every field,
  spelled as the wire spells it, satisfies the schema (by the validator schemathesis itself uses).
- `/predict/batch` takes one listing_id (region) for all photos or one per photo, a relation between two
  arrays' lengths that JSON Schema cannot state (the schema says it in words). A refusal of a case whose
  counts break it is dropped; any other refusal of valid data still fails the test.
"""

from __future__ import annotations

import io
import json
from typing import Any

import jsonschema_rs
import schemathesis
from hypothesis import strategies as st
from PIL import Image
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.transport.serialization import Binary


def _photo(width: int, height: int, mode: str, fmt: str, colour: int) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), colour).save(buf, fmt)
    return buf.getvalue()


schemathesis.openapi.format("binary", st.builds(
    _photo, st.integers(1, 96), st.integers(1, 96), st.sampled_from(["RGB", "L"]),
    st.sampled_from(["JPEG", "PNG", "WEBP"]), st.integers(0, 255)))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "null" if value is None else str(value)


def _as_sent(body: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The form as the server reads it: a file stays a file (any content meets `format: binary`), every
    other value becomes its text, and a repeated field that is not an array is read as its last value."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        values = value if isinstance(value, list) else [value]
        texts = ["" if isinstance(v, (Binary, bytes)) else _text(v) for v in values]
        if schema["properties"].get(name, {}).get("type") == "array":
            out[name] = texts
        elif texts:
            out[name] = texts[-1]
    return out


def _form_schema(case: Any) -> dict[str, Any]:
    return case.operation.definition.raw["requestBody"]["content"]["multipart/form-data"]["schema"]


def _counts_mismatch(body: dict[str, Any]) -> bool:
    n = len(body.get("images") or [])
    return any(isinstance(body.get(k), list) and len(body[k]) not in (1, n) for k in ("listing_id", "region"))


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    body = case.body if isinstance(case.body, dict) else None
    if body is None:
        return True
    if isinstance(failure, AcceptedNegativeData):
        schema = _form_schema(case)
        return not jsonschema_rs.Draft202012Validator(schema).is_valid(_as_sent(body, schema))
    if isinstance(failure, RejectedPositiveData) and case.operation.path == "/predict/batch":
        return not (response.status_code == 422 and _counts_mismatch(body))
    return True
