"""Storage connections: connection strings, identity-based settings, secrets, real clients."""

from __future__ import annotations

import base64
import json

import pytest
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.exceptions import DecodeError
from azure.data.tables.aio import TableServiceClient
from azure.identity.aio import (
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue import BinaryBase64DecodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from durable_ext.settings import SettingsError
from durable_ext.storage.connection import StorageConnection, development_storage_ports
from tests.azurite import AzuriteInstance

# 64 bytes, like a real account key: 88 base64 characters ending in "==".
SECRET_KEY = base64.b64encode(b"a-very-secret-account-key-".ljust(64, b"k")).decode()
SECRET_SAS = (
    "sv=2024-05-04&ss=bqt&srt=sco&sp=rwdlacu&se=2099-01-01T00:00:00Z&sig=SeCrEtSiGnAtUrE%3D"
)
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def from_string(connection_string: str, name: str = "MyConn") -> StorageConnection:
    return StorageConnection.from_app_settings(name, {name: connection_string})


def assert_no_secrets(text: str) -> None:
    for secret in (SECRET_KEY, SECRET_SAS, "SeCrEtSiGnAtUrE", SECRET_KEY[:20]):
        assert secret not in text


# -- connection strings ----------------------------------------------------------------------


def test_development_storage() -> None:
    connection = from_string("UseDevelopmentStorage=true")
    assert connection.account_name == "devstoreaccount1"
    assert connection.blob_endpoint == "http://127.0.0.1:10000/devstoreaccount1"
    assert connection.queue_endpoint == "http://127.0.0.1:10001/devstoreaccount1"
    assert connection.table_endpoint == "http://127.0.0.1:10002/devstoreaccount1"
    assert connection.is_development_storage
    assert development_storage_ports(connection) == (10000, 10001, 10002)
    credential = connection.credential
    assert isinstance(credential, AzureNamedKeyCredential)
    assert credential.named_key == ("devstoreaccount1", DEV_KEY)


def test_development_storage_proxy() -> None:
    connection = from_string(
        "usedevelopmentstorage=True;DevelopmentStorageProxyUri=http://azurite.local"
    )
    assert connection.blob_endpoint == "http://azurite.local:10000/devstoreaccount1"
    assert connection.table_endpoint == "http://azurite.local:10002/devstoreaccount1"
    assert connection.is_development_storage
    ipv6 = from_string("UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://[::1]")
    assert ipv6.queue_endpoint == "http://[::1]:10001/devstoreaccount1"
    assert development_storage_ports(ipv6) == (10000, 10001, 10002)


def test_account_key_with_default_endpoints() -> None:
    connection = from_string(
        f"DefaultEndpointsProtocol=https;AccountName=myacct;AccountKey={SECRET_KEY};"
        "EndpointSuffix=core.windows.net"
    )
    assert connection.account_name == "myacct"
    assert connection.blob_endpoint == "https://myacct.blob.core.windows.net"
    assert connection.queue_endpoint == "https://myacct.queue.core.windows.net"
    assert connection.table_endpoint == "https://myacct.table.core.windows.net"
    assert not connection.is_development_storage
    assert development_storage_ports(connection) is None
    credential = connection.credential
    assert isinstance(credential, AzureNamedKeyCredential)
    assert credential.named_key == ("myacct", SECRET_KEY)


def test_protocol_and_suffix_defaults_and_overrides() -> None:
    assert from_string(f"AccountName=a1;AccountKey={SECRET_KEY}").queue_endpoint == (
        "https://a1.queue.core.windows.net"
    )
    connection = from_string(
        f"defaultendpointsprotocol=HTTP;accountname=a2;ACCOUNTKEY={SECRET_KEY};"
        "endpointSuffix=core.chinacloudapi.cn;"
    )
    assert connection.table_endpoint == "http://a2.table.core.chinacloudapi.cn"


def test_explicit_endpoints_override_derived_ones() -> None:
    connection = from_string(
        f"AccountName=acct;AccountKey={SECRET_KEY};BlobEndpoint=https://cdn.example.com/"
    )
    assert connection.blob_endpoint == "https://cdn.example.com"
    assert connection.queue_endpoint == "https://acct.queue.core.windows.net"


def test_emulator_style_connection_string(azurite: AzuriteInstance) -> None:
    connection = from_string(azurite.connection_string)
    assert connection.account_name == "devstoreaccount1"
    assert connection.blob_endpoint == azurite.blob_endpoint
    assert connection.queue_endpoint == azurite.queue_endpoint
    assert connection.table_endpoint == azurite.table_endpoint
    assert connection.is_development_storage
    assert development_storage_ports(connection) == azurite.ports


def test_a_local_https_emulator_is_not_one_the_local_host_starts() -> None:
    connection = StorageConnection.from_app_settings(
        "Storage",
        {
            f"AzureWebJobsStorage__{service}ServiceUri": f"https://127.0.0.1:{port}/devstoreaccount1"
            for service, port in (("blob", 10000), ("queue", 10001), ("table", 10002))
        },
    )
    assert connection.is_development_storage
    assert development_storage_ports(connection) is None


def test_shared_access_signature() -> None:
    connection = from_string(
        "BlobEndpoint=https://sasacct.blob.core.windows.net/;"
        "QueueEndpoint=https://sasacct.queue.core.windows.net/;"
        "TableEndpoint=https://sasacct.table.core.windows.net/;"
        f"SharedAccessSignature=?{SECRET_SAS}"
    )
    assert connection.account_name == "sasacct"
    assert connection.queue_endpoint == "https://sasacct.queue.core.windows.net"
    credential = connection.credential
    assert isinstance(credential, AzureSasCredential)
    assert credential.signature == SECRET_SAS  # values may contain "="; the "?" is dropped
    assert connection.credential_kind == "shared access signature"


def test_shared_access_signature_with_account_name() -> None:
    connection = from_string(f"AccountName=sasacct;SharedAccessSignature={SECRET_SAS}")
    assert connection.table_endpoint == "https://sasacct.table.core.windows.net"
    assert isinstance(connection.credential, AzureSasCredential)


def test_unused_service_keys_are_accepted() -> None:
    connection = from_string(
        f"AccountName=acct;AccountKey={SECRET_KEY};FileEndpoint=https://acct.file.core.windows.net"
    )
    assert connection.account_name == "acct"


@pytest.mark.parametrize(
    ("connection_string", "message"),
    [
        ("", "is not configured"),
        (";;", "is empty"),
        (SECRET_KEY, "has an unknown key at part 1"),
        (SECRET_KEY.rstrip("="), "part 1 is not Key=Value"),
        (f"{SECRET_SAS}", "unknown key 'sv'"),
        ("not a connection string", "part 1 is not Key=Value"),
        (f"AccountName=acct;{SECRET_KEY[:30]}", "part 2 is not Key=Value"),
        (f"AccountKey={SECRET_KEY}", "has an AccountKey but no AccountName"),
        ("AccountName=acct;AccountKey=SeCrEtSiGnAtUrE!!", "AccountKey that is not valid base64"),
        (f"AccountName=acct;AcountKey={SECRET_KEY}", "unknown key 'AcountKey'"),
        (f"AccountName=acct;AccountKey={SECRET_KEY};accountkey={SECRET_KEY}", "repeats accountkey"),
        (
            "DefaultEndpointsProtocol=https;AccountName=acct",
            "no AccountKey or SharedAccessSignature",
        ),
        (
            f"AccountName=acct;AccountKey={SECRET_KEY};SharedAccessSignature={SECRET_SAS}",
            "has both AccountKey and SharedAccessSignature",
        ),
        (
            f"DefaultEndpointsProtocol=ftp;AccountName=acct;AccountKey={SECRET_KEY}",
            "DefaultEndpointsProtocol 'ftp'; use https or http",
        ),
        (
            f"BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature={SECRET_SAS}",
            "needs AccountName, or QueueEndpoint and TableEndpoint as well",
        ),
        (
            f"BlobEndpoint=https://a.blob.core.windows.net?{SECRET_SAS};"
            f"QueueEndpoint=https://a.queue.core.windows.net;"
            f"TableEndpoint=https://a.table.core.windows.net;SharedAccessSignature={SECRET_SAS}",
            "MyConn: BlobEndpoint must be an http(s) URL without a query string",
        ),
        (
            f"AccountName=acct;AccountKey={SECRET_KEY};QueueEndpoint=queue.example.com",
            "QueueEndpoint must be an http(s) URL",
        ),
        (
            f"AccountName=acct;AccountKey={SECRET_KEY};TableEndpoint=http://127.0.0.1:port/acct",
            "TableEndpoint must be an http(s) URL",
        ),
        ("UseDevelopmentStorage=false", "UseDevelopmentStorage must be 'true'"),
        (
            f"UseDevelopmentStorage=true;AccountKey={SECRET_KEY}",
            "may only be combined with DevelopmentStorageProxyUri",
        ),
    ],
)
def test_invalid_connection_strings_never_show_secrets(
    connection_string: str, message: str
) -> None:
    settings = {"MyConn": connection_string}
    with pytest.raises(SettingsError) as error:
        StorageConnection.from_app_settings("MyConn", settings)
    text = str(error.value)
    assert message in text
    assert "MyConn" in text
    assert_no_secrets(text)
    if connection_string.strip(";"):
        assert connection_string not in text


def test_from_connection_string_names_its_setting() -> None:
    with pytest.raises(SettingsError, match="Storage connection string Other has an AccountKey"):
        StorageConnection.from_connection_string(f"AccountKey={SECRET_KEY}", name="Other")


@pytest.mark.parametrize(
    "connection_string",
    [
        f"AccountName=myacct;AccountKey={SECRET_KEY}",
        f"AccountName=myacct;SharedAccessSignature={SECRET_SAS}",
    ],
)
def test_repr_and_describe_never_show_secrets(connection_string: str) -> None:
    connection = from_string(connection_string)
    for text in (repr(connection), connection.describe(), str(connection)):
        assert_no_secrets(text)
        assert "myacct" in text
        assert "https://myacct.queue.core.windows.net" in text
    assert repr(connection).startswith("StorageConnection(name='MyConn', account_name='myacct'")


def test_describe() -> None:
    connection = from_string("UseDevelopmentStorage=true", name="AzureWebJobsStorage")
    assert connection.describe() == (
        "storage account devstoreaccount1 (development storage) from AzureWebJobsStorage: "
        "blob http://127.0.0.1:10000/devstoreaccount1, "
        "queue http://127.0.0.1:10001/devstoreaccount1, "
        "table http://127.0.0.1:10002/devstoreaccount1; account key"
    )
    assert DEV_KEY not in connection.describe() + repr(connection)


# -- app settings resolution -----------------------------------------------------------------


def test_not_configured() -> None:
    with pytest.raises(SettingsError) as error:
        StorageConnection.from_app_settings("AzureWebJobsStorage", {"Other": "x"})
    assert str(error.value) == (
        "Storage connection 'AzureWebJobsStorage' is not configured: set AzureWebJobsStorage to "
        "a connection string, or AzureWebJobsStorage__accountName for an identity-based connection"
    )


def test_setting_names_are_case_insensitive() -> None:
    connection = StorageConnection.from_app_settings(
        "AzureWebJobsStorage", {"azurewebjobsstorage": "UseDevelopmentStorage=true"}
    )
    assert connection.account_name == "devstoreaccount1"


def test_azure_webjobs_prefix_is_tried_first() -> None:
    settings = {
        "AzureWebJobsMyStorage": f"AccountName=prefixed;AccountKey={SECRET_KEY}",
        "MyStorage": f"AccountName=plain;AccountKey={SECRET_KEY}",
    }
    assert StorageConnection.from_app_settings("MyStorage", settings).account_name == "prefixed"
    del settings["AzureWebJobsMyStorage"]
    assert StorageConnection.from_app_settings("MyStorage", settings).account_name == "plain"


def test_empty_connection_string_falls_back_to_identity_settings() -> None:
    connection = StorageConnection.from_app_settings(
        "AzureWebJobsStorage",
        {"AzureWebJobsStorage": "", "AzureWebJobsStorage__accountName": "idacct"},
    )
    assert connection.account_name == "idacct"


# -- identity-based connections (no network) -------------------------------------------------


async def test_identity_account_name_uses_default_azure_credential() -> None:
    connection = StorageConnection.from_app_settings(
        "AzureWebJobsStorage", {"AzureWebJobsStorage__accountName": "idacct"}
    )
    assert connection.account_name == "idacct"
    assert connection.blob_endpoint == "https://idacct.blob.core.windows.net"
    assert connection.queue_endpoint == "https://idacct.queue.core.windows.net"
    assert connection.table_endpoint == "https://idacct.table.core.windows.net"
    assert not connection.is_development_storage
    assert connection.credential_kind == "DefaultAzureCredential"
    credential = connection.credential
    assert isinstance(credential, DefaultAzureCredential)
    assert connection.credential is credential  # created once, on first use
    await connection.close()


async def test_identity_managed_identity_with_client_id() -> None:
    connection = StorageConnection.from_app_settings(
        "Storage",
        {
            "Storage:accountName": "idacct",
            "Storage:credential": "managedidentity",
            "Storage:clientId": "00000000-0000-0000-0000-000000000001",
        },
    )
    assert connection.credential_kind == (
        "managed identity (client id 00000000-0000-0000-0000-000000000001)"
    )
    assert isinstance(connection.credential, ManagedIdentityCredential)
    assert "00000000-0000-0000-0000-000000000001" in connection.describe()
    await connection.close()


async def test_identity_service_uris() -> None:
    connection = StorageConnection.from_app_settings(
        "Conn",
        {
            "Conn__blobServiceUri": "https://uriacct.blob.core.windows.net/",
            "Conn__queueServiceUri": "https://uriacct.queue.core.windows.net",
            "CONN__TABLESERVICEURI": "https://uriacct.table.core.windows.net",
            "Conn__credential": "ManagedIdentity",
        },
    )
    assert connection.account_name == "uriacct"
    assert connection.blob_endpoint == "https://uriacct.blob.core.windows.net"
    assert connection.table_endpoint == "https://uriacct.table.core.windows.net"
    assert isinstance(connection.credential, ManagedIdentityCredential)
    await connection.close()


async def test_identity_clients_are_built_without_network() -> None:
    connection = StorageConnection.from_app_settings(
        "Conn", {"Conn__accountName": "idacct", "Conn__clientId": "abc"}
    )
    assert isinstance(connection.credential, DefaultAzureCredential)
    assert connection.credential_kind == "DefaultAzureCredential (client id abc)"
    async with connection.queue_service() as queues:
        assert isinstance(queues, QueueServiceClient)
        assert queues.url.startswith("https://idacct.queue.core.windows.net")
    async with connection.table_service() as tables:
        assert isinstance(tables, TableServiceClient)
        assert tables.url.startswith("https://idacct.table.core.windows.net")
    async with connection.blob_service() as blobs:
        assert isinstance(blobs, BlobServiceClient)
        assert blobs.url.startswith("https://idacct.blob.core.windows.net")
    await connection.close()


def test_identity_service_uris_must_all_be_given() -> None:
    with pytest.raises(SettingsError) as error:
        StorageConnection.from_app_settings(
            "Conn", {"Conn__blobServiceUri": "https://a.blob.core.windows.net"}
        )
    assert str(error.value) == (
        "Storage connection 'Conn' is missing Conn__queueServiceUri and Conn__tableServiceUri: "
        "set Conn__accountName, or all of Conn__blobServiceUri, Conn__queueServiceUri and "
        "Conn__tableServiceUri"
    )


def test_identity_unsupported_credential() -> None:
    with pytest.raises(SettingsError) as error:
        StorageConnection.from_app_settings(
            "Conn", {"Conn__accountName": "a", "Conn__credential": "clientsecret"}
        )
    assert str(error.value) == (
        "Conn__credential must be 'managedidentity', or unset (then Conn__tenantId, "
        "Conn__clientId and Conn__clientSecret select a service principal, else "
        "DefaultAzureCredential is used), got 'clientsecret'"
    )


RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-00000000000a/resourceGroups/rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/app-identity"
)


async def test_identity_managed_identity_by_resource_id() -> None:
    connection = StorageConnection.from_app_settings(
        "Conn",
        {
            "Conn__accountName": "a",
            "Conn__credential": "managedidentity",
            "Conn__managedIdentityResourceId": RESOURCE_ID,
        },
    )
    assert connection.credential_kind == f"managed identity (resource id {RESOURCE_ID})"
    assert isinstance(connection.credential, ManagedIdentityCredential)
    await connection.close()


async def test_identity_service_principal_with_tenant_client_id_and_secret() -> None:
    connection = StorageConnection.from_app_settings(
        "Conn",
        {
            "Conn__accountName": "a",
            "Conn__tenantId": "contoso.onmicrosoft.com",
            "Conn__clientId": "00000000-0000-0000-0000-000000000002",
            "Conn__clientSecret": "s3cret-value",
        },
    )
    assert connection.credential_kind == (
        "service principal (tenant contoso.onmicrosoft.com, "
        "client id 00000000-0000-0000-0000-000000000002)"
    )
    assert isinstance(connection.credential, ClientSecretCredential)
    for text in (connection.describe(), repr(connection)):
        assert "s3cret-value" not in text
    await connection.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {
                "Conn__credential": "managedidentity",
                "Conn__clientId": "c",
                "Conn__managedIdentityResourceId": RESOURCE_ID,
            },
            "Conn__clientId and Conn__managedIdentityResourceId both name a user-assigned "
            "identity; set one of them",
        ),
        (
            {
                "Conn__credential": "managedidentity",
                "Conn__tenantId": "t",
                "Conn__clientId": "c",
                "Conn__clientSecret": "s3cret-value",
            },
            "Conn__tenantId and Conn__clientSecret are for a service principal; they cannot be "
            "combined with Conn__credential=managedidentity",
        ),
        (
            {"Conn__managedIdentityResourceId": RESOURCE_ID},
            "Conn__managedIdentityResourceId needs Conn__credential=managedidentity",
        ),
        (
            {"Conn__credential": "managedidentity", "Conn__managedIdentityResourceId": "abc"},
            "Conn__managedIdentityResourceId must be a user-assigned identity's resource id "
            "(/subscriptions/.../resourceGroups/.../providers/"
            "Microsoft.ManagedIdentity/userAssignedIdentities/...)",
        ),
        (
            {"Conn__clientId": "c", "Conn__clientSecret": "s3cret-value"},
            "A service principal needs Conn__tenantId, Conn__clientId and Conn__clientSecret; "
            "Conn__tenantId is not set",
        ),
        (
            {"Conn__tenantId": "t"},
            "A service principal needs Conn__tenantId, Conn__clientId and Conn__clientSecret; "
            "Conn__clientId and Conn__clientSecret are not set",
        ),
        (
            {"Conn__tenantId": "t/../x", "Conn__clientId": "c", "Conn__clientSecret": "s3cret"},
            "Conn__tenantId must be a tenant id or domain (letters, digits, '.', '-')",
        ),
    ],
    ids=[
        "client-id-and-resource-id",
        "managed-identity-with-secret",
        "resource-id-without-managed-identity",
        "malformed-resource-id",
        "secret-without-tenant",
        "tenant-alone",
        "malformed-tenant",
    ],
)
def test_identity_invalid_credential_combinations(settings: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        StorageConnection.from_app_settings("Conn", {"Conn__accountName": "a", **settings})
    assert str(error.value) == message
    assert "s3cret" not in str(error.value)


def test_identity_service_uri_must_be_a_url() -> None:
    with pytest.raises(SettingsError, match="Conn__queueServiceUri must be an http"):
        StorageConnection.from_app_settings(
            "Conn", {"Conn__accountName": "a", "Conn__queueServiceUri": "queue"}
        )


# -- real clients against Azurite ------------------------------------------------------------


async def test_round_trip_through_all_three_clients(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    connection = StorageConnection.from_app_settings(
        "AzureWebJobsStorage", {"AzureWebJobsStorage": azurite.connection_string}
    )
    name = hub_name.lower()
    payload = json.dumps({"id": hub_name, "text": "héllo"})

    async with connection.queue_service() as queues:
        queue = queues.get_queue_client(f"{name}-workitems")
        await queue.create_queue()
        await queue.send_message(payload)
        [peeked] = await queue.peek_messages()
        assert peeked.content == payload
        received = [message async for message in queue.receive_messages()]
        assert [message.content for message in received] == [payload]
        await queue.delete_message(received[0])
        await queue.delete_queue()

    async with connection.table_service() as tables:
        table = await tables.create_table(f"{hub_name}History")
        await table.upsert_entity({"PartitionKey": "p", "RowKey": "r", "Value": payload})
        entity = await table.get_entity("p", "r")
        assert entity["Value"] == payload
        await tables.delete_table(f"{hub_name}History")

    async with connection.blob_service() as blobs:
        container = await blobs.create_container(f"{name}-largemessages")
        await container.upload_blob("b.json.gz", b"\x1f\x8b payload")
        download = await container.download_blob("b.json.gz")
        assert await download.readall() == b"\x1f\x8b payload"
        await container.delete_container()


async def test_queue_messages_are_raw_utf8_not_base64(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    connection = StorageConnection.from_connection_string(azurite.connection_string)
    queue_name = f"{hub_name.lower()}-control-00"
    payload = '{"$type":"DurableTask.AzureStorage.MessageData","SequenceNumber":1}'
    async with connection.queue_service() as queues:
        queue = queues.get_queue_client(queue_name)
        await queue.create_queue()
        await queue.send_message(payload)
    # A base64-decoding reader chokes on the stored text: it went over the wire as plain JSON.
    async with QueueClient(
        connection.queue_endpoint,
        queue_name,
        credential=connection.credential,
        message_decode_policy=BinaryBase64DecodePolicy(),
    ) as base64_reader:
        with pytest.raises(DecodeError):
            await base64_reader.peek_messages()
        await base64_reader.delete_queue()
