"""A lean HTTP/1.1 client for the data path: keep-alive connections to one backend, bytes in, bytes out.

The router forwards a JSON body it already holds and relays the answer unchanged, so it
needs far less than a general client: one request line and a few pre-built header bytes
out; status, ``Content-Type`` and a body framed by ``Content-Length``, chunked encoding or
connection close back. Doing just that on an :class:`asyncio.Protocol` costs a fraction of
a general-purpose client per request (see ``bench/router_bench.py --profile``). Health
checks and scrapes keep using aiohttp.

Errors are :class:`ConnectFailed` (the request never left: the backend's fault) or
:class:`UpstreamLost` (the backend had the request and the connection broke or spoke
nonsense). Closing a response before its end aborts the connection, which is how a
client's disconnect cancels the upstream request.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from urllib.parse import urlsplit

from .http1 import FirstByteTimeout, Http1Connection, UpstreamLost

__all__ = ["ConnectFailed", "FirstByteTimeout", "UpstreamLost", "UpstreamPool", "UpstreamResponse"]

IDLE_S = 4.0  # reuse a kept-alive connection only this long (uvicorn, vLLM's server, closes after 5 s)
MAX_IDLE = 512  # idle connections kept per backend


class ConnectFailed(ConnectionError):
    """No connection to the backend: the request was not sent."""


class UpstreamResponse:
    """One response; call :meth:`close` when done (returns the connection to the pool or aborts it)."""

    __slots__ = ("_conn", "_pool", "content_type", "status")

    def __init__(self, pool: UpstreamPool, conn: Http1Connection) -> None:
        self._pool = pool
        self._conn = conn
        self.status = conn.status
        self.content_type = conn.content_type

    async def readany(self) -> bytes:
        """The next body bytes available, ``b""`` at the end; raises :class:`UpstreamLost`."""
        conn = self._conn
        while True:
            if conn.chunks:
                return conn.take()
            if conn.error is not None:
                raise conn.error
            if conn.done:
                return b""
            await conn.wait()

    async def read(self) -> bytes:
        """The whole body."""
        conn = self._conn
        while not conn.done:
            if conn.error is not None:
                raise conn.error
            await conn.wait()
        return conn.take()

    def disarm(self) -> None:
        """The first byte was handled: the request's deadline no longer applies."""
        self._conn.disarm()

    def close(self) -> None:
        conn = self._conn
        conn.disarm()
        if conn.done and not conn.chunks and conn.keep_alive and conn.error is None:
            self._pool.give_back(conn)
        elif conn.transport is not None:
            conn.transport.abort()


class UpstreamPool:
    """Keep-alive connections to one backend (``http://host:port`` or ``https://...``)."""

    def __init__(self, base_url: str, connect_timeout: float, ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.ssl = (ssl_context or ssl.create_default_context()) if self.tls else None
        default_port = self.port == (443 if self.tls else 80)
        self.host_header = self.host if default_port else f"{self.host}:{self.port}"
        if ":" in self.host and not self.host.startswith("["):
            self.host_header = f"[{self.host}]" if default_port else f"[{self.host}]:{self.port}"
        self.connect_timeout = connect_timeout
        self.idle: deque[Http1Connection] = deque()

    def head(self, path: str, headers: dict[str, str]) -> bytes:
        """The request bytes before ``Content-Length``'s value, built once per path."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return (f"POST {path} HTTP/1.1\r\nHost: {self.host_header}\r\n{extra}Content-Length: ").encode("latin-1")

    async def _connect(self, deadline: float) -> Http1Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + self.connect_timeout)):
                _, conn = await loop.create_connection(lambda: Http1Connection(loop), self.host, self.port,
                                                       ssl=self.ssl)
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc!r}") from exc
        return conn

    def _idle_conn(self) -> Http1Connection | None:
        now = asyncio.get_running_loop().time()
        while self.idle:
            conn = self.idle.pop()
            if not conn.closed and now - conn.idle_since < IDLE_S and conn.transport is not None:
                return conn
            if conn.transport is not None:
                conn.transport.close()
        return None

    async def request(self, head: bytes, body: bytes, deadline: float) -> UpstreamResponse:
        """Send ``head`` (from :meth:`head`) with ``body``; returns once the response head arrived.

        Until :meth:`UpstreamResponse.disarm`, reaching ``deadline`` (loop time) aborts the
        exchange with :class:`FirstByteTimeout`; one timer, armed with the request.
        """
        message = head + str(len(body)).encode() + b"\r\n\r\n" + body
        conn = self._idle_conn()
        reused = conn is not None
        if conn is None:
            conn = await self._connect(deadline)
        while True:  # inlined exchange: this runs once per request, every frame costs on each resume
            conn.arm(deadline)
            transport = conn.transport
            try:
                if transport is None or conn.closed:
                    raise UpstreamLost("connection closed before the request")
                transport.write(message)
                while not conn.head_done:
                    if conn.error is not None:
                        raise conn.error
                    if conn.closed:
                        raise UpstreamLost("connection closed before the response")
                    await conn.wait()
                return UpstreamResponse(self, conn)
            except UpstreamLost:
                conn.disarm()
                if transport is not None:
                    transport.abort()
                if not reused or conn.got_bytes:
                    raise
            except BaseException:
                conn.disarm()
                if transport is not None:
                    transport.abort()
                raise
            reused = False  # a kept-alive connection the backend had just closed: once more, fresh
            conn = await self._connect(deadline)

    def give_back(self, conn: Http1Connection) -> None:
        conn.disarm()
        conn.reset()
        conn.idle_since = asyncio.get_running_loop().time()
        if len(self.idle) >= MAX_IDLE and conn.transport is not None:
            conn.transport.close()
            return
        self.idle.append(conn)

    def close(self) -> None:
        while self.idle:
            conn = self.idle.pop()
            if conn.transport is not None:
                conn.transport.close()
