"""vLLM's token counters read per scrape interval: prompt tokens computed, cache hits left out."""

from __future__ import annotations

from swarm_runtime.router.counters import Interval, TokenCounters
from swarm_runtime.vllm_metrics import VllmMetrics


def scrape(generated: float, prompt: float, hits: float, running: float = 4.0) -> VllmMetrics:
    return VllmMetrics(running, 0.0, 0.0, 0.0, prompt, generated, None, None, None, None, hits)


def test_cache_hits_counted_before_their_prompt_carry_over() -> None:
    counters = TokenCounters()
    assert counters.interval(scrape(0, 0, 0, running=2), now=0.0) is None  # nothing to compare yet
    # a 2,100-token prompt admitted with 2,000 cached, its first token not out yet
    assert counters.interval(scrape(40, 0, 2000), now=0.5) == Interval(0.5, 40, 0.0, 3.0)
    # its first token: the whole prompt is counted now, and only its 100 own tokens were computed
    assert counters.interval(scrape(80, 2100, 2000), now=1.0) == Interval(0.5, 40, 100.0, 4.0)
    assert counters.interval(scrape(120, 2400, 2000), now=1.5) == Interval(0.5, 40, 300.0, 4.0)


def test_a_restart_gives_no_prompt_count_and_forgets_what_was_carried() -> None:
    counters = TokenCounters()
    counters.interval(scrape(0, 0, 0), now=0.0)
    counters.interval(scrape(10, 0, 500), now=0.5)  # 500 hits not matched yet
    restarted = counters.interval(scrape(5, 10, 0), now=1.0)
    assert restarted is not None and restarted.prompt_tokens is None
    after = counters.interval(scrape(15, 210, 0), now=1.5)
    assert after is not None and after.prompt_tokens == 200.0  # the old engine's hits no longer count
