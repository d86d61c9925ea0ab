"""An OCI node's settings, decided before any resource exists: Always Free limits, the image
query, the security rules and what `pulumi up` still needs from the operator."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass

from swarm.errors import Issue, key_path
from swarm.model import Node, OciInstance, SwarmSpec

A1_FLEX = "VM.Standard.A1.Flex"
TAILSCALE_UDP_PORT = 41641
WORLD = "0.0.0.0/0"


def oci_nodes(spec: SwarmSpec) -> dict[str, tuple[Node, OciInstance]]:
    return {name: (node, node.oci) for name, node in spec.nodes.items()
            if node.provisioning == "oci" and node.oci is not None}


def oci_issues(spec: SwarmSpec) -> Iterator[Issue]:
    """Always Free totals over every OCI node (unless opted out), and node/instance consistency."""
    nodes = oci_nodes(spec)
    ocpus = sum(oci.ocpus for _, oci in nodes.values() if oci.shape == A1_FLEX)
    memory = sum(oci.memory_gb for _, oci in nodes.values() if oci.shape == A1_FLEX)
    storage = sum(oci.boot_volume_gb for _, oci in nodes.values())
    for name, (node, oci) in nodes.items():
        path = ("nodes", name, "oci")
        if not oci.exceed_always_free:
            limits = oci.always_free
            for field, total, limit, unit in (("ocpus", ocpus, limits.a1_ocpus, "A1.Flex OCPUs"),
                                              ("memory_gb", memory, limits.a1_memory_gb, "GB of A1.Flex memory"),
                                              ("boot_volume_gb", storage, limits.storage_gb, "GB of block storage")):
                if total > limit:
                    yield Issue(key_path(*path, field),
                                f"the swarm's OCI nodes use {total:g} {unit}, over the Always Free limit "
                                f"{limit:g} ({key_path(*path, 'always_free')}); shrink it, or opt in to paid "
                                f"resources with {key_path(*path, 'exceed_always_free')}: true")
        if node.ram_gb > oci.memory_gb:
            yield Issue(key_path("nodes", name, "ram_gb"),
                        f"{node.ram_gb:g} GB is more than the instance's {key_path(*path, 'memory_gb')} "
                        f"({oci.memory_gb:g} GB)")
        if oci.shape == A1_FLEX and node.cpus > oci.ocpus:
            yield Issue(key_path("nodes", name, "cpus"),
                        f"{node.cpus} CPUs but the A1.Flex instance has {oci.ocpus:g} OCPUs (1 core each)")
        yield from _network_issues(name, oci)


def _network_issues(name: str, oci: OciInstance) -> Iterator[Issue]:
    path = ("nodes", name, "oci")
    try:
        vcn = ipaddress.ip_network(oci.vcn_cidr)
        subnet = ipaddress.ip_network(oci.subnet_cidr)
    except ValueError as exc:
        yield Issue(key_path(*path), f"vcn_cidr/subnet_cidr: {exc}")
        return
    if not subnet.subnet_of(vcn):  # type: ignore[arg-type]
        yield Issue(key_path(*path, "subnet_cidr"), f"{subnet} is not inside vcn_cidr {vcn}")


def deploy_issues(spec: SwarmSpec) -> list[Issue]:
    """Settings a preview can do without but `pulumi up` cannot (no placeholder may reach OCI)."""
    issues = []
    for name, (_, oci) in oci_nodes(spec).items():
        if oci.compartment_id is None:
            issues.append(Issue(key_path("nodes", name, "oci", "compartment_id"),
                                "unset: the OCID of the compartment (or tenancy) the node goes into"))
        if oci.ssh_public_key is None:
            issues.append(Issue(key_path("nodes", name, "oci", "ssh_public_key"),
                                "unset: the public key the deploy user logs in with (`cat ~/.ssh/id_ed25519.pub`)"))
    return issues


@dataclass(frozen=True)
class ImageQuery:
    """Arguments of `oci.core.get_images`: the newest available image for OS, version and shape."""

    operating_system: str
    operating_system_version: str
    shape: str
    display_name_regex: str | None
    override_id: str | None


def image_query(oci: OciInstance) -> ImageQuery:
    image = oci.image
    regex = image.display_name_regex
    if regex is None and image.operating_system == "Canonical Ubuntu":
        # Full (not Minimal) images: the minimal ones lack the Oracle Cloud Agent and cloud tools.
        arch = "aarch64" if oci.shape == A1_FLEX else r"\d"
        regex = rf"^Canonical-Ubuntu-{re.escape(image.version)}-{arch}"
    return ImageQuery(image.operating_system, image.version, oci.shape, regex, image.override_id)


@dataclass(frozen=True)
class IngressRule:
    protocol: str  # OCI protocol numbers: "6" TCP, "17" UDP, "1" ICMP
    source: str
    port: int | None
    description: str
    icmp_type: int | None = None
    icmp_code: int | None = None  # None: every code of the type


def ingress_rules(oci: OciInstance) -> tuple[IngressRule, ...]:
    """No port open to the world: Tailscale needs no inbound one. Path MTU discovery keeps working:
    "fragmentation needed" (ICMP type 3 code 4) comes from routers on the internet path, so it is
    accepted from anywhere, as in Oracle's own default list; the rest of type 3 from the VCN.
    Direct WireGuard UDP only behind the explicit flag."""
    rules = [IngressRule("1", WORLD, None, "ICMP fragmentation needed (path MTU discovery)", 3, 4),
             IngressRule("1", oci.vcn_cidr, None, "ICMP destination unreachable from inside the VCN", 3)]
    if oci.allow_direct_udp:
        rules.append(IngressRule("17", WORLD, TAILSCALE_UDP_PORT,
                                 "Tailscale direct WireGuard (allow_direct_udp); DERP works without it"))
    return tuple(rules)
