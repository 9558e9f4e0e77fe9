"""Error handling: retry a flaky activity with RetryOptions, compensate when it still fails.

Start it with `POST /api/orchestrators/transfer_funds` and a body such as
`{"from": "alice", "to": "bob", "amount": 100}`. Crediting an account whose name starts with
`closed` always fails: the orchestration retries it, then refunds the debit.
"""

from typing import Any

import durable_ext as df

bp = df.Blueprint()

RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=3)


@bp.orchestration_trigger(context_name="context")
def transfer_funds(context: df.DurableOrchestrationContext):
    transfer: dict[str, Any] = context.get_input()
    yield context.call_activity_with_retry(debit_account, RETRY, transfer)
    try:
        yield context.call_activity_with_retry(credit_account, RETRY, transfer)
    except df.TaskFailedError as error:
        # Compensate: undo the debit, then report what happened (or re-raise to fail the instance).
        yield context.call_activity(refund_account, transfer)
        return {"status": "Refunded", "reason": error.failure_details.error_message}
    return {"status": "Transferred", "amount": transfer["amount"]}


@bp.activity_trigger(input_name="transfer")
def debit_account(transfer: dict[str, Any]) -> None:
    # Stands in for a call to the bank's API.
    if transfer["amount"] <= 0:
        raise ValueError("The amount must be positive")


@bp.activity_trigger(input_name="transfer")
def credit_account(transfer: dict[str, Any]) -> None:
    if transfer["to"].startswith("closed"):
        raise RuntimeError(f"Account {transfer['to']} is closed")


@bp.activity_trigger(input_name="transfer")
def refund_account(transfer: dict[str, Any]) -> None:
    pass
