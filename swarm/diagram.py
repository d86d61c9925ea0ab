"""`python -m swarm diagram`: a Mermaid flowchart of nodes, services and request flows."""

from __future__ import annotations

from swarm.model import SwarmSpec

# Request flows between service kinds (client kind -> server kind), drawn when both are placed.
FLOWS: tuple[tuple[str, str, str], ...] = (
    ("open-webui", "litellm", "OpenAI API"),
    ("sillytavern", "litellm", "OpenAI API"),
    ("gpt-researcher", "litellm", "OpenAI API"),
    ("litellm", "redis", "cache"),
    ("litellm", "postgres", "keys, spend"),
    ("litellm", "swarm-router", "local models"),
    ("open-webui", "qdrant", "RAG"),
    ("gpt-researcher", "qdrant", "RAG"),
    ("grafana", "prometheus", "queries"),
    ("grafana", "loki", "logs"),
    ("prometheus", "alertmanager", "alerts"),
)
UI_KINDS = ("open-webui", "sillytavern", "gpt-researcher")


def _id(name: str) -> str:
    return name.replace("-", "_")


def render_mermaid(spec: SwarmSpec) -> str:
    lines = ["flowchart LR", '  users(["people and API clients"])']
    by_kind: dict[str, list[str]] = {}
    for name in spec.services:
        by_kind.setdefault(spec.service_kind(name), []).append(name)
    for node_name, node in spec.nodes.items():
        gpus = ", ".join(f"{gpu.model} {gpu.vram_gb:g} GB" for gpu in node.gpus)
        title = f"{node_name} · {node.role} · {node.arch} · {node.tailscale_ip}" + (f" · {gpus}" if gpus else "")
        lines.append(f'  subgraph {_id(node_name)}["{title}"]')
        for name, service in spec.services.items():
            if service.node == node_name:
                port = f" :{service.port}" if service.port else " (private)"
                adopted = " (adopted)" if service.adopt else ""
                lines.append(f'    {_id(name)}["{name}{port}{adopted}"]')
        for name, deployment in spec.inference.items():
            if deployment.node == node_name:
                lines.append(f'    {_id(name)}[["vLLM {name}: {deployment.model} :{deployment.port}"]]')
        if node.gpus:
            lines.append(f'    {_id(node_name)}_autotuner("swarm-autotuner :{spec.agents.autotuner_port}")')
        lines.append("  end")
    if spec.providers:
        lines.append('  subgraph external["external providers"]')
        lines.extend(f'    {_id(name)}_api["{name}"]' for name in spec.providers)
        lines.append("  end")
    for kind in UI_KINDS:
        lines.extend(f"  users --> {_id(name)}" for name in by_kind.get(kind, []))
    lines.extend(f"  users -->|API key| {_id(name)}" for name in by_kind.get("litellm", []))
    for client, server, label in FLOWS:
        for source in by_kind.get(client, []):
            lines.extend(f"  {_id(source)} -->|{label}| {_id(target)}" for target in by_kind.get(server, []))
    for router in by_kind.get("swarm-router", []):
        lines.extend(f"  {_id(router)} --> {_id(name)}" for name in spec.inference)
        for node_name in spec.gpu_nodes():
            lines.append(f"  {_id(node_name)}_autotuner -.->|concurrency cap| {_id(router)}")
    for gateway in by_kind.get("litellm", []):
        lines.extend(f"  {_id(gateway)} -.->|fallback| {_id(name)}_api" for name in spec.providers)
    return "\n".join(lines) + "\n"
