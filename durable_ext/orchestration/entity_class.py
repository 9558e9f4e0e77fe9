"""Class-based entities (our design; the Python SDK has none, its issue #278).

    class Counter(df.DurableEntity):
        def __init__(self) -> None:      # a new entity's state
            self.value = 0

        def add(self, amount: int) -> None:
            self.value += amount

        def get(self) -> int:
            return self.value

An operation is the public method of that name (case-insensitive); its one parameter, if any,
receives the operation input (converted to the parameter's annotation); its return value is the
result. The state is the instance's attributes, as JSON. `self.context` is the operation's
`DurableEntityContext`; `self.delete()` (also the operation `delete` when the class has no method of
that name) deletes the entity's state.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from .entity_context import DurableEntityContext

__all__ = ["DurableEntity", "class_entity_function"]

_CONTEXT = "context"


class DurableEntity:
    """Base class of a class-based entity (see the module docstring)."""

    context: DurableEntityContext

    def delete(self) -> None:
        """Delete the entity's state when the operation ends."""
        self.context.destruct_on_exit()
        self.__dict__["_deleted"] = True


def _operations(cls: type[DurableEntity]) -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        member = getattr(cls, name)
        if callable(member) and not isinstance(member, type):
            found[name.lower()] = member
    return found


def class_entity_function(cls: type[DurableEntity]) -> Callable[[DurableEntityContext], None]:
    """The entity function that runs `cls`'s operations."""
    if not (isinstance(cls, type) and issubclass(cls, DurableEntity)):
        raise TypeError(f"{cls!r} is not a subclass of durable_ext.DurableEntity")
    operations = _operations(cls)

    def run(context: DurableEntityContext) -> None:
        method = operations.get(context.operation_name.lower())
        if method is None:
            raise ValueError(
                f"Entity '{context.entity_name}' has no operation '{context.operation_name}'"
            )
        state = context.get_state()
        entity = cls.__new__(cls)
        if isinstance(state, dict):
            entity.__dict__.update(state)
        else:
            entity.__init__()  # type: ignore[misc]
        entity.__dict__[_CONTEXT] = context
        result = method(entity, *_arguments(method, context))
        context.set_result(result)
        if entity.__dict__.pop("_deleted", False):
            context.destruct_on_exit()
            return
        context.set_state({k: v for k, v in vars(entity).items() if k != _CONTEXT})

    run.__name__ = cls.__name__
    return run


def _arguments(method: Callable[..., Any], context: DurableEntityContext) -> list[Any]:
    parameters = list(inspect.signature(method).parameters.values())[1:]
    if not parameters:
        return []
    try:
        hints = typing.get_type_hints(method)
    except (NameError, TypeError):
        hints = {}
    annotation = hints.get(parameters[0].name)
    return [context.get_input(annotation if isinstance(annotation, type) else None)]
