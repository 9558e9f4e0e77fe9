"""Async HTTP APIs: generic HTTP starters for every orchestrator of the app.

`POST /api/orchestrators/{functionName}[?instanceId=...]` starts an orchestration (the JSON body,
if any, is its input) and answers 202 with the management URLs: poll `statusQueryGetUri` until it
answers 200 with the output. It answers 409 if an instance with that id is still running.

`POST /api/orchestrators/{functionName}/wait[?timeout=seconds]` (GET works too) also starts one but
waits up to `timeout` seconds (default 10) for it to finish: 200 with the output if it does, the
same 202 as above if it does not.
"""

import logging
from typing import Any

import azure.functions as func

import durable_ext as df
from durable_ext.client import InstanceAlreadyExistsError

bp = df.Blueprint()


@bp.route(route="orchestrators/{functionName}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def http_start(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    try:
        instance_id = await _start(req, client)
    except ValueError as error:  # unknown orchestrator, invalid instance id or body
        return func.HttpResponse(str(error), status_code=400)
    except InstanceAlreadyExistsError as error:
        return func.HttpResponse(str(error), status_code=409)
    return client.create_check_status_response(req, instance_id)


@bp.route(route="orchestrators/{functionName}/wait", methods=["GET", "POST"])
@bp.durable_client_input(client_name="client")
async def http_start_and_wait(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    try:
        timeout_ms = max(int(float(req.params.get("timeout", "10")) * 1000), 1)
        instance_id = await _start(req, client)
    except ValueError as error:
        return func.HttpResponse(str(error), status_code=400)
    except InstanceAlreadyExistsError as error:
        return func.HttpResponse(str(error), status_code=409)
    return await client.wait_for_completion_or_create_check_status_response(
        req,
        instance_id,
        timeout_in_milliseconds=timeout_ms,
        retry_interval_in_milliseconds=min(500, timeout_ms),
    )


async def _start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> str:
    function_name = req.route_params["functionName"]
    instance_id = await client.start_new(
        function_name, req.params.get("instanceId"), _json_body(req)
    )
    logging.info("Started orchestration %s with ID = '%s'.", function_name, instance_id)
    return instance_id


def _json_body(req: func.HttpRequest) -> Any:
    """The JSON body, or None when there is none (ValueError if it is not JSON)."""
    return req.get_json() if req.get_body() else None
