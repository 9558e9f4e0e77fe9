"""The function app of the `durable-ext start` SIGTERM test (copied into each app root as
`function_app.py`).

`POST /api/orchestrators/{name}?instance_id=ID` starts an orchestration. `fan_out({"count": n,
"ms": t})` runs n `work` activities at once and returns their results in order (`expected_fan_out`).
Every `work` call appends `start KEY PID` to the file named by the `FAN_OUT_LOG` app setting, sleeps
t ms, then appends `end KEY PID` (each line one `write` on an O_APPEND descriptor, so the lines of
two processes never interleave): a key started twice is an activity that ran twice.
"""

import os
import time
from collections.abc import Generator
from typing import Any

import azure.functions as func

import durable_ext as df

LOG_SETTING = "FAN_OUT_LOG"

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def work_value(key: int) -> int:
    """What `work` returns for `key`."""
    return key * 10 + 1


def expected_fan_out(count: int) -> list[int]:
    """The output of `fan_out({"count": count, ...})`."""
    return [work_value(key) for key in range(count)]


def _record(event: str, key: int) -> None:
    descriptor = os.open(os.environ[LOG_SETTING], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, f"{event} {key} {os.getpid()}\n".encode())
    finally:
        os.close(descriptor)


@app.route(route="orchestrators/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    instance_id = await client.start_new(
        req.route_params["name"], req.params.get("instance_id"), req.get_json()
    )
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext) -> Generator[Any, Any, list[int]]:
    spec = context.get_input()
    tasks = [
        context.call_activity("work", {"key": key, "ms": spec["ms"]})
        for key in range(spec["count"])
    ]
    return (yield context.task_all(tasks))


@app.activity_trigger(input_name="item")
def work(item: dict[str, int]) -> int:
    _record("start", item["key"])
    time.sleep(item["ms"] / 1000)
    _record("end", item["key"])
    return work_value(item["key"])
