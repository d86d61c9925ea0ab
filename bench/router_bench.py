"""swarm-router benchmark: direct vs through the router, plus the mixed-GPU routing scenario.

One run prints a side-by-side table (issue 4, item 8). The router runs in its own process
pinned to CPU 0; the fake vLLM backends and the load generators share CPU 1. Non-streaming
load uses ``wrk`` when installed (apt-get install wrk), else a small aiohttp generator.
Everything binds 127.0.0.1 and every process started here is stopped here.

    .venv/bin/python bench/router_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from _support import free_port, stop_process

ROUTER_CPU, LOAD_CPU = 0, 1
API_KEY = "bench-key"
CLK_TCK = os.sysconf("SC_CLK_TCK")
GOALS = {"rps32": 3000.0, "cpu_us": 250.0, "added_ttft_ms": 0.5, "mixed_ratio": 0.7}



def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(0, {cpu})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def wait_http(url: str, timeout: float = 15.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout} s")


@contextmanager
def process(args: list[str], cpu: int, ready_url: str, env: dict[str, str] | None = None) -> Iterator[int]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log,
                                env={**os.environ, **(env or {})}, preexec_fn=lambda: pin(cpu))
        try:
            try:
                wait_http(ready_url)
            except RuntimeError:
                log.seek(0)
                sys.stderr.write(log.read().decode(errors="replace"))
                raise
            yield proc.pid
        finally:
            stop_process(proc)


@contextmanager
def fake(port: int, ttft: float, per_token: float, tokens: int, max_num_seqs: int | None = None) -> Iterator[str]:
    args = [sys.executable, "-m", "swarm_runtime.testing.fake_vllm_cli", "--port", str(port), "--model", "primary",
            "--ttft", str(ttft), "--per-token", str(per_token), "--tokens", str(tokens)]
    if max_num_seqs:
        args += ["--max-num-seqs", str(max_num_seqs)]
    url = f"http://127.0.0.1:{port}"
    with process(args, LOAD_CPU, url + "/health"):
        yield url


@contextmanager
def router(backends: list[str], strategy: str = "load", **extra: object) -> Iterator[tuple[str, int]]:
    port = free_port()
    cfg: dict[str, object] = {**extra, "listen": {"host": "127.0.0.1", "port": port}, "api_key_env": "ROUTER_API_KEY",
           "strategy": strategy, "log_level": "warning",
           "backends": [{"name": f"b{i}", "url": u, "models": ["primary"]} for i, u in enumerate(backends)]}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        json.dump(cfg, f)  # JSON is YAML
    try:
        args = [sys.executable, "-m", "swarm_runtime.router.cli", "--config", f.name]
        env = {"ROUTER_API_KEY": API_KEY, "PYTHONWARNINGS": "ignore"}
        url = f"http://127.0.0.1:{port}"
        with process(args, ROUTER_CPU, url + "/health", env) as pid:
            yield url, pid
    finally:
        os.unlink(f.name)


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def wrk_load(url: str, connections: int, seconds: float) -> Load:
    script = ('wrk.method = "POST"\n'
              'wrk.body = \'{"model": "primary", "prompt": "hello there", "max_tokens": 16}\'\n'
              'wrk.headers["Content-Type"] = "application/json"\n'
              f'wrk.headers["Authorization"] = "Bearer {API_KEY}"\n')
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", f.name,
                   url + "/v1/completions"]
        out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30,
                             preexec_fn=lambda: pin(LOAD_CPU), check=True).stdout
    finally:
        os.unlink(f.name)

    def pct(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    n_err = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, errors.groups())) if errors else 0)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Load(rps, pct("50"), pct("99"), requests, n_err)


async def _aiohttp_load(url: str, connections: int, seconds: float) -> Load:
    body = json.dumps({"model": "primary", "prompt": "hello there", "max_tokens": 16}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:
        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t = time.perf_counter()
                async with s.post(url + "/v1/completions", data=body, headers=headers) as r:
                    await r.read()
                    errors += r.status != 200
                latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(connections)])
        elapsed = time.perf_counter() - start
    latencies.sort()
    return Load(len(latencies) / elapsed, _q(latencies, 0.5) * 1e3, _q(latencies, 0.99) * 1e3, len(latencies), errors)


def _q(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def nonstream_load(url: str, connections: int, seconds: float) -> Load:
    if shutil.which("wrk"):
        return wrk_load(url, connections, seconds)
    return asyncio.run(_aiohttp_load(url, connections, seconds))


@dataclass
class Streams:
    ttfts: list[float]
    errors: int
    elapsed: float

    def add(self, other: Streams) -> None:
        self.ttfts = sorted(self.ttfts + other.ttfts)
        self.errors += other.errors
        self.elapsed += other.elapsed


def router_added_latency(url: str) -> tuple[float, float]:
    """p50/p99 (ms) of the router's own ``swarm_router_added_latency_seconds`` histogram."""
    import urllib.request

    from swarm_runtime.vllm_metrics import Histogram

    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    buckets = []
    for line in text.splitlines():
        m = re.match(r'swarm_router_added_latency_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            buckets.append((float(m.group(1)), float(m.group(2))))
    hist = Histogram(tuple(buckets), 0.0, buckets[-1][1] if buckets else 0.0)
    return ((hist.quantile(0.5) or float("nan")) * 1e3, (hist.quantile(0.99) or float("nan")) * 1e3)


def backend_shares(url: str) -> dict[str, float]:
    """Share of requests each backend served, from the router's own counters."""
    import urllib.request

    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    counts = {m.group(1): float(m.group(2)) for m in
              re.finditer(r'^swarm_router_requests_total\{backend="(b\d+)",status="200"\} (\S+)$', text, re.M)}
    total = sum(counts.values()) or 1.0
    return {k: v / total for k, v in counts.items()}


def background_cpu(seconds: float = 1.0) -> float:
    """Share of all CPUs busy before the benchmark starts (other sessions' work skews results)."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


async def _streams(url: str, arrivals: list[float] | None, workers: int, seconds: float) -> Streams:
    """Closed loop (``workers`` clients) or open loop (``arrivals`` offsets in seconds)."""
    body = json.dumps({"model": "primary", "prompt": "stream please", "stream": True}).encode()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    ttfts: list[float] = []
    errors = 0
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as s:
        async def one(i: int) -> None:
            nonlocal errors
            t = time.perf_counter()
            data = body if arrivals is None else body.replace(b"please", f"please {i}".encode())
            try:
                async with s.post(url + "/v1/completions", data=data, headers=headers) as r:
                    first = True
                    async for _ in r.content.iter_any():
                        if first:
                            ttfts.append(time.perf_counter() - t)
                            first = False
                    errors += r.status != 200
            except aiohttp.ClientError:
                errors += 1

        start = time.perf_counter()
        if arrivals is None:
            stop = start + seconds

            async def worker() -> None:
                while time.perf_counter() < stop:
                    await one(0)

            await asyncio.gather(*[worker() for _ in range(workers)])
        else:
            tasks = []
            for i, offset in enumerate(arrivals):
                delay = start + offset - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
        return Streams(sorted(ttfts), errors, time.perf_counter() - start)


def run_streams(url: str, arrivals: list[float] | None = None, workers: int = 0, seconds: float = 0) -> Streams:
    import uvloop

    return uvloop.run(_streams(url, arrivals, workers, seconds))


def peers() -> dict[str, str]:
    found = {}
    found["LiteLLM proxy"] = "installed" if shutil.which("litellm") else "not installed"
    found["vllm-router"] = ("installed" if shutil.which("vllm-router") or importlib.util.find_spec("vllm_router")
                            else "not installed")
    return found


def fmt(v: float, digits: int = 0) -> str:
    return "n/a" if v != v else f"{v:,.{digits}f}"


Row = tuple[str, str, str, str]


async def _tcp_relay(listen_port: int, target_port: int) -> None:
    """The floor for any proxy: a bare asyncio byte pipe, no HTTP parsing at all."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


@contextmanager
def tcp_relay(target: str) -> Iterator[str]:
    port = free_port()
    target_port = target.rsplit(":", 1)[1]
    with process([sys.executable, __file__, "--tcp-relay", str(port), target_port], ROUTER_CPU,
                 f"http://127.0.0.1:{port}/health"):
        yield f"http://127.0.0.1:{port}"


def throughput_rows(seconds: float, results: dict[str, float]) -> list[Row]:
    rows: list[Row] = []
    with fake(free_port(), 0.0, 0.0, 16) as backend:
        for conns in (32, 128):
            nonstream_load(backend, conns, 1.0)  # warm-up
            direct = nonstream_load(backend, conns, seconds)
            with router([backend]) as (url, pid):
                nonstream_load(url, conns, 1.0)
                before = cpu_seconds(pid)
                routed = nonstream_load(url, conns, seconds)
                cpu_us = (cpu_seconds(pid) - before) / max(1, routed.requests) * 1e6
            results[f"rps{conns}"], results[f"cpu{conns}"] = routed.rps, cpu_us
            label = f"non-stream c={conns}"
            rows.append((f"{label}: req/s", fmt(direct.rps), fmt(routed.rps),
                         f">= {GOALS['rps32']:,.0f}" if conns == 32 else ""))
            rows.append((f"{label}: p50 latency ms (added)", fmt(direct.p50_ms, 2),
                         f"{fmt(routed.p50_ms, 2)} ({routed.p50_ms - direct.p50_ms:+.2f})", ""))
            rows.append((f"{label}: p99 latency ms (added)", fmt(direct.p99_ms, 2),
                         f"{fmt(routed.p99_ms, 2)} ({routed.p99_ms - direct.p99_ms:+.2f})", ""))
            rows.append((f"{label}: router CPU us/request", "-", fmt(cpu_us, 0),
                         f"<= {GOALS['cpu_us']:.0f}" if conns == 32 else ""))
            rows.append((f"{label}: errors", str(direct.errors), str(routed.errors), "0"))
    return rows


def stream_rows(seconds: float, results: dict[str, float]) -> list[Row]:
    rows: list[Row] = []
    for clients in (16, 64):
        with (fake(free_port(), 0.01, 0.02, 32) as backend, router([backend]) as (url, pid),
              tcp_relay(backend) as relay):
            # Interleaved rounds (direct, routed, relay, ...) so background noise hits all alike.
            direct_s, routed_s, relay_s = Streams([], 0, 0.0), Streams([], 0, 0.0), Streams([], 0, 0.0)
            cpu = 0.0
            for _ in range(3):
                direct_s.add(run_streams(backend, workers=clients, seconds=seconds / 2))
                before = cpu_seconds(pid)
                routed_s.add(run_streams(url, workers=clients, seconds=seconds / 2))
                cpu += cpu_seconds(pid) - before
                relay_s.add(run_streams(relay, workers=clients, seconds=seconds / 2))
            cpu_stream = cpu / max(1, len(routed_s.ttfts)) * 1e6
            own = router_added_latency(url)
        d50, r50 = _q(direct_s.ttfts, 0.5) * 1e3, _q(routed_s.ttfts, 0.5) * 1e3
        d99, r99 = _q(direct_s.ttfts, 0.99) * 1e3, _q(routed_s.ttfts, 0.99) * 1e3
        results[f"client_added_ttft_{clients}"] = r50 - d50
        results[f"added_ttft_{clients}"] = own[0]
        label = f"streams x{clients} (32 tok, 20 ms/tok)"
        rows.append((f"{label}: streams/s", fmt(len(direct_s.ttfts) / direct_s.elapsed, 1),
                     fmt(len(routed_s.ttfts) / routed_s.elapsed, 1), ""))
        rows.append((f"{label}: client TTFT p50 ms (added)", fmt(d50, 2), f"{fmt(r50, 2)} ({r50 - d50:+.2f})",
                     f"added < {GOALS['added_ttft_ms']}"))
        rows.append((f"{label}: client TTFT p99 ms (added)", fmt(d99, 2), f"{fmt(r99, 2)} ({r99 - d99:+.2f})", ""))
        t50 = _q(relay_s.ttfts, 0.5) * 1e3
        rows.append((f"{label}: floor: bare TCP relay TTFT p50 (added)", fmt(d50, 2),
                     f"{fmt(t50, 2)} ({t50 - d50:+.2f})", ""))
        rows.append((f"{label}: router-measured added p50/p99 ms", "-", f"{own[0]:.3f} / {own[1]:.3f}",
                     f"< {GOALS['added_ttft_ms']}"))
        rows.append((f"{label}: router CPU us/stream", "-", fmt(cpu_stream, 0), ""))
        rows.append((f"{label}: errors", str(direct_s.errors), str(routed_s.errors), "0"))
    return rows


def print_table(rows: list[Row]) -> None:
    width = max(len(r[0]) for r in rows) + 2
    found = peers()
    print(f"{'metric':<{width}}{'direct':>12}{'swarm-router':>20}{'goal':>14}"
          + "".join(f"{name:>16}" for name in found))
    for metric, direct_v, routed_v, goal in rows:
        print(f"{metric:<{width}}{direct_v:>12}{routed_v:>20}{goal:>14}"
              + "".join(f"{status:>16}" for status in found.values()))


def mixed(seconds: float, results: dict[str, float]) -> None:
    """One backend 2.5x slower; open-loop Poisson arrivals at ~80 % of total capacity."""
    fast = {"ttft": 0.02, "per_token": 0.01, "tokens": 20, "seqs": 8}
    slow = {"ttft": 0.05, "per_token": 0.025, "tokens": 20, "seqs": 8}
    capacity = sum(c["seqs"] / (c["ttft"] + (c["tokens"] - 1) * c["per_token"]) for c in (fast, slow))
    rate = 0.8 * capacity
    rng = random.Random(4)
    arrivals, t = [], 0.0
    while t < seconds:
        t += rng.expovariate(rate)
        arrivals.append(t)
    print(f"\nmixed GPUs: fast backend (TTFT 20 ms, 10 ms/token, 20 tokens, max_num_seqs 8) + one 2.5x slower; "
          f"capacity {capacity:.1f} req/s, offered {rate:.1f} req/s (80 %), {len(arrivals)} streams per strategy")
    p95: dict[str, float] = {}
    for strategy in ("round_robin", "load"):
        with (fake(free_port(), fast["ttft"], fast["per_token"], int(fast["tokens"]), int(fast["seqs"])) as f_url,
              fake(free_port(), slow["ttft"], slow["per_token"], int(slow["tokens"]), int(slow["seqs"])) as s_url,
              router([f_url, s_url], strategy) as (url, _)):
            time.sleep(1.5)  # let the router scrape both backends once
            res = run_streams(url, arrivals=arrivals)
            shares = backend_shares(url)
        p95[strategy] = _q(res.ttfts, 0.95) * 1e3
        print(f"  {strategy:<12} TTFT p50 {fmt(_q(res.ttfts, 0.5) * 1e3, 1):>8} ms   p95 {fmt(p95[strategy], 1):>8} ms"
              f"   p99 {fmt(_q(res.ttfts, 0.99) * 1e3, 1):>8} ms   errors {res.errors}   "
              f"fast/slow share {shares.get('b0', 0):.0%}/{shares.get('b1', 0):.0%}")
    ratio = p95["load"] / p95["round_robin"] if p95["round_robin"] else float("nan")
    results["mixed_ratio"] = ratio
    print(f"  p95 TTFT ratio load/round-robin = {ratio:.3f} (goal <= {GOALS['mixed_ratio']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (noisier)")
    parser.add_argument("--part", choices=["all", "throughput", "streams", "mixed"], default="all")
    parser.add_argument("--tcp-relay", nargs=2, type=int, metavar=("PORT", "TARGET_PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tcp_relay:
        import uvloop

        uvloop.run(_tcp_relay(*args.tcp_relay))
        return
    seconds = 3.0 if args.quick else 6.0
    pin(LOAD_CPU)
    print(f"swarm-router benchmark: {os.cpu_count()} CPUs; router pinned to CPU {ROUTER_CPU}, "
          f"backends + load generator on CPU {LOAD_CPU}; load generator: "
          f"{'wrk' if shutil.which('wrk') else 'aiohttp'}; CPU busy before start: {background_cpu():.0%}\n")
    results: dict[str, float] = {}
    rows: list[Row] = []
    if args.part in ("all", "throughput"):
        rows += throughput_rows(seconds, results)
    if args.part in ("all", "streams"):
        rows += stream_rows(seconds, results)
    if rows:
        print_table(rows)
    if args.part in ("all", "mixed"):
        mixed(12.0 if args.quick else 25.0, results)

    print("\ngoals:")
    checks = []
    if "rps32" in results:
        checks += [("non-stream req/s at c=32 >= 3,000", results["rps32"] >= GOALS["rps32"], fmt(results["rps32"])),
                   ("router CPU per request <= 250 us (c=32)", results["cpu32"] <= GOALS["cpu_us"],
                    f"{results['cpu32']:.0f} us")]
    for clients in (16, 64):
        if f"added_ttft_{clients}" in results:
            own, client = results[f"added_ttft_{clients}"], results[f"client_added_ttft_{clients}"]
            checks.append((f"added TTFT < 0.5 ms, {clients} streams, router-measured p50",
                           own < GOALS["added_ttft_ms"], f"{own:.3f} ms"))
            checks.append((f"added TTFT < 0.5 ms, {clients} streams, client-measured p50",
                           client < GOALS["added_ttft_ms"], f"{client:+.2f} ms"))
    if "mixed_ratio" in results:
        ratio = results["mixed_ratio"]
        checks.append(("mixed p95 TTFT <= 0.7x round-robin", ratio <= GOALS["mixed_ratio"], f"{ratio:.3f}x"))
    for text, ok, value in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {text}: {value}")


if __name__ == "__main__":
    main()
