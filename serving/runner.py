"""Starting Ray and the Serve app from configuration: a local Ray by default, a cluster by address."""

from __future__ import annotations

from roomsight.cluster import init_ray
from roomsight.config import Settings

APP_NAME = "roomsight"


def start_serve(settings: Settings, candidate_faults: bool = False) -> str:
    """Deploy (or update in place) the app; returns its base URL."""
    from ray import serve

    from serving.app import build_app

    init_ray(settings)
    serve.start(http_options={"host": settings.serve.host, "port": settings.serve.port})
    serve.run(build_app(settings, candidate_faults), name=APP_NAME, route_prefix="/", blocking=False)
    return f"http://{settings.serve.host}:{settings.serve.port}"


def stop_serve() -> None:
    from ray import serve

    serve.delete(APP_NAME)
