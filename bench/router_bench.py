"""swarm-router benchmark: direct vs swarm-router vs the Rust vllm-router, plus the mixed-GPU scenario.

One run prints side-by-side tables and the ratios against the Rust router (issue 14). Both
routers run pinned to CPU 0; backends and load generators share CPU 1. The Rust router
(PyPI ``vllm-router``) is installed on first use into ``bench/.venv-peers`` (git-ignored).
Non-streaming load uses ``wrk`` (apt-get install wrk; aiohttp when missing) against a canned
backend so the router is the bottleneck; streams use the fake vLLM. Every window records
``other_cpu`` (cores other processes used meanwhile) so a noisy run can be discarded.
Everything binds 127.0.0.1 and every process started here is stopped here.

    .venv/bin/python bench/router_bench.py [--quick] [--part versus|streams|mixed|all] [--profile]
"""

from __future__ import annotations

import argparse
import os
import shutil

from _support import pin
from router.cpu import idle_share
from router.mixed import mixed
from router.procs import LOAD_CPU, ROUTER_CPU
from router.report import print_ratios, print_sides, ratios
from router.versus import Side, nonstream, streams
from rust_router import VLLM_ROUTER_VERSION, ensure_installed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows (noisier)")
    parser.add_argument("--part", choices=["all", "versus", "streams", "mixed"], default="all",
                        help="versus: non-streaming side by side; streams: streaming side by side")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, sample swarm-router under c=32 load with py-spy and print where time goes")
    args = parser.parse_args()
    seconds, rounds = (2.0, 2) if args.quick else (4.0, 3)
    ensure_installed()
    pin(LOAD_CPU)
    print(f"swarm-router benchmark: {os.cpu_count()} CPUs; routers pinned to CPU {ROUTER_CPU}, backends + load "
          f"on CPU {LOAD_CPU}; load generator {'wrk' if shutil.which('wrk') else 'aiohttp'}; vllm-router "
          f"{VLLM_ROUTER_VERSION}; other_cpu before start: {idle_share():.2f} cores")
    by_conns: dict[int, dict[str, Side]] = {}
    stream_sides: dict[str, Side] | None = None
    other: list[float] = []
    if args.part in ("all", "versus"):
        for conns in (1, 32, 128):
            by_conns[conns] = nonstream(conns, seconds, rounds + (2 if conns == 1 else 0))
            print_sides(f"non-stream c={conns} (canned backend, {rounds} rounds of {seconds:g} s)", by_conns[conns])
            other += [x for s in by_conns[conns].values() for x in s.other_cpu]
    if args.part in ("all", "streams"):
        stream_sides = streams(64, seconds, rounds)
        print_sides("streams x64 (fake vLLM: 32 tokens, 20 ms apart; relay = bare TCP pipe)", stream_sides,
                    unit="stream")
        other += [x for s in stream_sides.values() for x in s.other_cpu]
    if by_conns or stream_sides:
        print_ratios(ratios(by_conns, stream_sides), other)
    if args.part in ("all", "mixed"):
        mixed(12.0 if args.quick else 25.0, {})
    if args.profile:
        from router.profile import profile_swarm

        profile_swarm(seconds=max(seconds, 4.0))


if __name__ == "__main__":
    main()
