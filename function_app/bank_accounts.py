"""Class-based entities and a critical section (durable_ext's own; the Python SDK has neither).

`Account` is a class-based entity: its public methods are its operations, its attributes its state.
`POST /api/orchestrators/transfer` with `{"from": "a", "to": "b", "amount": 10}` moves money inside
a critical section over both accounts: no other operation interleaves between the read and the two
updates, and two transfers in opposite directions cannot deadlock. `deposit` over the management
API: `POST /runtime/webhooks/durabletask/entities/Account/{key}?op=deposit` with the amount.
"""

import durable_ext as df

bp = df.Blueprint()


@bp.entity_class()
class Account(df.DurableEntity):
    def __init__(self) -> None:
        self.balance = 0

    def deposit(self, amount: int) -> int:
        self.balance += amount
        return self.balance

    def withdraw(self, amount: int) -> int:
        if amount > self.balance:
            raise ValueError(f"Insufficient funds: balance {self.balance}, asked {amount}")
        self.balance -= amount
        return self.balance

    def get(self) -> int:
        return self.balance


@bp.orchestration_trigger(context_name="context")
def transfer(context: df.DurableOrchestrationContext):
    order = context.get_input()
    source = df.EntityId("Account", order["from"])
    target = df.EntityId("Account", order["to"])
    with (yield context.lock([source, target])):
        balance = yield context.call_entity(source, "get")
        if balance < order["amount"]:
            return {"transferred": False, "balance": balance}
        yield context.call_entity(source, "withdraw", order["amount"])
        yield context.call_entity(target, "deposit", order["amount"])
    return {"transferred": True, "balance": balance - order["amount"]}
