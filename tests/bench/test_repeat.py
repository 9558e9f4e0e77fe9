"""The repeated fan-out part (bench/repeat.py, bench/repeat_analysis.py): its results' shape at tiny
sizes on the session Azurite, and its verdict on made-up figures (never how fast anything is)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.repeat import PROBE_OPS, measure_repeat
from bench.repeat_analysis import FIGURES, repeat_markdown, summarize_repeat, verdict
from tests.azurite import AzuriteInstance


def test_repeat_runs_probes_and_controls_and_summarizes(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    raw = measure_repeat(
        azurite.connection_string,
        hub_name,
        runs=2,
        size=4,
        probe_repeats=1,
        control_every=2,
        storage_pid=azurite.pid,
        warm_up=False,
        back_to_back=2,
    )

    records = raw["records"]
    assert [r["run"] for r in records] == [1, 2]
    for record in records:
        assert record["correct"] and record["units"] == 4
        assert record["requests"]["by_category"]["queue.send"] >= 4  # the work items, counted
        assert record["storage_cpu_s"] is not None
        assert len(record["gc"]["seconds"]) == 3
        for key in ("probe", "control"):
            assert list(record[key]["op_median_ms"]) == list(PROBE_OPS)
            assert record[key]["storage_cpu_ms_per_request"] is not None
    # A control fan-out on a fresh hub before run 1 and after the last.
    assert [c["before_run"] for c in raw["controls"]] == [1, 3]
    assert all(c["correct"] for c in raw["controls"])
    # Then two runs with no pause: the second also deletes the first one's work items.
    assert [b["correct"] for b in raw["back_to_back"]] == [True, True]

    summary = summarize_repeat(raw)
    assert summary["all_correct"] and summary["window"] == 1
    assert set(summary["first"]) == {key for key, _ in FIGURES}
    assert summary["first"]["rate"] == records[0]["throughput_per_s"]
    assert summary["first"]["probe_weighted_ms"] > 0
    assert summary["tail"]["deletes"] is not None
    assert len(summary["back_to_back"]) == 2 and summary["back_to_back_ratio"] is not None
    assert summary["verdict"] in ("met", "bounded by the emulator", "inconclusive", "not met")
    lines = repeat_markdown(summary)
    assert any(line.startswith("Rule: met when") for line in lines)


def _figures(rate: float, cpu: float, probe: float, others: float = 0.0) -> dict[str, Any]:
    return {
        "rate": rate,
        "engine_cpu_ms_per_activity": cpu,
        "probe_weighted_ms": probe,
        "control_weighted_ms": 2.0,
        "requests_per_activity": 2.0,
        "others_cores": others,
    }


def _summary(
    first: dict[str, Any], last: dict[str, Any], control: float | None = None
) -> dict[str, Any]:
    ratios = {k: last[k] / first[k] if first[k] else None for k in first}
    return {"first": first, "last": last, "ratios": ratios, "control_ratio": control}


@pytest.mark.parametrize(
    ("last", "control", "met", "name"),
    [
        (_figures(460, 1.0, 2.0), 1.0, True, "met"),
        # rate ×0.6 (a 1.67× slowdown), probe ×2, engine CPU flat: the emulator.
        (_figures(300, 1.05, 4.0), 1.0, True, "bounded by the emulator"),
        # the probe slowed less than the rate: not the emulator alone.
        (_figures(300, 1.05, 2.4), 1.0, False, "not met"),
        # the probe slowed enough, but so did the engine's CPU per activity.
        (_figures(300, 1.5, 4.0), None, False, "not met"),
        # neither explains it and the machine was busier at the end.
        (_figures(300, 1.5, 2.4, others=0.5), 1.0, None, "inconclusive"),
        # the control fan-out on a fresh hub slowed as much.
        (_figures(300, 1.5, 2.4), 0.62, None, "inconclusive"),
    ],
)
def test_verdict_says_met_bounded_or_not(
    last: dict[str, Any], control: float | None, met: bool | None, name: str
) -> None:
    judged = verdict(_summary(_figures(500, 1.0, 2.0), last, control))

    assert judged["met"] is met
    assert judged["verdict"] == name
    assert "last/first rate" in judged["why"]


def test_a_failed_part_is_reported_not_judged() -> None:
    summary = summarize_repeat({"error": "exit status 1", "stderr": ""})

    assert summary["met"] is None
    assert repeat_markdown(summary) == ["Not measured: the part failed: exit status 1."]
