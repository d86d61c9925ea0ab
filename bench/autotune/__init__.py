"""The pieces of ``bench/autotune_bench.py``: simulated node, scenarios, load, policies, report."""
