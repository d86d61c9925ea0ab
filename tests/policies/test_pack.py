"""The pack as the engine sees it: POLICIES, import without a server, __main__ over gRPC."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.deserialize import serialize_properties

from policies import POLICIES
from policies.local_runner import engine_props

from . import fixtures as f

ROOT = Path(__file__).resolve().parents[2]
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)+$")
THRESHOLDS = {
    "container-no-dangerous-capabilities": {"forbidden"},
    "container-no-sensitive-host-mounts": {"sensitive_paths"},
    "container-memory-limit": {"min_memory_mb"},
    "container-restart-policy": {"allowed"},
    "container-log-rotation": {"self_rotating_drivers"},
    "container-no-plaintext-secrets": {"secret_name_pattern", "secret_value_patterns", "allowed_names"},
    "gpu-device-inventory": {"gpu_inventory"},
    "oci-no-public-ingress": {"allowed_tcp_ports", "allowed_udp_ports", "allow_icmp"},
    "oci-always-free-limits": {"max_a1_ocpus", "max_a1_memory_gb", "max_storage_gb", "free_shapes"},
    "tailscale-key-expiry": {"max_expiry_days"},
    "stateful-volumes-protected": {"stateful_types"},
    "container-secrets-not-in-env": {"secret_sources"},
}


def test_policies_are_unique_kebab_case_and_described() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))
    for policy in POLICIES:
        assert KEBAB.match(policy.name), policy.name
        assert isinstance(policy, ResourceValidationPolicy | StackValidationPolicy)
        assert policy.description.endswith(".")
        assert policy.enforcement_level in (EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY)


def test_every_policy_has_an_allow_list_and_its_thresholds_in_config_schema() -> None:
    for policy in POLICIES:
        assert policy.config_schema is not None
        properties = policy.config_schema.properties
        assert properties["allow"]["default"] == []
        assert THRESHOLDS.get(policy.name, set()) <= set(properties), policy.name
        assert all("default" in spec and spec.get("description") for spec in properties.values())


def test_importing_policies_does_not_start_a_server() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import policies; print(len(policies.POLICIES))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert done.stdout.strip() == str(len(POLICIES))


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """Start the pack the way the language host does (python -m pulumi.policy ADDR DIR)."""
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(ROOT / "policies")],
        cwd=ROOT / "policies",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().strip())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        server.kill()
        server.communicate(timeout=10)


def _request(snapshot) -> analyzer_pb2.AnalyzeRequest:
    properties = struct_pb2.Struct()
    properties.update(serialize_properties(engine_props(snapshot.props)))
    return analyzer_pb2.AnalyzeRequest(
        type=snapshot.type,
        properties=properties,
        urn=snapshot.urn,
        name=snapshot.name,
        options=analyzer_pb2.AnalyzerResourceOptions(),
    )


def test_pack_serves_every_policy(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "ai-swarm"
    assert {p.name for p in info.policies} == {p.name for p in POLICIES}


def test_served_pack_reports_a_privileged_container(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    response = analyzer.Analyze(_request(f.container(privileged=True)))
    assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
        ("container-no-privileged", analyzer_pb2.MANDATORY)
    ]


def test_served_pack_reports_waivers_as_not_applicable(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    config = analyzer_pb2.PolicyConfig(enforcementLevel=analyzer_pb2.MANDATORY)
    config.properties.update({"allow": ["oracle-litellm-container"]})
    analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={"container-no-privileged": config}))
    try:
        response = analyzer.Analyze(_request(f.container(privileged=True)))
    finally:
        analyzer.Configure(analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={}))
    assert list(response.diagnostics) == []
    reasons = {n.policy_name: n.reason for n in response.not_applicable}
    assert "waived by allow list" in reasons["container-no-privileged"]
