"""The policy pack over the real prod plan: clean as planned, and every insecure variant caught."""

from __future__ import annotations

import dataclasses

import pytest

from policies import POLICIES
from policies._props import kind_of
from policies.local_runner import ResourceSnapshot
from swarm.offline.offline import EXIT_CLEAN, EXIT_VIOLATION, PlanResult, check_policies, offline_plan, snapshot_of
from swarm.policy_config import policy_config
from swarm.stack_config import StackConfig
from tests.policies.mutations import MUTATIONS, check_mutation

CONTAINER = "docker:index/container:Container"


@pytest.fixture(scope="module")
def plan(prod_config: StackConfig) -> PlanResult:
    return offline_plan(prod_config, "prod")


@pytest.fixture(scope="module")
def snapshots(plan: PlanResult) -> list[ResourceSnapshot]:
    return [snapshot_of(r) for r in plan.resources]


def test_prod_has_no_mandatory_violation(plan: PlanResult) -> None:
    assert plan.exit_code == EXIT_CLEAN
    assert [v for v in plan.verdicts if v.level == "mandatory"] == []
    assert any(r.type == CONTAINER for r in plan.resources)


def test_the_built_runtime_image_needs_no_digest_exception(plan: PlanResult) -> None:
    assert not [v for v in plan.exceptions if "swarm-router" in (v.urn or "") or "autotuner" in (v.urn or "")]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_every_prod_container_mutated_is_caught(mutation, plan: PlanResult,
                                                snapshots: list[ResourceSnapshot]) -> None:
    assert plan.plan is not None
    config = policy_config(plan.plan)
    containers = [s for s in snapshots if s.type == CONTAINER]
    assert len(containers) >= 3
    # Only the policy that must catch it: the whole pack over the whole plan, once per container
    # and mutation, took 40 s a mutation (tests/policies runs the whole pack on each mutation).
    expected = [p for p in POLICIES if p.name == mutation[2]]
    assert len(expected) == 1, f"no policy named {mutation[2]!r}"
    checked = 0
    for container in containers:
        kind = kind_of(container.props)
        if kind in config.get(mutation[2], {}).get("allow_kinds", []):
            continue  # a reviewed exception with a written reason (swarm/policy_config.py)
        others = [s for s in snapshots if s.urn != container.urn]
        caught, verdicts = check_mutation(container, mutation, config, others, expected)
        assert caught, f"{mutation[0]} on {container.name} not caught as {mutation[2]}: {verdicts}"
        checked += 1
    assert checked >= 3


def _with(snapshots: list[ResourceSnapshot], name: str, **changes) -> list[ResourceSnapshot]:
    out = []
    for snapshot in snapshots:
        if snapshot.name == name:
            snapshot = dataclasses.replace(snapshot, props={**snapshot.props, **changes})
        out.append(snapshot)
    return out


def test_gpu_request_on_a_gpu_less_node_is_refused(plan: PlanResult, snapshots) -> None:
    assert plan.spec is not None
    gpu = [{"driver": "nvidia", "deviceIds": ["0"], "capabilities": ["gpu"]}]
    assert plan.plan is not None
    verdicts = check_policies(plan.plan, [])  # an empty stack is clean
    assert verdicts == []
    bad = _with(snapshots, "swarm-router-container", deviceRequests=gpu)
    from policies.local_runner import run_policies

    verdicts = run_policies(bad, policy_config(plan.plan))
    assert any(v.policy == "gpu-device-inventory" and v.level == "mandatory" and "swarm-router" in v.urn
               for v in verdicts)
    wrong_index = _with(snapshots, "swarm-autotuner-starlord-container",
                        deviceRequests=[{"driver": "nvidia", "deviceIds": ["1"], "capabilities": ["utility"]}])
    verdicts = run_policies(wrong_index, policy_config(plan.plan))
    assert any(v.policy == "gpu-device-inventory" and "swarm-autotuner-starlord" in v.urn for v in verdicts)


def test_two_containers_on_one_host_port_are_refused(plan: PlanResult, snapshots) -> None:
    assert plan.spec is not None
    router = next(s for s in snapshots if s.name == "swarm-router-container")
    twin = dataclasses.replace(router, urn=router.urn + "-twin", name="swarm-router-twin")
    from policies.local_runner import run_policies

    verdicts = run_policies([*snapshots, twin], policy_config(plan.plan))
    assert any(v.policy == "unique-host-ports" and v.level == "mandatory" for v in verdicts)


def test_mandatory_violation_makes_the_plan_exit_1(plan: PlanResult, snapshots) -> None:
    result = dataclasses.replace(plan, verdicts=[*plan.verdicts, *[
        v for v in check_mutation(next(s for s in snapshots if s.type == CONTAINER), MUTATIONS[0],
                                  policy_config(plan.plan), [])[1] if v.level == "mandatory"]])
    assert result.exit_code == EXIT_VIOLATION
