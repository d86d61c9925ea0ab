"""Per-run statistics and the ratio table against the best peer."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from .load import Result

__all__ = ["GOODPUT_TTFT_S", "WINDOW_S", "Summary", "quantile", "summarize"]

GOODPUT_TTFT_S = 1.0
WINDOW_S = 10.0


def quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile; ``inf`` entries (failed requests) count as the worst."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class Summary:
    """One router on one schedule."""

    requests: int
    errors: int
    ttft_p50: float
    ttft_p95: float
    ttft_p99: float
    e2e_p95: float
    goodput: float  # fraction of requests with a first token within GOODPUT_TTFT_S
    slow_share: float
    slow_window_max: float  # highest share of any 10 s window's arrivals sent to the slow GPU
    failures: str = ""  # why requests failed, most frequent first: "HTTP 503 x214"


def summarize(results: list[Result], slow: str, start: float, end: float) -> Summary:
    """Stats over the requests that arrived in ``[start, end)`` (the warm-up is left out)."""
    kept = [r for r in results if start <= r.at < end]
    ttfts = [r.ttft if r.ok else math.inf for r in kept]
    e2es = [r.e2e if r.ok else math.inf for r in kept]
    slow_hits = [r.at for r in kept if r.backend.endswith(slow)]
    windows: list[float] = []
    t = start
    while True:
        hi = min(t + WINDOW_S, end)
        total = sum(1 for r in kept if t <= r.at < hi)
        if total >= 10:
            windows.append(sum(1 for a in slow_hits if t <= a < hi) / total)
        if hi >= end:
            break
        t += 1.0
    n = max(1, len(kept))
    reasons = Counter(r.error or "failed" for r in kept if not r.ok)
    return Summary(len(kept), sum(1 for r in kept if not r.ok), quantile(ttfts, 0.5), quantile(ttfts, 0.95),
                   quantile(ttfts, 0.99), quantile(e2es, 0.95),
                   sum(1 for v in ttfts if v <= GOODPUT_TTFT_S) / n, len(slow_hits) / n,
                   max(windows, default=len(slow_hits) / n),
                   ", ".join(f"{reason} x{count}" for reason, count in reasons.most_common()))


GOALS = {"tail": 0.7, "goodput": 1.0, "p50": 1.1, "window": 1.5}


def best_peer(peers: dict[str, Summary]) -> str:
    """The one peer to beat: highest goodput, then lowest p95 TTFT."""
    return min(peers, key=lambda n: (-peers[n].goodput, peers[n].ttft_p95))


def ratios(own: Summary, peers: dict[str, Summary], slow_capacity_share: float,
           per_metric: bool) -> dict[str, float]:
    """swarm-router / peer: against :func:`best_peer`, or (``per_metric``) against the best value of any peer."""

    def div(value: float, best: float) -> float:
        return value / best if best > 0 and math.isfinite(best) else math.nan

    chosen = list(peers.values()) if per_metric else [peers[best_peer(peers)]]
    return {
        "p50": div(own.ttft_p50, min(p.ttft_p50 for p in chosen)),
        "p95": div(own.ttft_p95, min(p.ttft_p95 for p in chosen)),
        "p99": div(own.ttft_p99, min(p.ttft_p99 for p in chosen)),
        "e2e95": div(own.e2e_p95, min(p.e2e_p95 for p in chosen)),
        "goodput": div(own.goodput, max(p.goodput for p in chosen)),
        "window": own.slow_window_max / slow_capacity_share,
    }


def goals_met(load: float, r: dict[str, float]) -> bool:
    """The issue's goals; the tail goal applies at 80 % load and above."""
    tail = load < 0.8 or (r["p95"] <= GOALS["tail"] and r["p99"] <= GOALS["tail"])
    return tail and r["goodput"] >= GOALS["goodput"] and r["p50"] <= GOALS["p50"] and r["window"] <= GOALS["window"]


def ratio_table(rows: list[tuple[float, int, str, dict[str, float]]]) -> list[str]:
    """Lines of the ratio table: ``(load, seed, peer label, ratios)`` per row."""
    lines = [f"  {'load':>5}{'seed':>5}  {'vs':<26}{'p50':>6}{'p95':>6}{'p99':>6}{'E2E p95':>9}{'goodput':>9}"
             f"{'slow win':>10}  goals"]
    for load, seed, label, r in rows:
        lines.append(f"  {load:>5.0%}{seed:>5}  {label:<26}{r['p50']:>6.2f}{r['p95']:>6.2f}{r['p99']:>6.2f}"
                     f"{r['e2e95']:>9.2f}{r['goodput']:>9.2f}{r['window']:>10.2f}  "
                     f"{'met' if goals_met(load, r) else 'MISSED'}")
    return lines
