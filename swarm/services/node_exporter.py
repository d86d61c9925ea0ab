"""node-exporter: host metrics (CPU, memory, filesystems) on every node, scraped by Prometheus.

It reads the host through a read-only bind of `/` at `/host` (`--path.rootfs`), so it needs
no host PID or network namespace; network counters are then the container's own (use the
tailnet's and the router's metrics for traffic). Policy exception: the `/` mount.

It lists the mounts of its own mount namespace, where Docker bind-mounts the container's
/etc/hosts, /etc/hostname and /etc/resolv.conf from the host's disk: they would show as three
more filesystems of that disk (and DiskFilling fire once for each), so they are excluded.
"""

from __future__ import annotations

from collections.abc import Iterator

from swarm.errors import key_path
from swarm.plan.types import Healthcheck, Mount, PulledImage, ServicePlan
from swarm.services.base import PlanContext

KIND = "node-exporter"
PORT = 9100
HOST_ROOT = "/host"
# prom/node-exporter v1.9.1: the same digest pinned in six unrelated public repositories (compose
# files, a NixOS module, image allow-lists); upstream publishes it for amd64, arm64 and more.
IMAGE = PulledImage("prom/node-exporter", "v1.9.1",
                    "sha256:d00a542e409ee618a4edc67da14dd48c5da66726bbd5537ab2af9c1dfc442c8a",
                    frozenset({"amd64", "arm64"}))
# Go RE2 syntax (node_exporter's regexp package): no look-around, no back-references.
MOUNTS_EXCLUDE = r"^/(dev|proc|sys|run|var/lib/docker/.+|var/lib/containers/.+|etc/(hosts|hostname|resolv\.conf))($|/)"


def instance_name(node: str) -> str:
    return f"{KIND}-{node}"


def build(ctx: PlanContext) -> Iterator[ServicePlan]:
    for node in ctx.spec.nodes:
        yield ServicePlan(
            name=instance_name(node), kind=KIND, node=node, origin=key_path("agents", "node_exporter_port"),
            image=IMAGE,
            command=(f"--path.rootfs={HOST_ROOT}", f"--web.listen-address=:{PORT}",
                     f"--collector.filesystem.mount-points-exclude={MOUNTS_EXCLUDE}"),
            # the image's busybox has wget
            healthcheck=Healthcheck(test=("wget", "-q", "--spider", f"http://127.0.0.1:{PORT}/metrics")),
            memory_mb=64, cpus=0.25,
            user="65534:65534",
            ports=ctx.publish(node, PORT, ctx.spec.agents.node_exporter_port),
            internal_port=PORT,
            mounts=(Mount(target=HOST_ROOT, host_path="/", read_only=True),),
        )
