"""The per-backend rate estimator: learning from timings and scrapes, optimistic accounting, slot waits."""

from __future__ import annotations

import asyncio
import math

import pytest
from swarm_runtime.router.config import BackendConfig, BreakerConfig
from swarm_runtime.router.estimator import MIN_SAMPLES, MIN_STEP_SAMPLES, SEQ_RIDGE, LoadEstimator
from swarm_runtime.router.fits import LineFit, PlaneFit
from swarm_runtime.router.pool import Pool
from swarm_runtime.router.routing import make_load_strategy
from swarm_runtime.vllm_metrics import VllmMetrics

from .support import FakeClock


def scrape(running: float, waiting: float, generated: float = 0.0, prompted: float = 0.0) -> VllmMetrics:
    return VllmMetrics(running, waiting, 0.0, 0.0, prompted, generated, None, None, None, None)


def train(est: LoadEstimator, clock: FakeClock, base: float, per_token: float, decode: float,
          prompts: list[int], start_seq: int = 1) -> None:
    """Requests one at a time on an idle engine: TTFT = base + prompt × per_token, then ``decode`` seconds."""
    for seq, prompt in enumerate(prompts, start_seq):
        est.sent(seq, prompt, 32, 0)
        clock.t += base + prompt * per_token
        est.first_token(seq, base + prompt * per_token)
        clock.t += decode
        est.finished(seq)


def test_line_fit_recovers_intercept_and_slope() -> None:
    fit = LineFit()
    for i in range(60):
        x = 100 + (i * 397) % 3000
        fit.add(x, 0.02 + x / 25_000)
    base, slope = fit.line()
    assert base == pytest.approx(0.02, rel=0.1)  # the ridge toward the prior slope costs a little
    assert 1 / slope == pytest.approx(25_000, rel=0.05)


def test_line_fit_keeps_the_prior_slope_when_every_prompt_has_one_size() -> None:
    fit = LineFit(prior_slope=1e-4)
    for _ in range(20):
        fit.add(500, 0.3)
    base, slope = fit.line()
    assert slope == pytest.approx(1e-4, rel=0.01) and base + 500 * slope == pytest.approx(0.3)


def test_rates_are_learned_from_the_routers_own_timings() -> None:
    clock = FakeClock(100.0)
    est = LoadEstimator(clock)
    train(est, clock, 0.02, 1 / 25_000, 0.5, [100, 2000][: MIN_SAMPLES - 1])
    assert est.rates() is None  # too few samples: unmeasured
    train(est, clock, 0.02, 1 / 25_000, 0.5, [100, 2000, 300, 2500, 150, 1200, 80, 2900] * 3, start_seq=10)
    rates = est.rates()
    assert rates is not None
    assert rates.base_s == pytest.approx(0.02, rel=0.1)
    assert 1 / rates.prefill_s_per_token == pytest.approx(25_000, rel=0.1)
    assert rates.service_s == pytest.approx(0.5 + 0.02 + 1_000 / 25_000, rel=0.3)  # prefill + decode
    assert math.isinf(rates.slots)  # never seen queueing


def test_sent_requests_weigh_on_the_next_decision_before_any_scrape() -> None:
    clock = FakeClock()
    est = LoadEstimator(clock)
    est.sent(1, 3000, 32, 0)
    est.sent(2, 100, 32, 1)
    assert est.pending_prefill == 3100
    est.first_token(1, 0.2)
    assert est.pending_prefill == 100
    est.finished(2)  # failed before its first token: its prefill no longer pends
    assert est.pending_prefill == 0 and len(est.sent_requests) == 1
    est.finished(99)  # unknown requests are ignored
    est.first_token(99, 0.1)


def test_scrapes_reconcile_foreign_load_learn_slots_and_decode_steps() -> None:
    est = LoadEstimator(FakeClock())
    est.scraped(scrape(8, 1, generated=0.0), in_flight=9, now=0.0)
    assert est.external == 0 and math.isinf(est.slots)  # a momentary queue is not a limit yet
    est.scraped(scrape(8, 4, generated=400.0), in_flight=9, now=1.0)
    assert est.external == 3  # 12 on the engine, 9 of them ours
    assert est.slots == 8
    assert est.decode_step_s == pytest.approx(1.0 * 8 / 400)  # 8 sequences made 400 tokens in 1 s
    est.scraped(scrape(2, 0, generated=450.0), in_flight=2, now=2.0)
    assert est.external == 0 and est.slots == 8  # the limit stays known while idle
    est.scraped(scrape(2, 5, generated=500.0), in_flight=0, now=3.0)
    est.expire(now=6.0, stale_after_s=5.0)
    assert est.external == 7  # fresh enough
    est.expire(now=8.5, stale_after_s=5.0)
    assert est.external == 0  # a dead scrape cannot pin the backend


def test_a_limit_learned_too_low_rises_when_the_engine_runs_more() -> None:
    est = LoadEstimator(FakeClock())
    est.scraped(scrape(2, 1), in_flight=3, now=0.0)  # fresh arrivals caught mid-step, twice
    est.scraped(scrape(2, 1), in_flight=3, now=1.0)
    assert est.slots == 2
    est.scraped(scrape(3, 0), in_flight=3, now=2.0)  # late binding sent limit + 1: all three run
    assert est.slots == 3
    est.scraped(scrape(3, 1), in_flight=4, now=3.0)
    assert est.slots == 3  # one queued scrape is not a limit, and the limit never falls


def test_slot_wait_replays_first_come_first_served_admission() -> None:
    clock = FakeClock()
    est = LoadEstimator(clock)
    est.slots, est.decode_step_s = 2.0, 0.01
    for seq, tokens in ((1, 50), (2, 20), (3, 40)):  # two hold the slots, the third waits
        est.sent(seq, 10, tokens, seq - 1)
    for seq in (1, 2):
        est.first_token(seq, 0.0)
    assert est.slot_wait(in_flight=1) == 0.0  # a free slot
    wait = est.slot_wait(in_flight=3)
    # slot 2 frees at 0.2 s, request 3 takes it until ~0.6 s; slot 1 frees at 0.5 s first
    assert wait == pytest.approx(0.5, abs=0.06)
    clock.t = 0.3
    assert est.slot_wait(in_flight=3) == pytest.approx(0.2, abs=0.06)


def test_a_pool_burst_is_spread_by_predicted_cost_between_scrapes() -> None:
    async def scenario() -> dict[str, int]:
        configs = [BackendConfig(name=n, url="http://127.0.0.1:1", models=["m"]) for n in ("fast", "slow")]
        pool = Pool(configs, BreakerConfig(), make_load_strategy(2), 16)
        clock = FakeClock()
        for backend, factor in ((pool.backends["fast"], 1.0), (pool.backends["slow"], 2.5)):
            backend.est = LoadEstimator(clock)
            train(backend.est, clock, 0.02 * factor, factor / 25_000, 0.8 * factor, [100, 2000, 400, 1500] * 3)
            backend.est.slots, backend.est.decode_step_s = 8.0, 0.025 * factor
        deadline = asyncio.get_running_loop().time() + 5
        counts = {"fast": 0, "slow": 0}
        for _ in range(40):  # nothing finishes, no scrape: only the router's own accounting moves
            backend = await pool.acquire("m", pool.key(None, 100, 32), deadline)
            counts[backend.name] += 1
        return counts

    counts = asyncio.run(scenario())
    assert counts["fast"] + counts["slow"] == 40
    assert 0.6 <= counts["fast"] / 40 <= 0.85  # near the 2.5 : 1 capacity ratio, not all on one


def feed_steps(est: LoadEstimator, decode_s: float, per_token: float, running: int = 8, intervals: int = 12) -> None:
    """Scrapes of an engine whose step costs ``decode_s + per_token × prompt tokens in it``."""
    t = generated = prompted = 0.0
    for i in range(intervals + 1):
        est.scraped(scrape(running, 0, generated, prompted), in_flight=running, now=t)  # no foreign load
        steps = 20.0
        prompt_per_step = (i * 137) % 400  # some intervals prefill a lot, some nothing
        t += steps * (decode_s + per_token * prompt_per_step)
        generated += steps * running
        prompted += steps * prompt_per_step


def test_the_step_cost_is_fitted_from_the_token_counters() -> None:
    est = LoadEstimator(FakeClock())
    feed_steps(est, 0.02, 5e-5, intervals=MIN_STEP_SAMPLES - 1)
    assert est.step_model() is None  # too few intervals
    feed_steps(est, 0.02, 5e-5)
    model = est.step_model()
    assert model is not None
    assert model.decode_s == pytest.approx(0.02, rel=0.05)
    assert model.prefill_s_per_token == pytest.approx(5e-5, rel=0.1)


def test_expected_ttft_replays_the_engine_from_what_the_router_sent() -> None:
    clock = FakeClock(100.0)
    est = LoadEstimator(clock)
    train(est, clock, 0.02, 1 / 25_000, 0.5, [100, 2000, 300, 2500] * 2)
    assert est.expected_ttft(100) is None  # rates known, step cost not yet
    feed_steps(est, 0.02, 4e-5)
    model = est.step_model()
    assert model is not None
    assert est.expected_ttft(1000) == pytest.approx(model.step(1000))  # idle: one step
    est.slots, est.decode_step_s = 2.0, 0.02
    for seq in (1, 2):  # both slots decode 32 tokens from now
        est.sent(seq, 10, 32, seq - 1)
        est.first_token(seq, 0.0)
    assert est.expected_ttft(1000) == pytest.approx(31 * model.decode_s + model.step(1000), rel=0.02)
    clock.t += 10 * 0.02  # ten tokens later the slots free ten steps sooner
    assert est.expected_ttft(1000) == pytest.approx(21 * model.decode_s + model.step(1000), rel=0.02)


def test_an_engine_never_seen_queueing_borrows_its_peers_slot_limit() -> None:
    clock = FakeClock(100.0)
    est = LoadEstimator(clock)
    train(est, clock, 0.02, 1 / 25_000, 0.5, [100, 2000, 300, 2500] * 2)
    feed_steps(est, 0.02, 4e-5, running=2)  # the engine ran 2 at most
    est.decode_step_s = 0.02
    for seq in (1, 2, 3):
        est.sent(seq, 10, 32, seq - 1)
        est.first_token(seq, 0.0)
    unbounded = est.expected_ttft(100)
    assert unbounded is not None and unbounded < 0.05  # no known limit: no wait
    hinted = est.expected_ttft(100, slots_hint=1)
    assert hinted is not None and hinted > 0.5  # ... but 2 were seen running, so 2 slots, all busy


def test_the_replay_learns_the_latency_it_does_not_model() -> None:
    clock = FakeClock(100.0)
    est = LoadEstimator(clock)
    train(est, clock, 0.02, 1 / 25_000, 0.5, [100, 2000, 300, 2500] * 2)
    feed_steps(est, 0.02, 4e-5)
    replayed = est.expected_ttft(500)
    assert replayed is not None
    for seq in range(100, 300):  # every first token comes 50 ms later than the replay says (network, lag)
        est.expected_ttft(500)  # the decision that sends it
        est.sent(seq, 500, 32, 0)
        clock.t += replayed + 0.05
        est.first_token(seq, replayed + 0.05)
        est.finished(seq)
    learned = est.expected_ttft(500)
    assert learned is not None and learned == pytest.approx(replayed + 0.05, abs=0.005)
    clock.t += 1.0
    est.sent(999, 500, 32, 0)  # no replay decided this one (e.g. the only candidate): it teaches the replay nothing
    est.first_token(999, 5.0)
    est.finished(999)
    assert est.expected_ttft(500) == pytest.approx(learned)


def test_the_step_cost_separates_sequences_from_prompt_tokens() -> None:
    """Busy intervals run more sequences and prefill more at once; a line in prompt tokens alone would
    credit the sequences' cost to prefill."""
    fit, line = PlaneFit(0.99, SEQ_RIDGE, 0.0, 10.0**2, 4e-5), LineFit(decay=0.99, ridge=10.0**2, prior_slope=4e-5)
    for i in range(80):
        seqs = 1 + i % 8
        prefill = 60.0 * seqs + (i * 53) % 200  # correlated with the sequences, not a copy of them
        step = 0.012 + 0.002 * seqs + 1e-4 * prefill
        fit.add(seqs, prefill, step)
        line.add(prefill, step)
    base, per_seq, per_token = fit.plane()
    assert (base, per_seq, per_token) == pytest.approx((0.012, 0.002, 1e-4), rel=0.05)
    assert line.line()[1] > 1.2e-4  # the bias the plane removes


def test_a_running_count_that_never_varies_keeps_no_cost_per_sequence() -> None:
    fit = PlaneFit(0.99, SEQ_RIDGE, 0.0, 10.0**2, 4e-5)
    for i in range(40):
        prefill = (i * 137) % 400
        fit.add(8.0, prefill, 0.03 + 5e-5 * prefill)
    base, per_seq, per_token = fit.plane()
    assert per_seq == pytest.approx(0.0, abs=1e-6)
    assert base == pytest.approx(0.03, rel=0.02) and per_token == pytest.approx(5e-5, rel=0.02)


def test_streamed_events_are_a_requests_exact_progress() -> None:
    clock = FakeClock(100.0)
    est = LoadEstimator(clock)
    train(est, clock, 0.02, 1 / 25_000, 0.5, [100, 2000, 300, 2500] * 2)
    feed_steps(est, 0.02, 4e-5)
    est.sent(50, 10, 40, 0)
    est.first_token(50, 0.03)
    est.streamed(50, 1)
    est.streamed(50, 9)  # ten events relayed: ten steps decoded
    clock.t += 5.0  # however long that took
    view = est.engine_view()
    assert view is not None
    assert [job.decode_left for job in view.jobs] == [pytest.approx(40 * est.fill - 10)]
    est.streamed(50, 30)
    est.finished(50)
    assert est.fill == pytest.approx(1.0, abs=0.01)  # it generated all of its max_tokens


def test_engine_steps_are_counted_from_a_stream_not_from_the_running_gauge() -> None:
    """Half the running sequences prefill and emit nothing: tokens / running would count half the steps."""
    clock = FakeClock(0.0)
    est = LoadEstimator(clock)
    for seq in (1, 2):
        est.sent(seq, 10, 1000, seq - 1)
        est.first_token(seq, 0.01)
        est.streamed(seq, 1)
    est.scraped(scrape(4, 0, 0.0, 0.0), in_flight=2, now=clock.t)
    clock.t += 0.5
    for seq in (1, 2):
        est.streamed(seq, 25)  # 25 steps of 20 ms
    est.scraped(scrape(4, 0, 50.0, 0.0), in_flight=2, now=clock.t)  # 2 decode, 2 foreign ones prefill
    assert est.decode_step_s == pytest.approx(0.02)


def test_a_request_sent_mid_step_waits_for_the_step_under_way() -> None:
    clock = FakeClock(100.0)
    est = LoadEstimator(clock)
    train(est, clock, 0.02, 1 / 25_000, 0.5, [100, 2000, 300, 2500] * 2)
    feed_steps(est, 0.02, 4e-5)
    est.decode_step_s = 0.04
    idle = est.expected_ttft(100)
    est.sent(60, 10, 64, 0)
    est.first_token(60, 0.03)
    est.streamed(60, 1)  # a step just ended: the next one takes ~40 ms
    clock.t += 0.01
    view = est.engine_view()
    assert view is not None and view.under_way_s == pytest.approx(0.03)
    busy = est.expected_ttft(100)
    assert idle is not None and busy is not None and busy > idle + 0.03  # the step under way, then its own
    clock.t += 0.05  # no event for longer than a step: nothing known to be under way
    view = est.engine_view()
    assert view is not None and view.under_way_s == 0.0


def test_prompt_tokens_found_in_the_prefix_cache_are_not_fitted_as_prefill() -> None:
    """vLLM counts each prompt whole, cached prefix included, once its first token is out, and the
    cached part as hits when it admits the request; only the rest costs the engine prefill time."""
    def fitted(hits_seen: bool) -> float:
        est = LoadEstimator(FakeClock())
        t = generated = counted = hits = early = 0.0
        for i in range(40):
            seen = hits if hits_seen else 0.0
            metrics = VllmMetrics(8, 0, 0, 0, counted, generated, None, None, None, None, seen)
            est.scraped(metrics, in_flight=8, now=t)
            steps, computed, cached = 20.0, (i * 137) % 400, 3 * ((i * 89) % 300)
            t += steps * (0.02 + 5e-5 * computed)
            generated += steps * 8
            counted += steps * (computed + cached)
            # now and then a prompt admitted just before a scrape shows its hits an interval early
            lead = 500.0 if i % 5 == 0 else 0.0
            hits += steps * cached - early + lead
            early = lead
        model = est.step_model()
        assert model is not None
        return model.prefill_s_per_token

    assert fitted(hits_seen=True) == pytest.approx(5e-5, rel=0.05)
    assert fitted(hits_seen=False) < 2.5e-5  # what a counter of whole prompts alone makes of it


def test_a_restarted_engines_counters_are_not_fitted() -> None:
    est = LoadEstimator(FakeClock())
    feed_steps(est, 0.02, 5e-5)
    before = est.step_model()
    est.scraped(scrape(8, 0, 10.0, 5.0), in_flight=8, now=1000.0)  # every counter back near zero
    assert est.step_model() == before  # the interval across the restart is skipped...
    est.scraped(scrape(8, 0, 170.0, 100.0), in_flight=8, now=1000.5)
    assert est.step_model() != before  # ...and the next one counts again


def test_steps_are_timed_only_while_the_engine_has_work() -> None:
    """Without streams, steps are counted from the token counter: an engine that sat empty for
    half the interval stepped only in the other half."""
    clock = FakeClock(0.0)
    est = LoadEstimator(clock)
    est.scraped(scrape(1, 0, 0.0, 0.0), in_flight=0, now=clock.t)  # one foreign sequence
    clock.t += 0.5
    est.scraped(scrape(1, 0, 25.0, 0.0), in_flight=0, now=clock.t)  # 25 steps of 20 ms
    assert est.decode_step_s == pytest.approx(0.02)
    est.scraped(scrape(0, 0, 25.0, 0.0), in_flight=0, now=clock.t)  # it finished: the engine is empty...
    clock.t += 0.25
    est.sent(1, 10, 1000, 0)  # ...until the router sends one, a quarter of a second later
    clock.t += 0.25
    est.scraped(scrape(1, 0, 37.5, 0.0), in_flight=1, now=clock.t)  # 12.5 steps in the 0.25 s it had one
    assert est.decode_step_s == pytest.approx(0.02)


def test_once_streams_are_relayed_only_a_streamed_interval_times_the_steps() -> None:
    """A long prompt prefilling makes steps without tokens: an interval with no request streamed
    through it cannot tell how many steps it had."""
    clock = FakeClock(0.0)
    est = LoadEstimator(clock)
    est.sent(1, 10, 1000, 0)
    est.first_token(1, 0.01)
    est.streamed(1, 1)
    est.scraped(scrape(1, 0, 1.0, 10.0), in_flight=1, now=clock.t)
    clock.t += 0.5
    est.streamed(1, 25)
    est.scraped(scrape(1, 0, 26.0, 10.0), in_flight=1, now=clock.t)
    assert est.decode_step_s == pytest.approx(0.02)
    est.finished(1)
    est.sent(2, 3000, 1000, 0)  # prefills for most of the next interval, then makes one token
    clock.t += 0.5
    est.first_token(2, 0.45)
    est.streamed(2, 1)
    est.scraped(scrape(1, 0, 27.0, 3010.0), in_flight=1, now=clock.t)
    assert est.decode_step_s == pytest.approx(0.02)  # not 0.5 s for "one step"
