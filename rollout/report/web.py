"""The read-only rollout page, served by `rollout api`: a sign-in form for an operator token (kept for the
browser tab only, as the reviewer page does), then the live report, fetched with that token and swapped
in place every few seconds. Nothing on the page changes the rollout.

Routes: `GET /` (the page; holds no data), `GET /report/assets/{name}` (its script and styles),
`GET /api/report` (the report's HTML fragment; ETag, so an unchanged report costs a 304),
`GET /api/report/file` (the same report as one self-contained file, to keep or mail).
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from rollout.api_models import refusals
from rollout.control import ControlPlane
from rollout.report.live import Built, LiveReport
from rollout.report.render import assets_dir

ASSETS = {"page.js": "text/javascript", "page.css": "text/css", "report.css": "text/css"}
NO_STORE = {"Cache-Control": "no-store"}


def add_report_page(app: FastAPI, live: LiveReport, operator: Callable[[Request], ControlPlane]) -> None:
    """Add the page's routes to the control API; `operator` is its token check (a FastAPI dependency)."""

    def latest() -> Built | JSONResponse:
        built = live.latest()
        if built is None:
            return JSONResponse({"error": live.error or "the report is still being built; try again shortly"},
                                status_code=503, headers={"Retry-After": "5"})
        return built

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(assets_dir() / "page.html", headers=NO_STORE)

    @app.get("/report/assets/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ASSETS:
            return JSONResponse({"error": f"no asset {name!r}"}, status_code=404)
        return FileResponse(assets_dir() / name, media_type=ASSETS[name])

    @app.get("/api/report", response_class=Response, summary="The live report as an HTML fragment",
             responses={200: {"description": "The report's fragment (an <article>), HTML; `X-Refresh-S` says how "
                                             "often to ask again, with `If-None-Match` set to the `ETag`.",
                              "content": {"text/html": {"schema": {"type": "string"}}}},
                        304: {"description": "The report has not changed since the ETag sent in If-None-Match."},
                        **refusals(503)})
    def report(request: Request, cp: ControlPlane = Depends(operator)) -> Response:
        built = latest()
        if isinstance(built, JSONResponse):
            return built
        # A header is Latin-1 and an operator's name need not be: percent-encoded, the page decodes it.
        headers = {**NO_STORE, "ETag": built.etag, "X-Refresh-S": f"{live.poll_s:g}", "X-Operator": quote(cp.actor)}
        if live.error:  # the last rebuild failed: this report is the last good one
            headers["X-Report-Stale"] = " ".join(live.error.split()).encode("ascii", "replace").decode()[:300]
        if request.headers.get("if-none-match") == built.etag:
            return Response(status_code=304, headers=headers)
        return HTMLResponse(built.fragment, headers=headers)

    @app.get("/api/report/file", response_class=Response, summary="The live report as one self-contained file",
             responses={200: {"description": "The report as a standalone HTML file, sent as an attachment.",
                              "content": {"text/html": {"schema": {"type": "string"}}}},
                        **refusals(503)})
    def report_file(cp: ControlPlane = Depends(operator)) -> Response:
        built = latest()
        if isinstance(built, JSONResponse):
            return built
        name = f"rollout-{(built.rollout_id or 'none')[:8]}.html"
        return HTMLResponse(built.standalone, headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'})
