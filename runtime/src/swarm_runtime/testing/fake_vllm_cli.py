"""``swarm-fake-vllm``: run the fake vLLM server in the foreground, for manual runs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from swarm_runtime.testing.fake_vllm import FakeVllm
from swarm_runtime.testing.latency import LatencyModel

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """``swarm-fake-vllm``: run a fake vLLM server in the foreground (Ctrl-C stops it)."""
    parser = argparse.ArgumentParser(prog="swarm-fake-vllm",
                                     description="Run a fake vLLM server (OpenAI API + /metrics) on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", action="append", help="served model name (repeatable)")
    parser.add_argument("--ttft", type=float, default=0.05, help="seconds to the first token")
    parser.add_argument("--per-token", type=float, default=0.02, help="seconds between tokens")
    parser.add_argument("--tokens", type=int, default=16, help="tokens per answer")
    parser.add_argument("--max-num-seqs", type=int, default=None)
    parser.add_argument("--metrics-style", choices=["new", "old"], default="new")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    latency = LatencyModel(args.ttft, args.per_token, args.tokens, max_num_seqs=args.max_num_seqs)
    fake = FakeVllm(args.model or ["primary"], args.port, latency, args.metrics_style, args.api_key)

    async def serve() -> None:
        await fake.start_async()
        print(f"fake vLLM serving {fake.models} on {fake.url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await fake.stop_async()

    with contextlib.suppress(KeyboardInterrupt):
        _run(serve())


def _run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


if __name__ == "__main__":
    main()
