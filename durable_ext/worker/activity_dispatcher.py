"""Runs activities from `{hub}-workitems`: competing consumers, bounded concurrency.

Sync activities run on a thread pool, `async def` ones on the event loop. From the moment a work item is
taken until it is deleted or given back it is held (`HeldMessages`: renewed, so it never reappears
while it waits for a slot or runs); when it ends the result goes to the orchestration's control
queue first and the work item is deleted after, so a crash in between only repeats the activity.

In-process handoff: when this process sent the work item itself (held) and owns the orchestration's
partition, the result is not written to a queue at all. It goes to the orchestration dispatcher in
memory, bound to the work item, which stays in its queue, invisible for at most the handoff hold:
the checkpoint that records the result deletes the work item, exactly as it deletes any inbound
message after writing history. A crash before that loses only memory; the work item reappears when
its hold ends and the activity runs again (activities are at-least-once). An abandoned result
(a conflicting checkpoint, a stopping worker) makes the work item visible again, so the same holds.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from opentelemetry.trace import Span, SpanKind

from .. import clock
from ..fault_points import fault_point, stall_point
from ..orchestration import codec
from ..orchestration.durable_http import HTTP_ACTIVITY_NAME
from ..orchestration.failures import activity_failed
from ..orchestration.history import (
    HistoryEvent,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
)
from ..storage.errors import describe_storage_error
from ..storage.messages import MessageData
from ..storage.partition_ownership import ownership_guard
from ..storage.queues import ReceivedMessage
from ..storage.task_hub import TaskHub
from ..tracing import INSTANCE_ID, NAME, TASK_ID, TYPE, fail
from ..tracking import FunctionType
from .activity_context import activity_context
from .backoff import PollingBackoff
from .handoff import OrchestrationHandoff
from .held_messages import HeldMessages
from .http_activity import HttpActivity
from .options import WorkerOptions
from .registry import FunctionRegistry, RegisteredActivity

__all__ = ["ActivityDispatcher", "invoke_activity"]

log = logging.getLogger("durable_ext.activities")


def _decode_input(text: str | None) -> Any:
    try:
        return codec.decode(text)
    except ValueError:
        return text


async def invoke_activity(
    activity: RegisteredActivity, text: str | None, pool: ThreadPoolExecutor, instance_id: str = ""
) -> str:
    """Run an activity on its input text (and a `context` if it takes one, for the orchestration
    `instance_id`); the JSON text of its result."""
    value = _decode_input(text)
    args: tuple[Any, ...] = () if activity.input_name else (value,)
    kwargs: dict[str, Any] = {activity.input_name: value} if activity.input_name else {}
    if activity.takes_context:
        kwargs["context"] = activity_context(activity, instance_id)
    function = activity.function
    if inspect.iscoroutinefunction(function):
        result = await function(*args, **kwargs)
    else:
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()  # the activity's span, for the code's own spans
        result = await loop.run_in_executor(pool, lambda: context.run(function, *args, **kwargs))
        if inspect.isawaitable(result):
            result = await result
    return codec.encode(result)


class ActivityDispatcher:
    """Fetches and runs work items until stopped."""

    def __init__(
        self,
        hub: TaskHub,
        registry: FunctionRegistry,
        options: WorkerOptions,
        held: HeldMessages,
    ) -> None:
        self._hub = hub
        self._registry = registry
        self._options = options
        self._held = held
        self._limit = options.max_concurrent_activity_functions
        self._executing = asyncio.Semaphore(self._limit)
        self._in_flight = 0
        """Work items taken: running, or handed over and waiting for `_executing`."""
        self._slot_freed = asyncio.Event()
        self._pool = ThreadPoolExecutor(self._limit, thread_name_prefix="activity")
        self._loop_task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.local_orchestrations: OrchestrationHandoff | None = None
        self._stopping = False
        self._http = HttpActivity(options.http_credential)

    @property
    def in_flight(self) -> int:
        """Work items taken and not yet settled (running, or waiting for a slot)."""
        return self._in_flight

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="workitems")

    async def stop(self, timeout: float) -> None:
        """Take no more work; let running activities finish (up to `timeout`), then give back the
        rest at once so another worker runs it."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        deadline = asyncio.get_running_loop().time() + timeout
        while self._running:
            remaining = max(deadline - asyncio.get_running_loop().time(), 0)
            _, pending = await asyncio.wait(set(self._running), timeout=remaining)
            if pending and remaining == 0:
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)
        await self._http.close()

    async def _loop(self) -> None:
        queue = self._hub.work_items
        backoff = PollingBackoff(self._options.max_queue_polling_interval.total_seconds())
        while True:
            while self._in_flight >= self._limit:
                self._slot_freed.clear()
                await self._slot_freed.wait()
            try:
                messages = await queue.receive(
                    min(32, self._limit - self._in_flight),
                    self._options.work_item_queue_visibility_timeout,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - storage outages must not kill the loop
                log.warning("Receiving work items failed: %s", describe_storage_error(exc))
                messages = []
            for message in messages:
                self.submit(message)
            if messages:
                backoff.reset()
            else:
                await backoff.wait(queue.wake)

    def try_reserve(self) -> bool:
        """Reserve a slot for a work item about to be handed over; False when none is free."""
        capacity = self._limit + self._options.handoff_backlog
        if self._stopping or self._loop_task is None or self._in_flight >= capacity:
            return False
        self._in_flight += 1
        return True

    def release(self) -> None:
        """Give back a reserved slot that was not used."""
        self._in_flight -= 1
        self._slot_freed.set()

    def submit(self, message: ReceivedMessage, reserved: bool = False) -> None:
        """Run a work item (received, or handed over by this process's orchestration dispatcher);
        once stopping, give it back to the queue instead."""
        if not reserved:
            self._in_flight += 1
        visibility = message.hold or self._options.work_item_queue_visibility_timeout
        if not self._held.hold(message, visibility):
            self.release()
            return
        if self._stopping:
            self.release()
            task = asyncio.create_task(self._held.abandon(message, 0))
        else:
            task = asyncio.create_task(self._run(message))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, message: ReceivedMessage) -> None:
        # Activities belong to no partition: one handed over by an episode must not inherit the
        # episode's ownership guard (its result and its delete go out whoever owns the sender).
        ownership_guard.set(None)
        try:
            async with self._executing:
                if self._stopping:
                    await self._held.abandon(message, 0)
                    return
                await stall_point("activity-start")
                response = await self._execute(message)
            target = message.data.instance
            result = MessageData(response, target, message.data.episode, target)
            orchestrations = self.local_orchestrations
            if (
                message.hold is not None
                and orchestrations is not None
                and orchestrations.owns(target.instance_id)
            ):
                orchestrations.submit([_bind_to_work_item(result, message)])
                fault_point("after-activity-response")
                await stall_point("after-activity-response")
                return
            await self._respond(result)
            fault_point("after-activity-response")
            await stall_point("after-activity-response")
            await self._held.delete(message)
        except Exception as exc:  # noqa: BLE001 - infrastructure failure: retry the work item later
            log.warning(
                "Work item %s failed to complete: %s; it will be retried",
                message.message_id,
                describe_storage_error(exc),
            )
            await self._held.abandon(message)
        except asyncio.CancelledError:  # shutdown timeout: make it visible to the others now
            await asyncio.gather(
                asyncio.wait_for(self._held.abandon(message, 0), 2), return_exceptions=True
            )
            raise
        finally:
            self.release()

    async def _respond(self, response: MessageData) -> None:
        """Send the result; straight to this process's orchestration dispatcher when it owns the
        instance's partition (the message is still written, held invisible, for crash recovery)."""
        orchestrations = self.local_orchestrations
        instance_id = response.instance.instance_id
        if orchestrations is not None and orchestrations.owns(instance_id):
            queue = self._hub.control_queue_for(instance_id)
            orchestrations.submit([await queue.send_held(response, self._options.handoff_hold)])
        else:
            await self._hub.send_to_instance(response)

    async def _execute(self, message: ReceivedMessage) -> HistoryEvent:
        scheduled = message.data.event
        if not isinstance(scheduled, TaskScheduled):
            raise ValueError(f"work item holds {type(scheduled).__name__}, not TaskScheduled")
        name = scheduled.name or ""
        instance_id = message.data.instance.instance_id
        tracking = self._hub.tracking
        task_id = scheduled.event_id
        tracking.started(
            instance_id, name, FunctionType.Activity, scheduled.input, task_event_id=task_id
        )
        attributes = {TYPE: "activity", NAME: name, INSTANCE_ID: instance_id, TASK_ID: task_id}
        with self._hub.tracing.span(
            f"activity:{name}",
            SpanKind.SERVER,
            parent=scheduled.parent_trace_context,
            attributes=attributes,
        ) as span:
            try:
                if name == HTTP_ACTIVITY_NAME:
                    result = await self._http.run(scheduled.input)
                else:
                    activity = self._registry.activity(name)
                    result = await invoke_activity(
                        activity, scheduled.input, self._pool, instance_id
                    )
            except Exception as exc:  # noqa: BLE001 - the failure (a missing activity too) goes to the orchestrator
                # A result's time is when the activity ended (as DTFx stamps it): the
                # dashboard's timeline draws each activity from its TaskScheduled to this.
                failed = activity_failed(task_id, name, exc, clock.utc_now())
                self._track_failure(instance_id, name, task_id, failed, span)
                return failed
        tracking.completed(instance_id, name, FunctionType.Activity, result, task_event_id=task_id)
        return TaskCompleted(timestamp=clock.utc_now(), task_scheduled_id=task_id, result=result)

    def _track_failure(
        self, instance_id: str, name: str, task_id: int, failed: TaskFailed, span: Span | None
    ) -> None:
        details = failed.failure_details
        if details is None:
            return
        fail(span, str(details))
        tracking = self._hub.tracking
        if tracking.wanted(logging.ERROR):
            reason = tracking.error(details.error_type, details.error_message, details.stack_trace)
            tracking.failed(instance_id, name, FunctionType.Activity, reason, task_event_id=task_id)


def _bind_to_work_item(result: MessageData, work_item: ReceivedMessage) -> ReceivedMessage:
    """The held work item turned into the activity's result: an inbound message whose delete and
    abandon act on the work item (it stays held under the work item's id and pop receipt)."""
    work_item.data = result
    work_item.inserted_on = datetime.now(UTC)
    return work_item
