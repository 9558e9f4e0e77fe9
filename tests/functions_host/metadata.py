"""What the worker sends the host for each indexed function (`RpcFunctionMetadata`).

Read from `Function.get_raw_bindings()` (one JSON document per binding), never from the Python
decorators' objects, so the host's view is exactly what the worker would send.
"""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.functions.decorators.function_app import Function

__all__ = ["IndexedFunction", "describe"]

ALL_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE")


@dataclass(frozen=True)
class IndexedFunction:
    """One function as the host sees it, plus the callable the worker invokes."""

    name: str
    function_id: str
    bindings: tuple[dict[str, Any], ...]
    callable: Callable[..., Any] = field(repr=False)
    directory: str
    requires_context: bool
    is_async: bool

    @property
    def trigger(self) -> dict[str, Any] | None:
        """The one binding whose type ends in `Trigger` (None if there is none)."""
        triggers = [b for b in self.bindings if str(b.get("type", "")).endswith("Trigger")]
        return triggers[0] if len(triggers) == 1 else None

    @property
    def trigger_type(self) -> str | None:
        """`httpTrigger`, `timerTrigger`, ..."""
        return self.trigger["type"] if self.trigger else None

    @property
    def trigger_name(self) -> str:
        """The parameter that receives the trigger data."""
        return str(self.trigger["name"]) if self.trigger else ""

    @property
    def route(self) -> str:
        """The route template (the host defaults it to the function name)."""
        route = (self.trigger or {}).get("route")
        return str(route).strip("/") if route and str(route).strip() else self.name

    @property
    def methods(self) -> tuple[str, ...]:
        """Allowed methods, upper case; none declared means all."""
        declared = (self.trigger or {}).get("methods") or ()
        return tuple(str(m).upper() for m in declared) or ALL_METHODS

    @property
    def auth_level(self) -> str:
        """`anonymous`, `function` or `admin` (parsed case-insensitively, default function)."""
        return str((self.trigger or {}).get("authLevel") or "function").lower()

    @property
    def schedule(self) -> str:
        """The timer schedule expression."""
        return str((self.trigger or {}).get("schedule", ""))

    @property
    def queue_name(self) -> str:
        """The queue of a queue trigger (as declared: `%Setting%` not yet resolved)."""
        return str((self.trigger or {}).get("queueName", ""))

    @property
    def run_on_startup(self) -> bool:
        """Whether the timer fires once when the host starts."""
        return bool((self.trigger or {}).get("runOnStartup"))

    @property
    def out_bindings(self) -> tuple[str, ...]:
        """Names of output bindings passed as `func.Out` parameters (not `$return`)."""
        return tuple(
            b["name"]
            for b in self.bindings
            if str(b.get("direction", "")).upper() == "OUT" and b.get("name") != "$return"
        )

    @property
    def has_return(self) -> bool:
        """Whether a `$return` binding takes the function's return value."""
        return any(b.get("name") == "$return" for b in self.bindings)


def describe(function: Function, requires_context: bool) -> IndexedFunction:
    """The metadata of one library `Function` (after the worker's signature check)."""
    name = str(function.get_function_name())
    user = function.get_user_function()
    return IndexedFunction(
        name=name,
        function_id=str(uuid.uuid5(uuid.NAMESPACE_OID, name)),
        bindings=tuple(json.loads(raw) for raw in function.get_raw_bindings()),
        callable=user,
        directory=str(Path(inspect.getfile(user)).parent),
        requires_context=requires_context,
        is_async=inspect.iscoroutinefunction(user),
    )
