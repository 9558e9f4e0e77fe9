"""Chaos driver: a mixed workload on worker processes under injected faults, then invariant checks.

    python -m tests.reliability.chaos --workers 3 --instances 2000 --kill-every 20 \\
        --report docs/reliability.md

`run_chaos(config, azurite)` is the library entry point (the quick test calls it with a small
config); the command line starts a private Azurite of its own, runs the long version and writes the
markdown report (`tests/reliability/chaos_report.py`). Its exit status is 0 only when every
invariant held.

A run, in order:

0. The no-fault phase (`no_fault_instances` top-level instances, on a hub of its own, first): the
   same workload on workers that are never killed, with no crash points, no outage, no clock skew
   and no copied messages, but with control-queue and work-item visibility timeouts of
   `no_fault_visibility_seconds` (3 s), shorter than the activities of a share of the instances
   (1.5 times as long) and than the waits of messages held in memory (each worker runs
   `no_fault_max_orchestrations` episode at a time, so messages queue for a slot, and a share of
   the episodes is held 1.5 times the visibility timeout at its start). A held message
   that were not renewed would expire and be received again: every activity task must run exactly
   once (`activities-once`) and every event be applied once (`events-once`). Then the fault phase:
1. The hub is created and one poison message (a body that is not JSON) is put into a control queue.
2. `workers` worker processes (`tests/reliability/chaos_worker.py`: 15 s leases, 10 s queue
   visibility) start with `DURABLE_EXT_FAULT_POINTS` set to a small probability at every crash point
   of a checkpoint, so some die (exit 137) between two checkpoint steps, and with skewed clocks
   (`DURABLE_EXT_FAULT_CLOCK_OFFSET`, one of `clock_offsets` each). A supervisor restarts every
   worker that exits, half of the time under its old id (it reclaims its leases), half of the time
   under a new one (its old leases must expire and be taken over), with the next clock offset in
   turn (so its clock jumps).
3. A closed-loop starter keeps up to `concurrency` top-level instances in flight until `instances`
   were started: chains, fan-out/fan-in through sub-orchestrations, timer chains, approvals (the
   driver raises their external events once they run) and continue-as-new loops
   (`tests/reliability/chaos_app.py`).
4. Meanwhile a random worker is SIGKILLed every `kill_every` seconds, and every `other_every`
   seconds one of the other faults is injected in turn (`FAULT_KINDS`): duplicates of control-queue
   messages (copies of what is queued now and late copies of what was queued earlier), a broken
   partition lease, a zombie (a worker SIGSTOPped past its lease, then SIGCONTed: the history
   sentinel ETag must fence it), a lease stolen and held by an intruder, and a storage outage
   (Azurite stopped, then started again on the same data).
5. Faults stop once every instance was started, every kind of fault has had its turn and
   `min_chaos_seconds` have passed (or once everything has finished). When every
   instance has finished and the queues have drained (but for the poison message, which is retried
   with back-off forever by design), the workers are stopped and the History and Instances tables
   are read raw, instance by instance, to check the invariants (`tests/reliability/chaos_audit.py`).

Nothing is mocked and nothing waits on a sleep for synchronisation: waits are deadlines with
polling; the only sleeps are the faults' own durations (an outage of N seconds lasts N seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import re
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from durable_ext.runtime import Runtime
from durable_ext.storage.names import partition_index
from tests.azurite import AzuriteInstance
from tests.reliability.chaos_app import (
    APPROVAL_EVENT,
    expected_approval,
    expected_eternal,
    parse_execution_line,
    registry,
)
from tests.reliability.chaos_audit import (
    KNOWN_BUGS,
    InvariantResult,
    audit_instance,
    explain,
    invariants,
    raised_event,
)
from tests.reliability.chaos_cluster import (
    FAULT_POINT_NAMES,
    INTRUDER,
    LEASE_RENEW_SECONDS,
    LEASE_SECONDS,
    PARTITIONS,
    POISON_BODY,
    ChaosCluster,
    ChaosView,
)
from tests.reliability.chaos_report import render_report
from tests.reliability.chaos_worker import SLOW_EPISODE
from tests.storage.raw_state import odata_quote
from tests.worker.conftest import fast_options
from tests.worker.fault_app import (
    child_id,
    expected_chain,
    expected_child,
    expected_fan_out,
    read_log,
    work_key,
)

__all__ = [
    "ChaosConfig",
    "ChaosResult",
    "FAULT_KINDS",
    "KNOWN_BUGS",
    "Planned",
    "plan_workload",
    "run_chaos",
    "main",
]

log = logging.getLogger("chaos")

TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
TAKEOVER_LIMIT = 180.0
"""Seconds a takeover after a SIGKILL is watched for."""
TAKEOVER_POLL = 0.25

FAULT_KINDS = ("duplicates", "lease-break", "zombie", "lease-steal", "azurite-restart")
"""The faults injected every `other_every` seconds, in turn (the kills keep their own clock)."""
LOG_SIGNALS = {
    "poison message set aside": r"Poison message",
    "checkpoint fenced by the sentinel ETag (409/412)": r"was checkpointed by another worker",
    "partition lost (lease renewal refused or expired)": r"Lost partition",
    "partition stolen from another worker": r"Stole partition",
    "partition reclaimed after a restart": r"Reclaimed partition",
    "Instances row repaired from History": r"Repairing the Instances row",
    "episode failed and was retried": r"Episode of \S+ failed",
    "ExecutionStarted ignored (instance already running)": r"is already running; ignoring",
    "slow episode (held at its start: no-fault phase)": SLOW_EPISODE,
}
"""Worker log lines counted for the report (what the workers saw of the faults)."""


# -- configuration ----------------------------------------------------------------------------------


@dataclass(slots=True)
class ChaosConfig:
    """What to run and what to inject. The defaults are the long version (`make chaos`)."""

    workers: int = 3
    instances: int = 2000
    """Top-level instances to start (fan-outs add their sub-orchestrations on top)."""
    kill_every: float = 20.0
    """Seconds between two SIGKILLs of a random worker (0: no kills)."""
    other_every: float = 20.0
    """Seconds between two of the other faults, taken in turn from `faults` (0: none)."""
    faults: tuple[str, ...] = FAULT_KINDS
    concurrency: int = 150
    """Top-level instances in flight at most (closed loop)."""
    seed: int = 20240601
    fault_probability: float = 0.0004
    """Crash probability at each fault point of a checkpoint (`DURABLE_EXT_FAULT_POINTS`)."""
    fault_point_crash_limit: int = 30
    """After this many fault-point crashes, restarted workers run without fault points."""
    min_chaos_seconds: float = 0.0
    clock_offsets: tuple[float, ...] = (-600.0, 0.0, 600.0)
    """Seconds each worker's clock is off (`DURABLE_EXT_FAULT_CLOCK_OFFSET`): slot i starts with
    the i-th, and each restart takes the next one in turn."""
    """Keep injecting faults at least this long (while instances are unfinished)."""
    new_identity_probability: float = 0.5
    """Chance that a restarted worker comes back under a new worker id."""
    zombie_seconds: float = LEASE_SECONDS + 6.0
    """How long a zombie stays frozen (past its lease)."""
    steal_hold_seconds: float = 4.0
    azurite_outage_seconds: float = 8.0
    azurite_restarts: int = 2
    """Storage outages at most (each lasts `azurite_outage_seconds`)."""
    duplicate_batch: int = 32
    """Fresh copies per control queue per duplicate burst at most."""
    late_duplicates: int = 24
    """Stored copies of earlier messages re-sent per duplicate burst at most."""
    poison: bool = True
    activity_ms: int = 20
    timer_ms: int = 1500
    visibility_seconds: float = 10.0
    max_activities: int = 8
    startup_deadline: float = 90.0
    completion_deadline: float = 600.0
    """Seconds after the last start within which every instance must have finished."""
    drain_deadline: float = 120.0
    mix: tuple[tuple[str, float], ...] = (
        ("chain", 0.35),
        ("fan", 0.15),
        ("timer", 0.15),
        ("approval", 0.15),
        ("eternal", 0.20),
    )
    hub: str = ""
    work_dir: Path | None = None
    poll_interval: float = 1.0
    progress_every: float = 15.0
    no_fault_instances: int = 300
    """Top-level instances of the no-fault phase, run first on a hub of its own (0: no such
    phase); `no_fault_config()` is its configuration."""
    no_fault_visibility_seconds: float = 3.0
    no_fault_long_share: float = 0.25
    """Share of the no-fault phase's instances whose activities outlast the visibility timeout."""
    no_fault_max_orchestrations: int = 1
    no_fault_slow_episode_share: float = 0.01
    """Share of the no-fault phase's episodes held at their start 1.5 times the visibility
    timeout (a slow episode: its messages, and those waiting for its slot, wait that long)."""
    no_fault: bool = False
    """This is the no-fault phase: nothing is injected and `activities-once` is checked."""
    long_activity_ms: int = 0
    long_share: float = 0.0
    """Share of the instances whose activities sleep `long_activity_ms` instead of `activity_ms`."""
    max_orchestrations: int = 0
    """Episodes each worker runs at once (0: the engine's default)."""
    slow_episode_share: float = 0.0
    slow_episode_seconds: float = 0.0
    """A `slow_episode_share` of the episodes is held this long at its start."""

    def __post_init__(self) -> None:
        if not self.hub:
            self.hub = f"Chaos{secrets.token_hex(4)}"
        unknown = set(self.faults) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        kinds = {kind for kind, _ in self.mix}
        if not kinds <= {"chain", "fan", "timer", "approval", "eternal"}:
            raise ValueError(f"unknown workload kinds in {self.mix}")

    def no_fault_config(self) -> ChaosConfig:
        """The no-fault phase: this workload's mix on a hub of its own, nothing injected, short
        visibility timeouts, some activities 1.5 times as long as them, one episode per worker at
        a time."""
        visibility = self.no_fault_visibility_seconds
        return replace(
            self,
            no_fault=True,
            instances=self.no_fault_instances,
            no_fault_instances=0,
            kill_every=0.0,
            other_every=0.0,
            faults=(),
            fault_probability=0.0,
            min_chaos_seconds=0.0,
            clock_offsets=(0.0,),
            azurite_restarts=0,
            poison=False,
            visibility_seconds=visibility,
            long_activity_ms=int(visibility * 1500),
            long_share=self.no_fault_long_share,
            max_orchestrations=self.no_fault_max_orchestrations,
            slow_episode_share=self.no_fault_slow_episode_share,
            slow_episode_seconds=visibility * 1.5,
            hub=self.hub[:41] + "Calm",
            work_dir=self.work_dir / "no-fault" if self.work_dir else None,
        )

    @property
    def fault_points_spec(self) -> str:
        """The value of DURABLE_EXT_FAULT_POINTS for a worker that may crash."""
        return ",".join(f"{name}:{self.fault_probability:g}" for name in FAULT_POINT_NAMES)


# -- the workload ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Planned:
    """One instance the driver expects to see finish: top-level or a fan-out's child."""

    instance_id: str
    kind: str
    expected: Any
    orchestrator: str = ""
    spec: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    events: int = 0
    """External events the driver raises (approvals)."""
    activity_keys: frozenset[str] = frozenset()


def plan_workload(config: ChaosConfig, rng: random.Random) -> list[Planned]:
    """The top-level instances and the fan-outs' children, in start order (children after their
    parent; the driver starts only top-level ones)."""
    kinds = [kind for kind, _ in config.mix]
    weights = [weight for _, weight in config.mix]
    planned: list[Planned] = []
    for n in range(config.instances):
        kind = rng.choices(kinds, weights)[0]
        iid = f"{kind}{n:05d}"
        long = config.long_share > 0 and rng.random() < config.long_share
        ms = config.long_activity_ms if long else config.activity_ms
        if kind in ("chain", "timer"):
            steps = rng.randint(3, 5) if kind == "chain" else 2
            spec: dict[str, Any] = {"steps": steps, "ms": ms}
            if kind == "timer":
                spec["timer_ms"] = config.timer_ms
            keys = frozenset(work_key(iid, k) for k in range(steps))
            orchestrator = "chain" if kind == "chain" else "timer_chain"
            planned.append(
                Planned(iid, kind, expected_chain(steps), orchestrator, spec, activity_keys=keys)
            )
        elif kind == "fan":
            children, items = 2, 4
            spec = {"children": children, "items": items, "ms": ms}
            total = expected_fan_out(children, items)
            planned.append(Planned(iid, kind, total, "fan_out_parent", spec))
            for i in range(children):
                child = child_id(iid, i)
                keys = frozenset(work_key(child, j) for j in range(items))
                planned.append(
                    Planned(
                        child,
                        "fan-child",
                        expected_child(i, items),
                        "child",
                        parent=iid,
                        activity_keys=keys,
                    )
                )
        elif kind == "approval":
            events = 2
            spec = {"events": events, "ms": ms}
            keys = frozenset({work_key(iid, 0)})
            output = expected_approval(events)
            planned.append(
                Planned(iid, kind, output, "approval", spec, events=events, activity_keys=keys)
            )
        else:
            generations = 3
            spec = {"generations": generations, "ms": ms}
            keys = frozenset(work_key(iid, g) for g in range(generations))
            planned.append(
                Planned(
                    iid,
                    kind,
                    expected_eternal(generations),
                    "eternal",
                    spec,
                    activity_keys=keys,
                )
            )
    return planned


# -- results ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class ChaosResult:
    """Everything the report shows."""

    config: ChaosConfig
    started_at: datetime
    duration: float = 0.0
    workload_seconds: float = 0.0
    instances_total: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    completed_top_level: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    invariants: list[InvariantResult] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    """Seconds from the start request to CompletedTime, by kind (top-level instances)."""
    activity_executions: int = 0
    activity_keys: int = 0
    activity_repeats: int = 0
    activity_runs: Counter[int] = field(default_factory=Counter)
    """Executions per activity task of the workload → number of such tasks."""
    events_recorded: Counter[int] = field(default_factory=Counter)
    """EventRaised rows per raised event → number of such events."""
    events_applied: Counter[int] = field(default_factory=Counter)
    """Deliveries to the orchestration per raised event → number of such events."""
    event_copies: int = 0
    """Extra copies of raised events the driver sent (copied messages, retried raises)."""
    long_instances: int = 0
    """Top-level instances whose activities sleep `long_activity_ms`."""
    no_fault: ChaosResult | None = None
    """The no-fault phase, run first (None when there was none)."""
    duplicate_responses: int = 0
    duplicate_events: int = 0
    fenced_checkpoints: int = 0
    poison_partition: int | None = None
    poison_retries: int = 0
    poison_partition_instances: int = 0
    queue_counts_at_end: dict[str, int] = field(default_factory=dict)
    drain_seconds: float = 0.0
    log_signals: Counter[str] = field(default_factory=Counter)
    worker_exit_codes: dict[str, int] = field(default_factory=dict)
    machine: str = ""
    errors: list[str] = field(default_factory=list)
    partition_manager: str = ""
    """Which partition manager the workers ran: "table" or "legacy" (blob leases)."""
    takeover_seconds: list[float] = field(default_factory=list)
    """Per SIGKILL: seconds until every partition the victim owned was renewed by a worker."""
    progress_seconds: list[float] = field(default_factory=list)
    """Per partition the victim owned with instances in flight: seconds until one of them
    wrote history again."""
    takeovers_unmeasured: int = 0

    @property
    def passed(self) -> bool:
        """True when every invariant held and the run itself did not fail, in every phase."""
        phase = not self.errors and all(i.held for i in self.invariants)
        return phase and (self.no_fault is None or self.no_fault.passed)

    def throughput(self) -> float:
        """Top-level instances finished per second of workload."""
        return self.completed_top_level / self.workload_seconds if self.workload_seconds else 0.0


# -- the run ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Seen:
    """What the driver observed of one instance while it ran."""

    status: str = "Unknown"
    started_at: datetime | None = None
    first_finished: tuple[str | None, datetime | None] | None = None
    """(ExecutionId, CompletedTime) of its Instances row when first seen finished."""
    finished_at: datetime | None = None
    """When the driver first saw it finished (its own clock: the workers' clocks are skewed)."""
    events_raised: bool = False
    pending_since: float | None = None
    """When the driver first saw its Instances row Pending (monotonic)."""
    stale_pending: bool = False
    """Its row stayed Pending although its History had started (the driver raised its events)."""
    history_started: bool = False
    """The driver has seen its History started while its row said Pending (the wait for the row
    to catch up then starts again from that moment)."""


class _Run:
    """The state of one chaos run (the module docstring describes its phases)."""

    def __init__(self, config: ChaosConfig, azurite: AzuriteInstance, work_dir: Path) -> None:
        self.config = config
        self.azurite = azurite
        self.work_dir = work_dir
        self.rng = random.Random(config.seed)
        self.activity_log = work_dir / "activities.log"
        self.plan = plan_workload(config, self.rng)
        self.by_id = {p.instance_id: p for p in self.plan}
        self.top_level = [p for p in self.plan if p.parent is None]
        self.seen = {p.instance_id: _Seen() for p in self.plan}
        self.result = ChaosResult(config=config, started_at=datetime.now(UTC))
        self.counts = self.result.faults
        self.measurements: set[asyncio.Task[None]] = set()
        self.cluster = ChaosCluster(
            config, azurite.connection_string, work_dir, self.activity_log, self.rng, self.counts
        )
        self.storage_up = asyncio.Event()
        self.storage_up.set()
        self.faults_done = asyncio.Event()
        self.every_fault_had_its_turn = config.other_every <= 0 or not config.faults
        self.started = 0
        self.finished_top_level = 0
        self.stash: list[tuple[int, str]] = []
        self.event_copies: dict[str, Counter[int]] = {}
        """Extra copies of each instance's events (by value) that the driver sent."""
        self.workload_began = 0.0
        self.last_completion = 0.0
        self.view: ChaosView
        self.rt: Runtime
        self.stale_pending_after = LEASE_SECONDS + config.visibility_seconds + 15
        """Seconds of storage uptime after which a Pending row with a started History is stale:
        by then any start message a dead worker held has come back (lease expiry, then
        visibility timeout) and been handled, which must have brought the row up to date."""

    # -- helpers ---------------------------------------------------------------------------------
    def all_started(self) -> bool:
        return self.started >= len(self.top_level)

    def all_finished(self) -> bool:
        return all(s.status in TERMINAL for s in self.seen.values())

    async def _retry(self, what: str, call: Callable[[], Awaitable[Any]], deadline: float) -> Any:
        """Call until it succeeds (storage may be down); raise after `deadline` seconds."""
        end = time.monotonic() + deadline
        while True:
            await self.storage_up.wait()
            try:
                return await call()
            except Exception as exc:  # storage faults are expected here
                if time.monotonic() > end:
                    raise RuntimeError(f"{what} kept failing for {deadline:.0f} s") from exc
                log.debug("%s failed (%r), retrying", what, exc)
                await asyncio.sleep(0.5)

    # -- phases -------------------------------------------------------------------------------------
    async def run(self) -> ChaosResult:
        config = self.config
        began = time.monotonic()
        connection = self.azurite.connection_string
        self.result.kinds = Counter(p.kind for p in self.plan)
        self.result.long_instances = sum(
            1
            for p in self.top_level
            if config.long_share and p.spec.get("ms") == config.long_activity_ms
        )
        self.result.instances_total = len(self.plan)
        self.result.machine = f"{os.cpu_count()} CPU cores, Python {sys.version.split()[0]}"
        async with (
            ChaosView(connection, config.hub, PARTITIONS) as view,
            Runtime(
                registry,
                connection=connection,
                hub=config.hub,
                options=fast_options(),
                run_worker=False,
            ) as rt,
        ):
            self.view, self.rt = view, rt
            if config.poison:
                await self.inject_poison()
            self.cluster.start_all()
            supervisor = asyncio.create_task(self.cluster.supervise(), name="supervisor")
            try:
                await self.wait_for_workers()
                table = await view.uses_partition_table()
                self.result.partition_manager = "table" if table else "legacy"
                self.workload_began = time.monotonic()
                faults = [
                    asyncio.create_task(self.kill_loop(), name="kills"),
                    asyncio.create_task(self.fault_loop(), name="faults"),
                ]
                tracker = asyncio.create_task(self.track_loop(), name="tracker")
                try:
                    await self.start_loop()
                    await self.wait_finished()
                finally:
                    self.faults_done.set()
                    for task in (*faults, tracker):
                        if task is tracker:
                            task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                self.result.workload_seconds = self.last_completion - self.workload_began
                await asyncio.gather(*self.measurements, return_exceptions=True)
                await self.drain()
            finally:
                self.faults_done.set()
                if not self.azurite.running:
                    await asyncio.to_thread(self.azurite.start)
                self.storage_up.set()
                self.result.worker_exit_codes = await self.cluster.stop()
                supervisor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await supervisor
            await self.audit()
        self.result.duration = time.monotonic() - began
        return self.result

    async def inject_poison(self) -> None:
        """One message that is not a DTFx envelope, in a seeded control queue."""
        index = self.rng.randrange(PARTITIONS)
        await self.view.send_control(index, POISON_BODY)
        self.result.poison_partition = index
        self.counts["poison message"] += 1

    async def wait_for_workers(self) -> None:
        """Until every partition is owned by some worker (the workers are up); in the no-fault
        phase, until every worker owns one too and the owners have not changed for a lease
        renewal interval and a second (by then a worker a partition was stolen from has noticed:
        the load balancing's moves are over before the workload starts, as that phase measures
        held messages, not partition moves)."""
        deadline = time.monotonic() + self.config.startup_deadline
        owners_needed = min(self.config.workers, PARTITIONS) if self.config.no_fault else 1
        settle = (LEASE_RENEW_SECONDS + 1.0) if self.config.no_fault else 0.0
        settled: tuple[dict[int, str | None], float] | None = None
        while True:
            owners = await self.view.lease_owners()
            if settled is None or settled[0] != owners:
                settled = (owners, time.monotonic())
            balanced = all(owners.values()) and len(set(owners.values())) >= owners_needed
            if balanced and time.monotonic() - settled[1] >= settle:
                log.info("workers up, leases %s", owners)
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the workers did not own every partition within "
                    f"{self.config.startup_deadline:.0f} s: {owners}\n"
                    f"{self.cluster.log_text()[-3000:]}"
                )
            await asyncio.sleep(0.2)

    async def start_loop(self) -> None:
        """Start the top-level instances, keeping at most `concurrency` of them unfinished."""
        for planned in self.top_level:
            while self.started - self.finished_top_level >= self.config.concurrency:
                await asyncio.sleep(0.05)
            await self.start_one(planned)
            self.started += 1
        log.info("all %d instances started", self.started)

    async def start_one(self, planned: Planned) -> None:
        """`start_new`; after a failure, start again only if storage has no trace of the instance
        (a second start_new after a start message went out would send a second ExecutionStarted)."""
        end = time.monotonic() + self.config.completion_deadline
        self.seen[planned.instance_id].started_at = datetime.now(UTC)
        while True:
            await self.storage_up.wait()
            try:
                await self.rt.client.start_new(
                    planned.orchestrator, planned.instance_id, planned.spec
                )
                return
            except Exception as exc:  # storage faults are expected here
                self.counts["start_new failed (retried)"] += 1
                log.info("start_new(%s) failed: %r", planned.instance_id, exc)
                if time.monotonic() > end:
                    raise
                await asyncio.sleep(0.5)
                with contextlib.suppress(Exception):
                    if await self.rt.hub.instances.get(planned.instance_id, fetch_payloads=False):
                        return

    async def track_loop(self) -> None:
        """Poll the Instances table: note when instances finish; raise the approvals' events."""
        last_progress = time.monotonic()
        raising: set[asyncio.Task[None]] = set()
        while True:
            rows: list[dict[str, Any]] = []
            if self.storage_up.is_set():
                try:
                    rows = await self.view.instance_rows()
                except Exception as exc:  # noqa: BLE001 - storage faults are expected here
                    log.debug("reading Instances failed: %r", exc)
            now = time.monotonic()
            for row in rows:
                seen = self.seen.get(row["PartitionKey"])
                if seen is None:
                    continue
                planned = self.by_id[row["PartitionKey"]]
                status = row.get("RuntimeStatus") or "Pending"
                if status in TERMINAL and seen.status not in TERMINAL:
                    if seen.first_finished is None:
                        seen.first_finished = (row.get("ExecutionId"), row.get("CompletedTime"))
                        seen.finished_at = datetime.now(UTC)
                    self.last_completion = now
                    if planned.parent is None:
                        self.finished_top_level += 1
                elif status not in TERMINAL and seen.status in TERMINAL and planned.parent is None:
                    self.finished_top_level -= 1  # it runs again (a bug the audit reports)
                seen.status = status
                if status == "Pending" and seen.pending_since is None:
                    seen.pending_since = now
                if planned.events and not seen.events_raised:
                    stale = (
                        status == "Pending"
                        and seen.pending_since is not None
                        and now - seen.pending_since > self.stale_pending_after
                    )
                    if status == "Running" or stale:
                        seen.events_raised = True
                        task = asyncio.create_task(self.raise_events(planned, check_started=stale))
                        raising.add(task)
                        task.add_done_callback(raising.discard)
            if now - last_progress >= self.config.progress_every:
                last_progress = now
                done = sum(1 for s in self.seen.values() if s.status in TERMINAL)
                log.info(
                    "%.0f s: started %d/%d, finished %d/%d instances; faults %s",
                    now - self.workload_began,
                    self.started,
                    len(self.top_level),
                    done,
                    len(self.seen),
                    dict(self.counts),
                )
            await asyncio.sleep(self.config.poll_interval)

    async def raise_events(self, planned: Planned, check_started: bool = False) -> None:
        """Raise the approvals of an instance that runs. With `check_started` (its Instances row
        has stayed Pending for long), first make sure from its History that it has started: an
        event that reaches an instance before its start is dropped after a few retries (DTFx
        behaviour), and a row that says Pending while History runs is a defect to report."""
        iid = planned.instance_id
        if check_started:
            rows = await self._retry(
                "reading History",
                lambda: self.view.history_rows(iid),
                self.config.completion_deadline,
            )
            if not any(r.get("EventType") == "ExecutionStarted" for r in rows):
                self.seen[iid].events_raised = False
                self.seen[iid].pending_since = None
                return
            if not self.seen[iid].history_started:
                # The row may lag its History for a takeover: a worker frozen or killed between
                # its history write and its Instances merge leaves the row to the partition's
                # next owner, which repairs it when the start message comes back. Give it the
                # same time again, counted from now.
                self.seen[iid].history_started = True
                self.seen[iid].events_raised = False
                self.seen[iid].pending_since = time.monotonic()
                return
            self.seen[iid].stale_pending = True
            log.warning("%s: Instances row still Pending, but its History has started", iid)
        for value in range(planned.events):
            attempts = 0

            async def attempt(value: int = value) -> None:
                nonlocal attempts
                attempts += 1
                if attempts > 1:  # the failed attempt may have sent its message all the same
                    self.copied_event(iid, value)
                await self.rt.client.raise_event(iid, APPROVAL_EVENT, value)

            await self._retry(f"raise_event({iid})", attempt, self.config.completion_deadline)
        self.counts["external events raised"] += planned.events

    def copied_event(self, instance_id: str, value: int) -> None:
        """Note an extra copy of an instance's event (it may be applied once more)."""
        self.event_copies.setdefault(instance_id, Counter())[value] += 1
        self.result.event_copies += 1

    def copied_message(self, body: str) -> None:
        """Note a control-queue message copied by the driver, if it raises an approval event."""
        event = raised_event(body, APPROVAL_EVENT)
        if event is not None:
            self.copied_event(*event)

    async def wait_finished(self) -> None:
        """Until every instance has finished, or the completion deadline has passed."""
        deadline = time.monotonic() + self.config.completion_deadline
        while not (self.all_started() and self.all_finished()):
            if time.monotonic() > deadline:
                stuck = {i: s.status for i, s in self.seen.items() if s.status not in TERMINAL}
                sample = dict(list(stuck.items())[:20])
                self.result.errors.append(
                    f"{len(stuck)} instances did not finish within "
                    f"{self.config.completion_deadline:.0f} s of the last start, e.g. {sample}"
                )
                break
            await asyncio.sleep(0.25)
        self.result.completed_top_level = self.finished_top_level

    # -- faults -------------------------------------------------------------------------------------
    def chaos_over(self) -> bool:
        """Faults stop once every instance was started, every kind of fault has had its turn and
        `min_chaos_seconds` have passed, or once everything has finished."""
        if self.faults_done.is_set() or (self.all_started() and self.all_finished()):
            return True
        elapsed = time.monotonic() - self.workload_began
        return (
            self.all_started()
            and self.every_fault_had_its_turn
            and elapsed >= self.config.min_chaos_seconds
        )

    async def _pause(self, seconds: float) -> bool:
        """Wait `seconds` on the fault clock; False when the chaos is over."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.faults_done.wait()
        return not self.chaos_over()

    async def kill_loop(self) -> None:
        """SIGKILL a random worker every `kill_every` seconds."""
        every = self.config.kill_every
        if every <= 0:
            return
        while await self._pause(every):
            rows: dict[int, dict[str, Any]] = {}
            running: list[str] = []
            if self.result.partition_manager == "table":
                with contextlib.suppress(Exception):  # storage down: this kill goes unmeasured
                    rows = await self.view.partition_rows()
                    running = await self.running_instances()
            victim = self.cluster.kill_random()
            if victim is not None:
                killed = datetime.now(UTC)
                self.counts["SIGKILL of a worker"] += 1
                log.info("SIGKILL %s", victim)
                orphaned = {i for i, row in rows.items() if row.get("CurrentOwner") == victim}
                if orphaned:
                    task = asyncio.create_task(self.measure_takeover(killed, orphaned, running))
                    self.measurements.add(task)
                    task.add_done_callback(self.measurements.discard)

    async def running_instances(self) -> list[str]:
        """Ids of the instances whose Instances row says Running."""
        table = self.view.tables.get_table_client(f"{self.config.hub}Instances")
        rows = table.query_entities("RuntimeStatus eq 'Running'", select=["PartitionKey"])
        return [row["PartitionKey"] async for row in rows]

    async def measure_takeover(
        self, killed: datetime, orphaned: set[int], running: list[str]
    ) -> None:
        """After a SIGKILL: how long until every partition the victim owned is renewed by some
        worker (a survivor, or the victim restarted under its old id), and, per partition, until
        one of its instances that were in flight writes history again."""
        began = time.monotonic()
        in_flight = {
            p: [i for i in running if partition_index(i, PARTITIONS) == p][:5] for p in orphaned
        }
        pending = {p for p, ids in in_flight.items() if ids}
        owned_at: float | None = None
        since = killed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        history = self.view.tables.get_table_client(f"{self.config.hub}History")
        while time.monotonic() - began < TAKEOVER_LIMIT and (owned_at is None or pending):
            with contextlib.suppress(Exception):  # storage outages happen meanwhile
                if owned_at is None:
                    rows = await self.view.partition_rows()
                    if all(
                        rows[p].get("CurrentOwner") not in (None, INTRUDER)
                        and rows[p].get("LastRenewal", killed) > killed
                        for p in orphaned
                    ):
                        owned_at = time.monotonic() - began
                for p in sorted(pending):
                    for instance_id in in_flight[p]:
                        query = (
                            f"PartitionKey eq {odata_quote(instance_id)} and "
                            f"Timestamp ge datetime'{since}'"
                        )
                        found = history.query_entities(query, select=["RowKey"], results_per_page=1)
                        if [row async for row in found]:
                            self.result.progress_seconds.append(time.monotonic() - began)
                            pending.discard(p)
                            break
            await asyncio.sleep(TAKEOVER_POLL)
        if owned_at is None:
            self.result.takeovers_unmeasured += 1
        else:
            self.result.takeover_seconds.append(owned_at)

    async def fault_loop(self) -> None:
        """Every `other_every` seconds (the first after half of it), the next fault in turn."""
        every = self.config.other_every
        kinds = list(self.config.faults)
        if every <= 0 or not kinds:
            return
        outages = 0
        wait = every / 2
        turn = 0
        while await self._pause(wait):
            kind = kinds[turn % len(kinds)]
            turn += 1
            self.every_fault_had_its_turn = turn >= len(kinds)
            if kind == "azurite-restart":
                if outages >= self.config.azurite_restarts:
                    wait = 0
                    continue
                outages += 1
            try:
                await self.inject(kind)
            except Exception as exc:  # noqa: BLE001 - a fault that could not be injected
                self.counts[f"{kind}: could not be injected"] += 1
                log.info("%s could not be injected: %r", kind, exc)
            wait = every

    async def inject(self, kind: str) -> None:
        if kind == "duplicates":
            await self.duplicate_burst()
        elif kind == "lease-break":
            index = self.rng.randrange(PARTITIONS)
            if await self.view.break_lease(index):
                self.counts["partition lease broken"] += 1
                log.info("broke the lease of partition %d", index)
        elif kind == "lease-steal":
            index = self.rng.randrange(PARTITIONS)
            owner = await self.view.steal_lease(index, self.config.steal_hold_seconds)
            if owner is not None:
                self.counts["partition lease stolen by an intruder"] += 1
                log.info("stole partition %d from %s", index, owner)
        elif kind == "zombie":
            victim = await self.cluster.freeze(self.config.zombie_seconds)
            if victim is not None:
                self.counts["zombie worker (SIGSTOP past its lease, then SIGCONT)"] += 1
                log.info("froze %s for %.0f s", victim, self.config.zombie_seconds)
        elif kind == "azurite-restart":
            await self.storage_outage()

    async def duplicate_burst(self) -> None:
        """For 2 s, copy every visible control-queue message back into its queue once; then send
        again a sample of the copies taken in earlier bursts (late duplicates)."""
        late = self.rng.sample(self.stash, min(len(self.stash), self.config.late_duplicates))
        copied: set[str] = set()
        fresh: list[tuple[int, str]] = []
        window = time.monotonic() + 2.0
        while time.monotonic() < window:
            for index in range(PARTITIONS):
                for message_id, body in await self.view.peek_control(
                    index, self.config.duplicate_batch
                ):
                    if message_id in copied or body == POISON_BODY:
                        continue
                    copied.add(message_id)
                    await self.view.send_control(index, body)
                    self.copied_message(body)
                    fresh.append((index, body))
            await asyncio.sleep(0.1)  # peek again: what is visible keeps changing
        for index, body in late:
            await self.view.send_control(index, body)
            self.copied_message(body)
        self.stash = (self.stash + fresh)[-2000:]
        self.counts["duplicate bursts"] += 1
        self.counts["control messages duplicated at once"] += len(fresh)
        self.counts["control messages duplicated late"] += len(late)
        log.info("duplicated %d visible and %d earlier control messages", len(fresh), len(late))

    async def storage_outage(self) -> None:
        """Stop Azurite for `azurite_outage_seconds`, then start it on the same data.

        Azurite is stopped with SIGTERM, not SIGKILL: it persists its metadata lazily, so a SIGKILL
        may lose writes it had acknowledged, which a real storage account never does. To the
        workers both look the same: every connection is refused until it is back."""
        self.storage_up.clear()
        try:
            await asyncio.to_thread(self.azurite.stop)
            log.info("Azurite stopped")
            # A real outage: it lasts as long as it lasts.
            await asyncio.sleep(self.config.azurite_outage_seconds)
        finally:
            await asyncio.to_thread(self.azurite.start)
            for seen in self.seen.values():  # the outage does not count as Pending time
                if seen.pending_since is not None:
                    seen.pending_since = time.monotonic()
            self.storage_up.set()
        self.counts["storage outage (Azurite stopped, then restarted)"] += 1
        log.info("Azurite back after %.0f s", self.config.azurite_outage_seconds)

    # -- the end ------------------------------------------------------------------------------------
    def expected_queue_counts(self) -> dict[str, int]:
        """Every queue empty but the poison message's."""
        counts = {name: 0 for name in [*self.view.control_queues, self.view.work_item_queue]}
        if self.result.poison_partition is not None:
            counts[self.view.control_queues[self.result.poison_partition]] = 1
        return counts

    async def drain(self) -> None:
        """Wait until the queues hold nothing but the poison message (or the drain deadline)."""
        expected = self.expected_queue_counts()
        began = time.monotonic()
        deadline = began + self.config.drain_deadline
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                counts = await self.view.queue_counts()
                if counts == expected:
                    break
            await asyncio.sleep(0.5)
        self.result.queue_counts_at_end = counts
        self.result.drain_seconds = time.monotonic() - began

    async def audit(self) -> None:
        """Read every instance's History and Instances rows raw and check the invariants."""
        result = self.result
        runs: Counter[str] = Counter()
        executions: dict[str, set[str]] = {p.instance_id: set() for p in self.plan}
        for line in read_log(self.activity_log):
            begun = parse_execution_line(line)
            if begun is None:
                runs[line] += 1
            elif begun[0] in executions and begun[2] == 0:
                executions[begun[0]].add(begun[1])
        result.activity_executions = sum(runs.values())
        result.activity_keys = len(runs)
        result.activity_repeats = sum(count - 1 for count in runs.values() if count > 1)
        config = self.config
        checks = invariants(no_fault=config.no_fault, poison=config.poison)
        semaphore = asyncio.Semaphore(16)

        async def read(planned: Planned) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
            async with semaphore:
                iid = planned.instance_id
                rows = await self._retry("reading History", lambda: self.view.history_rows(iid), 60)
                row = await self._retry(
                    "reading Instances", lambda: self.view.instance_row(iid), 60
                )
                return rows, row

        facts = await asyncio.gather(*(read(p) for p in self.plan))
        poison_partition = result.poison_partition
        on_poison_partition = 0
        for planned, (rows, row) in zip(self.plan, facts, strict=True):
            seen = self.seen[planned.instance_id]
            found = audit_instance(
                planned,
                rows,
                row,
                runs,
                executions[planned.instance_id],
                seen.first_finished,
                self.event_copies.get(planned.instance_id),
                no_fault=config.no_fault,
            )
            if seen.stale_pending:
                found.fail(
                    "status-current",
                    planned.instance_id,
                    f"Instances row still Pending {self.stale_pending_after:.0f} s after its "
                    "History was seen started",
                )
            for name, check in checks.items():
                if name in ("queues-drained", "poison-isolated"):
                    continue
                if name == "status-current" and not planned.events:
                    continue
                check.checked += found.checked.get(name, 1)
                check.violations += found.violations.get(name, [])
            result.duplicate_responses += found.duplicate_responses
            result.duplicate_events += found.duplicate_events
            result.activity_runs += found.activity_runs
            result.events_recorded += found.events_recorded
            result.events_applied += found.events_applied
            if planned.parent is None and seen.finished_at and seen.started_at:
                latency = (seen.finished_at - seen.started_at).total_seconds()
                result.latencies.setdefault(planned.kind, []).append(latency)
            if partition_index(planned.instance_id, PARTITIONS) == poison_partition:
                on_poison_partition += 1
                if row is not None and row.get("RuntimeStatus") == "Completed":
                    result.poison_partition_instances += 1

        queues = checks["queues-drained"]
        queues.checked = len(self.expected_queue_counts())
        if result.queue_counts_at_end != self.expected_queue_counts():
            queues.violations.append(
                f"after {result.drain_seconds:.0f} s: {result.queue_counts_at_end} "
                f"(expected {self.expected_queue_counts()})"
            )
        poison = checks.get("poison-isolated")
        if poison is not None and poison_partition is not None:
            poison.checked = on_poison_partition
            if result.poison_partition_instances < on_poison_partition:
                poison.violations.append(
                    f"{on_poison_partition - result.poison_partition_instances} of "
                    f"{on_poison_partition} instances on partition {poison_partition} did not "
                    "complete"
                )
        kinds = {p.instance_id: p.kind for p in self.plan}
        for check in checks.values():
            explain(check, kinds)
        result.invariants = list(checks.values())

        text = self.cluster.log_text()
        for label, pattern in LOG_SIGNALS.items():
            count = len(re.findall(pattern, text))
            if count:
                result.log_signals[label] = count
        result.poison_retries = result.log_signals["poison message set aside"]
        result.fenced_checkpoints = result.log_signals[
            "checkpoint fenced by the sentinel ETag (409/412)"
        ]


async def run_chaos(config: ChaosConfig, azurite: AzuriteInstance) -> ChaosResult:
    """Run the scenario against a running `azurite` (which it may stop and restart) and return the
    result: first the no-fault phase (its result is `result.no_fault`), then the fault phase.
    Worker logs and the activity log go to `config.work_dir` (a new temporary directory when None),
    the no-fault phase's to its `no-fault` subdirectory."""
    work_dir = config.work_dir or Path(tempfile.mkdtemp(prefix="chaos-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    config = replace(config, work_dir=work_dir)
    no_fault: ChaosResult | None = None
    if config.no_fault_instances > 0:
        calm = config.no_fault_config()
        assert calm.work_dir is not None
        calm.work_dir.mkdir(parents=True, exist_ok=True)
        log.info("no-fault phase: %d instances on hub %s", calm.instances, calm.hub)
        no_fault = await _Run(calm, azurite, calm.work_dir).run()
    log.info("fault phase: %d instances on hub %s", config.instances, config.hub)
    result = await _Run(config, azurite, work_dir).run()
    result.no_fault = no_fault
    return result


# -- command line ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = ChaosConfig(hub="Unused")
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.chaos",
        description="Run a mixed workload on worker processes under injected faults, check the "
        "invariants on the raw tables, and write a markdown report.",
    )
    add = parser.add_argument
    add("--workers", type=int, default=defaults.workers, help="worker processes")
    add("--instances", type=int, default=defaults.instances, help="top-level instances")
    add("--concurrency", type=int, default=defaults.concurrency, help="instances in flight at most")
    add("--kill-every", type=float, default=defaults.kill_every, help="seconds between SIGKILLs")
    add("--other-every", type=float, default=defaults.other_every, help="seconds between others")
    add("--faults", default=",".join(defaults.faults), help="the other faults, taken in turn")
    add("--fault-probability", type=float, default=defaults.fault_probability)
    add("--azurite-restarts", type=int, default=defaults.azurite_restarts)
    add("--seed", type=int, default=defaults.seed)
    add(
        "--no-fault-instances",
        type=int,
        default=defaults.no_fault_instances,
        help="top-level instances of the no-fault phase, run first (0: none)",
    )
    add(
        "--no-fault-visibility",
        type=float,
        default=defaults.no_fault_visibility_seconds,
        help="queue visibility timeout of the no-fault phase, seconds",
    )
    add(
        "--clock-offsets",
        default=",".join(f"{o:g}" for o in defaults.clock_offsets),
        help="seconds each worker's clock is off, taken in turn (0: no skew)",
    )
    add("--work-dir", type=Path, help="logs and Azurite data (default: a new temporary directory)")
    add("--report", type=Path, help="write the markdown report here (default: print it)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: run the long version on a private Azurite and write the report."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(arguments)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="chaos-"))
    config = ChaosConfig(
        workers=args.workers,
        instances=args.instances,
        concurrency=args.concurrency,
        kill_every=args.kill_every,
        other_every=args.other_every,
        faults=tuple(f for f in args.faults.split(",") if f),
        fault_probability=args.fault_probability,
        azurite_restarts=args.azurite_restarts,
        seed=args.seed,
        no_fault_instances=args.no_fault_instances,
        no_fault_visibility_seconds=args.no_fault_visibility,
        clock_offsets=tuple(float(o) for o in args.clock_offsets.split(",") if o.strip()),
        work_dir=work_dir,
    )
    print(f"chaos: hub {config.hub}, logs in {work_dir}", flush=True)
    azurite = AzuriteInstance(work_dir / "azurite")
    azurite.start()
    try:
        result = asyncio.run(run_chaos(config, azurite))
    finally:
        azurite.stop()
    shown = [a for a in arguments if a not in ("--work-dir", str(args.work_dir))]
    report = render_report(result, "python -m tests.reliability.chaos " + " ".join(shown))
    if args.report is not None:
        args.report.write_text(report, encoding="utf-8")
        print(f"chaos: report written to {args.report}")
    else:
        print(report)
    for phase, outcome in (("no-fault", result.no_fault), ("faults", result)):
        if outcome is None:
            continue
        for check in outcome.invariants:
            state = "held" if check.held else f"VIOLATED ({len(check.violations)})"
            bug = f" [known bug {check.known_bug}]" if check.known_bug else ""
            print(f"  {phase}: {check.name}: {state}{bug}")
        for error in outcome.errors:
            print(f"  {phase}: error: {error}")
    total = result.duration + (result.no_fault.duration if result.no_fault else 0.0)
    print(f"chaos: {'PASSED' if result.passed else 'FAILED'} in {total:.0f} s")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
