"""Starting or joining Ray from configuration: a local Ray by default, a cluster by `ray.address`.
Shared by the Serve app and distributed training."""

from __future__ import annotations

import os

from roomsight.config import Settings


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
