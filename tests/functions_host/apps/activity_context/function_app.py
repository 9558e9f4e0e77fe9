"""An activity that takes `context`, started through an HTTP starter."""

import azure.functions as func

import durable_ext as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("describe", "ctx-1", req.get_json())
    return await client.wait_for_completion_or_create_check_status_response(
        req, instance_id, timeout_in_milliseconds=20000, retry_interval_in_milliseconds=100
    )


@app.orchestration_trigger(context_name="context")
def describe(context: df.DurableOrchestrationContext):
    return (yield context.call_activity(introspect, context.get_input()))


@app.activity_trigger(input_name="value")
def introspect(value: str, context) -> dict:
    return {
        "value": value,
        "function_name": context.function_name,
        "instance_id": context.instance_id,
        "has_invocation_id": bool(context.invocation_id),
    }
