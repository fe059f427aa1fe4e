"""Reading vLLM's /metrics page, with the old and the new metric names."""

from __future__ import annotations

import pytest

from gateway.providers.vllm.metrics import LoadSample, hit_rate, parse_metrics

NEW = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} 3.0
vllm:num_requests_running{engine="1",model_name="m"} 2.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} 4.0
# TYPE vllm:num_requests_waiting_by_reason gauge
vllm:num_requests_waiting_by_reason{engine="0",model_name="m",reason="capacity"} 4.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="m"} 0.25
vllm:kv_cache_usage_perc{engine="1",model_name="m"} 0.5
# TYPE vllm:prefix_cache_queries counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} 1000.0
vllm:prefix_cache_queries_created{engine="0",model_name="m"} 1.7e9
# TYPE vllm:prefix_cache_hits counter
vllm:prefix_cache_hits_total{engine="0",model_name="m"} 400.0
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="0.001",model_name="m"} 0.0
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="m"} 5.0
vllm:time_to_first_token_seconds_count{model_name="m"} 5.0
vllm:time_to_first_token_seconds_sum{model_name="m"} 1.2
"""

OLD = """\
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 1.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} 0.0
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.9
# TYPE vllm:gpu_prefix_cache_queries_total counter
vllm:gpu_prefix_cache_queries_total{model_name="m"} 10.0
# TYPE vllm:gpu_prefix_cache_hits_total counter
vllm:gpu_prefix_cache_hits_total{model_name="m"} 5.0
"""


def test_new_names_summed_over_engines() -> None:
    assert parse_metrics(NEW) == LoadSample(
        running=5, waiting=4, kv_cache_usage=0.5, prefix_queries=1000.0, prefix_hits=400.0
    )


def test_old_names() -> None:
    assert parse_metrics(OLD) == LoadSample(
        running=1, waiting=0, kv_cache_usage=0.9, prefix_queries=10.0, prefix_hits=5.0
    )


def test_missing_metrics_and_junk() -> None:
    assert parse_metrics("# nothing here\nother_metric 1\n") == LoadSample()
    with pytest.raises(ValueError):
        parse_metrics("vllm:num_requests_running{ 1 2 3\n")


def test_hit_rate_between_scrapes() -> None:
    first = LoadSample(prefix_queries=100.0, prefix_hits=50.0)
    second = LoadSample(prefix_queries=300.0, prefix_hits=70.0)
    assert hit_rate(None, first) == 0.5
    assert hit_rate(first, second) == pytest.approx(0.1)
    assert hit_rate(second, second) is None
    assert hit_rate(second, LoadSample(prefix_queries=10.0, prefix_hits=10.0)) == 1.0, "counter reset"
    assert hit_rate(None, LoadSample()) is None
