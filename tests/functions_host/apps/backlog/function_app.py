"""A fan-out whose activities wait until the test releases them, so a backlog lasts as long as
the test needs to watch it."""

import os
import threading

import azure.functions as func

import durable_ext as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
release = threading.Event()
"""Set by the test (the fake host imports this module in the test's process)."""


@app.route(route="fan_out/{count:int}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("fan_out", None, int(req.route_params["count"]))
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    results = yield context.task_all(
        [context.call_activity(wait_for_release, i) for i in range(context.get_input())]
    )
    return sum(results)


@app.activity_trigger(input_name="item")
def wait_for_release(item: int) -> int:
    if not release.wait(60):
        raise TimeoutError("the test never released the activities")
    return item


if os.environ.get("AzureWebJobsScriptRoot"):  # noqa: SIM112 - the host's own spelling
    from durable_ext.host.embedded import start_embedded

    start_embedded(app)
