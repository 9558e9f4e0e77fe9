"""The embedded engine (inside the Python worker) refuses to start in Azure without host.json."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from durable_ext import DFApp
from durable_ext.host.embedded import start_embedded
from durable_ext.settings import HostJsonError


def test_embedded_engine_in_azure_without_host_json_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def engines() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "durable-ext-worker"}

    before = engines()  # other tests' embedded engines may still run
    monkeypatch.setenv("AzureWebJobsScriptRoot", str(tmp_path))
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "0123abcd")
    monkeypatch.setenv("AzureFunctionsJobHost__extensions__durableTask__hubName", "EnvHub")
    with pytest.raises(HostJsonError) as error:
        start_embedded(DFApp())
    assert error.value.path == tmp_path / "host.json"
    assert "host.json not found; in Azure" in error.value.cause
    assert engines() == before, "no engine thread may start"
