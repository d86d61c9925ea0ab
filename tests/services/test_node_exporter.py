"""node-exporter's filesystem exclusions, as the planned command passes them: the files Docker
bind-mounts into every container are no filesystems of the host, while the host's own are kept."""

from __future__ import annotations

import re

from swarm.plan import SwarmPlan

FLAG = "--collector.filesystem.mount-points-exclude="
# Mount points as node_exporter reports them with --path.rootfs=/host: the rootfs prefix is
# stripped from the host's mounts; the container's own binds keep their path.
DOCKER_BINDS = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf")
HOST_FILESYSTEMS = ("/", "/boot", "/boot/efi", "/home", "/srv/models", "/var/lib/docker", "/etc/hosts.d",
                    "/mnt/resolv.conf")
PSEUDO = ("/dev/shm", "/proc", "/sys/fs/cgroup", "/run/user/1000", "/var/lib/docker/overlay2/abc/merged")


def test_docker_binds_are_not_counted_as_host_filesystems(prod_plan: SwarmPlan) -> None:
    for exporter in prod_plan.of_kind("node-exporter"):
        flag = next(arg for arg in exporter.command if arg.startswith(FLAG))
        pattern = flag.removeprefix(FLAG)
        # node_exporter compiles it with Go's RE2: no look-around or back-references
        assert not re.search(r"\(\?[=!<]|\\[1-9]", pattern), pattern
        excluded = re.compile(pattern)
        for mount in (*DOCKER_BINDS, *PSEUDO):
            assert excluded.match(mount), (exporter.name, mount)
        for mount in HOST_FILESYSTEMS:
            assert not excluded.match(mount), (exporter.name, mount)
