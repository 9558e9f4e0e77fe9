"""Activities in an app the host indexes: host bindings on them are refused at registration with
the alternative named, and an activity may take `context` like any function."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import aiohttp
import pytest

from tests.azurite import AzuriteInstance
from tests.functions_host import FakeHost, WorkerIndexingError
from tests.functions_host.conftest import APPS


async def test_a_blob_output_on_an_activity_fails_at_registration_naming_the_alternative() -> None:
    with pytest.raises(WorkerIndexingError) as failed:
        async with FakeHost(APPS / "activity_binding"):
            pass
    message = str(failed.value)
    assert "TypeError: activity 'archive_order'" in message
    assert "@app.blob_output" in message and "Azure SDK inside an activity" in message


async def test_an_activity_takes_context(
    azurite: AzuriteInstance, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    shutil.copy2(APPS / "activity_context" / "function_app.py", tmp_path / "function_app.py")
    hub = "Ctx" + secrets.token_hex(4)
    host_json = {"version": "2.0", "extensions": {"durableTask": {"hubName": hub}}}
    (tmp_path / "host.json").write_text(json.dumps(host_json))
    settings = {"AzureWebJobsStorage": azurite.connection_string}
    async with (
        FakeHost(tmp_path, app_settings=settings) as host,
        http.post(host.url("start"), json="hello") as response,
    ):
        assert response.status == 200, await response.text()
        assert await response.json() == {
            "value": "hello",
            "function_name": "introspect",
            "instance_id": "ctx-1",
            "has_invocation_id": True,
        }
