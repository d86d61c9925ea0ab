"""One policy through one scenario: conditions switched on schedule, load offered, all recorded."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field

from autotune.load import Outcome, offer_load
from autotune.policies import SAMPLE_S, Caps, Policy
from autotune.scenarios import Scenario
from autotune.sim import SCALE, SimulatedNode


@dataclass
class Run:
    """Everything one run produced; times are loop times in bench seconds."""

    policy: str
    measure_start: float  # end of the warm-up
    outcomes: list[Outcome]
    caps: Caps
    temps: list[tuple[float, float]]
    recommended: int | None = None
    extra: dict[str, float] = field(default_factory=dict)


async def _conduct(scenario: Scenario, node: SimulatedNode, t0: float, stop: asyncio.Event) -> None:
    """Switch the node's workload and ambient at each phase boundary."""
    loop = asyncio.get_running_loop()
    at = t0 + scenario.warmup.duration_s / SCALE
    for phase in scenario.phases:
        delay = at - loop.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        if stop.is_set():
            return
        node.set_conditions(phase.workload, phase.ambient_c)
        at += phase.duration_s / SCALE


async def _watch(node: SimulatedNode, stop: asyncio.Event, temps: list[tuple[float, float]]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        temps.append((loop.time(), node.thermal.advance()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


async def _idle(node: SimulatedNode) -> None:
    """Let the previous run's stragglers leave the fake engine (bounded)."""
    for _ in range(100):
        if node.fake.running == 0 and node.fake.waiting == 0:
            return
        await asyncio.sleep(0.05)


async def run_policy(name: str, policy: Policy, scenario: Scenario, node: SimulatedNode, router_url: str,
                     seed: int) -> Run:
    await _idle(node)
    node.reset(scenario.warmup.workload, scenario.warmup.ambient_c, running=16)
    stop = asyncio.Event()
    caps: Caps = []
    temps: list[tuple[float, float]] = []
    loop = asyncio.get_running_loop()
    controller = asyncio.create_task(policy(router_url, node, stop, caps))
    await asyncio.sleep(0.05)  # the policy's first push lands before the first request
    t0 = loop.time()
    tasks = [asyncio.create_task(_conduct(scenario, node, t0, stop)), asyncio.create_task(_watch(node, stop, temps))]
    try:
        # Common random numbers: every policy of a scenario sees the same arrival times.
        outcomes = await offer_load(router_url, scenario.arrival_rate * SCALE, scenario.duration_s / SCALE,
                                    random.Random(seed), t0)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(controller, *tasks), 10)
    return Run(policy=name, measure_start=t0 + scenario.warmup.duration_s / SCALE, outcomes=outcomes,
               caps=caps, temps=temps)
