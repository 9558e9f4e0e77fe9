"""The Python worker's signature check (`functions.Registry.add_indexed_function`).

Every parameter must be a binding and every binding but `$return` a parameter; `context` is
injected only when it is not itself a binding, and an annotated `context` must be a class named
`Context`; `inout` bindings are refused. A failure here fails the whole app, not one function.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["FunctionLoadError", "check_signature"]


class FunctionLoadError(RuntimeError):
    """A function the worker cannot load (its own message format)."""

    def __init__(self, function_name: str, message: str) -> None:
        super().__init__(f"cannot load the {function_name} function: {message}")


def check_signature(
    name: str, function: Callable[..., Any], bindings: list[dict[str, Any]]
) -> bool:
    """Check `function` against its raw bindings; returns whether it takes `context`."""
    for binding in bindings:
        direction = str(binding.get("direction", "")).upper()
        if direction == "INOUT":
            raise FunctionLoadError(name, '"inout" bindings are not supported')
        if binding.get("name") == "$return" and direction != "OUT":
            raise FunctionLoadError(name, '"$return" binding must have direction set to "out"')
    params = dict(inspect.signature(function).parameters)
    annotations = typing.get_type_hints(function)
    bound = {b["name"] for b in bindings if b.get("name") != "$return"}
    requires_context = "context" in params and "context" not in bound
    if requires_context:
        params.pop("context")
        annotation = annotations.get("context")
        if "context" in annotations and (
            not isinstance(annotation, type) or annotation.__name__ != "Context"
        ):
            raise FunctionLoadError(
                name,
                'the "context" parameter is expected to be of type azure.functions.Context, '
                f'got "{annotation!r}"',
            )
    unbound = set(params) - bound
    if unbound:
        raise FunctionLoadError(
            name,
            "the following parameters are declared in Python but not in the function "
            f"definition (function.json or function decorators):  {unbound!r}",
        )
    missing = bound - set(params)
    if missing:
        raise FunctionLoadError(
            name,
            "Extra parameters in binding definition — the following parameters are declared as "
            f"bindings but are not present in Python: {missing!r}",
        )
    return requires_context
