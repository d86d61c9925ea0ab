"""A node this program creates in Oracle Cloud: its own VCN closed to the world, and a hardened
A1.Flex instance that joins the tailnet at first boot.

Nothing listens on the public address: the security list opens no port to 0.0.0.0/0 (UDP
41641 only behind `allow_direct_udp`; from the world only ICMP "fragmentation needed", which
path MTU discovery needs) and the VCN's default list, which Oracle opens to SSH
from anywhere, is taken under management and emptied. The instance keeps outbound internet
(apt, Tailscale's coordination and relays) through an internet gateway. The image is looked
up by OS, version and shape at deploy time; the instance and its boot volume are protected.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_oci as oci

from swarm.errors import SpecError
from swarm.kinds import TYPE_OCI_NODE
from swarm.model import SwarmSpec
from swarm.oracle.node import WORLD, IngressRule, deploy_issues, image_query, ingress_rules

PREVIEW_COMPARTMENT = "ocid1.compartment.oc1..preview-only-unset"
ALL_PROTOCOLS = "all"


@dataclass(frozen=True)
class OciNodeArgs:
    spec: SwarmSpec
    node: str
    user_data: pulumi.Input[str]
    """cloud-init text with the auth key filled in (a secret Output)."""


def newest_image_id(images: list[Any], what: str) -> str:
    if not images:
        raise ValueError(f"no OCI platform image matches {what}; set ai-swarm:nodes.<node>.oci.image")
    return str(images[0].id)


def _label(node: str) -> str:
    """OCI DNS labels: letters and digits, 15 characters, starting with a letter."""
    return (re.sub(r"[^a-z0-9]", "", node.lower()) or "node")[:15]


class OciNode(pulumi.ComponentResource):
    vcn: oci.core.Vcn
    default_security_list: oci.core.DefaultSecurityList
    security_list: oci.core.SecurityList
    subnet: oci.core.Subnet
    instance: oci.core.Instance
    public_ip: pulumi.Output[str]

    def __init__(self, name: str, args: OciNodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_OCI_NODE, name, None, opts)
        settings = args.spec.nodes[args.node].oci
        assert settings is not None  # oci_nodes() only yields nodes with settings
        missing = [issue for issue in deploy_issues(args.spec) if f".{args.node}." in issue.path]
        if missing and not pulumi.runtime.is_dry_run():
            raise SpecError(missing)
        for issue in missing:
            pulumi.log.warn(f"{issue} (preview continues with a placeholder; `pulumi up` refuses)")
        compartment = settings.compartment_id or PREVIEW_COMPARTMENT
        child = pulumi.ResourceOptions(parent=self)
        display = f"ai-swarm-{args.node}"

        self.vcn = oci.core.Vcn(f"{name}-vcn", compartment_id=compartment, cidr_blocks=[settings.vcn_cidr],
                                display_name=display, dns_label=_label(args.node), opts=child)
        gateway = oci.core.InternetGateway(f"{name}-internet-gateway", compartment_id=compartment,
                                           vcn_id=self.vcn.id, enabled=True, display_name=display, opts=child)
        routes = oci.core.RouteTable(
            f"{name}-route-table", compartment_id=compartment, vcn_id=self.vcn.id, display_name=display,
            route_rules=[oci.core.RouteTableRouteRuleArgs(network_entity_id=gateway.id, destination=WORLD,
                                                          destination_type="CIDR_BLOCK")],
            opts=child)
        # Oracle's default list admits SSH from anywhere; managed here, it admits nothing.
        self.default_security_list = oci.core.DefaultSecurityList(
            f"{name}-default-security-list", manage_default_resource_id=self.vcn.default_security_list_id,
            compartment_id=compartment, display_name=f"{display}-default-closed",
            ingress_security_rules=[], egress_security_rules=[], opts=child)
        self.security_list = oci.core.SecurityList(
            f"{name}-security-list", compartment_id=compartment, vcn_id=self.vcn.id, display_name=display,
            egress_security_rules=[oci.core.SecurityListEgressSecurityRuleArgs(
                destination=WORLD, protocol=ALL_PROTOCOLS, description="outbound: apt, Tailscale")],
            ingress_security_rules=[_ingress(rule) for rule in ingress_rules(settings)],
            opts=child)
        self.subnet = oci.core.Subnet(
            f"{name}-subnet", compartment_id=compartment, vcn_id=self.vcn.id, cidr_block=settings.subnet_cidr,
            route_table_id=routes.id, security_list_ids=[self.security_list.id], display_name=display,
            dns_label=_label(args.node), prohibit_public_ip_on_vnic=False, opts=child)

        query = image_query(settings)
        image_id: pulumi.Input[str]
        if query.override_id is not None:
            image_id = query.override_id
        else:
            what = f"{query.operating_system} {query.operating_system_version} on {query.shape}"
            image_id = oci.core.get_images_output(
                compartment_id=compartment, operating_system=query.operating_system,
                operating_system_version=query.operating_system_version, shape=query.shape,
                state="AVAILABLE", sort_by="TIMECREATED", sort_order="DESC",
                filters=[oci.core.GetImagesFilterArgs(name="display_name", values=[query.display_name_regex],
                                                      regex=True)] if query.display_name_regex else None,
                opts=pulumi.InvokeOutputOptions(parent=self),
            ).images.apply(lambda images: newest_image_id(list(images), what))
        domain: pulumi.Input[str] = settings.availability_domain or oci.identity.get_availability_domains_output(
            compartment_id=compartment, opts=pulumi.InvokeOutputOptions(parent=self),
        ).availability_domains.apply(lambda domains: str(domains[0].name))
        metadata: dict[str, pulumi.Input[str]] = {
            "user_data": pulumi.Output.from_input(args.user_data).apply(
                lambda text: base64.b64encode(text.encode()).decode()),
        }
        if settings.ssh_public_key:
            metadata["ssh_authorized_keys"] = settings.ssh_public_key
        self.instance = oci.core.Instance(
            f"{name}-instance",
            availability_domain=domain, compartment_id=compartment, display_name=display, shape=settings.shape,
            shape_config=oci.core.InstanceShapeConfigArgs(ocpus=settings.ocpus, memory_in_gbs=settings.memory_gb),
            source_details=oci.core.InstanceSourceDetailsArgs(
                source_type="image", source_id=image_id, boot_volume_size_in_gbs=str(settings.boot_volume_gb)),
            create_vnic_details=oci.core.InstanceCreateVnicDetailsArgs(
                subnet_id=self.subnet.id, assign_public_ip="true", hostname_label=_label(args.node)),
            metadata=metadata,
            instance_options=oci.core.InstanceInstanceOptionsArgs(are_legacy_imds_endpoints_disabled=True),
            is_pv_encryption_in_transit_enabled=True,  # LaunchInstanceDetails' field, not launch_options'
            agent_config=oci.core.InstanceAgentConfigArgs(is_monitoring_disabled=False,
                                                          is_management_disabled=False),
            preserve_boot_volume=True,  # the boot volume outlives the instance
            opts=pulumi.ResourceOptions(
                parent=self, protect=True, additional_secret_outputs=["metadata"],
                # The provider replaces the instance when metadata's user_data or ssh_authorized_keys
                # change (CustomizeDiff ForceNewIfChange): both only matter at first boot, as does the
                # image, so a new auth key or a newer image must not touch a protected node.
                ignore_changes=["metadata", "sourceDetails.sourceId"],
            ),
        )
        self.public_ip = self.instance.public_ip
        self.register_outputs({"instance": self.instance.id, "public_ip": self.public_ip})


def _ingress(rule: IngressRule) -> oci.core.SecurityListIngressSecurityRuleArgs:
    port = rule.port
    return oci.core.SecurityListIngressSecurityRuleArgs(
        protocol=rule.protocol, source=rule.source, source_type="CIDR_BLOCK", description=rule.description,
        udp_options=oci.core.SecurityListIngressSecurityRuleUdpOptionsArgs(min=port, max=port)
        if port is not None and rule.protocol == "17" else None,
        tcp_options=oci.core.SecurityListIngressSecurityRuleTcpOptionsArgs(min=port, max=port)
        if port is not None and rule.protocol == "6" else None,
        icmp_options=oci.core.SecurityListIngressSecurityRuleIcmpOptionsArgs(type=rule.icmp_type, code=rule.icmp_code)
        if rule.protocol == "1" and rule.icmp_type is not None else None,
    )
