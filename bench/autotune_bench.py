#!/usr/bin/env python
"""Benchmark for swarm-autotuner: goodput, settling and thermal margin against fixed caps.

Everything on 127.0.0.1: the real ``swarm-router`` (subprocess), the fake vLLM with a
KV-cache knee and a fake GPU that heats with load (``autotune/sim.py``), open-loop Poisson
load, and the real ``Autotuner`` with the fake NVML injected. Two scenarios:

* ``stationary``: short prompts, cool room; the tuner should match the best fixed cap.
* ``phases``: short prompts, then long ones (the knee falls from ~26 to 8 sequences: the
  KV cache holds 8), then short prompts again on a hot afternoon (ambient +14 °C, the
  GPU's slowdown threshold is 84 °C).

Time compression: the whole simulation runs ``SCALE`` (5x) faster than the world it
models: request latencies, the tuner's 5 s tick and 15 s cool-down, the GPU's 20 s thermal
time constant and the phase lengths are all divided by 5, and arrival rates multiplied by 5,
so the dynamics are the same and the numbers printed are in simulated seconds.

For each scenario every fixed cap of a sweep and the tuner see the same arrival times. Per
phase it prints the tuner's goodput (requests/s whose client-observed TTFT is within 0.5 s)
against the best fixed cap of the run and the phase's own best cap, the time to settle
within 10 % of that phase's best cap after a workload shift, and the peak temperature's
margin to the slowdown threshold. The last line is the machine-readable summary.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _support import stop_process
from autotune.policies import PRODUCTION_MARGIN_C, Policy, autotuner, fixed, seeds_rule
from autotune.report import MARGIN_GOAL_C, Comparison, PhaseStats, phase_stats, print_comparison, print_run
from autotune.router import start_router
from autotune.run import Run, run_policy
from autotune.scenarios import Scenario, phase_changing, stationary
from autotune.sim import SCALE, SimulatedNode


async def sweep(scenario: Scenario, node: SimulatedNode, router_url: str, seed: int,
                with_seeds_rule: bool, margin_c: float, tuner_runs: int) -> dict[str, float]:
    """Every policy once, the tuner ``tuner_runs`` times; the scenario's ratios, each the mean over
    the tuner's runs (``*_min``: the worst run's)."""
    print(f"\n[{scenario.name}] " + " -> ".join(f"{p.name} {p.duration_s:g}s" for p in scenario.phases)
          + f" after a {scenario.warmup.duration_s:g}s warm-up; {scenario.arrival_rate:g} req/s offered")
    print("  policy      " + "  ".join(f"{p.name[:6]:>6} {'cap':>5} {'maxC':>5}" for p in scenario.phases))
    fixed_stats: dict[int, list[PhaseStats]] = {}
    policies: list[tuple[str, Policy]] = [(f"fixed-{c}", fixed(c)) for c in scenario.sweep]
    if with_seeds_rule:
        policies.append(("seeds-rule", seeds_rule))
    recommended: list[int | None] = []
    tuner_names = ["autotuner"] + [f"autotuner#{k}" for k in range(2, tuner_runs + 1)]
    policies += [(name, autotuner(recommended, margin_c)) for name in tuner_names]
    autos: list[tuple[Run, list[PhaseStats]]] = []
    for name, policy in policies:
        run = await run_policy(name, policy, scenario, node, router_url, seed)
        stats = phase_stats(run, scenario)
        print_run(run, stats)
        if name.startswith("fixed-"):
            fixed_stats[int(name.removeprefix("fixed-"))] = stats
        elif name in tuner_names:
            run.recommended = recommended[-1] if recommended else None
            autos.append((run, stats))
    results = []
    for run, stats in autos:
        if len(autos) > 1:
            print(f"[{scenario.name}] {run.policy}:")
        results.append(print_comparison(Comparison(scenario, stats, fixed_stats), run))
    if len(results) == 1:
        return results[0]
    merged = {key: sum(r[key] for r in results) / len(results) for key in results[0]}
    merged["ratio_to_best_fixed_min"] = min(r["ratio_to_best_fixed"] for r in results)
    merged["max_settle_s"] = max(r["max_settle_s"] for r in results)
    merged["min_margin_c"] = min(r["min_margin_c"] for r in results)
    ratios = " ".join(f"{r['ratio_to_best_fixed']:.3f}" for r in results)
    print(f"[{scenario.name}] the tuner's {len(results)} runs against the best fixed cap: {ratios}; "
          f"mean {merged['ratio_to_best_fixed']:.3f}")
    return merged


async def main_async(seed: int, quick: bool, only: str | None, real_buckets: bool, margin_c: float,
                     tuner_runs: int) -> int:
    node = SimulatedNode(seed, real_buckets)
    node.fake.start()
    workdir = Path(tempfile.mkdtemp(prefix="autotune-bench-"))
    proc: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        proc, router_url = await start_router(node.fake.url, workdir)
        print(f"bench: router {router_url} (swarm-router subprocess), fake vLLM {node.fake.url}; "
              f"time compressed {SCALE:g}x (all figures in simulated seconds)", flush=True)
        results = {}
        if only in (None, "stationary"):
            results["stationary"] = await sweep(stationary(quick), node, router_url, seed, with_seeds_rule=True,
                                                margin_c=margin_c, tuner_runs=tuner_runs)
        if only in (None, "phases"):
            results["phases"] = await sweep(phase_changing(quick), node, router_url, seed + 1,
                                            with_seeds_rule=False, margin_c=margin_c,
                                            tuner_runs=tuner_runs)
    finally:
        if proc is not None:
            stop_process(proc)
        node.fake.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nwall time {time.monotonic() - started:.0f}s")
    parts = []
    if "stationary" in results:
        parts.append(f"stationary_ratio={results['stationary']['ratio_to_best_fixed']:.3f}")
    if "phases" in results:
        r = results["phases"]
        if "ratio_to_best_fixed_min" in r:
            parts.append(f"phases_ratio_min={r['ratio_to_best_fixed_min']:.3f}")
        parts += [f"phases_ratio={r['ratio_to_best_fixed']:.3f}", f"phases_oracle_ratio={r['oracle_ratio']:.3f}",
                  f"max_settle_s={r['max_settle_s']:.0f}", f"min_margin_c={r['min_margin_c']:.1f}"]
    print(" ".join(parts))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smoke test: short phases, small sweeps")
    parser.add_argument("--scenario", choices=["stationary", "phases"], default=None, help="run only one")
    parser.add_argument("--real-buckets", action="store_true",
                        help="scale the fake's histogram buckets with time: vLLM's own TTFT resolution")
    parser.add_argument("--margin-c", type=float, default=PRODUCTION_MARGIN_C,
                        help="the tuner's thermal.margin_c (default: production's); the sweep counts a fixed "
                             f"cap only if it stayed {MARGIN_GOAL_C:g} C under the slowdown threshold")
    parser.add_argument("--tuner-runs", type=int, default=1,
                        help="run the tuner this many times against one sweep: its spread, and ratios "
                             "averaged over the runs (default 1)")
    args = parser.parse_args(argv)
    if not 1 <= args.tuner_runs <= 20:
        parser.error(f"--tuner-runs must be between 1 and 20, got {args.tuner_runs}")
    run = main_async(args.seed, args.quick, args.scenario, args.real_buckets, args.margin_c, args.tuner_runs)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run)
    return uvloop.run(run)


if __name__ == "__main__":
    sys.exit(main())
