"""A starter whose durable client names another task hub (`%OtherHub%`, an app setting)."""

import json

import azure.functions as func

import durable_ext as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="start", methods=["POST"])
@app.durable_client_input(client_name="client", task_hub="%OtherHub%")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("remote_orchestrator", "remote-1", req.get_json())
    body = {"hub": client.task_hub_name, "id": instance_id}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
