"""The lean upstream HTTP/1.1 client against a scripted raw-socket server: framing, keep-alive, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from swarm_runtime.router.upstream import (
    ConnectFailed,
    FirstByteTimeout,
    UpstreamLost,
    UpstreamPool,
    UpstreamResponse,
)

from .support import free_port

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    return head + await reader.readexactly(length)


def run(script: Script, client: Callable[[UpstreamPool, list[bytes]], Awaitable[None]]) -> list[bytes]:
    """Serve ``script`` on 127.0.0.1 and run ``client`` against it; returns the requests the server saw."""
    seen: list[bytes] = []

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await script(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        async def recording(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            original = reader.readuntil

            async def readuntil(separator: bytes = b"\n") -> bytes:
                data = await original(separator)
                seen.append(data)
                return data

            reader.readuntil = readuntil  # type: ignore[method-assign]
            await handle(reader, writer)

        server = await asyncio.start_server(recording, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool(f"http://127.0.0.1:{port}", connect_timeout=1.0)
        try:
            async with asyncio.timeout(5):
                await client(pool, seen)
        finally:
            pool.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())
    return seen


def head(pool: UpstreamPool) -> bytes:
    return pool.head("/v1/completions", {"Content-Type": "application/json", "Authorization": "Bearer k"})


async def send(pool: UpstreamPool, body: bytes, within: float = 3.0) -> UpstreamResponse:
    return await pool.request(head(pool), body, asyncio.get_running_loop().time() + within)


def test_content_length_body_and_keep_alive_reuse() -> None:
    connections = 0

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            await _read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
                         b'{"ok": 1}\r\n')
            await writer.drain()

    async def client(pool: UpstreamPool, seen: list[bytes]) -> None:
        for _ in range(3):
            resp = await send(pool, b'{"prompt": "x"}')
            assert (resp.status, resp.content_type) == (200, "application/json")
            assert await resp.read() == b'{"ok": 1}\r\n'
            resp.close()
        assert seen[0].startswith(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:")
        assert b"Authorization: Bearer k\r\n" in seen[0] and b"Content-Length: 15\r\n" in seen[0]

    run(script, client)
    assert connections == 1


@pytest.mark.parametrize("split", [1, 3, 7, 1000])
def test_chunked_stream_is_decoded_whatever_the_packet_boundaries(split: int) -> None:
    body = (b"5\r\nhello\r\n" b"7;ext=1\r\n, world\r\n" b"0\r\nX-Trailer: t\r\n\r\n")

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(body), split):
            writer.write(body[i:i + split])
            await writer.drain()
            await asyncio.sleep(0.001)
        await reader.read()  # keep the connection open until the client goes

    async def client(pool: UpstreamPool, seen: list[bytes]) -> None:
        resp = await send(pool, b"{}")
        assert resp.content_type == "text/event-stream"
        got = b""
        while chunk := await resp.readany():
            got += chunk
        assert got == b"hello, world"
        resp.close()
        assert len(pool.idle) == 1  # a complete chunked response leaves the connection reusable

    run(script, client)


def test_body_delimited_by_close_and_no_reuse() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.0 503 Service Unavailable\r\n\r\nbusy")
        await writer.drain()

    async def client(pool: UpstreamPool, seen: list[bytes]) -> None:
        resp = await send(pool, b"{}")
        assert resp.status == 503 and await resp.read() == b"busy"
        resp.close()
        assert not pool.idle

    run(script, client)


def test_connection_dropped_mid_body_raises_upstream_lost() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
        await writer.drain()

    async def client(pool: UpstreamPool, seen: list[bytes]) -> None:
        resp = await send(pool, b"{}")
        assert await resp.readany() == b"hel"
        with pytest.raises(UpstreamLost):
            await resp.readany()
        resp.close()

    run(script, client)


def test_garbage_instead_of_http_is_upstream_lost() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def client(pool: UpstreamPool, seen: list[bytes]) -> None:
        with pytest.raises(UpstreamLost, match="bad status line"):
            await send(pool, b"{}")

    run(script, client)


def test_a_kept_alive_connection_the_backend_closed_is_replaced_transparently() -> None:
    connections = 0

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        first_connection = connections == 1
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        if first_connection:
            await _read_request(reader)  # the next request arrives as the keep-alive timeout fires: no answer

    async def client(pool: UpstreamPool, seen: list[bytes]) -> None:
        for _ in range(2):
            resp = await send(pool, b"{}")
            assert await resp.read() == b"ok"
            resp.close()

    seen = run(script, client)
    assert connections == 2 and len(seen) == 3  # the second request was sent twice, answered once


def test_refused_connection_is_connect_failed() -> None:
    async def main() -> None:
        pool = UpstreamPool(f"http://127.0.0.1:{free_port()}", connect_timeout=1.0)
        with pytest.raises(ConnectFailed):
            await send(pool, b"{}")

    asyncio.run(main())


def test_closing_an_unfinished_response_aborts_the_connection() -> None:
    closed = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        await reader.read()  # returns at EOF: the client aborted
        closed.set()

    async def client(pool: UpstreamPool, seen: list[bytes]) -> None:
        resp = await send(pool, b"{}")
        assert await resp.readany() == b"abc"
        resp.close()
        await asyncio.wait_for(closed.wait(), 2)
        assert not pool.idle

    run(script, client)


def test_deadline_aborts_until_disarmed() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(b"3\r\nabc\r\n")
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def client(pool: UpstreamPool, seen: list[bytes]) -> None:
        resp = await send(pool, b"{}", within=0.1)  # the head is in time, the first body byte is not
        with pytest.raises(FirstByteTimeout):
            await resp.readany()
        resp.close()
        resp = await send(pool, b"{}", within=0.5)
        assert await resp.readany() == b"abc"
        resp.disarm()  # from now on the deadline no longer applies
        assert await resp.readany() == b""
        resp.close()

    run(script, client)


def test_unsolicited_bytes_on_an_idle_connection_retire_it() -> None:
    connections = 0

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")  # nobody asked
        await writer.drain()
        await reader.read()

    async def client(pool: UpstreamPool, seen: list[bytes]) -> None:
        resp = await send(pool, b"{}")
        assert await resp.read() == b"ok"
        resp.close()
        await asyncio.sleep(0.2)
        resp = await send(pool, b"{}")  # must not be answered with the stale response
        assert await resp.read() == b"ok"
        resp.close()

    run(script, client)
    assert connections == 2


def test_host_header_for_default_ports_and_ipv6() -> None:
    assert UpstreamPool("http://example:80", 1).host_header == "example"
    assert UpstreamPool("https://example", 1).host_header == "example"
    assert UpstreamPool("http://[::1]:8000", 1).host_header == "[::1]:8000"
