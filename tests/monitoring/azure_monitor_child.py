"""The process `test_azure_monitor.py` starts: Application Insights export on (to the test's
stand-in for the ingestion service), orchestrations run on Azurite from a thread of their own (as
the embedded engine runs in Azure), one span of the `durable_ext` tracer, then a flush. Prints one
JSON line: what the export did, the instance ids, the span's trace id, and any network address
outside this machine that the process looked up or connected to (there must be none).

Usage: python -m tests.monitoring.azure_monitor_child AZURITE_CONNECTION_STRING HUB_NAME
(the export's settings come from the environment the test sets).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from typing import Any

from durable_ext import DurableOrchestrationContext
from durable_ext.azure_monitor import export_to_azure_monitor
from durable_ext.orchestration.executor import ReplayOptions
from durable_ext.runtime import Runtime
from tests.worker.conftest import fast_options
from tests.worker.test_patterns_end_to_end import registry

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", None}
USER_LINE = "a user logger's line, not asked for"
ASKED_LINE = "a line of the logger the setting names"


def chain(ctx: DurableOrchestrationContext):
    first = yield ctx.call_activity("echo", "a")
    second = yield ctx.call_activity("echo", "b")
    return first + second


def failing(ctx: DurableOrchestrationContext):
    yield ctx.call_activity("boom", None)


def echo(text: str) -> str:
    logging.getLogger("userapp").info(USER_LINE)
    logging.getLogger("asked").info(ASKED_LINE)
    return text


def boom(_: Any) -> None:
    raise ValueError("kaput")


async def run_orchestrations(connection: str, hub: str) -> dict[str, str]:
    """A chain and a failure, replay events on (no instance cache: every episode replays)."""
    options = fast_options(
        instance_cache_size=0, trace_replay_events=True, replay=ReplayOptions(observe_replay=True)
    )
    reg = registry(o_chain=chain, o_failing=failing, echo=echo, boom=boom)
    async with Runtime(reg, connection=connection, hub=hub, options=options) as rt:
        ids = {
            "chain": await rt.client.start_new("chain"),
            "failing": await rt.client.start_new("failing"),
        }
        for instance_id in ids.values():
            await rt.client.wait_for_completion(instance_id, timeout=60)
    return ids


def watch_the_network(outside: list[str]) -> None:
    """Note every lookup of, or connection to, an address that is not this machine."""

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.getaddrinfo":
            host = args[0].decode() if isinstance(args[0], bytes) else args[0]
        elif event == "socket.connect" and isinstance(args[1], tuple):
            host = args[1][0]
        else:
            return
        if host not in LOCAL_HOSTS:
            outside.append(f"{event} {host}")

    sys.addaudithook(hook)


def main() -> None:
    connection, hub = sys.argv[1:3]
    outside: list[str] = []
    watch_the_network(outside)
    logging.getLogger().setLevel(logging.INFO)  # as the Python worker sets it
    outcome = export_to_azure_monitor()
    found: dict[str, Any] = {}
    engine = threading.Thread(
        target=lambda: found.update(asyncio.run(run_orchestrations(connection, hub))),
        name="engine",
    )
    engine.start()
    engine.join(120)

    from opentelemetry import trace
    from opentelemetry._logs import get_logger_provider

    tracer = trace.get_tracer("durable_ext")
    with tracer.start_as_current_span("orchestration:chain", kind=trace.SpanKind.SERVER) as span:
        span.set_attribute("durabletask.type", "orchestration")
        logging.getLogger("durable_ext.child").info("inside the span")
        trace_id = format(span.get_span_context().trace_id, "032x")
    get_logger_provider().force_flush()  # type: ignore[attr-defined]
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    print(json.dumps({"export": outcome, "ids": found, "trace_id": trace_id, "outside": outside}))


if __name__ == "__main__":
    main()
