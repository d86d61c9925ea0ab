"""Run the real Pulumi program under the SDK's mock engine and capture what it registers.

`pulumi.runtime.set_mocks` replaces the engine, not the SDK: every resource's inputs are
type-checked and serialised exactly as for `pulumi preview`. The capturing monitor records
what the engine would have been sent (inputs, parent, provider, dependencies, protect),
which is also what a policy pack sees. Each run happens in a fresh `contextvars.Context`,
so several plans can run in one process without sharing Pulumi's globals.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import runpy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import mocks, rpc, settings, stack
from pulumi.runtime.config import set_all_config
from pulumi.runtime.sync_await import _sync_await

PROJECT = "ai-swarm"
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CapturedResource:
    """One registration as the engine would receive it (props camelCase, secrets unwrapped)."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str | None
    inputs: Mapping[str, Any]
    provider: str | None
    protect: bool
    dependencies: tuple[str, ...]
    property_dependencies: Mapping[str, tuple[str, ...]]
    secret_paths: tuple[str, ...]
    redacted_inputs: Mapping[str, Any]
    """`inputs` with every secret value replaced by `REDACTED`, for printing."""
    replace_on_changes: tuple[str, ...] = ()
    ignore_changes: tuple[str, ...] = ()


@dataclass
class CapturedRun:
    resources: list[CapturedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


class _Mocks(pulumi.runtime.Mocks):
    """Resource state = inputs, plus the few computed outputs later inputs depend on."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        state = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            state.setdefault("imageId", state.get("name"))
            state.setdefault("repoDigest", state.get("name"))
        if args.typ == "docker:index/image:Image":
            # A built image's digest: content-addressed on the node; a stand-in under mocks.
            state.setdefault("repoDigest", f"{state.get('imageName')}@sha256:{'0' * 64}")
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        fake = _FAKE_LOOKUPS.get(args.token)
        # An empty failure list, not None: MockMonitor.Invoke iterates it (pulumi 3.272).
        return (fake(dict(args.args)) if fake else {}), []


def _fake_images(args: dict[str, Any]) -> dict[str, Any]:
    """One platform image matching the query, shaped like `oci.core.get_images`' answer."""
    version = str(args.get("operatingSystemVersion") or "24.04")
    image: dict[str, Any] = {
        "agentFeatures": [], "baseImageId": "", "billableSizeInGbs": "0", "compartmentId": "",
        "createImageAllowed": True, "definedTags": {}, "displayName": f"Canonical-Ubuntu-{version}-aarch64-2026.11.0-0",
        "freeformTags": {}, "id": f"ocid1.image.oc1..offline-ubuntu-{version}-aarch64", "imageSourceDetails": [],
        "instanceId": "", "launchMode": "PARAVIRTUALIZED", "launchOptions": [], "listingType": "NONE",
        "operatingSystem": args.get("operatingSystem") or "Canonical Ubuntu", "operatingSystemVersion": version,
        "sizeInMbs": "47694", "state": "AVAILABLE", "timeCreated": "2026-11-01T00:00:00Z",
    }
    return {**args, "id": "offline-images", "images": [image]}


def _fake_availability_domains(args: dict[str, Any]) -> dict[str, Any]:
    compartment = str(args.get("compartmentId") or "")
    return {**args, "id": "offline-ads", "availabilityDomains": [
        {"compartmentId": compartment, "id": "ocid1.availabilitydomain.oc1..offline-1", "name": "Offline:EU-AD-1"}]}


def _fake_devices(args: dict[str, Any]) -> dict[str, Any]:
    """The stack's configured nodes as tailnet devices (hostname = node name, address = tailscale_ip)."""
    nodes = pulumi.Config(PROJECT).get_object("nodes") or {}
    devices = [{
        "addresses": [str(node.get("tailscale_ip"))], "authorized": True, "blocksIncomingConnections": False,
        "clientVersion": "1.90.0", "created": "2026-01-01T00:00:00Z", "expires": "2027-01-01T00:00:00Z",
        "hostname": name, "id": f"offline-device-{name}", "isExternal": False, "keyExpiryDisabled": False,
        "lastSeen": "2026-11-30T00:00:00Z", "machineKey": "", "name": f"{name}.offline.ts.net",
        "nodeId": f"offline-node-{name}", "nodeKey": "", "os": "linux", "tags": [], "tailnetLockError": "",
        "tailnetLockKey": "", "updateAvailable": False, "user": "operator@offline",
    } for name, node in nodes.items() if isinstance(node, dict)]
    return {**args, "id": "offline-devices", "devices": devices}


_FAKE_LOOKUPS: dict[str, Any] = {
    "oci:Core/getImages:getImages": _fake_images,
    "oci:Identity/getAvailabilityDomains:getAvailabilityDomains": _fake_availability_domains,
    "tailscale:index/getDevices:getDevices": _fake_devices,
}


class _CapturingMonitor(mocks.MockMonitor):
    def __init__(self, run: CapturedRun) -> None:
        super().__init__(_Mocks())
        self.run = run

    def RegisterResource(self, request: Any) -> Any:  # gRPC method name, as in MockMonitor
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type == "pulumi:pulumi:Stack":
            return response
        raw = rpc.deserialize_properties(request.object, keep_unknowns=True)
        secret_paths: list[str] = []
        self.run.resources.append(CapturedResource(
            urn=response.urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            parent=request.parent or None,
            inputs=_unwrap_secrets(raw, "", secret_paths),
            redacted_inputs=_unwrap_secrets(raw, "", [], redact=True),
            provider=request.provider.rsplit("::", 1)[0] if request.provider else None,
            protect=bool(request.protect),
            dependencies=tuple(request.dependencies),
            property_dependencies={key: tuple(deps.urns) for key, deps in request.propertyDependencies.items()},
            secret_paths=tuple(secret_paths),
            replace_on_changes=tuple(request.replaceOnChanges),
            ignore_changes=tuple(request.ignoreChanges),
        ))
        return response


REDACTED = "[secret]"


def _unwrap_secrets(value: Any, path: str, secret_paths: list[str], redact: bool = False) -> Any:
    if rpc.is_rpc_secret(value):
        secret_paths.append(path or ".")
        return REDACTED if redact else _unwrap_secrets(rpc.unwrap_rpc_secret(value), path, secret_paths)
    if isinstance(value, dict):
        return {key: _unwrap_secrets(child, f"{path}.{key}" if path else key, secret_paths, redact)
                for key, child in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(child, f"{path}[{index}]", secret_paths, redact)
                for index, child in enumerate(value)]
    if value is rpc.UNKNOWN or isinstance(value, Unknown):
        return None
    return value


def run_program(config: Mapping[str, Any], secret_keys: frozenset[str], stack_name: str,
                program: Path = REPO_ROOT / "__main__.py") -> CapturedRun:
    """Execute `program` against mocks with `config` (full keys) and return what it registered.

    Exceptions raised by the program propagate unchanged after the runtime has settled."""
    run = CapturedRun()

    def execute() -> None:
        settings.SETTINGS.rpc_manager.clear()
        settings.SETTINGS.outputs.clear()
        monitor = _CapturingMonitor(run)
        mocks.set_mocks(monitor.mocks, project=PROJECT, stack=stack_name, preview=True, monitor=monitor)
        set_all_config({key: _as_config_text(value) for key, value in config.items()}, sorted(secret_keys))
        def program_main() -> None:
            runpy.run_path(str(program), run_name="__main__")

        _sync_await(stack.run_pulumi_func(program_main))
        root = settings.get_root_resource()
        exported = _sync_await(pulumi.Output.from_input(getattr(root, "outputs", {})).future())
        run.outputs.update(_unwrap_secrets(exported or {}, "", []))

    # Pulumi's SDK needs a current event loop; asyncio.run() elsewhere in the process
    # leaves none behind, so plans run on one loop of their own, kept for the process.
    asyncio.set_event_loop(_plan_loop())
    contextvars.Context().run(execute)
    # Registration order depends on asyncio scheduling; the plan must not.
    run.resources.sort(key=lambda resource: (resource.custom, resource.urn))
    return run


_LOOP: list[asyncio.AbstractEventLoop] = []


def _plan_loop() -> asyncio.AbstractEventLoop:
    if not _LOOP or _LOOP[0].is_closed():
        _LOOP[:] = [asyncio.new_event_loop()]
    return _LOOP[0]


def _as_config_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
