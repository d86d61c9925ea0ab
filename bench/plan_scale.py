"""Offline-plan wall time for prod and for synthetic stacks of 10, 30 and 100 nodes.

The synthetic stacks repeat prod's three-node pattern (gateway + two GPU nodes with the same
services and vLLM deployments), so the service mix per node stays the same as the swarm grows.

    .venv/bin/python bench/plan_scale.py            # goals: prod < 3 s; 100 nodes < 20 s, ~linear
"""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from swarm.offline.offline import offline_plan  # noqa: E402
from swarm.stack_config import StackConfig, read_stack_file  # noqa: E402


def synthetic(prod: StackConfig, nodes: int) -> StackConfig:
    """`nodes` nodes made of copies of prod's node trio (a remainder reuses its first members)."""
    base = prod.values
    prod_nodes = list(base["ai-swarm:nodes"].items())
    values: dict[str, Any] = {key: copy.deepcopy(value) for key, value in base.items()}
    values["ai-swarm:nodes"], values["ai-swarm:inference"], values["ai-swarm:services"] = {}, {}, {}
    for index in range(nodes):
        group, member = divmod(index, len(prod_nodes))
        name, node = prod_nodes[member]
        new_name = f"{name}-{group}"
        values["ai-swarm:nodes"][new_name] = {**copy.deepcopy(node),
                                              "tailscale_ip": f"100.{64 + index // 250}.{index % 250}.1"}
        for deployment_name, deployment in base["ai-swarm:inference"].items():
            if deployment["node"] == name:
                values["ai-swarm:inference"][f"{deployment_name}-{group}"] = {**deployment, "node": new_name}
        for service_name, service in base["ai-swarm:services"].items():
            if service["node"] == name:
                values["ai-swarm:services"][f"{service_name}-{group}"] = {
                    **service, "node": new_name, "kind": service.get("kind", service_name)}
    return StackConfig(values, prod.secure_keys, f"synthetic-{nodes}")


def timed_plan(config: StackConfig, label: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    result = offline_plan(config, label)
    elapsed = time.perf_counter() - started
    if result.issues:
        raise SystemExit(f"{label}: invalid synthetic stack: {result.issues[:3]}")
    return elapsed, len(result.resources), result.exit_code


def main() -> None:
    prod = read_stack_file(REPO / "Pulumi.prod.yaml")
    started = time.perf_counter()
    cli = subprocess.run([sys.executable, "-m", "swarm", "plan", "--stack", "prod"], cwd=REPO,
                         capture_output=True, text=True, timeout=300, check=False)
    cli_seconds = time.perf_counter() - started
    timed_plan(prod, "warm-up")  # imports and first-run caches are not the plan's cost
    rows = [("prod", len(prod.values["ai-swarm:nodes"]), *timed_plan(prod, "prod"))]
    for nodes in (10, 30, 100):
        rows.append((f"synthetic-{nodes}", nodes, *timed_plan(synthetic(prod, nodes), f"synthetic-{nodes}")))

    print(f"`python -m swarm plan --stack prod` end to end (fresh process, imports included): "
          f"{cli_seconds:.2f} s (exit {cli.returncode}); goal < 3 s")
    print()
    print(f"{'stack':<14} {'nodes':>5} {'resources':>9} {'seconds':>8} {'ms/node':>8} {'growth':>22}")
    previous: tuple[int, float] | None = None
    for label, nodes, seconds, resources, _ in rows:
        growth = ""
        if previous is not None:
            node_ratio, time_ratio = nodes / previous[0], seconds / previous[1]
            growth = f"x{time_ratio:.2f} time / x{node_ratio:.2f} nodes"
        print(f"{label:<14} {nodes:>5} {resources:>9} {seconds:>8.3f} {1000 * seconds / nodes:>8.1f} {growth:>22}")
        previous = (nodes, seconds)
    hundred = rows[-1][2]
    print()
    print(f"goal: 100 nodes < 20 s -> {hundred:.2f} s ({'met' if hundred < 20 else 'MISSED'}); "
          f"per-node cost 10 -> 100 nodes: {1000 * rows[1][2] / 10:.1f} -> {1000 * hundred / 100:.1f} ms")


if __name__ == "__main__":
    main()
