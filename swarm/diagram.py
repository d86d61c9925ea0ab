"""`python -m swarm diagram`: a Mermaid flowchart of nodes, placed services and their flows.

Everything comes from the plan: a service appears only if a container is planned for it,
and an arrow only where a service module declared a flow.
"""

from __future__ import annotations

from swarm.kinds import EXTERNAL_PREFIX, USER_FACING_KINDS
from swarm.plan.types import ServicePlan, SwarmPlan

SHAPES = {"vllm": ('[["', '"]]'), "swarm-autotuner": ('("', '")'), "node-exporter": ('("', '")'),
          "gpu-exporter": ('("', '")'), "log-shipper": ('("', '")')}


def _id(name: str) -> str:
    return name.replace("-", "_").replace(":", "_").replace("/", "_").replace(".", "_")


def _label(service: ServicePlan) -> str:
    port = f" :{service.ports[0].host}" if service.ports else " (private)"
    kind = "" if service.kind == service.name else f" ({service.kind})"
    adopted = " (adopted)" if service.stateful and service.kind == "qdrant" else ""
    return f"{service.name}{kind}{port}{adopted}"


def render_mermaid(plan: SwarmPlan) -> str:
    spec = plan.spec
    lines = ["flowchart LR", '  users(["people and API clients"])']
    for node_name, node in spec.nodes.items():
        gpus = ", ".join(f"{gpu.model} {gpu.vram_gb:g} GB" for gpu in node.gpus)
        title = f"{node_name} · {node.role} · {node.arch} · {node.tailscale_ip}" + (f" · {gpus}" if gpus else "")
        lines.append(f'  subgraph {_id(node_name)}["{title}"]')
        for service in plan.on_node(node_name):
            opening, closing = SHAPES.get(service.kind, ('["', '"]'))
            lines.append(f"    {_id(service.name)}{opening}{_label(service)}{closing}")
        lines.append("  end")
    external = sorted({flow.target for flow in plan.flows if flow.target.startswith(EXTERNAL_PREFIX)})
    if external:
        lines.append('  subgraph external["external providers"]')
        lines.extend(f'    {_id(target)}["{target.removeprefix(EXTERNAL_PREFIX)}"]' for target in external)
        lines.append("  end")
    for service in plan.services:
        if service.kind in USER_FACING_KINDS and service.ports:
            lines.append(f"  users --> {_id(service.name)}")
    for flow in plan.flows:
        arrow = "-.->" if flow.target.startswith(EXTERNAL_PREFIX) or flow.purpose in _CONTROL else "-->"
        lines.append(f"  {_id(flow.source)} {arrow}|{flow.purpose}| {_id(flow.target)}")
    return "\n".join(lines) + "\n"


_CONTROL = frozenset({"concurrency cap", "vLLM metrics", "scrape", "logs"})
