"""`DFApp` and `Blueprint`: the `azure-functions-durable` decorators, backed by our worker.

Orchestrators, activities and entities are registered with the app's `FunctionRegistry` and never
appear among the functions the Azure Functions host indexes: the host only sees bindings it runs
natively (HTTP, timers, queues...). `durable_client_input` hides the client parameter from the host
and injects a `DurableOrchestrationClient` when the function runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from azure.functions import AuthLevel, BindingApi, FunctionRegister, SettingsApi, TriggerApi
from azure.functions.decorators.function_app import FunctionBuilder

from .client import DurableOrchestrationClient
from .compatibility import OPENAI_AGENTS_MESSAGE, UnsupportedFeatureError
from .management_functions import register_management_functions
from .orchestration.entity_class import class_entity_function
from .worker.registry import FunctionRegistry

__all__ = ["Blueprint", "DFApp", "DurableFunction", "set_client_provider", "ClientProvider"]

ClientProvider = Callable[
    ["Blueprint", str | None, str | None], Awaitable[DurableOrchestrationClient]
]
_client_provider: ClientProvider | None = None


def set_client_provider(provider: ClientProvider | None) -> None:
    """Install the function that gives durable-client functions their client (the host does this)."""
    global _client_provider
    _client_provider = provider


async def _client_for(
    blueprint: Blueprint, task_hub: str | None, connection: str | None
) -> DurableOrchestrationClient:
    provider = _client_provider
    if provider is None:
        from .host.embedded import embedded_client_provider

        provider = embedded_client_provider
    return await provider(blueprint.owner, task_hub, connection)


def _engine_unavailable(app: Any) -> str | None:
    """Why `app`'s embedded engine cannot serve durable calls now (None under a local host,
    which runs its own engine)."""
    if _client_provider is not None:
        return None
    from .host.embedded import engine_unavailable_reason

    return engine_unavailable_reason(app)


class DurableFunction:
    """A registered orchestrator, activity or entity. Calling it calls the user function."""

    def __init__(self, kind: str, name: str, function: Callable[..., Any], parameter: str) -> None:
        self.kind = kind
        self.name = name
        self.function = function
        self.parameter = parameter
        self.__durable_function__ = (kind, name, function)
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r}>"

    # The SDK's unit-test hooks: fn.build().get_user_function().orchestrator_function
    def build(self, *args: Any, **kwargs: Any) -> DurableFunction:
        return self

    def get_user_function(self) -> DurableFunction:
        return self

    def get_function_name(self) -> str:
        return self.name

    @property
    def orchestrator_function(self) -> Callable[..., Any]:
        return self.function

    @property
    def activity_function(self) -> Callable[..., Any]:
        return self.function

    @property
    def entity_function(self) -> Callable[..., Any]:
        return self.function


def _no_host_bindings(kind: str, name: str) -> TypeError:
    """The error for a Functions binding decorator stacked on a durable function."""
    return TypeError(
        f"{kind} {name!r}: Azure Functions binding decorators (such as @app.blob_output or "
        "@app.queue_output) cannot be used on orchestrators, activities or entities: durable_ext's "
        "engine runs them, not the Functions host, so no binding would be supplied. Use the Azure "
        "SDK inside an activity instead (for example azure.storage.blob.aio.BlobClient), or a "
        "binding on an HTTP, timer or queue function."
    )


def _plain_function(fn: Any, decorator: str) -> Callable[..., Any]:
    if isinstance(fn, FunctionBuilder):
        bindings = [b for b in fn._function.get_bindings() if b.type != "http"]
        if bindings:
            name = fn._function.get_user_function().__name__
            raise _no_host_bindings(decorator.removesuffix("_trigger"), name)
        raise TypeError(
            f"@{decorator} must be the decorator closest to the function (below @app.function_name)."
        )
    if not callable(fn):
        raise TypeError(f"@{decorator} decorates a function, got {type(fn).__name__}")
    return fn


def _client_middleware(
    owner: Blueprint,
    user: Callable[..., Any],
    client_name: str,
    task_hub: str | None,
    connection: str | None,
) -> Callable[..., Any]:
    signature = inspect.signature(user)
    if client_name not in signature.parameters:
        raise TypeError(
            f"{user.__name__}() has no parameter named {client_name!r} for the durable client "
            f"(durable_client_input(client_name={client_name!r}))"
        )

    @functools.wraps(user)
    async def with_client(*args: Any, **kwargs: Any) -> Any:
        kwargs[client_name] = await _client_for(owner, task_hub, connection)
        result = user(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    visible = [p for name, p in signature.parameters.items() if name != client_name]
    with_client.__signature__ = signature.replace(parameters=visible)  # type: ignore[attr-defined]
    with_client.__annotations__ = {
        k: v for k, v in user.__annotations__.items() if k != client_name
    }
    with_client.client_function = user  # type: ignore[attr-defined]
    return with_client


class Blueprint(TriggerApi, BindingApi, SettingsApi):
    """Functions to register into a `DFApp` (`app.register_functions(bp)`)."""

    def __init__(self, http_auth_level: AuthLevel | str = AuthLevel.FUNCTION) -> None:
        super().__init__(auth_level=http_auth_level)
        self.durable_registry = FunctionRegistry()
        self.owner: Blueprint = self

    def _validate_type(self, func: Any) -> FunctionBuilder:
        """The library's hook for every binding decorator: none may wrap a durable function."""
        if isinstance(func, DurableFunction):
            raise _no_host_bindings(func.kind.removesuffix("Trigger"), func.name)
        return super()._validate_type(func)

    def orchestration_trigger(
        self, context_name: str, orchestration: str | None = None, input_type: type | None = None
    ) -> Callable[..., Any]:
        """Register an orchestrator: a generator function taking the orchestration context."""

        def decorator(fn: Any) -> DurableFunction:
            function = _plain_function(fn, "orchestration_trigger")
            if inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
                raise TypeError(
                    f"Orchestrator {function.__name__} is async def: orchestrators must be generator "
                    "functions (def + yield); use async def for activities instead."
                )
            name = orchestration or function.__name__
            self.durable_registry.add_orchestrator(name, function, input_type)
            return DurableFunction("orchestrationTrigger", name, function, context_name)

        return decorator

    def activity_trigger(self, input_name: str, activity: str | None = None) -> Callable[..., Any]:
        """Register an activity (sync functions run on a thread pool, async ones on the loop)."""

        def decorator(fn: Any) -> DurableFunction:
            function = _plain_function(fn, "activity_trigger")
            if input_name not in inspect.signature(function).parameters:
                raise TypeError(
                    f"Activity {function.__name__}() has no parameter named {input_name!r} "
                    f"(activity_trigger(input_name={input_name!r}))"
                )
            name = activity or function.__name__
            self.durable_registry.add_activity(name, function, input_name)
            return DurableFunction("activityTrigger", name, function, input_name)

        return decorator

    def entity_trigger(
        self, context_name: str, entity_name: str | None = None
    ) -> Callable[..., Any]:
        """Register an entity function `fn(context)` (`context` a `DurableEntityContext`)."""

        def decorator(fn: Any) -> DurableFunction:
            function = _plain_function(fn, "entity_trigger")
            name = entity_name or function.__name__
            self.durable_registry.add_entity(name, function)
            return DurableFunction("entityTrigger", name, function, context_name)

        return decorator

    def entity_class(self, entity_name: str | None = None) -> Callable[[type], type]:
        """Register a class-based entity: a `durable_ext.DurableEntity` subclass whose public
        methods are its operations (docs/api.md, "Class-based entities")."""

        def decorator(cls: type) -> type:
            self.durable_registry.add_entity(entity_name or cls.__name__, class_entity_function(cls))
            return cls

        return decorator

    def durable_client_input(
        self, client_name: str, task_hub: str | None = None, connection_name: str | None = None
    ) -> Callable[..., Any]:
        """Give the function a `DurableOrchestrationClient` in parameter `client_name`."""

        @self._configure_function_builder
        def wrap(builder: FunctionBuilder) -> FunctionBuilder:
            function = builder._function
            function._func = _client_middleware(
                self, function._func, client_name, task_hub, connection_name
            )
            return builder

        return wrap

    def durable_openai_agent_orchestrator(
        self, _func: Any = None, *, model_provider: Any = None, model_retry_options: Any = None
    ) -> Any:
        """The SDK's OpenAI Agents orchestrator (preview): not supported, raises at registration."""
        raise UnsupportedFeatureError(OPENAI_AGENTS_MESSAGE)

    def function_name(
        self, name: str, setting_extra_fields: dict[str, Any] | None = None
    ) -> Callable[..., Any]:
        """Name a function; on an orchestrator or activity it renames the registration."""
        generic = super().function_name(name, setting_extra_fields)

        def decorator(fn: Any) -> Any:
            if isinstance(fn, DurableFunction):
                return self._rename(fn, name)
            return generic(fn)

        return decorator

    def _rename(self, fn: DurableFunction, name: str) -> DurableFunction:
        registry = self.durable_registry
        if fn.kind == "orchestrationTrigger":
            registered = registry.remove_orchestrator(fn.name)
            registry.add_orchestrator(name, registered.function, registered.input_type)
        elif fn.kind == "activityTrigger":
            registry.remove_activity(fn.name)
            registry.add_activity(name, fn.function, fn.parameter)
        else:
            registry.add_entity(name, registry.remove_entity(fn.name))
        return DurableFunction(fn.kind, name, fn.function, fn.parameter)


class DFApp(Blueprint, FunctionRegister):
    """The function app: HTTP/timer/queue functions for the host, durable functions for our worker.

    It also registers the management API as HTTP functions (`durable_ext.management_functions`) and
    the engine's heartbeat timer and health function (`host.engine_functions`).
    """

    def __init__(self, http_auth_level: AuthLevel | str = AuthLevel.FUNCTION) -> None:
        super().__init__(http_auth_level=http_auth_level)
        register_management_functions(
            self, lambda: _client_for(self, None, None), lambda: _engine_unavailable(self)
        )
        from .host.engine_functions import register_engine_functions

        register_engine_functions(self)

    def register_functions(self, function_container: Any) -> None:
        """Add a Blueprint's functions (durable ones included) to this app."""
        super().register_functions(function_container)
        if isinstance(function_container, Blueprint):
            self.durable_registry.merge(function_container.durable_registry)
            function_container.owner = self

    register_blueprint = register_functions
