"""The tailnet policy as data: generated from the plan's flows, default deny, tests that agree.

`allows` is this project's evaluator of the generated `acls`; each test here also checks the
policy's own `tests` section says the same, since that is what Tailscale runs on upload.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from typing import Any

import json5
import pytest

from swarm.errors import SpecError
from swarm.oracle.acl import ACL_PATH, allows, build_acl, check_acl, parse_policy
from swarm.plan import Flow
from swarm.plan.types import Healthcheck, PortMapping, PulledImage, ServicePlan, SwarmPlan
from tests.conftest import REPO
from tests.oracle.support import plan_of

ORACLE, STARLORD, THANOS = "tag:ai-swarm-oracle", "tag:ai-swarm-starlord", "tag:ai-swarm-thanos"
RUNNER = "tag:ai-swarm-runner"
OPERATOR = "ops@example.com"


def _tested(document: dict[str, Any], src: str, target: str) -> str | None:
    """'accept' / 'deny' when the policy's tests cover src -> target, else None."""
    for case in document["tests"]:
        if case["src"] == src:
            for verdict in ("accept", "deny"):
                if target in case.get(verdict, []):
                    return verdict
    return None


def _ui(plan: SwarmPlan, kind: str, node: str, port: int) -> SwarmPlan:
    """The plan plus a user-facing service (the UI kinds' modules are other issues' work)."""
    image = PulledImage("example/ui", "1", "sha256:" + "0" * 64, frozenset({"amd64", "arm64"}))
    ui = ServicePlan(name=kind, kind=kind, node=node, origin=f"ai-swarm:services.{kind}", image=image,
                     command=(), healthcheck=Healthcheck(test=("true",)), memory_mb=256, cpus=0.5,
                     ports=(PortMapping(container=8080, host=port, host_ip=plan.spec.nodes[node].tailscale_ip),))
    return replace(plan, services=(*plan.services, ui))


def test_the_rendered_file_is_hujson_and_the_same_policy(prod_plan) -> None:
    text = prod_plan.extra_files[ACL_PATH]
    assert text.startswith("//") and ",\n}" in text  # comments and trailing commas: HuJSON, not JSON
    assert json5.loads(text) == parse_policy(text) == build_acl(prod_plan)


def test_default_deny_and_every_tag_owned(prod_plan) -> None:
    document = build_acl(prod_plan)
    text = str(document["acls"])
    assert "'*'" not in text and "*:" not in text
    used = set(re.findall(r"tag:[a-z0-9-]+", str(document["acls"]) + str(document["tests"])))
    assert used == set(document["tagOwners"]) == {ORACLE, STARLORD, THANOS, RUNNER}
    assert all(owners == ["autogroup:admin"] for owners in document["tagOwners"].values())


def test_every_cross_node_flow_is_allowed_and_tested(prod_plan) -> None:
    document = build_acl(prod_plan)
    node_tag = {ORACLE.rsplit("-", 1)[-1]: ORACLE, STARLORD.rsplit("-", 1)[-1]: STARLORD,
                THANOS.rsplit("-", 1)[-1]: THANOS}
    tag = {service.name: node_tag[service.node] for service in prod_plan.services}
    crossing = [f for f in prod_plan.flows if f.target in tag and tag[f.source] != tag[f.target]]
    router_to_vllm = [f for f in crossing if f.source == "swarm-router"]
    assert len(router_to_vllm) == 3 and len(crossing) > len(router_to_vllm)
    for flow in crossing:
        assert allows(document, tag[flow.source], tag[flow.target], flow.port), flow
        assert _tested(document, tag[flow.source], f"{tag[flow.target]}:{flow.port}") == "accept"
        assert _tested(document, RUNNER, f"{tag[flow.target]}:{flow.port}") == "deny"


def test_same_node_flows_do_not_open_the_tailnet(prod_plan) -> None:
    document = build_acl(prod_plan)
    # autotuner -> vLLM metrics stays on starlord / thanos: no rule from a node to itself
    assert all(rule["src"][0] != rule["dst"][0].rpartition(":")[0] for rule in document["acls"])


@pytest.mark.parametrize(("src", "dst", "port", "why"), [
    (THANOS, STARLORD, 8000, "raw vLLM from anything but the router"),
    (STARLORD, THANOS, 8002, "raw vLLM from anything but the router"),
    (RUNNER, STARLORD, 8001, "raw vLLM from the runner"),
    (STARLORD, ORACLE, 5432, "PostgreSQL"),
    (THANOS, ORACLE, 6379, "Redis"),
    (RUNNER, ORACLE, 5432, "PostgreSQL from the runner"),
    (STARLORD, ORACLE, 22, "SSH from a node"),
    (ORACLE, THANOS, 22, "SSH from a node"),
    (STARLORD, ORACLE, 4000, "a port no flow names"),
])
def test_sensitive_and_unlisted_ports_are_denied(prod_plan, src, dst, port, why) -> None:
    document = build_acl(prod_plan)
    assert not allows(document, src, dst, port), why
    if port in (22, 5432, 6379, 8000, 8001, 8002):
        assert _tested(document, src, f"{dst}:{port}") == "deny", why


def test_the_runner_reaches_every_nodes_ssh_and_nothing_else(prod_plan) -> None:
    document = build_acl(prod_plan)
    for node in (ORACLE, STARLORD, THANOS):
        assert allows(document, RUNNER, node, 22)
        assert _tested(document, RUNNER, f"{node}:22") == "accept"
    runner_rules = [rule for rule in document["acls"] if rule["src"] == [RUNNER]]
    assert {d for rule in runner_rules for d in rule["dst"]} == {f"{n}:22" for n in (ORACLE, STARLORD, THANOS)}


def test_operators_reach_the_uis_and_not_the_backends(prod_values) -> None:
    plan = plan_of(prod_values, lambda v: v.update({"ai-swarm:tailnet": {"operators": [OPERATOR]}}))
    plan = _ui(plan, "open-webui", "oracle", 3000)
    document = build_acl(plan)
    assert document["groups"] == {"group:ai-swarm-operators": [OPERATOR]}
    assert allows(document, OPERATOR, ORACLE, 3000)
    assert _tested(document, OPERATOR, f"{ORACLE}:3000") == "accept"
    for dst, port in ((STARLORD, 8000), (ORACLE, 5432), (ORACLE, 22), (ORACLE, 9000)):
        assert not allows(document, OPERATOR, dst, port)
        assert _tested(document, OPERATOR, f"{dst}:{port}") == "deny"


def test_without_operators_the_uis_are_for_tailnet_admins(prod_plan) -> None:
    document = build_acl(_ui(prod_plan, "grafana", "oracle", 3001))
    admin_rules = [rule for rule in document["acls"] if rule["src"] == ["autogroup:admin"]]
    assert admin_rules and all(rule["action"] == "accept" and rule["proto"] == "tcp" for rule in admin_rules)
    assert f"{ORACLE}:3001" in {dst for rule in admin_rules for dst in rule["dst"]}
    assert allows(document, "autogroup:admin", ORACLE, 3001)
    assert "groups" not in document


def test_a_changed_flow_set_changes_the_rules_and_their_tests_together(prod_plan) -> None:
    before = build_acl(prod_plan)
    new_flow = Flow(source="swarm-autotuner-thanos", target="starlord-primary", port=8000, purpose="probe",
                    cross_node=True)
    autotuner = prod_plan.service("swarm-autotuner-thanos")
    added = replace(autotuner, flows=(*autotuner.flows, new_flow))
    grown = replace(prod_plan, services=tuple(added if s is autotuner else s for s in prod_plan.services),
                    flows=(*prod_plan.flows, new_flow))
    after = build_acl(grown)
    assert not allows(before, THANOS, STARLORD, 8000) and _tested(before, THANOS, f"{STARLORD}:8000") == "deny"
    assert allows(after, THANOS, STARLORD, 8000) and _tested(after, THANOS, f"{STARLORD}:8000") == "accept"
    shrunk = replace(prod_plan, flows=tuple(f for f in prod_plan.flows if f.target != "thanos-backup"))
    without = build_acl(shrunk)
    assert not allows(without, ORACLE, THANOS, 8002)
    assert _tested(without, ORACLE, f"{THANOS}:8002") == "deny"


@pytest.mark.parametrize(("mutation", "message"), [
    (lambda d: d["acls"].append({"action": "accept", "src": ["*"], "dst": ["*:*"]}), "allow-all"),
    (lambda d: d["acls"].append({"action": "accept", "src": [ORACLE], "dst": ["*:22"]}), "allow-all"),
    (lambda d: d["acls"].append({"action": "accept", "src": ["tag:stranger"], "dst": [f"{ORACLE}:22"]}),
     "tag:stranger is used but has no tagOwners"),
    (lambda d: d["tagOwners"].update({RUNNER: []}), "empty tagOwners"),
    (lambda d: d["tests"][0].update(deny=[f"{STARLORD}:8000"]), "expects deny"),
    (lambda d: d.update(tests=[{k: v for k, v in t.items() if k != "deny"} for t in d["tests"]]), "no deny test"),
])
def test_a_bad_policy_is_refused_naming_the_config_key(prod_plan, mutation, message) -> None:
    document = build_acl(prod_plan)
    mutation(document)
    with pytest.raises(SpecError) as caught:
        check_acl(document)
    assert caught.value.issues[0].path == "ai-swarm:tailnet"
    assert any(message in issue.message for issue in caught.value.issues)


def test_an_unowned_key_tag_is_refused(prod_plan) -> None:
    with pytest.raises(SpecError, match="tag:ai-swarm-extra is used but has no tagOwners"):
        check_acl(build_acl(prod_plan), key_tags=["tag:ai-swarm-extra"])


def test_swarm_render_writes_the_policy_and_the_user_data(tmp_path, prod_plan) -> None:
    result = subprocess.run([sys.executable, "-m", "swarm", "render", "--stack", "prod", "--out", str(tmp_path)],
                            cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stderr
    for path in (ACL_PATH, "cloud-init/oracle.yaml"):
        assert (tmp_path / path).read_text() == prod_plan.extra_files[path]
