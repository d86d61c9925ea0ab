"""Readiness of a node this program creates, and the provisioning that comes before the containers.

A fresh OCI node is useless to the Docker provider until cloud-init has finished and the node
is on the tailnet at the address the config names. `NodeReadiness` waits for exactly that over
SSH (through the tailnet: the node has no public SSH) and the node's Docker provider depends
on it. The SSH key comes from the runner's agent (`SSH_AUTH_SOCK`), as for the Docker provider.
"""

from __future__ import annotations

import shlex
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi

from components.oci_node import OciNode, OciNodeArgs
from components.tailnet import Tailnet, TailnetArgs
from swarm.kinds import TYPE_READINESS
from swarm.oracle.cloud_init import AUTH_KEY_PLACEHOLDER, render_path
from swarm.oracle.node import oci_nodes
from swarm.plan.types import SwarmPlan

with warnings.catch_warnings():
    # pulumi-command 1.2 warns about its deprecated CopyFile while the module loads (an error
    # under pytest's warnings-as-errors, which would leave the module half-imported).
    warnings.simplefilter("ignore", DeprecationWarning)
    from pulumi_command.remote import Command, ConnectionArgs  # attribute access loads the lazy module


@dataclass(frozen=True)
class NodeReadinessArgs:
    node: str
    host: str
    """Where the runner reaches the node: its MagicDNS name (the tailnet address may be new)."""
    ssh_user: str
    tailscale_ip: str
    instance_id: pulumi.Input[str]
    after: Sequence[pulumi.Resource] = ()


IMDS_INSTANCE_ID = "http://169.254.169.254/opc/v2/instance/id"


def readiness_script(node: str, tailscale_ip: str, instance_id: str) -> str:
    """Checks it reached the new instance (not an old device of the same name), waits for
    cloud-init, checks Tailscale and the address, proves Docker access, prints the host key."""
    ip = shlex.quote(tailscale_ip)
    return "\n".join([
        "set -u",
        f"me=$(curl -fsS -H 'Authorization: Bearer Oracle' {IMDS_INSTANCE_ID})",
        f'if [ "$me" != {shlex.quote(instance_id)} ]; then',
        f'  echo "the host answering as {node} is instance $me, not the new one; remove or rename the old'
        f' {node} device in the tailnet" >&2; exit 1',
        "fi",
        "cloud-init status --wait >/dev/null; rc=$?",
        # 2 = finished with recoverable errors (e.g. a deprecation): report, do not block
        'if [ "$rc" -ne 0 ] && [ "$rc" -ne 2 ]; then cloud-init status --long >&2; exit 1; fi',
        "tailscale status >/dev/null || { echo 'tailscale is not up' >&2; exit 1; }",
        "got=$(tailscale ip -4)",
        f'if [ "$got" != {ip} ]; then',
        f'  echo "node {node} is on the tailnet as $got but ai-swarm:nodes.{node}.tailscale_ip is {tailscale_ip}:'
        ' set the device address in the admin console or the config" >&2; exit 1',
        "fi",
        "docker version --format '{{.Server.Version}}' >/dev/null || { echo 'no docker access' >&2; exit 1; }",
        "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub",
    ])


class NodeReadiness(pulumi.ComponentResource):
    check: Command
    host_key_fingerprint: pulumi.Output[str]

    def __init__(self, name: str, args: NodeReadinessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TYPE_READINESS, name, None, opts)
        self.check = Command(
            f"{name}-ready",
            connection=ConnectionArgs(host=args.host, user=args.ssh_user,
                                                     dial_error_limit=120, per_dial_timeout=10),
            create=pulumi.Output.from_input(args.instance_id).apply(
                lambda instance_id: readiness_script(args.node, args.tailscale_ip, instance_id)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )
        self.host_key_fingerprint = self.check.stdout
        self.register_outputs({"host_key_fingerprint": self.host_key_fingerprint})


def _fill_auth_key(template: str) -> Callable[[str | None], str]:
    # The key is unknown during preview (the function does not run) and set at `pulumi up`.
    return lambda key: template.replace(AUTH_KEY_PLACEHOLDER, key if key is not None else AUTH_KEY_PLACEHOLDER)


def prepare_nodes(plan: SwarmPlan, opts: pulumi.ResourceOptions) -> dict[str, list[pulumi.Resource]]:
    """The tailnet, then every OCI node and its readiness; returns what each node's runtime waits for."""
    tailnet = Tailnet("tailnet", TailnetArgs(plan), opts=opts)
    ready: dict[str, list[pulumi.Resource]] = {}
    for node, (settings, _) in oci_nodes(plan.spec).items():
        template = plan.extra_files[render_path(node)]
        filled: pulumi.Output[str] = tailnet.keys[node].key.apply(_fill_auth_key(template))
        user_data: pulumi.Output[str] = pulumi.Output.secret(filled)  # secret even if the marker were lost
        machine = OciNode(node, OciNodeArgs(spec=plan.spec, node=node, user_data=user_data), opts=opts)
        readiness = NodeReadiness(f"{node}-readiness", NodeReadinessArgs(
            node=node, host=node, ssh_user=settings.ssh_user, tailscale_ip=settings.tailscale_ip,
            instance_id=machine.instance.id, after=[machine.instance]), opts=opts)
        ready[node] = [readiness.check]
    for node, tags in tailnet.device_tags.items():
        ready.setdefault(node, []).append(tags)
    return ready
