"""The bench's function app: the orchestrators and activities of bench/engines/ours.py (the same
functions, so both modes run the same code) and an HTTP starter, as a user's app has them.

`POST /api/orchestrators/{functionName}` starts an orchestration (the JSON body is its input) and
answers `client.create_check_status_response` (202 and the management URLs). With the environment
variable of `bench.http_app.hook` set, the host also counts its storage requests (see there).
"""

import os

import azure.functions as func

import durable_ext as df
from bench.engines import ours
from bench.http_app import hook

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

for _name, _orchestrator in (
    ("Sequential", ours.sequential),
    ("FanOut", ours.fan_out),
    ("HelloCities", ours.hello_cities),
    ("Events", ours.events),
    ("OneActivity", ours.one_activity),
):
    app.orchestration_trigger(context_name="context", orchestration=_name)(_orchestrator)
app.activity_trigger(input_name="value", activity="Noop")(ours.noop)
app.activity_trigger(input_name="city", activity="SayHello")(ours.say_hello)


@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(
        req.route_params["functionName"], None, req.get_json() if body else None
    )
    return client.create_check_status_response(req, instance_id)


if os.environ.get(hook.ENVIRONMENT_VARIABLE):
    hook.install(app)
