"""Eternal orchestration: periodic cleanup that restarts itself with `continue_as_new`.

It runs as a singleton with the fixed instance id `periodic-cleanup`: `POST /api/cleanup` starts it
(the JSON body may set `intervalSeconds`, default 3600) and answers 409 while it is running. Stop it
with the `terminatePostUri` of the start response.
"""

import logging
from datetime import timedelta
from typing import Any

import azure.functions as func

import durable_ext as df
from durable_ext.client import InstanceAlreadyExistsError

bp = df.Blueprint()

INSTANCE_ID = "periodic-cleanup"


@bp.route(route="cleanup", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_cleanup(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    settings = req.get_json() if req.get_body() else {}
    try:
        # start_new refuses to replace a Pending, Running or Suspended instance with the same id
        # (a finished one is replaced), which is exactly the singleton rule.
        await client.start_new("periodic_cleanup", INSTANCE_ID, {**settings, "iteration": 1})
    except InstanceAlreadyExistsError:
        return func.HttpResponse(f"Instance '{INSTANCE_ID}' is already running.", status_code=409)
    return client.create_check_status_response(req, INSTANCE_ID)


@bp.orchestration_trigger(context_name="context")
def periodic_cleanup(context: df.DurableOrchestrationContext):
    settings: dict[str, Any] = context.get_input()
    removed = yield context.call_activity(clean_up, settings["iteration"])
    context.set_custom_status({"iteration": settings["iteration"], "removed": removed})

    interval = timedelta(seconds=settings.get("intervalSeconds", 3600))
    yield context.create_timer(context.current_utc_datetime + interval)
    # Start over with a fresh, empty history: an eternal loop must not grow its history forever.
    context.continue_as_new({**settings, "iteration": settings["iteration"] + 1})


@bp.activity_trigger(input_name="iteration")
def clean_up(iteration: int) -> int:
    # Stands in for deleting expired records, temp files, old blobs...; returns how many it removed.
    logging.info("Cleanup run %d", iteration)
    return 0
