"""The prod program under the mock engine: the OCI network and instance, the tailnet resources,
readiness before the oracle Docker provider, and the policy pack's OCI/Tailscale rules on them."""

from __future__ import annotations

import base64
import dataclasses
import re
from typing import Any

import pytest

from components.readiness import _fill_auth_key
from swarm.errors import SpecError
from swarm.offline.engine import CapturedResource, run_program
from swarm.offline.offline import check_policies
from swarm.oracle.acl import ACL_PATH
from swarm.oracle.cloud_init import AUTH_KEY_PLACEHOLDER, render_path
from swarm.stack_config import build_spec
from tests.conftest import REPO
from tests.oracle.support import COMPARTMENT, SSH_KEY, oracle_oci
from tests.swarm.conftest import config_of

OCI_TYPES = {
    "oci:Core/vcn:Vcn", "oci:Core/internetGateway:InternetGateway", "oci:Core/routeTable:RouteTable",
    "oci:Core/defaultSecurityList:DefaultSecurityList", "oci:Core/securityList:SecurityList",
    "oci:Core/subnet:Subnet", "oci:Core/instance:Instance",
}
SECURITY_TYPES = {"oci:Core/securityList:SecurityList", "oci:Core/defaultSecurityList:DefaultSecurityList"}
WORLD = {"0.0.0.0/0", "::/0"}


def _one(run_resources: list[CapturedResource], type_token: str, name: str | None = None) -> CapturedResource:
    found = [r for r in run_resources if r.type == type_token and (name is None or r.name == name)]
    assert len(found) == 1, (type_token, name, [r.name for r in found])
    return found[0]


def test_every_oci_and_tailscale_resource_is_in_the_prod_plan(prod_run) -> None:
    types = {r.type for r in prod_run.resources}
    assert types >= OCI_TYPES
    assert {r.name for r in prod_run.resources if r.type == "tailscale:index/deviceTags:DeviceTags"} == \
        {"tailnet-starlord-tags", "tailnet-thanos-tags"}  # the home nodes are tagged, not created
    _one(prod_run.resources, "tailscale:index/acl:Acl")
    _one(prod_run.resources, "tailscale:index/tailnetKey:TailnetKey", "tailnet-oracle-key")
    _one(prod_run.resources, "command:remote:Command", "oracle-readiness-ready")


def test_the_instance_is_hardened_protected_and_sized_from_config(prod_run, prod_plan) -> None:
    instance = _one(prod_run.resources, "oci:Core/instance:Instance")
    props = instance.inputs
    assert instance.protect and props["preserveBootVolume"] is True
    assert props["shape"] == "VM.Standard.A1.Flex"
    assert props["shapeConfig"] == {"ocpus": 4.0, "memoryInGbs": 24.0}
    assert props["sourceDetails"]["bootVolumeSizeInGbs"] == "200"
    assert props["instanceOptions"] == {"areLegacyImdsEndpointsDisabled": True}
    assert props["isPvEncryptionInTransitEnabled"] is True
    assert props["agentConfig"]["isMonitoringDisabled"] is False
    # the image comes from the lookup (the offline engine's fake answer), never a constant
    assert props["sourceDetails"]["sourceId"] == "ocid1.image.oc1..offline-ubuntu-24.04-aarch64"
    assert props["availabilityDomain"] == "Offline:EU-AD-1"
    assert "metadata" in instance.secret_paths
    # the auth key exists only at `pulumi up`: in preview the user-data is unknown, never a placeholder
    assert not isinstance(props["metadata"]["user_data"], str)


def test_user_data_is_the_rendered_file_with_the_key_filled_in(prod_plan) -> None:
    template = prod_plan.extra_files[render_path("oracle")]
    key = "tskey-" + "auth-kTEST-0123456789abcdef"
    filled = _fill_auth_key(template)(key)
    assert filled == template.replace(AUTH_KEY_PLACEHOLDER, key) and filled != template


def test_the_instance_receives_the_user_data_base64_encoded(tmp_path) -> None:
    program = tmp_path / "program.py"
    program.write_text(
        "from pathlib import Path\n"
        "from components.oci_node import OciNode, OciNodeArgs\n"
        "from swarm.stack_config import build_spec, read_stack_file\n"
        f"spec = build_spec(read_stack_file(Path({str(REPO / 'Pulumi.prod.yaml')!r})))\n"
        "OciNode('oracle', OciNodeArgs(spec=spec, node='oracle', user_data='#cloud-config\\nhostname: x\\n'))\n")
    run = run_program({}, frozenset(), "prod", program=program)
    instance = _one(run.resources, "oci:Core/instance:Instance")
    assert base64.b64decode(instance.inputs["metadata"]["user_data"]) == b"#cloud-config\nhostname: x\n"


def test_the_network_admits_nothing_from_the_world_but_path_mtu_discovery(prod_run) -> None:
    default = _one(prod_run.resources, "oci:Core/defaultSecurityList:DefaultSecurityList")
    assert default.inputs["ingressSecurityRules"] == []
    vcn = _one(prod_run.resources, "oci:Core/vcn:Vcn")
    assert vcn.urn in default.property_dependencies["manageDefaultResourceId"]
    security_list = _one(prod_run.resources, "oci:Core/securityList:SecurityList")
    subnet = _one(prod_run.resources, "oci:Core/subnet:Subnet")
    assert security_list.urn in subnet.property_dependencies["securityListIds"]
    route = _one(prod_run.resources, "oci:Core/routeTable:RouteTable")
    gateway = _one(prod_run.resources, "oci:Core/internetGateway:InternetGateway")
    assert gateway.urn in route.property_dependencies["routeRules"]
    for resource in (r for r in prod_run.resources if r.type in SECURITY_TYPES):
        world = [rule for rule in resource.inputs["ingressSecurityRules"] if rule["source"] in WORLD]
        assert [(rule["protocol"], rule.get("icmpOptions")) for rule in world] in (
            [], [("1", {"type": 3, "code": 4})])
    assert [rule["source"] for rule in security_list.inputs["ingressSecurityRules"]].count("0.0.0.0/0") == 1


def _ssh_from_world(resources: list[CapturedResource]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for resource in (r for r in resources if r.type in SECURITY_TYPES):
        for rule in resource.inputs.get("ingressSecurityRules") or []:
            if rule["source"] not in WORLD or rule["protocol"] not in ("6", "all"):
                continue
            ports = rule.get("tcpOptions") or {"min": 1, "max": 65535}
            if ports["min"] <= 22 <= ports["max"]:
                found.append((resource.name, rule))
    return found


def test_no_rule_admits_the_world_to_ssh_even_with_direct_udp(prod_config, prod_values) -> None:
    oracle_oci(prod_values)["allow_direct_udp"] = True
    run = run_program(prod_values, prod_config.secure_keys, "prod")
    assert _ssh_from_world(run.resources) == []
    security_list = _one(run.resources, "oci:Core/securityList:SecurityList")
    world = [rule for rule in security_list.inputs["ingressSecurityRules"] if rule["source"] in WORLD]
    assert [(r["protocol"], r.get("udpOptions")) for r in world] == [("1", None),
                                                                     ("17", {"min": 41641.0, "max": 41641.0})]
    # the checker above does find an SSH rule when one exists
    opened = dataclasses.replace(security_list, inputs={**security_list.inputs, "ingressSecurityRules": [
        {"protocol": "6", "source": "0.0.0.0/0", "tcpOptions": {"min": 22, "max": 22}}]})
    assert _ssh_from_world([opened])


def test_tailnet_keys_and_tags(prod_run, prod_plan) -> None:
    key = _one(prod_run.resources, "tailscale:index/tailnetKey:TailnetKey").inputs
    assert key["tags"] == ["tag:ai-swarm-oracle"]
    assert key["preauthorized"] is True and key["reusable"] is False and key["ephemeral"] is False
    assert key["expiry"] == 24 * 3600 and key["recreateIfInvalid"] == "never"
    acl = _one(prod_run.resources, "tailscale:index/acl:Acl")
    assert acl.inputs["acl"] == prod_plan.extra_files[ACL_PATH]
    starlord = _one(prod_run.resources, "tailscale:index/deviceTags:DeviceTags", "tailnet-starlord-tags")
    assert starlord.inputs == {"deviceId": "offline-device-starlord", "tags": ["tag:ai-swarm-starlord"]}
    for tagged in (r for r in prod_run.resources if r.type.startswith("tailscale:index/") and r is not acl):
        assert acl.urn in tagged.dependencies  # tags are owned before a key or device uses them


def test_the_oracle_docker_provider_waits_for_readiness(prod_run) -> None:
    check = _one(prod_run.resources, "command:remote:Command", "oracle-readiness-ready")
    instance = _one(prod_run.resources, "oci:Core/instance:Instance")
    assert instance.urn in check.dependencies
    assert check.inputs["connection"]["host"] == "oracle" and check.inputs["connection"]["user"] == "ubuntu"
    providers = {r.name: r for r in prod_run.resources if r.type == "pulumi:providers:docker"}
    assert check.urn in providers["oracle-docker"].dependencies
    tags = {r.name: r.urn for r in prod_run.resources if r.type == "tailscale:index/deviceTags:DeviceTags"}
    assert tags["tailnet-starlord-tags"] in providers["starlord-docker"].dependencies
    assert check.urn not in providers["starlord-docker"].dependencies


OUR_POLICIES = ("oci-", "tailscale-")


def _ours(verdicts: list[Any]) -> list[Any]:
    return [v for v in verdicts if v.policy.startswith(OUR_POLICIES)]


def test_the_oci_and_tailscale_rules_pass_on_prod(prod_run, prod_plan) -> None:
    assert _ours(check_policies(prod_plan, prod_run.resources)) == []


def _mutated(resources: list[CapturedResource], type_token: str, change: dict[str, Any]) -> list[CapturedResource]:
    return [dataclasses.replace(r, inputs={**r.inputs, **change}) if r.type == type_token else r for r in resources]


@pytest.mark.parametrize(("type_token", "change", "policy"), [
    ("oci:Core/instance:Instance", {"instanceOptions": {"areLegacyImdsEndpointsDisabled": False}},
     "oci-legacy-imds-disabled"),
    ("oci:Core/instance:Instance", {"isPvEncryptionInTransitEnabled": False},
     "oci-in-transit-encryption"),
    ("oci:Core/instance:Instance", {"agentConfig": {"isMonitoringDisabled": True}}, "oci-monitoring-agent"),
    ("oci:Core/instance:Instance", {"shapeConfig": {"ocpus": 8.0, "memoryInGbs": 24.0}}, "oci-always-free-limits"),
    ("oci:Core/securityList:SecurityList", {"ingressSecurityRules": [
        {"protocol": "6", "source": "0.0.0.0/0", "tcpOptions": {"min": 22.0, "max": 22.0}}]}, "oci-no-public-ingress"),
    ("oci:Core/defaultSecurityList:DefaultSecurityList", {"ingressSecurityRules": [
        {"protocol": "all", "source": "0.0.0.0/0"}]}, "oci-no-public-ingress"),
    ("tailscale:index/tailnetKey:TailnetKey", {"reusable": True}, "tailscale-key-not-reusable"),
    ("tailscale:index/tailnetKey:TailnetKey", {"tags": []}, "tailscale-key-tagged"),
    ("tailscale:index/tailnetKey:TailnetKey", {"expiry": 400.0 * 86400}, "tailscale-key-expiry"),
    ("tailscale:index/deviceTags:DeviceTags", {"tags": ["tag:unowned"]}, "tailscale-key-tags-owned"),
    ("tailscale:index/acl:Acl", {"acl": '{"acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]}]}'},
     "tailscale-acl-no-allow-all"),
])
def test_the_rules_read_the_props_the_sdk_really_sends(prod_run, prod_plan, type_token, change, policy) -> None:
    verdicts = _ours(check_policies(prod_plan, _mutated(prod_run.resources, type_token, change)))
    assert policy in {v.policy for v in verdicts}


def test_an_nsg_rule_open_to_ssh_is_refused(prod_run, prod_plan) -> None:
    vcn = _one(prod_run.resources, "oci:Core/vcn:Vcn")
    nsg_rule = dataclasses.replace(vcn, urn=vcn.urn.replace("vcn:Vcn::oracle-vcn", "x:X::ssh"), name="ssh",
                                   type="oci:Core/networkSecurityGroupSecurityRule:NetworkSecurityGroupSecurityRule",
                                   inputs={"direction": "INGRESS", "protocol": "6", "source": "0.0.0.0/0",
                                           "tcpOptions": {"destinationPortRange": {"min": 22.0, "max": 22.0}}})
    verdicts = _ours(check_policies(prod_plan, [*prod_run.resources, nsg_rule]))
    assert [v.policy for v in verdicts] == ["oci-no-public-ingress"]
    egress = dataclasses.replace(nsg_rule, inputs={**nsg_rule.inputs, "direction": "EGRESS"})
    assert _ours(check_policies(prod_plan, [*prod_run.resources, egress])) == []


def test_pulumi_up_refuses_an_unset_compartment_or_key(prod_config, prod_values, monkeypatch) -> None:
    import pulumi

    monkeypatch.setattr(pulumi.runtime, "is_dry_run", lambda: False)
    with pytest.raises(SpecError, match=re.escape("ai-swarm:nodes.oracle.oci.compartment_id")):
        run_program(prod_values, prod_config.secure_keys, "prod")
    oracle_oci(prod_values).update(compartment_id=COMPARTMENT, ssh_public_key=SSH_KEY)
    build_spec(config_of(prod_values))
    run = run_program(prod_values, prod_config.secure_keys, "prod")
    instance = _one(run.resources, "oci:Core/instance:Instance")
    assert instance.inputs["compartmentId"] == COMPARTMENT
    assert instance.inputs["metadata"]["ssh_authorized_keys"] == SSH_KEY
