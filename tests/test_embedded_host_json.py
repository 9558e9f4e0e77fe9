"""The embedded engine (inside the Python worker) does not run in Azure without host.json: it
reports why instead of raising at import or silently using another task hub."""

from __future__ import annotations

from pathlib import Path

import pytest

from durable_ext import DFApp
from durable_ext.host.embedded import (
    EngineUnavailableError,
    engine_status,
    engine_unavailable_reason,
    start_embedded,
    stop_embedded,
)
from durable_ext.host.engine_status import EngineState
from tests.wait import wait_for


async def test_embedded_engine_in_azure_without_host_json_reports_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureWebJobsScriptRoot", str(tmp_path))
    monkeypatch.setenv("WEBSITE_INSTANCE_ID", "0123abcd")
    monkeypatch.setenv("AzureFunctionsJobHost__extensions__durableTask__hubName", "EnvHub")
    app = DFApp()
    engine = start_embedded(app)  # returns at once, whatever the settings
    try:
        await wait_for(lambda: engine_status(app).state is EngineState.FAILED, timeout=10)
        status = engine_status(app)
        assert status.last_error is not None and status.last_error.startswith("HostJsonError: ")
        assert "host.json not found; in Azure" in status.last_error
        assert status.hub_name is None and status.owned_partitions == ()
        reason = engine_unavailable_reason(app)
        assert reason is not None and "host.json not found; in Azure" in reason
        with pytest.raises(EngineUnavailableError, match="host.json not found"):
            await engine.client()
    finally:
        stop_embedded(app)
    assert not engine.alive
    assert engine_status(app).state is EngineState.STOPPED
