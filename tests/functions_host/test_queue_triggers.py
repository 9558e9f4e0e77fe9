"""Queue-trigger functions run as the host's queue listener runs them: base64 bodies handed over
as `func.QueueMessage`, a success deletes the message, a failure retries it and a message that
keeps failing (or is not base64) ends in the poison queue."""

from __future__ import annotations

import base64
import json
import secrets
import shutil
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError
from azure.functions.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from tests.azurite import AzuriteInstance
from tests.functions_host import FakeHost
from tests.functions_host.conftest import APPS
from tests.wait import wait_for


def queue_app(tmp_path: Path) -> Path:
    """The queue-trigger app with quick polling and an extension bundle."""
    root = tmp_path / "app"
    shutil.copytree(APPS / "queue_trigger", root)
    host_json = {
        "version": "2.0",
        "extensionBundle": {
            "id": "Microsoft.Azure.Functions.ExtensionBundle",
            "version": "[4.*, 5.0.0)",
        },
        "extensions": {"queues": {"maxPollingInterval": "00:00:00.2", "maxDequeueCount": 2}},
    }
    (root / "host.json").write_text(json.dumps(host_json))
    return root


async def test_messages_are_decoded_handed_over_deleted_retried_and_poisoned(
    azurite: AzuriteInstance, tmp_path: Path
) -> None:
    name = "work" + secrets.token_hex(4)
    settings = {"AzureWebJobsStorage": azurite.connection_string, "WORK_QUEUE": name}
    conn = azurite.connection_string
    async with (
        QueueClient.from_connection_string(conn, name) as queue,
        QueueClient.from_connection_string(conn, f"{name}-poison") as poison,
    ):
        await queue.create_queue()
        await queue.send_message(base64.b64encode(b"hello").decode())
        await queue.send_message(base64.b64encode(b"fail").decode())
        await queue.send_message("not base64 at all!")
        async with FakeHost(queue_app(tmp_path), app_settings=settings) as host:

            async def poisoned() -> list[str] | None:
                try:
                    found = [m.content for m in await poison.peek_messages(max_messages=10)]
                except ResourceNotFoundError:  # the listener creates it for the first one
                    return None
                return sorted(found) if len(found) == 2 else None

            contents = await wait_for(poisoned, timeout=30)
            invocations = host.invocations.of("work")

        assert contents == sorted([base64.b64encode(b"fail").decode(), "not base64 at all!"])
        hello = [i for i in invocations if i.trigger_value.get_body() == b"hello"]
        assert len(hello) == 1 and hello[0].succeeded
        message = hello[0].trigger_value
        assert isinstance(message, QueueMessage) and message.dequeue_count == 1 and message.id
        failing = [i for i in invocations if i.trigger_value.get_body() == b"fail"]
        assert [i.trigger_value.dequeue_count for i in failing] == [1, 2]  # maxDequeueCount 2
        assert all(i.error is not None for i in failing)
        assert len(invocations) == 3  # the non-base64 message never reached the function
        assert await queue.peek_messages() == []
