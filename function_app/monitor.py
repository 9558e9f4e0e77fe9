"""Monitor: poll an external job on a durable timer until it is done or the monitor expires.

Start it with `POST /api/orchestrators/job_monitor` and a body such as
`{"jobId": "job-42", "pollingIntervalSeconds": 30, "expirySeconds": 3600}`; `customStatus` in the
status response shows the progress while it runs.
"""

import logging
from datetime import timedelta
from typing import Any

import durable_ext as df

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def job_monitor(context: df.DurableOrchestrationContext):
    job: dict[str, Any] = context.get_input()
    job_id = job["jobId"]
    polling_interval = timedelta(seconds=job.get("pollingIntervalSeconds", 30))
    # Durable timers and context.current_utc_datetime, never datetime.now(): the orchestrator
    # replays, and must make the same decisions every time.
    expiry = context.current_utc_datetime + timedelta(seconds=job.get("expirySeconds", 3600))

    checks = 0
    while context.current_utc_datetime < expiry:
        checks += 1
        job_status = yield context.call_activity(get_job_status, {**job, "check": checks})
        context.set_custom_status({"jobId": job_id, "checks": checks, "jobStatus": job_status})
        if job_status == "Completed":
            yield context.call_activity(send_alert, f"Job {job_id} completed")
            return {"jobId": job_id, "status": "Completed", "checks": checks}
        yield context.create_timer(context.current_utc_datetime + polling_interval)

    return {"jobId": job_id, "status": "Expired", "checks": checks}


@bp.activity_trigger(input_name="job")
def get_job_status(job: dict[str, Any]) -> str:
    # Stands in for a call to the service that runs the job. This simulated job completes on
    # check number `completeAfterChecks` (never, if the input does not say).
    complete_after = job.get("completeAfterChecks")
    return "Completed" if complete_after and job["check"] >= complete_after else "Running"


@bp.activity_trigger(input_name="message")
def send_alert(message: str) -> None:
    # Stands in for an e-mail, SMS or chat notification.
    logging.warning("ALERT: %s", message)
