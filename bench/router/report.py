"""Printing: per-scenario tables, the ratios against the Rust router, and the noise verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .cpu import NOISY_OTHER_CPU
from .versus import Side, added_p99

__all__ = ["TARGETS", "Ratio", "fmt", "print_ratios", "print_sides", "ratios"]


def fmt(v: float, digits: int = 0) -> str:
    return "n/a" if v != v else f"{v:,.{digits}f}"


@dataclass(frozen=True)
class Ratio:
    """swarm / rust for one target: over all rounds, and from each side's least disturbed round."""

    name: str
    value: float
    best: float
    target: float
    higher_is_better: bool
    detail: str

    def meets(self, value: float) -> bool:
        return value >= self.target if self.higher_is_better else value <= self.target


TARGETS = {"cpu_nonstream": 2.0, "cpu_stream": 1.2, "rps128": 0.9, "added_p99_c1": 2.0}


def print_sides(title: str, sides: dict[str, Side], unit: str = "request") -> None:
    kinds = list(sides)
    print(f"\n{title}")
    print(f"  {'':<28}" + "".join(f"{k:>14}" for k in kinds))
    rows = [("req/s" if unit == "request" else "streams/s", lambda s: fmt(s.rps)),
            ("p50 ms (median of rounds)", lambda s: fmt(s.p50, 3)),
            ("p99 ms (median of rounds)", lambda s: fmt(s.p99, 3)),
            (f"router CPU us/{unit}", lambda s: fmt(s.cpu_us, 1) if s.cpu else "-"),
            ("errors", lambda s: str(s.errors)),
            ("other_cpu max (cores)", lambda s: fmt(max(s.other_cpu, default=math.nan), 2))]
    for label, cell in rows:
        print(f"  {label:<28}" + "".join(f"{cell(sides[k]):>14}" for k in kinds))
    own = sides["swarm"].own_added_ms
    if own:
        print(f"  swarm-router's own added-latency histogram: p50 {own[0]:.3f} ms, p99 {own[1]:.3f} ms")


def _ratio(a: float, b: float) -> float:
    return a / b if b and b == b and a == a else math.nan


def ratios(nonstream: dict[int, dict[str, Side]], streams: dict[str, Side] | None) -> list[Ratio]:
    out: list[Ratio] = []
    for conns in sorted(nonstream):
        if conns == 1:
            continue
        s, r = nonstream[conns]["swarm"], nonstream[conns]["rust"]
        out.append(Ratio(f"CPU per request, non-stream c={conns}", _ratio(s.cpu_us, r.cpu_us),
                         _ratio(s.best_cpu_us, r.best_cpu_us), TARGETS["cpu_nonstream"], False,
                         f"{s.cpu_us:.1f} vs {r.cpu_us:.1f} us"))
    if streams:
        s, r = streams["swarm"], streams["rust"]
        out.append(Ratio("CPU per request, streams", _ratio(s.cpu_us, r.cpu_us), _ratio(s.best_cpu_us, r.best_cpu_us),
                         TARGETS["cpu_stream"], False, f"{s.cpu_us:.1f} vs {r.cpu_us:.1f} us"))
    if 128 in nonstream:
        s, r = nonstream[128]["swarm"], nonstream[128]["rust"]
        out.append(Ratio("throughput at c=128", _ratio(s.rps, r.rps), _ratio(s.best_rps, r.best_rps),
                         TARGETS["rps128"], True, f"{s.rps:,.0f} vs {r.rps:,.0f} req/s"))
    if 1 in nonstream:
        sides = nonstream[1]
        swarm_added, rust_added = added_p99(sides, "swarm"), added_p99(sides, "rust")
        best_swarm, best_rust = added_p99(sides, "swarm", best=True), added_p99(sides, "rust", best=True)
        # below 10 us the Rust router's added p99 is within timer noise; floor it there
        out.append(Ratio("added p99 at c=1", _ratio(swarm_added, max(rust_added, 0.01)),
                         _ratio(best_swarm, max(best_rust, 0.01)), TARGETS["added_p99_c1"], False,
                         f"{swarm_added:.3f} vs {rust_added:.3f} ms"))
    return out


def print_ratios(found: list[Ratio], other_cpu: list[float]) -> None:
    print("\nswarm-router / Rust vllm-router, same run:")
    print("  (all rounds pooled; in brackets: from each side's least disturbed round, which noise cannot flatter)")
    for r in found:
        op = ">=" if r.higher_is_better else "<="
        print(f"  [{'met' if r.meets(r.value) else 'MISSED'}] {r.name}: {r.value:.2f}x "
              f"[best rounds {r.best:.2f}x: {'met' if r.meets(r.best) else 'missed'}] "
              f"(target {op} {r.target}x; {r.detail})")
    worst = max(other_cpu, default=math.nan)
    verdict = "clean" if worst <= NOISY_OTHER_CPU else "NOISY: other processes used CPU, discard this run"
    print(f"  other_cpu: max {worst:.2f} cores, mean {sum(other_cpu) / max(1, len(other_cpu)):.2f} "
          f"over {len(other_cpu)} windows ({verdict}; threshold {NOISY_OTHER_CPU} cores)")
