"""What a run offers the node over time: a warm-up, then measured phases (simulated seconds)."""

from __future__ import annotations

from dataclasses import dataclass

from autotune.sim import LONG, SHORT, Workload

COOL_C = 30.0
HOT_C = COOL_C + 14.0  # a hot afternoon


@dataclass(frozen=True)
class Phase:
    name: str
    workload: Workload
    ambient_c: float
    duration_s: float


@dataclass(frozen=True)
class Scenario:
    """Every run starts at cap 16 with the GPU at its equilibrium there, then warms up unmeasured."""

    name: str
    warmup: Phase
    phases: tuple[Phase, ...]
    sweep: tuple[int, ...]  # fixed caps to compare against
    arrival_rate: float = 26.0  # requests per simulated second, open loop

    @property
    def duration_s(self) -> float:
        return self.warmup.duration_s + sum(p.duration_s for p in self.phases)

    def bounds(self) -> list[tuple[Phase, float, float]]:
        """Each measured phase with its start and end, counted from the end of the warm-up."""
        out, start = [], 0.0
        for phase in self.phases:
            out.append((phase, start, start + phase.duration_s))
            start += phase.duration_s
        return out


def stationary(quick: bool) -> Scenario:
    measure = 45.0 if quick else 120.0
    return Scenario(
        name="stationary",
        warmup=Phase("warm-up", SHORT, COOL_C, 30.0 if quick else 60.0),
        phases=(Phase("short/cool", SHORT, COOL_C, measure),),
        sweep=(24, 28) if quick else (20, 24, 26, 28, 32),
    )


def phase_changing(quick: bool) -> Scenario:
    length = 40.0 if quick else 60.0
    return Scenario(
        name="phases",
        warmup=Phase("warm-up", SHORT, COOL_C, 20.0 if quick else 30.0),
        phases=(
            Phase("short/cool", SHORT, COOL_C, length),
            Phase("long/cool", LONG, COOL_C, length),
            Phase("short/hot", SHORT, HOT_C, length),
        ),
        sweep=(8, 16, 20, 24) if quick else (4, 6, 8, 10, 12, 16, 20, 24, 28),
    )
