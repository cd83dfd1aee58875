"""The control plane over HTTP: the same start / promote / rollback / status / history as the CLI, for
dashboards and CI jobs that cannot run the CLI next to the database.

Every route needs `Authorization: Bearer <token>` (tokens from `control.tokens`, compared in constant
time); the token's holder is the actor MLflow records. The app refuses to be built without a token: an
unauthenticated endpoint that flips traffic is worse than none. Concurrency is the control plane's
compare-and-swap: of two racing changes one wins and the other gets 409, never a half-written state.

`GET /` is the read-only rollout page (rollout.report.web): the live report, behind the same tokens.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from roomsight.auth import bearer_token, token_holder
from roomsight.errors import ConfigError, GatesFailed, RegistryError, RolloutError
from roomsight.http_errors import invalid_message
from rollout.control import ControlPlane
from rollout.report.live import LiveReport
from rollout.report.web import add_report_page


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    candidate: str = Field(max_length=256)
    reason: str | None = Field(None, max_length=1000)


class PromoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stage: str | None = Field(None, max_length=32, description="Go to the first later step of this kind; default: the next step.")
    regions: list[str] | None = Field(None, max_length=100)
    percent: float | None = None
    force: bool = False
    dry_run: bool = Field(False, description="Say what would happen, with every condition's numbers; change nothing.")
    reason: str | None = Field(None, max_length=1000)


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=1000)


class _Unauthorized(Exception):
    pass


def create_app(control: ControlPlane, tokens: dict[str, str], report: LiveReport | None = None) -> FastAPI:
    """The API, and the read-only rollout page at `/` (its live report: `report`, default one built here)."""
    if not tokens:
        raise ConfigError("control.tokens is empty: set ROOMSIGHT_CONTROL__TOKENS='{\"name\": \"token\"}' "
                          "before exposing the control plane over HTTP")
    app = FastAPI(title="roomsight control plane", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(_: Request, __: _Unauthorized) -> JSONResponse:
        return JSONResponse({"error": "a valid operator token is required"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = {*StartIn.model_fields, *PromoteIn.model_fields, *RollbackIn.model_fields}
        return JSONResponse({"error": invalid_message(exc.errors(), fields)}, status_code=422)

    @app.exception_handler(GatesFailed)
    async def _gates(_: Request, exc: GatesFailed) -> JSONResponse:
        return JSONResponse({"error": str(exc), "gates": [g.to_dict() for g in exc.results]}, status_code=exc.status)

    # A refusal (RolloutError, 409) and MLflow out of reach (RegistryError, 503: the control plane turns a
    # bad model URI into a RolloutError, so what reaches here a retry may cure) answer with their `status`.
    # Nothing else is caught: any other exception is a bug, and a bug is a 500, not a refusal.
    @app.exception_handler(RolloutError)
    @app.exception_handler(RegistryError)
    async def _refused(_: Request, exc: RolloutError | RegistryError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    def operator(request: Request) -> ControlPlane:
        who = token_holder(bearer_token(request.headers.get("authorization")), tokens)
        if who is None:
            raise _Unauthorized()
        return control.with_actor(who)

    @app.get("/api/status")
    def status(cp: ControlPlane = Depends(operator)) -> dict[str, Any]:
        return cp.status().to_dict()

    @app.get("/api/history")
    def history(limit: int = 50, cp: ControlPlane = Depends(operator)) -> list[dict[str, Any]]:
        return cp.history(max(1, min(limit, 500)))

    @app.post("/api/start")
    def start(body: StartIn, cp: ControlPlane = Depends(operator)) -> dict[str, Any]:
        return cp.start(body.candidate, body.reason).to_dict()

    @app.post("/api/promote")
    def promote(body: PromoteIn, cp: ControlPlane = Depends(operator)) -> dict[str, Any]:
        regions = tuple(body.regions) if body.regions is not None else None
        out = cp.promote(body.stage, regions, body.percent, force=body.force, reason=body.reason, dry_run=body.dry_run)
        return out.to_dict()

    @app.post("/api/rollback")
    def rollback(body: RollbackIn, cp: ControlPlane = Depends(operator)) -> dict[str, Any]:
        return cp.rollback(body.reason).to_dict()

    add_report_page(app, report or LiveReport(control), operator)
    return app
