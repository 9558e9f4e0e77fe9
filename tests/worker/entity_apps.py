"""Entity functions and orchestrators the entity tests run (function-based and class-based)."""

from __future__ import annotations

from typing import Any

import durable_ext as df

app = df.Blueprint()


@app.entity_trigger(context_name="context")
def Counter(context: df.DurableEntityContext) -> None:  # noqa: N802 - the SDK sample's name
    current = context.get_state(lambda: 0)
    operation = context.operation_name
    if operation == "add":
        context.set_state(current + context.get_input())
    elif operation == "reset":
        context.set_state(0)
    elif operation == "get":
        context.set_result(current)
    elif operation == "add_then_fail":
        context.set_state(current + context.get_input())
        context.signal_entity(df.EntityId("Counter", "side"), "add", 100)
        raise ValueError("failed after adding")
    elif operation == "delete":
        context.destruct_on_exit()


@app.entity_class()
class Account(df.DurableEntity):
    def __init__(self) -> None:
        self.balance = 0

    def deposit(self, amount: int) -> int:
        self.balance += amount
        return self.balance

    def withdraw(self, amount: int) -> int:
        if amount > self.balance:
            raise ValueError(f"insufficient funds: {self.balance} < {amount}")
        self.balance -= amount
        return self.balance

    def get(self) -> int:
        return self.balance


@app.orchestration_trigger(context_name="context")
def call_and_signal(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    key = context.get_input()
    counter = df.EntityId("Counter", key)
    context.signal_entity(counter, "add", 5)
    yield context.call_entity(counter, "add", 10)
    first = yield context.call_entity(counter, "get")
    try:
        yield context.call_entity(counter, "add_then_fail", 1000)
    except df.EntityOperationFailedError as exc:
        error: Any = [str(exc), exc.operation_name]
    after = yield context.call_entity(counter, "get")
    balance = yield context.call_entity(df.EntityId("Account", key), "deposit", 7)
    return {"first": first, "error": error, "after": after, "balance": balance}


@app.orchestration_trigger(context_name="context")
def transfer(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    """Move 1 from one account to another inside a critical section over both."""
    source, target = (df.EntityId("Account", k) for k in context.get_input())
    with (yield context.lock([source, target])):
        assert context.is_locked
        yield context.call_entity(source, "deposit", 10)
        yield context.call_entity(target, "deposit", 10)
        yield context.call_entity(source, "withdraw", 1)
        yield context.call_entity(target, "deposit", 1)
    return context.is_locked
