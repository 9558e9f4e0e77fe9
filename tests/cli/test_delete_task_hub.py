"""`delete-task-hub`: --yes deletes, no TTY refuses, a TTY asks."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

from azure.storage.queue import QueueServiceClient

from tests.azurite import AzuriteInstance
from tests.cli.conftest import SCRIPT, Cli, clean_environment


def create_hub(cli: Cli) -> None:
    started = cli("start-new", "--function-name", "hello", "--id", "first")
    assert started.returncode == 0, started.stderr
    assert "did not exist" in started.stderr  # start-new creates a missing hub, and says so


def hub_exists(cli: Cli) -> bool:
    result = cli("get-instances")
    assert result.returncode == 0 or "does not exist" in result.stderr, result.stderr
    return result.returncode == 0


def wake_up_queue(azurite: AzuriteInstance, hub_name: str) -> int | None:
    """Messages in the hub's wake-up queue; None when it does not exist."""
    with QueueServiceClient.from_connection_string(azurite.connection_string) as service:
        names = {q.name for q in service.list_queues(name_starts_with=hub_name.lower())}
        if f"{hub_name.lower()}-wakeup" not in names:
            return None
        queue = service.get_queue_client(f"{hub_name.lower()}-wakeup")
        return queue.get_queue_properties().approximate_message_count


def test_delete_with_yes(cli: Cli, hub_name: str, azurite: AzuriteInstance) -> None:
    create_hub(cli)
    assert wake_up_queue(azurite, hub_name) == 1  # start-new wakes an app scaled to zero
    result = cli("delete-task-hub", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Task hub '{hub_name}' deleted."
    assert not hub_exists(cli)
    assert wake_up_queue(azurite, hub_name) is None  # deleted with the hub

    again = cli("delete-task-hub", "--yes", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"taskHub": hub_name, "deleted": False}


def test_refuses_without_yes_when_stdin_is_not_a_terminal(cli: Cli) -> None:
    create_hub(cli)
    result = cli("delete-task-hub")
    assert result.returncode == 2
    assert "refusing to delete the task hub without confirmation" in result.stderr
    assert "pass --yes" in result.stderr
    assert hub_exists(cli)


def ask_on_a_terminal(app_root: Path, answer: str) -> tuple[int, str]:
    """Run delete-task-hub with a pseudo-terminal as stdin and type `answer`."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(SCRIPT), "delete-task-hub"],
            cwd=app_root,
            env=clean_environment(),
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(controller, f"{answer}\n".encode())
        out, err = process.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    return process.returncode, out + err


def test_asks_on_a_terminal(cli: Cli, app_root: Path, hub_name: str) -> None:
    create_hub(cli)
    code, output = ask_on_a_terminal(app_root, "n")
    assert code == 1
    assert f"Delete task hub '{hub_name}'" in output and "[y/N]" in output
    assert f"aborted; task hub '{hub_name}' was not deleted" in output
    assert hub_exists(cli)

    code, output = ask_on_a_terminal(app_root, "y")
    assert code == 0, output
    assert f"Task hub '{hub_name}' deleted." in output
    assert not hub_exists(cli)
