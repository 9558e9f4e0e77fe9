"""The functions `DFApp` registers to keep the embedded engine alive and observable.

- `durabletask_heartbeat`, a timer on `DURABLE_EXT_HEARTBEAT_SCHEDULE` (six-field NCRONTAB,
  default every 30 s), starts the engine if this process has none, restarts it if it died and
  retries a failed start at once; while the engine has work in flight (or a durable timer due
  within the hold) it keeps its invocation open, up to a margin below `functionTimeout`, so the
  platform sees an execution and keeps the instance.
- `durabletask_health`, HTTP GET `durabletask/health` at FUNCTION level, answers the engine's
  state, owned partitions, last error, in-flight work and backlog as JSON: 200 while durable calls
  can be served, 503 (with the reason) while they cannot.
- `durabletask_wakeup`, a queue trigger on the hub's wake-up queue (only when host.json names an
  extension bundle, see `wake_up`), does what the heartbeat does for each wake-up message: the
  platform wakes an app scaled to zero, and adds instances, for the messages in that queue.

Under `durable-ext start` (a host installed a client provider) the local host runs the engine: the
heartbeat does nothing there and the health function reports the local host.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func

from .embedded import embedded_engine, engine_status, start_embedded
from .engine_status import EngineLoad, EngineState
from .wake_up import WAKE_UP_FUNCTION, wake_up_binding

__all__ = [
    "HEALTH_FUNCTION",
    "HEALTH_ROUTE",
    "HEARTBEAT_FUNCTION",
    "HEARTBEAT_SCHEDULE_SETTING",
    "DEFAULT_HEARTBEAT_SCHEDULE",
    "ENGINE_FUNCTIONS",
    "heartbeat",
    "hold",
    "hold_limit",
    "register_engine_functions",
]

log = logging.getLogger("durable_ext.embedded")

HEARTBEAT_FUNCTION = "durabletask_heartbeat"
HEALTH_FUNCTION = "durabletask_health"
HEALTH_ROUTE = "durabletask/health"
ENGINE_FUNCTIONS = (HEARTBEAT_FUNCTION, HEALTH_FUNCTION)
"""The names of the functions every DFApp registers (besides the app's own)."""
HEARTBEAT_SCHEDULE_SETTING = "DURABLE_EXT_HEARTBEAT_SCHEDULE"
DEFAULT_HEARTBEAT_SCHEDULE = "*/30 * * * * *"
"""Six-field NCRONTAB: every 30 seconds."""
HOLD_POLL = 0.5
"""Seconds between two looks at the engine's load while the heartbeat holds."""
IDLE_GRACE = 2.0
"""The heartbeat lets go once the engine has been idle this long (work passes between queues,
dispatchers and timers with short idle gaps)."""


def hold_limit(function_timeout: timedelta) -> float:
    """Seconds the heartbeat may hold: functionTimeout less a margin (10 %, at least 10 s)."""
    seconds = function_timeout.total_seconds()
    return max(seconds - max(10.0, seconds / 10), 0.0)


def _hosted_elsewhere() -> bool:
    from .. import app as app_module

    return app_module._client_provider is not None


def _keeps_busy(load: EngineLoad | None, remaining: float) -> bool:
    if load is None:
        return False
    due = load.next_timer_in_seconds
    return load.busy or (due is not None and due <= remaining)


async def hold(app: Any, cause: str) -> float:
    """Start or restart the engine of `app`, then hold while it has work (see the module doc);
    returns the seconds held. `cause` names the invocation in the log."""
    if _hosted_elsewhere():
        return 0.0
    engine = start_embedded(app)
    if engine.status().state is EngineState.FAILED:
        engine.kick()
    began = time.monotonic()
    deadline = began + hold_limit(engine.function_timeout)
    engine.holds += 1
    try:
        await engine.settled(max(deadline - began, 0.0))
        idle_since: float | None = None
        while (remaining := deadline - time.monotonic()) > 0:
            if engine.status().state not in (EngineState.RUNNING, EngineState.STANDBY):
                break
            if _keeps_busy(await engine.load(backlog=False), remaining):
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= IDLE_GRACE:
                break
            await asyncio.sleep(min(HOLD_POLL, remaining))
    finally:
        engine.holds -= 1
    held = time.monotonic() - began
    log.info("%s: engine %s, held %.1f s", cause, engine.status().state.value, held)
    return held


async def heartbeat(app: Any) -> float:
    """The heartbeat's run: `hold` for the engine; returns the seconds held."""
    return await hold(app, "Heartbeat")


async def health(app: Any) -> func.HttpResponse:
    """The health function's answer for `app`."""
    if _hosted_elsewhere():
        document: dict[str, Any] = {"state": EngineState.RUNNING.value, "host": "durable-ext start"}
        return func.HttpResponse(json.dumps(document), mimetype="application/json")
    engine = embedded_engine(app)
    status = engine.status() if engine is not None else engine_status(app)
    if engine is not None:
        status = dataclasses.replace(status, load=await engine.load())
    return func.HttpResponse(
        json.dumps(status.to_json()),
        status_code=200 if status.unavailable_reason is None else 503,
        mimetype="application/json",
    )


def register_engine_functions(app: Any) -> None:
    """Register the heartbeat timer, the health function and (when the app can have it) the
    wake-up queue trigger on `app` (a `DFApp`)."""
    schedule = os.environ.get(HEARTBEAT_SCHEDULE_SETTING) or DEFAULT_HEARTBEAT_SCHEDULE

    async def durabletask_heartbeat(timer: func.TimerRequest) -> None:
        await heartbeat(app)

    async def durabletask_health(req: func.HttpRequest) -> func.HttpResponse:
        return await health(app)

    timer = app.timer_trigger(
        arg_name="timer", schedule=schedule, run_on_startup=False, use_monitor=False
    )
    app.function_name(HEARTBEAT_FUNCTION)(timer(durabletask_heartbeat))
    route = app.route(route=HEALTH_ROUTE, methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
    app.function_name(HEALTH_FUNCTION)(route(durabletask_health))
    script_root = os.environ.get("AzureWebJobsScriptRoot")  # noqa: SIM112 - the host's name
    binding = wake_up_binding(Path(script_root)) if script_root else None
    if binding is None:
        return

    async def durabletask_wakeup(message: func.QueueMessage) -> None:
        await hold(app, f"Wake-up {message.id}")

    trigger = app.queue_trigger(
        arg_name="message", queue_name=binding.queue_name, connection=binding.connection
    )
    app.function_name(WAKE_UP_FUNCTION)(trigger(durabletask_wakeup))
