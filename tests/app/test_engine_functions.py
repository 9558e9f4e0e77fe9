"""The functions every DFApp registers for its engine: what the host indexes, and the hold bound."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

import durable_ext as df
from durable_ext.host.embedded import function_timeout_of
from durable_ext.host.engine_functions import (
    DEFAULT_HEARTBEAT_SCHEDULE,
    HEARTBEAT_SCHEDULE_SETTING,
    hold_limit,
)
from durable_ext.host.http_functions import http_functions


def bindings_by_function(app: df.DFApp) -> dict[str, list[dict[str, object]]]:
    return {
        str(f.get_function_name()): [json.loads(b) for b in f.get_raw_bindings()]
        for f in app.get_functions()
    }


def test_the_heartbeat_and_health_functions_are_indexed_with_a_route_the_host_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(HEARTBEAT_SCHEDULE_SETTING, raising=False)
    functions = bindings_by_function(df.DFApp())
    [timer] = functions["durabletask_heartbeat"]
    assert (timer["type"], timer["schedule"], timer["runOnStartup"]) == (
        "timerTrigger",
        DEFAULT_HEARTBEAT_SCHEDULE,
        False,
    )
    trigger = functions["durabletask_health"][0]
    assert (trigger["type"], trigger["route"], trigger["methods"], trigger["authLevel"]) == (
        "httpTrigger",
        "durabletask/health",
        ["GET"],
        "FUNCTION",
    )
    assert not str(trigger["route"]).lower().startswith(("admin", "runtime"))


def test_the_heartbeat_schedule_comes_from_an_app_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HEARTBEAT_SCHEDULE_SETTING, "0 */5 * * * *")
    [timer] = bindings_by_function(df.DFApp())["durabletask_heartbeat"]
    assert timer["schedule"] == "0 */5 * * * *"


@pytest.mark.parametrize(
    ("function_timeout", "held_at_most"),
    [
        (None, 270.0),  # the Consumption default, 5 min, less 10 %
        ("00:10:00", 540.0),
        ("00:00:30", 20.0),  # at least 10 s of margin
        ("-1", 1620.0),  # unbounded: as if 30 min
    ],
)
def test_the_heartbeat_holds_at_most_a_margin_below_function_timeout(
    function_timeout: str | None, held_at_most: float
) -> None:
    host_json = {} if function_timeout is None else {"functionTimeout": function_timeout}
    assert hold_limit(function_timeout_of(host_json)) == held_at_most
    assert hold_limit(timedelta(seconds=5)) == 0.0


def test_the_local_host_skips_the_engine_functions_quietly_and_names_other_non_http_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = df.DFApp()

    @app.timer_trigger(arg_name="timer", schedule="0 0 * * * *")
    def nightly(timer: object) -> None:
        """A user's timer: `durable-ext start` does not run it, and says so."""

    with caplog.at_level(logging.WARNING, logger="durable_ext.host"):
        served = {f.name for f in http_functions(app.get_functions())}
    assert "durabletask_health" in served
    assert [r.getMessage() for r in caplog.records] == [
        "Function nightly (timerTrigger) is not run by the local host"
    ]
