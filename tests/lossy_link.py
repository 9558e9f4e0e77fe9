"""A TCP relay in front of a storage endpoint that can lose the answer to a request, or refuse
requests for a while.

A lost answer: the request reaches storage and is carried out; its response never reaches the
client, whose connection is cut instead, as a dropped connection or a load balancer timeout would.
The client's retry then meets the effects of its own first attempt. A refused request: the
connection is cut before the request reaches storage, as in a partial outage. The link also keeps
the request line (`PUT /account/queue/messages/... HTTP/1.1`) and arrival time of every request
it relays, in order, so a test can count what a client sent after a given moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable

__all__ = ["LossyLink"]

_REQUEST_LINE = re.compile(rb"^[A-Z]+ /\S* HTTP/1\.[01]\r\n")


class LossyLink:
    """Relays 127.0.0.1:`port` to `target_host`:`target_port` (start it inside the test's loop)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._lose: Callable[[bytes], bool] | None = None
        self.lost = 0
        """How many responses were lost so far."""
        self._refuse: Callable[[bytes], bool] | None = None
        self._refusals_left = 0
        self.refused = 0
        """How many requests were refused so far."""
        self._connections: set[asyncio.Task[None]] = set()
        self.requests: list[str] = []
        """The request line of every request relayed so far, in arrival order."""
        self.arrivals: list[float] = []
        """When each of `requests` arrived (`time.time()`)."""

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> LossyLink:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in self._connections:
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    def lose_next_response(self, request_matches: Callable[[bytes], bool]) -> None:
        """Lose the response to the next request whose first bytes satisfy `request_matches`."""
        self._lose = request_matches

    def refuse(self, request_matches: Callable[[bytes], bool], times: int) -> None:
        """Cut the connection instead of forwarding the next `times` matching requests."""
        self._refuse = request_matches
        self._refusals_left = times

    async def _relay(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        server_in, server_out = await asyncio.open_connection(*self._target)
        doomed = asyncio.Event()

        async def upstream() -> None:
            while chunk := await client_in.read(65536):
                if self._refusals_left > 0 and self._refuse is not None and self._refuse(chunk):
                    self._refusals_left -= 1
                    self.refused += 1
                    return
                if _REQUEST_LINE.match(chunk):
                    self.requests.append(chunk.split(b"\r\n", 1)[0].decode("latin-1"))
                    self.arrivals.append(time.time())
                if self._lose is not None and self._lose(chunk):
                    self._lose = None
                    doomed.set()
                server_out.write(chunk)
                await server_out.drain()

        async def downstream() -> None:
            while chunk := await server_in.read(65536):
                if doomed.is_set():
                    self.lost += 1
                    return
                client_out.write(chunk)
                await client_out.drain()

        pumps = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (client_out, server_out):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            self._connections.discard(task)
