"""Orchestrator, activity and entity functions by name (names compare case-insensitively, as in Azure Functions)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..orchestration.errors import UnknownFunctionError
from ..orchestration.failures import missing_function

__all__ = [
    "FunctionRegistry",
    "RegisteredOrchestrator",
    "RegisteredActivity",
    "UnknownFunctionError",
]


@dataclass(frozen=True, slots=True)
class RegisteredOrchestrator:
    name: str
    function: Callable[..., Any]
    input_type: type | None = None


@dataclass(frozen=True, slots=True)
class RegisteredActivity:
    name: str
    function: Callable[..., Any]
    input_name: str | None = None
    """The parameter that receives the input (others get None); None = first parameter."""
    takes_context: bool = False
    """It has a `context` parameter (besides its input), which gets an `ActivityContext`."""


class FunctionRegistry:
    """The functions a worker can run."""

    def __init__(self) -> None:
        self._orchestrators: dict[str, RegisteredOrchestrator] = {}
        self._activities: dict[str, RegisteredActivity] = {}
        self._entities: dict[str, tuple[str, Callable[..., Any]]] = {}

    def add_orchestrator(
        self, name: str, function: Callable[..., Any], input_type: type | None = None
    ) -> None:
        self._check_new(name, self._orchestrators)
        self._orchestrators[name.lower()] = RegisteredOrchestrator(name, function, input_type)

    def add_activity(
        self, name: str, function: Callable[..., Any], input_name: str | None = None
    ) -> None:
        self._check_new(name, self._activities)
        self._activities[name.lower()] = RegisteredActivity(
            name, function, input_name, _takes_context(function, input_name)
        )

    def add_entity(self, name: str, function: Callable[..., Any]) -> None:
        """An entity function (`fn(context)`), found by the entity name in its ids."""
        self._check_new(name, self._entities)
        self._entities[name.lower()] = (name, function)

    def remove_entity(self, name: str) -> Callable[..., Any]:
        return self._entities.pop(name.lower())[1]

    def entity(self, name: str) -> Callable[..., Any] | None:
        """The entity function of that name, or None."""
        found = self._entities.get(name.lower())
        return found[1] if found is not None else None

    @property
    def entity_names(self) -> list[str]:
        return [name for name, _ in self._entities.values()]

    @staticmethod
    def _check_new(name: str, table: dict[str, Any]) -> None:
        if not name:
            raise ValueError("function name cannot be empty")
        if name.lower() in table:
            raise ValueError(f"a function named {name!r} is already registered")

    def remove_orchestrator(self, name: str) -> RegisteredOrchestrator:
        return self._orchestrators.pop(name.lower())

    def remove_activity(self, name: str) -> RegisteredActivity:
        return self._activities.pop(name.lower())

    def merge(self, other: FunctionRegistry) -> None:
        """Add every function of `other` (a name registered in both is an error)."""
        for orchestrator in other._orchestrators.values():
            self.add_orchestrator(orchestrator.name, orchestrator.function, orchestrator.input_type)
        for activity in other._activities.values():
            self.add_activity(activity.name, activity.function, activity.input_name)
        for name, function in other._entities.values():
            self.add_entity(name, function)

    def orchestrator(self, name: str) -> RegisteredOrchestrator:
        found = self._orchestrators.get(name.lower())
        if found is None:
            raise missing_function("Orchestrator", name)
        return found

    def activity(self, name: str) -> RegisteredActivity:
        found = self._activities.get(name.lower())
        if found is None:
            raise missing_function("Activity", name)
        return found

    def has_orchestrator(self, name: str) -> bool:
        return name.lower() in self._orchestrators

    @property
    def orchestrator_names(self) -> list[str]:
        return [o.name for o in self._orchestrators.values()]

    @property
    def activity_names(self) -> list[str]:
        return [a.name for a in self._activities.values()]


def _takes_context(function: Callable[..., Any], input_name: str | None) -> bool:
    try:
        names = list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return False
    input_parameter = input_name or (names[0] if names else None)
    return "context" in names and input_parameter != "context"
