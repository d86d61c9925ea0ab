"""The whole tuner over real HTTP: fake vLLM, fake NVML, the real router; every degraded mode."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from swarm_runtime.autotuner.config import ConfigError, parse_config
from swarm_runtime.autotuner.loop import Autotuner
from swarm_runtime.router.app import build_app
from swarm_runtime.router.config import RouterConfig
from swarm_runtime.testing.fake_nvml import FakeGpu, FakeNvml
from swarm_runtime.testing.fake_vllm import FakeVllm, LatencyModel

from tests.runtime.support import FakeClock, free_port

ADMIN = "loop-admin-key"




@asynccontextmanager
async def router(vllm_url: str, port: int = 0) -> AsyncIterator[str]:
    cfg = RouterConfig.model_validate({
        "api_key_env": None,
        "backends": [{"name": "gpu-a", "url": vllm_url, "models": ["m"], "max_concurrency": 4}],
        "health": {"interval_s": 60, "scrape_interval_s": 60},
    })
    runner = web.AppRunner(build_app(cfg, {"ROUTER_ADMIN_KEY": ADMIN}))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def router_limit(url: str) -> int:
    async with aiohttp.ClientSession() as s, s.get(url + "/admin/backends",
                                                   headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
        return int((await resp.json())[0]["limit"])


async def traffic(vllm_url: str, n: int = 4) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1}
    async with aiohttp.ClientSession() as s:
        async def one() -> None:
            async with s.post(vllm_url + "/v1/chat/completions", json=body) as resp:
                await resp.read()
        await asyncio.gather(*(one() for _ in range(n)))


def config(router_url: str, vllm_url: str, **extra: Any) -> Any:
    data: dict[str, Any] = {
        "router": {"url": router_url, "backoff_initial_s": 0.01, "backoff_max_s": 0.01, "timeout_s": 0.5},
        "listen": {"host": "127.0.0.1", "port": 0},
        "interval_s": 0.05,
        "targets": [{"backend": "gpu-a", "vllm_url": vllm_url, "gpu_index": 0, "ttft_target_s": 0.5,
                     "min_limit": 2, "max_limit": 32, "initial_limit": 16}],
        # Additive growth keeps the expected limits below easy to follow (16, 17, 18...).
        "control": {"cooldown_s": 10, "smoothing_window": 1, "max_growth_ratio": 1.0},
    }
    data.update(extra)
    return parse_config(data)


async def scrape(tuner: Autotuner, path: str = "/metrics") -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{tuner.port}{path}") as resp:
        return resp.status, await resp.text()


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{labels} not in metrics")


@pytest.fixture
def fake_vllm() -> Any:
    fake = FakeVllm(["m"], latency=LatencyModel(ttft_s=0.01, per_token_s=0.0)).start()
    fake.set_metrics_override(running=16)  # the cap is binding
    yield fake
    fake.stop()


def test_grows_pushes_and_exports(fake_vllm: FakeVllm) -> None:
    gpu = FakeGpu(temperature_c=60, slowdown_c=90, utilization_pct=95)

    async def scenario() -> None:
        async with router(fake_vllm.url) as url:
            clock = FakeClock(1000.0)
            tuner = Autotuner(config(url, fake_vllm.url), nvml=FakeNvml([gpu]), clock=clock, admin_key=ADMIN)
            await tuner.start()
            try:
                await tuner.tick()  # first scrape: baseline only
                assert await router_limit(url) == 16
                for _ in range(3):
                    await traffic(fake_vllm.url)
                    clock.t += 1
                    await tuner.tick()
                assert await router_limit(url) == 19
                status, text = await scrape(tuner)
                assert status == 200
                assert metric(text, "swarm_autotuner_limit", backend="gpu-a") == 19
                assert metric(text, "swarm_autotuner_decisions_total", backend="gpu-a", reason="grow") == 3
                assert metric(text, "swarm_autotuner_gpu_temperature_celsius", backend="gpu-a", gpu="0") == 60
                assert metric(text, "swarm_autotuner_gpu_temperature_ceiling_celsius", gpu="0") == 85
                assert metric(text, "swarm_autotuner_vllm_running", backend="gpu-a") == 16
                assert 0 < metric(text, "swarm_autotuner_vllm_ttft_seconds", backend="gpu-a") <= 0.02
                assert metric(text, "swarm_autotuner_recommended_max_num_seqs", backend="gpu-a") == 24
                assert metric(text, "swarm_autotuner_limit_applied", backend="gpu-a") == 1
                assert metric(text, "swarm_autotuner_dry_run") == 0

                gpu.temperature_c = 82  # within 5 °C of the 85 °C ceiling
                await traffic(fake_vllm.url)
                clock.t += 1
                await tuner.tick()
                assert await router_limit(url) == 14  # floor(19 * 0.75)
                status, text = await scrape(tuner)
                assert metric(text, "swarm_autotuner_decisions_total", reason="cut_thermal") == 1
                status, body = await scrape(tuner, "/health")
                assert status == 200 and '"limit": 14' in body
            finally:
                await tuner.close()

    asyncio.run(scenario())


def test_serves_on_the_real_port_under_uvloop_with_every_series_present(
        fake_vllm: FakeVllm, caplog: pytest.LogCaptureFixture) -> None:
    uvloop = pytest.importorskip("uvloop")
    caplog.set_level(logging.INFO, logger="swarm_runtime.autotuner.loop")
    ports: list[int | None] = []

    async def scenario() -> None:
        tuner = Autotuner(config("http://127.0.0.1:9", fake_vllm.url, dry_run=True), nvml=FakeNvml([FakeGpu()]),
                          clock=FakeClock(1000.0), admin_key=ADMIN)
        await tuner.start()
        ports.append(tuner.port)
        try:
            status, text = await scrape(tuner)
            assert status == 200
            # Counters exist at 0 before anything happened, so rate() and alerts see a series.
            assert metric(text, "swarm_autotuner_router_push_failures_total", backend="gpu-a") == 0
        finally:
            await tuner.close()

    uvloop.run(scenario())
    assert ports[0] is not None and ports[0] > 0
    served = [r.getMessage() for r in caplog.records if "serving /metrics" in r.getMessage()]
    assert served == [f"serving /metrics and /health on 127.0.0.1:{ports[0]}"]


def test_without_nvml_it_tunes_on_vllm_metrics(fake_vllm: FakeVllm, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)

    async def scenario() -> None:
        async with router(fake_vllm.url) as url:
            clock = FakeClock(1000.0)
            tuner = Autotuner(config(url, fake_vllm.url), nvml=FakeNvml.without_gpu(), clock=clock,
                              admin_key=ADMIN)
            await tuner.start()
            try:
                for _ in range(3):
                    await traffic(fake_vllm.url)
                    clock.t += 1
                    await tuner.tick()
                assert await router_limit(url) == 18
                _, text = await scrape(tuner)
                assert metric(text, "swarm_autotuner_gpu_up", backend="gpu-a", gpu="0") == 0
            finally:
                await tuner.close()

    asyncio.run(scenario())
    nvml_lines = [r.getMessage() for r in caplog.records if "NVML" in r.getMessage()]
    assert len(nvml_lines) == 1 and "vLLM metrics only" in nvml_lines[0]


def test_router_down_keeps_computing_then_catches_up(fake_vllm: FakeVllm) -> None:
    port = free_port()

    async def scenario() -> None:
        clock = FakeClock(1000.0)
        tuner = Autotuner(config(f"http://127.0.0.1:{port}", fake_vllm.url), nvml=FakeNvml([FakeGpu()]),
                          clock=clock, admin_key=ADMIN)
        await tuner.start()
        try:
            for _ in range(3):
                await traffic(fake_vllm.url)
                clock.t += 1
                await tuner.tick()
            assert tuner.controllers[0].limit.limit == 18  # computed although nothing took it
            _, text = await scrape(tuner)
            assert metric(text, "swarm_autotuner_limit_applied", backend="gpu-a") == 0
            assert metric(text, "swarm_autotuner_router_push_failures_total", backend="gpu-a") >= 1
            async with router(fake_vllm.url, port=port) as url:
                await traffic(fake_vllm.url)
                clock.t += 1
                await tuner.tick()
                assert await router_limit(url) == 19
        finally:
            await tuner.close()

    asyncio.run(scenario())


def test_vllm_down_holds_the_last_safe_limit(fake_vllm: FakeVllm) -> None:
    async def scenario() -> None:
        async with router(fake_vllm.url) as url:
            clock = FakeClock(1000.0)
            tuner = Autotuner(config(url, fake_vllm.url), nvml=FakeNvml([FakeGpu()]), clock=clock,
                              admin_key=ADMIN)
            await tuner.start()
            try:
                for _ in range(3):
                    await traffic(fake_vllm.url)
                    clock.t += 1
                    await tuner.tick()
                assert await router_limit(url) == 18  # 17 was the last limit proven under target
                fake_vllm.stop()
                for _ in range(3):
                    clock.t += 1
                    await tuner.tick()
                assert await router_limit(url) == 17
                _, text = await scrape(tuner)
                assert metric(text, "swarm_autotuner_vllm_up", backend="gpu-a") == 0
                assert metric(text, "swarm_autotuner_decisions_total", reason="hold_vllm_down") == 3
                _, health = await scrape(tuner, "/health")
                assert '"vllm_up": false' in health
            finally:
                await tuner.close()

    asyncio.run(scenario())


def test_dry_run_reports_but_never_pushes(fake_vllm: FakeVllm) -> None:
    async def scenario() -> None:
        async with router(fake_vllm.url) as url:
            tuner = Autotuner(config(url, fake_vllm.url, dry_run=True), nvml=FakeNvml([FakeGpu()]),
                              clock=FakeClock(1000.0), admin_key=ADMIN)
            await tuner.start()
            try:
                await tuner.run(max_ticks=3)
                assert tuner.ticks == 3
                assert await router_limit(url) == 4  # the router's own initial cap
                _, text = await scrape(tuner)
                assert metric(text, "swarm_autotuner_dry_run") == 1
                assert metric(text, "swarm_autotuner_limit", backend="gpu-a") == 16
            finally:
                await tuner.close()

    asyncio.run(scenario())


def test_cli_from_its_install_pushes_to_the_router(fake_vllm: FakeVllm, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("swarm-autotuner")
    if not exe.exists():
        pytest.skip("swarm-autotuner is not installed in this environment")

    async def scenario() -> None:
        async with router(fake_vllm.url) as url:
            cfg = tmp_path / "autotuner.yaml"
            cfg.write_text(
                f'router: {{url: "{url}"}}\nlisten: {{host: 127.0.0.1, port: {free_port()}}}\n'
                f'interval_s: 0.1\ntargets:\n  - {{backend: gpu-a, vllm_url: "{fake_vllm.url}", '
                'initial_limit: 12}\n')
            env = {**os.environ, "ROUTER_ADMIN_KEY": ADMIN}
            proc = await asyncio.create_subprocess_exec(
                str(exe), "--config", str(cfg), "--max-ticks", "3", env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=20)
            log = out.decode()
            assert proc.returncode == 0, log
            assert await router_limit(url) == 12
            assert "recommended max_num_seqs=16" in log
            assert log.count("NVML unavailable") == 1  # this machine has no GPU

    asyncio.run(scenario())


def test_a_queue_on_a_full_kv_cache_is_cut_between_ticks(fake_vllm: FakeVllm) -> None:
    fake_vllm.set_metrics_override(running=5, waiting=3, kv_cache_usage=0.99)

    async def scenario() -> None:
        async with router(fake_vllm.url) as url:
            cfg = config(url, fake_vllm.url, interval_s=0.6, control={"gauge_check_s": 0.05})
            tuner = Autotuner(cfg, nvml=FakeNvml([FakeGpu(temperature_c=50, slowdown_c=90)]), admin_key=ADMIN)
            await tuner.start()
            try:
                await tuner.run(max_ticks=2)  # no TTFT at either tick: only a check can cut
                assert await router_limit(url) == 5
                _, text = await scrape(tuner)
                assert metric(text, "swarm_autotuner_decisions_total", backend="gpu-a", reason="cut_queue") == 1
            finally:
                await tuner.close()
            off = config(url, fake_vllm.url, interval_s=0.6, control={"gauge_check_s": 0})
            tuner = Autotuner(off, nvml=FakeNvml([FakeGpu(temperature_c=50, slowdown_c=90)]), admin_key=ADMIN,
                              serve_http=False)
            await tuner.start()
            try:
                await tuner.run(max_ticks=2)
                assert tuner.controllers[0].limit.limit == 16  # 0: judged at ticks only
            finally:
                await tuner.close()

    asyncio.run(scenario())


def test_lighter_prompts_start_a_slow_start_between_ticks(fake_vllm: FakeVllm) -> None:
    fake_vllm.set_metrics_override(running=16, waiting=0, kv_cache_usage=0.8)  # 0.05 of the KV each

    async def scenario() -> None:
        async with router(fake_vllm.url) as url:
            control = {"cooldown_s": 10, "smoothing_window": 1, "gauge_check_s": 0.05}  # growth up to 1.5x
            cfg = config(url, fake_vllm.url, interval_s=0.6, control=control)
            tuner = Autotuner(cfg, nvml=FakeNvml([FakeGpu(temperature_c=50, slowdown_c=90)]), admin_key=ADMIN)
            await tuner.start()

            async def lighter_after_the_first_tick() -> None:
                while tuner.ticks < 1:
                    await asyncio.sleep(0.01)
                fake_vllm.set_metrics_override(kv_cache_usage=0.2)  # a quarter of the KV per sequence

            try:
                # No TTFT at either tick: only the check between them can grow.
                await asyncio.gather(tuner.run(max_ticks=2), asyncio.wait_for(lighter_after_the_first_tick(), 5))
                assert await router_limit(url) == 24
                _, text = await scrape(tuner)
                assert metric(text, "swarm_autotuner_decisions_total", backend="gpu-a", reason="grow") == 1
            finally:
                await tuner.close()

    asyncio.run(scenario())


def test_a_gauge_check_as_slow_as_the_tick_is_refused() -> None:
    expected = r"control.gauge_check_s \(5\) must be 0 \(off\) or shorter than interval_s \(5\)"
    with pytest.raises(ConfigError, match=expected):
        parse_config({"targets": [{"backend": "gpu-a"}], "control": {"gauge_check_s": 5}})
