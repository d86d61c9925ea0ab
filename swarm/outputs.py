"""Stack outputs: one versioned shape other tools read with `pulumi stack output --json`.

`StackOutputs` is the contract (contract 5): its JSON Schema is committed as
`schemas/stack-outputs.v2.json` and a test fails when the two differ. Outputs are built
from the plan, so only what is deployed appears (a service without a container has no
endpoint), and they hold no secret: credentials are delivered to containers as files.
Additive changes keep `schema_version`; anything else bumps it and the schema file.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from swarm.capacity import capacity_rows
from swarm.plan.types import SwarmPlan

SCHEMA_VERSION: Literal[2] = 2
Url = Annotated[str, Field(pattern=r"^https?://")]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuOut(_Out):
    index: int = Field(ge=0)
    model: str
    vram_gb: float = Field(gt=0)


class NodeOut(_Out):
    role: Literal["gateway", "inference", "worker"]
    arch: Literal["amd64", "arm64"]
    tailscale_ip: str = Field(description="The node's address on the tailnet; every published port binds to it.")
    docker_host: str = Field(pattern=r"^ssh://", description="What the node's Docker provider connects to.")
    gpus: list[GpuOut]


class EndpointOut(_Out):
    kind: str = Field(description="Service kind (swarm.kinds vocabulary).")
    node: str
    url: Url | None = Field(description="URL over the tailnet; null when the service is private to its node.")


class InferenceOut(_Out):
    model: str
    node: str
    gpu: int = Field(ge=0)
    url: Url
    max_model_len: int = Field(ge=1)
    max_num_seqs: int = Field(ge=1)


class ModelOut(_Out):
    kind: Literal["local", "hosted"]
    served_by: list[str] = Field(description="vLLM deployments (local) or the provider (hosted).")


class MonitoringOut(_Out):
    prometheus_url: Url | None
    grafana_url: Url | None
    alertmanager_url: Url | None


class StackOutputs(_Out):
    """What `pulumi stack output --json` prints for an ai-swarm stack."""

    schema_version: Literal[2]
    nodes: dict[str, NodeOut]
    endpoints: dict[str, EndpointOut] = Field(description="Every deployed service and vLLM instance.")
    openai_base_url: Url | None = Field(description="The LiteLLM gateway's OpenAI API base (…/v1), if deployed.")
    models: dict[str, ModelOut] = Field(description="Model catalog: served name -> where it runs.")
    inference: dict[str, InferenceOut]
    monitoring: MonitoringOut
    capacity: list[dict[str, object]] = Field(description="The VRAM plan per GPU (GiB), as `swarm plan` prints it.")


def docker_host(plan: SwarmPlan, node: str) -> str:
    spec_node = plan.spec.nodes[node]
    return f"ssh://{spec_node.ssh_user}@{spec_node.tailscale_ip}"


def _first_url(plan: SwarmPlan, kind: str) -> str | None:
    return next((e.url for e in plan.endpoints.values() if e.kind == kind and e.url), None)


def build_outputs(plan: SwarmPlan) -> StackOutputs:
    spec = plan.spec
    vllm = {service.name for service in plan.of_kind("vllm")}
    gateway = _first_url(plan, "litellm")
    models: dict[str, ModelOut] = {}
    for name, deployment in spec.inference.items():
        if name in vllm:
            served = models.get(deployment.model)
            models[deployment.model] = ModelOut(kind="local", served_by=[*(served.served_by if served else []), name])
    if gateway:
        for provider_name, provider in spec.providers.items():
            for model in provider.models:
                models.setdefault(model, ModelOut(kind="hosted", served_by=[provider_name]))
    return StackOutputs(
        schema_version=SCHEMA_VERSION,
        nodes={
            name: NodeOut(role=node.role, arch=node.arch, tailscale_ip=node.tailscale_ip,
                          docker_host=docker_host(plan, name),
                          gpus=[GpuOut(index=g.index, model=g.model, vram_gb=g.vram_gb) for g in node.gpus])
            for name, node in spec.nodes.items()
        },
        endpoints={name: EndpointOut(kind=e.kind, node=e.node, url=e.url) for name, e in plan.endpoints.items()},
        openai_base_url=f"{gateway}/v1" if gateway else None,
        models=dict(sorted(models.items())),
        inference={
            name: InferenceOut(model=d.model, node=d.node, gpu=d.gpu, url=plan.endpoints[name].url or "",
                               max_model_len=d.max_model_len, max_num_seqs=d.max_num_seqs)
            for name, d in spec.inference.items() if name in vllm
        },
        monitoring=MonitoringOut(prometheus_url=_first_url(plan, "prometheus"),
                                 grafana_url=_first_url(plan, "grafana"),
                                 alertmanager_url=_first_url(plan, "alertmanager")),
        capacity=capacity_rows(plan.capacity),
    )


def stack_outputs(plan: SwarmPlan) -> dict[str, object]:
    """The outputs as the program exports them (one `pulumi.export` per top-level key)."""
    return build_outputs(plan).model_dump(mode="json")


def outputs_json_schema() -> dict[str, object]:
    schema = StackOutputs.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://ai-swarm.invalid/schemas/stack-outputs.v{SCHEMA_VERSION}.json"
    return schema
