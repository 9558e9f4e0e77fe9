"""The engine inside the Azure Functions Python worker process (deployed apps).

There is no `durable-ext start` in Azure: `start_embedded(app)` (at import in function_app.py, on
the first durable-client call, or from the built-in heartbeat timer) starts an `EmbeddedEngine`: a
supervisor thread with its own event loop that reads the settings (app settings, host.json in the
script root), takes the instance lock (one engine per app instance, see `instance_lock`) and runs
a `Runtime`. It never blocks or raises in the caller: a failed attempt (storage unreachable,
host.json missing in Azure, a bad setting) is recorded as `last_error` and retried with
exponential back-off; `engine_status(app)` reads the state and `engine_unavailable_reason(app)`
says why durable calls cannot be served. `stop_embedded` stops it cleanly (no new work, in-flight
work finished or given back within the worker's shutdown timeout, partitions released); SIGTERM and
SIGINT do the same before the signal's usual effect. Clients are created per event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import threading
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from ..azure_monitor import export_to_azure_monitor
from ..client import DurableOrchestrationClient, management_function_path
from ..hub_clients import HubClients
from ..runtime import Runtime, registry_of
from ..settings import (
    DurableTaskSettings,
    SettingsError,
    load_durable_task_settings,
    load_http_settings,
    load_log_levels,
    parse_timespan,
    read_app_host_json,
)
from ..storage.connection import StorageConnection
from ..storage.names import TaskHubNames
from ..storage.task_hub import TaskHub
from ..tracing import Tracing
from ..tracking import TrackingLog
from ..worker.options import WorkerOptions
from .engine_status import EngineLoad, EngineState, EngineStatus
from .instance_lock import InstanceLock, instance_lock_path
from .log_levels import apply_log_levels
from .scale_signal import signal_scale
from .wake_up import WakeUpSender, queue_batch_size

__all__ = [
    "EmbeddedEngine",
    "EngineUnavailableError",
    "embedded_client_provider",
    "embedded_engine",
    "engine_status",
    "engine_unavailable_reason",
    "function_timeout_of",
    "start_embedded",
    "stop_embedded",
]

log = logging.getLogger("durable_ext.embedded")

INITIAL_BACKOFF = 1.0
"""Seconds before the first retry of a failed start; doubled per failure up to MAX_BACKOFF."""
MAX_BACKOFF = 60.0
PUBLISH_INTERVAL = 1.0
"""Seconds between two writes of the running engine's load for the standby processes."""
STANDBY_RETRY = 2.0
"""Seconds between attempts of a client-only process to take over the instance lock."""
CLIENT_WAIT = 30.0
"""How long a durable client waits for a starting engine to open the task hub (never at import)."""
PROBE_TIMEOUT = 15.0
"""One storage request without retries tells an unreachable account within this (the SDK's own
retries would take a minute and a half to give up on a refused connection)."""
START_TIMEOUT = 60.0
"""An attempt to open the task hub that takes longer than this counts as failed."""
DEFAULT_FUNCTION_TIMEOUT = timedelta(minutes=5)
"""functionTimeout when host.json sets none: the Consumption plan's default (the shortest)."""
UNBOUNDED_FUNCTION_TIMEOUT = timedelta(minutes=30)
"""What the heartbeat assumes for functionTimeout -1: the Premium/Flex default."""

_registry_lock = threading.RLock()  # the signal handler may run while it is held
_engines: dict[int, EmbeddedEngine] = {}
_previous_handlers: dict[int, Any] = {}


class EngineUnavailableError(RuntimeError):
    """No durable client can be made: the settings the engine needs are missing or invalid."""


def _describe(error: BaseException) -> str:
    text = str(error) or repr(error)
    return f"{type(error).__name__}: {text}"


def function_timeout_of(host_json: dict[str, Any]) -> timedelta:
    """host.json's functionTimeout (its default when unset; -1, unbounded, as 30 minutes)."""
    text = str(host_json.get("functionTimeout") or "").strip()
    if not text:
        return DEFAULT_FUNCTION_TIMEOUT
    if text == "-1":
        return UNBOUNDED_FUNCTION_TIMEOUT
    return parse_timespan(text)


class EmbeddedEngine:
    """A supervisor thread that keeps a `Runtime` of `app` running in this process."""

    def __init__(self, app: Any) -> None:
        script_root = os.environ.get("AzureWebJobsScriptRoot")  # noqa: SIM112 - the host's name
        self.script_root = Path(script_root or os.getcwd())
        self._app = app
        self._environ = dict(os.environ)
        self._mutex = threading.Lock()
        self._state = EngineState.STARTING
        self._since = datetime.now(UTC)
        self._last_error: str | None = None
        self._attempts = 0
        self._next_attempt: float | None = None
        self._settings: DurableTaskSettings | None = None
        self._connection: StorageConnection | None = None
        self.function_timeout = DEFAULT_FUNCTION_TIMEOUT
        self.management_path = management_function_path("api")
        """Where the management functions are (set from host.json's routePrefix on load)."""
        self._wake_up = False
        """The app has the wake-up queue trigger (host.json names an extension bundle)."""
        self._queue_batch_size = 1
        self.holds = 0
        """Invocations of this process holding for the engine's work right now."""
        self._lock: InstanceLock | None = None
        self._runtime: Runtime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._clients: dict[int, tuple[HubClients, TaskHub]] = {}
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._thread = threading.Thread(target=self._run, name="durable-ext-worker", daemon=True)

    # -- control -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the supervisor thread (returns at once)."""
        self._thread.start()

    @property
    def alive(self) -> bool:
        """The supervisor thread runs (it ends only when stopped, or by a bug)."""
        return self._thread.is_alive()

    def kick(self) -> None:
        """Retry now instead of at the end of the back-off (the heartbeat calls this)."""
        self._wake_loop()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop taking work, let in-flight work finish or give it back, release the partitions
        and the instance lock; True when the thread ended within `timeout`."""
        self._stopping.set()
        self._wake_loop()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _wake_loop(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has just closed
                loop.call_soon_threadsafe(wake.set)

    # -- state ---------------------------------------------------------------------------------

    def _set(self, state: EngineState) -> None:
        with self._mutex:
            if state is self._state:
                return
            log.info("Durable engine: %s -> %s", self._state.value, state.value)
            self._state = state
            self._since = datetime.now(UTC)
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(_resolve, future)

    async def settled(self, timeout: float) -> EngineState:
        """Wait (up to `timeout`) until the engine is no longer STARTING; its state then."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            future: asyncio.Future[None] = loop.create_future()
            with self._mutex:
                if self._state is not EngineState.STARTING:
                    return self._state
                self._waiters.append((loop, future))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, remaining)
        return self.status().state

    def status(self) -> EngineStatus:
        """A snapshot of the engine's state (without its load: see `load`)."""
        with self._mutex:
            state, since = self._state, self._since
            last_error, attempts, next_attempt = (
                self._last_error,
                self._attempts,
                self._next_attempt,
            )
        settings, runtime, lock = self._settings, self._runtime, self._lock
        worker = runtime.worker if runtime is not None else None
        return EngineStatus(
            state=state,
            since=since,
            hub_name=settings.hub_name if settings is not None else None,
            worker_id=settings.worker_id if settings is not None else None,
            # frozenset(dict) of ints is one step under the GIL: safe from another thread
            owned_partitions=tuple(sorted(worker.leases.owned)) if worker is not None else (),
            last_error=last_error,
            attempts=attempts,
            next_attempt_in_seconds=(
                max(next_attempt - time.monotonic(), 0.0) if next_attempt is not None else None
            ),
            engine_pid=(
                lock.holder() if lock is not None and state is EngineState.STANDBY else None
            ),
            holding_invocations=self.holds,
        )

    async def load(self, backlog: bool = True, timeout: float = 10.0) -> EngineLoad | None:
        """In-flight work, the next durable timer and (with `backlog`) the approximate queue
        lengths, measured on the engine's loop; in standby, the in-flight work and next timer the
        engine's process last published; None when neither is known."""
        loop = self._loop
        if self._runtime is None and self.status().state is EngineState.STANDBY:
            return self._peer_load()
        if loop is None or self._runtime is None:
            return None
        future = asyncio.run_coroutine_threadsafe(self._measure(backlog), loop)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except (TimeoutError, RuntimeError):  # stuck storage calls; or the engine just stopped
            return None

    async def _measure(self, backlog: bool) -> EngineLoad | None:
        runtime = self._runtime
        if runtime is None or runtime.worker is None:
            return None
        worker = runtime.worker
        now = asyncio.get_running_loop().time()
        load = worker.load()
        due = load.next_timer_due
        control: int | None = None
        work_items: int | None = None
        error: str | None = None
        if backlog:
            try:
                hub = runtime.hub
                counts = await asyncio.gather(
                    *(hub.control_queues[i].count() for i in sorted(worker.leases.owned))
                )
                control = sum(counts)
                work_items = await hub.work_items.count()
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                error = _describe(exc)
        return EngineLoad(
            orchestrations_in_flight=load.orchestrations,
            activities_in_flight=load.activities,
            next_timer_in_seconds=max(due - now, 0.0) if due is not None else None,
            control_queue_messages=control,
            work_item_messages=work_items,
            backlog_error=error,
        )

    # -- settings and clients ------------------------------------------------------------------

    def _load_settings(self) -> tuple[DurableTaskSettings, StorageConnection]:
        if self._settings is None or self._connection is None:
            host_json = read_app_host_json(self.script_root / "host.json", self._environ)
            settings = load_durable_task_settings(host_json, self._environ)
            apply_log_levels(load_log_levels(host_json, self._environ), include_default=False)
            connection = StorageConnection.from_app_settings(
                settings.connection_name, self._environ
            )
            self.function_timeout = function_timeout_of(host_json)
            self.management_path = management_function_path(
                load_http_settings(host_json, self._environ).route_prefix
            )
            self._wake_up = "extensionBundle" in host_json
            self._queue_batch_size = queue_batch_size(host_json)
            self._settings, self._connection = settings, connection
        return self._settings, self._connection

    async def client(self) -> DurableOrchestrationClient:
        """A client whose storage clients belong to the calling event loop (once a starting
        engine has opened the task hub, or failed, or CLIENT_WAIT has passed)."""
        await self.settled(CLIENT_WAIT)
        key = id(asyncio.get_running_loop())
        known = self._clients.get(key)
        if known is not None:
            return known[0].own
        try:
            settings, connection = self._load_settings()
        except SettingsError as exc:
            raise EngineUnavailableError(f"no durable client: {exc}") from exc
        hub = TaskHub(connection, settings.hub_name, settings.partition_count)
        hub.tracking = TrackingLog(
            settings.hub_name,
            trace_inputs_and_outputs=settings.trace_inputs_and_outputs,
            trace_replay_events=settings.trace_replay_events,
        )
        hub.tracing = Tracing(settings.distributed_tracing)
        hub.open()
        wake_up = WakeUpSender(hub.wake_queue, covered=lambda: self.holds > 0)
        client = DurableOrchestrationClient(
            hub,
            registry=registry_of(self._app),  # unknown orchestrator and entity names: 400, as locally
            connection_name=settings.connection_name,
            system_key=os.environ.get("DURABLE_EXT_SYSTEM_KEY"),
            management_path=self.management_path,
            wake_up=wake_up.after_send if self._wake_up else None,
            default_version=settings.default_version,
            replace_running_instances=settings.overridable_existing_instance_states == "AnyState",
        )
        self._clients[key] = (HubClients(client, connection, self._environ), hub)
        return client

    async def client_for(
        self, task_hub: str | None, connection: str | None
    ) -> DurableOrchestrationClient:
        """The client of `task_hub` on `connection` (None: the app's own), for the calling loop."""
        await self.client()
        return await self._clients[id(asyncio.get_running_loop())][0].get(task_hub, connection)

    async def close_client(self) -> None:
        """Close the client of the calling event loop, if it has one (before that loop ends)."""
        known = self._clients.pop(id(asyncio.get_running_loop()), None)
        if known is not None:
            await known[0].close()
            await known[1].close()

    # -- the supervisor ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            export_to_azure_monitor(self._environ)  # before the engine logs anything
            asyncio.run(self._main())
        except BaseException as exc:  # a bug: recorded; the heartbeat starts a new engine
            with self._mutex:
                self._last_error = _describe(exc)
            log.exception("The durable engine's supervisor crashed")
        finally:
            self._set(EngineState.STOPPED)

    async def _main(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        backoff = INITIAL_BACKOFF
        while not self._stopping.is_set():
            try:
                runtime = await self._open()
            except Exception as exc:  # noqa: BLE001 - every cause is retried and reported
                self._release_lock()
                self._failed(exc, backoff)
                await self._pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            if runtime is None:  # standby: another process of this instance runs the engine
                await self._pause(STANDBY_RETRY)
                continue
            backoff = INITIAL_BACKOFF
            try:
                await self._serve(runtime)
            finally:
                self._release_lock()

    async def _open(self) -> Runtime | None:
        """Settings, instance lock, task hub and worker; None when another process holds the
        lock; raises when the attempt fails."""
        settings, connection = self._load_settings()
        if self._lock is None:
            path = instance_lock_path(self.script_root, settings.hub_name)
            self._lock = InstanceLock(path)
        if not self._lock.acquire():
            self._set(EngineState.STANDBY)
            return None
        self._set(EngineState.STARTING)
        await asyncio.wait_for(_probe(connection, settings.hub_name), PROBE_TIMEOUT)
        runtime = Runtime(
            self._app,
            connection=connection,
            hub=settings.hub_name,
            options=WorkerOptions.from_settings(settings),
            connection_name=settings.connection_name,
        )
        await asyncio.wait_for(runtime.__aenter__(), START_TIMEOUT)
        return runtime

    async def _serve(self, runtime: Runtime) -> None:
        self._runtime = runtime
        with self._mutex:
            self._attempts, self._next_attempt = 0, None
        self._set(EngineState.RUNNING)
        next_signal = time.monotonic()
        try:
            while not self._stopping.is_set():
                load = await self._measure(backlog=False)
                if load is not None:
                    self._publish(load)
                if self._wake_up and time.monotonic() >= next_signal:
                    interval = self._load_settings()[0].scale_signal_interval
                    next_signal = time.monotonic() + interval.total_seconds()
                    await self._signal_scale(runtime)
                await self._pause(PUBLISH_INTERVAL)
        finally:
            self._runtime = None
            log.info("Durable engine stopping: releasing partitions")
            await runtime.__aexit__(None, None, None)

    async def _signal_scale(self, runtime: Runtime) -> None:
        """Ask the platform for the instances the backlog needs (by the owner of partition 0)."""
        worker = runtime.worker
        if worker is None or 0 not in worker.leases.owned:
            return
        try:
            added = await signal_scale(runtime.hub, worker.options, self._queue_batch_size)
        except Exception as exc:  # noqa: BLE001 - the next round tries again
            log.warning("Scale signal failed: %s", _describe(exc))
            return
        if added:
            log.info("Scale signal: %d wake-up message(s) added for the backlog", added)

    def _load_path(self) -> Path | None:
        return self._lock.path.with_suffix(".load") if self._lock is not None else None

    def _publish(self, load: EngineLoad) -> None:
        """Write the engine's in-flight work for the standby processes' heartbeats."""
        path = self._load_path()
        if path is None:
            return
        document = {
            "updated": time.time(),
            "orchestrations": load.orchestrations_in_flight,
            "activities": load.activities_in_flight,
            "nextTimerAt": (
                time.time() + load.next_timer_in_seconds
                if load.next_timer_in_seconds is not None
                else None
            ),
        }
        with contextlib.suppress(OSError):
            temporary = path.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_text(json.dumps(document))
            temporary.replace(path)

    def _peer_load(self) -> EngineLoad | None:
        """What the engine's process last published, if recent."""
        path = self._load_path()
        if path is None:
            return None
        now = time.time()
        try:
            document = json.loads(path.read_text())
            if now - float(document["updated"]) > 3 * PUBLISH_INTERVAL:
                return None
            timer_at = document["nextTimerAt"]
            return EngineLoad(
                orchestrations_in_flight=int(document["orchestrations"]),
                activities_in_flight=int(document["activities"]),
                next_timer_in_seconds=(
                    max(float(timer_at) - now, 0.0) if timer_at is not None else None
                ),
                control_queue_messages=None,
                work_item_messages=None,
            )
        except (OSError, ValueError, KeyError, TypeError):  # not written yet, or half-written
            return None

    def _failed(self, error: Exception, retry_in: float) -> None:
        with self._mutex:
            self._last_error = _describe(error)
            self._attempts += 1
            self._next_attempt = time.monotonic() + retry_in
        self._set(EngineState.FAILED)
        log.warning(
            "Durable engine could not start (attempt %d, retry in %.0f s): %s",
            self._attempts,
            retry_in,
            self._last_error,
        )
        log.debug("".join(traceback.format_exception(error)))

    async def _pause(self, seconds: float) -> None:
        if self._stopping.is_set() or self._wake is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()


async def _probe(connection: StorageConnection, hub_name: str) -> None:
    """Raise at once (no retries) if the storage account cannot be reached."""
    async with connection.blob_service() as blobs:
        container = blobs.get_container_client(TaskHubNames(hub_name).leases_container)
        await container.exists(retry_total=0)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# -- the per-process registry ------------------------------------------------------------------


def start_embedded(app: Any) -> EmbeddedEngine:
    """Start the engine of `app` in this process, or restart it if it died; returns at once.

    Called on the main thread (at import), it also installs SIGTERM/SIGINT handlers that stop
    the engine cleanly before the signal's previous effect.
    """
    with _registry_lock:
        engine = _engines.get(id(app))
        if engine is None or not engine.alive:
            engine = EmbeddedEngine(app)
            _engines[id(app)] = engine
            engine.start()
    _install_signal_handlers()
    return engine


def embedded_engine(app: Any) -> EmbeddedEngine | None:
    """The engine of `app` in this process, if one was started and not stopped."""
    return _engines.get(id(app))


def stop_embedded(app: Any | None = None, timeout: float | None = 90.0) -> None:
    """Stop the engine of `app` (of every app when None) and forget it; with no engine left,
    restore the signal handlers `start_embedded` replaced."""
    with _registry_lock:
        keys = [id(app)] if app is not None else list(_engines)
        engines = [e for e in (_engines.pop(k, None) for k in keys) if e is not None]
    for engine in engines:
        if not engine.stop(timeout):
            log.warning("The durable engine did not stop within %s s", timeout)
    if not _engines:
        _restore_signal_handlers()


def engine_status(app: Any) -> EngineStatus:
    """The state of `app`'s engine in this process (STOPPED if none was started)."""
    engine = _engines.get(id(app))
    if engine is None:
        return EngineStatus(EngineState.STOPPED, datetime.now(UTC))
    return engine.status()


def engine_unavailable_reason(app: Any) -> str | None:
    """Why management calls cannot be served now (answer 503 with it), or None."""
    return engine_status(app).unavailable_reason


async def embedded_client_provider(
    app: Any, task_hub: str | None, connection: str | None
) -> DurableOrchestrationClient:
    """The client provider used when no local host installed one (starts the engine too)."""
    return await start_embedded(app).client_for(task_hub, connection)


# -- signals -----------------------------------------------------------------------------------


def _install_signal_handlers() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    with _registry_lock:
        if _previous_handlers:
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main interpreter
                _previous_handlers[signum] = signal.signal(signum, _on_signal)


def _restore_signal_handlers() -> None:
    """Put back the handlers `start_embedded` replaced (only the main thread can)."""
    if threading.current_thread() is not threading.main_thread():
        return
    with _registry_lock:
        previous = dict(_previous_handlers)
        _previous_handlers.clear()
    for signum, handler in previous.items():
        if signal.getsignal(signum) is _on_signal:
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    log.info("Signal %d: stopping the durable engine", signum)
    previous = _previous_handlers.get(signum)
    previous = signal.SIG_DFL if previous is None else previous
    stop_embedded()
    _restore_signal_handlers()
    if signal.getsignal(signum) is _on_signal:
        signal.signal(signum, previous)
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        os.kill(os.getpid(), signum)  # the default action, now that the handler is restored
