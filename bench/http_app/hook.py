"""What the bench adds to the host it measures, only when the environment variable
`ENVIRONMENT_VARIABLE` is set (the `durable_ext_http` engine sets it; nothing in durable_ext reads
it, and a user's app never has it).

`install(app)`, called by the bench app at import (which `durable-ext start` does before it creates
the runtime and the HTTP routes):

- the storage connection the host gives its `Runtime` gets bench/counting.py's request watcher
  (``durable_ext.host.local_host.Runtime`` is wrapped), so every storage request of the host is
  counted by category, as the in-process engine's are;
- requests made while serving an HTTP function (the starter, the management functions behind the
  status, raise-event and instances URIs) count as the ``client``'s, everything else (the worker's
  dispatchers, leases, polling) as the ``worker``'s (``durable_ext.host.http_functions._handler``
  is wrapped to set `bench.counting.ACTOR`);
- `POST /api/bench/stats` starts a measured stretch (counters and the activity clock reset; with
  `PROFILE_VARIABLE` naming a file, cProfile starts on the event-loop thread with a thread-CPU
  timer) and `GET /api/bench/stats` ends it: the counts, the activity clock (perf_counter, which is
  CLOCK_MONOTONIC and so comparable across processes) and, when profiling, the stats written to
  that file. Neither makes a storage request.
"""

from __future__ import annotations

import cProfile
import dataclasses
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func
from aiohttp import web

from bench.counting import ACTOR, ActorCounters
from bench.engines import ours
from durable_ext.host import http_functions, local_host

__all__ = ["ENVIRONMENT_VARIABLE", "PROFILE_VARIABLE", "STATS_ROUTE", "install"]

ENVIRONMENT_VARIABLE = "DURABLE_EXT_BENCH_HOOK"
PROFILE_VARIABLE = "DURABLE_EXT_BENCH_PROFILE"
STATS_ROUTE = "bench/stats"

COUNTERS = ActorCounters()
_profiler: list[cProfile.Profile] = []


def install(app: Any) -> None:
    """Count the host's storage requests and serve `STATS_ROUTE` on `app` (a DFApp)."""
    runtime = local_host.Runtime

    def counting_runtime(*args: Any, connection: Any, **kwargs: Any) -> Any:
        options = dataclasses.replace(connection.options, watcher=COUNTERS)
        return runtime(*args, connection=connection.with_options(options), **kwargs)

    local_host.Runtime = counting_runtime  # type: ignore[assignment,misc]
    handler = http_functions._handler

    def as_client(fn: Any, keys: Any) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        handle = handler(fn, keys)

        async def handle_as_client(request: web.Request) -> web.StreamResponse:
            token = ACTOR.set("client")
            try:
                return await handle(request)
            finally:
                ACTOR.reset(token)

        return handle_as_client

    http_functions._handler = as_client
    app.route(route=STATS_ROUTE, methods=["GET", "POST"])(stats)


async def stats(req: func.HttpRequest) -> func.HttpResponse:
    """POST: begin a measured stretch; GET: its figures (see the module docstring)."""
    if req.method.upper() == "POST":
        COUNTERS.reset()
        ours.CLOCK.reset()
        if os.environ.get(PROFILE_VARIABLE):
            profiler = cProfile.Profile(time.thread_time)
            _profiler[:] = [profiler]
            profiler.enable()
        return func.HttpResponse(status_code=204)
    profile = os.environ.get(PROFILE_VARIABLE)
    if profile and _profiler:
        profiler = _profiler.pop()
        profiler.disable()
        profiler.dump_stats(profile)
    clock = ours.CLOCK
    body = {
        "worker": ours.counter_json(COUNTERS["worker"]),
        "client": ours.counter_json(COUNTERS["client"]),
        "activities": {"count": clock.count, "first": clock.first, "last": clock.last},
        "pid": os.getpid(),
    }
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
