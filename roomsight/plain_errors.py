"""Pydantic's validation errors in the words of the YAML or JSON their author wrote, for plans and settings alike."""

from __future__ import annotations

from pydantic_core import ErrorDetails


def plain_words(error: ErrorDetails, noun: str, list_example: str = "", of_keys: bool = False) -> str:
    """`error`'s message in a file's terms, where pydantic says "Extra inputs are not permitted", "a valid tuple"
    or "a valid dictionary or instance of ServeSettings": a key the model lacks is "no such `noun`"; a wrong shape
    should be a list (", e.g. `list_example`" where one is given) or a mapping (a model's "of its keys" with
    `of_keys`); anything else is pydantic's own message, without the "Value error, " before a validator's."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"no such {noun}"
    if kind in ("tuple_type", "list_type"):
        return f"should be a list, e.g. {list_example}" if list_example else "should be a list"
    if kind == "model_type" and of_keys:
        return "should be a mapping of its keys"
    if kind in ("model_type", "dict_type"):
        return "should be a mapping"
    return error["msg"].removeprefix("Value error, ")
