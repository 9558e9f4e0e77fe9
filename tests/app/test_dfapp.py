"""DFApp / Blueprint: registration, naming, blueprints, the client middleware, misuse errors."""

from __future__ import annotations

import inspect

import azure.functions as func
import pytest

import durable_ext as df
from durable_ext.host.engine_functions import ENGINE_FUNCTIONS
from durable_ext.management_functions import DASHBOARD_FUNCTION, MANAGEMENT_FUNCTIONS
from durable_ext.testing import run_orchestration

MANAGEMENT_NAMES = [name for name, *_ in MANAGEMENT_FUNCTIONS]


def user_functions(app: df.DFApp) -> list[func.Function]:
    """The app's own functions: not the management functions, the dashboard page nor the
    engine's heartbeat and health, which every DFApp registers."""
    built_in = {*MANAGEMENT_NAMES, DASHBOARD_FUNCTION, *ENGINE_FUNCTIONS}
    return [f for f in app.get_functions() if f.get_function_name() not in built_in]


def make_app() -> df.DFApp:
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.activity_trigger(input_name="city")
    def say_hello(city: str) -> str:
        return f"Hello {city}"

    @app.orchestration_trigger(context_name="context")
    def hello(context: df.DurableOrchestrationContext):
        first = yield context.call_activity(say_hello, "Tokyo")
        second = yield context.call_activity("say_hello", "Seattle")
        return [first, second]

    @app.route(route="start/{name}")
    @app.durable_client_input(client_name="client")
    async def starter(
        req: func.HttpRequest, client: df.DurableOrchestrationClient
    ) -> func.HttpResponse:
        return func.HttpResponse(await client.start_new(req.route_params["name"]))

    app.say_hello = say_hello  # type: ignore[attr-defined]
    app.hello = hello  # type: ignore[attr-defined]
    return app


def test_durable_functions_are_registered_not_indexed() -> None:
    app = make_app()
    assert app.durable_registry.orchestrator_names == ["hello"]
    assert app.durable_registry.activity_names == ["say_hello"]
    functions = user_functions(app)
    assert [f.get_function_name() for f in functions] == ["starter"]
    assert {b.type for b in functions[0].get_bindings()} == {"httpTrigger", "http"}


def test_client_parameter_is_hidden_from_the_host() -> None:
    [starter] = user_functions(make_app())
    user_function = starter.get_user_function()
    assert list(inspect.signature(user_function).parameters) == ["req"]
    assert "client" not in user_function.__annotations__
    assert inspect.signature(user_function.client_function).parameters.keys() == {"req", "client"}


def test_decorated_functions_stay_callable_and_expose_the_sdk_test_hooks() -> None:
    app = make_app()
    assert app.say_hello("Oslo") == "Hello Oslo"
    assert app.hello.build().get_user_function().orchestrator_function.__name__ == "hello"


def test_orchestrator_runs_with_decorated_activity_references() -> None:
    app = make_app()
    result = run_orchestration(app.hello, activities={"say_hello": app.say_hello})
    assert result.output == ["Hello Tokyo", "Hello Seattle"]


def test_function_name_renames_durable_functions() -> None:
    app = df.DFApp()

    @app.function_name("Greeter")
    @app.activity_trigger(input_name="name")
    def greet(name: str) -> str:
        return name

    assert app.durable_registry.activity_names == ["Greeter"]
    assert greet.name == "Greeter"


def test_blueprints_merge_into_the_app() -> None:
    bp = df.Blueprint()

    @bp.orchestration_trigger(context_name="context", orchestration="Named")
    def orchestrator(context: df.DurableOrchestrationContext):
        return None
        yield

    app = df.DFApp()
    app.register_functions(bp)
    assert app.durable_registry.orchestrator_names == ["Named"]
    assert bp.owner is app


def test_async_orchestrators_are_rejected_when_decorated() -> None:
    app = df.DFApp()
    with pytest.raises(TypeError, match="generator functions"):

        @app.orchestration_trigger(context_name="context")
        async def orchestrator(context: df.DurableOrchestrationContext) -> None:
            return None


def test_activity_input_name_must_be_a_parameter() -> None:
    app = df.DFApp()
    with pytest.raises(TypeError, match="no parameter named 'payload'"):

        @app.activity_trigger(input_name="payload")
        def work(data: str) -> str:
            return data


def test_durable_client_input_needs_the_parameter() -> None:
    app = df.DFApp()
    with pytest.raises(TypeError, match="no parameter named 'client'"):

        @app.route(route="x")
        @app.durable_client_input(client_name="client")
        async def starter(req: func.HttpRequest) -> str:
            return ""


def test_duplicate_names_are_rejected() -> None:
    app = df.DFApp()

    @app.activity_trigger(input_name="x")
    def work(x: int) -> int:
        return x

    with pytest.raises(ValueError, match="already registered"):
        app.activity_trigger(input_name="x", activity="work")(lambda x: x)


def test_call_activity_with_an_orchestrator_reference_is_a_clear_error() -> None:
    app = make_app()

    @app.orchestration_trigger(context_name="context")
    def wrong(context: df.DurableOrchestrationContext):
        yield context.call_activity(app.hello)

    result = run_orchestration(wrong)
    assert result.status is df.OrchestrationRuntimeStatus.Failed
    assert result.failure_details is not None
    assert "expected `activityTrigger`" in result.failure_details.error_message


def test_unknown_activity_name_fails_with_the_name() -> None:
    app = make_app()
    result = run_orchestration(app.hello, activities={})
    assert result.failure_details is not None
    assert "Activity function 'say_hello' does not exist" in result.failure_details.error_message
