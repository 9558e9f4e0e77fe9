"""Shared fixtures: a private Azurite for the session and a task hub name per test.

The process management lives in `harness/azurite.py` (re-exported by `tests/azurite.py`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.azurite import AzuriteInstance
from tests.storage.raw_state import RawStorage

HUB_NAME_MAX = 45


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteInstance]:
    """A private Azurite for the whole test session: free ports, a temp folder, data on disk
    (a test may stop() and start() it without losing what other tests wrote; it must restart
    it before returning, or use `private_azurite` instead)."""
    instance = AzuriteInstance(tmp_path_factory.mktemp("azurite"))
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def private_azurite(tmp_path: Path) -> Iterator[AzuriteInstance]:
    """An Azurite of this test's own (own ports, own folder, data on disk), for fault tests
    that stop, kill or restart storage without disturbing the session one."""
    instance = AzuriteInstance(tmp_path / "azurite")
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def hub_name(request: pytest.FixtureRequest) -> str:
    """A unique task hub name for this test: letters and digits, starts with a letter,
    at most 45 characters, e.g. `Tqueueroundtrip3f9a1c`."""
    test_name = re.sub(r"^test_?", "", request.node.name)
    cleaned = re.sub(r"[^A-Za-z0-9]", "", test_name)
    suffix = secrets.token_hex(3)
    return "T" + cleaned[: HUB_NAME_MAX - 1 - len(suffix)] + suffix


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use Azurite get the `azurite` marker: `pytest -m "not azurite"` skips them."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "azurite" in fixtures or "private_azurite" in fixtures:
            item.add_marker(pytest.mark.azurite)


@pytest.fixture
async def raw(azurite: AzuriteInstance) -> AsyncIterator[RawStorage]:
    """Plain Azure SDK clients on the session Azurite, for reading raw storage state."""
    async with RawStorage(azurite.connection_string) as storage:
        yield storage
