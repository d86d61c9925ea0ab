"""swarm-autotuner: online, GPU-aware concurrency tuning for vLLM backends behind swarm-router.

The pure control law lives in :mod:`.limit` (``update(sample) -> int``); probes
(:mod:`.nvml_probe`, :mod:`.vllm_probe`) produce samples, :mod:`.actuator` enforces the
limit at the router, :mod:`.loop` wires them together. Importing this package starts nothing.
"""

from swarm_runtime.autotuner.config import AutotunerConfig, load_config

__all__ = ["AutotunerConfig", "load_config"]
