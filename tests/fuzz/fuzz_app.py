"""The function app the management API fuzz tests run (copied into the app root as
`function_app.py`): an orchestrator that finishes, one that waits for an event, one that fails."""

import azure.functions as func

import durable_ext as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def hello(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("say", context.get_input()))


@app.orchestration_trigger(context_name="context")
def wait_for_go(context: df.DurableOrchestrationContext):
    return (yield context.wait_for_external_event("go"))


@app.orchestration_trigger(context_name="context")
def fails(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("explode", context.get_input()))


@app.activity_trigger(input_name="value")
def say(value: object) -> str:
    return f"hello {value}"


@app.activity_trigger(input_name="value")
def explode(value: object) -> str:
    raise ValueError("explode always fails")
