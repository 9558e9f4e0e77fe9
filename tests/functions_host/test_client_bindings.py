"""`durable_client_input(task_hub=..., connection_name=...)` in the Azure-like host and under
`durable-ext start`: the client reaches the hub the binding names, not the app's own."""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path

import aiohttp

from durable_ext import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.worker import FunctionRegistry
from tests.azurite import AzuriteInstance
from tests.functions_host import FakeHost
from tests.functions_host.conftest import APPS
from tests.sample_app.host_process import (
    LocalHostProcess,
    assert_stopped_cleanly,
    make_app_root,
)
from tests.sample_app.host_process import (
    http as request,
)


async def test_a_client_binding_reaches_the_task_hub_it_names(
    azurite: AzuriteInstance, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    shutil.copy2(APPS / "other_hub" / "function_app.py", tmp_path / "function_app.py")
    own, other = "Own" + secrets.token_hex(4), "Other" + secrets.token_hex(4)
    host_json = {"version": "2.0", "extensions": {"durableTask": {"hubName": own}}}
    (tmp_path / "host.json").write_text(json.dumps(host_json))
    settings = {"AzureWebJobsStorage": azurite.connection_string, "OtherHub": other}
    remote = Runtime(
        FunctionRegistry(), connection=azurite.connection_string, hub=other, run_worker=False
    )
    async with remote:
        async with (
            FakeHost(tmp_path, app_settings=settings) as host,
            http.post(host.url("start"), json={"n": 1}) as response,
        ):
            assert response.status == 200, await response.text()
            assert await response.json() == {"hub": other, "id": "remote-1"}
        status = await remote.client.get_status("remote-1", show_input=True)
    assert status.runtime_status is OrchestrationRuntimeStatus.Pending
    assert status.name == "remote_orchestrator" and status.input_ == {"n": 1}


async def test_a_client_binding_reaches_the_task_hub_it_names_under_the_local_host(
    azurite: AzuriteInstance, tmp_path: Path
) -> None:
    other = "Other" + secrets.token_hex(4)
    root = make_app_root(
        tmp_path / "app",
        code=[APPS / "other_hub" / "function_app.py"],
        hub_name="Own" + secrets.token_hex(4),
        connection_string=azurite.connection_string,
        values={"OtherHub": other},
    )
    remote = Runtime(
        FunctionRegistry(), connection=azurite.connection_string, hub=other, run_worker=False
    )
    async with remote:
        host = LocalHostProcess(root)
        host.launch()
        try:
            host.wait_ready()
            response = request("POST", f"{host.base_url}/api/start", {"n": 2})
        except BaseException:
            host.kill()
            raise
        assert_stopped_cleanly(host)
        assert response.status == 200, response.text
        assert response.json() == {"hub": other, "id": "remote-1"}
        status = await remote.client.get_status("remote-1", show_input=True)
    assert status.runtime_status is OrchestrationRuntimeStatus.Pending
    assert status.input_ == {"n": 2}
