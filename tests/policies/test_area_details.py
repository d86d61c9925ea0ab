"""Edge cases of the GPU, OCI, Tailscale and stack rules."""

from __future__ import annotations

import dataclasses
import json

import pytest

from policies.tailscale import parse_hujson

from . import fixtures as f
from .helpers import run
from .rule_cases import _vcn


def test_gpu_on_a_node_without_gpus() -> None:
    c = f.container(deviceRequests=[{"driver": "nvidia", "deviceIds": ["0"], "capabilities": ["gpu"]}])
    (verdict,) = run("gpu-device-inventory", [c])
    assert "'oracle'" in verdict.message


def test_gpu_request_without_device_ids_or_via_gpus_prop() -> None:
    counted = f.container(f.hardened_vllm(), deviceRequests=[{"driver": "nvidia", "count": -1.0}])
    assert run("gpu-device-inventory", [counted])
    assert run("gpu-device-inventory", [f.container(f.hardened_vllm(), gpus="all")])


def test_gpu_capability_utility_is_not_enough_for_vllm() -> None:
    request = [{"driver": "nvidia", "deviceIds": ["0"], "capabilities": ["utility"]}]
    assert run("vllm-requests-gpu", [f.container(f.hardened_vllm(), deviceRequests=request)])


@pytest.mark.parametrize(
    ("rule", "config", "caught"),
    [
        (f.oci_rule("0.0.0.0/0", "17", 41641), {}, True),
        (f.oci_rule("0.0.0.0/0", "17", 41641), {"allowed_udp_ports": [41641]}, False),
        (f.oci_rule("0.0.0.0/0", "6", 443), {"allowed_udp_ports": [443]}, True),
        (f.oci_rule("0.0.0.0/0", "6", None), {"allowed_tcp_ports": [22]}, True),
        (f.oci_rule("0.0.0.0/0", "all", None), {}, True),
        (f.oci_rule("::/0", "6", 22), {}, True),
        (f.oci_rule("0.0.0.0/0", "1", None), {}, False),
        (f.oci_rule("0.0.0.0/0", "1", None), {"allow_icmp": False}, True),
    ],
)
def test_public_ingress(rule: dict, config: dict, caught: bool) -> None:
    for default in (False, True):
        resources = [f.oci_security_list([rule], default=default)]
        assert bool(run("oci-no-public-ingress", resources, config)) is caught


def test_default_security_list_without_dependency_info_counts() -> None:
    assert run("oci-default-security-list-managed", [_vcn(), f.oci_security_list([], default=True)]) == []


def test_always_free_totals_across_instances_and_volumes() -> None:
    small = f.oci_instance(shapeConfig={"ocpus": 2.0, "memoryInGbs": 12.0})
    small = f.with_props(small, {**small.props, "sourceDetails": {"bootVolumeSizeInGbs": "100"}})
    volume = f.schema_shaped("oci:Core/volume:Volume", "oracle-data", {"sizeInGbs": "50"})
    other = dataclasses.replace(small, name="other", urn=small.urn + "-other")
    verdicts = run("oci-always-free-limits", [small, other, volume])
    assert len(verdicts) == 1 and "storage GB total 250" in verdicts[0].message
    assert run("oci-always-free-limits", [small, other]) == []
    assert run("oci-always-free-limits", [f.oci_instance(shape="VM.Standard.E4.Flex")])


def test_hujson_acl_is_parsed() -> None:
    text = """// generated
    {
      "tagOwners": {"tag:a": ["autogroup:admin"],},  /* owners */
      "acls": [{"action": "accept", "src": ["*"], "dst": ["*:*"]},],
      "tests": [{"src": "tag:a", "accept": ["tag:a:80"], "deny": ["tag:a:22"]}], // "x": [1,],
    }"""
    assert parse_hujson(text)["tagOwners"] == {"tag:a": ["autogroup:admin"]}
    acl = f.captured("tailnet-acl", props={"acl": text})
    assert run("tailscale-acl-no-allow-all", [acl])
    assert run("tailscale-acl-tags-owned", [acl]) == []
    assert run("tailscale-acl-tests", [acl]) == []


def test_invalid_acl_is_reported() -> None:
    assert run("tailscale-acl-no-allow-all", [f.captured("tailnet-acl", props={"acl": "{nope"})])


def test_allow_all_grant_and_untested_acl() -> None:
    grant = f.acl_variant(lambda d: d["grants"].append({"src": ["*"], "dst": ["*"], "ip": ["*"]}))
    assert run("tailscale-acl-no-allow-all", [grant])
    assert run("tailscale-acl-tests", [f.acl_variant(lambda d: d.pop("tests"))])


def test_tags_in_ssh_and_tests_must_be_owned() -> None:
    ssh = f.acl_variant(
        lambda d: d.__setitem__(
            "ssh", [{"action": "check", "src": ["autogroup:admin"], "dst": ["tag:ghost"], "users": ["root"]}]
        )
    )
    (verdict,) = run("tailscale-acl-tags-owned", [ssh])
    assert "tag:ghost" in verdict.message


@pytest.mark.parametrize(
    ("changes", "caught"),
    [({"expiry": None}, False), ({"expiry": 91.0 * 86400}, True), ({"expiry": 0.0}, True)],
)
def test_key_expiry(changes: dict, caught: bool) -> None:
    key = f.tailnet_key(**changes)
    key = f.with_props(key, {k: v for k, v in key.props.items() if v is not None})
    assert bool(run("tailscale-key-expiry", [key])) is caught


def test_key_tags_without_managed_acl_are_not_judged() -> None:
    assert run("tailscale-key-tags-owned", [f.tailnet_key(tags=["tag:stranger"])]) == []


@pytest.mark.parametrize(
    ("ip_a", "ip_b", "protocol_b", "clash"),
    [
        ("100.96.197.84", "100.96.197.84", "tcp", True),
        ("100.96.197.84", "127.0.0.1", "tcp", False),
        ("100.96.197.84", "0.0.0.0", "tcp", True),
        ("100.96.197.84", "100.96.197.84", "udp", False),
    ],
)
def test_host_port_clashes(ip_a: str, ip_b: str, protocol_b: str, clash: bool) -> None:
    a = f.container(ports=[{"internal": 1.0, "external": 4000.0, "ip": ip_a, "protocol": "tcp"}])
    b = f.container(name="b", ports=[{"internal": 2.0, "external": 4000.0, "ip": ip_b, "protocol": protocol_b}])
    assert bool(run("unique-host-ports", [a, b])) is clash


def test_same_port_on_different_nodes_is_fine() -> None:
    labels = [{"label": "ai-swarm.node", "value": "thanos"}]
    assert run("unique-host-ports", [f.hardened_container(), f.container(name="b", labels=labels)]) == []


def test_acl_fixture_is_real_json() -> None:
    assert json.loads(f.captured("tailnet-acl").props["acl"])["tests"]
