"""gpu-exporter: NVIDIA GPU metrics (temperature, utilisation, memory, power) on GPU nodes.

utkuozdemir/nvidia_gpu_exporter in its `-nvml` flavour reads NVML directly (no nvidia-smi
child process); the NVIDIA container runtime injects the driver's library with the `utility`
capability only. (NVIDIA's DCGM exporter would default to port 9400, the autotuner's.)
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.errors import key_path
from swarm.plan.types import GpuRequest, Healthcheck, PulledImage, ServicePlan
from swarm.services.base import PlanContext

KIND = "gpu-exporter"
PORT = 9835
BINARY = "/usr/bin/nvidia_gpu_exporter"
# 1.14.0-nvml: index digest recorded (resolved 2026-08-22) in one public repository's app notes;
# upstream builds the nvml flavour for linux/amd64 only (.goreleaser.yml: cgo, "arm64 deferred").
IMAGE = PulledImage("utkuozdemir/nvidia_gpu_exporter", "1.14.0-nvml",
                    "sha256:82acc3fc60a5a709846ea9757bbccb170fd141039fa47e5899c55fe9a60f56fe",
                    frozenset({"amd64"}))


def instance_name(node: str) -> str:
    return f"{KIND}-{node}"


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for node_name, node in ctx.spec.gpu_nodes().items():
        yield ServicePlan(
            name=instance_name(node_name), kind=KIND, node=node_name,
            origin=key_path("agents", "gpu_exporter_port"),
            image=IMAGE,
            command=(f"--web.listen-address=:{PORT}",),
            # distroless image: no shell or HTTP client; Prometheus's `up` (TargetDown) is the real probe
            healthcheck=Healthcheck(test=(BINARY, "--version")),
            memory_mb=64, cpus=0.25,
            user="65534:65534",
            ports=ctx.publish(node_name, PORT, ctx.spec.agents.gpu_exporter_port),
            internal_port=PORT,
            gpu=GpuRequest(device_ids=tuple(str(gpu.index) for gpu in node.gpus), capabilities=("utility",)),
        )
