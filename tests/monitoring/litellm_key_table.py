"""LiteLLM's proxy app as the pinned release ships it (auth middleware, route checks, the
`prometheus` callback's /metrics), served by uvicorn, with its key table stood in for.

Virtual keys live in PostgreSQL through Prisma, whose engines are downloaded at first use (no
such egress here). So `POST /key/generate` with the master key puts the posted key into
LiteLLM's own key cache, with the posted fields, where LiteLLM's auth looks a key up before its
database; every other request (and /key/generate with any other key) reaches LiteLLM unchanged.

    LITELLM_LOCAL_MODEL_COST_MAP=True python litellm_key_table.py PORT MASTER_KEY
"""

from __future__ import annotations

import json
import sys
from typing import Any

import litellm
import uvicorn
from litellm.integrations.prometheus import PrometheusLogger
from litellm.proxy import proxy_server
from litellm.proxy._types import UserAPIKeyAuth, hash_token

STORED = ("key_alias", "metadata", "models", "allowed_routes")
"""Fields of /key/generate's body that LiteLLM keeps on the key and its auth reads."""


class KeyTable:
    def __init__(self, app: Any, master_key: str) -> None:
        self.app, self.master = app, f"Bearer {master_key}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or ())
        if (scope["type"] != "http" or scope["path"] != "/key/generate" or scope["method"] != "POST"
                or headers.get(b"authorization") != self.master):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        posted = json.loads(body)
        token = hash_token(posted["key"])
        key = UserAPIKeyAuth(token=token, **{name: posted[name] for name in STORED if name in posted})
        await proxy_server.user_api_key_cache.async_set_cache(key=token, value=key, ttl=3600)
        reply = json.dumps({"key": posted["key"], "key_alias": posted.get("key_alias")}).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(reply)).encode())]})
        await send({"type": "http.response.body", "body": reply})


def main() -> None:
    port, master = int(sys.argv[1]), sys.argv[2]
    proxy_server.master_key = master
    proxy_server.prisma_client = object()  # "a database is connected": keys are found in the cache first
    litellm.callbacks = ["prometheus"]  # as the rendered config.yaml sets it
    PrometheusLogger._mount_metrics_endpoint()
    uvicorn.run(KeyTable(proxy_server.app, master), host="127.0.0.1", port=port, lifespan="off",
                log_level="warning")


if __name__ == "__main__":
    main()
