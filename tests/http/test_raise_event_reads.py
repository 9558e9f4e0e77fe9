"""raiseEvent reads the instance once with the `raise_reads_once` lever (the default) and twice
without it; both answer every case the same (404, 400s before the body, 202, 410)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from durable_ext import OrchestrationRuntimeStatus, http_api
from durable_ext.http_api import ApiLevers
from tests.http.functions import registry, wait_for_status

RUNNING = OrchestrationRuntimeStatus.Running
COMPLETED = OrchestrationRuntimeStatus.Completed


@pytest.fixture(params=[True, False], ids=["reads_once", "reads_twice"])
def reads_once(request: pytest.FixtureRequest) -> Iterator[bool]:
    http_api.set_levers(ApiLevers(raise_reads_once=request.param))
    try:
        yield request.param
    finally:
        http_api.set_levers(ApiLevers())


async def test_raise_event_reads_the_instance_once_and_answers_the_same(
    api, reads_once: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with api(registry()) as a:
        store = a.client.task_hub.instances
        reads: list[str] = []
        read = store.get

        async def counted(instance_id: str, *args: Any, **kwargs: Any) -> Any:
            reads.append(instance_id)
            return await read(instance_id, *args, **kwargs)

        monkeypatch.setattr(store, "get", counted)
        missing = await a.call("POST", "/instances/nope/raiseEvent/go", json=1)
        assert missing.status == 404
        assert await missing.json() == {"error": "No instance with ID 'nope' found."}
        await a.call("POST", "/orchestrators/wait_for_go/r1")
        await wait_for_status(a.client, "r1", RUNNING)
        text = await a.call(
            "POST", "/instances/r1/raiseEvent/go", data=b"1", headers={"Content-Type": "text/plain"}
        )
        assert text.status == 400
        assert "application/json" in (await text.json())["error"]

        reads.clear()
        sent = await a.call("POST", "/instances/r1/raiseEvent/go", json="done")

        assert sent.status == 202
        assert reads == (["r1"] if reads_once else ["r1", "r1"])
        assert (await wait_for_status(a.client, "r1", COMPLETED)).output == "done"
        gone = await a.call("POST", "/instances/r1/raiseEvent/go", json=2)
        assert gone.status == 410
        assert await gone.json() == {
            "error": "Instance with ID 'r1' is gone: either completed or failed."
        }
