"""Function chaining: call activities one after another, each output feeding the result.

Start it with `POST /api/orchestrators/hello_sequence` (see async_http_api.py).
"""

import durable_ext as df

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext):
    result1 = yield context.call_activity(say_hello, "Tokyo")
    result2 = yield context.call_activity(say_hello, "Seattle")
    result3 = yield context.call_activity(say_hello, "London")
    return [result1, result2, result3]


@bp.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    return f"Hello {city}!"
