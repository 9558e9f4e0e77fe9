"""Code written for `azure-functions-durable` runs on durable_ext with only the import changed.

Each folder holds one of the SDK's published samples as its `function_app.py`; every app is served
by its own `durable-ext start` subprocess (started together) and driven over HTTP like its docs
show: POST the starter, then poll `statusQueryGetUri`.
"""

from __future__ import annotations

import importlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from tests.azurite import AzuriteInstance
from tests.sample_app.host_process import (
    LocalHostProcess,
    assert_stopped_cleanly,
    http,
    make_app_root,
    poll_status,
)
from tests.sample_app.indexing import (
    assert_host_sees_only_native_bindings,
    index_like_the_python_worker,
)

SAMPLES_DIR = Path(__file__).parent
SAMPLES = ("function_chaining", "fan_in_fan_out", "human_interaction")


@pytest.fixture(scope="module")
def hosts(
    azurite: AzuriteInstance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LocalHostProcess]]:
    """One host per sample app, each on a task hub of its own; stopped with SIGTERM afterwards."""
    hosts: dict[str, LocalHostProcess] = {}
    for sample in SAMPLES:
        app_root = make_app_root(
            tmp_path_factory.mktemp(sample),
            code=[SAMPLES_DIR / sample / "function_app.py"],
            hub_name="Compat" + sample.replace("_", "")[:20] + secrets.token_hex(3),
            connection_string=azurite.connection_string,
        )
        hosts[sample] = LocalHostProcess(app_root)
        hosts[sample].launch()
    try:
        for host in hosts.values():
            host.wait_ready()
    except BaseException:
        for host in hosts.values():
            host.kill()
        raise
    yield hosts
    for host in hosts.values():
        assert_stopped_cleanly(host)


def start(host: LocalHostProcess, orchestrator: str, *body: Any) -> dict[str, str]:
    response = http("POST", f"{host.base_url}/api/orchestrators/{orchestrator}", *body)
    assert response.status == 202, response.text
    payload: dict[str, str] = response.json()
    return payload


def output_of(started: dict[str, str]) -> Any:
    response = poll_status(started["statusQueryGetUri"])
    status = response.json()
    assert (response.status, status["runtimeStatus"]) == (200, "Completed"), status["output"]
    return status["output"]


def test_function_chaining(hosts: dict[str, LocalHostProcess]) -> None:
    started = start(hosts["function_chaining"], "my_orchestrator")
    assert output_of(started) == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_fan_in_fan_out_backs_up_the_files(
    hosts: dict[str, LocalHostProcess], azurite: AzuriteInstance, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    folder = "E2_" + secrets.token_hex(4)
    files = {f"{folder}/__init__.py": b"print('hi')\n", f"{folder}/function.json": b"{}" * 50}
    files["other/__init__.py"] = b"not copied: its path has no E2_"
    for name, content in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(content)

    started = start(hosts["fan_in_fan_out"], "E2_BackupSiteContent", str(site))
    assert output_of(started) == len(files[f"{folder}/__init__.py"]) + len(
        files[f"{folder}/function.json"]
    )
    backups = BlobServiceClient.from_connection_string(azurite.connection_string)
    with backups:
        container = backups.get_container_client("backups")
        names = {blob.name for blob in container.list_blobs(name_starts_with=folder)}
    assert names == {f"{folder}___init__.py", f"{folder}_function.json"}


def challenge_code(started: dict[str, str]) -> str:
    """The code the SendSMSChallenge activity "texted", from the instance's history."""
    url = started["statusQueryGetUri"] + "&showHistory=true&showHistoryOutput=true"
    response = poll_status(
        url,
        until=lambda r: any(
            e.get("FunctionName") == "SendSMSChallenge" for e in r.json()["historyEvents"]
        ),
    )
    [sent] = [
        e for e in response.json()["historyEvents"] if e.get("FunctionName") == "SendSMSChallenge"
    ]
    code: str = sent["Result"]
    return code


def answer(started: dict[str, str], code: str) -> None:
    url = started["sendEventPostUri"].replace("{eventName}", "SmsChallengeResponse")
    assert http("POST", url, code).status == 202


def test_human_interaction_verifies_the_right_code(hosts: dict[str, LocalHostProcess]) -> None:
    started = start(hosts["human_interaction"], "E4_SMSPhoneVerification", "+14255550100")
    code = challenge_code(started)
    answer(started, "wrong")
    answer(started, code)
    assert output_of(started) is True


def test_human_interaction_gives_up_after_three_wrong_codes(
    hosts: dict[str, LocalHostProcess],
) -> None:
    started = start(hosts["human_interaction"], "E4_SMSPhoneVerification", "+14255550101")
    code = challenge_code(started)
    for attempt in range(3):
        answer(started, f"not-{code}-{attempt}")
    assert output_of(started) is False


def test_human_interaction_rejects_an_invalid_phone_number(
    hosts: dict[str, LocalHostProcess],
) -> None:
    started = start(hosts["human_interaction"], "E4_SMSPhoneVerification", "555-0100")
    response = poll_status(started["statusQueryGetUri"])
    status = response.json()
    assert (response.status, status["runtimeStatus"]) == (200, "Failed")
    assert "international dialing prefix" in status["output"]


@pytest.mark.parametrize("sample", SAMPLES)
def test_the_host_indexes_only_native_bindings(sample: str) -> None:
    module = importlib.import_module(f"tests.compat_app.{sample}.function_app")
    functions = index_like_the_python_worker(module)
    assert_host_sees_only_native_bindings(functions)
    assert [binding.type for binding in functions[0].get_bindings()] == ["httpTrigger", "http"]
