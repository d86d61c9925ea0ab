"""Oracle Cloud rules (CKV_OCI_4/5/6/19 and the Always Free limits)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import PolicyResource

from ._props import (
    ADVISORY,
    Finding,
    dig,
    items,
    known,
    number,
    number_setting,
    props_of,
    resource_rule,
    stack_rule,
    string_list,
)

Props = dict[str, Any]
Config = Mapping[str, Any]

INSTANCE = "oci:Core/instance:Instance"
SECURITY_LIST = "oci:Core/securityList:SecurityList"
DEFAULT_SECURITY_LIST = "oci:Core/defaultSecurityList:DefaultSecurityList"
VCN = "oci:Core/vcn:Vcn"
BLOCK_VOLUME = "oci:Core/volume:Volume"
NSG_RULE = "oci:Core/networkSecurityGroupSecurityRule:NetworkSecurityGroupSecurityRule"
WORLD = {"0.0.0.0/0", "::/0"}
PROTOCOLS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "all"}


def _port_range(rule: Mapping[str, Any], key: str) -> tuple[float, float] | None:
    options = rule.get(key)
    if not isinstance(options, Mapping):
        return None
    low, high = number(options.get("min")), number(options.get("max"))
    return (low or 1, high or low or 65535) if (low or high) else None


def _ingress_rules(props: Props) -> list[Any]:
    """Security-list rules, or one NSG rule reshaped like them (its ports sit in destinationPortRange)."""
    if "direction" not in props:
        return list(items(props.get("ingressSecurityRules")))
    if str(props.get("direction")).upper() != "INGRESS":
        return []
    rule = dict(props)
    for key in ("tcpOptions", "udpOptions"):
        options = props.get(key)
        rule[key] = options.get("destinationPortRange") if isinstance(options, Mapping) else None
    return [rule]


def check_ingress(props: Props, cfg: Config) -> Iterator[str]:
    for rule in _ingress_rules(props):
        if not isinstance(rule, Mapping) or str(rule.get("source") or "") not in WORLD:
            continue
        protocol = PROTOCOLS.get(str(rule.get("protocol")).lower(), str(rule.get("protocol")))
        if protocol in ("icmp", "icmpv6") and cfg["allow_icmp"]:
            continue
        layer4 = protocol in ("tcp", "udp")
        allowed = {number(p) for p in cfg[f"allowed_{protocol}_ports"]} if layer4 else set()
        ports = _port_range(rule, f"{protocol}Options") if layer4 else None
        if ports and ports[0] == ports[1] and ports[0] in allowed:
            continue
        span = f"{ports[0]:g}-{ports[1]:g}" if ports else "all ports"
        yield (f"ingress from {rule.get('source')} on {protocol} {span}; restrict the source CIDR "
               f"(Tailscale needs no inbound port) or allow-list the port in allowed_{protocol}_ports.")


def check_imds(props: Props, _: Config) -> Iterator[str]:
    value = dig(props, "instanceOptions", "areLegacyImdsEndpointsDisabled")
    if known(value) and value is not True and str(value).lower() != "true":
        yield "set instance_options.are_legacy_imds_endpoints_disabled=True (IMDSv1 leaks credentials)."


def check_in_transit(props: Props, _: Config) -> Iterator[str]:
    values = [props.get("isPvEncryptionInTransitEnabled"),
              dig(props, "launchOptions", "isPvEncryptionInTransitEnabled")]
    if any(not known(v) for v in values):
        return
    if not any(v is True or str(v).lower() == "true" for v in values):
        yield ("set is_pv_encryption_in_transit_enabled=True "
               "(or launch_options.is_pv_encryption_in_transit_enabled=True).")


def check_monitoring(props: Props, _: Config) -> Iterator[str]:
    if dig(props, "agentConfig", "isMonitoringDisabled") is True:
        yield "agent_config.is_monitoring_disabled=True; leave the monitoring agent on."


def check_default_security_list(resources: list[PolicyResource], _: Config) -> Iterator[Finding]:
    managed = [r for r in resources if r.resource_type == DEFAULT_SECURITY_LIST]
    for vcn in (r for r in resources if r.resource_type == VCN):
        linked = [d for d in managed if vcn in d.dependencies
                  or any(vcn in deps for deps in d.property_dependencies.values())]
        if not linked and not any(not d.dependencies for d in managed):
            yield Finding(f"VCN {vcn.name!r} leaves its default security list (SSH open to the world) "
                          "unmanaged; add oci.core.DefaultSecurityList(manage_default_resource_id="
                          "vcn.default_security_list_id) with only the rules you need.", vcn.urn, vcn.name)


def check_always_free(resources: list[PolicyResource], cfg: Config) -> Iterator[Finding]:
    ocpus = memory = storage = 0.0
    for r in resources:
        props = props_of(r)
        if r.resource_type == INSTANCE:
            shape = props.get("shape")
            if known(shape) and shape not in cfg["free_shapes"]:
                yield Finding(f"shape {shape!r} is not Always Free; use one of {list(cfg['free_shapes'])}.",
                              r.urn, r.name)
            if shape == "VM.Standard.A1.Flex":
                ocpus += number(dig(props, "shapeConfig", "ocpus")) or 0
                memory += number(dig(props, "shapeConfig", "memoryInGbs")) or 0
            boot = number(dig(props, "sourceDetails", "bootVolumeSizeInGbs"))
            storage += boot if boot is not None else cfg["default_boot_volume_gb"]
        elif r.resource_type == BLOCK_VOLUME:
            storage += number(props.get("sizeInGbs")) or cfg["default_block_volume_gb"]
    limits = [("A1.Flex OCPUs", ocpus, "max_a1_ocpus"), ("A1.Flex memory GB", memory, "max_a1_memory_gb"),
              ("block + boot storage GB", storage, "max_storage_gb")]
    for what, total, key in limits:
        if total > cfg[key]:
            yield Finding(f"{what} total {total:g} exceeds the Always Free limit {cfg[key]:g} ({key}); "
                          "shrink shape_config / boot volumes.")


FREE_SHAPES = ["VM.Standard.A1.Flex", "VM.Standard.E2.1.Micro"]
PORTS = {"type": "array", "items": {"type": "integer"}, "default": []}

POLICIES = [
    resource_rule("oci-no-public-ingress", "No 0.0.0.0/0 ingress except allow-listed ports (CKV_OCI_19).",
                  [SECURITY_LIST, DEFAULT_SECURITY_LIST, NSG_RULE], check_ingress,
                  allowed_tcp_ports=PORTS | {"description": "TCP ports that may be open to 0.0.0.0/0."},
                  allowed_udp_ports=PORTS | {"description": "UDP ports that may be open (e.g. 41641)."},
                  allow_icmp={"type": "boolean", "default": True, "description": "Accept world ICMP."}),
    stack_rule("oci-default-security-list-managed", "Every VCN's default security list is managed.",
               check_default_security_list),
    resource_rule("oci-legacy-imds-disabled", "Instances disable legacy IMDS endpoints (CKV_OCI_5).",
                  INSTANCE, check_imds),
    resource_rule("oci-in-transit-encryption", "Instances encrypt volume traffic in transit (CKV_OCI_4).",
                  INSTANCE, check_in_transit),
    resource_rule("oci-monitoring-agent", "The Oracle Cloud Agent monitoring plugin stays on (CKV_OCI_6).",
                  INSTANCE, check_monitoring, ADVISORY),
    stack_rule("oci-always-free-limits", "OCI resources stay within the Always Free tier.", check_always_free,
               max_a1_ocpus=number_setting("Total A1.Flex OCPUs.", 4),
               max_a1_memory_gb=number_setting("Total A1.Flex memory (GB).", 24),
               max_storage_gb=number_setting("Total boot + block volume storage (GB).", 200),
               default_boot_volume_gb=number_setting("Boot volume size assumed when unset.", 50),
               default_block_volume_gb=number_setting("Block volume size assumed when unset.", 50),
               free_shapes=string_list("Always Free shapes.", FREE_SHAPES)),
]
