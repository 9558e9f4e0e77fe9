"""The scale-out part (bench/scale_out.py): two worker processes on one hub at a tiny size, and
its summary's verdict on made-up runs. No timing assertions."""

from __future__ import annotations

from typing import Any

import pytest

from bench.results import from_json
from bench.scale_out import (
    balanced,
    measure_scale_out,
    queue_traffic,
    scale_out_markdown,
    scale_out_verdict,
    summarize_scale_out,
)
from tests.azurite import AzuriteInstance

QUEUES = "http://127.0.0.1:1/devstoreaccount1"


async def test_two_worker_processes_share_the_hub_after_rebalancing(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    run = await measure_scale_out(
        azurite.connection_string,
        hub_name,
        workers=2,
        count=4,
        steps=2,
        warm_up=1,
        # Passes every second instead of every 10 s: the hand-over settles sooner.
        options=["lease_acquire_interval=1"],
        storage_pid=azurite.pid,
    )

    assert run["correct"], run
    assert "worker_stderr" not in run, run["worker_stderr"]
    assert run["units"] == 4 and run["throughput_per_s"] > 0
    workers = run["per_worker"]
    assert len(workers) == 2
    assert balanced([w["owned_before"] for w in workers], run["partitions"])
    assert sorted(r["owner"] for r in run["partition_rows"]) == sorted(
        w["worker_id"] for w in workers for _ in w["owned_before"]
    )
    assert sum(w["completed"] for w in workers) == 4
    assert sum(w["activities"] for w in workers) == 8
    assert all(w["cpu_s"] >= 0 and w["requests"]["total"] > 0 for w in workers)
    assert all({"lost", "failed_passes", "log"} <= set(w["ownership"]) for w in workers)
    assert run["client_requests"]["total"] > 0
    assert run["storage_cpu_s"] is not None


def test_balanced_means_every_worker_serves_some_and_together_all() -> None:
    assert balanced([[0, 1], [2, 3]], 4)
    assert balanced([[0, 1, 2, 3]], 4)
    assert not balanced([[0, 1, 2, 3], []], 4)
    assert not balanced([[0, 1], [1, 2, 3]], 4)
    assert not balanced([[0], [2, 3]], 4)


def test_queue_traffic_tells_queues_held_sends_and_messages_apart() -> None:
    workitems = f"{QUEUES}/hub-workitems/messages"
    control = f"{QUEUES}/hub-control-02/messages"
    assert queue_traffic("POST", f"{workitems}?visibilitytimeout=30", b"") == {
        "workitems.sent_held": 1
    }
    assert queue_traffic("POST", control, b"") == {"control.sent_visible": 1}
    message = b"<QueueMessage><MessageId>m</MessageId></QueueMessage>"
    two = b"<QueueMessagesList>" + message * 2 + b"</QueueMessagesList>"
    assert queue_traffic("GET", f"{control}?numofmessages=32", two) == {"control.received": 2}
    assert queue_traffic("GET", workitems, b"<QueueMessagesList/>") == {"workitems.empty": 1}
    assert queue_traffic("DELETE", f"{workitems}/abc?popreceipt=x", b"") == {}


def _run(workers: int, rate: float) -> dict[str, Any]:
    """A made-up measured run of 100 orchestrations spread evenly over `workers`."""
    requests = {
        "total": 2000 // workers,
        "total_without_empty_receives": 1900 // workers,
        "by_category": {"queue.receive.empty": 100 // workers},
        "median_ms": {"queue.send": 5.0 * workers},
    }
    return {
        "workers": workers,
        "units": 100,
        "steps": 5,
        "correct": True,
        "throughput_per_s": rate,
        "wall_s": 100 / rate,
        "rebalance_s": 11.0,
        "workers_cpu_s": 1.5,
        "client_cpu_s": 0.3,
        "storage_cpu_s": 3.0,
        "other_cpu_s": 0.1,
        "cores": 2,
        "client_requests": {"total": 250},
        "per_worker": [
            {
                "name": f"w{i + 1}",
                "owned_after": [i],
                "cpu_s": 1.5 / workers,
                "started": 100 // workers,
                "completed": 100 // workers,
                "activities": 500 // workers,
                "requests": requests,
                "traffic": {"control.received": 100 // workers},
                "owned_before": [i],
                "ownership": {"lost": 0, "failed_passes": 0, "log": []},
            }
            for i in range(workers)
        ],
    }


@pytest.mark.parametrize(("two_rate", "met"), [(33.0, True), (27.0, False)])
def test_the_verdict_compares_two_workers_with_one(two_rate: float, met: bool) -> None:
    raw = {"count": 100, "steps": 5, "runs": {"1": [_run(1, 30.0)], "2": [_run(2, two_rate)]}}

    summary = summarize_scale_out(raw)

    assert summary["met"] is met
    assert summary["ratio"] == pytest.approx(two_rate / 30.0)
    assert summary["per_cpu_ratio"] == pytest.approx(1.0)
    assert summary["two"]["largest_worker_share"] == pytest.approx(0.5)
    assert summary["two"]["activities_from_queue_share"] == 0
    assert any("of which Azurite 30.0 ms" in f for f in summary["findings"])
    assert "No partition changed hands during any measured run." in summary["findings"]
    document = {"generated_at": "", "duration_s": 1.0, "runs": 1, "environment": {}, "engines": []}
    loaded = from_json({**document, "summary": {"scale_out": summary}})
    text = "\n".join(scale_out_markdown(loaded.summary.scale_out or {}))
    assert ("**met**" if met else "**not met**") in text


def test_partitions_changing_hands_during_a_run_are_reported() -> None:
    moved = _run(2, 30.0)
    moved["per_worker"][0]["owned_after"] = [1]
    moved["per_worker"][0]["activities"] += 7
    raw = {"count": 100, "steps": 5, "runs": {"1": [_run(1, 30.0)], "2": [moved]}}

    summary = summarize_scale_out(raw)

    assert summary["two"]["runs_with_ownership_changes"] == 1
    assert summary["two"]["repeated_activities"] == 7
    assert any(f.startswith("Partition ownership changed") for f in summary["findings"])


def test_the_verdict_says_not_measured_without_a_ratio() -> None:
    assert scale_out_verdict(None)[0] is None
    assert scale_out_verdict(1.0)[0] is True
    assert scale_out_verdict(0.99)[0] is False
    summary = summarize_scale_out({"runs": {"1": [_run(1, 30.0)], "2": [{"error": "exit 1"}]}})
    assert summary["met"] is None and summary["two"]["error"] == "exit 1"
