"""A `durable-ext start` host with all three keys set, serving `keyed_app.py`, for the module."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.azurite import AzuriteInstance
from tests.sample_app.host_process import LocalHostProcess, make_app_root

APP_SOURCE = Path(__file__).with_name("keyed_app.py")


@dataclass(frozen=True)
class Keys:
    """The host's keys: all of the same length, so a wrong key differs only in content."""

    system: str
    function: str
    master: str

    def all(self) -> tuple[str, str, str]:
        return (self.system, self.function, self.master)


@dataclass
class KeyedHost:
    """The running host, its keys and the storage account key its connection string holds."""

    process: LocalHostProcess
    keys: Keys
    account_key: str

    @property
    def base_url(self) -> str:
        return self.process.base_url


def wrong_like(key: str) -> str:
    """A key of the same length and alphabet that differs in its last character only."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


@pytest.fixture(scope="module")
def keyed_host(
    azurite: AzuriteInstance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KeyedHost]:
    """The host, started once for the module and stopped with SIGTERM after it."""
    keys = Keys(*(secrets.token_urlsafe(32) for _ in range(3)))
    root = make_app_root(
        tmp_path_factory.mktemp("keyed_app"),
        code=[],
        hub_name="Access" + secrets.token_hex(4),
        connection_string=azurite.connection_string,
        values={
            "DURABLE_EXT_SYSTEM_KEY": keys.system,
            "DURABLE_EXT_FUNCTION_KEY": keys.function,
            "DURABLE_EXT_MASTER_KEY": keys.master,
        },
    )
    shutil.copy2(APP_SOURCE, root / "function_app.py")
    process = LocalHostProcess(root)
    process.launch()
    try:
        process.wait_ready()
    except BaseException:
        process.kill()
        raise
    account_key = azurite.connection_string.split("AccountKey=")[1].split(";")[0]
    try:
        yield KeyedHost(process, keys, account_key)
    finally:
        process.stop()
