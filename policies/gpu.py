"""GPU rules: nvidia device requests only for GPUs the stack model declares."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from swarm.kinds import LABEL_NODE

from ._props import CONTAINER, dig, fully_known, items, kind_of, labels, never_started, resource_rule

Props = dict[str, Any]
Config = Mapping[str, Any]


def nvidia_requests(props: Props) -> list[Mapping[str, Any]]:
    return [r for r in items(props.get("deviceRequests"))
            if isinstance(r, Mapping) and str(r.get("driver") or "").lower() == "nvidia"]


def check_inventory(props: Props, cfg: Config) -> Iterator[str]:
    inventory: Mapping[str, Any] = cfg["gpu_inventory"] or {}
    node = labels(props).get(LABEL_NODE)
    if props.get("gpus"):
        yield "gpus=... requests GPUs implicitly; use device_requests with driver='nvidia' and device_ids."
    requests = nvidia_requests(props)
    if not requests or not fully_known(props.get("labels")):
        return
    if node is None:
        yield "requests an nvidia GPU but has no 'ai-swarm.node' label; label the container with its node."
        return
    if node not in inventory:
        yield f"node {node!r} has no GPU in gpu_inventory {dict(inventory)}; place the service on a GPU node."
        return
    declared = {str(int(i)) if isinstance(i, int | float) else str(i) for i in inventory[node] or []}
    for request in requests:
        ids = [str(i) for i in items(request.get("deviceIds"))]
        if not ids:
            yield (f"nvidia request without device_ids (count={request.get('count')!r}); "
                   f"pin device_ids to indices of {node!r}: {sorted(declared)}.")
        for device in ids:
            if device not in declared:
                yield (f"GPU index {device} is not declared for {node!r} (has {sorted(declared)}); "
                       "fix device_ids.")


def check_vllm_gpu(props: Props, _: Config) -> Iterator[str]:
    if kind_of(props) != "vllm" or never_started(props) or not fully_known(props.get("deviceRequests")):
        return
    caps = {str(c).lower() for r in nvidia_requests(props) for c in items(dig(r, "capabilities", default=[]))}
    if "gpu" not in caps:
        yield ("vLLM container has no nvidia device request with capability 'gpu'; add device_requests="
               "[ContainerDeviceRequestArgs(driver='nvidia', device_ids=['0'], capabilities=['gpu'])].")


INVENTORY_SCHEMA = {
    "type": "object",
    "additionalProperties": {"type": "array", "items": {"type": "integer"}},
    "default": {"starlord": [0], "thanos": [0]},
    "description": "Node name -> GPU indices the stack model declares.",
}

POLICIES = [
    resource_rule("gpu-device-inventory", "nvidia device requests only on declared nodes and GPU indices.",
                  CONTAINER, check_inventory, gpu_inventory=INVENTORY_SCHEMA),
    resource_rule("vllm-requests-gpu", "Every vLLM container requests an nvidia GPU.",
                  CONTAINER, check_vllm_gpu),
]
