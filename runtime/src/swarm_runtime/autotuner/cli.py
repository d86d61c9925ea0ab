"""``swarm-autotuner --config FILE``: run the tuner until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from swarm_runtime.autotuner.config import AutotunerConfig, ConfigError, load_config
from swarm_runtime.autotuner.loop import Autotuner
from swarm_runtime.secrets import SecretError

__all__ = ["main"]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="swarm-autotuner",
                                     description="Online GPU-aware concurrency tuning for swarm-router.")
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--dry-run", action="store_true", help="compute and report limits, never push")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument("--max-ticks", type=int, default=None, help="stop after N ticks (testing)")
    return parser.parse_args(argv)


async def _serve(config: AutotunerConfig, max_ticks: int | None) -> None:
    tuner = Autotuner(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await tuner.start()
        await tuner.run(stop, max_ticks=max_ticks)
    finally:
        await tuner.close()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        config = load_config(args.config)
    except (ConfigError, OSError) as exc:
        print(f"swarm-autotuner: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        config = config.model_copy(update={"dry_run": True})
    if args.check:
        print(f"config OK ({len(config.targets)} target(s))")
        return 0
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config.admin_key()  # fail fast, before any loop starts, on an unreadable key file
        try:
            import uvloop
        except ImportError:
            asyncio.run(_serve(config, args.max_ticks))
        else:
            uvloop.run(_serve(config, args.max_ticks))
    except SecretError as exc:
        print(f"swarm-autotuner: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
