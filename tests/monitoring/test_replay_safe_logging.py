"""`context.create_replay_safe_logger`: each line once, however often the code replays."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from durable_ext import DurableOrchestrationContext
from tests.worker.test_patterns_end_to_end import registry

from .conftest import TrackingRecords

USER_LOGGER = "tests.monitoring.orchestrator"


def chatty(ctx: DurableOrchestrationContext):
    safe = ctx.create_replay_safe_logger(logging.getLogger(USER_LOGGER))
    plain = logging.getLogger(USER_LOGGER + ".plain")
    for step in range(3):
        safe.info("step %d", step)
        plain.info("step %d", step)
        yield ctx.call_activity("echo", step)
    safe.info("done")
    return "ok"


@pytest.fixture
def user_logs() -> Iterator[TrackingRecords]:
    logger = logging.getLogger(USER_LOGGER)
    handler = TrackingRecords()
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)


async def test_each_line_is_logged_once_although_every_episode_replays(runtime, user_logs) -> None:
    async with runtime(registry(o_chatty=chatty, echo=lambda n: n), instance_cache_size=0) as rt:
        instance_id = await rt.client.start_new("chatty")
        await rt.client.wait_for_completion(instance_id, timeout=60)
    safe = [r.getMessage() for r in user_logs.records if r.name == USER_LOGGER]
    plain = [r.getMessage() for r in user_logs.records if r.name.endswith(".plain")]
    assert safe == ["step 0", "step 1", "step 2", "done"]
    # Without the guard, every replay repeats the earlier lines: 1 + 2 + 3 + 3 of them.
    assert len(plain) == 9
    assert {getattr(r, "instanceId", None) for r in user_logs.records if r.name == USER_LOGGER} == {
        instance_id
    }
