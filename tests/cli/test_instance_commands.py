"""Every instance command end to end: the CLI in a subprocess, a worker in this process."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.azurite import AzuriteInstance
from tests.cli.conftest import (
    Cli,
    WorkerThread,
    clean_environment,
    run_cli,
    run_parallel,
    write_app_root,
)


@pytest.fixture
def cli(worker_app_root: Path) -> Cli:
    """The command run in the app root of the module's worker hub."""

    def run(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("cwd", worker_app_root)
        return run_cli(*args, **kwargs)

    return run


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def start(cli: Cli, function: str, instance_id: str, data: object = None) -> None:
    args = ["start-new", "--function-name", function, "--id", instance_id]
    if data is not None:
        args += ["--input", json.dumps(data)]
    result = cli(*args)
    assert result.returncode == 0, result.stderr


def test_start_new_and_get_runtime_status(cli: Cli, worker: WorkerThread) -> None:
    instance_id = unique("hello")
    result = cli(
        "start-new", "--function-name", "hello", "--id", instance_id, "--input", '["Tokyo"]'
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"Started 'hello' with instance ID '{instance_id}' in task hub '{worker.hub}'."
    )
    assert result.stderr == ""
    worker.wait_for_completion(instance_id)

    brief = cli("get-runtime-status", "--id", instance_id)
    assert brief.returncode == 0, brief.stderr
    assert re.search(rf"Instance ID\s+{instance_id}", brief.stdout)
    assert re.search(r"Runtime status\s+Completed", brief.stdout)
    assert "Input" not in brief.stdout and "Hello Tokyo!" not in brief.stdout

    full = cli("get-runtime-status", "--id", instance_id, "--show-input", "--show-output")
    assert re.search(r'Input\s+\["Tokyo"\]', full.stdout)
    assert re.search(r'Output\s+\["Hello Tokyo!"\]', full.stdout)


def test_start_new_json_with_input_file_and_generated_id(
    cli: Cli, worker: WorkerThread, tmp_path: Path
) -> None:
    input_file = tmp_path / "input.json"
    input_file.write_text('["Seattle", "London"]', encoding="utf-8")
    result = cli("start-new", "--function-name", "hello", "--input", f"@{input_file}", "--json")
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)
    assert re.fullmatch(r"[0-9a-f]{32}", started["instanceId"])
    assert started == {"instanceId": started["instanceId"], "name": "hello", "taskHub": worker.hub}
    worker.wait_for_completion(started["instanceId"])

    status = json.loads(
        cli("get-runtime-status", "--id", started["instanceId"], "--show-output", "--json").stdout
    )
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Seattle!", "Hello London!"]
    assert "input" not in status
    assert status["createdTime"].endswith("Z")


def test_get_history(cli: Cli, worker: WorkerThread) -> None:
    instance_id = unique("history")
    start(cli, "hello", instance_id, ["Oslo"])
    worker.wait_for_completion(instance_id)

    text = cli("get-history", "--id", instance_id)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["EventId", "Timestamp", "EventType", "Name", "Details"]
    assert any("ExecutionStarted" in line and "hello" in line for line in lines)
    assert any("TaskScheduled" in line and "say_hello" in line for line in lines)
    assert any("TaskCompleted" in line and 'Result="Hello Oslo!"' in line for line in lines)

    events = json.loads(cli("get-history", "--id", instance_id, "--json").stdout)
    types = [event["EventType"] for event in events]
    assert types[0] == "OrchestratorStarted" and types[-1] == "OrchestratorCompleted"
    assert "ExecutionCompleted" in types
    started = next(e for e in events if e["EventType"] == "ExecutionStarted")
    assert started["Name"] == "hello" and json.loads(started["Input"]) == ["Oslo"]
    assert started["OrchestrationInstance"]["InstanceId"] == instance_id


def test_raise_event(cli: Cli, worker: WorkerThread) -> None:
    instance_id = unique("approval")
    start(cli, "approval", instance_id)
    result = cli(
        "raise-event", "--id", instance_id, "--event-name", "Approval", "--event-data",
        '{"by": "ann"}', "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"instanceId": instance_id, "eventName": "Approval"}
    status = worker.wait_for_completion(instance_id)
    assert status.output == {"decision": {"by": "ann"}}

    text = cli("raise-event", "--id", instance_id, "--event-name", "Approval")
    assert text.returncode == 1
    assert "is gone" in text.stderr and len(text.stderr.splitlines()) == 1


def test_terminate(cli: Cli, worker: WorkerThread) -> None:
    instance_id = unique("terminate")
    start(cli, "approval", instance_id)
    duplicate = cli("start-new", "--function-name", "approval", "--id", instance_id)
    assert duplicate.returncode == 1
    assert f"An instance with ID '{instance_id}' already exists" in duplicate.stderr
    result = cli("terminate", "--id", instance_id, "--reason", "no longer needed")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Sent a termination request to instance '{instance_id}'."
    status = worker.wait_for_completion(instance_id)
    assert status.runtime_status is not None and status.runtime_status.value == "Terminated"
    assert status.output == "no longer needed"

    again = cli("terminate", "--id", instance_id)
    assert again.returncode == 1
    assert f"instance '{instance_id}' is Terminated and cannot be terminated" in again.stderr


def test_suspend_and_resume(cli: Cli, worker: WorkerThread) -> None:
    instance_id = unique("suspend")
    start(cli, "approval", instance_id)
    worker.wait_for_status(instance_id, "Running")

    suspended = cli("suspend", "--id", instance_id, "--reason", "maintenance", "--json")
    assert suspended.returncode == 0, suspended.stderr
    assert json.loads(suspended.stdout) == {"instanceId": instance_id, "reason": "maintenance"}
    worker.wait_for_status(instance_id, "Suspended")
    status = cli("get-runtime-status", "--id", instance_id)
    assert re.search(r"Runtime status\s+Suspended", status.stdout)

    # An event that arrives while suspended waits for the resume.
    assert (
        cli(
            "raise-event", "--id", instance_id, "--event-name", "Approval", "--event-data", "1"
        ).returncode
        == 0
    )
    resumed = cli("resume", "--id", instance_id)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == f"Sent a resume request to instance '{instance_id}'."
    assert worker.wait_for_completion(instance_id).output == {"decision": 1}


def test_get_instances_filters_and_pages(cli: Cli, worker: WorkerThread) -> None:
    prefix = unique("list")
    done = [f"{prefix}-done{i}" for i in range(3)]
    waiting = f"{prefix}-waiting"
    for instance_id in done:
        start(cli, "hello", instance_id, [])
    start(cli, "approval", waiting)
    for instance_id in done:
        worker.wait_for_completion(instance_id)
    worker.wait_for_status(waiting, "Running")

    # Text: a table, then the token of the next page (Core Tools' wording).
    first = cli("get-instances", "--instance-id-prefix", prefix, "--top", "3")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].split() == [
        "Instance",
        "ID",
        "Name",
        "Runtime",
        "status",
        "Created",
        "Last",
        "updated",
    ]
    assert len([line for line in lines if line.startswith(prefix)]) == 3
    token = re.fullmatch(r"Continuation token for next set of results: '(.+)'", lines[-1])
    assert token is not None
    rest = cli(
        "get-instances", "--instance-id-prefix", prefix, "--top", "3",
        "--continuation-token", token.group(1),
    )  # fmt: skip
    assert rest.stdout.splitlines()[-1] == "No more results."
    seen = {line.split()[0] for line in lines + rest.stdout.splitlines() if line.startswith(prefix)}
    assert seen == {*done, waiting}

    # JSON pages: follow continuationToken to the end.
    ids, token_value = [], None
    while True:
        args = ["get-instances", "--instance-id-prefix", prefix, "--top", "2", "--json"]
        page = json.loads(
            cli(*args, *(["--continuation-token", token_value] if token_value else [])).stdout
        )
        ids += [instance["instanceId"] for instance in page["instances"]]
        token_value = page["continuationToken"]
        if token_value is None:
            break
    assert sorted(ids) == sorted([*done, waiting])

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    filters = {
        ("--runtime-status", "running"): {waiting},
        ("--runtime-status", "Completed,RUNNING"): {*done, waiting},
        ("--created-after", future): set(),
        ("--created-before", "2000-01-01"): set(),
    }
    base = ("get-instances", "--instance-id-prefix", prefix, "--json")
    results = run_parallel(cli, *((*base, *options) for options in filters))
    for (options, expected), result in zip(filters.items(), results, strict=True):
        assert result.returncode == 0, result.stderr
        listed = {instance["instanceId"] for instance in json.loads(result.stdout)["instances"]}
        assert listed == expected, options

    empty = cli("get-instances", "--instance-id-prefix", f"{prefix}-nothing")
    assert empty.stdout.splitlines() == ["No instances found.", "No more results."]
    cli("terminate", "--id", waiting)


def test_get_instances_json_shows_input_on_request(cli: Cli, worker: WorkerThread) -> None:
    instance_id = unique("inputs")
    start(cli, "hello", instance_id, ["Rome"])
    worker.wait_for_completion(instance_id)
    base = ["get-instances", "--instance-id-prefix", instance_id, "--json"]
    [plain] = json.loads(cli(*base).stdout)["instances"]
    assert "input" not in plain and plain["output"] == ["Hello Rome!"]
    [shown] = json.loads(cli(*base, "--show-input").stdout)["instances"]
    assert shown["input"] == ["Rome"]


def test_purge_history_by_id(cli: Cli, worker: WorkerThread) -> None:
    finished, running = unique("purge"), unique("purge-running")
    start(cli, "hello", finished, [])
    start(cli, "approval", running)
    worker.wait_for_completion(finished)

    result = cli("purge-history", "--id", finished)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"Purged the history of instance '{finished}'.",
        "Instances deleted: 1",
    ]
    gone = cli("get-runtime-status", "--id", finished)
    assert gone.returncode == 1
    assert f"no instance with ID '{finished}' found" in gone.stderr

    refused = cli("purge-history", "--id", running)
    assert refused.returncode == 1
    assert (
        "only Completed, Failed, Terminated or Canceled instances can be purged" in refused.stderr
    )
    cli("terminate", "--id", running)


def test_purge_history_by_filter(cli: Cli, worker: WorkerThread) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    prefix = unique("purgeby")
    ids = [f"{prefix}-{i}" for i in range(2)]
    for instance_id in ids:
        start(cli, "hello", instance_id, [])
    for instance_id in ids:
        worker.wait_for_completion(instance_id)

    result = cli(
        "purge-history", "--created-after", since.isoformat(), "--runtime-status", "completed",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"instancesDeleted": 2}
    remaining = cli("get-instances", "--instance-id-prefix", prefix, "--json")
    assert json.loads(remaining.stdout)["instances"] == []

    text = cli("purge-history", "--created-after", "2000-01-01", "--created-before", "2000-01-02")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        "Purged finished instances created from 2000-01-01T00:00:00Z to 2000-01-02T00:00:00Z.",
        "Instances deleted: 0",
    ]


def test_settings_from_options_and_environment(
    worker: WorkerThread, azurite: AzuriteInstance, tmp_path: Path
) -> None:
    """--task-hub-name beats host.json, --connection-string-setting picks the setting,
    environment variables override local.settings.json (as in Core Tools), and messages go to
    the control queues the hub was created with, whatever partitionCount says."""
    root = write_app_root(
        tmp_path / "other",
        "SomeOtherHub",
        {"MyStorage": "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.1:1"},
        {"storageProvider": {"partitionCount": 3}},
    )
    instance_id = unique("settings")
    options = ["--task-hub-name", worker.hub, "--connection-string-setting", "MyStorage"]
    env = clean_environment(MyStorage=azurite.connection_string)
    result = run_cli(
        "start-new", "--function-name", "hello", "--id", instance_id, "--app-root", str(root),
        *options, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (
        f"note: task hub '{worker.hub}' has 4 partitions (partitionCount is 3); using 4"
    )
    worker.wait_for_completion(instance_id)
    status = run_cli("get-runtime-status", "--id", instance_id, *options, cwd=root, env=env)
    assert re.search(r"Runtime status\s+Completed", status.stdout), status.stderr
