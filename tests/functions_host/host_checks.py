"""The host's checks on each function the worker reports (`WorkerFunctionMetadataProvider`,
`ScriptHost.ValidateFunction`). Unlike the worker's checks, a failure here puts only that one
function "in error": the host serves the others. Messages are the host's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .metadata import ALL_METHODS, IndexedFunction

__all__ = ["host_errors", "BUILT_IN_BINDING_TYPES"]

_FUNCTION_NAME = re.compile(r"^[a-z][a-z0-9_\-]{0,127}$", re.IGNORECASE)
# Binding names since host 4.1038 (PR #10764); older hosts also refused `_`.
_BINDING_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$")
# Binding types the host runs without an extension bundle.
BUILT_IN_BINDING_TYPES = frozenset({"httpTrigger", "http", "timerTrigger", "warmupTrigger"})


def _binding_errors(fn: IndexedFunction, has_bundle: bool) -> str | None:
    if not fn.bindings:
        return "At least one binding must be declared."
    seen: set[str] = set()
    for binding in fn.bindings:
        name = binding.get("name")
        if name != "$return" and not (isinstance(name, str) and _BINDING_NAME.match(name)):
            return (
                f"The binding name {name} is invalid. Please assign a valid name to the binding. "
                "See https://aka.ms/azure-functions-binding-name-rules for more details."
            )
        if str(name).lower() in seen:
            return f"Multiple bindings with name '{name}' discovered. Binding names must be unique."
        seen.add(str(name).lower())
    if fn.trigger is None:
        return "No trigger binding specified. A function must have a trigger input binding."
    unknown = sorted({str(b.get("type")) for b in fn.bindings} - BUILT_IN_BINDING_TYPES)
    if unknown and not has_bundle:
        return (
            f"The binding type(s) '{', '.join(unknown)}' are not registered. Please ensure the "
            "type is correct and the binding extension is installed."
        )
    return None


def _routes_conflict(a: IndexedFunction, b: IndexedFunction) -> bool:
    if a.route.strip("/").lower() != b.route.strip("/").lower():
        return False
    return bool(set(a.methods) & set(b.methods)) or ALL_METHODS in (a.methods, b.methods)


def host_errors(functions: Iterable[IndexedFunction], has_bundle: bool) -> dict[str, str]:
    """Function name → the host's error, for every function the host would put in error."""
    errors: dict[str, str] = {}
    names: set[str] = set()
    http: list[IndexedFunction] = []
    for fn in functions:
        if not _FUNCTION_NAME.match(fn.name) or fn.name.lower() == "host":
            errors[fn.name] = f"'{fn.name}' is not a valid function name."
            continue
        if fn.name.lower() in names:
            errors[fn.name] = (
                f"The function or proxy name '{fn.name}' must be unique within the function app."
            )
            continue
        binding_error = _binding_errors(fn, has_bundle)
        if binding_error:
            errors[fn.name] = binding_error
            continue
        if fn.trigger_type == "httpTrigger":
            route = fn.route.strip("/").lower()
            if route.startswith(("admin", "runtime")):
                errors[fn.name] = "The specified route conflicts with one or more built in routes."
                continue
            clash = next((other for other in http if _routes_conflict(fn, other)), None)
            if clash is not None:
                errors[fn.name] = (
                    f"The route specified conflicts with the route defined by function "
                    f"'{clash.name}'."
                )
                continue
            http.append(fn)
        names.add(fn.name.lower())
    return errors
