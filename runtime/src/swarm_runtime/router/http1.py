"""One HTTP/1.1 client connection as an :class:`asyncio.Protocol`: parses responses into body chunks.

Just what relaying needs: the status, ``Content-Type``, keep-alive, and a body framed by
``Content-Length``, chunked encoding (decoded, trailers dropped) or the connection's close.
The reader awaits :meth:`Http1Connection.wait` and takes what arrived with ``take()``;
reading pauses while more than ``_HIGH_WATER`` bytes wait unread. A deadline armed with
:meth:`Http1Connection.arm` aborts the connection with :class:`FirstByteTimeout`.
"""

from __future__ import annotations

import asyncio

__all__ = ["FirstByteTimeout", "Http1Connection", "UpstreamLost"]

_HIGH_WATER = 1 << 18  # pause reading when this much body is buffered and unread
_MAX_HEAD = 1 << 16


class UpstreamLost(ConnectionError):
    """The connection broke (or the backend spoke something other than HTTP/1.1) after the request was sent."""


class FirstByteTimeout(TimeoutError):
    """The deadline given to :meth:`UpstreamPool.request` passed before :meth:`UpstreamResponse.disarm`."""


class Http1Connection(asyncio.Protocol):
    """One connection; parses one response at a time into decoded body chunks."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.reset()

    def reset(self) -> None:
        """Ready for the next response on the same connection."""
        self.head = b""
        self.head_done = False
        self.status = 0
        self.content_type = ""
        self.keep_alive = True
        self.remaining = -1  # Content-Length bytes left; -1 chunked or until close
        self.chunked = False
        self.chunk_left = 0
        self.raw = b""  # undecoded chunked bytes
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.done = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False
        self.got_bytes = False
        self.busy = False  # a request is out: bytes are expected

    # -- asyncio.Protocol --------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.done:
            if not self.chunked and self.remaining < 0 and self.head_done:
                self._finish()  # body delimited by connection close
            elif self.error is None:
                self.error = UpstreamLost(f"connection lost: {exc!r}" if exc else "connection closed by the backend")
        self._wake()

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if not self.busy or self.done:  # unsolicited bytes: this connection can no longer be trusted
            self.keep_alive = False
            if not self.busy and self.transport is not None:
                self.transport.abort()
            return
        try:
            if not self.head_done:
                self.head += data
                end = self.head.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.head) > _MAX_HEAD:
                        raise UpstreamLost("response head too large")
                    return
                data = self.head[end + 4:]
                self._parse_head(self.head[:end])
                if self.done:
                    return
            if self.chunked:
                self._dechunk(data)
            elif data:
                if self.remaining >= 0:
                    data = data[:self.remaining]
                    self.remaining -= len(data)
                self._push(data)
                if self.remaining == 0:
                    self._finish()
        except UpstreamLost as exc:
            self.error = exc
            if self.transport is not None:
                self.transport.abort()
        self._wake()

    # -- parsing -----------------------------------------------------------------------
    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise UpstreamLost(f"bad status line {lines[0][:80]!r}")
        self.status = int(parts[1])
        self.keep_alive = parts[0] == b"HTTP/1.1"
        self.head_done = True
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            key = name.strip().lower()
            if key == b"content-length":
                try:
                    self.remaining = int(value.strip())
                except ValueError:
                    raise UpstreamLost("bad Content-Length") from None
            elif key == b"transfer-encoding" and b"chunked" in value.lower():
                self.chunked = True
            elif key == b"content-type":
                self.content_type = value.strip().decode("latin-1")
            elif key == b"connection":
                token = value.strip().lower()
                self.keep_alive = token != b"close" and (self.keep_alive or token == b"keep-alive")
        if self.chunked:
            self.remaining = -1
        elif self.remaining < 0:
            self.keep_alive = False  # read until close
        if self.status in (204, 304) or (self.remaining == 0 and not self.chunked):
            self._finish()

    def _dechunk(self, data: bytes) -> None:
        buf = self.raw + data if self.raw else data
        pos = 0
        out: list[bytes] = []
        while True:
            if self.chunk_left > 0:
                piece = buf[pos:pos + self.chunk_left]
                if not piece:
                    break
                out.append(piece)
                pos += len(piece)
                self.chunk_left -= len(piece)
                if self.chunk_left:
                    break
                self.chunk_left = -2  # the CRLF after the data
            if self.chunk_left == -2:
                if len(buf) - pos < 2:
                    break
                pos += 2
                self.chunk_left = 0
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if len(buf) - pos > 1024:
                    raise UpstreamLost("bad chunk size line")
                break
            size_text = buf[pos:end].split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise UpstreamLost(f"bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", end) if buf[end + 2:end + 4] != b"\r\n" else end
                if trailer_end < 0:
                    break  # wait for the trailers to end
                pos = len(buf)
                self.raw = b""
                for piece in out:
                    self._push(piece)
                self._finish()
                return
            pos = end + 2
            self.chunk_left = size
        self.raw = buf[pos:]
        for piece in out:
            self._push(piece)

    def _push(self, data: bytes) -> None:
        if not data:
            return
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def _finish(self) -> None:
        self.done = True

    def arm(self, deadline: float) -> None:
        """A request goes out now; abort with :class:`FirstByteTimeout` at ``deadline`` unless disarmed first."""
        self.busy = True
        self.timer = self.loop.call_at(deadline, self._expire)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _expire(self) -> None:
        self.timer = None
        if self.error is None:
            self.error = FirstByteTimeout("no answer before the deadline")
        if self.transport is not None:
            self.transport.abort()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def wait(self) -> asyncio.Future[None]:
        """A future that completes when something happened (bytes, end, error); await it directly.

        A plain function returning the future, not a coroutine: one frame less on every resume.
        """
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        waiter = self.waiter = self.loop.create_future()
        return waiter

    def take(self) -> bytes:
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        self.buffered = 0
        return data
