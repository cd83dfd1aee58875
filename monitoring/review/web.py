"""The reviewer web page and its JSON API (FastAPI): claim the next photo, give its true room type,
undo the last verdict, see progress.

Blind by construction: no response carries a model's answer, score, version or why the item was
queued. Every API call needs `Authorization: Bearer <token>`; tokens come from `review.tokens` and are
compared in constant time, and the reviewer id they map to is stored with every verdict. The contract
(bodies, errors, statuses) is published at /openapi.json; see `api_models`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Path as PathParam, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from starlette.exceptions import HTTPException

from monitoring.review import queue
from monitoring.review.api_models import CLAIM_LINKS, PHOTO, Claimed, Me, Progress, Recorded, refusals, with_labels
from monitoring.review.photos import PhotoStore
from monitoring.review.queue import Claim
from monitoring.review.stats import UNUSABLE
from roomsight.auth import bearer_token, token_holder
from roomsight.config import Settings
from roomsight.db import engine_for
from roomsight.errors import ReviewError
from roomsight.http_errors import invalid_message


def static_dir() -> Path:
    return Path(str(resources.files("monitoring") / "review" / "static"))


# Item and claim ids are UUIDs. Anything else is refused before it reaches SQL: PostgreSQL's text cannot
# hold every string (a NUL, a lone surrogate), and such an id failed the query.
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class VerdictIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: str = Field(max_length=36, pattern=UUID_PATTERN)
    claim_id: str = Field(max_length=36, pattern=UUID_PATTERN)
    label: str = Field(max_length=64)


def create_app(settings: Settings, engine: Engine | None = None, rollout_id: str | None = None,
               photos: PhotoStore | None = None) -> FastAPI:
    """The page and API; `rollout_id` serves that rollout's items (default: the rollout in progress, or
    every rollout's when none is)."""
    engine = engine or engine_for(settings.db_url)
    photos = photos or PhotoStore.for_settings(settings)
    lease_s = settings.review.lease_s
    app = FastAPI(title="roomsight review", docs_url=None, redoc_url=None)
    published = app.openapi
    app.openapi = lambda: with_labels(published(), (*labels(), UNUSABLE))  # type: ignore[method-assign]
    token_scheme = HTTPBearer(auto_error=False, description="A reviewer token from review.tokens.")

    @app.exception_handler(ReviewError)
    async def _refused(_: Request, exc: ReviewError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    # Every refusal carries `error`, the one key the page shows: also unknown paths, wrong methods,
    # unparseable and invalid bodies.
    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": invalid_message(exc.errors(), VerdictIn.model_fields)}, status_code=422)

    class Unauthorized(Exception):
        pass

    @app.exception_handler(Unauthorized)
    async def _unauthorized(_: Request, __: Unauthorized) -> JSONResponse:
        return JSONResponse({"error": "a valid reviewer token is required"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    def reviewer(request: Request, _declared: object = Security(token_scheme)) -> str:
        # `token_scheme` only declares the scheme in the schema; the header is read as every API reads it.
        who = token_holder(bearer_token(request.headers.get("authorization")), settings.review.tokens)
        if who is None:
            raise Unauthorized()
        return who

    def labels() -> tuple[str, ...]:
        return queue.labels_for(engine, rollout_id)

    def item_json(c: Claim | None) -> dict[str, Any] | None:
        if c is None:
            return None
        return {"item_id": c.item_id, "claim_id": c.claim_id, "lease_until": c.lease_until,
                "photo": f"api/photo/{c.item_id}"}

    def progress(who: str) -> dict[str, int]:
        return queue.progress(engine, who, rollout_id).to_dict()

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(static_dir() / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/api/me", response_model=Me, responses=refusals())
    def me(who: str = Depends(reviewer)) -> dict[str, Any]:
        return {"reviewer": who, "labels": list(labels()), "unusable": UNUSABLE, "progress": progress(who)}

    @app.post("/api/claim", response_model=Claimed, responses={**refusals(), **CLAIM_LINKS})
    def claim(who: str = Depends(reviewer)) -> dict[str, Any]:
        return {"item": item_json(queue.claim_next(engine, who, lease_s, rollout_id, settings.review.agreement_reserve)), "progress": progress(who)}

    @app.post("/api/verdict", response_model=Recorded, responses=refusals(400, 404, 409, 422), operation_id="verdict")
    def verdict(body: VerdictIn, who: str = Depends(reviewer)) -> dict[str, Any]:
        queue.submit(engine, who, body.item_id, body.claim_id, body.label, labels(), len(settings.review.tokens))
        return {"recorded": True, "progress": progress(who)}

    @app.post("/api/undo", response_model=Claimed, responses=refusals(409))
    def undo(who: str = Depends(reviewer)) -> dict[str, Any]:
        return {"item": item_json(queue.undo(engine, who, lease_s, rollout_id)), "progress": progress(who)}

    @app.get("/api/progress", response_model=Progress, responses=refusals())
    def get_progress(who: str = Depends(reviewer)) -> dict[str, int]:
        return progress(who)

    @app.get("/api/photo/{item_id}", response_class=Response, responses={**PHOTO, **refusals(404, 422)},
             operation_id="photo")
    def photo(item_id: str = PathParam(pattern=UUID_PATTERN), who: str = Depends(reviewer)) -> Response:
        request_id = queue.holder_request(engine, who, item_id)
        if request_id is None:
            raise ReviewError(404, "no photo: the item is not claimed by you")
        data = photos.get(request_id)
        if data is None:
            raise ReviewError(404, "the photo is no longer stored; mark the item unusable")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    app.mount("/static", StaticFiles(directory=static_dir()), name="static")
    return app
