"""A continuous-batching inference engine as a pure state machine in virtual time.

Modelled on vLLM V1's scheduler: at most ``max_num_seqs`` sequences run; every step first
gives each decoding sequence one token, then spends what is left of the
``max_batched_tokens`` budget on prompt chunks in arrival order (chunked prefill). Waiting
sequences are admitted first come, first served, or with ``priority`` (vLLM's
``--scheduling-policy priority``) or a sequence's own ``rank`` lowest value first, ties by arrival. A step
takes ``slowdown × (base + per_seq × sequences + per_prefill_token × prompt tokens)``; a
sequence whose prompt finishes in a step emits its first token at the step's end. With
``prefix_cache_tokens`` (vLLM's automatic prefix caching), a sequence whose ``prefix`` another
one prefilled recently is admitted with that prefix already computed; cached prefixes are
dropped least recently used first once they hold more tokens than that. The counters are vLLM
V1's: ``prompt_tokens_total`` adds a sequence's whole prompt, cached part included, when its first
token comes out; ``prefix_cache_queries_total`` and ``prefix_cache_hits_total`` add its prompt and
its cached tokens when it is admitted (with prefix caching on). The HTTP
server (``server.py``) drives it in real time; :func:`capacity` drives it in virtual time.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["PRIORITIES", "Engine", "EngineSpec", "Seq", "capacity"]

LONG_PROMPT = 500  # tokens: the workload's short prompts are under this, its long ones over

# what a router could put in each request's ``priority`` field, from the prompt's size
PRIORITIES: dict[str, Callable[[int], int]] = {
    "short-first": lambda prompt_tokens: int(prompt_tokens >= LONG_PROMPT),
    "long-first": lambda prompt_tokens: int(prompt_tokens < LONG_PROMPT),
}


@dataclass(frozen=True)
class EngineSpec:
    """One simulated GPU. Defaults are a time-scaled RTX 4090 serving a 7-8B model."""

    slowdown: float = 1.0
    step_base_s: float = 0.012
    step_per_seq_s: float = 0.0008
    prefill_per_token_s: float = 0.00004
    max_num_seqs: int = 8
    max_batched_tokens: int = 512
    priority: Callable[[int], int] | None = None  # prompt tokens -> priority; None: first come, first served
    prefix_cache_tokens: int = 0  # prompt tokens of shared prefixes kept cached (0: no prefix caching)


@dataclass(eq=False)
class Seq:
    """One request inside the engine."""

    prompt_tokens: int
    output_tokens: int
    prefilled: int = 0
    emitted: int = 0
    rank: float | None = None  # admission order, lowest first, ties by arrival (overrides ``spec.priority``)
    prefix: int | None = None  # a shared prefix's key (a session, a system prompt); None: nothing shared
    prefix_tokens: int = 0  # how many of the prompt's tokens that prefix is
    on_token: Callable[[int, bool], None] | None = field(default=None, repr=False)


@dataclass
class Engine:
    """The scheduler: :meth:`add`, then alternate :meth:`plan` (returns the step's duration) and :meth:`finish`."""

    spec: EngineSpec
    waiting: deque[Seq] = field(default_factory=deque)
    running: list[Seq] = field(default_factory=list)
    prompt_tokens_total: int = 0
    generation_tokens_total: int = 0
    prefix_cache_queries_total: int = 0
    prefix_cache_hits_total: int = 0
    cached: OrderedDict[int, int] = field(default_factory=OrderedDict)  # prefix key -> tokens, least recent first
    _chunks: list[tuple[Seq, int]] = field(default_factory=list)

    def add(self, seq: Seq) -> None:
        mine = self._rank(seq)
        if mine is not None:
            for k, other in enumerate(self.waiting):
                theirs = self._rank(other)
                if theirs is not None and theirs > mine:
                    self.waiting.insert(k, seq)
                    return
        self.waiting.append(seq)

    def _rank(self, seq: Seq) -> float | None:
        if seq.rank is not None:
            return seq.rank
        return None if self.spec.priority is None else self.spec.priority(seq.prompt_tokens)

    def fork(self) -> Engine:
        """An independent copy of the scheduler's state, callbacks left out, to run ahead of time."""
        copies = {id(s): Seq(s.prompt_tokens, s.output_tokens, s.prefilled, s.emitted, s.rank, s.prefix,
                             s.prefix_tokens) for s in (*self.running, *self.waiting)}
        ahead = Engine(self.spec, deque(copies[id(s)] for s in self.waiting), [copies[id(s)] for s in self.running],
                       cached=OrderedDict(self.cached))
        ahead._chunks = [(copies[id(s)], chunk) for s, chunk in self._chunks]
        return ahead

    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    def plan(self) -> float:
        """Admit, choose this step's work, and return how long the step takes (0 when idle)."""
        spec = self.spec
        while self.waiting and len(self.running) < spec.max_num_seqs:
            seq = self.waiting.popleft()
            if spec.prefix_cache_tokens > 0:
                computed = seq.prefilled
                if seq.prefix is not None and seq.prefix in self.cached:  # computed already: only the rest prefills
                    self.cached.move_to_end(seq.prefix)
                    seq.prefilled = max(seq.prefilled, min(seq.prefix_tokens, seq.prompt_tokens - 1))
                self.prefix_cache_queries_total += seq.prompt_tokens
                self.prefix_cache_hits_total += seq.prefilled - computed
            self.running.append(seq)
        decoding = sum(1 for s in self.running if s.prefilled >= s.prompt_tokens)
        budget = spec.max_batched_tokens - decoding
        self._chunks = []
        prefill = 0
        for seq in self.running:
            left = seq.prompt_tokens - seq.prefilled
            if left > 0 and budget > 0:
                chunk = min(left, budget)
                self._chunks.append((seq, chunk))
                budget -= chunk
                prefill += chunk
        if not self.running:
            return 0.0
        return spec.slowdown * (spec.step_base_s + spec.step_per_seq_s * (decoding + len(self._chunks))
                                + spec.prefill_per_token_s * prefill)

    def finish(self) -> list[Seq]:
        """End the planned step: emit tokens; returns the sequences that completed."""
        for seq, chunk in self._chunks:
            seq.prefilled += chunk
        done: list[Seq] = []
        for seq in self.running:
            if seq.prefilled < seq.prompt_tokens:
                continue
            seq.emitted += 1
            self.generation_tokens_total += 1
            if seq.emitted == 1:
                self.prompt_tokens_total += seq.prompt_tokens
                if seq.prefix is not None and 0 < seq.prefix_tokens <= self.spec.prefix_cache_tokens:
                    self._cache(seq.prefix, seq.prefix_tokens)
            last = seq.emitted >= seq.output_tokens
            if seq.on_token is not None:
                seq.on_token(seq.emitted, last)
            if last:
                done.append(seq)
        if done:
            self.running = [s for s in self.running if s not in done]
        self._chunks = []
        return done

    def _cache(self, prefix: int, tokens: int) -> None:
        self.cached[prefix] = tokens
        self.cached.move_to_end(prefix)
        while sum(self.cached.values()) > self.spec.prefix_cache_tokens:
            self.cached.popitem(last=False)


def capacity(spec: EngineSpec, sample: Callable[[random.Random], tuple[int, int]], requests: int = 3000,
             seed: int = 0) -> float:
    """Requests per second the engine completes when it is never short of work (virtual time)."""
    rng = random.Random(seed)
    engine = Engine(spec)
    for _ in range(requests):
        engine.add(Seq(*sample(rng)))
    now, completed = 0.0, 0
    while engine.busy() and completed < requests * 0.9:  # stop before the queue drains
        now += engine.plan()
        completed += len(engine.finish())
    return completed / now if now > 0 else 0.0
