"""Call a function as the worker does: arguments by binding name, `context` when asked for,
`func.Out` for output bindings; async functions on the host's loop, sync ones on a thread pool
(`PYTHON_THREADPOOL_THREAD_COUNT`, default Python's); `$return` rules enforced."""

from __future__ import annotations

import asyncio
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from .context import new_context
from .invocations import Invocation, InvocationLog
from .metadata import IndexedFunction

__all__ = ["Invoker"]


class _Out(func.Out[Any]):
    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class Invoker:
    """Runs invocations and records them in `log`."""

    def __init__(self, log: InvocationLog) -> None:
        self.log = log
        count = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
        self._pool = ThreadPoolExecutor(
            max_workers=int(count) if count else None, thread_name_prefix="fake-host-sync"
        )

    async def invoke(self, fn: IndexedFunction, trigger_value: Any) -> Invocation:
        """Invoke `fn` with its trigger data; the finished record (error set on failure)."""
        context = new_context(fn.name, fn.directory)
        record = Invocation(
            fn.name, context.invocation_id, str(fn.trigger_type), datetime.now(UTC), trigger_value
        )
        self.log.entries.append(record)
        outs = {name: _Out() for name in fn.out_bindings}
        kwargs: dict[str, Any] = {fn.trigger_name: trigger_value, **outs}
        if fn.requires_context:
            kwargs["context"] = context
        try:
            if fn.is_async:
                result = await fn.callable(**kwargs)
            else:
                call = functools.partial(_call_sync, fn.callable, kwargs, context)
                result = await asyncio.get_running_loop().run_in_executor(self._pool, call)
            if result is not None and not fn.has_return:
                raise RuntimeError(
                    f"function {fn.name!r} without a $return binding returned a non-None value"
                )
            record.result = result
            record.outputs = {n: o.get() for n, o in outs.items() if o.get() is not None}
        except Exception as exc:  # noqa: BLE001 - the worker reports any exception as a failed invocation
            record.error = exc
        record.finished = datetime.now(UTC)
        await self.log.notify()
        return record

    def close(self) -> None:
        """Stop the pool (running sync calls finish on their threads)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _call_sync(function: Any, kwargs: dict[str, Any], context: Any) -> Any:
    context.thread_local_storage.invocation_id = context.invocation_id
    return function(**kwargs)
