"""The function app of the dashboard's browser tests (copied into the app root as
`function_app.py`): orchestrations that complete, fail, wait for an event, fan out and continue as new."""

import asyncio
from datetime import timedelta

import azure.functions as func

import durable_ext as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.orchestration_trigger(context_name="context")
def quick(context: df.DurableOrchestrationContext):
    return context.get_input()
    yield  # an orchestrator is a generator


@app.orchestration_trigger(context_name="context")
def fails(context: df.DurableOrchestrationContext):
    yield context.call_activity("explode", context.get_input())


@app.orchestration_trigger(context_name="context")
def waits(context: df.DurableOrchestrationContext):
    context.set_custom_status("waiting for approve")
    approval = yield context.wait_for_external_event("approve")
    return {"approved": approval}


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    width = context.get_input() or 3
    results = yield context.task_all(
        [context.call_activity("work", i) for i in range(width)]
        + [context.call_sub_orchestrator("quick", "child")]
    )
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=1))
    return results


@app.orchestration_trigger(context_name="context")
def again(context: df.DurableOrchestrationContext):
    round_ = context.get_input() or 0
    if round_ < 2:
        context.continue_as_new(round_ + 1)
        return None
    yield context.call_activity("work", round_)
    return f"round {round_}"


@app.activity_trigger(input_name="value")
def explode(value: str) -> str:
    raise ValueError(f"cannot process {value!r}")


@app.activity_trigger(input_name="index")
async def work(index: int) -> int:
    await asyncio.sleep(0.2 * (index % 4))
    return index * index
