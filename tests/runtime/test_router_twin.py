"""The engine replay: time to first token from the jobs on a vLLM-like engine, as a table of states."""

from __future__ import annotations

import copy
import math
import random

import pytest
from swarm_runtime.router.twin import Job, StepModel, first_token_after

STEP = StepModel(decode_s=0.02, prefill_s_per_token=1e-5, token_budget=1000)


def decoding(*left: float) -> list[Job]:
    return [Job(0.0, n) for n in left]


@pytest.mark.parametrize(("jobs", "slots", "prompt", "expected"), [
    ([], 8, 500, 0.02 + 500e-5),  # idle: one step with the whole prompt in it
    ([], 8, 2500, 3 * 0.02 + 2500e-5),  # beyond the token budget: chunked over three steps
    (decoding(5, 9), 8, 500, 0.02 + 500e-5),  # a free slot: decoding neighbours only share the step
    (decoding(3, 5), 2, 500, 3 * 0.02 + 0.02 + 500e-5),  # full: waits until the first one finishes
    (decoding(3, 5, 4), 2, 500, 3 * 0.02 + 2 * 0.02 + 0.02 + 500e-5),  # and behind the one queued before it
    ([Job(1500, 10)], 8, 500, 2 * 0.02 + 2000e-5),  # a long prompt ahead takes the budget first
    (decoding(*[50] * 900), math.inf, 500, 5 * (0.02 + 100e-5)),  # 900 decoders leave 100 prompt tokens a step
])
def test_first_token_after(jobs: list[Job], slots: float, prompt: int, expected: float) -> None:
    assert first_token_after(jobs, slots, STEP, prompt) == pytest.approx(expected)


def test_a_long_prompt_queued_ahead_prefills_first() -> None:
    quiet = first_token_after(decoding(10, 10), 2, STEP, 100)
    assert quiet == pytest.approx(10 * 0.02 + 0.02 + 100e-5)  # both slots free after 10 steps
    busy = first_token_after([*decoding(10, 10), Job(5000, 10)], 2, STEP, 100)
    # admitted together, but the earlier 5000-token prompt takes the whole budget for five steps
    assert busy == pytest.approx(quiet + 5 * (0.02 + 1000e-5))


def test_a_huge_backlog_is_cut_short_not_looped_forever() -> None:
    jobs = [Job(10**6, 1) for _ in range(100)]
    assert 0 < first_token_after(jobs, 1, StepModel(0.01, 0.0, token_budget=1), 1) < math.inf


def step_by_step(jobs: list[Job], slots: float, model: StepModel, prompt_tokens: int) -> float:
    """The scheduler as the module docstring states it, one step at a time (the reference)."""
    limit = math.inf if math.isinf(slots) else max(1, int(slots))
    mine = Job(float(max(1, prompt_tokens)), math.inf)
    queue, running, elapsed = [*jobs, mine], [], 0.0
    while True:
        while queue and len(running) < limit:
            running.append(queue.pop(0))
        seqs = sum(1 for j in running if j.prompt_left <= 0)
        budget = float(model.token_budget - seqs)
        chunks = 0.0
        for job in running:
            if job.prompt_left > 0 and budget > 0:
                chunk = min(job.prompt_left, budget)
                job.prompt_left, budget, chunks = job.prompt_left - chunk, budget - chunk, chunks + chunk
                seqs += 1
                if job.prompt_left <= 0 and job is mine:
                    return elapsed + model.step(chunks, seqs)
        elapsed += model.step(chunks, seqs)
        for job in running:
            if job.prompt_left <= 0:
                job.decode_left -= 1
        running = [j for j in running if j.decode_left > 0]


def test_jumping_over_quiet_steps_gives_the_step_by_step_answer() -> None:
    rng = random.Random(16)
    for _ in range(500):
        jobs = [Job(rng.choice([0.0, float(rng.randint(1, 3000))]), float(rng.randint(1, 48)))
                for _ in range(rng.randint(0, 20))]
        model = StepModel(rng.uniform(0.01, 0.05), rng.uniform(1e-5, 1e-4), rng.choice([16, 512, 2048]),
                          rng.choice([0.0, rng.uniform(1e-4, 2e-3)]))
        slots, prompt = rng.choice([1, 4, 8, math.inf]), rng.randint(1, 3000)
        expected = step_by_step(copy.deepcopy(jobs), slots, model, prompt)
        assert first_token_after(jobs, slots, model, prompt) == pytest.approx(expected)


def test_a_step_model_needs_a_token_budget() -> None:
    with pytest.raises(ValueError, match="token_budget"):
        StepModel(0.02, 1e-5, token_budget=0)
