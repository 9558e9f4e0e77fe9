"""The sample app (function_app/) served by `durable-ext start` in a subprocess, on the test Azurite."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.azurite import AzuriteInstance
from tests.sample_app.host_process import (
    REPO_ROOT,
    LocalHostProcess,
    assert_stopped_cleanly,
    make_app_root,
)


@pytest.fixture(scope="module")
def sample_host(
    azurite: AzuriteInstance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalHostProcess]:
    """The host serving a copy of the repository's app root, on a task hub of its own. It is
    stopped with SIGTERM after the module's tests and must exit 0, cleanly."""
    app_root = make_app_root(
        tmp_path_factory.mktemp("sample_app"),
        code=[REPO_ROOT / "function_app", REPO_ROOT / "function_app.py"],
        hub_name="Sample" + secrets.token_hex(4),
        connection_string=azurite.connection_string,
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
