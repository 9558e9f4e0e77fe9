"""The chaos driver's hands: worker processes it starts, restarts, kills and freezes, and the raw
storage operations its faults use (duplicate and poison control-queue messages, broken and stolen
partition leases).

Everything here acts on real processes and a real storage emulator; nothing goes through
`durable_ext` except the worker processes themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.data.tables import UpdateMode
from azure.storage.blob.aio import BlobLeaseClient

from durable_ext.clock import OFFSET_ENV
from harness.azurite import REPO_ROOT, die_with_parent
from tests.faults.storage_view import HubView
from tests.faults.worker_processes import WorkerProcess
from tests.worker.fault_app import LOG_ENV

if TYPE_CHECKING:
    from tests.reliability.chaos import ChaosConfig

__all__ = [
    "PARTITIONS",
    "LEASE_SECONDS",
    "LEASE_RENEW_SECONDS",
    "FAULT_POINT_EXIT",
    "FAULT_POINT_NAMES",
    "POISON_BODY",
    "INTRUDER",
    "ChaosView",
    "ChaosCluster",
    "WorkerSlot",
]

log = logging.getLogger("chaos")

PARTITIONS = 4
LEASE_SECONDS = 15.0
"""The workers' lease interval (`fast_options`): a zombie is frozen for longer than this."""
LEASE_RENEW_SECONDS = 2.0
"""How often the workers renew their leases (`fast_options`): a worker finds out within this
long that a partition was taken from it."""
FAULT_POINT_EXIT = 137
FAULT_POINT_NAMES = (
    "after-outbound-send",
    "after-history-write",
    "before-inbound-delete",
    "after-activity-response",
)
POISON_BODY = "chaos poison: this control-queue message is not a DTFx envelope {"
INTRUDER = "chaos-intruder"


class ChaosView(HubView):
    """`HubView` plus the raw operations the faults need: peek and send control-queue messages,
    break and steal lease blobs, and list the Instances table."""

    async def __aenter__(self) -> ChaosView:
        return self

    def control_queue_client(self, index: int) -> Any:
        return self.queues.get_queue_client(self.control_queues[index])

    async def peek_control(self, index: int, count: int) -> list[tuple[str, str]]:
        """(message id, body) of up to `count` visible messages of control queue `index`; they
        stay where they are (a peek does not dequeue)."""
        messages = await self.control_queue_client(index).peek_messages(max_messages=count)
        return [(str(m.id), str(m.content)) for m in messages]

    async def send_control(self, index: int, body: str) -> None:
        await self.control_queue_client(index).send_message(body, time_to_live=-1)

    def _lease_blob(self, index: int) -> Any:
        container = self.blobs.get_container_client(f"{self.hub.lower()}-leases")
        return container.get_blob_client(f"default/{self.control_queues[index]}")

    @property
    def _partitions(self) -> Any:
        return self.tables.get_table_client(f"{self.hub}Partitions")

    async def uses_partition_table(self) -> bool:
        """True when the hub's partitions are owned through `{Hub}Partitions` (the default)."""
        return f"{self.hub}Partitions".lower() in {t.lower() for t in await self.table_names()}

    async def partition_rows(self) -> dict[int, dict[str, Any]]:
        """The `{Hub}Partitions` rows by partition index."""
        rows = {row["RowKey"]: row async for row in self._partitions.list_entities()}
        return {i: rows[q] for i, q in enumerate(self.control_queues) if q in rows}

    async def break_lease(self, index: int) -> bool:
        """Break the lease of partition `index` at once (a Partitions row: expire it, so that
        any worker may claim it); False when it was not owned."""
        if await self.uses_partition_table():
            row = (await self.partition_rows())[index]
            if not row.get("CurrentOwner"):
                return False
            row["ExpiresAt"] = datetime.now(UTC) - timedelta(seconds=1)
            await self._partitions.update_entity(
                row,
                mode=UpdateMode.REPLACE,
                etag=row.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
            return True
        blob = self._lease_blob(index)
        properties = await blob.get_blob_properties()
        if properties.lease.state != "leased":
            return False
        await BlobLeaseClient(blob).break_lease(lease_break_period=0)
        return True

    async def steal_lease(self, index: int, hold_seconds: float) -> str | None:
        """Take partition `index` as an intruder the way a worker steals one (change the lease away
        from the Token in the blob, write our name as Owner), hold it for `hold_seconds` without
        serving the queue, then release it. The previous owner, or None if it was not leased.
        A Partitions row is overwritten the same way (owner: the intruder, unexpired)."""
        if await self.uses_partition_table():
            return await self._steal_row(index, hold_seconds)
        blob = self._lease_blob(index)
        download = await blob.download_blob()
        content = json.loads(await download.readall())
        properties = download.properties
        if properties.lease.state != "leased" or not content.get("Token"):
            return None
        lease = BlobLeaseClient(blob, content["Token"])
        await lease.change(
            str(uuid.uuid4()), etag=properties.etag, match_condition=MatchConditions.IfNotModified
        )
        epoch = int(content.get("Epoch") or 0) + 1
        body = {**content, "Owner": INTRUDER, "Token": lease.id, "Epoch": epoch}
        await blob.upload_blob(json.dumps(body), overwrite=True, lease=lease)
        try:
            # The intruder really holds the partition this long: there is nothing to wait for.
            await asyncio.sleep(hold_seconds)
        finally:
            with contextlib.suppress(Exception):  # a worker may have stolen it back meanwhile
                released = {**body, "Owner": "", "Token": ""}
                await blob.upload_blob(json.dumps(released), overwrite=True, lease=lease)
                await lease.release()
        return str(content.get("Owner") or "")

    async def _steal_row(self, index: int, hold_seconds: float) -> str | None:
        row = (await self.partition_rows())[index]
        owner = row.get("CurrentOwner")
        if not owner:
            return None
        now = datetime.now(UTC)
        row.update(CurrentOwner=INTRUDER, ExpiresAt=now + timedelta(seconds=hold_seconds + 30))
        row.update(OwnedSince=now, LastRenewal=now, IsDraining=False)
        row.pop("NextOwner", None)
        await self._partitions.update_entity(
            row,
            mode=UpdateMode.REPLACE,
            etag=row.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
        try:
            # The intruder really holds the partition this long: there is nothing to wait for.
            await asyncio.sleep(hold_seconds)
        finally:
            with contextlib.suppress(Exception):  # released: any worker claims it
                held = (await self.partition_rows())[index]
                if held.get("CurrentOwner") == INTRUDER:
                    held.pop("CurrentOwner", None)
                    held.pop("NextOwner", None)
                    await self._partitions.update_entity(
                        held,
                        mode=UpdateMode.REPLACE,
                        etag=held.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
        return str(owner)

    async def instance_rows(self) -> list[dict[str, Any]]:
        """Every Instances row (status columns only)."""
        table = self.tables.get_table_client(f"{self.hub}Instances")
        select = ["PartitionKey", "RuntimeStatus", "ExecutionId", "CreatedTime", "CompletedTime"]
        return [dict(row) async for row in table.list_entities(select=select)]


@dataclass(slots=True)
class WorkerSlot:
    """One of the places a worker process runs in; a restarted process takes its slot's place."""

    index: int
    worker_id: str
    generation: int = 0
    process: WorkerProcess | None = None
    frozen: bool = False
    exits: list[int] = field(default_factory=list)


class ChaosCluster:
    """Starts, restarts, kills and freezes the worker processes of one hub; counts what happened
    to them in `counts`."""

    def __init__(
        self,
        config: ChaosConfig,
        connection_string: str,
        directory: Path,
        activity_log: Path,
        rng: random.Random,
        counts: Counter[str],
    ) -> None:
        self.config = config
        self.connection_string = connection_string
        self.directory = directory
        self.activity_log = activity_log
        self.rng = rng
        self.counts = counts
        self.slots = [WorkerSlot(i, f"w{i + 1}") for i in range(config.workers)]
        self.supervising = True

    def spawn(self, slot: WorkerSlot) -> None:
        """Start the slot's worker process (returns at once; the worker starts on its own). It may
        crash at the fault points until the run's limit of such crashes is reached."""
        config = self.config
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env[LOG_ENV] = str(self.activity_log)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("DURABLE_EXT_FAULT_POINTS", None)
        if (
            config.fault_probability > 0
            and self.counts["fault-point crash"] < config.fault_point_crash_limit
        ):
            env["DURABLE_EXT_FAULT_POINTS"] = config.fault_points_spec
        offset = self.clock_offset(slot)
        env[OFFSET_ENV] = f"{offset:g}"
        if offset:
            self.counts["clock skew/jumps: worker started with a skewed clock"] += 1
        if slot.generation and offset != self.clock_offset(slot, slot.generation - 1):
            self.counts["clock skew/jumps: worker restarted with its clock moved"] += 1
        log_path = self.directory / f"worker-{slot.index + 1}.log"
        command = [
            sys.executable,
            "-m",
            "tests.reliability.chaos_worker",
            "--connection",
            self.connection_string,
            "--hub",
            config.hub,
            "--worker-id",
            slot.worker_id,
            "--visibility-seconds",
            str(config.visibility_seconds),
            "--max-activities",
            str(config.max_activities),
            "--log-level",
            "INFO",
            "--seed",
            f"{config.seed}-{slot.index}-{slot.generation}",
        ]
        if config.max_orchestrations:
            command += ["--max-orchestrations", str(config.max_orchestrations)]
        if config.slow_episode_share:
            command += ["--slow-episodes", f"{config.slow_episode_share:g}"]
            command += ["--slow-episode-seconds", f"{config.slow_episode_seconds:g}"]
        with log_path.open("ab") as stderr:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                preexec_fn=die_with_parent(),
            )
        slot.process = WorkerProcess(slot.worker_id, process, log_path)

    def clock_offset(self, slot: WorkerSlot, generation: int | None = None) -> float:
        """The clock offset of the slot's worker (of its current generation by default)."""
        offsets = self.config.clock_offsets or (0.0,)
        generation = slot.generation if generation is None else generation
        return offsets[(slot.index + generation) % len(offsets)]

    def start_all(self) -> None:
        for slot in self.slots:
            self.spawn(slot)

    def live(self) -> list[WorkerSlot]:
        """Slots whose process runs and is not frozen."""
        return [s for s in self.slots if s.process and s.process.running and not s.frozen]

    async def supervise(self) -> None:
        """Restart every worker process that exits, until `supervising` is turned off. A restart
        comes back under a new worker id with `new_identity_probability`, else under the old one."""
        while True:
            if self.supervising:
                for slot in self.slots:
                    if slot.process is None or slot.process.running or slot.frozen:
                        continue
                    self._record_exit(slot, slot.process.process.returncode)
                    slot.generation += 1
                    if self.rng.random() < self.config.new_identity_probability:
                        slot.worker_id = f"w{slot.index + 1}g{slot.generation}"
                        self.counts["restart under a new worker id"] += 1
                    else:
                        self.counts["restart under the same worker id"] += 1
                    self.spawn(slot)
            await asyncio.sleep(0.2)

    def _record_exit(self, slot: WorkerSlot, code: int) -> None:
        slot.exits.append(code)
        if code == FAULT_POINT_EXIT:
            self.counts["fault-point crash"] += 1
        elif code != -signal.SIGKILL:  # SIGKILLs are counted by whoever sent them
            self.counts["other worker exit"] += 1
            log.warning("worker %s exited with %s", slot.worker_id, code)

    def kill_random(self) -> str | None:
        """SIGKILL a random live worker; its id (None if none is live)."""
        live = self.live()
        if not live:
            return None
        slot = self.rng.choice(live)
        assert slot.process is not None
        slot.process.send(signal.SIGKILL)
        return slot.worker_id

    async def freeze(self, seconds: float) -> str | None:
        """SIGSTOP a random live worker for `seconds`, then SIGCONT it; its id (None if none)."""
        live = self.live()
        if not live:
            return None
        slot = self.rng.choice(live)
        process = slot.process
        assert process is not None
        slot.frozen = True
        process.send(signal.SIGSTOP)
        try:
            # The zombie stays frozen this long for real: there is nothing to wait for.
            await asyncio.sleep(seconds)
        finally:
            process.send(signal.SIGCONT)
            slot.frozen = False
        return slot.worker_id

    async def stop(self, timeout: float = 30.0) -> dict[str, int]:
        """Stop supervising, SIGTERM every worker (SIGKILL after `timeout`); exit codes by id."""
        self.supervising = False
        for slot in self.slots:
            if slot.process is not None and slot.frozen:
                slot.process.send(signal.SIGCONT)
                slot.frozen = False
            if slot.process is not None and slot.process.running:
                slot.process.send(signal.SIGTERM)
        codes: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        for slot in self.slots:
            if slot.process is None:
                continue
            try:
                code = await asyncio.to_thread(
                    slot.process.wait, max(deadline - time.monotonic(), 0.1)
                )
            except subprocess.TimeoutExpired:
                slot.process.send(signal.SIGKILL)
                code = await asyncio.to_thread(slot.process.wait, 10)
            codes[slot.worker_id] = code
        return codes

    def log_text(self) -> str:
        """Every worker log of the run, concatenated."""
        parts = []
        for path in sorted(self.directory.glob("worker-*.log")):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)
