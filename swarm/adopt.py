"""Adopting a container that already runs: `docker inspect` JSON -> the `adopt:` config block.

pulumi-docker wraps kreuzwerker/terraform-provider-docker. On import its read
(`resourceDockerContainerRead`) fills the state from `docker inspect`; after that, any
difference between the program's inputs and that state in a replace-forcing input (image,
name, read_only, user, capabilities, mounts, network_mode, log options, ...) is a
replacement, which Pulumi refuses for an imported, protected resource. So the adopt step
declares exactly what the read fills in, and leaves out what it never reads back on import:
`env` and `labels` (deliberately skipped upstream), `ports` and `networks_advanced` (only
read when already in state), `volumes` (binds), `log_opts` (only when already in state) and
`upload`. Declaring any of those would force a replacement.

`python -m swarm adopt-config --service qdrant < inspect.json` prints the block; the
operator pastes it under `ai-swarm:services.<service>.adopt`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, Literal

import yaml
from pydantic import ValidationError

from swarm.model import Adoption, SwarmSpec
from swarm.provider_readback import go_duration, nano_cpus

MIB = 1024 * 1024
STORAGE_TARGET = "/qdrant/storage"
# HostConfig fields the provider reads back and forces a replacement on, which the adoption
# block does not carry: a container using them has to be adopted by hand.
UNSUPPORTED_HOST_CONFIG = ("Sysctls", "GroupAdd", "ExtraHosts", "StorageOpt", "UsernsMode")

Phase = Literal["pending", "adopt", "hardened"]


class AdoptError(ValueError):
    """The inspected container cannot be described by an adoption block (message says why)."""


@dataclass(frozen=True)
class AdoptionStep:
    """Where a service stands in its adoption.

    `pending`: `adopt: true`, no block yet: the running container is left alone (no resource).
    `adopt`: the container is imported by `container_id` with exactly `adoption.inputs`.
    `hardened`: the ID was removed: the service's own hardened definition (data kept)."""

    service: str
    phase: Phase
    adoption: Adoption | None = None

    @property
    def container_id(self) -> str | None:
        return self.adoption.container_id if self.adoption else None


def adoption_step(spec: SwarmSpec, service: str) -> AdoptionStep | None:
    """The service's adoption step, or None when it was never adopted."""
    configured = spec.services.get(service)
    if configured is None or configured.adopt is False:
        return None
    if configured.adopt is True:
        return AdoptionStep(service, "pending")
    phase: Phase = "adopt" if configured.adopt.container_id else "hardened"
    return AdoptionStep(service, phase, configured.adopt)


def adopted_resource_name(service: str) -> str:
    """The logical name of an adopted container's resource (the policy allow-list matches it)."""
    return f"{service}-container"


def _strings(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


def _mounts(host: Mapping[str, Any]) -> list[dict[str, Any]]:
    mounts = []
    for mount in host.get("Mounts") or []:
        entry: dict[str, Any] = {"target": mount["Target"], "source": mount.get("Source", ""),
                                 "type": mount["Type"], "read_only": bool(mount.get("ReadOnly", False))}
        if mount.get("BindOptions") or mount.get("VolumeOptions") or mount.get("TmpfsOptions"):
            raise AdoptError(f"mount {mount['Target']!r} has bind/volume/tmpfs options; the adoption block "
                             "does not carry them (the provider reads them back): adopt this container by hand")
        mounts.append(entry)
    return mounts


def _healthcheck(config: Mapping[str, Any]) -> dict[str, Any] | None:
    check = config.get("Healthcheck")
    if not check:
        return None
    return {"tests": _strings(check.get("Test")),
            "interval": go_duration(int(check.get("Interval", 0))),
            "timeout": go_duration(int(check.get("Timeout", 0))),
            "start_period": go_duration(int(check.get("StartPeriod", 0))),
            "start_interval": go_duration(int(check.get("StartInterval", 0))),
            "retries": int(check.get("Retries", 0))}


def _published(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    seen: set[tuple[int, int, str, str]] = set()
    for spec, bindings in (settings.get("Ports") or {}).items():
        internal, _, protocol = spec.partition("/")
        for binding in bindings or []:
            ip = binding.get("HostIp") or "0.0.0.0"
            seen.add((int(internal), int(binding["HostPort"]), ip, protocol or "tcp"))
    return [{"internal": i, "external": e, "ip": ip, "protocol": p} for i, e, ip, p in sorted(seen)]


def adoption_from_inspect(document: Any) -> Adoption:
    """The adoption block for one container's `docker inspect` output (a list of one, or the object)."""
    if isinstance(document, list):
        if len(document) != 1:
            raise AdoptError(f"expected the inspect output of exactly one container, got {len(document)}")
        document = document[0]
    if not isinstance(document, Mapping) or "HostConfig" not in document or "Config" not in document:
        raise AdoptError("not `docker inspect <container>` output (no Config/HostConfig)")
    config, host = document["Config"], document["HostConfig"]
    used = [key for key in UNSUPPORTED_HOST_CONFIG if host.get(key)]
    if config.get("Domainname"):
        used.append("Domainname")
    if used:
        raise AdoptError(f"the container sets {used}, which the provider reads back and the adoption block "
                         "does not carry: adopt this container by hand")
    memory_swap = int(host.get("MemorySwap") or 0)
    restart = host.get("RestartPolicy") or {}
    inputs = {
        "name": str(document["Name"]).lstrip("/"),
        "image": config["Image"],
        "command": _strings(config.get("Cmd")),
        "entrypoints": _strings(config.get("Entrypoint")),
        "user": config.get("User") or "",
        "working_dir": config.get("WorkingDir") or "",
        "restart": restart.get("Name") or "no",
        "max_retry_count": int(restart.get("MaximumRetryCount") or 0),
        "read_only": bool(host.get("ReadonlyRootfs")),
        "privileged": bool(host.get("Privileged")),
        "publish_all_ports": bool(host.get("PublishAllPorts")),
        "network_mode": host.get("NetworkMode") or "bridge",
        "cap_add": _strings(host.get("CapAdd")),
        "cap_drop": _strings(host.get("CapDrop")),
        "security_opts": _strings(host.get("SecurityOpt")),
        "dns": _strings(host.get("Dns")),
        "dns_opts": _strings(host.get("DnsOptions")),
        "dns_search": _strings(host.get("DnsSearch")),
        "mounts": _mounts(host),
        "tmpfs": dict(host.get("Tmpfs") or {}),
        "memory_mb": int(host.get("Memory") or 0) // MIB,
        "memory_swap_mb": memory_swap // MIB if memory_swap > 0 else memory_swap,
        "shm_size_mb": int(host.get("ShmSize") or 0) // MIB,
        "cpus": nano_cpus(int(host["NanoCpus"])) if host.get("NanoCpus") else None,
        "log_driver": (host.get("LogConfig") or {}).get("Type") or "json-file",
        "healthcheck": _healthcheck(config),
        "init": bool(host.get("Init")),
        "tty": bool(config.get("Tty")),
        "stdin_open": bool(config.get("OpenStdin")),
    }
    try:
        return Adoption.model_validate({
            "container_id": document["Id"], "inputs": inputs,
            "published": _published(document.get("NetworkSettings") or {}),
            "binds": _strings(host.get("Binds")),
        })
    except ValidationError as exc:
        raise AdoptError(f"the inspected container does not fit the adoption block: {exc}") from exc


def adopt_config_text(service: str, adoption: Adoption) -> str:
    """The YAML to paste under `ai-swarm:services.<service>` (replacing `adopt: true`)."""
    block = adoption.model_dump(mode="json", exclude_defaults=True)
    block["container_id"] = adoption.container_id
    body = yaml.safe_dump({"adopt": block}, sort_keys=False, default_flow_style=False)
    return (f"# ai-swarm:services.{service}: paste under the service (keep node/port), then `python -m swarm plan`.\n"
            "# Step (a) imports the container with exactly these inputs; remove container_id for step (b).\n"
            + body)


def read_inspect(text: str) -> Adoption:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AdoptError(f"stdin is not JSON: {exc}") from exc
    return adoption_from_inspect(document)


def storage_location(adoption: Adoption, target: str = STORAGE_TARGET) -> tuple[str, str] | None:
    """Where the adopted container keeps `target`: ('volume' | 'bind', source), if it says."""
    for mount in adoption.inputs.mounts:
        if mount.target.rstrip("/") == target and mount.type in ("volume", "bind") and mount.source:
            return mount.type, mount.source
    for bind in adoption.binds:
        source, _, rest = bind.partition(":")
        if rest.split(":")[0].rstrip("/") == target:
            return ("bind" if source.startswith("/") else "volume"), source
    return None


def adopt_config_command(service: str, stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> int:
    """`python -m swarm adopt-config --service NAME < inspect.json`: 0 and the block, or 2 and why."""
    try:
        adoption = read_inspect(stdin.read())
    except AdoptError as exc:
        print(f"swarm adopt-config: {exc}", file=stderr)
        return 2
    stdout.write(adopt_config_text(service, adoption))
    return 0
