"""Per-phase numbers: goodput against fixed caps, time to settle, temperature margin.

Reported times and rates are in simulated seconds (bench values multiplied back by SCALE).
A fixed cap counts as thermally admissible when it kept the GPU at least
:data:`MARGIN_GOAL_C` under its slowdown threshold, the same margin the tuner is held to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autotune.policies import TTFT_TARGET_S
from autotune.run import Run
from autotune.scenarios import Phase, Scenario
from autotune.sim import SCALE, SLOWDOWN_C

MARGIN_GOAL_C = 3.0
SETTLE_BAND = 0.10  # within 10 % of the phase's best cap (at least one step: caps are integers)
SETTLE_SHARE = 0.9  # "settled" from t on: in the band at least this share of the rest of the phase
# Caps whose goodput is this close to the best are equally "best" (the sweep's noise is larger).
NEAR_BEST = 0.95


@dataclass
class PhaseStats:
    phase: Phase
    goodput: float  # requests per simulated second with client TTFT within the SLO
    p90_ttft: float | None  # simulated seconds
    mean_cap: float
    peak_c: float

    @property
    def margin_c(self) -> float:
        return SLOWDOWN_C - self.peak_c


def phase_stats(run: Run, scenario: Scenario) -> list[PhaseStats]:
    out = []
    for phase, start, end in scenario.bounds():
        lo, hi = run.measure_start + start / SCALE, run.measure_start + end / SCALE
        arrived = [o for o in run.outcomes if lo <= o.arrived < hi]
        ttfts = sorted(o.ttft * SCALE for o in arrived if o.status == 200 and o.ttft is not None)
        good = sum(1 for t in ttfts if t <= TTFT_TARGET_S)
        caps = [c for t, c in run.caps if lo <= t < hi] or [math.nan]
        temps = [c for t, c in run.temps if lo <= t < hi] or [math.nan]
        out.append(PhaseStats(phase=phase, goodput=good / phase.duration_s,
                              p90_ttft=ttfts[min(len(ttfts) - 1, int(0.9 * len(ttfts)))] if ttfts else None,
                              mean_cap=sum(caps) / len(caps), peak_c=max(temps)))
    return out


def settle_time(run: Run, start: float, end: float, best_caps: list[int]) -> float | None:
    """Simulated seconds from ``start`` (after warm-up) until the cap settles near ``best_caps``.

    The band runs from 10 % below the lowest to 10 % above the highest of the best caps (at
    least one step either side); settled at t means inside it for 90 % of the rest of the phase.
    """
    lo, hi = run.measure_start + start / SCALE, run.measure_start + end / SCALE
    samples = [(t, c) for t, c in run.caps if lo <= t < hi]
    low = min(best_caps) - max(1.0, SETTLE_BAND * min(best_caps))
    high = max(best_caps) + max(1.0, SETTLE_BAND * max(best_caps))
    inside = [low <= c <= high for _, c in samples]
    count = 0
    earliest: float | None = None
    for i in range(len(samples) - 1, -1, -1):  # suffix shares, from the end backwards
        count += inside[i]
        if inside[i] and count >= SETTLE_SHARE * (len(samples) - i):
            earliest = (samples[i][0] - lo) * SCALE
    return earliest


@dataclass
class Comparison:
    """The tuner against the sweep of one scenario."""

    scenario: Scenario
    auto: list[PhaseStats]
    fixed: dict[int, list[PhaseStats]]

    def admissible(self, stats: list[PhaseStats]) -> bool:
        return all(s.margin_c >= MARGIN_GOAL_C for s in stats)

    def total(self, stats: list[PhaseStats]) -> float:
        """Goodput over the whole measured run, requests per simulated second."""
        return sum(s.goodput * s.phase.duration_s for s in stats) / sum(s.phase.duration_s for s in stats)

    def best_cap(self, admissible_only: bool = True) -> int:
        caps = [c for c, s in self.fixed.items() if self.admissible(s) or not admissible_only] or list(self.fixed)
        return max(caps, key=lambda c: self.total(self.fixed[c]))

    def phase_best(self, i: int) -> int:
        caps = [c for c, s in self.fixed.items() if s[i].margin_c >= MARGIN_GOAL_C] or list(self.fixed)
        return max(caps, key=lambda c: self.fixed[c][i].goodput)

    def near_best(self, i: int) -> list[int]:
        """The admissible caps within NEAR_BEST of phase ``i``'s best goodput."""
        best = self.fixed[self.phase_best(i)][i].goodput
        return sorted(c for c, s in self.fixed.items()
                      if s[i].margin_c >= MARGIN_GOAL_C and s[i].goodput >= NEAR_BEST * best) or [self.phase_best(i)]

    def oracle(self) -> float:
        """A cap switched to each phase's best at the phase boundary: the bound for any cap policy."""
        stats = [self.fixed[self.phase_best(i)][i] for i in range(len(self.auto))]
        return self.total(stats)


def _f(v: float | None, fmt: str = ".2f") -> str:
    return "-" if v is None or math.isnan(v) else format(v, fmt)


def print_comparison(cmp: Comparison, auto_run: Run) -> dict[str, float]:
    """Print the per-phase table and return the scenario's headline ratios."""
    best = cmp.best_cap()
    best_any = cmp.best_cap(admissible_only=False)
    print(f"[{cmp.scenario.name}] best fixed cap of the run (>= {MARGIN_GOAL_C:g} C margin): {best} "
          f"({cmp.total(cmp.fixed[best]):.2f} req/s); best fixed of any temperature: {best_any} "
          f"({cmp.total(cmp.fixed[best_any]):.2f})")
    print(f"  {'phase':<11} {'auto':>6} {'fixed-' + str(best):>9} {'ratio':>6} {'phase best':>11} "
          f"{'ratio':>6} {'settle_s/to':>11} {'p90ms':>6} {'cap':>5} {'peakC':>6} {'margin':>6}")
    settles: list[float] = []
    for i, ((phase, start, end), auto) in enumerate(zip(cmp.scenario.bounds(), cmp.auto, strict=True)):
        ref = cmp.fixed[best][i]
        pb = cmp.phase_best(i)
        pbs = cmp.fixed[pb][i]
        settle = settle_time(auto_run, start, end, cmp.near_best(i)) if i > 0 else None
        if i > 0:
            settles.append(math.inf if settle is None else settle)
        # A cap that served next to nothing in a phase (fixed-20 under long prompts) has no ratio.
        ratio_run = _f(auto.goodput / ref.goodput if ref.goodput >= 0.1 else math.nan)
        ratio_phase = _f(auto.goodput / pbs.goodput if pbs.goodput else math.nan)
        settled = "-" if i == 0 else ("never" if settle is None else f"{settle:.0f}")
        settled += "/" + ",".join(map(str, cmp.near_best(i))) if i else ""
        p90 = _f(None if auto.p90_ttft is None else 1000 * auto.p90_ttft, ".0f")
        print(f"  {phase.name:<11} {auto.goodput:6.2f} {ref.goodput:9.2f} {ratio_run:>6} "
              f"{'fixed-' + str(pb):>9}{pbs.goodput:5.1f} {ratio_phase:>6} {settled:>11} {p90:>6} "
              f"{auto.mean_cap:5.1f} {auto.peak_c:6.1f} {auto.margin_c:6.1f}")
    total = cmp.total(cmp.auto)
    ratios = {
        "ratio_to_best_fixed": total / cmp.total(cmp.fixed[best]),
        "ratio_to_best_fixed_any": total / cmp.total(cmp.fixed[best_any]),
        "oracle_ratio": cmp.oracle() / cmp.total(cmp.fixed[best]),
        "max_settle_s": max(settles, default=0.0),
        "min_margin_c": min(s.margin_c for s in cmp.auto),
    }
    print(f"  total: auto {total:.2f} req/s = {ratios['ratio_to_best_fixed']:.3f}x fixed-{best} "
          f"({ratios['ratio_to_best_fixed_any']:.2f}x fixed-{best_any}); per-phase oracle "
          f"{cmp.oracle():.2f} = {ratios['oracle_ratio']:.2f}x; recommended max_num_seqs="
          f"{auto_run.recommended}")
    return ratios


def print_run(run: Run, stats: list[PhaseStats]) -> None:
    """One row per run as it finishes: goodput / mean cap / peak temperature for each phase."""
    cells = "  ".join(f"{s.goodput:6.2f} {s.mean_cap:5.1f} {s.peak_c:5.1f}" for s in stats)
    print(f"  {run.policy:<11} {cells}", flush=True)
