"""``swarm-router --config FILE``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from aiohttp import web

from .app import SecretMissing, build_app
from .config import ConfigError, load_config

__all__ = ["main", "run"]


def run(app: web.Application, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM, on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    web.run_app(app, host=host, port=port, access_log=None, handler_cancellation=True,
                print=None, loop=loop, shutdown_timeout=5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="swarm-router",
                                     description="Load- and health-aware OpenAI-compatible router for vLLM.")
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument("--port", type=int, default=None, help="override listen.port")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.port is not None:
            cfg = cfg.model_copy(update={"listen": cfg.listen.model_copy(update={"port": args.port})})
        if args.check:
            models = sorted({m for b in cfg.backends for m in b.models})
            print(f"config OK: {len(cfg.backends)} backends, models {models}")
            return
        app = build_app(cfg)
    except (ConfigError, SecretMissing) as exc:
        print(f"swarm-router: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    print(f"swarm-router listening on http://{cfg.listen.host}:{cfg.listen.port}", flush=True)
    run(app, cfg.listen.host, cfg.listen.port)


if __name__ == "__main__":
    main()
