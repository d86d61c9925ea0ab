"""Human and JSON views of a `PlanResult`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from swarm.capacity import GpuCapacity, capacity_rows
from swarm.kinds import LABEL_KIND, LABEL_NODE, TYPE_NODE, TYPE_OCI_NODE
from swarm.offline.engine import CapturedResource
from swarm.offline.offline import PlanResult
from swarm.policy_config import exception_reason

SWARM_WIDE = "(swarm-wide)"
# Components named after the node they build or reach.
NODE_COMPONENTS = frozenset({TYPE_NODE, TYPE_OCI_NODE})


def node_of(resource: CapturedResource, by_urn: dict[str, CapturedResource]) -> str:
    """The node a resource lives on: its NodeRuntime ancestor, its provider's node, or a label."""
    current: CapturedResource | None = resource
    while current is not None:
        if current.type in NODE_COMPONENTS:
            return current.name
        if current.provider and current.provider in by_urn:
            return node_of(by_urn[current.provider], by_urn)
        current = by_urn.get(current.parent or "")
    for label in resource.inputs.get("labels") or []:
        if isinstance(label, dict) and label.get("label") == LABEL_NODE:
            return str(label.get("value"))
    return SWARM_WIDE


def group_by_node(resources: Iterable[CapturedResource]) -> dict[str, list[CapturedResource]]:
    resources = list(resources)
    by_urn = {resource.urn: resource for resource in resources}
    groups: dict[str, list[CapturedResource]] = defaultdict(list)
    for resource in resources:
        groups[node_of(resource, by_urn)].append(resource)
    return dict(groups)


def _verdict_dict(verdict: Any) -> dict[str, Any]:
    return {"policy": verdict.policy, "urn": verdict.urn, "level": verdict.level, "message": verdict.message}


def plan_json(result: PlanResult) -> dict[str, Any]:
    groups = {resource.urn: node for node, members in group_by_node(result.resources).items()
              for resource in members}
    return {
        "stack": result.stack,
        "exit_code": result.exit_code,
        "errors": [{"path": issue.path, "message": issue.message} for issue in result.issues],
        "notes": result.notes,
        "resources": [
            {"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "node": groups[r.urn],
             "provider": r.provider, "protect": r.protect, "inputs": r.redacted_inputs,
             "secret_inputs": list(r.secret_paths)}
            for r in result.resources
        ],
        "violations": [_verdict_dict(v) for v in result.violations],
        "exceptions": [_verdict_dict(v) for v in result.exceptions],
        "capacity": capacity_rows(result.capacity),
        "outputs": result.outputs,
    }


def plan_text(result: PlanResult) -> str:
    lines = [f"ai-swarm offline plan: stack {result.stack!r} (Pulumi mock engine; no CLI, cloud or credentials)"]
    if result.issues:
        lines.append("")
        lines.append(f"INVALID configuration ({len(result.issues)} problem(s)); nothing was registered:")
        lines.extend(f"  {issue.path}: {issue.message}" for issue in result.issues)
        lines.append("")
        lines.append("exit 2: fix the key(s) above.")
        return "\n".join(lines)
    lines.extend(_resource_lines(result))
    lines.extend(_capacity_lines(result.capacity))
    lines.extend(_memory_lines(result))
    lines.extend(_policy_lines(result))
    if result.notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  {note}" for note in result.notes)
    lines.append("")
    verdict = {0: "OK: no mandatory policy violation", 1: "BLOCKED: mandatory policy violation(s)"}
    lines.append(f"exit {result.exit_code}: {verdict[result.exit_code]}")
    return "\n".join(lines)


def _resource_lines(result: PlanResult) -> list[str]:
    spec = result.spec
    groups = group_by_node(result.resources)
    order = [*(spec.nodes if spec else []), SWARM_WIDE]
    lines = ["", f"Resources ({len(result.resources)}), grouped by node:"]
    for node in order:
        members = groups.get(node, [])
        if not members and node == SWARM_WIDE:
            continue
        if spec and node in spec.nodes:
            info = spec.nodes[node]
            gpus = ", ".join(f"{gpu.model} {gpu.vram_gb:g} GiB" for gpu in info.gpus) or "no GPU"
            lines.append(f"  node {node} ({info.role}, {info.arch}, {info.tailscale_ip}, {gpus}): "
                         f"{len(members)} resources")
        else:
            lines.append(f"  {node}: {len(members)} resources")
        width = max((len(r.type) for r in members), default=0)
        lines.extend(f"    + {r.type:<{width}}  {r.name}" for r in members)
    return lines


def _capacity_lines(capacity: list[GpuCapacity]) -> list[str]:
    lines = ["", "VRAM capacity (GiB; share = gpu_memory_utilization x VRAM):"]
    header = (f"  {'gpu':<15} {'instance':<20} {'util':>5} {'share':>7} {'weights':>8} {'reserve':>8} "
              f"{'KV':>7} {'KV tokens':>10} {'max_len':>8} {'full seqs':>9}")
    lines.append(header)
    for gpu in capacity:
        for i in gpu.instances:
            lines.append(
                f"  {gpu.label:<15} {i.deployment:<20} {i.utilization:>5.2f} {i.share_gib:>7.2f} "
                f"{i.weights_gib:>8.2f} {i.reserve_gib:>8.2f} {i.kv_gib:>7.2f} {i.kv_tokens:>10} "
                f"{i.max_model_len:>8} {i.full_sequences:>9.2f}"
            )
        lines.append(f"  {gpu.label:<15} {gpu.gpu_model}, total {gpu.total_gib:.2f}: utilisation "
                     f"{gpu.utilization_sum:.2f} of ceiling {gpu.ceiling:.2f}, headroom {gpu.headroom_gib:.2f}")
    return lines


def _memory_lines(result: PlanResult) -> list[str]:
    if result.plan is None:
        return []
    lines = ["", "RAM budget per node (MB; container memory limits + OS reserve):"]
    for budget in result.plan.memory:
        shares = ", ".join(f"{name} {mb}" for name, mb in sorted(budget.shares.items(), key=lambda kv: -kv[1]))
        lines.append(f"  {budget.node:<15} {budget.used_mb:>6} of {budget.ram_mb:>6} "
                     f"(OS reserve {budget.reserve_mb}; {shares or 'no containers'})")
    return lines


def _kind_by_urn(result: PlanResult) -> dict[str, str]:
    kinds = {}
    for resource in result.resources:
        for label in resource.inputs.get("labels") or []:
            if isinstance(label, dict) and label.get("label") == LABEL_KIND:
                kinds[resource.urn] = str(label.get("value"))
    return kinds


def _short(urn: str | None) -> str:
    return urn.rsplit("::", 1)[-1] if urn else "(stack)"


def _policy_lines(result: PlanResult) -> list[str]:
    mandatory = [v for v in result.violations if v.level == "mandatory"]
    advisory = [v for v in result.violations if v.level != "mandatory"]
    lines = ["", f"Policies: {len(mandatory)} mandatory, {len(advisory)} advisory, "
                 f"{len(result.exceptions)} allow-listed exception(s)"]
    for verdict in [*mandatory, *advisory]:
        lines.append(f"  [{verdict.level}] {verdict.policy} on {_short(verdict.urn)}: {verdict.message}")
    kinds = _kind_by_urn(result)
    for verdict in result.exceptions:
        reason = exception_reason(verdict.policy, kinds.get(verdict.urn or "")) or "allow-listed in the policy config"
        lines.append(f"  [allowed] {verdict.policy} on {_short(verdict.urn)}: {reason}")
    return lines
