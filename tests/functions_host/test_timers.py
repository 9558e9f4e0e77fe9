"""Timer functions fire on their schedules, with `func.TimerRequest` as the worker builds it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from azure.functions.timer import TimerRequest

from tests.functions_host import FakeHost, ManualClock
from tests.functions_host.conftest import APPS


async def test_a_timer_fires_on_its_schedule_and_once_past_due_after_a_gap() -> None:
    clock = ManualClock()
    settings = {"TICK_SCHEDULE": "0 */5 * * * *"}
    async with FakeHost(APPS / "rules", app_settings=settings, clock=clock) as host:
        clock.advance(timedelta(minutes=4, seconds=59))
        assert host.invocations.of("tick") == []
        clock.advance(timedelta(seconds=1))
        first = await host.invocations.wait_for(lambda i: i.function == "tick")
        request = first.trigger_value
        assert isinstance(request, TimerRequest)
        assert (request.past_due, request.schedule) == (False, {"AdjustForDST": True})
        assert request.schedule_status["Next"] == "2026-01-01T00:10:00+00:00"

        clock.advance(timedelta(minutes=27))  # the 00:10 ... 00:30 occurrences pass unseen
        late = await host.invocations.wait_for(lambda i: i.trigger_value.past_due)
        assert late.succeeded
        assert len(host.invocations.of("tick")) == 2


async def test_a_timer_fires_in_real_time() -> None:
    async with FakeHost(APPS / "rules", app_settings={"TICK_SCHEDULE": "* * * * * *"}) as host:
        fired = await host.invocations.wait_for(lambda i: i.function == "tick", timeout=3)
    assert fired.succeeded


async def test_run_on_startup_and_firing_on_demand(tmp_path: Path) -> None:
    root = tmp_path
    (root / "function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.timer_trigger(schedule='0 0 0 1 1 *', arg_name='t', run_on_startup=True)\n"
        "async def yearly(t: func.TimerRequest) -> None:\n"
        "    pass\n"
    )
    async with FakeHost(root, clock=ManualClock()) as host:
        at_start = await host.invocations.wait_for(lambda i: i.function == "yearly")
        on_demand = await host.fire_timer("yearly", past_due=True)
        assert on_demand.trigger_value.past_due and on_demand.succeeded
        assert [i.invocation_id for i in host.invocations.of("yearly")] == [
            at_start.invocation_id,
            on_demand.invocation_id,
        ]
