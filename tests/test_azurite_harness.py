"""The Azurite harness works with the real Azure SDK, and can take storage away and back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError, ServiceRequestError
from azure.data.tables.aio import TableServiceClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient

from tests.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteInstance, answers_http


async def put_queue_message(connection_string: str, queue_name: str, content: str) -> None:
    async with QueueClient.from_connection_string(connection_string, queue_name) as queue:
        await queue.create_queue()
        await queue.send_message(content)


async def peek_queue_messages(connection_string: str, queue_name: str) -> list[str]:
    async with QueueClient.from_connection_string(connection_string, queue_name) as queue:
        return [message.content for message in await queue.peek_messages(max_messages=32)]


async def put_entity(connection_string: str, table_name: str, entity: dict[str, object]) -> None:
    async with TableServiceClient.from_connection_string(connection_string) as service:
        await service.create_table(table_name)
        await service.get_table_client(table_name).create_entity(entity)


async def get_entity(
    connection_string: str, table_name: str, pk: str, rk: str
) -> dict[str, object]:
    async with TableServiceClient.from_connection_string(connection_string) as service:
        return dict(await service.get_table_client(table_name).get_entity(pk, rk))


async def put_blob(connection_string: str, container: str, name: str, data: bytes) -> None:
    async with BlobServiceClient.from_connection_string(connection_string) as service:
        await service.create_container(container)
        await service.get_container_client(container).upload_blob(name, data)


async def get_blob(connection_string: str, container: str, name: str) -> bytes:
    async with BlobServiceClient.from_connection_string(connection_string) as service:
        downloader = await service.get_container_client(container).download_blob(name)
        return await downloader.readall()


def test_connection_string_uses_explicit_endpoints(azurite: AzuriteInstance) -> None:
    assert azurite.connection_string == (
        "DefaultEndpointsProtocol=http;"
        f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{azurite.blob_port}/devstoreaccount1;"
        f"QueueEndpoint=http://127.0.0.1:{azurite.queue_port}/devstoreaccount1;"
        f"TableEndpoint=http://127.0.0.1:{azurite.table_port}/devstoreaccount1;"
    )
    assert len(set(azurite.ports)) == 3


def test_hub_name_is_a_valid_task_hub_name(hub_name: str) -> None:
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,44}", hub_name)
    assert hub_name.startswith("Thubnameisavalidtaskhubname")


@pytest.mark.parametrize("suffix", ["x" * 80])
def test_hub_name_is_truncated_to_45_characters(hub_name: str, suffix: str) -> None:
    assert len(hub_name) == 45
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]+", hub_name)


async def test_queue_send_and_receive(azurite: AzuriteInstance, hub_name: str) -> None:
    queue_name = hub_name.lower()
    async with QueueClient.from_connection_string(azurite.connection_string, queue_name) as queue:
        await queue.create_queue()
        await queue.send_message("hello from durable_ext")
        received = [message async for message in queue.receive_messages(visibility_timeout=30)]
        assert [message.content for message in received] == ["hello from durable_ext"]
        await queue.delete_message(received[0])
        assert await queue.peek_messages() == []


async def test_table_insert_and_read(azurite: AzuriteInstance, hub_name: str) -> None:
    entity = {"PartitionKey": "instance-1", "RowKey": "0000000000000000", "Name": "hello", "N": 7}
    await put_entity(azurite.connection_string, hub_name, entity)
    stored = await get_entity(azurite.connection_string, hub_name, "instance-1", "0000000000000000")
    assert stored["Name"] == "hello"
    assert stored["N"] == 7


async def test_blob_upload_and_download(azurite: AzuriteInstance, hub_name: str) -> None:
    payload = bytes(range(256)) * 64
    await put_blob(azurite.connection_string, hub_name.lower(), "payload.bin", payload)
    assert await get_blob(azurite.connection_string, hub_name.lower(), "payload.bin") == payload


async def test_stop_and_start_keep_ports_and_data(
    private_azurite: AzuriteInstance, hub_name: str
) -> None:
    azurite = private_azurite
    connection_string = azurite.connection_string
    name = hub_name.lower()
    await put_queue_message(connection_string, name, "survives a restart")
    await put_entity(connection_string, hub_name, {"PartitionKey": "p", "RowKey": "r", "V": 1})
    await put_blob(connection_string, name, "b", b"blob survives a restart")

    ports = azurite.ports
    azurite.stop()

    assert not azurite.running
    assert not any(answers_http("127.0.0.1", port) for port in ports)
    async with QueueClient.from_connection_string(connection_string, name, retry_total=0) as q:
        with pytest.raises(ServiceRequestError):
            await q.peek_messages()

    azurite.start()

    assert azurite.ports == ports
    assert azurite.connection_string == connection_string
    assert await peek_queue_messages(connection_string, name) == ["survives a restart"]
    assert (await get_entity(connection_string, hub_name, "p", "r"))["V"] == 1
    assert await get_blob(connection_string, name, "b") == b"blob survives a restart"


async def test_kill_and_start_bring_storage_back(
    private_azurite: AzuriteInstance, hub_name: str
) -> None:
    azurite = private_azurite
    ports = azurite.ports
    azurite.kill()
    assert not azurite.running
    assert not any(answers_http("127.0.0.1", port) for port in ports)

    azurite.start()

    assert azurite.ports == ports
    await put_queue_message(azurite.connection_string, hub_name.lower(), "after a crash")
    assert await peek_queue_messages(azurite.connection_string, hub_name.lower()) == [
        "after a crash"
    ]


async def test_in_memory_instance_starts_empty_after_restart(tmp_path: Path, hub_name: str) -> None:
    with AzuriteInstance(tmp_path / "azurite", in_memory=True) as azurite:
        await put_queue_message(azurite.connection_string, hub_name.lower(), "lost on restart")
        azurite.restart()
        async with QueueClient.from_connection_string(
            azurite.connection_string, hub_name.lower()
        ) as queue:
            with pytest.raises(ResourceNotFoundError):
                await queue.peek_messages()
