"""What a prediction request is, once validated: the multipart form of `/predict` and `/predict/batch`
parsed into typed values, or a `RequestError` that says which field is wrong.

The form's fields are described once, in `TEXT_FIELDS`; the parser and the OpenAPI schema the API
publishes (`form_schema`) both read them, so the documented limits are the enforced ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData, UploadFile

from roomsight.errors import RequestError
from roomsight.tables import REGION_MAX


@dataclass(frozen=True)
class TextField:
    name: str
    max_len: int
    required: bool
    description: str


TEXT_FIELDS = (
    TextField("listing_id", 128, True, "The listing the photo belongs to: the candidate's share of traffic is "
                                       "assigned per listing, so a listing keeps its model."),
    TextField("region", REGION_MAX, True, "The listing's region, e.g. eu-west: limited rollouts route by it."),
    TextField("photo_id", 128, False, "The caller's id of the photo, logged with the prediction."),
    TextField("caption", 2000, False, "The host's caption, logged with the prediction."),
    TextField("taken_at", 64, False, "When the photo was taken, as the caller writes it; logged."),
)
_BY_NAME = {f.name: f for f in TEXT_FIELDS}
# What str.strip() removes (nothing above U+3000 is whitespace). The schema names these characters
# instead of writing \S, whose meaning differs between regex dialects (Python's includes U+001C-U+001F,
# Unicode's and ECMAScript's do not), so that a client's validator and this parser agree on "blank".
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
# No field holds a NUL: PostgreSQL refuses one in text, so a logged NUL failed its whole batch at every retry.
# The patterns are anchored, and `\x00` is read alike by Python, ECMAScript and Rust.
_NO_NUL = "^[^\\x00]*$"
# A required field holds something else too; none of these is special in a class.
_NOT_BLANK = f"^[^\\x00]*[^{WHITESPACE}\\x00][^\\x00]*$"


@dataclass(frozen=True)
class PredictRequest:
    """The validated text fields of one photo's request (the photo itself is decoded separately)."""

    listing_id: str
    region: str
    photo_id: str | None = None
    caption: str | None = None
    taken_at: str | None = None


def clean(name: str, value: str | None) -> str | None:
    """A field's value without surrounding whitespace; None for an absent or blank optional field."""
    field = _BY_NAME[name]
    if value is not None and len(value) > field.max_len:
        raise RequestError(422, f"{name} is longer than {field.max_len} characters", f"long-{name}")
    if value is not None and "\x00" in value:
        raise RequestError(422, f"{name} contains a NUL character", f"invalid-{name}")
    if value is None or not value.strip():
        if field.required:
            raise RequestError(422, f"missing form field: {name}", f"missing-{name}")
        return None
    return value.strip()


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise RequestError(422, f"{name} must be a text field, not a file", f"invalid-{name}")
    return value


def _file(value: object, name: str) -> UploadFile:
    if not isinstance(value, UploadFile):
        raise RequestError(422, f"{name} must be a file upload (multipart/form-data with a filename)", f"invalid-{name}")
    return value


def parse_predict(form: FormData) -> tuple[UploadFile, PredictRequest]:
    """The photo and the fields of a `/predict` form; the first problem found as a RequestError."""
    if form.get("image") is None:
        raise RequestError(422, "missing form field: image", "missing-image")
    image = _file(form.get("image"), "image")
    values = {f.name: clean(f.name, _text(form, f.name)) for f in TEXT_FIELDS}
    return image, PredictRequest(**values)  # type: ignore[arg-type]  # required ones are not None


def parse_batch(form: FormData) -> list[tuple[UploadFile, PredictRequest]]:
    """The photos of a `/predict/batch` form, each with its listing and region: one value for all photos,
    or one per photo, in order."""
    images = [_file(v, "images") for v in form.getlist("images")]
    if not images:
        raise RequestError(422, "missing form field: images", "missing-image")
    listings = _per_image(form, "listing_id", len(images))
    regions = _per_image(form, "region", len(images))
    return [(img, PredictRequest(listing_id=lst, region=reg)) for img, lst, reg in zip(images, listings, regions)]


def _per_image(form: FormData, name: str, n: int) -> list[str]:
    values = form.getlist(name)
    if any(isinstance(v, UploadFile) for v in values):
        raise RequestError(422, f"{name} must be a text field, not a file", f"invalid-{name}")
    cleaned = [clean(name, v) for v in values]  # refuses a blank or overlong value
    if len(cleaned) == 1:
        cleaned = cleaned * n
    if len(cleaned) != n:
        raise RequestError(422, f"{name}: give one value for all images or one per image ({n})", f"missing-{name}")
    return cleaned  # type: ignore[return-value]


# -- the same fields as OpenAPI documents them ------------------------------------------------------
def _text_schema(field: TextField) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "maxLength": field.max_len, "description": field.description,
                              "pattern": _NO_NUL}
    if field.required:
        schema.update(minLength=1, pattern=_NOT_BLANK)
    return schema


def form_schema(batch: bool = False) -> dict[str, Any]:
    """The OpenAPI `requestBody` of `/predict` (or `/predict/batch`): the fields `parse_predict`
    (`parse_batch`) accepts, with their limits."""
    image = {"type": "string", "format": "binary", "description": "The photo (JPEG, PNG, WebP, ...)."}
    if batch:
        each = "One value for all images, or one per image, in order."
        properties: Mapping[str, Any] = {
            "images": {"type": "array", "items": image, "minItems": 1,
                       "description": "Several photos; one answer each, in order."},
            **{f.name: {"type": "array", "items": _text_schema(f), "minItems": 1, "description": f"{f.description} {each}"}
               for f in TEXT_FIELDS if f.required},
        }
        required = ["images", *(f.name for f in TEXT_FIELDS if f.required)]
    else:
        properties = {"image": image, **{f.name: _text_schema(f) for f in TEXT_FIELDS}}
        required = ["image", *(f.name for f in TEXT_FIELDS if f.required)]
    return {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "properties": dict(properties), "required": required}}}}
