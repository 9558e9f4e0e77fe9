"""`FakeHost`: an app folder served the way the Functions host and Python worker serve it.

It runs on the caller's event loop, as the worker runs the app on its own single loop: the import
happens on that loop's thread (a blocking import blocks it, exactly as in the worker), async
functions run on it and sync ones on a thread pool. `durable_ext`'s embedded engine keeps its own
thread and loop, and its clients are per event loop, so nothing here needs a thread of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web
from azure.functions import FunctionRegister

from durable_ext.host.embedded import embedded_engine, stop_embedded

from .http_conversion import from_return_value, to_http_request
from .indexing import AppIndex, index_functions
from .invocations import Invocation, InvocationLog
from .invoker import Invoker
from .keys import HostKeys, presented_key
from .loader import DEFAULT_SCRIPT_FILE, imported_app
from .metadata import IndexedFunction
from .ncrontab import parse_schedule
from .queues import QueueOptions, run_queue_listener
from .routing import Route, RouteTable
from .timers import Clock, SystemClock, run_timer, timer_request

__all__ = ["FakeHost", "HostFunctionError"]

log = logging.getLogger("tests.functions_host")
# Settings of the machine running the tests that must not leak into the app's settings.
_FOREIGN_SETTINGS = (
    "AzureWebJobs",
    "AzureFunctionsJobHost",
    "DURABLE_EXT_",
    "FUNCTIONS_",
    "PYTHON_",
    "WEBSITE_",
)


class HostFunctionError(RuntimeError):
    """Functions the host put in error (raised unless the test allows them)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__(
            "\n".join(f"The '{name}' function is in error: {msg}" for name, msg in errors.items())
        )
        self.errors = dict(errors)


class FakeHost:
    """Index `app_dir`'s `function_app.py` and serve it on 127.0.0.1 (`async with` it).

    `app_settings` become environment variables for the host's lifetime (Functions settings of
    the test machine are removed meanwhile); `keys` default to generated ones; `clock` drives
    the timers (real time by default); with `allow_function_errors` the host serves the
    functions not in error instead of raising `HostFunctionError`.
    """

    def __init__(
        self,
        app_dir: Path,
        *,
        keys: HostKeys | None = None,
        app_settings: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        allow_function_errors: bool = False,
    ) -> None:
        self.app_dir = Path(app_dir).resolve()
        self.keys = keys or HostKeys()
        self.app_settings = {
            "AzureWebJobsScriptRoot": str(self.app_dir),
            "FUNCTIONS_WORKER_RUNTIME": "python",
            **(app_settings or {}),
        }
        self.clock: Clock = clock or SystemClock()
        self.allow_function_errors = allow_function_errors
        self.invocations = InvocationLog()
        self.index = AppIndex(())
        self.register: FunctionRegister | None = None
        self.route_prefix = "api"
        self._stack = ExitStack()
        self._invoker: Invoker | None = None
        self._runner: web.AppRunner | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._port = 0

    # -- what tests use ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self._port}"

    def url(self, route: str) -> str:
        """The URL of `route` under the route prefix (`url("hello")` → `.../api/hello`)."""
        path = "/".join(p for p in (self.route_prefix, route.strip("/")) if p)
        return f"{self.base_url}/{path}"

    @property
    def function_errors(self) -> dict[str, str]:
        """Functions the host put in error: name → the host's message."""
        return self.index.errors

    async def fire_timer(self, name: str, past_due: bool = False) -> Invocation:
        """Invoke timer function `name` now (as the portal's "Run" or an admin call would)."""
        fn = self.index.get(name)
        if fn.trigger_type != "timerTrigger":
            raise ValueError(f"{name} is not a timer function")
        following = parse_schedule(_resolve_settings(fn.schedule)).next_after(self.clock.now())
        return await self._require_invoker().invoke(fn, timer_request(past_due, None, following))

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeHost:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Set the app settings, import and index the app, serve HTTP, start the timers."""
        try:
            host_json = self._host_json()
            self.route_prefix = (
                str(host_json.get("extensions", {}).get("http", {}).get("routePrefix", "api"))
                .strip()
                .strip("/")
            )
            self._stack.callback(_restore_environment, dict(os.environ))
            for name in [n for n in os.environ if n.startswith(_FOREIGN_SETTINGS)]:
                del os.environ[name]
            os.environ.update(self.app_settings)
            script = os.environ.get("PYTHON_SCRIPT_FILE_NAME") or DEFAULT_SCRIPT_FILE
            _, self.register = self._stack.enter_context(imported_app(self.app_dir, script))
            self.index = index_functions(self.register, has_bundle="extensionBundle" in host_json)
            if self.index.errors and not self.allow_function_errors:
                raise HostFunctionError(self.index.errors)
            self._invoker = Invoker(self.invocations)
            self._stack.callback(self._invoker.close)
            await self._serve_http()
            self._start_timers()
            self._start_queue_listeners(QueueOptions.from_host_json(host_json))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop timers, queue listeners and HTTP, then undo the import and the app settings."""
        crashed = [t.exception() for t in self._loops if t.done() and not t.cancelled()]
        # A listener or timer loop that ended on its own crashed: a bug of the fake host.
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.register is not None:  # the process ends: so does the app's embedded engine
            engine = embedded_engine(self.register)
            if engine is not None:
                await engine.close_client()
            stop_embedded(self.register)
            self.register = None
        self._stack.close()
        if crashed and crashed[0] is not None:  # a bug of the fake host, not of the app
            raise RuntimeError("a timer or queue loop of the fake host crashed") from crashed[0]

    def _host_json(self) -> dict[str, Any]:
        path = self.app_dir / "host.json"
        if not path.exists():  # the host writes a default host.json and goes on
            return {"version": "2.0"}
        document = json.loads(path.read_text(encoding="utf-8-sig"))
        return document if isinstance(document, dict) else {}

    def _require_invoker(self) -> Invoker:
        if self._invoker is None:
            raise RuntimeError("the fake host is not started")
        return self._invoker

    # -- HTTP ----------------------------------------------------------------------------------

    async def _serve_http(self) -> None:
        routes = []
        for fn in self.index.functions:
            if fn.trigger_type == "httpTrigger":
                self.keys.ensure_function(fn.name)
                routes.append(Route.build(self.route_prefix, fn.route, fn.methods, fn))
        table = RouteTable(routes)
        app = web.Application(client_max_size=100 * 1024 * 1024)

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(table, request)

        app.router.add_route("*", r"/{tail:[\s\S]*}", handle)  # any path, newlines too
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def _handle(self, table: RouteTable, request: web.Request) -> web.StreamResponse:
        if request.path.lower().startswith(_ADMIN_FUNCTIONS):
            return await self._run_by_admin(request)
        resolved = table.resolve(request.method, request.path)
        if resolved is None:
            return web.Response(status=404)
        route, values = resolved
        fn: IndexedFunction = route.target
        key = presented_key({k.lower(): v for k, v in request.headers.items()}, dict(request.query))
        if self._disabled(fn) and self.keys.level_of(key, fn.name) != "admin":
            return web.Response(status=404)
        if not self.keys.allows(fn.auth_level, key, fn.name):
            return web.Response(status=401)
        http_request = await to_http_request(request, values)
        record = await self._require_invoker().invoke(fn, http_request)
        if record.error is None:
            try:
                return from_return_value(record.result).to_aiohttp()
            except TypeError as exc:
                record.error = exc
        log.error("Executed '%s' (Failed): %r", fn.name, record.error)
        return web.Response(status=500)

    async def _run_by_admin(self, request: web.Request) -> web.StreamResponse:
        """`POST /admin/functions/{name}` with the master key runs a timer function now, as the
        portal's "Test/Run" does: 202 at once, the invocation in the background."""
        key = presented_key({k.lower(): v for k, v in request.headers.items()}, dict(request.query))
        name = request.path[len(_ADMIN_FUNCTIONS) :].strip("/")
        if request.method != "POST" or self.keys.level_of(key, name) != "admin":
            return web.Response(status=401 if request.method == "POST" else 404)
        try:
            fn = self.index.get(name)
        except KeyError:
            return web.Response(status=404)
        if fn.trigger_type != "timerTrigger":
            return web.Response(status=400, text="only timer functions are run this way here")
        invocation = asyncio.create_task(self.fire_timer(fn.name), name=f"admin run {fn.name}")
        self._loops.append(invocation)
        return web.Response(status=202)

    def _disabled(self, fn: IndexedFunction) -> bool:
        value = os.environ.get(f"AzureWebJobs.{fn.name}.Disabled", "")
        return value.strip().lower() in ("1", "true")

    # -- timers --------------------------------------------------------------------------------

    def _start_timers(self) -> None:
        invoker = self._require_invoker()
        started = self.clock.now()
        for fn in self.index.functions:
            if fn.trigger_type != "timerTrigger":
                continue

            async def fire(request: Any, fn: IndexedFunction = fn) -> Invocation:
                return await invoker.invoke(fn, request)

            schedule = parse_schedule(_resolve_settings(fn.schedule))
            self._loops.append(
                asyncio.create_task(
                    run_timer(schedule, self.clock, started, fn.run_on_startup, fire),
                    name=f"timer {fn.name}",
                )
            )


    # -- queues --------------------------------------------------------------------------------

    def _start_queue_listeners(self, options: QueueOptions) -> None:
        invoker = self._require_invoker()
        for fn in self.index.functions:
            if fn.trigger_type != "queueTrigger" or self._disabled(fn):
                continue

            async def invoke(message: Any, fn: IndexedFunction = fn) -> Invocation:
                return await invoker.invoke(fn, message)

            self._loops.append(
                asyncio.create_task(
                    run_queue_listener(
                        fn, _resolve_settings(fn.queue_name), options, invoke
                    ),
                    name=f"queue listener {fn.name}",
                )
            )


_ADMIN_FUNCTIONS = "/admin/functions/"


def _resolve_settings(expression: str) -> str:
    """`%Name%` in a binding property is replaced by app setting `Name`, as the host does."""
    return re.sub(r"%([^%]+)%", lambda m: os.environ[m.group(1)], expression)


def _restore_environment(saved: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(saved)
