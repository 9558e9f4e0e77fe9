"""`DurableEntityContext` and `Entity`: function-based entities, as in `azure.durable_functions`.

An entity function `fn(context)` runs once per operation. `run_operations` runs a batch of them
over one state with per-operation rollback: an operation that raises leaves the state as it was
before it and its signals are not sent (the SDK keeps both, its issue #274; docs/api.md says why we
differ). Each operation's result starts empty (the SDK reports the previous operation's result when
an operation sets none).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import codec
from .entity_id import EntityId

__all__ = [
    "DurableEntityContext",
    "Entity",
    "OperationOutcome",
    "OperationRequest",
    "OutgoingSignal",
    "BatchOutcome",
    "run_operations",
]

_UNSET = object()


@dataclass(frozen=True, slots=True)
class OperationRequest:
    """One operation to run: its name and input (JSON text)."""

    name: str
    input: str | None = None
    is_signal: bool = False
    id: str = ""
    """The request id (the tracking events' operation id)."""


@dataclass(frozen=True, slots=True)
class OutgoingSignal:
    """A signal an operation sent to another entity (sent only if the operation succeeded)."""

    target: EntityId
    operation: str
    input: str | None


@dataclass(slots=True)
class OperationOutcome:
    """What one operation did: its result (JSON text) or its error, and the signals it sent."""

    request: OperationRequest
    result: str | None = None
    error: BaseException | None = None
    signals: list[OutgoingSignal] = field(default_factory=list)
    start_time_ms: int = 0
    duration_ms: float = 0.0

    @property
    def is_error(self) -> bool:
        return self.error is not None


@dataclass(slots=True)
class BatchOutcome:
    exists: bool
    state: str | None
    """The state after the batch, as JSON text."""
    operations: list[OperationOutcome]


class DurableEntityContext:
    """The entity's view of itself during an operation: name, key, operation, input, state."""

    def __init__(
        self,
        name: str,
        key: str,
        exists: bool = False,
        state: str | None = None,
    ) -> None:
        self._entity_name = name
        self._entity_key = key
        self._exists = exists
        self._raw_state = state
        self._state: Any = _UNSET
        self._operation: str | None = None
        self._input: str | None = None
        self._result: Any = None
        self._signals: list[OutgoingSignal] = []

    @classmethod
    def from_json(cls, json_str: str) -> tuple[DurableEntityContext, list[dict[str, Any]]]:
        """The context and the batch of the SDK's entity-trigger JSON (`self`, `exists`,
        `state`, `batch`), as the SDK returns them."""
        data = json.loads(json_str)
        identity = data.get("self") or {}
        context = cls(
            identity.get("name", ""),
            identity.get("key", ""),
            bool(data.get("exists")),
            data.get("state"),
        )
        return context, list(data.get("batch") or [])

    # -- the SDK's members ------------------------------------------------------------------
    @property
    def entity_name(self) -> str:
        return self._entity_name

    @property
    def entity_key(self) -> str:
        return self._entity_key

    @property
    def entity_id(self) -> EntityId:
        return EntityId(self._entity_name, self._entity_key)

    @property
    def operation_name(self) -> str:
        if self._operation is None:
            raise Exception("Entity operation is unassigned")
        return self._operation

    @property
    def is_newly_constructed(self) -> bool:
        """Always False, as in the SDK."""
        return False

    def get_input(self, expected_type: type | None = None) -> Any:
        """The operation's input (None when there is none)."""
        return codec.decode(self._input, expected_type)

    def get_state(
        self, initializer: Callable[[], Any] | None = None, expected_type: type | None = None
    ) -> Any:
        """The entity's state; `initializer()` when it has none (not stored until `set_state`)."""
        if self._state is _UNSET:
            self._state = codec.decode(self._raw_state, expected_type)
        if self._state is not None:
            return self._state
        if initializer is not None:
            if not callable(initializer):
                raise Exception(
                    "initializer argument needs to be a callable function"
                )
            return initializer()
        return None

    def set_state(self, state: Any) -> None:
        self._exists = True
        self._state = state

    def set_result(self, result: Any) -> None:
        self._exists = True
        self._result = result

    def destruct_on_exit(self) -> None:
        """Delete the entity's state when the operation ends."""
        self._exists = False
        self._state = None

    # -- beyond the SDK -----------------------------------------------------------------------
    def signal_entity(
        self, entity_id: EntityId, operation_name: str, operation_input: Any = None
    ) -> None:
        """Send a one-way operation to another entity once this operation succeeds."""
        self._signals.append(
            OutgoingSignal(entity_id, operation_name, codec.encode(operation_input))
        )

    # -- batch plumbing -----------------------------------------------------------------------
    def _state_text(self) -> str | None:
        if self._state is _UNSET:
            return self._raw_state
        return None if not self._exists and self._state is None else codec.encode(self._state)

    def _begin(self, request: OperationRequest) -> tuple[bool, str | None]:
        self._operation, self._input = request.name, request.input
        self._result, self._signals = None, []
        return self._exists, self._state_text()

    def _restore(self, snapshot: tuple[bool, str | None]) -> None:
        self._exists, self._raw_state = snapshot
        self._state = _UNSET

    def _commit(self) -> None:
        """Check the state serialises (a state that cannot is the operation's error)."""
        self._raw_state = self._state_text()
        self._state = _UNSET


def run_operations(
    function: Callable[[DurableEntityContext], Any],
    entity_id: EntityId,
    exists: bool,
    state: str | None,
    requests: Sequence[OperationRequest],
    on_operation: Callable[[OperationOutcome], None] | None = None,
) -> BatchOutcome:
    """Run `requests` in order over the state; each one commits or rolls back on its own.

    `on_operation` sees every finished operation: the one place where an operation's start, end
    and failure are known (for tracking events).
    """
    context = DurableEntityContext(entity_id.name, entity_id.key, exists, state)
    outcomes = []
    for request in requests:
        outcome = _run_operation(function, context, request)
        outcomes.append(outcome)
        if on_operation is not None:
            on_operation(outcome)
    context._operation = None
    return BatchOutcome(context._exists, context._raw_state, outcomes)


def _run_operation(
    function: Callable[[DurableEntityContext], Any],
    context: DurableEntityContext,
    request: OperationRequest,
) -> OperationOutcome:
    """One operation: run it, then commit its state change or roll it back."""
    outcome = OperationOutcome(request, start_time_ms=int(time.time() * 1000))
    started = time.perf_counter()
    snapshot = context._begin(request)
    try:
        function(context)
        context._commit()
        outcome.result = codec.encode(context._result)
        outcome.signals = context._signals
    except Exception as exc:  # noqa: BLE001 - an operation's failure is its caller's to see
        context._restore(snapshot)
        outcome.error = exc
        outcome.result = codec.encode(str(exc))
    outcome.duration_ms = (time.perf_counter() - started) * 1000
    return outcome


class Entity:
    """The SDK's `Entity`: `Entity.create(fn)` makes the handler of an entity function."""

    def __init__(self, entity_func: Callable[[DurableEntityContext], Any]) -> None:
        self.function = entity_func

    @classmethod
    def create(cls, fn: Callable[[DurableEntityContext], Any]) -> Callable[[Any], str]:
        """A handler that takes the SDK's entity-trigger JSON (or an object with `.body`) and
        returns the SDK's response JSON: `entityExists`, `entityState`, `results`, `signals`."""
        entity = cls(fn)

        def handle(context: Any) -> str:
            body = getattr(context, "body", context)
            return entity.handle(*DurableEntityContext.from_json(body))

        handle.entity_function = fn  # type: ignore[attr-defined]
        return handle

    def handle(self, context: DurableEntityContext, batch: list[dict[str, Any]]) -> str:
        """Run the batch (the SDK's `{name, input, isSignal}` items); the SDK's response JSON."""
        requests = [
            OperationRequest(str(item["name"]), item.get("input"), bool(item.get("isSignal")))
            for item in batch
        ]
        entity_id = EntityId(context.entity_name or "?", context.entity_key or "?")
        outcome = run_operations(
            self.function, entity_id, context._exists, context._raw_state, requests
        )
        return json.dumps(
            {
                "entityExists": outcome.exists,
                "entityState": outcome.state,
                "results": [
                    {
                        "isError": o.is_error,
                        "result": o.result,
                        "duration": int(o.duration_ms),
                        "startTime": o.start_time_ms,
                    }
                    for o in outcome.operations
                ],
                "signals": [
                    {
                        "target": {"name": s.target.name, "key": s.target.key},
                        "name": s.operation,
                        "input": s.input,
                    }
                    for o in outcome.operations
                    for s in o.signals
                ],
            }
        )
