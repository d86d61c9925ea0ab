"""Scenario code of ``bench/router_bench.py`` (swarm-router vs direct, the Rust vllm-router and a TCP relay)."""
