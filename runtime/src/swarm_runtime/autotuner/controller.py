"""One tuned backend: read the probes, update the limit, enforce it, publish everything."""

from __future__ import annotations

import logging

from swarm_runtime.autotuner.actuator import Actuator, PushResult
from swarm_runtime.autotuner.metrics import AutotunerMetrics
from swarm_runtime.autotuner.nvml_probe import NvmlProbe
from swarm_runtime.autotuner.recommend import MaxNumSeqsRecommender
from swarm_runtime.autotuner.thermal import thermal_ceiling
from swarm_runtime.autotuner.types import Decision, Limit, Sample
from swarm_runtime.autotuner.vllm_probe import VllmProbe

__all__ = ["TargetController"]

log = logging.getLogger(__name__)


class TargetController:
    """Glue for one backend; all policy lives in ``limit``, all I/O in the probes and actuator."""

    def __init__(self, backend: str, limit: Limit, vllm: VllmProbe, actuator: Actuator,
                 metrics: AutotunerMetrics, recommender: MaxNumSeqsRecommender,
                 gpu: NvmlProbe | None = None, gpu_index: int | None = None,
                 max_temp_c: float = 85.0, ttft_target_s: float | None = None) -> None:
        self.backend = backend
        self.limit = limit
        self.vllm = vllm
        self.gpu = gpu
        self.gpu_index = gpu_index
        self.actuator = actuator
        self.metrics = metrics
        self.recommender = recommender
        self.max_temp_c = max_temp_c
        self.last_push: PushResult | None = None
        self.last_sample: Sample | None = None
        self.recommended: int | None = None
        if ttft_target_s is not None:
            metrics.ttft_target.labels(backend).set(ttft_target_s)
        metrics.limit.labels(backend).set(limit.limit)
        metrics.push_failures.labels(backend)  # the series exists (at 0) before any failure

    async def tick(self) -> Decision:
        gpu = self.gpu.read() if self.gpu is not None else None
        vllm = await self.vllm.read()
        sample = Sample(vllm=vllm, gpu=gpu)
        self.last_sample = sample
        self.limit.update(sample)
        decision = self.limit.last_decision
        if decision is None:
            raise RuntimeError(f"{type(self.limit).__name__}.update() recorded no decision")
        self.metrics.observe_vllm(self.backend, vllm)
        if self.gpu_index is not None:
            ceiling = thermal_ceiling(gpu, self.max_temp_c) if gpu is not None else self.max_temp_c
            self.metrics.observe_gpu(self.backend, self.gpu_index, gpu, ceiling)
        await self._enforce(decision)
        recommended = self.recommender.observe(decision.limit)
        if recommended is not None and recommended != self.recommended:
            log.info("backend %s: recommended max_num_seqs=%d for the next pulumi up", self.backend,
                     recommended)
            self.recommended = recommended
            self.metrics.recommended.labels(self.backend).set(recommended)
        return decision

    async def check_gauges(self) -> Decision | None:
        """Between ticks: vLLM's gauges and the GPU now; a decision is enforced at once (see
        ``Limit.check_gauges``)."""
        gauges = await self.vllm.read_gauges()
        if gauges is None:
            return None
        gpu = self.gpu.read() if self.gpu is not None else None
        decision = self.limit.check_gauges(Sample(vllm=gauges, gpu=gpu))
        if decision is not None:
            await self._enforce(decision)
        return decision

    async def _enforce(self, decision: Decision) -> None:
        """Publish ``decision`` (metrics, log) and push its limit to the router."""
        self.metrics.observe_decision(self.backend, decision, self.limit.safe_limit)
        if decision.limit != decision.previous:
            log.info("backend %s: limit %d -> %d (%s)", self.backend, decision.previous, decision.limit,
                     decision.reason.value)
        else:
            log.debug("backend %s: limit %d (%s)", self.backend, decision.limit, decision.reason.value)
        self.last_push = await self.actuator.push(self.backend, decision.limit)
        if self.last_push.attempted and not self.last_push.applied:
            self.metrics.push_failures.labels(self.backend).inc()
        self.metrics.limit_applied.labels(self.backend).set(int(self.last_push.applied))
