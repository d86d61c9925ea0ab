"""The SwarmPlan: one pure object everything downstream reads."""

from __future__ import annotations

import dataclasses
import json

import pytest

from swarm.errors import SpecError
from swarm.offline.engine import REPO_ROOT, CapturedRun
from swarm.plan import PulledImage, SwarmPlan
from swarm.plan.builder import _arch_issues, build_plan, node_memory
from swarm.services import REGISTRY, PlanContext
from swarm.stack_config import StackConfig, build_spec


def test_the_plan_is_pure_and_repeatable(prod_config: StackConfig) -> None:
    spec = build_spec(prod_config)
    assert build_plan(spec) == build_plan(spec)


def test_ram_budget_lists_each_share_and_the_reserve(prod_plan: SwarmPlan) -> None:
    oracle = next(b for b in prod_plan.memory if b.node == "oracle")
    assert oracle.ram_mb == 24 * 1024
    assert oracle.reserve_mb == round(prod_plan.spec.capacity.os_reserve_gb * 1024)
    assert oracle.shares == {s.name: s.memory_mb for s in prod_plan.on_node("oracle")}
    assert oracle.used_mb == oracle.reserve_mb + sum(oracle.shares.values()) and oracle.fits


def test_an_over_budget_node_names_every_service_share(prod_config: StackConfig) -> None:
    values = json.loads(json.dumps(dict(prod_config.values)))
    values["ai-swarm:nodes"]["oracle"]["ram_gb"] = 2
    spec = build_spec(StackConfig(values, prod_config.secure_keys, "test"))
    with pytest.raises(SpecError) as raised:
        build_plan(spec)
    message = str(raised.value)
    assert "ai-swarm:nodes.oracle.ram_gb" in message
    for service in REGISTRY["swarm-router"].build(PlanContext(spec)):  # the router's share is listed
        assert f"{service.name} {service.memory_mb} MB" in message
    assert len(list(node_memory(spec, ()))) == len(spec.nodes)


def test_an_image_without_the_nodes_architecture_is_refused(prod_plan: SwarmPlan) -> None:
    router = prod_plan.service("swarm-router")
    amd64_only = PulledImage("example/amd64-only", "1.0", "sha256:" + "a" * 64, frozenset({"amd64"}))
    issues = list(_arch_issues(prod_plan.spec, (dataclasses.replace(router, image=amd64_only),)))
    assert len(issues) == 1
    assert issues[0].path == router.origin
    assert "'swarm-router' on node 'oracle' (arm64)" in issues[0].message
    assert "example/amd64-only:1.0@sha256:" in issues[0].message


def test_no_input_holds_an_absolute_path_of_this_checkout(prod_run: CapturedRun) -> None:
    # A preview from another checkout (CI, a laptop) must send the same inputs.
    text = json.dumps([r.inputs for r in prod_run.resources], default=str)
    assert str(REPO_ROOT) not in text


def test_flows_come_from_the_services_that_open_them(prod_plan: SwarmPlan) -> None:
    assert prod_plan.flows == tuple(f for s in prod_plan.services for f in s.flows)
    router_flows = [f for f in prod_plan.flows if f.source == "swarm-router"]
    assert {f.target for f in router_flows} == set(prod_plan.spec.inference)
    assert all(f.cross_node for f in router_flows)  # the router is on oracle, vLLM on the GPU boxes
