"""The HTTP row of the bench: the `durable_ext_http` engine drives the real `durable-ext start`
host over HTTP (every scenario, outputs checked, requests counted, the host stopped), and the
comparison with in-process says met and not met from made-up figures. No timing assertions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import suite
from bench.child import make_engine, measure
from bench.engines.http_host import DurableExtHttpEngine
from bench.http_analysis import GOAL_RATIO, http_markdown, summarize_http, verdict
from tests.azurite import AzuriteInstance

TINY = {"sequential": 3, "fanout": 4, "hellocities": 2, "events": 3, "latency": 2}


def test_every_scenario_runs_over_http_through_the_local_host(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path
) -> None:
    engine = make_engine(
        "durable_ext_http", connection=azurite.connection_string, hub=hub_name, workdir=tmp_path
    )
    assert isinstance(engine, DurableExtHttpEngine)
    engine.start()
    try:
        for scenario, size in TINY.items():
            engine.reset_storage_requests()
            outcome = engine.run(scenario, size, 2)
            requests = engine.storage_requests()

            assert outcome.correct, (scenario, engine.tail())
            assert outcome.units == size
            assert requests["total"] > 0, scenario  # the host's worker
            assert requests["client"]["total"] > 0, scenario  # its HTTP functions
            assert engine.host_cpu_s() is not None
            http = requests["http"]
            assert http["start"] == (size if scenario in ("hellocities", "latency") else 1)
            if scenario == "hellocities":
                assert http["instances"] >= 1
            else:
                assert http["status"] >= (size if scenario == "latency" else 1)
            if scenario == "events":
                assert http["raise"] == size
    finally:
        engine.stop()
    process = engine._process
    assert process is not None and process.returncode == 0, engine.tail()
    assert "Stopping..." in engine.log()


def test_a_measured_run_reports_host_and_driver_cpu_apart(
    azurite: AzuriteInstance, hub_name: str, tmp_path: Path
) -> None:
    engine = make_engine(
        "durable_ext_http", connection=azurite.connection_string, hub=hub_name, workdir=tmp_path
    )

    result = measure(engine, "sequential", 3, 2, warm_up=False, storage_pid=azurite.pid)

    assert result["correct"]
    assert result["cpu_s"] == pytest.approx(result["host_cpu_s"] + result["driver_cpu_s"])
    assert result["activities_run"] == 3  # counted by the host's activities
    assert result["requests"]["client"]["by_category"]["table.get"] >= 1  # the status polls


def _run(throughput: float, p50: float | None = None, units: int = 10) -> dict[str, Any]:
    return {
        "units": units,
        "correct": True,
        "throughput_per_s": throughput,
        "wall_s": units / throughput,
        "cpu_s": 0.5,
        "host_cpu_s": 0.4,
        "driver_cpu_s": 0.1,
        "storage_cpu_s": 0.3,
        "p50_ms": p50,
        "requests": {
            "by_category": {"queue.send": units},
            "client": {"by_category": {"table.get": 2 * units}},
            "http": {"total": 3 * units, "status": 3 * units},
        },
    }


@pytest.mark.parametrize(("http_rate", "met"), [(90.0, True), (50.0, False)])
def test_the_goal_is_every_scenario_at_085_of_in_process(http_rate: float, met: bool) -> None:
    raw = {
        "scenarios": {
            "sequential": {"durable_ext": [_run(100.0)], "durable_ext_http": [_run(http_rate)]},
            "latency": {
                "durable_ext": [_run(50.0, p50=10.0)],
                "durable_ext_http": [_run(45.0, p50=11.0)],
            },
        },
        "levers": [
            {
                "engine": "durable_ext_http",
                "key": "x",
                "off_option": "DURABLE_EXT_HTTP_X=false",
                "off": {"sequential": [_run(http_rate / 2)]},
            }
        ],
    }

    summary = summarize_http(raw)

    assert summary["met"] is met
    assert summary["scenarios"]["sequential"]["ratio"] == pytest.approx(http_rate / 100)
    assert summary["scenarios"]["latency"]["ratio"] == pytest.approx(10 / 11)
    assert ("below" in summary["why"]) is not met
    text = "\n".join(http_markdown(summary))
    assert "| sequential |" in text and "status 3.00" in text
    assert ("**met**" in text) is met
    assert f"| `DURABLE_EXT_HTTP_X=false` | sequential | {http_rate:.1f}/s | " in text


def test_the_verdict_is_unknown_without_both_engines() -> None:
    assert verdict({})[0] is None
    assert verdict({"events": GOAL_RATIO})[0] is True
    assert summarize_http({"scenarios": {"events": {"durable_ext": [_run(10.0)]}}})["met"] is None


def test_http_levers_are_app_settings_measured_on_the_http_engine() -> None:
    http_levers = [lever for lever in suite.LEVERS if lever.engine == "durable_ext_http"]
    assert {lever.key for lever in http_levers} >= {"http_raise_reads_once"}
    for lever in http_levers:
        assert lever.off.partition("=")[0].startswith("DURABLE_EXT_HTTP_"), lever.key
