"""Identity-based storage for real: the whole sample app under `durable-ext start`, connected to
Azurite over HTTPS in OAuth mode with `AzureWebJobsStorage__blobServiceUri/queueServiceUri/
tableServiceUri` and no key, its tokens from a local Entra stand-in (tests/token_server.py).

Once per credential style the Functions host accepts: a user-assigned managed identity by
`__clientId` and by `__managedIdentityResourceId` (the App Service / Functions endpoint,
IDENTITY_ENDPOINT + IDENTITY_HEADER), and a service principal by `__tenantId`, `__clientId` and
`__clientSecret` (AZURE_AUTHORITY_HOST points at the stand-in). The process trusts the test CA
through SSL_CERT_FILE only: the Azure SDK and the lean REST transport verify certificates as usual.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.storage.queue.aio import QueueServiceClient

from durable_ext.storage.connection import StorageConnection
from tests.azurite import AzuriteInstance
from tests.sample_app.host_process import (
    REPO_ROOT,
    LocalHostProcess,
    assert_stopped_cleanly,
    http,
    make_app_root,
    poll_status,
)
from tests.sample_app.test_patterns_over_http import (
    check_status_payload,
    finished,
    raise_event,
    running,
    start,
    terminate,
)
from tests.token_server import Certificates, TokenServer, make_certificates

TENANT = "72f988bf-0000-4000-8000-00000000beef"
MI_CLIENT_ID = "11111111-1111-4111-8111-111111111111"
MI_RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-00000000000a/resourceGroups/rg/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/sample-identity"
)
MI_RESOURCE_CLIENT_ID = "22222222-2222-4222-8222-222222222222"
SP_CLIENT_ID = "33333333-3333-4333-8333-333333333333"
SP_SECRET = "not-a-real-secret-" + secrets.token_hex(8)
IDENTITY_HEADER = secrets.token_hex(16)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def oauth_azurite(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AzuriteInstance]:
    tls = (certificates.cert, certificates.key, certificates.ca)
    with AzuriteInstance(
        tmp_path_factory.mktemp("azurite-oauth"), in_memory=True, tls=tls, oauth=True
    ) as instance:
        yield instance


@pytest.fixture(scope="module")
def token_server(certificates: Certificates) -> Iterator[TokenServer]:
    with TokenServer(
        certificates,
        tenant=TENANT,
        identity_header=IDENTITY_HEADER,
        client_secrets={SP_CLIENT_ID: SP_SECRET},
        managed_identities={MI_RESOURCE_ID: MI_RESOURCE_CLIENT_ID},
    ) as server:
        yield server


@dataclass(frozen=True)
class Style:
    """One way of selecting the credential: app settings, environment, what the endpoint sees."""

    settings: dict[str, str]
    managed_identity: bool
    endpoint: str
    expected: dict[str, str]


STYLES = {
    "managed-identity-client-id": Style(
        {"credential": "managedidentity", "clientId": MI_CLIENT_ID},
        True,
        "managed identity",
        {"client_id": MI_CLIENT_ID},
    ),
    "managed-identity-resource-id": Style(
        {"credential": "managedidentity", "managedIdentityResourceId": MI_RESOURCE_ID},
        True,
        "managed identity",
        {"mi_res_id": MI_RESOURCE_ID},
    ),
    "client-secret": Style(
        {"tenantId": TENANT, "clientId": SP_CLIENT_ID, "clientSecret": SP_SECRET},
        False,
        "client secret",
        {"client_id": SP_CLIENT_ID, "grant_type": "client_credentials"},
    ),
}


def identity_settings(storage: AzuriteInstance, style: Style) -> dict[str, str]:
    return {
        "AzureWebJobsStorage__blobServiceUri": storage.blob_endpoint,
        "AzureWebJobsStorage__queueServiceUri": storage.queue_endpoint,
        "AzureWebJobsStorage__tableServiceUri": storage.table_endpoint,
        **{f"AzureWebJobsStorage__{key}": value for key, value in style.settings.items()},
    }


@pytest.mark.parametrize("style_name", list(STYLES))
def test_the_whole_sample_runs_on_identity_based_storage_over_https(
    style_name: str,
    oauth_azurite: AzuriteInstance,
    token_server: TokenServer,
    certificates: Certificates,
    tmp_path: Path,
) -> None:
    style = STYLES[style_name]
    root = make_app_root(
        tmp_path / "app",
        code=[REPO_ROOT / "function_app", REPO_ROOT / "function_app.py"],
        hub_name="Identity" + secrets.token_hex(4),
        connection_string=None,
        values=identity_settings(oauth_azurite, style),
    )
    env = {"SSL_CERT_FILE": str(certificates.ca)}
    if style.managed_identity:
        env |= {
            "IDENTITY_ENDPOINT": token_server.identity_endpoint,
            "IDENTITY_HEADER": IDENTITY_HEADER,
        }
    else:
        env["AZURE_AUTHORITY_HOST"] = token_server.base_url
    issued_before = len(token_server.issued(style.endpoint))
    host = LocalHostProcess(root, env=env)
    host.launch()
    try:
        host.wait_ready()
        run_every_pattern(host)
    except BaseException:
        host.kill()
        raise
    assert_stopped_cleanly(host)

    issued = token_server.issued(style.endpoint)[issued_before:]
    assert issued, f"no token from the {style.endpoint} endpoint\n{host.log()[-3000:]}"
    for request in issued:
        assert dict(request.parameters).items() >= style.expected.items(), request
    assert all(r.issued for r in token_server.requests), token_server.requests


def run_every_pattern(host: LocalHostProcess) -> None:
    """Every orchestration of the sample app, started together, to its expected end."""
    base = host.base_url
    waited = http("GET", f"{base}/api/orchestrators/hello_sequence/wait")
    assert waited.status == 200, waited.text
    assert waited.json() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]

    expected: dict[str, tuple[dict[str, str], Any]] = {
        "chaining": (
            start(host, "hello_sequence"),
            ["Hello Tokyo!", "Hello Seattle!", "Hello London!"],
        ),
        "fan-out": (start(host, "fan_out_fan_in", {"count": 8}), sum(n * n for n in range(1, 9))),
        "monitor": (
            start(
                host,
                "job_monitor",
                {"jobId": "job-id", "pollingIntervalSeconds": 1, "completeAfterChecks": 2},
            ),
            {"jobId": "job-id", "status": "Completed", "checks": 2},
        ),
        "approved": (
            start(host, "approval_workflow", {"requestId": "PO-1"}),
            "Approved: PO-1",
        ),
        "escalated": (
            start(host, "approval_workflow", {"requestId": "PO-2", "timeoutSeconds": 1}),
            "Escalated: PO-2",
        ),
        "transfer": (
            start(host, "transfer_funds", {"from": "alice", "to": "bob", "amount": 100}),
            {"status": "Transferred", "amount": 100},
        ),
        "compensated": (
            start(host, "transfer_funds", {"from": "a", "to": "closed-1", "amount": 5}),
            {"status": "Refunded", "reason": "Account closed-1 is closed"},
        ),
    }
    eternal = check_status_payload(http("POST", f"{base}/api/cleanup", {"intervalSeconds": 1}))

    running(expected["approved"][0])
    assert raise_event(expected["approved"][0], "ApprovalEvent", True).status == 202
    second_run = poll_status(
        eternal["statusQueryGetUri"],
        until=lambda r: (r.json().get("customStatus") or {}).get("iteration", 0) >= 2,
    )
    assert second_run.status == 202
    assert terminate(eternal, "test done").status == 202

    with ThreadPoolExecutor(len(expected) + 1) as pool:
        statuses = dict(
            zip(
                [*expected, "eternal"],
                pool.map(finished, [payload for payload, _ in expected.values()] + [eternal]),
                strict=True,
            )
        )
    for name, (_, output) in expected.items():
        assert (statuses[name]["runtimeStatus"], statuses[name]["output"]) == (
            "Completed",
            output,
        ), name
    assert statuses["eternal"]["runtimeStatus"] == "Terminated"

    purged = http("DELETE", expected["chaining"][0]["purgeHistoryDeleteUri"])
    assert (purged.status, purged.json()) == (200, {"instancesDeleted": 1})


async def test_a_process_that_does_not_trust_the_test_ca_is_refused(
    oauth_azurite: AzuriteInstance,
) -> None:
    """This process does not have SSL_CERT_FILE: the lean REST transport and the SDK both refuse
    the self-signed certificate (verification is on; the host test above trusts it explicitly)."""
    connection = StorageConnection.from_connection_string(oauth_azurite.connection_string)
    transport = connection.rest_transport("queue")
    try:
        with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
            await transport.request("GET", "/", query={"comp": "list"})
    finally:
        await transport.close()
    async with QueueServiceClient(
        connection.queue_endpoint, credential=connection.credential, retry_total=0
    ) as queues:
        with pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
            await queues.get_service_properties()
