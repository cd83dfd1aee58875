"""Starting or joining Ray from configuration: a local Ray by default, a cluster by `ray.address`.
Shared by the Serve app and distributed training."""

from __future__ import annotations

import logging
import os
import socket

from roomsight.config import Settings, ray_endpoint
from roomsight.errors import ConfigError

CONNECT_TIMEOUT_S = 5.0

log = logging.getLogger(__name__)


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
    if not settings.ray.local:
        check_reachable(settings.ray.address)
        try:
            ray.init(address=settings.ray.address, runtime_env=runtime_env, log_to_driver=False)
        except ConnectionError as exc:  # Ray Client's handshake with something that is not Ray
            raise ConfigError(f"cannot join the Ray cluster at {settings.ray.address} (ray.address): {exc}") from None
    else:
        # "local": Ray would otherwise join the cluster a RAY_ADDRESS in the environment names, and refuse
        # num_cpus there; the settings are the one place that says where Ray runs.
        if os.environ.get("RAY_ADDRESS"):
            log.warning("RAY_ADDRESS is set in the environment but ray.address is not: starting a local Ray; "
                        "set ray.address (ROOMSIGHT_RAY__ADDRESS) to join that cluster")
        ray.init(address="local", num_cpus=settings.ray.num_cpus, include_dashboard=False, runtime_env=runtime_env,
                 log_to_driver=False, configure_logging=False)


def check_reachable(address: str) -> None:
    """A cluster that is down or mistyped, said in seconds: Ray itself retries the connection for
    minutes, logging as it goes, before it gives up with a traceback."""
    target = ray_endpoint(address)  # of a form the settings already checked
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        reason = (exc.strerror or str(exc) or type(exc).__name__).lower()
        raise ConfigError(f"cannot reach the Ray cluster at {address} (ray.address): {reason}") from None
