"""One trace across processes: a client here, a parent orchestration in one worker process and its
sub-orchestration in another, linked by the trace context the messages carry."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from durable_ext import OrchestrationRuntimeStatus
from durable_ext.runtime import Runtime
from durable_ext.storage.names import partition_index
from tests.azurite import AzuriteInstance
from tests.faults.worker_processes import WorkerCluster
from tests.monitoring.span_file import TRACE_FILE_ENV, read_spans
from tests.wait import wait_for
from tests.worker.conftest import fast_options
from tests.worker.fault_app import registry

pytestmark = pytest.mark.slow
PARTITIONS = 4


def id_on(partitions: frozenset[int], prefix: str) -> str:
    """An instance id on one of `partitions`."""
    for n in itertools.count():
        if partition_index(f"{prefix}-{n}", PARTITIONS) in partitions:
            return f"{prefix}-{n}"
    raise AssertionError("unreachable")


async def test_parent_activities_and_child_share_one_trace_over_two_workers(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    files = {name: tmp_path / f"{name}.spans.jsonl" for name in ("a", "b")}
    connection = azurite.connection_string
    with WorkerCluster(connection, hub_name, tmp_path, tmp_path / "activities.log") as cluster:
        for name, path in files.items():
            cluster.start(name, {TRACE_FILE_ENV: str(path)})

        def split() -> dict[str, frozenset[int]] | None:
            views = cluster.views()
            owned = [views.get(name, frozenset()) for name in files]
            whole = frozenset().union(*owned) == frozenset(range(PARTITIONS))
            balanced = all(len(o) == PARTITIONS // len(files) for o in owned)
            return dict(zip(files, owned, strict=True)) if whole and balanced else None

        views = await wait_for(split, 60, interval=0.2)
        parent_id, child = id_on(views["a"], "parent"), id_on(views["b"], "child")
        client_runtime = Runtime(
            registry,
            connection=connection,
            hub=hub_name,
            options=fast_options(distributed_tracing=True),
            run_worker=False,
        )
        async with client_runtime as rt:
            rt.hub.tracing.enabled = True
            await rt.client.start_new(
                "named_child_parent", parent_id, {"child_id": child, "items": 2, "ms": 10}
            )
            status = await rt.client.wait_for_completion(parent_id, timeout=60, poll_interval=0.2)
        assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    [start] = [
        s for s in spans.get_finished_spans() if s.name == "create_orchestration:named_child_parent"
    ]
    trace_id = f"{start.context.trace_id:032x}"
    written = {name: read_spans(path) for name, path in files.items()}
    assert {s["trace_id"] for s in written["a"] + written["b"]} == {trace_id}
    names = {name: {s["name"] for s in found} for name, found in written.items()}
    assert "orchestration:named_child_parent" in names["a"]
    assert "orchestration:child" in names["b"]
    activity_servers = [
        s
        for s in written["a"] + written["b"]
        if s["name"] == "activity:work" and s["kind"] == "SERVER"
    ]
    assert len(activity_servers) == 2
    child_episodes = {s["span_id"] for s in written["b"] if s["name"] == "orchestration:child"}
    assert {s["parent_id"] for s in activity_servers} <= child_episodes
    parent_episodes = {
        s["span_id"] for s in written["a"] if s["name"] == "orchestration:named_child_parent"
    }
    first_child_episode = [s for s in written["b"] if s["name"] == "orchestration:child"][0]
    assert first_child_episode["parent_id"] in parent_episodes
