"""swarm-autotuner: one per GPU node that serves a model; tunes the router's caps online."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from swarm.errors import key_path
from swarm.plan.types import Flow, GpuRequest, PlannedFile, SecretFile, ServicePlan, secret_path
from swarm.render.yaml_text import to_yaml
from swarm.services import swarm_router
from swarm.services.base import PlanContext, http_healthcheck
from swarm.services.runtime_image import RUNTIME_IMAGE

KIND = "swarm-autotuner"
PORT = 9400
CONFIG_DIR = "/etc/swarm"
CONFIG_NAME = "autotuner.yaml"


def autotuner_config(ctx: PlanContext, node: str, router_url: str) -> dict[str, Any]:
    """One target per vLLM deployment on `node`; limits pushed to the router's admin API."""
    spec = ctx.spec
    deployments = {name: d for name, d in spec.inference.items() if d.node == node}
    gpus = {gpu.index: gpu for gpu in spec.nodes[node].gpus}
    max_temp = min((gpus[d.gpu].max_temp_c for d in deployments.values()), default=85.0)
    return {
        "router": {"url": router_url, "admin_key_file": secret_path(swarm_router.ADMIN_KEY)},
        "listen": {"host": "0.0.0.0", "port": PORT},
        "interval_s": 5,
        "dry_run": False,
        "thermal": {"max_temp_c": max_temp},
        "targets": [
            {
                "backend": name,
                "vllm_url": ctx.url(node, deployment.port),
                "gpu_index": deployment.gpu,
                "ttft_target_s": deployment.ttft_target_s,
                "min_limit": 1,
                "initial_limit": deployment.max_num_seqs,
                "max_limit": max(4, 2 * deployment.max_num_seqs),
            }
            for name, deployment in deployments.items()
        ],
    }


def instance_name(node: str) -> str:
    return f"{KIND}-{node}"


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    router = swarm_router.placed(ctx)
    router_url = swarm_router.url(ctx)
    if router is None or router_url is None:
        return
    spec = ctx.spec
    for node_name, node in spec.gpu_nodes().items():
        served = [(name, d) for name, d in spec.inference.items() if d.node == node_name]
        if not served:
            continue
        name = instance_name(node_name)
        config = to_yaml(autotuner_config(ctx, node_name, router_url),
                         f"swarm-autotuner configuration for {node_name}")
        yield ServicePlan(
            name=name, kind=KIND, node=node_name, origin=key_path("agents", "autotuner_port"),
            image=RUNTIME_IMAGE,
            command=("swarm-autotuner", "--config", f"{CONFIG_DIR}/{CONFIG_NAME}"),
            healthcheck=http_healthcheck(PORT),
            memory_mb=256, cpus=0.5,
            ports=ctx.publish(node_name, PORT, spec.agents.autotuner_port),
            internal_port=PORT,
            config_dir=CONFIG_DIR,
            files=(PlannedFile(CONFIG_NAME, config, f"{KIND}/{node_name}.yaml"),),
            secret_files=(SecretFile(swarm_router.ADMIN_KEY, f"generated:{swarm_router.ADMIN_KEY}"),),
            # NVML only: `utility` exposes the driver's management library, not compute.
            gpu=GpuRequest(device_ids=tuple(str(gpu.index) for gpu in node.gpus), capabilities=("utility",)),
            flows=(
                Flow(source=name, target=router[0], port=router[2], purpose="concurrency cap",
                     cross_node=router[1] != node_name),
                *(Flow(source=name, target=deployment_name, port=d.port, purpose="vLLM metrics")
                  for deployment_name, d in served),
            ),
        )
