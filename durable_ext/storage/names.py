"""Task-hub resource names and instance partitioning, exactly as DTFx lays them out."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "InvalidTaskHubNameError",
    "TaskHubNames",
    "validate_hub_name",
    "fnv1a32",
    "partition_index",
    "MIN_PARTITIONS",
    "MAX_PARTITIONS",
]

MIN_PARTITIONS = 1
MAX_PARTITIONS = 16
_HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,44}$")


class InvalidTaskHubNameError(ValueError):
    """A task hub name storage would reject."""


def validate_hub_name(name: str) -> str:
    """The name, if it is 3–45 alphanumeric characters starting with a letter."""
    if not isinstance(name, str) or not _HUB_NAME.match(name):
        raise InvalidTaskHubNameError(
            f"Invalid task hub name {name!r}: use 3 to 45 letters and digits, starting with a "
            "letter (it names tables, queues and blob containers)."
        )
    return name


def fnv1a32(data: bytes) -> int:
    """32-bit FNV-1a hash (DTFx `Fnv1aHashHelper`)."""
    value = 2166136261
    for byte in data:
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


def partition_index(instance_id: str, partition_count: int) -> int:
    """The control queue of an instance: FNV-1a of its UTF-8 id modulo the partition count."""
    return fnv1a32(instance_id.encode("utf-8")) % partition_count


@dataclass(frozen=True, slots=True)
class TaskHubNames:
    """Names of every resource of hub `hub` (queues and containers lower-case, tables as given)."""

    hub: str

    def __post_init__(self) -> None:
        validate_hub_name(self.hub)

    @property
    def lower(self) -> str:
        return self.hub.lower()

    def control_queue(self, index: int) -> str:
        return f"{self.lower}-control-{index:02d}"

    def control_queues(self, partition_count: int) -> list[str]:
        return [self.control_queue(i) for i in range(partition_count)]

    @property
    def work_item_queue(self) -> str:
        return f"{self.lower}-workitems"

    @property
    def wake_queue(self) -> str:
        """durable_ext's own queue (no DTFx counterpart): wake-up and scale-out requests that a
        native queue trigger of the function app consumes (`host.wake_up`)."""
        return f"{self.lower}-wakeup"

    @property
    def history_table(self) -> str:
        return f"{self.hub}History"

    @property
    def instances_table(self) -> str:
        return f"{self.hub}Instances"

    @property
    def partitions_table(self) -> str:
        """The table partition manager's rows (one per control queue)."""
        return f"{self.hub}Partitions"

    @property
    def leases_container(self) -> str:
        return f"{self.lower}-leases"

    @property
    def app_lease_container(self) -> str:
        """Its container-level lease is the app lease."""
        return f"{self.lower}-applease"

    @property
    def app_lease_info_blob(self) -> str:
        return f"{self.lower}-appleaseinfo"

    @property
    def large_messages_container(self) -> str:
        return f"{self.lower}-largemessages"
