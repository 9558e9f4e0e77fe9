"""OpenTelemetry spans from real runs on Azurite: names, kinds, attributes, one trace per
orchestration across its activities, timers and sub-orchestrations; nothing when switched off."""

from __future__ import annotations

from datetime import timedelta

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind, StatusCode

from durable_ext import DurableOrchestrationContext, OrchestrationRuntimeStatus
from tests.worker.test_patterns_end_to_end import registry


def parent(ctx: DurableOrchestrationContext):
    first = yield ctx.call_activity("echo", "a")
    yield ctx.create_timer(ctx.current_utc_datetime + timedelta(milliseconds=200))
    child = yield ctx.call_sub_orchestrator("child", "b", instance_id=f"{ctx.instance_id}-child")
    return first + child


def child(ctx: DurableOrchestrationContext):
    return (yield ctx.call_activity("echo", ctx.get_input()))


def apps():
    return registry(o_parent=parent, o_child=child, echo=lambda s: s)


def by_name(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


async def test_one_trace_links_the_orchestration_its_tasks_and_its_child(runtime, spans) -> None:
    async with runtime(apps(), distributed_tracing=True) as rt:
        instance_id = await rt.client.start_new("parent")
        status = await rt.client.wait_for_completion(instance_id, timeout=60)
    assert status.runtime_status is OrchestrationRuntimeStatus.Completed
    finished = list(spans.get_finished_spans())
    [start] = by_name(finished, "create_orchestration:parent")
    assert start.kind is SpanKind.PRODUCER
    assert start.attributes == {
        "durabletask.type": "orchestration",
        "durabletask.task.name": "parent",
        "durabletask.task.instance_id": instance_id,
    }
    trace_id = start.context.trace_id
    ours = [s for s in finished if s.context.trace_id == trace_id]
    assert {s.name for s in ours} == {
        "create_orchestration:parent",
        "orchestration:parent",
        "activity:echo",
        "orchestration:parent:timer",
        "orchestration:child",
    }
    assert len(ours) == len(finished), "every span belongs to the orchestration's trace"
    episodes = by_name(finished, "orchestration:parent")
    assert {s.kind for s in episodes} == {SpanKind.SERVER}
    assert {s.parent.span_id for s in episodes} == {start.context.span_id}
    assert episodes[-1].attributes["durabletask.task.status"] == "Completed"
    episode_ids = {s.context.span_id for s in episodes}
    activities = by_name(finished, "activity:echo")
    servers = [s for s in activities if s.kind is SpanKind.SERVER]
    clients = [s for s in activities if s.kind is SpanKind.CLIENT]
    assert len(servers) == len(clients) == 2  # the parent's call and the child's

    def of_parent(found: list[ReadableSpan]) -> ReadableSpan:
        [span] = [s for s in found if s.attributes["durabletask.task.instance_id"] == instance_id]
        return span

    assert of_parent(servers).parent.span_id in episode_ids
    assert of_parent(clients).parent.span_id in episode_ids
    assert of_parent(clients).attributes["durabletask.task.task_id"] == "0"
    [timer] = by_name(finished, "orchestration:parent:timer")
    assert timer.kind is SpanKind.INTERNAL and "durabletask.fire_at" in timer.attributes
    assert timer.end_time - timer.start_time >= 150_000_000
    children = by_name(finished, "orchestration:child")
    child_servers = [s for s in children if s.kind is SpanKind.SERVER]
    assert child_servers and all(s.parent.span_id in episode_ids for s in child_servers)
    assert [s.kind for s in children if s.kind is SpanKind.CLIENT] == [SpanKind.CLIENT]


def fails(ctx: DurableOrchestrationContext):
    yield ctx.call_activity("boom", None)


async def test_failures_mark_their_spans_as_errors(runtime, spans) -> None:
    def boom(_: object) -> None:
        raise ValueError("no")

    async with runtime(registry(o_fails=fails, boom=boom), distributed_tracing=True) as rt:
        instance_id = await rt.client.start_new("fails")
        await rt.client.wait_for_completion(instance_id, timeout=60)
    finished = list(spans.get_finished_spans())
    [server] = [s for s in by_name(finished, "activity:boom") if s.kind is SpanKind.SERVER]
    assert server.status.status_code is StatusCode.ERROR
    last = by_name(finished, "orchestration:fails")[-1]
    assert last.status.status_code is StatusCode.ERROR
    assert last.attributes["durabletask.task.status"] == "Failed"


async def test_no_span_when_tracing_is_switched_off(runtime, spans) -> None:
    async with runtime(apps()) as rt:
        instance_id = await rt.client.start_new("parent")
        await rt.client.raise_event(instance_id, "ignored", 1)
        await rt.client.wait_for_completion(instance_id, timeout=60)
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    assert list(spans.get_finished_spans()) == []
