"""The tailnet as resources: the policy generated from the plan, single-use auth keys for the
nodes this program creates, and tags on the home nodes that already exist (never re-created).

The policy text is the plan's rendered `tailscale/acl.hujson`, byte for byte; it is checked
again here (with the keys' tags) before the provider sees it (`check_acl`: every tag owned,
default deny, the generated `tests` agreeing with the rules). The provider itself only parses
the HuJSON at preview; Tailscale checks the rules and runs the `tests` when `up` sets the
policy, and refuses the whole update if one fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_tailscale as tailscale

from swarm.kinds import TYPE_TAILNET
from swarm.oracle.acl import ACL_PATH, check_acl, parse_policy
from swarm.oracle.node import oci_nodes
from swarm.oracle.tags import all_tags, node_tag
from swarm.plan.types import SwarmPlan


@dataclass(frozen=True)
class TailnetArgs:
    plan: SwarmPlan


def device_id(devices: Sequence[Any], address: str, node: str) -> str:
    """The id of the tailnet device holding `address` (the node's configured Tailscale IP)."""
    for device in devices:
        if address in (device.addresses or ()):
            return str(device.id)
    raise ValueError(f"no device in the tailnet has address {address} (ai-swarm:nodes.{node}.tailscale_ip); "
                     "is the node joined, and is the address current?")


def _device_lookup(address: str, node: str) -> Callable[[Sequence[Any]], str]:
    return lambda devices: device_id(devices, address, node)


class Tailnet(pulumi.ComponentResource):
    acl: tailscale.Acl
    keys: dict[str, tailscale.TailnetKey]
    """Single-use, pre-authorised, tagged, expiring keys for the nodes this program creates."""
    device_tags: dict[str, tailscale.DeviceTags]

    def __init__(self, name: str, args: TailnetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_TAILNET, name, None, opts)
        plan, spec = args.plan, args.plan.spec
        settings = spec.tailnet
        policy = plan.extra_files[ACL_PATH]
        check_acl(parse_policy(policy), key_tags=all_tags(spec))  # the exact text the provider gets
        self.acl = tailscale.Acl(
            f"{name}-acl", acl=policy,
            overwrite_existing_content=settings.overwrite_existing_acl or None,
            opts=pulumi.ResourceOptions(parent=self))
        after_acl = pulumi.ResourceOptions(parent=self, depends_on=[self.acl])  # tags must be owned first
        created = oci_nodes(spec)
        self.keys = {
            node: tailscale.TailnetKey(
                f"{name}-{node}-key",
                tags=[node_tag(spec, node)],
                preauthorized=True, reusable=False, ephemeral=False,
                expiry=settings.key_expiry_hours * 3600,
                recreate_if_invalid="never",  # used once at first boot; a spent key must not churn the node
                description=re.sub(r"[^A-Za-z0-9 ]", " ", f"ai swarm first boot {node}")[:50],
                opts=pulumi.ResourceOptions.merge(after_acl, pulumi.ResourceOptions(
                    additional_secret_outputs=["key"])),
            )
            for node in created
        }
        existing = {node: settings_ for node, settings_ in spec.nodes.items() if node not in created}
        self.device_tags = {}
        if existing:
            devices = tailscale.get_devices_output(opts=pulumi.InvokeOutputOptions(parent=self)).devices
            for node, node_settings in existing.items():
                self.device_tags[node] = tailscale.DeviceTags(
                    f"{name}-{node}-tags",
                    device_id=devices.apply(_device_lookup(node_settings.tailscale_ip, node)),
                    tags=[node_tag(spec, node)],
                    opts=after_acl,
                )
        self.register_outputs({"acl": self.acl.id})
