"""The real Pulumi program under the SDK's mock engine, checked node by node."""

from __future__ import annotations

import pytest

from swarm.offline.engine import run_program
from swarm.offline.report import group_by_node
from swarm.stack_config import StackConfig


def _by_type(resources, type_token):
    return {resource.name: resource for resource in resources if resource.type == type_token}


@pytest.mark.parametrize(("node", "host"), [
    ("oracle", "ssh://ubuntu@100.96.197.84"),
    ("starlord", "ssh://starlord@100.72.73.3"),
    ("thanos", "ssh://thanos@100.122.12.54"),
])
def test_each_node_gets_a_docker_provider_over_tailscale_and_a_private_network(prod_run, node, host) -> None:
    groups = group_by_node(prod_run.resources)
    members = groups[node]
    providers = _by_type(members, "pulumi:providers:docker")
    assert providers[f"{node}-docker"].inputs["host"] == host
    network = _by_type(members, "docker:index/network:Network")[f"{node}-network"]
    assert network.inputs["driver"] == "bridge"
    assert network.provider == providers[f"{node}-docker"].urn
    assert {"label": "ai-swarm.node", "value": node} in network.inputs["labels"]


def test_every_resource_belongs_to_a_component(prod_run) -> None:
    custom = [r for r in prod_run.resources if r.custom]
    assert custom
    urns = {r.urn for r in prod_run.resources}
    assert all(r.parent in urns for r in custom)


def test_program_runs_again_in_the_same_process(prod_config: StackConfig, prod_run) -> None:
    again = run_program(prod_config.values, prod_config.secure_keys, "prod")
    assert [r.urn for r in again.resources] == [r.urn for r in prod_run.resources]


def test_an_added_node_is_a_config_change(prod_config: StackConfig) -> None:
    values = dict(prod_config.values)
    nodes = dict(values["ai-swarm:nodes"])
    nodes["groot"] = {**nodes["thanos"], "tailscale_ip": "100.100.1.1", "ssh_user": "groot"}
    values["ai-swarm:nodes"] = nodes
    run = run_program(values, prod_config.secure_keys, "prod")
    groups = group_by_node(run.resources)
    assert _by_type(groups["groot"], "pulumi:providers:docker")["groot-docker"].inputs["host"] == \
        "ssh://groot@100.100.1.1"
