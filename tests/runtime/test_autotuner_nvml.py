"""The NVML probe against the fake at the pynvml boundary, including every degraded mode."""

from __future__ import annotations

import logging

import pynvml
import pytest
from swarm_runtime.autotuner.nvml_probe import NvmlProbe, open_probes
from swarm_runtime.testing.fake_nvml import FakeGpu, FakeNvml, ThermalModel


def test_reads_every_signal() -> None:
    gpu = FakeGpu(utilization_pct=87, memory_used_bytes=6 * 1024**3, memory_total_bytes=24 * 1024**3,
                  temperature_c=71.6, slowdown_c=88, power_mw=300_000, power_limit_mw=400_000,
                  clocks_event_reasons=0x20)
    probe = NvmlProbe(0, FakeNvml([gpu]))
    assert probe.open()
    r = probe.read()
    assert r is not None
    assert r.utilization_pct == 87
    assert r.memory_used_frac == 0.25
    assert r.temperature_c == 71  # NVML reports whole degrees
    assert r.slowdown_c == 88
    assert r.power_frac == 0.75
    assert r.thermal_throttle and not r.power_throttle
    gpu.clocks_event_reasons = 0x04
    r = probe.read()
    assert r is not None and r.power_throttle and not r.thermal_throttle


def test_unsupported_fields_read_as_none() -> None:
    gpu = FakeGpu(unsupported={"nvmlDeviceGetTemperatureThreshold", "nvmlDeviceGetPowerUsage",
                               "nvmlDeviceGetCurrentClocksEventReasons"})
    probe = NvmlProbe(0, FakeNvml([gpu]))
    assert probe.open()
    r = probe.read()
    assert r is not None
    assert (r.slowdown_c, r.power_frac, r.thermal_throttle) == (None, None, False)


def test_no_gpu_logs_one_line_and_returns_no_probes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    nvml = FakeNvml.without_gpu()
    assert open_probes([0, 1, 0], nvml) == {}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "NVML unavailable" in lines[0] and "vLLM metrics only" in lines[0]


def test_real_pynvml_without_a_gpu_degrades() -> None:
    # This machine has no NVIDIA driver: the real binding must not take the tuner down.
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:  # pragma: no cover - only on a GPU host
        pynvml.nvmlShutdown()
        pytest.skip("a GPU is present")
    probe = NvmlProbe(0, pynvml)
    assert probe.open() is False
    assert probe.read() is None
    assert "NVML" in (probe.disabled_reason or "")


def test_missing_index_and_lost_gpu(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml([FakeGpu()])
    probes = open_probes([0, 3], nvml)
    assert list(probes) == [0]
    assert any("GPU index 3 not present" in r.getMessage() for r in caplog.records)
    nvml.gpus[0].fail_reads = True
    assert probes[0].read() is None
    nvml.gpus[0].fail_reads = False
    assert probes[0].read() is not None


def test_thermal_model_follows_load_with_a_lag() -> None:
    now = [0.0]
    load = [1.0]
    model = ThermalModel(lambda: load[0], ambient_c=40, heat_c=50, tau_s=10, clock=lambda: now[0])
    gpu = FakeGpu(slowdown_c=85, model=model)
    nvml = FakeNvml([gpu])
    probe = NvmlProbe(0, nvml)
    assert probe.open()
    now[0] = 10.0  # one time constant: 63 % of the way from 40 to 90
    r = probe.read()
    assert r is not None and r.temperature_c == 71 and r.utilization_pct == 100
    assert r.power_frac is not None and r.power_frac == pytest.approx(1.0)
    now[0] = 100.0
    r = probe.read()
    assert r is not None and r.temperature_c == 89 and r.thermal_throttle  # past slowdown 85
    load[0] = 0.0
    now[0] = 200.0
    r = probe.read()
    assert r is not None and r.temperature_c == 40 and not r.thermal_throttle and r.utilization_pct == 0
