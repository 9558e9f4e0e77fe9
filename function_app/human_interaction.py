"""Human interaction: wait for an approval event, or escalate when nobody answers in time.

Start it with `POST /api/orchestrators/approval_workflow` and a body such as
`{"requestId": "PO-1001", "amount": 1200}` (add `"timeoutSeconds"` to shorten the 72 h default),
then approve by posting `true` (or `false` to reject) to the `sendEventPostUri` of the start
response with `{eventName}` replaced by `ApprovalEvent`.
"""

import logging
from datetime import timedelta
from typing import Any

import durable_ext as df

bp = df.Blueprint()

DEFAULT_TIMEOUT = timedelta(hours=72)


@bp.orchestration_trigger(context_name="context")
def approval_workflow(context: df.DurableOrchestrationContext):
    request: dict[str, Any] = context.get_input()
    timeout = timedelta(seconds=request.get("timeoutSeconds", DEFAULT_TIMEOUT.total_seconds()))
    yield context.call_activity(request_approval, request)

    deadline = context.create_timer(context.current_utc_datetime + timeout)
    approval = context.wait_for_external_event("ApprovalEvent")
    winner = yield context.task_any([approval, deadline])

    if winner is approval:
        deadline.cancel()  # the timer is no longer needed: cancel it so the instance can finish
        decision = {**request, "approved": approval.result}
        return (yield context.call_activity(process_approval, decision))
    return (yield context.call_activity(escalate, request))


@bp.activity_trigger(input_name="request")
def request_approval(request: dict[str, Any]) -> None:
    # Stands in for an e-mail or a message to the approver, with a link that raises the event.
    logging.info("Approval requested for %s", request.get("requestId"))


@bp.activity_trigger(input_name="decision")
def process_approval(decision: dict[str, Any]) -> str:
    outcome = "Approved" if decision["approved"] else "Rejected"
    return f"{outcome}: {decision.get('requestId')}"


@bp.activity_trigger(input_name="request")
def escalate(request: dict[str, Any]) -> str:
    # Stands in for notifying the approver's manager.
    return f"Escalated: {request.get('requestId')}"
