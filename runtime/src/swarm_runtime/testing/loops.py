"""Event-loop teardown that leaks no socket (tests run with warnings as errors)."""

from __future__ import annotations

import asyncio
import gc

__all__ = ["drain_and_close"]


def drain_and_close(loop: asyncio.AbstractEventLoop) -> None:
    """Close every connection and task left on a stopped loop, then the loop, leaking no socket.

    A connection accepted in the instant a server shuts down can get a transport whose
    protocol never hears of it (and which the loop's own registry may no longer list), so
    the transports bound to this loop are found through the garbage collector's view and
    aborted before the loop closes.
    """
    loop.run_until_complete(asyncio.sleep(0.01))
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    for obj in gc.get_objects():
        if isinstance(obj, asyncio.Transport) and getattr(obj, "_loop", None) is loop:
            obj.abort()
    loop.run_until_complete(asyncio.sleep(0.01))  # connection_lost callbacks close the sockets
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
