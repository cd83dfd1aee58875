"""JSON error bodies for request validation, shared by the review and control-plane APIs.

FastAPI's default answer to an invalid body echoes the input back, and some input cannot be encoded into
a response (a body that is not UTF-8, a lone UTF-16 surrogate escape in the JSON): that turned a bad
request into a 500. These messages name only the API's own fields, never the input.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any


def invalid_message(errors: Sequence[Any], fields: Collection[str]) -> str:
    problems = []
    for e in errors:
        loc = e.get("loc", ())
        # A query or path parameter is one the route declares, so its name is safe to repeat; a body field's
        # only if the model has it (an unknown key is the client's text).
        declared = len(loc) > 1 and (loc[0] in ("query", "path") or loc[1] in fields)
        field = loc[1] if declared else "body"
        problems.append(f"{field}: {e.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(dict.fromkeys(problems))
