"""One backend's service rates, learned online, and what the router has sent it (no I/O).

Rates come from two sources. The router's own timings of streamed requests give time to
first token against the prompt tokens ahead of it, fitted as a line (intercept ``base_s``,
slope ``prefill_s_per_token``), how long a request holds an engine slot, and how much of
its ``max_tokens`` a request really generates; the stream events it relays count each
request's progress and the engine's steps. vLLM's scraped metrics give the engine's
sequence limit (the number running whenever it reports a queue), its step cost (seconds per
step against the sequences and prompt tokens in it, per scrape interval, as ``counters.py``
reads the token counters) and the load other clients put on it.

Between scrapes the router counts what it sent itself (optimistic in-flight accounting): a
request it just placed weighs on the next decision at once, so a burst is spread by
predicted cost instead of piling onto whatever looked idle at the last scrape. With the
sizes of everything in flight known, :meth:`LoadEstimator.slot_wait` replays the engine's
first-come-first-served admission to predict when the next sequence slot frees up, and
:meth:`LoadEstimator.expected_ttft` replays the engine (``twin.py``) once its step cost is
known.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..vllm_metrics import VllmMetrics
from .counters import TokenCounters
from .fits import LineFit, PlaneFit
from .routing import PRIOR, Rates, queue_wait
from .twin import DEFAULT_TOKEN_BUDGET, EngineView, Job, StepModel

__all__ = ["MIN_SAMPLES", "MIN_STEP_SAMPLES", "SEQ_RIDGE", "EstimatedLoad", "LoadEstimator"]

MIN_SAMPLES = 3  # first-token samples before a backend's rates count as measured
SERVICE_ALPHA = 0.1  # EWMA weight of the newest slot-holding time / output length
STEP_ALPHA = 0.3  # EWMA weight of the newest decode-step time from the counters
DEFAULT_OUTPUT_TOKENS = 128.0  # assumed output length before any request finished
SLOT_WAIT_REUSE_S = 0.005  # a slot-wait replay stays valid this long while nothing changed
MIN_STEP_SAMPLES = 5  # scrape intervals with generated tokens before the step cost is trusted
STEP_DECAY = 0.95  # step-cost fit: weight of an interval after each newer one (~20 scrapes of memory)
STEP_RIDGE = 10.0**2  # ... ridged toward the prior slope when prompt tokens per step barely vary
STEP_PRIOR_SLOPE = 4e-5  # seconds per prompt token in a step, before the counters tell
SEQ_RIDGE = 0.1**2  # ... and toward no cost per sequence when the running count barely varies
RESIDUAL_ALPHA = 0.02  # EWMA weight of the newest (measured - replayed) TTFT


@dataclass(slots=True)
class _Sent:
    prompt_tokens: int
    max_tokens: int
    ahead: float  # prompt tokens expected to prefill before this one, itself included
    wait: float  # predicted wait for an engine slot when it was sent
    sent_at: float
    replayed: float | None = None  # the engine replay's TTFT prediction when it was sent
    first_at: float | None = None
    events: int = 0  # stream events relayed so far: the engine steps it has decoded in (first token included)
    events_at_scrape: int = -1  # ``events`` at the last scrape, -1 before its first token


class LoadEstimator:
    """Learns one backend's rates; the pool's ``Backend`` exposes them to the strategy."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, token_budget: int = DEFAULT_TOKEN_BUDGET) -> None:
        self.clock = clock
        self.token_budget = token_budget  # the engine's tokens per step (vllm serve --max-num-batched-tokens)
        self.fit = LineFit()
        self.sent_requests: dict[int, _Sent] = {}  # insertion order = the engine's arrival order
        self.pending_prefill = 0.0
        self.external = 0.0
        self.slots = math.inf
        self.service_s = 0.0
        self.decode_step_s = 0.0
        self.output_tokens = DEFAULT_OUTPUT_TOKENS  # EWMA of generated tokens per request
        self.fill = 1.0  # EWMA of generated tokens / max_tokens (EOS stops early)
        self.max_running = 0.0
        self._line: tuple[float, float] | None = None
        self._rates: Rates | None = None
        self._version = 0  # bumped whenever what the slot-wait replay reads changes
        self._slot_wait_cache: tuple[int, float, float, float] = (-1, 0.0, 0.0, 0.0)
        self._queued_before = False
        self.scraped_at: float | None = None
        self._counters = TokenCounters()
        self.last_event_at: float | None = None  # when a stream event last came: the end of an engine step
        # last change, then since the last scrape: sequence-seconds on the engine, seconds it sat empty
        self._occupancy = [self.clock(), 0.0, 0.0]
        self.step_fit = PlaneFit(STEP_DECAY, SEQ_RIDGE, 0.0, STEP_RIDGE, STEP_PRIOR_SLOPE)
        self._step_model: StepModel | None = None
        self.residual = 0.0  # what the replay misses (network, the step under way, host lag), learned
        self._replay_cache: tuple[int, float, int, float] = (-1, 0.0, 0, 0.0)  # version, time, prompt, replayed

    def rates(self) -> Rates | None:
        """Measured rates, or None before :data:`MIN_SAMPLES` first tokens and one completion."""
        if self.fit.count < MIN_SAMPLES or self.service_s <= 0:
            return None
        cached = self._rates
        if cached is None or self._line is None or cached.service_s != self.service_s or cached.slots != self.slots:
            if self._line is None:
                self._line = self.fit.line()
            cached = self._rates = Rates(self._line[0], self._line[1], self.service_s, self.slots)
        return cached

    def _rates_or_prior(self) -> Rates:
        return self.rates() or Rates(PRIOR.base_s, PRIOR.prefill_s_per_token, PRIOR.service_s, self.slots)

    def slot_wait(self, in_flight: int) -> float:
        """Seconds until the engine can admit one more request, replaying FCFS admission.

        The first ``slots`` requests in flight hold the slots and end after their expected
        output at the measured decode step time; the rest take slots as those free up.
        Foreign requests (seen only as a count) add their mean service time per slot. The
        answer is reused for :data:`SLOT_WAIT_REUSE_S` while nothing changed.
        """
        rates = self._rates_or_prior()
        queue = in_flight + self.external
        if math.isinf(rates.slots) or queue + 1 <= rates.slots:
            return 0.0
        step = self.decode_step_s
        if step <= 0 or not self.sent_requests:
            return queue_wait(queue, rates)
        now = self.clock()
        cached = self._slot_wait_cache
        if cached[0] == self._version and cached[1] == queue and now - cached[2] <= SLOT_WAIT_REUSE_S:
            return max(0.0, cached[3] - (now - cached[2]))
        slots = max(1, int(rates.slots))
        base, per_token, fill, default_tokens = rates.base_s, rates.prefill_s_per_token, self.fill, self.output_tokens
        free: list[float] = []
        for entry in self.sent_requests.values():
            decode = (entry.max_tokens * fill if entry.max_tokens > 0 else default_tokens) * step
            if len(free) < slots:
                first = entry.first_at
                if first is None:
                    first = entry.sent_at + entry.wait + base + entry.ahead * per_token
                free.append(max(0.0, first + decode - now))
                if len(free) == slots:
                    heapq.heapify(free)
            else:
                heapq.heapreplace(free, free[0] + base + entry.prompt_tokens * per_token + decode)
        wait = (min(free) if len(free) >= slots else 0.0) + self.external * rates.service_s / slots
        self._slot_wait_cache = (self._version, queue, now, wait)
        return wait

    def step_model(self) -> StepModel | None:
        """The engine's step cost fitted from the scraped counters, or None before :data:`MIN_STEP_SAMPLES`."""
        if self.step_fit.count < MIN_STEP_SAMPLES:
            return None
        if self._step_model is None:
            base_s, per_seq_s, per_token = self.step_fit.plane()
            self._step_model = StepModel(base_s, per_token, self.token_budget, per_seq_s)
        return self._step_model

    def engine_view(self, slots_hint: float = math.inf) -> EngineView | None:
        """The engine as the router can rebuild it now, for the replay (``twin.py``).

        None until the rates and the step cost are measured. Until the engine was seen queueing,
        its sequence limit is taken as ``slots_hint`` (what its peers showed), raised to the most
        it was seen running: unbounded slots would let one burst flood it. Jobs are rebuilt from
        what the router sent: a streamed request has decoded one step per event relayed (without
        events, one per measured step since its first token); one without a first token still
        prefills the part of its prompt its predicted first token is away; foreign requests (a
        count from the scrape) are assumed halfway through an average output.
        """
        rates = self.rates()
        model = self.step_model()
        if rates is None or model is None:
            return None
        now = self.clock()
        per_token = max(rates.prefill_s_per_token, 1e-9)
        fill, default_tokens = self.fill, self.output_tokens
        step = self.decode_step_s if self.decode_step_s > 0 else model.decode_s  # the average step, prefill included
        jobs = [Job(0.0, max(1.0, default_tokens / 2)) for _ in range(round(self.external))]
        for entry in self.sent_requests.values():
            total = entry.max_tokens * fill if entry.max_tokens > 0 else default_tokens
            if entry.first_at is not None:
                done = entry.events if entry.events > 0 else 1 + (now - entry.first_at) / step
                jobs.append(Job(0.0, max(1.0, total - done)))
            else:
                first = entry.sent_at + entry.wait + rates.base_s + entry.ahead * per_token
                left = min(float(entry.prompt_tokens), max(1.0, (first - now) / per_token))
                jobs.append(Job(left, max(1.0, total - 1)))
        slots = rates.slots if math.isfinite(rates.slots) else max(slots_hint, self.max_running)
        under_way = 0.0
        if self.last_event_at is not None and self.sent_requests:  # a step ends with every stream's event
            under_way = min(step, max(0.0, self.last_event_at + step - now))
        return EngineView(jobs, slots, model, self.residual, fill, default_tokens, under_way)

    def expected_ttft(self, prompt_tokens: int, slots_hint: float = math.inf) -> float | None:
        """Time to first token of a ``prompt_tokens`` prompt sent now: the replay of :meth:`engine_view`.

        What the replay systematically misses (network, the engine step under way, host lag) is
        learned as a slow average of measured minus replayed TTFT over requests sent with a free
        slot, and added.
        """
        view = self.engine_view(slots_hint)
        if view is None:
            return None
        replayed = view.replay(view.jobs, prompt_tokens)
        self._replay_cache = (self._version, self.clock(), prompt_tokens, replayed)
        return max(0.0, replayed + self.residual)

    def sent(self, seq: int, prompt_tokens: int, max_tokens: int, in_flight: int) -> None:
        """The router placed request ``seq`` here while ``in_flight`` of its own were running."""
        rates = self._rates_or_prior()
        ahead = self.pending_prefill
        queue = in_flight + self.external
        if queue > rates.slots:
            ahead *= rates.slots / queue
        now = self.clock()
        version, at, replayed_for, replayed = self._replay_cache  # the replay of the decision that sent it here
        fresh = version == self._version and replayed_for == prompt_tokens and now - at <= SLOT_WAIT_REUSE_S
        self._occupy()
        self.sent_requests[seq] = _Sent(prompt_tokens, max_tokens, ahead + prompt_tokens, self.slot_wait(in_flight),
                                        now, replayed if fresh else None)
        self.pending_prefill += prompt_tokens
        self._version += 1

    def first_token(self, seq: int, ttft_s: float) -> None:
        """The first streamed byte of ``seq`` arrived ``ttft_s`` after it was sent."""
        entry = self.sent_requests.get(seq)
        if entry is None or entry.first_at is not None:
            return
        entry.first_at = self.clock()
        self.pending_prefill = max(0.0, self.pending_prefill - entry.prompt_tokens)
        self._version += 1
        if entry.wait <= 0:  # a queued sample measures the queue, not the rates
            self.fit.add(entry.ahead, ttft_s)
            self._line = None
            if entry.replayed is not None:
                self.residual += RESIDUAL_ALPHA * (ttft_s - entry.replayed - self.residual)

    def streamed(self, seq: int, events: int) -> None:
        """``events`` more stream events of ``seq`` were relayed: vLLM sends one per engine step it
        decodes in, so the count is the request's exact progress (and, over a scrape interval, the
        engine's step count)."""
        entry = self.sent_requests.get(seq)
        if entry is not None:
            entry.events += events
            self.last_event_at = self.clock()

    def finished(self, seq: int) -> None:
        """``seq`` released its slot (done, failed or cancelled)."""
        if seq not in self.sent_requests:
            return
        self._occupy()
        entry = self.sent_requests.pop(seq)
        self._version += 1
        now = self.clock()
        if entry.first_at is None:
            self.pending_prefill = max(0.0, self.pending_prefill - entry.prompt_tokens)
            held = now - entry.sent_at - entry.wait  # non-streamed or failed: whole time, minus queueing
        else:
            if self._line is None:
                self._line = self.fit.line()
            base, slope = self._line
            held = now - entry.first_at + base + slope * entry.prompt_tokens
            if entry.events > 0 or self.decode_step_s > 0:
                tokens = entry.events or (now - entry.first_at) / self.decode_step_s + 1.0
                self.output_tokens += SERVICE_ALPHA * (tokens - self.output_tokens)
                if entry.max_tokens > 0:
                    fill = min(1.0, tokens / entry.max_tokens)
                    self.fill += SERVICE_ALPHA * (fill - self.fill)
        if held > 0:
            self.service_s = held if self.service_s <= 0 else self.service_s + SERVICE_ALPHA * (held - self.service_s)

    def scraped(self, metrics: VllmMetrics, in_flight: int, now: float) -> None:
        """Fold one ``/metrics`` scrape in; ``in_flight`` is the router's own count at that moment."""
        self._occupy()
        occupied, idle = self._occupancy[1], self._occupancy[2]
        self._occupancy[1] = self._occupancy[2] = 0.0
        self.external = max(0.0, metrics.running + metrics.waiting - in_flight)
        self.max_running = max(self.max_running, metrics.running)
        # A request that arrived between two engine steps shows as waiting for a moment: only a
        # queue seen in two scrapes in a row means the engine is at its limit.
        if metrics.waiting > 0 and self._queued_before and self.max_running > 0:
            self.slots = self.max_running
        elif metrics.running > self.slots:
            # Two fresh arrivals caught mid-step look like a queue too; a limit learned that way is
            # too low, and late binding, which sends at most that many plus its engine queue, would
            # never show it otherwise: the engine running more proves the limit is at least that.
            self.slots = metrics.running
        self._queued_before = metrics.waiting > 0
        interval = self._counters.interval(metrics, now)
        streamed = self._streamed_steps()
        if interval is not None:
            generated, prompted = interval.generated, interval.prompt_tokens
            busy = interval.seconds - idle  # the engine steps only while it has sequences
            # the mean sequences while it stepped: the router's own count over time, else the gauges
            seqs = occupied / busy if occupied > 0 and busy > 0 else interval.running
            # A request that decoded through the whole interval streamed one event per step. Without
            # one, every running sequence makes a token a step: an undercount while sequences prefill,
            # which an interval that a long prompt starts in makes many times too slow; so that is
            # the measure only where the router relays no streams at all.
            steps_known = streamed > 0 or (self.last_event_at is None and seqs >= 0.5)
            if busy > 0 and generated > 0 and steps_known:
                steps = streamed if streamed > 0 else generated / seqs
                step = busy / steps
                self.decode_step_s = step if self.decode_step_s <= 0 else (
                    self.decode_step_s + STEP_ALPHA * (step - self.decode_step_s))
                if prompted is not None:
                    self.step_fit.add(seqs, prompted / steps, step)
                    self._step_model = None
        self.scraped_at = now
        self._version += 1

    def _occupy(self) -> None:
        """Add the sequences on the engine since the last change to the interval's sequence-seconds
        (called before the count changes): the mean running count of an interval, exactly, from
        what the router has there, where two scrapes would only give its ends; and the time the
        engine had nothing at all, when it runs no steps."""
        now = self.clock()
        running = len(self.sent_requests) + self.external
        self._occupancy[1] += (now - self._occupancy[0]) * min(running, self.slots)
        if running <= 0:
            self._occupancy[2] += now - self._occupancy[0]
        self._occupancy[0] = now

    def _streamed_steps(self) -> int:
        """Engine steps since the last scrape, counted from the stream of a request that decoded through
        the whole interval (0 when none did), and a new mark for the next interval."""
        steps = 0
        for entry in self.sent_requests.values():
            if entry.events_at_scrape >= 0:
                steps = max(steps, entry.events - entry.events_at_scrape)
            if entry.events > 0:
                entry.events_at_scrape = entry.events
        return steps

    def expire(self, now: float, stale_after_s: float) -> bool:
        """Forget foreign load from a scrape older than ``stale_after_s``: a dead scrape cannot pin it.
        True when some was forgotten."""
        if self.scraped_at is not None and now - self.scraped_at > stale_after_s and self.external > 0:
            self._occupy()
            self.external = 0.0
            return True
        return False

    def describe(self) -> dict[str, float | None]:
        rates = self.rates()
        model = self.step_model()
        return {
            "predicted_base_s": rates.base_s if rates else None,
            "prefill_tokens_per_s": 1.0 / rates.prefill_s_per_token if rates else None,
            "service_s": self.service_s or None,
            "slots": self.slots if math.isfinite(self.slots) else None,
            "decode_steps_per_s": 1.0 / self.decode_step_s if self.decode_step_s > 0 else None,
            "step_base_s": model.decode_s if model else None,
            "step_s_per_seq": model.per_seq_s if model else None,
            "step_s_per_prompt_token": model.prefill_s_per_token if model else None,
            "token_budget": self.token_budget,
            "replay_residual_s": self.residual,
            "output_fill": self.fill,
            "external_load": self.external,
            "pending_prefill_tokens": self.pending_prefill,
        }


class EstimatedLoad:
    """What a routing strategy reads about a backend's load, derived from its estimator and the
    router's own in-flight count. Mixed into the router's `Backend` (and the bench's simulated
    one), which provide `est` and `in_flight`."""

    est: LoadEstimator
    in_flight: int

    @property
    def queue(self) -> float:
        """Requests on the engine: the router's own (always current) plus foreign ones from the last scrape."""
        return self.in_flight + self.est.external

    @property
    def pending_prefill(self) -> float:
        return self.est.pending_prefill

    @property
    def slot_wait(self) -> float:
        return self.est.slot_wait(self.in_flight)

    @property
    def rates(self) -> Rates | None:
        return self.est.rates()

    def expected_ttft(self, prompt_tokens: int, slots_hint: float = math.inf) -> float | None:
        return self.est.expected_ttft(prompt_tokens, slots_hint)

    def engine_view(self, slots_hint: float = math.inf) -> EngineView | None:
        return self.est.engine_view(slots_hint)

    def known_slots(self) -> float:
        """The engine's sequence limit once seen queueing, else ``inf``."""
        return self.est.slots

    def engine_room(self, engine_queue: int) -> bool:
        """The engine holds fewer than its sequence limit plus ``engine_queue`` requests (always
        true before the limit is known): late binding may send it one more."""
        slots = self.est.slots
        return not math.isfinite(slots) or self.queue < slots + engine_queue
