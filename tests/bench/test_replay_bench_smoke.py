"""Smoke test of `bench/replay.py` at a small size: both engines replay the same history to the
same output. Speed is never asserted in tests; `make bench` does that."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH_SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "replay.py"
SMALL = 200

# The SDK notes once per process that activity results are decoded without an expected type.
pytestmark = pytest.mark.filterwarnings("ignore:azure.functions df_loads:DeprecationWarning")


@pytest.fixture(scope="module")
def replay() -> ModuleType:
    """`bench/replay.py`, loaded by path (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_replay", BENCH_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("scenario", ["chain", "fan_out"])
def test_both_engines_produce_the_same_output(replay: ModuleType, scenario: str) -> None:
    workload = replay.SCENARIOS[scenario](SMALL)
    assert SMALL <= workload.event_count < SMALL + 4
    assert 0 < workload.split < workload.event_count

    ours = replay.check_ours(replay.run_ours(workload), workload)
    sdk = replay.check_sdk(replay.run_sdk(workload), workload)

    assert ours == sdk == workload.expected_output


@pytest.mark.parametrize("scenario", ["chain", "fan_out"])
def test_compare_checks_outputs_and_records_one_run(replay: ModuleType, scenario: str) -> None:
    comparison = replay.compare(replay.SCENARIOS[scenario](SMALL), runs=1)

    assert comparison.output == comparison.workload.expected_output
    assert len(comparison.ours.wall) == len(comparison.sdk.wall) == 1
    assert "speed-up" in replay.format_table([comparison], 1)


@pytest.mark.parametrize("scenario", ["chain", "fan_out"])
def test_checks_reject_a_history_that_does_not_finish(replay: ModuleType, scenario: str) -> None:
    """Without its last TaskCompleted neither engine can finish: the checks must notice, so the
    benchmark cannot time an engine that stopped early."""
    workload = replay.SCENARIOS[scenario](SMALL)
    trigger = json.loads(workload.trigger_json)
    trigger["history"] = trigger["history"][:-1]
    unfinished = dataclasses.replace(
        workload, events=workload.events[:-1], trigger_json=json.dumps(trigger)
    )

    with pytest.raises(AssertionError, match="Running"):
        replay.check_ours(replay.run_ours(unfinished), unfinished)
    with pytest.raises(AssertionError, match="did not finish"):
        replay.check_sdk(replay.run_sdk(unfinished), unfinished)


def test_main_writes_the_json_report(replay: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "replay.json"

    status = replay.main(
        ["--events", str(SMALL), "--runs", "5", "--threshold", "0", "--json", str(out)]
    )

    assert status == 0
    report = json.loads(out.read_text())
    assert [s["scenario"] for s in report["scenarios"]] == ["chain", "fan_out"]
    for scenario in report["scenarios"]:
        assert len(scenario["durable_ext"]["wall_s"]) == len(scenario["sdk"]["cpu_s"]) == 5
