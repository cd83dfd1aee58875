"""The Serve application: a FastAPI ingress in front of two model deployments, champion and candidate.

`Ingress` is only the Serve side of the ingress: it builds an `IngressService` (the parts) in its replica
and hands Serve the FastAPI app over it (`serving.api`). Serve builds that app after the constructor
(`__serve_build_asgi_app__`) and ends its lifespan when the replica stops gracefully, which closes the
service. Request path: `serving.request` -> `serving.pipeline` -> `serving.shadow_dispatch`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve.deployment import Deployment
from ray.serve.handle import DeploymentHandle

from roomsight.config import Settings
from serving.api import create_api
from serving.models import ModelDeployment
from serving.routing import CANDIDATE, CHAMPION
from serving.service import IngressService


@serve.deployment(name="ingress", max_ongoing_requests=256)
@serve.ingress()
class Ingress:
    def __init__(self, champion: DeploymentHandle, candidate: DeploymentHandle, settings: dict[str, Any]) -> None:
        self.service = IngressService(Settings.model_validate(settings), champion, candidate)

    def __serve_build_asgi_app__(self) -> FastAPI:
        return create_api(self.service)


def build_app(settings: Settings, candidate: Deployment | None = None) -> serve.Application:
    """The application graph: ingress -> {champion, candidate} model deployments, fractional CPUs.
    `candidate` is the deployment that plays the candidate (default: the model deployment); tests and
    benchmarks pass one that can be told to fail (`serving.faults`)."""
    conf = settings.model_dump(mode="json")
    s = settings.serve
    model_opts = {"ray_actor_options": {"num_cpus": s.model_cpus, "resources": dict(s.model_resources)},
                  "num_replicas": s.model_replicas}
    champion_app = ModelDeployment.options(name="champion", **model_opts).bind(CHAMPION, conf)
    candidate_app = (candidate or ModelDeployment).options(name="candidate", **model_opts).bind(CANDIDATE, conf)
    return Ingress.options(ray_actor_options={"num_cpus": s.ingress_cpus, "resources": dict(s.ingress_resources)}).bind(
        champion_app, candidate_app, conf)
