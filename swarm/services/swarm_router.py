"""swarm-router: the OpenAI-compatible router in front of every planned vLLM deployment.

Worked example of a service module (README "Adding a service"): pure placement, the
container plan, the rendered config and the flows, from the spec alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from swarm.plan.types import Flow, PlannedFile, SecretFile, ServicePlan, secret_path
from swarm.render.yaml_text import to_yaml
from swarm.services import vllm
from swarm.services.base import PlanContext, http_healthcheck, service_origin
from swarm.services.runtime_image import RUNTIME_IMAGE

KIND = "swarm-router"
PORT = 9000  # inside the container; the host port comes from the stack config
CONFIG_DIR = "/etc/swarm"
CONFIG_NAME = "router.yaml"
API_KEY = "router-api-key"
ADMIN_KEY = "router-admin-key"


def placed(ctx: PlanContext) -> tuple[str, str, int] | None:
    """(service name, node, host port) of the router, if the stack places one."""
    found = ctx.first_of(KIND)
    if found is None:
        return None
    name, service = found
    return name, service.node, service.port or PORT


def url(ctx: PlanContext) -> str | None:
    """The router's URL over the tailnet (what LiteLLM and the autotuners call)."""
    where = placed(ctx)
    return ctx.url(where[1], where[2]) if where else None


def router_config(ctx: PlanContext) -> dict[str, Any]:
    """Backends are the planned vLLM deployments; each starts capped at its max_num_seqs."""
    spec = ctx.spec
    return {
        "listen": {"host": "0.0.0.0", "port": PORT},
        "api_key_file": secret_path(API_KEY),
        "admin_key_file": secret_path(ADMIN_KEY),
        "backends": [
            {
                "name": name,
                "url": ctx.url(deployment.node, deployment.port),
                "models": [deployment.model],
                "max_concurrency": deployment.max_num_seqs,
                "api_key_file": secret_path(vllm.API_KEY),
            }
            for name, deployment in spec.inference.items()
        ],
    }


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    where = placed(ctx)
    if where is None or not ctx.spec.inference:
        return
    name, node, host_port = where
    config = to_yaml(router_config(ctx), "swarm-router configuration")
    yield ServicePlan(
        name=name, kind=KIND, node=node, origin=service_origin(name),
        image=RUNTIME_IMAGE,
        command=("swarm-router", "--config", f"{CONFIG_DIR}/{CONFIG_NAME}"),
        healthcheck=http_healthcheck(PORT),
        memory_mb=512, cpus=1.0,
        ports=ctx.publish(node, PORT, host_port),
        internal_port=PORT,
        config_dir=CONFIG_DIR,
        files=(PlannedFile(CONFIG_NAME, config, f"{name}/{CONFIG_NAME}"),),
        secret_files=(SecretFile(API_KEY, f"generated:{API_KEY}"), SecretFile(ADMIN_KEY, f"generated:{ADMIN_KEY}"),
                      SecretFile(vllm.API_KEY, f"generated:{vllm.API_KEY}")),
        flows=tuple(
            Flow(source=name, target=deployment_name, port=deployment.port, purpose="OpenAI API",
                 cross_node=deployment.node != node)
            for deployment_name, deployment in ctx.spec.inference.items()
        ),
    )
