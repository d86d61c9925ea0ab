"""VRAM capacity planner: does every vLLM instance's share of its GPU hold what it needs?

vLLM pre-allocates `gpu_memory_utilization × VRAM` per instance and carves its KV cache out
of whatever the weights and the runtime leave. An instance is feasible when its share holds

    weights  = params × bits/8 × (1 + quantisation overhead)   (overhead: scales/zeros, 0 for 16-bit)
    reserve  = runtime/activation reserve (CUDA context, graphs, activation peak)
    KV cache ≥ one full `max_model_len` sequence
             = 2 (K and V) × layers × kv_heads × head_dim × dtype bytes × max_model_len

and a GPU is feasible when its instances' utilisations sum to at most the ceiling. All sizes
are GiB (2^30 bytes), as `nvidia-smi` reports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from swarm.model import Deployment, ModelSpec, SwarmSpec

GIB = 1024**3
KV_DTYPE_BYTES = {"auto": 2, "fp8": 1}


def weights_gib(model: ModelSpec, quantization_overhead: float) -> float:
    overhead = quantization_overhead if model.quantization != "none" else 0.0
    return model.params_b * 1e9 * model.bits / 8 * (1 + overhead) / GIB


def kv_bytes_per_token(model: ModelSpec, kv_cache_dtype: str) -> int:
    return 2 * model.layers * model.kv_heads * model.head_dim * KV_DTYPE_BYTES[kv_cache_dtype]


@dataclass(frozen=True)
class InstanceCapacity:
    """One vLLM instance's slice of a GPU and what it holds."""

    deployment: str
    model: str
    utilization: float
    share_gib: float
    weights_gib: float
    reserve_gib: float
    kv_gib: float
    kv_bytes_per_token: int
    kv_tokens: int
    max_model_len: int
    kv_cache_dtype: str

    @property
    def full_sequences(self) -> float:
        return self.kv_tokens / self.max_model_len

    @property
    def one_sequence_gib(self) -> float:
        return self.kv_bytes_per_token * self.max_model_len / GIB

    @property
    def fits(self) -> bool:
        return self.kv_tokens >= self.max_model_len

    def shortfall(self) -> str:
        """The arithmetic of a share that is too small, for error messages."""
        need = self.weights_gib + self.reserve_gib + self.one_sequence_gib
        return (
            f"share {self.share_gib:.2f} GiB ({self.utilization:.2f} of the GPU) must hold weights "
            f"{self.weights_gib:.2f} GiB + runtime reserve {self.reserve_gib:.2f} GiB + KV cache for one "
            f"{self.max_model_len}-token sequence {self.one_sequence_gib:.2f} GiB "
            f"({self.kv_bytes_per_token // 1024} KiB/token at {self.kv_cache_dtype}) = {need:.2f} GiB; "
            f"short by {need - self.share_gib:.2f} GiB"
        )


@dataclass(frozen=True)
class GpuCapacity:
    """One physical GPU: its size, the ceiling, and the instances sharing it."""

    node: str
    index: int
    gpu_model: str
    total_gib: float
    ceiling: float
    instances: tuple[InstanceCapacity, ...]

    @property
    def label(self) -> str:
        return f"{self.node}/gpu{self.index}"

    @property
    def utilization_sum(self) -> float:
        return round(sum(instance.utilization for instance in self.instances), 6)

    @property
    def headroom_gib(self) -> float:
        """VRAM below the ceiling that no instance has claimed (negative: over-committed)."""
        return (self.ceiling - self.utilization_sum) * self.total_gib

    @property
    def over_ceiling(self) -> bool:
        return self.utilization_sum > self.ceiling


def instance_capacity(name: str, deployment: Deployment, model: ModelSpec, vram_gib: float,
                      reserve_gib: float, quantization_overhead: float) -> InstanceCapacity:
    share = deployment.gpu_memory_utilization * vram_gib
    weights = weights_gib(model, quantization_overhead)
    per_token = kv_bytes_per_token(model, deployment.kv_cache_dtype)
    kv = max(0.0, share - weights - reserve_gib)
    return InstanceCapacity(
        deployment=name,
        model=deployment.model,
        utilization=deployment.gpu_memory_utilization,
        share_gib=share,
        weights_gib=weights,
        reserve_gib=reserve_gib,
        kv_gib=kv,
        kv_bytes_per_token=per_token,
        kv_tokens=int(kv * GIB // per_token),
        max_model_len=deployment.max_model_len,
        kv_cache_dtype=deployment.kv_cache_dtype,
    )


def plan_capacity(spec: SwarmSpec) -> list[GpuCapacity]:
    """Capacity of every GPU in the swarm, including idle ones. Assumes references are valid."""
    settings = spec.capacity
    table = []
    for node_name, node in spec.nodes.items():
        for gpu in node.gpus:
            instances = tuple(
                instance_capacity(name, deployment, spec.models[deployment.model], gpu.vram_gb,
                                  settings.runtime_reserve_gb, settings.quantization_overhead)
                for name, deployment in spec.inference.items()
                if deployment.node == node_name and deployment.gpu == gpu.index
            )
            table.append(GpuCapacity(node_name, gpu.index, gpu.model, gpu.vram_gb,
                                     settings.utilization_ceiling, instances))
    return table


def capacity_rows(capacity: Iterable[GpuCapacity]) -> list[dict[str, Any]]:
    return [
        {
            "gpu": gpu.label,
            "node": gpu.node,
            "index": gpu.index,
            "model": gpu.gpu_model,
            "total_gib": round(gpu.total_gib, 3),
            "ceiling": gpu.ceiling,
            "utilization_sum": gpu.utilization_sum,
            "headroom_gib": round(gpu.headroom_gib, 3),
            "instances": [
                {
                    "deployment": i.deployment,
                    "model": i.model,
                    "utilization": i.utilization,
                    "share_gib": round(i.share_gib, 3),
                    "weights_gib": round(i.weights_gib, 3),
                    "reserve_gib": round(i.reserve_gib, 3),
                    "kv_gib": round(i.kv_gib, 3),
                    "kv_cache_dtype": i.kv_cache_dtype,
                    "kv_tokens": i.kv_tokens,
                    "max_model_len": i.max_model_len,
                    "full_sequences": round(i.full_sequences, 3),
                    "fits": i.fits,
                }
                for i in gpu.instances
            ],
        }
        for gpu in capacity
    ]
