"""Starting Ray and the Serve app from configuration: a local Ray by default, a cluster by address."""

from __future__ import annotations

import os

from roomsight.config import Settings

APP_NAME = "roomsight"


def init_ray(settings: Settings) -> None:
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    if ray.is_initialized():
        return
    # Workers inherit these, so replicas find the same stores as the process that started them.
    env = {k: v for k, v in os.environ.items() if k.startswith(("ROOMSIGHT_", "MLFLOW_"))}
    env.update({"ROOMSIGHT_HOME": str(settings.home), "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"})
    runtime_env = {"env_vars": env}
    if settings.ray.address:
        ray.init(address=settings.ray.address, runtime_env=runtime_env, log_to_driver=False)
    else:
        ray.init(num_cpus=settings.ray.num_cpus, include_dashboard=False, runtime_env=runtime_env,
                 log_to_driver=False, configure_logging=False)


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
