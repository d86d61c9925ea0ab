"""Always Free limits and node settings are checked at config time: exit 2 naming the key."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml

from swarm.errors import SpecError
from swarm.oracle.node import deploy_issues, image_query, ingress_rules
from swarm.stack_config import OFFLINE_SECRET_PLACEHOLDER, build_spec
from tests.conftest import REPO
from tests.oracle.support import COMPARTMENT, SSH_KEY, oracle_oci, plan_of
from tests.swarm.conftest import config_of

OPT_IN = "ai-swarm:nodes.oracle.oci.exceed_always_free"


def _issues(values: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        build_spec(config_of(values))
    return {issue.path: issue.message for issue in caught.value.issues}


@pytest.mark.parametrize(("field", "value", "what"), [
    ("ocpus", 6, "6 A1.Flex OCPUs"),
    ("memory_gb", 32, "32 GB of A1.Flex memory"),
    ("boot_volume_gb", 250, "250 GB of block storage"),
])
def test_beyond_always_free_names_the_key_and_the_opt_in(prod_values, field, value, what) -> None:
    oracle_oci(prod_values)[field] = value
    issues = _issues(prod_values)
    message = issues[f"ai-swarm:nodes.oracle.oci.{field}"]
    assert what in message and OPT_IN in message


def test_the_opt_in_allows_paid_sizes(prod_values) -> None:
    oracle_oci(prod_values).update(ocpus=6, memory_gb=32, boot_volume_gb=250, exceed_always_free=True)
    spec = build_spec(config_of(prod_values))
    assert spec.nodes["oracle"].oci is not None and spec.nodes["oracle"].oci.ocpus == 6


def test_limits_are_config_and_count_every_oci_node(prod_values) -> None:
    nodes = prod_values["ai-swarm:nodes"]
    nodes["oracle2"] = {**nodes["oracle"], "tailscale_ip": "100.96.197.85", "ram_gb": 4, "cpus": 1,
                        "oci": {"ocpus": 1, "memory_gb": 4, "boot_volume_gb": 50}}
    issues = _issues(prod_values)
    assert "5 A1.Flex OCPUs" in issues["ai-swarm:nodes.oracle.oci.ocpus"]
    assert "250 GB of block storage" in issues["ai-swarm:nodes.oracle2.oci.boot_volume_gb"]
    oracle_oci(prod_values).update(ocpus=3, memory_gb=20, boot_volume_gb=150)
    nodes["oracle"]["ram_gb"], nodes["oracle"]["cpus"] = 20, 3
    assert build_spec(config_of(prod_values))  # 4 OCPU, 24 GB, 200 GB in total: exactly the allowance
    nodes["oracle2"]["oci"]["always_free"] = {"a1_ocpus": 3}
    assert "over the Always Free limit 3" in _issues(prod_values)["ai-swarm:nodes.oracle2.oci.ocpus"]


def test_node_ram_cannot_exceed_the_instance(prod_values) -> None:
    prod_values["ai-swarm:nodes"]["oracle"]["ram_gb"] = 30
    assert "memory_gb" in _issues(prod_values)["ai-swarm:nodes.oracle.ram_gb"]


def test_a_misspelled_oci_key_is_an_error(prod_values) -> None:
    oracle_oci(prod_values)["alow_direct_udp"] = True
    assert "unknown key" in _issues(prod_values)["ai-swarm:nodes.oracle.oci.alow_direct_udp"]


def test_swarm_plan_exits_2_naming_the_key(tmp_path, prod_values) -> None:
    oracle_oci(prod_values)["ocpus"] = 8
    stack = tmp_path / "Pulumi.big.yaml"
    secure = {key: {"secure": "v1:AAAA"} for key, value in prod_values.items()
              if value == OFFLINE_SECRET_PLACEHOLDER}  # secrets as a stack file holds them
    stack.write_text(yaml.safe_dump({"config": {**prod_values, **secure}}))
    result = subprocess.run([sys.executable, "-m", "swarm", "plan", "--config", str(stack)], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "ai-swarm:nodes.oracle.oci.ocpus" in output and OPT_IN in output


def test_deploy_needs_compartment_and_ssh_key(prod_values) -> None:
    plan = plan_of(prod_values)
    assert {issue.path for issue in deploy_issues(plan.spec)} == {
        "ai-swarm:nodes.oracle.oci.compartment_id", "ai-swarm:nodes.oracle.oci.ssh_public_key"}
    oracle_oci(prod_values).update(compartment_id=COMPARTMENT, ssh_public_key=SSH_KEY)
    assert deploy_issues(plan_of(prod_values).spec) == []


def test_the_image_is_a_query_never_an_ocid(prod_plan, prod_values) -> None:
    oci = prod_plan.spec.nodes["oracle"].oci
    assert oci is not None
    query = image_query(oci)
    assert (query.operating_system, query.operating_system_version, query.shape) == \
        ("Canonical Ubuntu", "24.04", "VM.Standard.A1.Flex")
    assert query.display_name_regex == r"^Canonical-Ubuntu-24\.04-aarch64" and query.override_id is None
    oracle_oci(prod_values)["image"] = {"version": "22.04", "override_id": "ocid1.image.oc1.eu-frankfurt-1.aaaa"}
    pinned = plan_of(prod_values).spec.nodes["oracle"].oci
    assert pinned is not None and image_query(pinned).override_id == "ocid1.image.oc1.eu-frankfurt-1.aaaa"


def test_no_world_ingress_unless_the_udp_flag(prod_plan, prod_values) -> None:
    oci = prod_plan.spec.nodes["oracle"].oci
    assert oci is not None
    assert [(r.protocol, r.source, r.port, r.icmp_type, r.icmp_code) for r in ingress_rules(oci)] == [
        ("1", "0.0.0.0/0", None, 3, 4),  # path MTU discovery: routers on the internet path send it
        ("1", oci.vcn_cidr, None, 3, None)]
    oracle_oci(prod_values)["allow_direct_udp"] = True
    flagged = plan_of(prod_values).spec.nodes["oracle"].oci
    assert flagged is not None
    world = [r for r in ingress_rules(flagged) if r.source == "0.0.0.0/0" and r.protocol != "1"]
    assert [(r.protocol, r.port) for r in world] == [("17", 41641)]
