"""OpenAI-style error responses: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import orjson
from aiohttp import web

__all__ = ["error_event", "error_response"]


def _payload(message: str, kind: str, code: str | None, param: str | None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}})


def error_response(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    retry_after: int | None = None,
) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.Response(status=status, body=_payload(message, kind, code, param),
                        content_type="application/json", headers=headers)


def error_event(message: str, kind: str = "upstream_error", code: str | None = "upstream_failed") -> bytes:
    """The SSE event a client gets when the upstream fails after streaming started."""
    return b"data: " + _payload(message, kind, code, None) + b"\n\n"
