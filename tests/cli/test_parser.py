"""The command line's parsing and dispatch, in process (no storage)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from durable_ext import OrchestrationRuntimeStatus
from durable_ext.host import cli

MANAGEMENT_COMMANDS = [
    "start-new",
    "get-runtime-status",
    "get-history",
    "get-instances",
    "raise-event",
    "terminate",
    "suspend",
    "resume",
    "purge-history",
    "delete-task-hub",
]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ["start", *MANAGEMENT_COMMANDS]:
        assert f"\n    {command} " in out or f"\n    {command}\n" in out


@pytest.mark.parametrize("command", MANAGEMENT_COMMANDS)
def test_management_commands_take_the_common_options(command: str) -> None:
    parser = cli.build_parser()
    required = {
        "start-new": ["--function-name", "f"],
        "raise-event": ["--id", "i", "--event-name", "e"],
        "get-instances": [],
        "purge-history": [],
        "delete-task-hub": [],
    }.get(command, ["--id", "i"])
    args = parser.parse_args([command, *required, "--json", "--task-hub-name", "Hub"])
    assert args.json is True and args.task_hub_name == "Hub"
    assert args.app_root == Path(".") and args.connection_string_setting is None


def test_runtime_status_is_repeatable_or_comma_separated() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(
        ["get-instances", "--runtime-status", "running,Completed", "--runtime-status", "FAILED"]
    )
    assert args.runtime_status == [
        OrchestrationRuntimeStatus.Running,
        OrchestrationRuntimeStatus.Completed,
        OrchestrationRuntimeStatus.Failed,
    ]


def test_times_without_a_zone_are_utc() -> None:
    assert cli.parse_utc_datetime("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert cli.parse_utc_datetime("2024-05-01T13:45:00Z") == datetime(
        2024, 5, 1, 13, 45, tzinfo=UTC
    )
    plus_two = cli.parse_utc_datetime("2024-05-01T13:45:00+02:00")
    assert plus_two.tzinfo == timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["get-runtime-status"], "the following arguments are required: --id"),
        (["get-instances", "--runtime-status", "Sleeping"], "unknown runtime status 'Sleeping'"),
        (
            ["get-instances", "--created-after", "yesterday"],
            "not an ISO 8601 date/time: 'yesterday'",
        ),
        (["get-instances", "--top", "0"], "must be a whole number from 1 to 1000"),
        (["purge-history"], "give --id, or --created-after to purge by filter"),
        (["purge-history", "--id", "x", "--created-after", "2024-01-01"], "not both"),
        (
            ["purge-history", "--created-after", "2024-01-01", "--runtime-status", "Running"],
            "only finished instances can be purged; --runtime-status Running",
        ),
        (["start-new"], "the following arguments are required: --function-name"),
    ],
)
def test_usage_errors_exit_2(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(arguments)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"usage: durable-ext {arguments[0]}")
    assert message in error


def test_start_dispatches_to_the_local_host(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[argparse.Namespace] = []

    def run(args: argparse.Namespace) -> int:
        received.append(args)
        return 7

    fake = types.ModuleType(cli.LOCAL_HOST_MODULE)
    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, cli.LOCAL_HOST_MODULE, fake)
    assert cli.main(["start"]) == 7
    assert (received[0].host, received[0].port, received[0].app_root) == (
        "127.0.0.1",
        7071,
        Path("."),
    )
    assert cli.main(["start", "--port", "8080", "--host", "0.0.0.0", "--app-root", "/srv/app"]) == 7
    assert (received[1].host, received[1].port, received[1].app_root) == (
        "0.0.0.0",
        8080,
        Path("/srv/app"),
    )


def test_start_without_the_local_host(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, cli.LOCAL_HOST_MODULE, None)  # makes the import fail
    assert cli.main(["start"]) == 1
    assert capsys.readouterr().err.startswith("durable-ext: error: the local host is not available")


def test_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "durable_ext.host.cli", "frobnicate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown command 'frobnicate'" in result.stderr
