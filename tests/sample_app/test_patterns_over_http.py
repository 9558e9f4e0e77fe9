"""Every pattern of the sample app, end to end over HTTP against `durable-ext start`.

Each test drives the app the way its users do: an HTTP starter, then the management URLs of the
check-status response (`statusQueryGetUri`, `sendEventPostUri`, `terminatePostUri`, ...).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from tests.sample_app.host_process import NO_BODY, LocalHostProcess, Response, http, poll_status

MANAGEMENT_URIS = {
    "id",
    "statusQueryGetUri",
    "sendEventPostUri",
    "terminatePostUri",
    "purgeHistoryDeleteUri",
    "restartPostUri",
    "suspendPostUri",
    "resumePostUri",
}


def start(
    host: LocalHostProcess, orchestrator: str, body: Any = NO_BODY, query: str = ""
) -> dict[str, str]:
    """Start through the generic starter; the check-status payload."""
    url = f"{host.base_url}/api/orchestrators/{orchestrator}{query}"
    return check_status_payload(http("POST", url, body))


def check_status_payload(response: Response) -> dict[str, str]:
    assert response.status == 202, response.text
    payload: dict[str, str] = response.json()
    assert set(payload) >= MANAGEMENT_URIS
    assert response.headers["Location"] == payload["statusQueryGetUri"]
    assert response.headers["Retry-After"] == "10"
    return payload


def finished(payload: dict[str, str], timeout: float = 60.0) -> dict[str, Any]:
    """Poll `statusQueryGetUri` (202 while running) until it answers 200; the status."""
    response = poll_status(payload["statusQueryGetUri"], timeout=timeout)
    assert response.status == 200, response.text
    status: dict[str, Any] = response.json()
    assert status["instanceId"] == payload["id"]
    return status


def running(payload: dict[str, str]) -> dict[str, Any]:
    """Poll until the instance is Running (the status a client sees while it waits)."""
    response = poll_status(
        payload["statusQueryGetUri"], until=lambda r: r.json().get("runtimeStatus") == "Running"
    )
    assert response.status == 202
    status: dict[str, Any] = response.json()
    return status


def raise_event(payload: dict[str, str], event: str, data: Any) -> Response:
    return http("POST", payload["sendEventPostUri"].replace("{eventName}", event), data)


def terminate(payload: dict[str, str], reason: str) -> Response:
    return http("POST", payload["terminatePostUri"].replace("{text}", reason.replace(" ", "+")))


# -- function chaining and the HTTP starters ----------------------------------------------------


def test_function_chaining_through_status_polling(sample_host: LocalHostProcess) -> None:
    started = start(sample_host, "hello_sequence")
    status = finished(started)
    assert status["name"] == "hello_sequence"
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    # The console shows the run as it goes, one line per tracking event, payloads redacted.
    iid = started["id"]
    log = sample_host.log().splitlines()
    lines = [line.split("] ", 1)[1] for line in log if f"{iid}: Function" in line]
    assert lines[:3] == [
        f"{iid}: Function 'hello_sequence (Orchestrator)' scheduled. Reason: NewInstance",
        f"{iid}: Function 'hello_sequence (Orchestrator)' started. Input: (Redacted 4 characters)",  # null
        f"{iid}: Function 'say_hello (Activity)' scheduled. Reason: hello_sequence",
    ]
    assert lines[-1] == (
        f"{iid}: Function 'hello_sequence (Orchestrator)' completed. Output: (Redacted 49 characters)"
    )
    assert sum("'say_hello (Activity)' completed" in line for line in lines) == 3

    purged = http("DELETE", started["purgeHistoryDeleteUri"])
    assert (purged.status, purged.json()) == (200, {"instancesDeleted": 1})
    assert http("GET", started["statusQueryGetUri"]).status == 404


def test_starter_takes_the_instance_id_from_the_query(sample_host: LocalHostProcess) -> None:
    instance_id = "greeting-" + secrets.token_hex(4)
    started = start(sample_host, "hello_sequence", query=f"?instanceId={instance_id}")
    assert started["id"] == instance_id
    assert finished(started)["output"] == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
    # A finished instance is replaced by a new start with the same id.
    again = start(sample_host, "hello_sequence", query=f"?instanceId={instance_id}")
    assert finished(again)["runtimeStatus"] == "Completed"


def test_starter_answers_409_while_the_instance_id_is_in_use(
    sample_host: LocalHostProcess,
) -> None:
    query = "?instanceId=PO-" + secrets.token_hex(4)
    started = start(sample_host, "approval_workflow", {"requestId": "PO-5"}, query)
    url = f"{sample_host.base_url}/api/orchestrators/approval_workflow{query}"
    assert http("POST", url, {"requestId": "PO-5"}).status == 409
    assert terminate(started, "test done").status == 202
    assert finished(started)["runtimeStatus"] == "Terminated"


def test_starter_answers_400_for_an_unknown_orchestrator_or_bad_json(
    sample_host: LocalHostProcess,
) -> None:
    unknown = http("POST", f"{sample_host.base_url}/api/orchestrators/no_such_orchestrator")
    assert unknown.status == 400
    assert "no_such_orchestrator" in unknown.text
    bad_json = http("POST", f"{sample_host.base_url}/api/orchestrators/hello_sequence", raw=b"{x")
    assert bad_json.status == 400


def test_waiting_starter_returns_the_output_when_it_finishes_in_time(
    sample_host: LocalHostProcess,
) -> None:
    response = http("GET", f"{sample_host.base_url}/api/orchestrators/hello_sequence/wait")
    assert response.status == 200, response.text
    assert response.json() == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]


def test_waiting_starter_falls_back_to_check_status_when_it_does_not(
    sample_host: LocalHostProcess,
) -> None:
    url = f"{sample_host.base_url}/api/orchestrators/approval_workflow/wait?timeout=0.5"
    started = check_status_payload(http("POST", url, {"requestId": "PO-wait"}))
    assert terminate(started, "test done").status == 202
    assert finished(started)["runtimeStatus"] == "Terminated"


# -- fan-out/fan-in -------------------------------------------------------------------------------


def test_fan_out_fan_in_sums_the_parallel_results(sample_host: LocalHostProcess) -> None:
    started = start(sample_host, "fan_out_fan_in", {"count": 20})
    assert finished(started)["output"] == sum(n * n for n in range(1, 21))


# -- monitor --------------------------------------------------------------------------------------


def test_monitor_reports_progress_then_completes(sample_host: LocalHostProcess) -> None:
    job = {"jobId": "job-1", "pollingIntervalSeconds": 1, "completeAfterChecks": 3}
    started = start(sample_host, "job_monitor", job)

    in_progress = poll_status(
        started["statusQueryGetUri"],
        until=lambda r: (r.json().get("customStatus") or {}).get("jobStatus") == "Running",
    )
    assert in_progress.status == 202
    assert in_progress.json()["customStatus"]["checks"] in (1, 2)

    status = finished(started)
    assert status["output"] == {"jobId": "job-1", "status": "Completed", "checks": 3}
    assert status["customStatus"] == {"jobId": "job-1", "checks": 3, "jobStatus": "Completed"}


def test_monitor_gives_up_at_its_expiry(sample_host: LocalHostProcess) -> None:
    job = {"jobId": "job-2", "pollingIntervalSeconds": 1, "expirySeconds": 2}
    status = finished(start(sample_host, "job_monitor", job))
    assert status["output"]["status"] == "Expired"
    assert status["customStatus"]["jobStatus"] == "Running"


# -- human interaction ----------------------------------------------------------------------------


def test_approval_event_wins_over_the_timeout(sample_host: LocalHostProcess) -> None:
    approved = start(sample_host, "approval_workflow", {"requestId": "PO-1"})
    rejected = start(sample_host, "approval_workflow", {"requestId": "PO-2"})
    running(approved)  # the default 72 h timer is pending now
    assert raise_event(approved, "ApprovalEvent", True).status == 202
    assert raise_event(rejected, "ApprovalEvent", False).status == 202
    assert finished(approved)["output"] == "Approved: PO-1"
    assert finished(rejected)["output"] == "Rejected: PO-2"


def test_escalates_when_nobody_answers_in_time(sample_host: LocalHostProcess) -> None:
    started = start(sample_host, "approval_workflow", {"requestId": "PO-3", "timeoutSeconds": 1})
    assert finished(started)["output"] == "Escalated: PO-3"


def test_terminate_stops_a_waiting_instance(sample_host: LocalHostProcess) -> None:
    started = start(sample_host, "approval_workflow", {"requestId": "PO-4"})
    running(started)
    assert terminate(started, "request withdrawn").status == 202
    status = finished(started)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "request withdrawn"
    assert raise_event(started, "ApprovalEvent", True).status == 410


# -- eternal orchestration ------------------------------------------------------------------------


def test_eternal_singleton_continues_as_new_until_terminated(
    sample_host: LocalHostProcess,
) -> None:
    url = f"{sample_host.base_url}/api/cleanup"
    started = check_status_payload(http("POST", url, {"intervalSeconds": 1}))
    assert started["id"] == "periodic-cleanup"
    assert http("POST", url, {"intervalSeconds": 1}).status == 409

    third_run = poll_status(
        started["statusQueryGetUri"],
        until=lambda r: (r.json().get("customStatus") or {}).get("iteration", 0) >= 3,
    )
    assert third_run.status == 202  # still running: each generation continues as new
    assert third_run.json()["input"]["iteration"] >= 3  # the input of the current generation

    assert terminate(started, "maintenance").status == 202
    assert finished(started)["runtimeStatus"] == "Terminated"

    restarted = check_status_payload(http("POST", url))  # a finished singleton can start again
    running(restarted)
    assert terminate(restarted, "test done").status == 202
    assert finished(restarted)["runtimeStatus"] == "Terminated"


# -- error handling -------------------------------------------------------------------------------


def test_transfer_succeeds(sample_host: LocalHostProcess) -> None:
    transfer = {"from": "alice", "to": "bob", "amount": 100}
    status = finished(start(sample_host, "transfer_funds", transfer))
    assert status["output"] == {"status": "Transferred", "amount": 100}


def test_failed_credit_is_retried_then_compensated(sample_host: LocalHostProcess) -> None:
    compensated = start(sample_host, "transfer_funds", {"from": "a", "to": "closed-1", "amount": 5})
    failing = start(sample_host, "transfer_funds", {"from": "a", "to": "b", "amount": -5})

    status = finished(compensated)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"status": "Refunded", "reason": "Account closed-1 is closed"}
    history = http("GET", compensated["statusQueryGetUri"] + "&showHistory=true").json()
    steps = [
        (event["EventType"], event.get("FunctionName"))
        for event in history["historyEvents"]
        if event["EventType"] in ("TaskCompleted", "TaskFailed")
    ]
    assert steps == [
        ("TaskCompleted", "debit_account"),
        ("TaskFailed", "credit_account"),
        ("TaskFailed", "credit_account"),
        ("TaskFailed", "credit_account"),
        ("TaskCompleted", "refund_account"),
    ]

    # A failure the orchestrator does not catch fails the instance (after the retries).
    status = finished(failing)
    assert status["runtimeStatus"] == "Failed"
    assert "The amount must be positive" in status["output"]


def test_the_health_function_reports_the_local_host_engine(sample_host: LocalHostProcess) -> None:
    response = http("GET", f"{sample_host.base_url}/api/durabletask/health")
    assert response.status == 200, response.text
    assert response.json() == {"state": "running", "host": "durable-ext start"}


# -- entities: the SDK's counter sample and the class-based accounts ----------------------------

WEBHOOK = "/runtime/webhooks/durabletask"


def until_ok(url: str, expected: Any, timeout: float = 30.0) -> Response:
    """GET `url` until it answers 200 with `expected` as its JSON body."""
    deadline = time.monotonic() + timeout
    while True:
        response = http("GET", url)
        if response.status == 200 and response.json() == expected:
            return response
        assert response.status in (200, 404), response.text
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: still {response.status} {response.text}")
        time.sleep(0.1)


def test_the_counter_entity_from_an_orchestrator_a_client_and_http(
    sample_host: LocalHostProcess,
) -> None:
    # called and signalled from an orchestrator: the signal runs before the call
    status = finished(start(sample_host, "counter_orchestration"))
    assert (status["runtimeStatus"], status["output"]) == ("Completed", 3)

    # signalled and read by the app's client functions
    key = "c" + secrets.token_hex(3)
    assert http("GET", f"{sample_host.base_url}/api/counters/{key}").status == 404
    for amount in (4, 5):
        response = http("POST", f"{sample_host.base_url}/api/counters/{key}/add", amount)
        assert response.status == 202, response.text
    until_ok(f"{sample_host.base_url}/api/counters/{key}", {"key": key, "state": 9})

    # signalled and read over the management API
    entity = f"{sample_host.base_url}{WEBHOOK}/entities/Counter/{key}"
    assert http("POST", f"{entity}?op=add", 1).status == 202
    until_ok(entity, 10)
    # ... and as the app's management functions (the path the Functions host serves in Azure)
    functions = f"{sample_host.base_url}/api/durabletask/entities/Counter"
    until_ok(f"{functions}/{key}", 10)
    assert key in [e["entityId"]["key"] for e in http("GET", functions).json()]
    listed = http("GET", f"{sample_host.base_url}{WEBHOOK}/entities/Counter?fetchState=true")
    assert {"entityId": {"name": "counter", "key": key}, "state": 10} in [
        {k: e[k] for k in ("entityId", "state")} for e in listed.json()
    ]


def test_class_based_accounts_and_a_critical_section(sample_host: LocalHostProcess) -> None:
    a, b = "a" + secrets.token_hex(3), "b" + secrets.token_hex(3)
    for key in (a, b):
        deposit = f"{sample_host.base_url}{WEBHOOK}/entities/Account/{key}?op=deposit"
        assert http("POST", deposit, 50).status == 202
    until_ok(f"{sample_host.base_url}{WEBHOOK}/entities/Account/{a}", {"balance": 50})
    until_ok(f"{sample_host.base_url}{WEBHOOK}/entities/Account/{b}", {"balance": 50})
    there = start(sample_host, "transfer", {"from": a, "to": b, "amount": 20})
    back = start(sample_host, "transfer", {"from": b, "to": a, "amount": 5})
    assert finished(there)["output"]["transferred"] is True  # the two run in either order
    assert finished(back)["output"]["transferred"] is True
    too_much = finished(start(sample_host, "transfer", {"from": a, "to": b, "amount": 1000}))
    assert too_much["output"] == {"transferred": False, "balance": 35}
    until_ok(f"{sample_host.base_url}{WEBHOOK}/entities/Account/{b}", {"balance": 65})
