"""The reviewer API's contract as published at /openapi.json: the response bodies, the one error body every
refusal carries, which statuses each operation answers with, the bearer-token scheme, and links from a
claim to its photo and its verdict (so a generated client, or schemathesis' stateful phase, can follow a
claim through). A test runs schemathesis with all its checks over real HTTP against it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiError(_Out):
    error: str = Field(min_length=1, description="What was refused and why, in words the page shows as they are.")


class Progress(_Out):
    pending: int = Field(ge=0, description="Items nobody holds (including lapsed leases).")
    claimed: int = Field(ge=0, description="Items held under a live lease.")
    done: int = Field(ge=0, description="Items with a verdict.")
    mine: int = Field(ge=0, description="Verdicts given by the caller.")


class Item(_Out):
    item_id: str
    claim_id: str = Field(description="Send it back with the verdict: it proves the caller still holds the item.")
    lease_until: float = Field(description="Unix seconds; after this another reviewer may claim the item.")
    photo: str = Field(description="The photo's URL, relative to the page (api/photo/{item_id}).")


class Me(_Out):
    reviewer: str
    labels: list[str] = Field(description="The room types a verdict may name, in the models' order.")
    unusable: str = Field(description="The label for a photo that is not a room or cannot be judged.")
    progress: Progress


class Claimed(_Out):
    item: Item | None = Field(description="The caller's item, or null when nothing is left to review.")
    progress: Progress


class Recorded(_Out):
    recorded: Literal[True]
    progress: Progress


_WHY = {
    400: "The body could not be read.",
    401: "No valid reviewer token: send `Authorization: Bearer <token>`.",
    404: "No such item, or not one the caller holds.",
    409: "The item is no longer the caller's, the verdict was already recorded, or there is nothing to undo.",
    422: "The request is invalid; for a verdict: a missing, extra or too long field, or a label not in `labels`.",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these refusals, each with the error body; 401 always, with its challenge."""
    out: dict[int | str, dict[str, Any]] = {
        401: {"model": ApiError, "description": _WHY[401],
              "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}}}
    out.update({s: {"model": ApiError, "description": _WHY[s]} for s in statuses})
    return out


PHOTO = {200: {"description": "The photo, JPEG.", "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}}}
_FROM_CLAIM = {
    "photo": {"operationId": "photo", "parameters": {"item_id": "$response.body#/item/item_id"}},
    "verdict": {"operationId": "verdict", "requestBody": {"item_id": "$response.body#/item/item_id",
                                                          "claim_id": "$response.body#/item/claim_id"}},
}
CLAIM_LINKS = {200: {"links": _FROM_CLAIM}}


def with_labels(schema: dict[str, Any], labels: Sequence[str]) -> dict[str, Any]:
    """The schema with the verdict's `label` limited to the labels accepted now. They come from the
    logged answers, so they are filled in per request, not frozen at start-up."""
    out = copy.deepcopy(schema)
    out["components"]["schemas"]["VerdictIn"]["properties"]["label"]["enum"] = list(labels)
    return out
