"""parse_vllm_metrics on current names, deprecated names, several label sets and garbage."""

from __future__ import annotations

import math

import pytest
from swarm_runtime.testing.fake_vllm import FakeVllm
from swarm_runtime.vllm_metrics import Histogram, parse_vllm_metrics

NEW = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="primary"} 3.0
vllm:num_requests_running{engine="1",model_name="primary"} 2.0
vllm:num_requests_waiting{engine="0",model_name="primary"} 4.0
vllm:kv_cache_usage_perc{engine="0",model_name="primary"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="primary"} 0.75
vllm:num_preemptions_total{engine="0",model_name="primary"} 7.0
vllm:prompt_tokens_total{engine="0",model_name="primary"} 1000.0
vllm:generation_tokens_total{engine="0",model_name="primary"} 500.0
vllm:prefix_cache_queries_total{engine="0",model_name="primary"} 1200.0
vllm:prefix_cache_hits_total{engine="0",model_name="primary"} 300.0
vllm:prefix_cache_hits_total{engine="1",model_name="primary"} 64.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.1",model_name="primary"} 2.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="0.5",model_name="primary"} 6.0
vllm:time_to_first_token_seconds_bucket{engine="0",le="+Inf",model_name="primary"} 8.0
vllm:time_to_first_token_seconds_sum{engine="0",model_name="primary"} 2.0
vllm:time_to_first_token_seconds_count{engine="0",model_name="primary"} 8.0
vllm:time_to_first_token_seconds_bucket{engine="1",le="0.1",model_name="primary"} 2.0
vllm:time_to_first_token_seconds_bucket{engine="1",le="0.5",model_name="primary"} 2.0
vllm:time_to_first_token_seconds_bucket{engine="1",le="+Inf",model_name="primary"} 2.0
vllm:time_to_first_token_seconds_sum{engine="1",model_name="primary"} 0.1
vllm:time_to_first_token_seconds_count{engine="1",model_name="primary"} 2.0
vllm:inter_token_latency_seconds_bucket{le="0.05",model_name="primary"} 10.0
vllm:inter_token_latency_seconds_bucket{le="+Inf",model_name="primary"} 10.0
vllm:inter_token_latency_seconds_sum{model_name="primary"} 0.2
vllm:inter_token_latency_seconds_count{model_name="primary"} 10.0
"""

OLD = """\
vllm:num_requests_running{model_name="m"} 1.0
vllm:num_requests_waiting{model_name="m"} 2.0
vllm:gpu_cache_usage_perc{model_name="m"} 0.5
vllm:num_preemptions_total{model_name="m"} 3.0
vllm:time_per_output_token_seconds_bucket{le="0.025",model_name="m"} 4.0
vllm:time_per_output_token_seconds_bucket{le="+Inf",model_name="m"} 4.0
vllm:time_per_output_token_seconds_sum{model_name="m"} 0.08
vllm:time_per_output_token_seconds_count{model_name="m"} 4.0
"""


def test_current_names_are_summed_across_label_sets() -> None:
    m = parse_vllm_metrics(NEW)
    assert (m.running, m.waiting, m.preemptions_total) == (5.0, 4.0, 7.0)
    assert (m.prompt_tokens_total, m.generation_tokens_total) == (1000.0, 500.0)
    assert m.prefix_cache_hits_total == 364.0
    assert m.ttft is not None and m.ttft.count == 10.0 and m.ttft.sum == pytest.approx(2.1)
    assert m.ttft.buckets == ((0.1, 4.0), (0.5, 8.0), (math.inf, 10.0))
    assert m.inter_token is not None and m.inter_token.count == 10.0
    assert m.e2e is None and m.queue_time is None


def test_kv_usage_keeps_the_fullest_engine() -> None:
    assert parse_vllm_metrics(NEW).kv_cache_usage == 0.75


def test_deprecated_names_are_read() -> None:
    m = parse_vllm_metrics(OLD)
    assert (m.running, m.waiting, m.kv_cache_usage, m.preemptions_total) == (1.0, 2.0, 0.5, 3.0)
    assert m.inter_token is not None and m.inter_token.quantile(0.5) == pytest.approx(0.0125)


def test_both_generations_present_are_not_double_counted() -> None:
    both = NEW + 'vllm:gpu_cache_usage_perc{model_name="primary"} 0.9\n' + OLD.replace("running", "x")
    m = parse_vllm_metrics(both)
    assert m.kv_cache_usage == 0.75
    assert m.inter_token is not None and m.inter_token.count == 10.0


@pytest.mark.parametrize("garbage", [
    "", "\x00\xff", "vllm:num_requests_running{", "vllm:num_requests_running{} abc",
    "vllm:num_requests_running", "vllm:time_to_first_token_seconds_bucket{le=\"x\"} 1",
    "vllm:time_to_first_token_seconds_bucket{} 1", "{}{}{} 1 2 3", "vllm:num_requests_waiting NaN",
])
def test_garbage_never_raises_and_reads_as_missing(garbage: str) -> None:
    m = parse_vllm_metrics(garbage + "\nvllm:num_requests_waiting 2\n")
    assert m.waiting == 2.0 and m.running == 0.0 and m.ttft is None


def test_timestamps_and_label_values_with_spaces() -> None:
    text = 'vllm:num_requests_waiting{model_name="a b} c"} 3 1700000000000\n'
    assert parse_vllm_metrics(text).waiting == 3.0


def test_quantile_interpolates_like_prometheus() -> None:
    h = Histogram(((0.1, 4.0), (0.5, 8.0), (math.inf, 10.0)), 2.1, 10.0)
    assert h.quantile(0.2) == pytest.approx(0.05)
    assert h.quantile(0.6) == pytest.approx(0.3)
    assert h.quantile(0.99) == 0.5  # in the +Inf bucket: highest finite bound
    assert Histogram(((math.inf, 0.0),), 0.0, 0.0).quantile(0.5) is None


def test_minus_gives_the_window_between_scrapes() -> None:
    earlier = Histogram(((0.1, 4.0), (0.5, 8.0), (math.inf, 10.0)), 2.0, 10.0)
    later = Histogram(((0.1, 4.0), (0.5, 18.0), (math.inf, 20.0)), 6.0, 20.0)
    window = later.minus(earlier)
    assert window.buckets == ((0.1, 0.0), (0.5, 10.0), (math.inf, 10.0))
    assert (window.sum, window.count) == (4.0, 10.0)
    assert window.quantile(0.5) == pytest.approx(0.3)
    assert earlier.minus(later) == earlier  # counter reset: the new scrape stands alone


@pytest.mark.parametrize("style", ["new", "old"])
def test_fake_vllm_exposition_round_trips(style: str) -> None:
    fake = FakeVllm(metrics_style=style)  # type: ignore[arg-type]
    fake.set_metrics_override(running=3, waiting=9, kv_cache_usage=0.4, preemptions_total=2)
    m = parse_vllm_metrics(fake.metrics_text())
    assert (m.running, m.waiting, m.kv_cache_usage, m.preemptions_total) == (3.0, 9.0, 0.4, 2.0)
    assert m.ttft is not None and m.inter_token is not None and m.e2e is not None
