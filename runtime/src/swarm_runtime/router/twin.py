"""A vLLM engine replayed forward from what the router knows: when would a new prompt's first token come?

vLLM's scheduler (V1, chunked prefill) admits requests first come, first served up to its
sequence limit; every step gives each decoding sequence one token and spends the rest of a
per-step token budget on prompt chunks in admission order; a prompt whose last chunk runs
in a step emits its first token at the end of that step. A step costs about
``decode_s + per_seq_s × sequences in it + prefill_s_per_token × prompt tokens in it``.
:func:`first_token_after` replays that from the jobs the router has on the engine and returns
the new prompt's time to first token (:meth:`EngineView.replay` adds the step under way).
Unlike a per-request service-time average, it sees that prompts prefilling ahead slow every
sequence and that a queue drains at the pace of the jobs actually on it.

Pure and cheap: it iterates once per event (a prompt's last chunk, a completion), not per step.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DEFAULT_TOKEN_BUDGET", "MAX_EVENTS", "EngineView", "Job", "StepModel", "first_token_after"]

DEFAULT_TOKEN_BUDGET = 2048  # vLLM's max_num_batched_tokens default for online serving
MAX_EVENTS = 20_000  # a replay with more events than this is cut short (the answer is "very long" anyway)
_FOREVER = 1e12  # steps; stands in for an unbounded output length


@dataclass(frozen=True, slots=True)
class StepModel:
    """One engine step's cost: ``decode_s``, plus ``per_seq_s`` per sequence in it (decoding or
    prefilling a chunk), plus ``prefill_s_per_token`` per prompt token in it."""

    decode_s: float
    prefill_s_per_token: float
    token_budget: int = DEFAULT_TOKEN_BUDGET
    per_seq_s: float = 0.0

    def __post_init__(self) -> None:
        if self.token_budget < 1:
            raise ValueError(f"token_budget must be at least 1, got {self.token_budget}")

    def step(self, prefill_tokens: float, seqs: int = 0) -> float:
        return self.decode_s + self.per_seq_s * seqs + self.prefill_s_per_token * prefill_tokens


@dataclass(slots=True)
class Job:
    """One request on the engine: prompt tokens still to prefill, output tokens still to generate."""

    prompt_left: float
    decode_left: float


@dataclass(frozen=True, slots=True)
class EngineView:
    """An engine as the router rebuilds it: its jobs in arrival order, sequence limit, step cost,
    how long until the step under way ends (a request sent now joins the next one), the learned
    correction to add to a replayed TTFT, and how a new request's output is sized (``fill`` ×
    ``max_tokens``, or ``default_tokens`` without a cap)."""

    jobs: list[Job]
    slots: float
    model: StepModel
    residual: float = 0.0
    fill: float = 1.0
    default_tokens: float = 128.0
    under_way_s: float = 0.0

    def output_steps(self, max_tokens: int) -> float:
        return max(1.0, (max_tokens * self.fill if max_tokens > 0 else self.default_tokens) - 1)

    def replay(self, jobs: list[Job], prompt_tokens: int) -> float:
        """Seconds until a ``prompt_tokens`` prompt sent now emits its first token behind ``jobs``
        (consumed), the correction not included."""
        return self.under_way_s + first_token_after(jobs, self.slots, self.model, prompt_tokens)


def first_token_after(jobs: Iterable[Job], slots: float, model: StepModel, prompt_tokens: int) -> float:
    """Seconds until a ``prompt_tokens`` prompt sent now emits its first token.

    ``jobs`` are the requests already on the engine in arrival order (those prefilling are
    consumed); the first ``slots`` of them hold sequence slots, the rest wait. Decoding
    sequences are kept as the step at which they finish, so runs of steps in which only
    counts change are jumped over: a replay costs one iteration per event, not per step.
    """
    limit = math.inf if math.isinf(slots) else max(1, int(slots))
    waiting = iter(jobs)
    mine = Job(float(max(1, prompt_tokens)), math.inf)
    mine_waits = True
    done_at: list[int] = []  # heap: the step after which each decoding sequence has finished
    prefilling: deque[Job] = deque()
    step, elapsed = 0, 0.0
    for _ in range(MAX_EVENTS):
        while len(done_at) + len(prefilling) < limit:
            job = next(waiting, None)
            if job is None:
                if not mine_waits:
                    break
                job, mine_waits = mine, False
            if job.prompt_left > 0:
                prefilling.append(job)
            else:
                heapq.heappush(done_at, step + max(1, math.ceil(min(job.decode_left, _FOREVER))))
        budget = model.token_budget - len(done_at)
        decoding = len(done_at)
        if not prefilling or budget <= 0:  # nothing prefills until the next sequence finishes
            n = done_at[0] - step
            elapsed += n * model.step(0, decoding)
        elif (whole := math.ceil(prefilling[0].prompt_left / budget) - 1) >= 1:  # the head takes every token
            n = min(whole, done_at[0] - step) if done_at else whole
            elapsed += n * model.step(budget, decoding + 1)
            prefilling[0].prompt_left -= n * budget
        else:
            n, chunks, seqs, left = 1, 0.0, decoding, float(budget)
            while prefilling and left > 0:
                job = prefilling[0]
                chunk = min(job.prompt_left, left)
                job.prompt_left -= chunk
                left -= chunk
                chunks += chunk
                seqs += 1
                if job.prompt_left > 0:
                    break
                prefilling.popleft()
                if job is mine:
                    return elapsed + model.step(chunks, seqs)
                if job.decode_left > 1:  # its first token came with this step
                    heapq.heappush(done_at, step + math.ceil(min(job.decode_left, _FOREVER) - 1) + 1)
            elapsed += model.step(chunks, seqs)
        step += n
        while done_at and done_at[0] <= step:
            heapq.heappop(done_at)
    return elapsed
