"""cloud-init user-data for a node this program creates, rendered from the spec.

First boot: Docker Engine (Ubuntu's `docker.io`, kept patched by unattended-upgrades), the
deploy user in the docker group (the Docker provider runs `docker system dial-stdio` as it
over SSH), sshd with keys only and no root, Tailscale joined with a single-use tagged key,
the host firewall opened on `tailscale0` only (the tailnet policy filters what arrives), binds
to the Tailscale address allowed before it exists (containers start at boot before it does), and
the SSH host key fingerprints printed to the serial console so `known_hosts` can be pinned
before the provider's batch-mode SSH connects.

The auth key is a secret that exists only at deploy time: the rendered text carries
`AUTH_KEY_PLACEHOLDER`, which the component replaces inside a secret Output. The key lands
in a root-only file on tmpfs and is deleted after `tailscale up`.
"""

from __future__ import annotations

import shlex
from typing import Any

import yaml

from swarm.model import SwarmSpec
from swarm.oracle.tags import node_tag

AUTH_KEY_PLACEHOLDER = "@@TAILSCALE_AUTH_KEY@@"
AUTH_KEY_FILE = "/run/ai-swarm/tailscale-authkey"
JOIN_SCRIPT = "/usr/local/sbin/ai-swarm-join-tailnet"
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/10-ai-swarm.conf"
SYSCTL_DROP_IN = "/etc/sysctl.d/60-ai-swarm.conf"
# Containers publish their ports on the node's Tailscale address. At boot dockerd restarts them
# before tailscaled has that address, the bind fails ("cannot assign requested address") and the
# engine never retries: the services stay down until the next `pulumi up`. Binding to an address
# the host does not have yet lets them start; traffic arrives once tailscale0 is up (seen on a
# real dockerd 20.10; the home nodes get the same setting by hand, docs/runbook.md § 1).
NONLOCAL_BIND = "net.ipv4.ip_nonlocal_bind = 1"
KEYRING = "/usr/share/keyrings/tailscale-archive-keyring.gpg"


def render_path(node: str) -> str:
    return f"cloud-init/{node}.yaml"


def _sshd_config(user: str) -> str:
    return "\n".join([
        "# ai-swarm: keys only, no root, only the deploy user.",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin no",
        "PermitEmptyPasswords no",
        f"AllowUsers {user}",
        "AuthenticationMethods publickey",
        "MaxAuthTries 3",
        "X11Forwarding no",
        "AllowAgentForwarding no",
        "AllowTcpForwarding no",
        "",
    ])


def _join_script(node: str) -> str:
    # The repository key comes over TLS from Tailscale, as Tailscale documents; apt then checks
    # every package against it.
    return "\n".join([
        "#!/bin/sh",
        "# ai-swarm: install Tailscale from its apt repository and join the tailnet once.",
        "set -eu",
        ". /etc/os-release",
        f"curl -fsSL \"https://pkgs.tailscale.com/stable/ubuntu/$VERSION_CODENAME.noarmor.gpg\" -o {KEYRING}",
        f"echo \"deb [signed-by={KEYRING}] https://pkgs.tailscale.com/stable/ubuntu $VERSION_CODENAME main\" \\",
        "  > /etc/apt/sources.list.d/tailscale.list",
        "apt-get update -q",
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q tailscale",
        "systemctl enable --now tailscaled",
        f"tailscale up --auth-key=file:{AUTH_KEY_FILE} --hostname={shlex.quote(node)} --accept-routes=false",
        f"rm -f {AUTH_KEY_FILE}",
        "# Oracle's images reject inbound traffic except SSH; the tailnet policy is the filter here.",
        "iptables -I INPUT 1 -i tailscale0 -j ACCEPT",
        "if command -v netfilter-persistent >/dev/null; then netfilter-persistent save; fi",
        "",
    ])


def user_data_document(spec: SwarmSpec, node: str) -> dict[str, Any]:
    settings = spec.nodes[node]
    oci = settings.oci
    user = settings.ssh_user
    deploy_user: dict[str, Any] = {
        "name": user,
        "gecos": "ai-swarm deploy user (Docker provider over SSH)",
        "groups": ["docker"],  # no sudo: the docker group is all the provider needs
        "shell": "/bin/bash",
        "lock_passwd": True,
    }
    if oci is not None and oci.ssh_public_key:  # the schema refuses an empty list
        deploy_user["ssh_authorized_keys"] = [oci.ssh_public_key]
    return {
        "hostname": node,
        "preserve_hostname": False,
        "package_update": True,
        "package_upgrade": True,
        "packages": ["docker.io", "unattended-upgrades", "curl", "ca-certificates"],
        "groups": ["docker"],
        "users": [deploy_user],
        "disable_root": True,
        "ssh_pwauth": False,
        "ssh_genkeytypes": ["ed25519", "ecdsa"],
        "ssh_deletekeys": True,
        "ssh": {"emit_keys_to_console": True},
        "ssh_fp_console_blacklist": [],
        "ssh_key_console_blacklist": [],
        "write_files": [
            {"path": SSHD_DROP_IN, "owner": "root:root", "permissions": "0644", "content": _sshd_config(user)},
            {"path": SYSCTL_DROP_IN, "owner": "root:root", "permissions": "0644",
             "content": "# ai-swarm: containers publish on the Tailscale address, which comes up after dockerd.\n"
                        + NONLOCAL_BIND + "\n"},
            {"path": "/etc/apt/apt.conf.d/20auto-upgrades", "owner": "root:root", "permissions": "0644",
             "content": 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n'},
            {"path": AUTH_KEY_FILE, "owner": "root:root", "permissions": "0600",
             "content": AUTH_KEY_PLACEHOLDER + "\n"},
            {"path": JOIN_SCRIPT, "owner": "root:root", "permissions": "0750", "content": _join_script(node)},
        ],
        "runcmd": [
            ["sysctl", "--load", SYSCTL_DROP_IN],
            ["systemctl", "restart", "ssh"],
            ["systemctl", "enable", "--now", "docker", "unattended-upgrades"],
            [JOIN_SCRIPT],
        ],
        "final_message": f"ai-swarm node {node} ({node_tag(spec, node)}) ready after $UPTIME s",
    }


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (scripts, config files) as literal blocks, so the file reads like them."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_BlockDumper.add_representer(str, _text)


def render_user_data(spec: SwarmSpec, node: str, auth_key: str = AUTH_KEY_PLACEHOLDER) -> str:
    """`#cloud-config` for `node`; `auth_key` replaces the placeholder (only inside a secret Output)."""
    text = (f"#cloud-config\n# ai-swarm first boot of node {node}. "
            "Generated by `python -m swarm render`; do not edit.\n")
    text += yaml.dump(user_data_document(spec, node), Dumper=_BlockDumper, sort_keys=False,
                      default_flow_style=False, width=120)
    return text.replace(AUTH_KEY_PLACEHOLDER, auth_key)
