"""The management API as `durable-ext start` serves it (a subprocess, real HTTP), with a system key."""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.azurite import AzuriteInstance
from tests.sample_app.host_process import (
    REPO_ROOT,
    LocalHostProcess,
    assert_stopped_cleanly,
    http,
    make_app_root,
    poll_status,
)

SYSTEM_KEY = "sys-" + secrets.token_hex(16)
WEBHOOK = "/runtime/webhooks/durabletask"


@pytest.fixture(scope="module")
def keyed_host(
    azurite: AzuriteInstance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalHostProcess]:
    app_root = make_app_root(
        tmp_path_factory.mktemp("keyed_app"),
        code=[REPO_ROOT / "function_app", REPO_ROOT / "function_app.py"],
        hub_name="Keyed" + secrets.token_hex(4),
        connection_string=azurite.connection_string,
        values={"DURABLE_EXT_SYSTEM_KEY": SYSTEM_KEY},
    )
    host = LocalHostProcess(app_root)
    host.launch()
    try:
        host.wait_ready()
    except BaseException:
        host.kill()
        raise
    yield host
    assert_stopped_cleanly(host)
    assert SYSTEM_KEY not in host.log()


def management(host: LocalHostProcess, path: str, key: str | None = SYSTEM_KEY) -> str:
    separator = "&" if "?" in path else "?"
    suffix = f"{separator}code={quote(key)}" if key else ""
    return f"{host.base_url}{WEBHOOK}{path}{suffix}"


def test_start_status_and_generated_links_carry_the_key(keyed_host: LocalHostProcess) -> None:
    started = http("POST", management(keyed_host, "/orchestrators/hello_sequence"))
    assert started.status == 202, started.text
    links = started.json()
    assert started.headers["Location"] == links["statusQueryGetUri"]
    assert started.headers["Retry-After"] == "10"
    for name in (
        "statusQueryGetUri",
        "sendEventPostUri",
        "terminatePostUri",
        "purgeHistoryDeleteUri",
    ):
        assert f"code={SYSTEM_KEY}" in links[name]
        assert links[name].startswith(keyed_host.base_url + WEBHOOK)
    done = poll_status(links["statusQueryGetUri"])
    assert done.status == 200
    assert done.json()["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    assert done.json()["createdTime"].endswith("Z") and "." not in done.json()["createdTime"]


def test_every_management_route_requires_the_system_key(keyed_host: LocalHostProcess) -> None:
    for method, path in (
        ("GET", "/instances"),
        ("GET", "/instances/x"),
        ("POST", "/orchestrators/hello_sequence"),
        ("POST", "/instances/x/terminate"),
        ("DELETE", "/instances/x"),
    ):
        without = http(method, management(keyed_host, path, key=None))
        assert without.status == 401, (method, path, without.status)
        assert "error" in without.json()
        wrong = http(method, management(keyed_host, path, key="sys-" + "0" * 32))
        assert wrong.status == 401
        assert SYSTEM_KEY not in without.text + wrong.text


def test_list_pages_with_top_and_continuation_token(keyed_host: LocalHostProcess) -> None:
    prefix = "page-" + secrets.token_hex(3)
    for n in range(5):
        started = http(
            "POST", management(keyed_host, f"/orchestrators/hello_sequence/{prefix}-{n}")
        )
        assert started.status == 202, started.text
        poll_status(started.json()["statusQueryGetUri"])
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        url = management(keyed_host, f"/instances?instanceIdPrefix={prefix}&top=2")
        request = urllib.request.Request(
            url, headers={"x-ms-continuation-token": token} if token else {}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
            token = response.headers["x-ms-continuation-token"] or ""
            page = json.loads(response.read())
        assert len(page) <= 2
        seen += [item["instanceId"] for item in page]
        pages += 1
        if not token:
            break
    assert sorted(seen) == [f"{prefix}-{n}" for n in range(5)]
    assert pages >= 3


def test_bad_requests_get_json_errors_and_change_nothing(keyed_host: LocalHostProcess) -> None:
    unknown = http("POST", management(keyed_host, "/orchestrators/no_such_orchestrator/ghost"))
    assert unknown.status == 400 and "error" in unknown.json()
    invalid_id = http(
        "POST", management(keyed_host, "/orchestrators/hello_sequence/" + quote("a#b", safe=""))
    )
    assert invalid_id.status in (400, 404) and "error" in invalid_id.json()
    assert http("GET", management(keyed_host, "/instances/ghost")).status == 404
    assert http("GET", management(keyed_host, "/no/such/route")).status == 404
    assert http("PUT", management(keyed_host, "/instances/ghost")).status == 404
    bad_body = http(
        "POST", management(keyed_host, "/instances/ghost/raiseEvent/E"), raw=b"{not json"
    )
    assert bad_body.status in (400, 404)
