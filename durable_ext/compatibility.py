"""What `azure-functions-durable` offers that durable_ext does not run: clear errors that say why
and what to use instead, and the SDK's `DurableFunctionsCompatibilityWarning`."""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = [
    "DurableFunctionsCompatibilityWarning",
    "UnsupportedFeatureError",
    "Orchestrator",
    "V1_MODEL_MESSAGE",
    "OPENAI_AGENTS_MESSAGE",
]


class DurableFunctionsCompatibilityWarning(UserWarning):
    """Warns about an app configuration that future releases will not support (the SDK's name)."""


class UnsupportedFeatureError(NotImplementedError):
    """A feature of `azure-functions-durable` that durable_ext does not provide."""


V1_MODEL_MESSAGE = (
    "The v1 programming model (a folder per function with function.json and "
    "`main = df.Orchestrator.create(fn)`) is not supported by durable_ext: its engine runs "
    "orchestrators in the app's own process, and the "
    "Functions host would look for the Durable Functions extension's orchestrationTrigger and "
    "durableClient bindings instead. Use the v2 model: `app = df.DFApp()` in function_app.py, "
    "`@app.orchestration_trigger(context_name='context')` on the generator function, and "
    "`@app.durable_client_input(client_name='client')` on the starter (see docs/getting-started.md)."
)

OPENAI_AGENTS_MESSAGE = (
    "durable_openai_agent_orchestrator (the OpenAI Agents SDK integration, a preview of "
    "azure-functions-durable that its 2.x drops) is not supported by durable_ext. Write the agent "
    "loop as an orchestrator: call the model from an activity (`yield "
    "context.call_activity('run_model', request)`) so each model call is checkpointed."
)


class Orchestrator:
    """The v1 model's `Orchestrator.create(fn)`: unsupported, it raises at import of the
    function's module with what to use instead."""

    def __init__(self, activity_func: Any) -> None:
        raise UnsupportedFeatureError(V1_MODEL_MESSAGE)

    def handle(self, context: Any) -> NoReturn:
        raise UnsupportedFeatureError(V1_MODEL_MESSAGE)

    @classmethod
    def create(cls, fn: Any) -> NoReturn:
        raise UnsupportedFeatureError(V1_MODEL_MESSAGE)
