"""The function app of the access tests (copied into the test's app root as `function_app.py`).

One HTTP function per auth level, one that always fails (a 500 whose body must not leak anything),
and an orchestration starter behind a function key.
"""

import azure.functions as func

import durable_ext as df

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="open", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def open_door(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("open")


@app.route(route="keyed", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def keyed_door(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("keyed")


@app.route(route="admin", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_door(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin")


@app.route(route="broken", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def broken_door(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this function fails on purpose")


@app.route(route="start/{name}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new(req.route_params["name"], None, req.get_json())
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def greet(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("say", context.get_input()))


@app.orchestration_trigger(context_name="context")
def fail(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("explode", context.get_input()))


@app.activity_trigger(input_name="value")
def say(value: str) -> str:
    return f"hello {value}"


@app.activity_trigger(input_name="value")
def explode(value: str) -> str:
    raise ValueError(f"explode refuses {value!r}")
