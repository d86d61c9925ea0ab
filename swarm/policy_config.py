"""Policy-pack configuration derived from the plan.

The same mapping is passed to the policies by the offline plan and rendered to
`policy/policy-config.json` for `pulumi preview --policy-pack policies
--policy-pack-config <file>`, so both runs judge with the same GPU inventory and the same
reviewed exceptions. Exceptions are keyed on the kind label (`ai-swarm.kind`), never on
resource names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from swarm.adopt import adopted_resource_name, adoption_step
from swarm.model import SwarmSpec
from swarm.oracle.node import TAILSCALE_UDP_PORT

if TYPE_CHECKING:
    from swarm.plan.types import SwarmPlan


@dataclass(frozen=True)
class PolicyException:
    """A reviewed exception: `policy` is waived for containers whose kind label is `kind`."""

    policy: str
    kind: str
    reason: str


_ROOT_IMAGE = ("the published image is built to run as root and owns its data directory as root (a fresh "
               "volume copies that ownership), so another uid cannot write its data; it runs with every "
               "capability dropped, no-new-privileges and its port on the tailnet only")
_WRITES_APP_DIR = "writes into its application directory at start (see its module); data lives on retained volumes"

EXCEPTIONS: tuple[PolicyException, ...] = (
    PolicyException("container-non-root-user", "open-webui", _ROOT_IMAGE),
    PolicyException("container-non-root-user", "pipelines", _ROOT_IMAGE),
    PolicyException("container-non-root-user", "sillytavern", _ROOT_IMAGE),
    PolicyException("container-non-root-user", "sillytavern-extras", _ROOT_IMAGE),
    PolicyException("container-read-only-rootfs", "open-webui", "Open WebUI " + _WRITES_APP_DIR),
    PolicyException("container-read-only-rootfs", "pipelines",
                    "Pipelines pip-installs each pipeline's requirements into the image at start"),
    PolicyException("container-read-only-rootfs", "sillytavern", "SillyTavern " + _WRITES_APP_DIR),
    PolicyException("container-read-only-rootfs", "sillytavern-extras", "Extras " + _WRITES_APP_DIR),
    PolicyException("container-non-root-user", "litellm",
                    "the litellm-database image generates Prisma's client, engines and Node CLI as root under "
                    "/root/.cache at build time; another uid makes Prisma fetch them again at start (fails without "
                    "egress, and would run unpinned code); it runs with every capability dropped, "
                    "no-new-privileges and its port on the tailnet only (swarm/services/litellm.py)"),
    PolicyException("container-no-sensitive-host-mounts", "node-exporter",
                    "node-exporter reads the host's /proc, /sys and filesystems through a read-only bind of / "
                    "(--path.rootfs); it runs as nobody with every capability dropped "
                    "(swarm/services/node_exporter.py)"),
    PolicyException("container-no-sensitive-host-mounts", "log-shipper",
                    "the log shipper tails the engine's json-file logs under /var/lib/docker/containers, mounted "
                    "read-only; it never gets the Docker socket (swarm/services/log_shipper.py)"),
    PolicyException("container-non-root-user", "log-shipper",
                    "the engine writes container logs root-owned 0640; without capabilities only uid 0 reads them "
                    "(CAP_DAC_READ_SEARCH would let any uid read every file); every capability is dropped, "
                    "no-new-privileges, read-only root, the logs mounted read-only"),
    PolicyException("container-read-only-rootfs", "litellm",
                    "LiteLLM runs Prisma's migrations at start, and Prisma writes its engine cache and "
                    "generated files inside the image; keys and spend live in PostgreSQL"),
)

_ADOPTED = ("an adopted container is imported exactly as it runs (swarm.adopt): changing this input forces a "
            "replacement, which Pulumi refuses for an imported, protected container; step (b) of the adoption "
            "(remove adopt.container_id) replaces it with the hardened definition")
ADOPTED_EXCEPTIONS: tuple[tuple[str, str], ...] = tuple((policy, _ADOPTED) for policy in (
    "container-non-root-user", "container-drop-all-capabilities", "container-no-new-privileges",
    "container-read-only-rootfs", "container-memory-limit", "container-restart-policy",
    "container-healthcheck", "container-log-rotation", "image-tag-pinned", "image-digest-pinned",
))
"""Waived while a container is in adoption step (a), for that container's resource only. An adopted
container carries no kind label (labels are replace-forcing), so these match its resource name."""


def gpu_inventory(spec: SwarmSpec) -> dict[str, list[int]]:
    return {name: [gpu.index for gpu in node.gpus] for name, node in spec.nodes.items() if node.gpus}


def policy_config(plan: SwarmPlan) -> dict[str, dict[str, Any]]:
    placed = {service.kind for service in plan.services}
    config: dict[str, dict[str, Any]] = {"gpu-device-inventory": {"gpu_inventory": gpu_inventory(plan.spec)}}
    if any(node.oci and node.oci.allow_direct_udp for node in plan.spec.nodes.values()):
        # Tailscale's direct WireGuard port, opened on purpose by `oci.allow_direct_udp`.
        config["oci-no-public-ingress"] = {"allowed_udp_ports": [TAILSCALE_UDP_PORT]}
    for exception in EXCEPTIONS:
        if exception.kind in placed:
            config.setdefault(exception.policy, {}).setdefault("allow_kinds", []).append(exception.kind)
    for service in plan.services:
        step = adoption_step(plan.spec, service.name)
        if step is not None and step.phase == "adopt":
            for policy, _ in ADOPTED_EXCEPTIONS:
                config.setdefault(policy, {}).setdefault("allow", []).append(adopted_resource_name(service.name))
    return config


def render_policy_config(plan: SwarmPlan) -> str:
    return json.dumps(policy_config(plan), indent=2, sort_keys=True) + "\n"


def exception_reason(policy: str, kind: str | None) -> str | None:
    """Why `policy` is waived for containers of `kind`, if an exception covers it."""
    return next((e.reason for e in EXCEPTIONS if e.policy == policy and e.kind == kind), None)
