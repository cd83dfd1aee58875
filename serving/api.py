"""The HTTP API of the Serve app: its routes, its one error body, and the OpenAPI schema it publishes at
`/openapi.json` (checked against the running app by schemathesis in the tests).

The routes read the multipart form themselves (`serving.request`), so every refusal, from a wrong content
type or an unreadable body to an undecodable photo, has the same `{"error": ...}` body, and every 4xx refusal
of a prediction is counted by reason (`roomsight_rejected`). Starlette's own refusals of unknown paths and
methods have the body too, and are not predictions refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from roomsight.errors import RequestError
from serving.request import PredictRequest, form_schema, parse_batch, parse_predict
from serving.responses import BatchAnswer, BatchItemError, ErrorBody, Health, Prediction
from serving.service import IngressService


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": _ERROR_WHEN[status]} for status in statuses}


_ERROR_WHEN = {
    400: "The photo cannot be decoded (not an image, empty, truncated), or the multipart body is malformed.",
    413: "The body, the photo's bytes or its pixels are over the limits (serve.max_upload_bytes, serve.max_pixels).",
    415: "The body is not multipart/form-data.",
    422: "A required field is missing or blank, a field is too long or holds a NUL character, or a field has the "
         "wrong kind (text for a file).",
    503: "No model is live yet, or the champion cannot answer now; retry shortly.",
}


async def _form(request: Request, service: IngressService) -> FormData:
    """The request's multipart form; refuses any other content type, and a body too large by its header."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise RequestError(415, "expected a multipart/form-data body, with the photo as a file field",
                           "unsupported-media-type")
    service.check_length(request.headers.get("content-length"))
    try:
        return await request.form()
    except HTTPException as exc:  # Starlette's refusal of a body it cannot read as multipart: counted like the others
        raise RequestError(exc.status_code, f"the multipart body cannot be read: {exc.detail}", "malformed-form") from None


def create_api(service: IngressService) -> FastAPI:
    """The FastAPI app over `service`; its lifespan's end (Serve runs it when a replica stops gracefully)
    closes the service, so what the replica holds is written."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(service.close)

    api = FastAPI(title="roomsight", version="1", lifespan=lifespan,
                  description="Room-type photo classification with staged rollout of new models.")

    @api.exception_handler(RequestError)
    async def _refused(_request: Request, exc: RequestError) -> JSONResponse:
        if exc.status < 500:
            service.metrics.rejected.labels(exc.reason).inc()
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @api.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        # Starlette's own refusals (unknown path, wrong method, a malformed multipart body) in the same body.
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @api.get("/healthz", summary="Health, the rollout state routed on, and the backlog of the log and shadow work")
    async def healthz() -> Health:
        return service.health()

    @api.get("/metrics", summary="Prometheus metrics of this ingress replica", response_class=Response,
             responses={200: {"description": "Prometheus text exposition format 0.0.4.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def metrics() -> Response:
        return Response(service.render_metrics(), media_type=CONTENT_TYPE_PLAIN_0_0_4)

    @api.post("/predict", summary="The room type of one photo", openapi_extra={"requestBody": form_schema()},
              responses=_errors(400, 413, 415, 422, 503))
    async def predict(request: Request) -> Prediction:
        with service.in_flight():
            async with _closing(await _form(request, service)) as form:
                upload, fields = parse_predict(form)
                return await service.pipeline.answer(await service.decode(upload), fields)

    @api.post("/predict/batch", summary="The room types of several photos, one answer each",
              openapi_extra={"requestBody": form_schema(batch=True)}, responses=_errors(400, 413, 415, 422, 503))
    async def predict_batch(request: Request) -> BatchAnswer:
        with service.in_flight():
            async with _closing(await _form(request, service)) as form:

                async def one(upload: UploadFile, fields: PredictRequest) -> Prediction | BatchItemError:
                    try:
                        return await service.pipeline.answer(await service.decode(upload), fields)
                    except RequestError as exc:  # this photo alone fails
                        if exc.status < 500:
                            service.metrics.rejected.labels(exc.reason).inc()
                        return BatchItemError(error=exc.message, status=exc.status)

                return BatchAnswer(results=list(await asyncio.gather(*(one(*item) for item in parse_batch(form)))))

    return api


@asynccontextmanager
async def _closing(form: FormData) -> AsyncIterator[FormData]:
    """The form, with its spooled uploads closed once the answer is ready."""
    try:
        yield form
    finally:
        await form.close()
