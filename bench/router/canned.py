"""A canned-answer HTTP/1.1 backend: ``python canned.py PORT``.

It parses just enough HTTP (request line, ``Content-Length``, keep-alive) to answer every
POST with the same completion JSON a fake vLLM sends, in a few microseconds, so throughput
and CPU comparisons measure the router, not the backend. ``GET /metrics`` is empty, every
other GET answers ``ok``.
"""

from __future__ import annotations

import asyncio
import sys

_COMPLETION = (b'{"id": "cmpl-canned", "object": "text_completion", "created": 0, "model": "primary", '
               b'"choices": [{"index": 0, "finish_reason": "length", "logprobs": null, "text": '
               b'"tok0 tok1 tok2 tok3 tok4 tok5 tok6 tok7 tok8 tok9 tok10 tok11 tok12 tok13 tok14 tok15"}], '
               b'"usage": {"prompt_tokens": 1, "completion_tokens": 16, "total_tokens": 17}}')


def _response(body: bytes, ctype: bytes) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


POST = _response(_COMPLETION, b"application/json")
METRICS = _response(b"", b"text/plain; version=0.0.4")
OK = _response(b"ok", b"text/plain")


class Canned(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = self.buffer[:end]
            length = 0
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(lower[at + 17:stop if stop >= 0 else len(lower)])
            if len(self.buffer) < end + 4 + length:
                break
            self.buffer = self.buffer[end + 4 + length:]
            if head.startswith(b"POST"):
                out.append(POST)
            elif head.startswith(b"GET /metrics"):
                out.append(METRICS)
            else:
                out.append(OK)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Canned, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    import uvloop

    uvloop.run(main(int(sys.argv[1])))
