"""VRAM capacity maths against hand-computed cases (GiB = 2^30 bytes)."""

from __future__ import annotations

import pytest

from swarm.capacity import GIB, instance_capacity, kv_bytes_per_token, plan_capacity, weights_gib
from swarm.model import Deployment, ModelSpec
from swarm.stack_config import build_spec

MISTRAL_7B_AWQ = ModelSpec(source="org/mistral-7b-awq", params_b=7.24, quantization="awq", bits=4,
                           layers=32, kv_heads=8, head_dim=128, native_context=32768)
LLAMA_8B_FP16 = ModelSpec(source="org/llama-8b", params_b=8.0, layers=32, kv_heads=8, head_dim=128,
                          native_context=8192)


def test_kv_bytes_per_token_counts_k_and_v_per_layer() -> None:
    # 2 (K,V) x 32 layers x 8 heads x 128 dims x 2 bytes = 131072 B = 128 KiB; fp8 halves it.
    assert kv_bytes_per_token(MISTRAL_7B_AWQ, "auto") == 131072
    assert kv_bytes_per_token(MISTRAL_7B_AWQ, "fp8") == 65536


def test_weights_include_quantisation_overhead_only_when_quantised() -> None:
    # 7.24e9 params x 0.5 B x 1.05 = 3.801e9 B = 3.5400 GiB
    assert weights_gib(MISTRAL_7B_AWQ, 0.05) == pytest.approx(3.801e9 / GIB)
    assert weights_gib(MISTRAL_7B_AWQ, 0.05) == pytest.approx(3.5400, abs=1e-4)
    # 8e9 x 2 B = 16e9 B = 14.9012 GiB, no overhead for unquantised weights
    assert weights_gib(LLAMA_8B_FP16, 0.05) == pytest.approx(14.9012, abs=1e-4)


def test_instance_on_rtx3080_hand_computed() -> None:
    deployment = Deployment(model="m7", node="thanos", port=8002, max_model_len=8192,
                            gpu_memory_utilization=0.9, kv_cache_dtype="auto")
    cap = instance_capacity("backup", deployment, MISTRAL_7B_AWQ, 10.0, 1.5, 0.05)
    # share 0.9 x 10 = 9 GiB; KV = 9 - 3.5400 - 1.5 = 3.9600 GiB
    assert cap.share_gib == pytest.approx(9.0)
    assert cap.kv_gib == pytest.approx(3.9600, abs=1e-4)
    # 3.9600 GiB / 128 KiB = 3.9600 x 8192 = 32440 tokens; / 8192 = 3.96 sequences
    assert cap.kv_tokens == 32440
    assert cap.full_sequences == pytest.approx(3.96, abs=0.01)
    assert cap.fits


def test_instance_too_small_reports_shortfall() -> None:
    deployment = Deployment(model="m7", node="gpu-box", port=1, max_model_len=32768,
                            gpu_memory_utilization=0.2, kv_cache_dtype="fp8")
    cap = instance_capacity("tiny", deployment, MISTRAL_7B_AWQ, 24.0, 1.5, 0.05)
    # share 4.8; need 3.54 + 1.5 + 32768 x 64 KiB (= 2 GiB) = 7.04 -> short by 2.24
    assert not cap.fits
    # 4.8 - 3.54 - 1.5 = -0.24: no room for any KV cache at all
    assert cap.kv_gib == 0.0
    assert "= 7.04 GiB; short by 2.24 GiB" in cap.shortfall()


def test_kv_never_negative_when_weights_exceed_share() -> None:
    deployment = Deployment(model="l8", node="gpu-box", port=1, max_model_len=4096, gpu_memory_utilization=0.5)
    cap = instance_capacity("x", deployment, LLAMA_8B_FP16, 24.0, 1.5, 0.05)
    # 12 GiB share < 14.90 GiB of weights
    assert cap.kv_gib == 0.0
    assert cap.kv_tokens == 0
    assert not cap.fits


def test_prod_plan_numbers(prod_config) -> None:
    table = {gpu.label: gpu for gpu in plan_capacity(build_spec(prod_config))}
    starlord = table["starlord/gpu0"]
    assert starlord.utilization_sum == pytest.approx(0.94)
    # headroom (0.95 - 0.94) x 24 = 0.24 GiB
    assert starlord.headroom_gib == pytest.approx(0.24)
    primary = {i.deployment: i for i in starlord.instances}["starlord-primary"]
    # Nemo 12.2B AWQ: 12.2e9 x 0.5 x 1.05 / 2^30 = 5.9651 GiB; share 0.66 x 24 = 15.84;
    # KV 15.84 - 5.9651 - 1.5 = 8.3749 GiB; fp8 2x40x8x128 = 80 KiB/token; 8.3749 x 13107.2 = 109,771 tokens
    assert primary.weights_gib == pytest.approx(5.9651, abs=1e-4)
    assert primary.kv_tokens == pytest.approx(109_771, abs=3)
    assert primary.full_sequences >= 1.6
    assert table["thanos/gpu0"].instances[0].kv_tokens == 32440
