"""The control plane over HTTP: the same start / promote / rollback / status / history as the CLI, for
dashboards and CI jobs that cannot run the CLI next to the database.

Every route needs `Authorization: Bearer <token>` (tokens from `control.tokens`, compared in constant
time); the token's holder is the actor MLflow records. The app refuses to be built without a token: an
unauthenticated endpoint that flips traffic is worse than none. Concurrency is the control plane's
compare-and-swap: of two racing changes one wins and the other gets 409, never a half-written state.

`GET /metrics` (rollout.api_metrics) also takes a `control.scrape_tokens` token: what Prometheus keeps on disk
can read the series, never change the rollout. `GET /openapi.json` needs no token: the contract
(rollout.api_models) is no secret, the data behind it is. `GET /` is the read-only rollout page
(rollout.report.web): the live report, behind the operator tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.exceptions import HTTPException

from roomsight.auth import bearer_token, token_holder
from roomsight.errors import ConfigError, GatesFailed, RegistryError, RolloutError
from roomsight.http_errors import invalid_message
from rollout.api_models import (INPUT_FIELDS, EventOut, GatesRefused, OutcomeOut, PromoteIn, RollbackIn, StartIn,
                                StatusOut, refusals)
from rollout.control import ControlPlane
from rollout.api_metrics import control_registry
from rollout.report.live import LiveReport
from rollout.report.web import add_report_page


class _Unauthorized(Exception):
    pass


def create_app(control: ControlPlane, tokens: Mapping[str, str], report: LiveReport | None = None,
               scrape_tokens: Mapping[str, str] | None = None) -> FastAPI:
    """The API, and the read-only rollout page at `/` (its live report: `report`, default one built here).
    `scrape_tokens` (default: control.scrape_tokens) may read `/metrics` and nothing else."""
    if not tokens:
        raise ConfigError("control.tokens is empty: set ROOMSIGHT_CONTROL__TOKENS='{\"name\": \"token\"}' "
                          "before exposing the control plane over HTTP")
    app = FastAPI(title="roomsight control plane", version="1", docs_url=None, redoc_url=None,
                  description="Start, promote and roll back a model rollout; its status, history and report.")
    token_scheme = HTTPBearer(auto_error=False, description="An operator token from control.tokens "
                                                            "(for /metrics, a control.scrape_tokens token too).")

    @app.exception_handler(_Unauthorized)
    async def _unauthorized(_: Request, __: _Unauthorized) -> JSONResponse:
        return JSONResponse({"error": "a valid operator token is required"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    # Every refusal carries `error`: also unknown paths, wrong methods and unparseable bodies.
    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": invalid_message(exc.errors(), INPUT_FIELDS)}, status_code=422)

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

    def operator(request: Request, _declared: object = Security(token_scheme)) -> ControlPlane:
        # `token_scheme` only declares the scheme in the schema; the header is read as every API reads it.
        who = token_holder(bearer_token(request.headers.get("authorization")), tokens)
        if who is None:
            raise _Unauthorized()
        return control.with_actor(who)

    scrapers = dict(control.settings.control.scrape_tokens if scrape_tokens is None else scrape_tokens)

    def scraper(request: Request, _declared: object = Security(token_scheme)) -> str:
        token = bearer_token(request.headers.get("authorization"))
        who = token_holder(token, tokens) or token_holder(token, scrapers)
        if who is None:
            raise _Unauthorized()
        return who

    metrics_registry = control_registry(control)

    @app.get("/api/status", response_model=StatusOut, responses=refusals(503))
    def status(cp: ControlPlane = Depends(operator)) -> dict[str, Any]:
        return cp.status().to_dict()

    @app.get("/api/history", response_model=list[EventOut], responses=refusals(422, 503))
    def history(limit: int = Query(50, ge=1, le=500, description="Most recent events to return."),
                cp: ControlPlane = Depends(operator)) -> list[dict[str, Any]]:
        return cp.history(limit)

    @app.post("/api/start", response_model=OutcomeOut, responses=refusals(400, 409, 422, 503))
    def start(body: StartIn, cp: ControlPlane = Depends(operator)) -> dict[str, Any]:
        return cp.start(body.candidate, body.reason).to_dict()

    @app.post("/api/promote", response_model=OutcomeOut, responses=refusals(400, 409, 422, 503, conflict=GatesRefused))
    def promote(body: PromoteIn, cp: ControlPlane = Depends(operator)) -> dict[str, Any]:
        regions = tuple(body.regions) if body.regions is not None else None
        return cp.promote(body.stage, regions, body.percent, force=body.force, reason=body.reason,
                          dry_run=body.dry_run, generation=body.generation).to_dict()

    @app.post("/api/rollback", response_model=OutcomeOut, responses=refusals(400, 409, 422, 503))
    def rollback(body: RollbackIn, cp: ControlPlane = Depends(operator)) -> dict[str, Any]:
        return cp.rollback(body.reason, generation=body.generation).to_dict()

    @app.get("/metrics", summary="The rollout's series, as the control plane judges them (Prometheus)",
             response_class=Response, responses={
                 200: {"description": "Prometheus text exposition format 0.0.4.",
                       "content": {"text/plain": {"schema": {"type": "string"}}}}, **refusals(503)})
    def metrics(_: str = Depends(scraper)) -> Response:
        return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    add_report_page(app, report or LiveReport(control), operator)
    return app
