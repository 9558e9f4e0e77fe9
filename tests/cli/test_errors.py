"""Failures: one clear line on stderr, exit code 1 (2 for usage errors), and no secrets."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import pytest

from durable_ext.storage.connection import StorageConnection
from durable_ext.storage.task_hub import TaskHub
from tests.azurite import ACCOUNT_NAME, AzuriteInstance, free_ports
from tests.cli.conftest import Cli, run_cli, run_parallel, write_app_root

WRONG_KEY = base64.b64encode(b"not-the-account-key".ljust(64, b"x")).decode()
SAS_SIGNATURE = "SeCrEtSiGnAtUrE0123456789"


def assert_one_line_error(result_stderr: str, *fragments: str) -> None:
    lines = result_stderr.splitlines()
    assert len(lines) == 1, result_stderr
    assert lines[0].startswith("durable-ext: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def existing_hub(azurite: AzuriteInstance, hub_name: str) -> str:
    """This test's hub, created in storage (no worker runs it)."""

    async def create() -> None:
        connection = StorageConnection.from_connection_string(azurite.connection_string)
        async with TaskHub(connection, hub_name) as hub:
            await hub.create_if_not_exists()

    asyncio.run(create())
    return hub_name


def test_unknown_instance(cli: Cli, existing_hub: str) -> None:
    commands = [
        ["get-runtime-status"],
        ["get-history"],
        ["raise-event", "--event-name", "Approval"],
        ["terminate"],
        ["suspend"],
        ["resume"],
        ["purge-history"],
    ]
    results = run_parallel(cli, *([*command, "--id", "no-such-instance"] for command in commands))
    for command, result in zip(commands, results, strict=True):
        assert result.returncode == 1, command
        assert result.stdout == "", command
        assert_one_line_error(result.stderr.lower(), "no instance with id 'no-such-instance' found")


def test_missing_task_hub(cli: Cli, hub_name: str) -> None:
    result = cli("get-instances")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, f"task hub '{hub_name}' does not exist", "--task-hub-name")


def test_invalid_continuation_token(cli: Cli, existing_hub: str) -> None:
    result = cli("get-instances", "--continuation-token", "not-a-token")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "--continuation-token is not valid")


def test_bad_host_json_names_the_setting(cli: Cli, app_root: Path, hub_name: str) -> None:
    host = {
        "extensions": {
            "durableTask": {"hubName": hub_name, "storageProvider": {"partitionCount": 99}}
        }
    }
    (app_root / "host.json").write_text(json.dumps(host), encoding="utf-8")
    result = cli("get-instances")
    assert result.returncode == 1
    assert_one_line_error(
        result.stderr,
        "host.json: extensions.durableTask.storageProvider.partitionCount must be an integer from 1 to 16, got 99",
    )


def test_host_json_that_is_not_json(cli: Cli, app_root: Path) -> None:
    (app_root / "host.json").write_text("{ nope", encoding="utf-8")
    result = cli("get-instances")
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "host.json: invalid JSON at line 1")


def test_missing_host_json(cli: Cli, tmp_path: Path) -> None:
    result = cli("get-instances", "--app-root", str(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "host.json not found")


def test_missing_connection_setting(tmp_path: Path, hub_name: str) -> None:
    root = write_app_root(tmp_path / "app", hub_name, {})
    result = run_cli("get-instances", cwd=root)
    assert result.returncode == 1
    assert_one_line_error(
        result.stderr, "Storage connection 'AzureWebJobsStorage' is not configured"
    )
    other = run_cli("get-instances", "--connection-string-setting", "Elsewhere", cwd=root)
    assert_one_line_error(other.stderr, "Storage connection 'Elsewhere' is not configured")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["start-new", "--function-name", "hello", "--input", "{not json"],
            "--input is not valid JSON (line 1, column 2",
        ),
        (
            ["start-new", "--function-name", "hello", "--input", "plain text"],
            "--input is not valid JSON",
        ),
        (
            ["start-new", "--function-name", "hello", "--input", "@missing.json"],
            "cannot read --input file missing.json",
        ),
        (
            ["raise-event", "--id", "x", "--event-name", "E", "--event-data", "[1,"],
            "--event-data is not valid JSON",
        ),
    ],
    ids=["broken", "unquoted-string", "missing-file", "event-data"],
)
def test_invalid_json_arguments(
    cli: Cli, hub_name: str, arguments: list[str], message: str
) -> None:
    result = cli(*arguments)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, message)


def test_invalid_input_is_refused_before_touching_storage(cli: Cli, hub_name: str) -> None:
    assert cli("start-new", "--function-name", "hello", "--input", "{").returncode == 1
    # start-new creates a missing hub; this one stopped before that.
    assert f"task hub '{hub_name}' does not exist" in cli("get-instances").stderr


def test_unknown_command_exits_2() -> None:
    result = run_cli("frobnicate", cwd=Path.cwd())
    assert result.returncode == 2
    assert "unknown command 'frobnicate'" in result.stderr


def test_missing_required_option_exits_2(cli: Cli) -> None:
    result = cli("get-runtime-status")
    assert result.returncode == 2
    assert "the following arguments are required: --id" in result.stderr


def test_unreachable_storage_fails_fast(tmp_path: Path, hub_name: str) -> None:
    port = free_ports(1)[0]
    endpoint = f"http://127.0.0.1:{port}/{ACCOUNT_NAME}"
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={WRONG_KEY};"
        f"BlobEndpoint={endpoint};QueueEndpoint={endpoint};TableEndpoint={endpoint}"
    )
    root = write_app_root(tmp_path / "app", hub_name, {"AzureWebJobsStorage": connection})
    began = time.monotonic()
    result = run_cli("get-runtime-status", "--id", "x", cwd=root)
    elapsed = time.monotonic() - began
    assert result.returncode == 1
    assert_one_line_error(
        result.stderr,
        f"cannot reach storage account '{ACCOUNT_NAME}' (connection AzureWebJobsStorage)",
        "is Azurite running?",
    )
    assert WRONG_KEY not in result.stderr + result.stdout
    assert elapsed < 20, f"took {elapsed:.1f} s to give up"


def test_sas_signature_is_never_printed(tmp_path: Path, hub_name: str) -> None:
    port = free_ports(1)[0]
    sas = f"sv=2024-05-04&ss=bqt&srt=sco&sp=rwdlacu&se=2099-01-01T00:00:00Z&sig={SAS_SIGNATURE}"
    connection = (
        f"BlobEndpoint=http://127.0.0.1:{port}/a;QueueEndpoint=http://127.0.0.1:{port}/a;"
        f"TableEndpoint=http://127.0.0.1:{port}/a;SharedAccessSignature={sas}"
    )
    root = write_app_root(tmp_path / "app", hub_name, {"AzureWebJobsStorage": connection})
    result = run_cli("get-instances", "--json", cwd=root)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "cannot reach storage account")
    assert SAS_SIGNATURE not in result.stderr + result.stdout


def test_wrong_account_key(azurite: AzuriteInstance, tmp_path: Path, hub_name: str) -> None:
    connection = azurite.connection_string.replace(
        azurite.connection_string.split("AccountKey=")[1].split(";")[0], WRONG_KEY
    )
    root = write_app_root(tmp_path / "app", hub_name, {"AzureWebJobsStorage": connection})
    result = run_cli("get-instances", cwd=root)
    assert result.returncode == 1
    assert_one_line_error(
        result.stderr,
        f"storage account '{ACCOUNT_NAME}'",
        "refused the request: HTTP 403 AuthorizationFailure",
    )
    assert WRONG_KEY not in result.stderr + result.stdout
