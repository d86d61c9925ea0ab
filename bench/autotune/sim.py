"""The simulated GPU node: a fake vLLM with a KV-cache knee and a fake GPU that heats with load.

All numbers here are in simulated seconds; :data:`SCALE` compresses them for the bench.

* Short prompts: the KV cache holds 48 sequences; TTFT climbs past ~24 sequences (prefill
  contention), throughput saturates around 24-28.
* Long prompts: the KV cache holds 8 sequences; what does not fit waits inside vLLM
  (``num_requests_waiting``, KV usage 100 %), and its TTFT is queue time plus a longer prefill.
* The GPU: temperature follows power with a 20 s time constant; power rises concavely with
  the batch and faster with long prompts. At the slowdown threshold (84 °C) it clocks down
  and every delay is 1.6x longer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from swarm_runtime.testing.fake_nvml import FakeGpu, FakeNvml, ThermalModel
from swarm_runtime.testing.fake_vllm import FakeVllm, LatencyModel

SCALE = 5.0  # simulated seconds per bench second: every time below runs 5x faster
MODEL = "sim-model"
TOKENS = 4  # output tokens per request (3 inter-token gaps)
SLOWDOWN_C = 84  # the simulated GPU's NVML slowdown threshold
MAX_TEMP_C = 85.0  # the operator's ceiling (the GPU's own threshold is lower and wins)
TAU_S = 20.0  # the GPU's thermal time constant (the tuner is not told; it assumes 30 s)
HEAT_C = 48.0  # temperature rise above ambient at full power


@dataclass(frozen=True)
class Workload:
    """A prompt mix: how many sequences fit in the KV cache and how the batch slows down."""

    name: str
    kv_capacity: int
    prefill_s: float  # TTFT of a lone request
    prefill_per_seq_s: float  # extra TTFT per running sequence
    knee: int  # past this many sequences TTFT climbs quadratically
    token_s: float  # inter-token time of a lone request
    token_per_seq_s: float
    power_seqs: float  # sequences that draw full power

    def timing(self, running: int) -> tuple[float, float]:
        n = max(1, running)
        ttft = self.prefill_s + self.prefill_per_seq_s * n + 0.003 * max(0, n - self.knee) ** 2
        return ttft, self.token_s + self.token_per_seq_s * n

    def power(self, running: int) -> float:
        return min(1.0, (running / self.power_seqs) ** 0.6) if running > 0 else 0.0


# 7 inter-token gaps' worth of decode time spread over TOKENS - 1 gaps.
_DECODE = 7 / (TOKENS - 1)
SHORT = Workload("short", kv_capacity=48, prefill_s=0.1, prefill_per_seq_s=0.1 / 24, knee=20,
                 token_s=0.04 * _DECODE, token_per_seq_s=0.004 * _DECODE, power_seqs=32)
LONG = Workload("long", kv_capacity=8, prefill_s=0.2, prefill_per_seq_s=0.02, knee=64,
                token_s=0.05 * _DECODE, token_per_seq_s=0.005 * _DECODE, power_seqs=12)


class SimulatedNode:
    """Fake vLLM + fake NVML sharing one load: the batch heats the GPU, heat slows the batch."""

    def __init__(self, seed: int, real_buckets: bool = False) -> None:
        self.rng = random.Random(seed)
        self.workload = SHORT
        self.ambient_c = 30.0
        # real_buckets: histogram buckets scaled with time, so TTFT quantiles have vLLM's own
        # (coarse) resolution in simulated seconds; by default the compressed run sees vLLM's
        # bucket bounds as they are, which is finer around the 0.45 s target.
        self.fake = FakeVllm([MODEL], name="sim", time_scale=SCALE if real_buckets else 1.0, latency=LatencyModel(
            tokens=TOKENS, fn=self.timing, capacity_fn=self.kv_capacity))
        self.thermal = ThermalModel(self.power, ambient_c=self.ambient_c, heat_c=HEAT_C, tau_s=TAU_S / SCALE,
                                    utilization_fn=lambda load: min(100.0, 400.0 * load))
        self.gpu = FakeGpu(slowdown_c=SLOWDOWN_C, power_limit_mw=320_000, memory_total_bytes=10 * 1024**3,
                           memory_used_bytes=9 * 1024**3, model=self.thermal)
        self.nvml = FakeNvml([self.gpu])

    def kv_capacity(self) -> int:
        return self.workload.kv_capacity

    def power(self) -> float:
        return self.workload.power(self.fake.running)

    def timing(self, running: int) -> tuple[float, float]:
        """``(ttft_s, per_token_s)`` in bench seconds for a batch of ``running`` sequences."""
        ttft, per_token = self.workload.timing(running)
        if self.thermal.temperature_c >= SLOWDOWN_C:
            ttft, per_token = ttft * 1.6, per_token * 1.6
        return ttft * self.rng.uniform(0.85, 1.15) / SCALE, per_token / SCALE

    def set_conditions(self, workload: Workload, ambient_c: float) -> None:
        self.thermal.advance()  # integrate the old conditions up to now first
        self.workload = workload
        self.ambient_c = self.thermal.ambient_c = ambient_c

    def reset(self, workload: Workload, ambient_c: float, running: int) -> None:
        """Start a run: conditions set, GPU at its equilibrium for ``running`` sequences."""
        self.set_conditions(workload, ambient_c)
        self.thermal.reset(ambient_c + HEAT_C * workload.power(running))
