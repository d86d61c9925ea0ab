"""How an already-running container is described for adoption (`ai-swarm:services.<name>.adopt`).

`python -m swarm adopt-config` prints these from `docker inspect`; `swarm.adopt` turns them into
exactly the inputs the Docker provider reads back on import (runbook "Adopting Qdrant").
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from swarm.model_base import Port, Strict

CONTAINER_ID = r"^[0-9a-f]{64}$"


class AdoptedMount(Strict):
    """One `HostConfig.Mounts` entry of the running container, as the Docker provider reads it back."""

    target: str
    source: str = ""
    type: Literal["bind", "volume", "tmpfs"]
    read_only: bool = False


class AdoptedHealthcheck(Strict):
    """`Config.Healthcheck` with durations in Go's notation, as the provider reads it back."""

    tests: tuple[str, ...]
    interval: str = "0s"
    timeout: str = "0s"
    start_period: str = "0s"
    start_interval: str = "0s"
    retries: int = 0


class AdoptedPort(Strict):
    """A port the running container publishes (`NetworkSettings.Ports`); never sent to the provider."""

    internal: Port
    external: Port
    ip: str = "0.0.0.0"
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"


class AdoptedInputs(Strict):
    """The running container's inputs exactly as the Docker provider reads them back on import
    (`python -m swarm adopt-config` prints this block from `docker inspect`). Anything the
    provider does not read back (env, labels, ports, binds, networks, uploads, log options) is
    left out of the resource, because declaring it would force a replacement."""

    name: str
    image: str
    command: tuple[str, ...] = ()
    entrypoints: tuple[str, ...] = ()
    user: str = ""
    working_dir: str = ""
    restart: Literal["no", "on-failure", "always", "unless-stopped"] = "no"
    max_retry_count: Annotated[int, Field(ge=0)] = 0
    read_only: bool = False
    privileged: bool = False
    publish_all_ports: bool = False
    network_mode: str = "bridge"
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_opts: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    mounts: tuple[AdoptedMount, ...] = ()
    tmpfs: dict[str, str] = {}
    memory_mb: Annotated[int, Field(ge=0)] = 0
    memory_swap_mb: Annotated[int, Field(ge=-1)] = 0
    shm_size_mb: Annotated[int, Field(ge=0)] = 64
    cpus: str | None = None
    log_driver: str = "json-file"
    healthcheck: AdoptedHealthcheck | None = None
    init: bool = False
    tty: bool = False
    stdin_open: bool = False


class Adoption(Strict):
    """A container that already runs on its node and is taken over instead of created.

    Step (a): `container_id` set — the container is imported with exactly `inputs`, protected
    and retained. Step (b): `container_id` removed — the service's hardened definition, with
    its data where `published`/`binds`/`inputs.mounts` say it lives (README runbook)."""

    container_id: str | None = Field(default=None, pattern=CONTAINER_ID)
    """The full 64-hex ID (`docker inspect --format '{{.Id}}' <name>`); the provider imports by it."""
    inputs: AdoptedInputs
    published: tuple[AdoptedPort, ...] = ()
    """Ports it publishes; informational (the provider never reads ports back on import)."""
    binds: tuple[str, ...] = ()
    """`HostConfig.Binds` (`src:dst[:opts]`); informational, used to find the data in step (b)."""
