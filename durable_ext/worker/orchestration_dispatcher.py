"""Runs orchestration episodes from the control queues this worker owns.

Per owned partition one loop fetches batches of up to 32 messages and groups them per instance; each
group is one episode: load history (or take the cached one), sort the messages into applied,
discarded and deferred (`triage`: duplicates, stale executions, out-of-order responses, copies of
applied client events, finished or unknown instances), replay, then checkpoint in DTFx order:

1. send every outbound message;
2. write the new history rows under the sentinel ETag (409/412 → abandon, another worker won;
   unless the rows stored are our own, from an attempt whose answer was lost: then committed);
3. merge the Instances row (a failure is retried in the background, never undoes step 2; a stale
   row is rebuilt from history by `instance_repair`);
4. delete the inbound messages (retried; never abandoned once step 2 has succeeded).

Every message is held (`HeldMessages`: renewed, invisible to other workers) from the moment it is
taken until it is deleted or given back, however long it waits for a slot or a long episode.

What this makes exactly-once: each change of an orchestration's state. Each history event is
written once: a crash before 2 re-delivers the messages and the episode replays to the same
decisions (duplicates of outbound messages are ignored by the receivers); after 2 the messages are
only ever deleted, and a copy that comes back anyway (the worker died before 4) is recognised:
responses by their task id, starts by their execution id, a client's event by the microsecond it
was raised at. At-least-once: activity executions (a worker that dies between running an activity
and step 2 of the episode that records its result leaves the work item to run again) and events
one orchestration sends another when the receiving worker dies between 2 and 4.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Coroutine, Iterable
from datetime import timedelta
from typing import Any

from .. import clock
from ..fault_points import fault_point, stall_point
from ..orchestration.context import DurableOrchestrationContext
from ..orchestration.episode import EpisodeOutcome, continue_episode, run_episode
from ..orchestration.history import ExecutionStarted, HistoryEvent, TimerFired
from ..orchestration.history_summary import HistorySummary
from ..orchestration.status import OrchestrationRuntimeStatus
from ..orchestration.versioning import VersionFailureStrategy
from ..storage.errors import describe_storage_error
from ..storage.history_store import CheckpointConflictError, LoadedHistory
from ..storage.instance_store import InstanceColumns
from ..storage.large_payloads import exceeds_property_limit
from ..storage.messages import MessageData
from ..storage.partition_ownership import OwnershipDeadlines, OwnershipLostError, ownership_guard
from ..storage.queues import ReceivedMessage
from ..storage.task_hub import TaskHub
from .backoff import PollingBackoff
from .entity_dispatcher import EntityDispatcher, is_entity_instance
from .episode_tracing import episode_span, finish_episode_span
from .episode_tracking import track_episode
from .handoff import ActivityHandoff
from .held_messages import HeldMessages
from .instance_cache import CachedInstance, InstanceCache, StatusMark
from .instance_columns import checkpoint_columns
from .instance_repair import repair_finished_row, repair_started_row, undo_late_merge
from .options import WorkerOptions
from .outbound import Outbound, outbound_messages
from .partition_fence import PartitionFence
from .registry import FunctionRegistry, UnknownFunctionError
from .storage_limiter import StorageLimiter
from .timer_wakes import TimerWakes
from .triage import Triage, arrival_order, decide_restarts, restart_candidates, sort_messages

__all__ = ["OrchestrationDispatcher"]

log = logging.getLogger("durable_ext.orchestrations")
_LATE_MERGE_SECONDS = 1.0
"""A checkpoint whose Instances merge ends this long after its history write is checked (a
zombie worker waking up, a partition lost meanwhile); normally the gap is milliseconds."""
_LOST = "its partition manager gave it up"
_INSTANCE_MERGE_RETRIES = 12
"""Background retries of a failed Instances merge after a committed checkpoint (~5 min)."""


class OrchestrationDispatcher:
    """Owns the partition loops and the episodes they start."""

    def __init__(
        self,
        hub: TaskHub,
        registry: FunctionRegistry,
        options: WorkerOptions,
        held: HeldMessages,
        storage: StorageLimiter,
        deadlines: OwnershipDeadlines,
    ) -> None:
        self._hub = hub
        self._registry = registry
        self._options = options
        self._held = held
        self._loops: dict[int, asyncio.Task[None]] = {}
        self._watchdogs: dict[int, asyncio.Task[None]] = {}
        self.fence = PartitionFence(deadlines)
        """May this worker still act on a partition (its ownership deadline, `partition_fence`)."""
        self._control_queues = {queue.name: i for i, queue in enumerate(hub.control_queues)}
        self._episodes: set[asyncio.Task[None]] = set()
        self._inbox: dict[str, list[ReceivedMessage]] = {}
        self._runners: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._settling: set[asyncio.Task[None]] = set()
        """Deletes of applied messages running after their checkpoint (`settle_in_background`)."""
        self.local_activities: ActivityHandoff | None = None
        self._slots = asyncio.Semaphore(options.max_concurrent_orchestrator_functions)
        self._buffered = 0
        self._buffer_freed = asyncio.Event()
        self.cache = InstanceCache(
            options.instance_cache_size, options.instance_cache_idle_timeout.total_seconds()
        )
        self.storage = storage
        """Bounds this worker's outbound sends and inbound deletes and abandons."""
        self._timer_wakes = TimerWakes()
        self.entities = EntityDispatcher(
            hub,
            registry,
            held,
            lambda item, partition: self.storage.run(self._send, item, partition),
            options.entity_message_reorder_window,
        )

    @property
    def partitions(self) -> frozenset[int]:
        return frozenset(self._loops)

    @property
    def in_flight(self) -> int:
        """Instances with messages taken from their control queue and not yet settled."""
        return len(self._runners)

    def next_timer_due(self) -> float | None:
        """Loop time of the earliest pending durable-timer wake-up of this worker, if any."""
        return self._timer_wakes.next_due()

    async def start_partition(self, index: int) -> None:
        """The partition was acquired: read its control queue until its deadline passes."""
        self.fence.restore(index)
        if index not in self._loops:
            self._loops[index] = asyncio.create_task(
                self._partition_loop(index), name=f"control-{index:02d}"
            )
        if index not in self._watchdogs:
            self._watchdogs[index] = asyncio.create_task(
                self._watch(index), name=f"deadline-{index:02d}"
            )

    async def stop_partition(self, index: int) -> None:
        """The partition is lost: nothing more is done for it (`_revoke`); episodes in flight
        are abandoned at their next storage request."""
        stopped = self._revoke(index, _LOST)
        await asyncio.gather(*stopped, return_exceptions=True)

    async def drain_partition(self, index: int) -> None:
        """Hand the partition over (table manager): stop taking its messages, give back what is
        buffered, let the episodes in flight finish; the manager releases it afterwards."""
        loop = self._loops.pop(index, None)
        if loop is not None:
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
        await self._abandon(self._take_buffered(index), delay=0)
        running = [t for i, t in self._runners.items() if self._hub.partition_of(i) == index]
        if running:
            await asyncio.wait(running)
        await self._settled(self._options.drain_timeout.total_seconds())
        self._drop_cached(index)

    def _revoke(self, index: int, reason: str) -> list[asyncio.Task[None]]:
        """Stop acting on a partition, synchronously, before anything else can run: no more
        receives, its cached instances dropped, its buffered messages given back (in the
        background), its held messages no longer renewed. Returns the stopped tasks."""
        if self.fence.revoke(index):
            log.log(
                logging.INFO if reason == _LOST else logging.WARNING,
                "Stopped processing partition %d: %s",
                index,
                reason,
            )
        current = asyncio.current_task()
        stopped = []
        for tasks in (self._loops, self._watchdogs):
            task = tasks.pop(index, None)
            if task is not None and task is not current:
                task.cancel()
                stopped.append(task)
        self._drop_cached(index)
        buffered = self._take_buffered(index)
        if buffered:
            self._in_background(self._abandon(buffered, delay=0))
        return stopped

    async def _watch(self, index: int) -> None:
        """Revoke the partition the moment its ownership deadline passes without renewal."""
        while True:
            deadline = self.fence.deadline(index)
            now = time.monotonic()
            if deadline is None or now >= deadline:
                self._revoke(index, "its ownership deadline passed")
                return
            await asyncio.sleep(deadline - now)

    def _drop_cached(self, index: int) -> None:
        self.cache.drop_where(lambda instance_id: self._hub.partition_of(instance_id) == index)
        self.entities.forget(lambda instance_id: self._hub.partition_of(instance_id) == index)

    def _take_buffered(self, index: int) -> list[ReceivedMessage]:
        """Remove the partition's messages that wait for an episode (not those in one)."""
        taken: list[ReceivedMessage] = []
        for instance_id in [i for i in self._inbox if self._hub.partition_of(i) == index]:
            taken += self._inbox.pop(instance_id)
        if taken:
            self._buffered -= len(taken)
            self._buffer_freed.set()
        return taken

    def may_hold(self, message: ReceivedMessage) -> bool:
        """Whether a held message may still be renewed: not one of a partition this worker may
        no longer act on (`HeldMessages.may_renew`)."""
        index = self._control_queues.get(message.queue.name)
        return index is None or self.fence.may_act(index)

    async def stop(self, timeout: float) -> None:
        for index in list(self._loops):
            loop = self._loops.pop(index)
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
        if self._episodes:
            _, pending = await asyncio.wait(set(self._episodes), timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.entities.stop(timeout)
        leftovers = [m for batch in self._inbox.values() for m in batch]
        self._inbox.clear()
        await self._abandon(leftovers, delay=0)
        await self._settled(timeout)
        unfinished = [*self._background, *self._settling]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)

    # -- fetching -----------------------------------------------------------------------------
    async def _partition_loop(self, index: int) -> None:
        ownership_guard.set(self.fence.guard(index))
        queue = self._hub.control_queues[index]
        backoff = PollingBackoff(self._options.max_queue_polling_interval.total_seconds())
        while True:
            while self._buffered >= self._options.control_queue_buffer_threshold:
                self._buffer_freed.clear()
                await self._buffer_freed.wait()
            if not self.fence.may_act(index):
                self._revoke(index, "its ownership deadline passed")
                return
            try:
                messages = await queue.receive(
                    self._options.control_queue_batch_size,
                    self._options.control_queue_visibility_timeout,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - storage outages must not kill the loop
                log.warning("Receiving from %s failed: %s", queue.name, describe_storage_error(exc))
                await backoff.wait(queue.wake)
                continue
            if not messages:
                await backoff.wait(queue.wake)
                continue
            backoff.reset()
            self.submit(messages)

    # -- messages this process's client sends (storage.queues.LocalConsumer) -----------------
    @property
    def handoff_hold(self) -> timedelta:
        return self._options.handoff_hold

    def takes(self, message: MessageData) -> bool:
        """Whether a message sent by this process goes straight to `accept`: its target's
        partition is this worker's and the buffer has room (else it is sent visible)."""
        return (
            self._buffered < self._options.control_queue_buffer_threshold
            and self.owns(message.instance.instance_id)
        )

    def accept(self, message: ReceivedMessage) -> None:
        """Process a message this process sent held, as if received. Its episode runs in a
        context of its own, not in the sender's (a client's request)."""
        contextvars.Context().run(self.submit, [message])

    def owns(self, instance_id: str) -> bool:
        """True when this worker reads the control queue of `instance_id` and may act on it."""
        index = self._hub.partition_of(instance_id)
        return index in self._loops and self.fence.may_act(index)

    def submit(self, messages: Iterable[ReceivedMessage]) -> None:
        """Queue messages for their instances; one runner per instance drains them in batches.

        Messages that arrive while an instance's episode runs (from a poll or an in-process
        handoff) join its next batch, so one episode handles them all.
        """
        visibility = self._options.control_queue_visibility_timeout
        taken = [m for m in messages if self._held.hold(m, m.hold or visibility)]
        for instance_id, group in self._group(taken).items():
            self._buffered += len(group)
            self._inbox.setdefault(instance_id, []).extend(group)
            if instance_id not in self._runners:
                task = asyncio.create_task(self._drain(instance_id))
                self._runners[instance_id] = task
                self._episodes.add(task)
                task.add_done_callback(self._episodes.discard)

    @staticmethod
    def _group(messages: Iterable[ReceivedMessage]) -> dict[str, list[ReceivedMessage]]:
        groups: dict[str, list[ReceivedMessage]] = {}
        for message in messages:
            groups.setdefault(message.data.instance.instance_id, []).append(message)
        return groups

    async def _drain(self, instance_id: str) -> None:
        ownership_guard.set(self.fence.guard(self._hub.partition_of(instance_id)))
        try:
            while batch := self._inbox.pop(instance_id, None):
                batch.sort(key=arrival_order)
                try:
                    async with self._slots:
                        if self.owns(instance_id):
                            await self._process(instance_id, batch)
                        else:  # lost or handed over while it waited
                            await self._abandon(batch, delay=0)
                except Exception:  # one instance's failure must not stop the others
                    log.exception("Episode of %s failed; its messages will be retried", instance_id)
                    await self._abandon(batch)
                except asyncio.CancelledError:  # stopped mid-episode: let another worker have them
                    await asyncio.gather(
                        asyncio.wait_for(self._abandon(batch, delay=0), 2), return_exceptions=True
                    )
                    raise
                finally:
                    self._buffered -= len(batch)
                    self._buffer_freed.set()
        finally:
            self._runners.pop(instance_id, None)

    # -- one episode --------------------------------------------------------------------------
    async def _process(self, instance_id: str, messages: list[ReceivedMessage]) -> None:
        if is_entity_instance(instance_id):
            await self.entities.process(instance_id, messages)
            return
        await stall_point("episode-start")
        cached = self.cache.take(instance_id)
        if cached is not None:
            loaded, summary = cached.history, cached.summary
        else:
            loaded, summary = await self._load(instance_id)
        triage = await self._triage(instance_id, loaded, summary, messages)
        if cached is not None and triage.judged_by_history:
            # Another worker may have moved the instance on (a stolen partition): never drop or
            # defer a message on the word of a cached history; check storage first.
            cached = None
            loaded, summary = await self._load(instance_id)
            triage = await self._triage(instance_id, loaded, summary, messages)
        if triage.terminate_unstarted:
            row = await self._hub.instances.get(instance_id)
            triage.start_to_terminate(instance_id, row)
        if triage.awaiting_start:
            row = await self._hub.instances.get(instance_id, fetch_payloads=False)
            triage.settle_awaiting_start(instance_id, row)
        partition = self._hub.partition_of(instance_id)
        if not triage.events and triage.new_start is None:
            if not self.fence.may_act(partition):
                await self._abandon([*triage.consumed, *triage.deferred], delay=0)
                return
            if triage.finished_instance:
                await repair_finished_row(self._hub, instance_id, loaded)
            elif triage.duplicate_start:
                await repair_started_row(self._hub, instance_id, loaded)
            await self._settle(triage)
            if cached is not None and self.owns(instance_id):
                self.cache.put(instance_id, cached)
            return
        new_execution = triage.new_start is not None
        past = [] if new_execution else loaded.events
        new_events: list[HistoryEvent] = [triage.new_start] if triage.new_start is not None else []
        new_events += triage.events
        # The orchestration clock (`current_utc_datetime`) never goes backwards, and after a timer
        # fires it is at least the timer's fire time, whatever this worker's clock says (jumps and
        # skew between workers: durable_ext/clock.py). Timer delays are measured on this clock.
        fired = (e.fire_at for e in new_events if isinstance(e, TimerFired) and e.fire_at)
        latest = [] if new_execution or summary.latest is None else [summary.latest]
        now = max([clock.utc_now(), *latest, *fired])
        started = triage.new_start or summary.started
        versioning = self._options.versioning
        if started is not None and versioning.refuses(started.version):
            if versioning.failure is VersionFailureStrategy.REJECT:
                log.info(
                    "%s: version '%s' is not for this worker (version '%s', %s): left for another",
                    instance_id,
                    started.version or "",
                    versioning.version,
                    versioning.match.value,
                )
                await self._abandon(messages)
                return
            cached = None
        orchestrator = self._orchestrator_for(started)
        episode: dict[str, Any] = {
            "instance_id": instance_id,
            "past_events": past,
            "new_events": new_events,
            "now": now,
            "options": self._options.replay,
        }
        tracing = self._hub.tracing
        with episode_span(tracing, instance_id, started) as span:
            if cached is not None and triage.new_start is None:
                outcome = continue_episode(cached.executor, orchestrator, **episode)
            elif started is not None and versioning.refuses(started.version):
                refusal = versioning.mismatch(started.name, started.version)
                outcome = run_episode(orchestrator, **episode, refuse=(started.name, refusal))
            else:
                outcome = run_episode(orchestrator, **episode)
            for warning in outcome.result.warnings:
                log.debug("%s: %s", instance_id, warning)
            track_episode(self._hub.tracking, instance_id, outcome, new_execution)
            finish_episode_span(tracing, span, instance_id, outcome, now)
            previous = cached.status if cached is not None else None
            past_episodes = summary.episodes if outcome.first_new_index else 0
            etag, status = await self._checkpoint(
                instance_id, loaded, outcome, triage, previous, past_episodes
            )
        if etag is not None and not outcome.executor.is_finished and self.owns(instance_id):
            stored = LoadedHistory(outcome.events, etag, outcome.execution_id)
            if outcome.first_new_index:
                summary.add(outcome.events[outcome.first_new_index :])
            else:
                summary = HistorySummary.of(outcome.events)
            self.cache.put(instance_id, CachedInstance(outcome.executor, stored, summary, status))

    async def _load(self, instance_id: str) -> tuple[LoadedHistory, HistorySummary]:
        loaded = await self._hub.history.load(instance_id)
        return loaded, HistorySummary.of(loaded.events)

    async def _triage(
        self,
        instance_id: str,
        loaded: LoadedHistory,
        summary: HistorySummary,
        messages: list[ReceivedMessage],
    ) -> Triage:
        """Sort the batch (`triage.sort_messages`), reading the Instances row only when a decision
        needs it: a client's restart of a finished instance."""
        candidates = restart_candidates(
            loaded.execution_id, summary, messages, self._options.replace_running_instances
        )
        row = (
            await self._hub.instances.get(instance_id, fetch_payloads=False) if candidates else None
        )
        restarts = decide_restarts(candidates, row)
        return sort_messages(instance_id, loaded.execution_id, summary, messages, restarts)

    def _orchestrator_for(self, started: ExecutionStarted | None) -> Any:
        name = started.name if started is not None else None
        try:
            return self._registry.orchestrator(name or "").function
        except UnknownFunctionError as exc:
            error = exc

            def missing(context: DurableOrchestrationContext) -> Any:
                raise error

            return missing

    async def _checkpoint(
        self,
        instance_id: str,
        loaded: LoadedHistory,
        outcome: EpisodeOutcome,
        triage: Triage,
        previous: StatusMark | None,
        past_episodes: int,
    ) -> tuple[str | None, StatusMark | None]:
        """Commit an episode in DTFx order: the new sentinel ETag (None if another writer won)
        and what the Instances row now holds (see `WorkerOptions.instance_status_refresh`)."""
        now = outcome.events[-1].timestamp
        outbound = outbound_messages(outcome, now, past_episodes)
        partition = self._hub.partition_of(instance_id)
        first = outcome.first_new_index
        offloaded: dict[tuple[int, str], str] = {}
        try:
            self.fence.check(partition)
            await asyncio.gather(
                *(self.storage.run(self._send, item, partition) for item in outbound)
            )
            if outcome.executor.is_finished:
                self._timer_wakes.forget(instance_id)
            fault_point("after-outbound-send")
            await stall_point("after-outbound-send")
            # A new execution's merge overwrites the row's Input (and may leave its Output):
            # read which blobs the row points at first, when it may point at any (a replaced
            # execution, or a large input the client's Pending row stored).
            replaced_row_blobs = (
                await self._instance_row_blobs(instance_id)
                if first == 0
                and (
                    loaded.etag is not None
                    or exceeds_property_limit(outcome.started.input or "")
                )
                else {}
            )
            self.fence.check(partition)
            etag = await self._hub.history.append(
                instance_id,
                outcome.execution_id,
                outcome.events[first:],
                first,
                loaded.etag,
                offloaded,
            )
        except (CheckpointConflictError, OwnershipLostError) as error:
            if isinstance(error, OwnershipLostError):
                log.warning("%s: abandoning this episode: %s", instance_id, error)
            else:
                log.info(
                    "%s was checkpointed by another worker; abandoning this episode", instance_id
                )
            await self._abandon([*triage.consumed, *triage.deferred], delay=0)
            return None, None
        # Committed. From here on the batch's messages are applied: they are deleted, never put
        # back (a redelivered EventRaised would be applied twice), whatever fails below.
        self._held.mark_applied(triage.consumed)
        fault_point("after-history-write")
        await stall_point("after-history-write")
        columns = checkpoint_columns(outcome, first == 0, offloaded)
        assert columns.runtime_status is not None
        mark = StatusMark(
            outcome.execution_id,
            columns.runtime_status,
            columns.custom_status,
            time.monotonic(),
        )
        status: StatusMark | None = mark
        if not self.fence.may_act(partition):
            # Lost after the history write: its new owner repairs the row and deletes the
            # messages (they come back and are recognised as applied).
            log.warning("%s: partition %d lost after its checkpoint", instance_id, partition)
            return etag, None
        if self._status_changed(previous, mark, first == 0):
            merged = await self._merge_instance_row(instance_id, columns, mark, etag)
            written = columns.table_columns() if merged else {}
            kept = {c: b for c, b in replaced_row_blobs.items() if not written.get(c)}
            # The row still points at these: never deleted before purge (docs/payload-blobs.md).
            self._hub.history.spare_blobs(instance_id, kept.values())
            overwritten = [b for c, b in replaced_row_blobs.items() if c not in kept]
            self._hub.history.retire_blobs(instance_id, outcome.execution_id, overwritten)
            if not merged:
                status = None
                self._in_background(self._retry_instance_merge(instance_id, columns, etag))
        else:
            status = previous
        if self.fence.may_act(partition):
            await self._hub.history.delete_unreferenced_blobs(instance_id)
        fault_point("before-inbound-delete")
        await stall_point("before-inbound-delete")
        if not self.fence.may_act(partition):
            return etag, status
        if self._options.settle_in_background and not triage.deferred:
            task = asyncio.create_task(self._settle(triage))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
        else:
            await self._settle(triage)
        return etag, status

    async def _instance_row_blobs(self, instance_id: str) -> dict[str, str]:
        """The Input/Output property blobs (by column) of an Instances row that a new execution
        is about to replace (its own, or history rows' it shares): each is deleted once the new
        row's merge overwrites its column, and kept while the row still points at it. None when
        the row cannot be read (a leak until purge, never a failed checkpoint)."""
        try:
            row = await self._hub.instances.get(instance_id, fetch_payloads=False)
        except Exception as exc:  # noqa: BLE001 - a leak, never a failed checkpoint
            log.warning("Could not read the Instances row of %s: %s", instance_id, exc)
            return {}
        if row is None:
            return {}
        payloads = self._hub.payloads
        found = {"Input": payloads.instance_row_blob(row.input)}
        found["Output"] = payloads.instance_row_blob(row.output)
        return {column: name for column, name in found.items() if name is not None}

    async def _merge_instance_row(
        self, instance_id: str, columns: InstanceColumns, status: StatusMark, etag: str
    ) -> bool:
        """Merge a committed checkpoint's Instances columns (then undo it if it landed late);
        False when storage failed (the caller retries in the background)."""
        try:
            await self._hub.instances.merge(instance_id, columns)
            late = time.monotonic() - status.written_at > _LATE_MERGE_SECONDS
            if late or not self.owns(instance_id):
                await undo_late_merge(self._hub, instance_id, etag, columns.execution_id)
        except Exception as exc:  # noqa: BLE001 - history is committed; the row is repaired later
            log.warning(
                "%s: updating the Instances row failed after the history was written: %s; "
                "retrying in the background",
                instance_id,
                describe_storage_error(exc),
            )
            return False
        return True

    async def _retry_instance_merge(
        self, instance_id: str, columns: InstanceColumns, etag: str
    ) -> None:
        """Retry a committed checkpoint's Instances merge with back-off. It lands late by
        definition, so it is checked against history afterwards (`undo_late_merge`)."""
        delay = 1.0
        for _ in range(_INSTANCE_MERGE_RETRIES):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            if not self.owns(instance_id):
                log.info(
                    "%s: no longer owned; its new owner repairs the Instances row", instance_id
                )
                return
            try:
                await self._hub.instances.merge(instance_id, columns)
                await undo_late_merge(self._hub, instance_id, etag, columns.execution_id)
            except Exception as exc:  # noqa: BLE001 - storage still failing: try again
                log.debug("%s: Instances merge retry failed: %s", instance_id, exc)
                continue
            log.info("%s: the Instances row is up to date again", instance_id)
            return
        log.error(
            "%s: gave up updating the Instances row; the next episode or message repairs it",
            instance_id,
        )

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _status_changed(
        self, previous: StatusMark | None, status: StatusMark, new_execution: bool
    ) -> bool:
        """Whether a checkpoint must merge the Instances row: anything a reader would notice
        besides LastUpdatedTime, or LastUpdatedTime older than the refresh interval."""
        refresh = self._options.instance_status_refresh.total_seconds()
        return (
            previous is None
            or new_execution
            or status.runtime_status is not OrchestrationRuntimeStatus.Running
            or (previous.execution_id, previous.runtime_status, previous.custom_status)
            != (status.execution_id, status.runtime_status, status.custom_status)
            or status.written_at - previous.written_at >= refresh
        )

    async def _send(self, item: Outbound, partition: int) -> None:
        """Send one outbound message of an episode on `partition` (unless it may no longer act on
        it); hand it to this process's own dispatchers when they will run it.

        Handoff is the same message written with a visibility timeout instead of visible at once,
        processed here without a receive: a crash before it is deleted only delays it.
        """
        self.fence.check(partition)
        message = item.message
        if item.to_work_items:
            runner = self.local_activities
            if runner is not None and runner.try_reserve():
                try:
                    held = await self._hub.work_items.send_held(message, self._options.handoff_hold)
                except BaseException:
                    runner.release()
                    raise
                runner.submit(held, reserved=True)
            else:
                await self._hub.work_items.send(message)
        elif (
            item.delay is None
            and self._options.in_process_handoff
            and self.owns(message.instance.instance_id)
        ):
            queue = self._hub.control_queue_for(message.instance.instance_id)
            self.submit([await queue.send_held(message, self._options.handoff_hold)])
        else:
            await self._hub.send_to_instance(message, item.delay)
            if item.delay is not None and self.owns(message.instance.instance_id):
                self._wake_at_fire_time(message.instance.instance_id, item.delay)

    def _wake_at_fire_time(self, instance_id: str, delay: timedelta) -> None:
        """Poll the timer's queue when it comes due instead of at the next back-off tick (one
        loop handle per queue; forgotten when the instance finishes)."""
        queue = self._hub.control_queue_for(instance_id)
        seconds = int(delay.total_seconds() + 0.999) + 0.05
        self._timer_wakes.add(instance_id, queue.wake, seconds)

    async def _settled(self, timeout: float) -> None:
        """Wait (at most `timeout` seconds) for the background deletes: a message applied but not
        deleted would come back to whoever owns its queue next."""
        if self._settling:
            await asyncio.wait(set(self._settling), timeout=max(timeout, 0.1))

    async def _settle(self, triage: Triage) -> None:
        await stall_point("inbound-delete")
        await asyncio.gather(*(self._held.delete(m) for m in triage.consumed))
        await self._abandon(triage.deferred)

    async def _abandon(self, messages: list[ReceivedMessage], delay: int | None = None) -> None:
        await asyncio.gather(*(self._held.abandon(m, delay) for m in messages))
