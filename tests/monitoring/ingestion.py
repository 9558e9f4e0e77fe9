"""A stand-in for Application Insights' ingestion service: an aiohttp server on 127.0.0.1 that
accepts what the Azure Monitor exporter POSTs to `/v2.1/track` (a JSON array of envelopes, maybe
gzipped) and keeps the envelopes; and the `traces` rows Application Insights would make of them."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

MESSAGE = "Microsoft.ApplicationInsights.Message"
REQUEST = "Microsoft.ApplicationInsights.Request"
TRACK_PATHS = ("/v2.1/track", "//v2.1/track")
"""The exporter joins the endpoint and the path with a slash, and a connection string's
endpoint ends with one: the service takes both."""


class Ingestion:
    """The stand-in, served from a thread of its own (the test's code stays synchronous)."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.other: list[str] = []
        """Requests to any other path (there should be none)."""
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ingestion", daemon=True
        )

    def __enter__(self) -> Ingestion:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def connection_string(self) -> str:
        return (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint=http://127.0.0.1:{self.port}/"
        )

    async def _start(self) -> None:
        app = web.Application()
        for path in TRACK_PATHS:
            app.router.add_post(path, self._track)
        app.router.add_route("*", "/{tail:.*}", self._other)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _other(self, request: web.Request) -> web.Response:
        self.other.append(f"{request.method} {request.path}")
        return web.Response(status=404)

    async def _track(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding", "").lower() == "gzip" or body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        sent = json.loads(body)
        sent = sent if isinstance(sent, list) else [sent]
        self.envelopes.extend(sent)
        accepted = {"itemsReceived": len(sent), "itemsAccepted": len(sent), "errors": []}
        return web.json_response(accepted)


@dataclass(frozen=True)
class TraceRow:
    """A row of the `traces` table, with the columns the documented queries use."""

    timestamp: str
    message: str
    severityLevel: int  # noqa: N815 - Application Insights' column names
    customDimensions: dict[str, str]  # noqa: N815
    cloud_RoleName: str  # noqa: N815
    operation_Id: str  # noqa: N815


def trace_rows(envelopes: list[dict[str, Any]]) -> list[TraceRow]:
    """The `traces` rows of the log envelopes."""
    rows = []
    for envelope in envelopes:
        if envelope.get("name") != MESSAGE:
            continue
        data = envelope["data"]["baseData"]
        tags = envelope.get("tags", {})
        rows.append(
            TraceRow(
                timestamp=envelope["time"],
                message=data["message"],
                severityLevel=int(data.get("severityLevel", 1)),
                customDimensions=data.get("properties", {}),
                cloud_RoleName=tags.get("ai.cloud.role", ""),
                operation_Id=tags.get("ai.operation.id", ""),
            )
        )
    return rows
