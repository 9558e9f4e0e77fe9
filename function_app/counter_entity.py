"""A counter entity, as in the `azure-functions-durable` counter sample: the code is the SDK's
programming model and would run there unchanged with `import azure.durable_functions as df`.

- `POST /api/orchestrators/counter_orchestration`: an orchestrator signals `add 3` to
  `Counter@myCounter`, then calls `get` (the signal runs first: one sender's operations run in
  order).
- `POST /api/counters/{key}/add` (JSON body: the amount) signals from a client;
  `GET /api/counters/{key}` reads the state (404 when the entity does not exist).
- The management API reaches it too: `POST /runtime/webhooks/durabletask/entities/Counter/{key}?op=add`.
"""

import json

import azure.functions as func

import durable_ext as df

bp = df.Blueprint()


@bp.entity_trigger(context_name="context")
def Counter(context: df.DurableEntityContext):  # noqa: N802 - the entity's name, as in the SDK sample
    current_value = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        current_value += context.get_input()
    elif operation == "reset":
        current_value = 0
    elif operation == "get":
        context.set_result(current_value)
    context.set_state(current_value)


@bp.orchestration_trigger(context_name="context")
def counter_orchestration(context: df.DurableOrchestrationContext):
    entity_id = df.EntityId("Counter", "myCounter")
    context.signal_entity(entity_id, "add", 3)
    state = yield context.call_entity(entity_id, "get")
    return state


@bp.route(route="counters/{key}/add", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def add_to_counter(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    entity_id = df.EntityId("Counter", req.route_params["key"])
    await client.signal_entity(entity_id, "add", req.get_json())
    return func.HttpResponse(status_code=202)


@bp.route(route="counters/{key}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def read_counter(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    entity_id = df.EntityId("Counter", req.route_params["key"])
    response = await client.read_entity_state(entity_id)
    if not response.entity_exists:
        return func.HttpResponse("Entity not found", status_code=404)
    body = {"key": entity_id.key, "state": response.entity_state}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
