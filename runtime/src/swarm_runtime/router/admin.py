"""The authenticated admin API: the autotuner's actuator.

``PUT /admin/backends/{name}/limit`` with ``{"limit": N}`` sets a backend's concurrency cap;
``GET /admin/backends`` lists every backend's state. Both need ``Authorization: Bearer
<admin key>``; without an admin key in the environment the endpoints answer 403.
"""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web

from .errors import error_response
from .pool import Pool

__all__ = ["Admin"]

log = logging.getLogger(__name__)
MAX_LIMIT = 100_000


class Admin:
    def __init__(self, pool: Pool, admin_key: str | None, admin_key_env: str) -> None:
        self.pool = pool
        self.auth = f"Bearer {admin_key}".encode() if admin_key else None
        self.admin_key_env = admin_key_env

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/admin/backends", self.list_backends),
                web.put("/admin/backends/{name}/limit", self.set_limit)]

    def _denied(self, request: web.Request) -> web.Response | None:
        if self.auth is None:
            return error_response(403, f"The admin API is disabled: set {self.admin_key_env} in the "
                                  "router's environment.", "permission_error", "admin_disabled")
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, self.auth):
            return error_response(401, "Missing or invalid admin key.", "authentication_error",
                                  "invalid_api_key")
        return None

    async def list_backends(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        return web.json_response([b.describe() for b in self.pool.backends.values()])

    async def set_limit(self, request: web.Request) -> web.Response:
        denied = self._denied(request)
        if denied is not None:
            return denied
        name = request.match_info["name"]
        if name not in self.pool.backends:
            return error_response(404, f"Unknown backend `{name}`. Known: {', '.join(self.pool.backends)}.",
                                  param="name", code="backend_not_found")
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return error_response(400, "The body must be JSON like {\"limit\": 8}.", code="invalid_json")
        limit = body.get("limit") if isinstance(body, dict) else None
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            return error_response(400, f"`limit` must be an integer from 1 to {MAX_LIMIT}.", param="limit",
                                  code="invalid_limit")
        old = self.pool.backends[name].limit
        self.pool.set_limit(name, limit)
        if old != limit:
            log.info("backend %s limit %d -> %d", name, old, limit)
        return web.json_response({"backend": name, "limit": limit})
