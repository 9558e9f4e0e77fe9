"""The held-message registry on its own: its renewal schedule stays bounded by what it holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from durable_ext.orchestration.history import EventRaised, OrchestrationInstance
from durable_ext.storage.messages import MessageData
from durable_ext.storage.queues import ReceivedMessage
from durable_ext.worker.held_messages import HeldMessages
from durable_ext.worker.storage_limiter import StorageLimiter


class _Queue:
    """Stands in for a TaskHubQueue: every delete succeeds (no storage is involved here)."""

    name = "stand-in"

    async def delete(self, message: ReceivedMessage) -> bool:
        return True


def _message(number: int) -> ReceivedMessage:
    event = EventRaised(timestamp=datetime.now(UTC), name="e")
    return ReceivedMessage(
        data=MessageData(event, OrchestrationInstance("i")),
        message_id=f"m{number}",
        pop_receipt="r",
        dequeue_count=1,
        inserted_on=datetime.now(UTC),
        queue=_Queue(),  # type: ignore[arg-type]
    )


async def test_settled_messages_leave_the_renewal_schedule() -> None:
    held = HeldMessages(StorageLimiter(4))
    for number in range(20_000):
        message = _message(number)
        assert held.hold(message, timedelta(minutes=5))
        await held.delete(message)
    assert len(held) == 0
    assert len(held._due) <= 1024 + 1, f"{len(held._due)} stale renewal entries kept"
