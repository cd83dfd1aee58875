"""Starting Ray and the Serve app from configuration: a local Ray by default, a cluster by address."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from roomsight.cluster import init_ray
from roomsight.config import ServeSettings, Settings
from roomsight.errors import ConfigError
from roomsight.listening import cannot_listen, check_free

if TYPE_CHECKING:
    from ray.serve.deployment import Deployment

APP_NAME = "roomsight"

log = logging.getLogger(__name__)


def cpus_needed(s: ServeSettings) -> float:
    """CPUs the app reserves: one ingress, and `model_replicas` of each model deployment (champion and
    candidate). Serve's proxy and controller reserve none."""
    return s.ingress_cpus + 2 * s.model_replicas * s.model_cpus


def check_fits(s: ServeSettings, cluster_cpus: float, cluster_resources: dict[str, float] | None = None) -> None:
    """Refuse to deploy an app Ray cannot place: Serve would wait for the missing CPUs or custom resources
    without end."""
    need = cpus_needed(s)
    if need > cluster_cpus + 1e-9:
        raise ConfigError(
            f"serve.ingress_cpus + 2 x serve.model_replicas x serve.model_cpus = {s.ingress_cpus:g} + 2 x "
            f"{s.model_replicas} x {s.model_cpus:g} = {need:g} CPUs, but Ray has {cluster_cpus:g}: lower "
            "serve.model_cpus or serve.model_replicas (fractions are fine), or give Ray more (ray.num_cpus)")
    have = cluster_resources or {}
    for key, wanted, replicas in (("ingress_resources", s.ingress_resources, 1),
                                  ("model_resources", s.model_resources, 2 * s.model_replicas)):
        for name, amount in wanted.items():
            if amount * replicas > have.get(name, 0.0) + 1e-9:
                raise ConfigError(f"serve.{key} asks {replicas} replica(s) for {amount:g} of resource {name!r} each, but "
                                  f"the Ray cluster has {have.get(name, 0.0):g}: start nodes with it "
                                  f"(ray start --resources '{{\"{name}\": N}}'), or remove it from serve.{key}")


def start_serve(settings: Settings, candidate: Deployment | None = None) -> str:
    """Deploy (or update in place) the app; returns its base URL. `candidate`: the deployment that plays
    the candidate, when not the usual model deployment (tests and benchmarks inject faults with it)."""
    import ray
    from ray import serve

    from serving.app import build_app

    if settings.ray.local and not ray.is_initialized():
        # The local Ray this call starts puts Serve's proxy on this machine, and the proxy binds with
        # SO_REUSEPORT: beside another Serve on the port it binds too, and the two split the requests,
        # so its own bind failure never comes. On a cluster the proxies run on its nodes, perhaps not
        # this one, and a Serve already running there holds the port itself; so does one in a Ray this
        # process started before (the demo deploys onto it). There Ray's bind failure, below, is the check.
        check_free(settings.serve.host, settings.serve.port, "serve")
    init_ray(settings)
    try:
        resources = ray.cluster_resources()
        check_fits(settings.serve, resources.get("CPU", 0.0), resources)
    except ConfigError as exc:
        if settings.ray.local:
            raise  # a local Ray never gains CPUs
        log.warning("%s; deploying anyway, for a cluster that scales up", exc)
    try:
        serve.start(http_options={"host": settings.serve.host, "port": settings.serve.port},
                    proxy_location="HeadOnly" if settings.serve.proxy_location == "head_only" else "EveryNode")
    except RuntimeError as exc:
        # Ray reports a port taken without SO_REUSEPORT as a RayTaskError from its proxy actor, identified only by the message.
        if "Failed to bind" not in str(exc):
            raise
        raise cannot_listen(settings.serve.host, settings.serve.port, "serve") from None
    serve.run(build_app(settings, candidate), name=APP_NAME, route_prefix="/", blocking=False)
    return f"http://{settings.serve.host}:{settings.serve.port}"


def stop_serve() -> None:
    from ray import serve

    serve.delete(APP_NAME)
