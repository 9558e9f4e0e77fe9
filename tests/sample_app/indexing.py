"""Index a function app the way the Azure Functions Python worker does, and check what the host sees.

The worker imports the app module, takes the one `azure.functions.FunctionRegister` among its
top-level names, calls `get_functions()` and sends each function's bindings to the host; it then
refuses a function whose Python parameters and bindings do not match (only `context` may be
unbound). The host must only ever see binding types it runs without the Durable Functions extension.
"""

from __future__ import annotations

import inspect
import json
from types import ModuleType

from azure.functions import FunctionRegister
from azure.functions.decorators.function_app import Function

# Bindings the host runs without any Durable Functions extension.
NATIVE_BINDING_TYPES = frozenset(
    {"httpTrigger", "http", "timerTrigger", "queueTrigger", "queue", "blobTrigger", "blob"}
)
DURABLE_BINDING_TYPES = frozenset(
    {"orchestrationTrigger", "activityTrigger", "entityTrigger", "durableClient"}
)


def index_like_the_python_worker(module: ModuleType) -> list[Function]:
    """The functions the worker would report to the host for this app module."""
    registers = [
        value
        for name in dir(module)
        if isinstance(value := getattr(module, name, None), FunctionRegister)
    ]
    assert len(registers) == 1, f"{module.__name__} defines {len(registers)} FunctionRegisters"
    return registers[0].get_functions()


def assert_host_sees_only_native_bindings(functions: list[Function]) -> None:
    """Every binding is native, and every function's parameters match its bindings."""
    assert functions, "the host would index no functions"
    for function in functions:
        name = function.get_function_name()
        metadata = json.loads(function.get_function_json())  # what the worker sends the host
        types = {binding["type"] for binding in metadata["bindings"]}
        assert not types & DURABLE_BINDING_TYPES, f"{name}: the host would see {types}"
        assert types <= NATIVE_BINDING_TYPES, f"{name}: bindings the host cannot run: {types}"

        bound = {b.name for b in function.get_bindings()} - {"$return"}
        parameters = set(inspect.signature(function.get_user_function()).parameters)
        unbound = parameters - bound - {"context"}
        assert not unbound, (
            f"{name}: parameters without a binding (the worker rejects them): {unbound}"
        )
        missing = bound - parameters
        assert not missing, f"{name}: bindings without a parameter: {missing}"
