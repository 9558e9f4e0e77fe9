"""The results loader (bench/results.py): the committed results load, a malformed document is
refused with an error that says where, and the shapes older or failed runs leave are read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import report
from bench.results import (
    SDK_CLIENT,
    ChainSeries,
    Failed,
    Idle,
    Replay,
    ResultsError,
    from_json,
    load,
)

COMMITTED = Path(__file__).resolve().parents[2] / "bench" / "results.json"


def _document(**parts: Any) -> dict[str, Any]:
    """The smallest valid results document, with `parts` added."""
    return {
        "generated_at": "2026-01-01T00:00:00+00:00",
        "duration_s": 60.0,
        "runs": 3,
        "environment": {},
        "engines": ["durable_ext"],
        **parts,
    }


def test_the_committed_results_load_with_every_part_typed() -> None:
    results = load(COMMITTED)

    floor = results.raw.floor
    assert floor is not None
    assert list(floor.steps) == ["dtfx", "handoff", "dtfx_lean", "handoff_lean", "result_in_memory"]
    assert floor.steps["dtfx"].client == SDK_CLIENT
    assert list(floor.parallel) == ["parallel", "parallel_lean"]
    assert isinstance(results.raw.replay, Replay)
    assert isinstance(results.raw.idle, Idle)
    assert results.summary.chain is not None
    assert isinstance(results.summary.chain.cache_on, ChainSeries)
    sequential = results.scenario("sequential", "durable_ext")
    assert sequential is not None and sequential.throughput_per_s
    assert results.scenario("sequential", "no such engine") is None


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"duration_s": 1.0}, "results: missing 'generated_at'"),
        (_document(runs="3"), 'results.runs: expected an integer, got "3"'),
        (_document(runs=True), "results.runs: expected an integer, got true"),
        (_document(engines="durable_ext"), 'results.engines: expected a list, got "durable_ext"'),
        (
            _document(summary={"scenarios": {"fanout": {"dbos": {"throughput_per_s": "fast"}}}}),
            'results.summary.scenarios.fanout.dbos.throughput_per_s: expected a number, got "fast"',
        ),
        (
            _document(raw={"floor": {"variants": ["dtfx"], "dtfx": {"step_ms": [1.0]}}}),
            "results.raw.floor.dtfx.step_ms: expected a number, got [1.0]",
        ),
        (_document(raw={"idle": {"count": 10}}), "results.raw.idle: missing 'rss_idle_mb'"),
        ([], "results: expected an object, got []"),
    ],
)
def test_a_malformed_document_is_refused_saying_where(document: Any, says: str) -> None:
    with pytest.raises(ResultsError) as refused:
        from_json(document)

    assert str(refused.value) == says


def test_a_file_that_is_not_json_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"generated_at": ')

    with pytest.raises(ResultsError, match=r"results\.json: not JSON"):
        load(path)


def test_the_report_command_exits_with_the_error_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results, markdown = tmp_path / "results.json", tmp_path / "performance.md"
    results.write_text(json.dumps(_document(runs="three")))
    argv = ["--results", str(results), "--markdown", str(markdown)]

    with pytest.raises(SystemExit) as exited:
        report.main([*argv, "--chart", str(tmp_path / "performance.png")])

    assert exited.value.code == 1
    assert "results.runs: expected an integer" in capsys.readouterr().err
    assert not markdown.exists()


def test_integers_are_numbers_and_unknown_keys_are_left_out() -> None:
    results = from_json(_document(duration_s=60, command="python -m bench", extra={"a": 1}))

    assert results.duration_s == 60
    assert not hasattr(results, "command")


def test_failed_parts_keep_their_error() -> None:
    raw = {
        "idle": {"count": 10, "error": "RuntimeError()", "traceback": "..."},
        "replay": {"error": "exit status 1", "stderr": "..."},
        "profile": {"fanout": {"error": "no profile written"}},
    }
    summary = {"chain": {"lengths": [3, 6], "cache_on": {"error": "a chain run failed"}}}

    results = from_json(_document(raw=raw, summary=summary))

    assert results.raw.idle == Failed("RuntimeError()")
    assert results.raw.replay == Failed("exit status 1")
    assert results.raw.profile == {"fanout": Failed("no profile written")}
    assert results.summary.chain is not None
    assert results.summary.chain.cache_on == Failed("a chain run failed")
    assert results.summary.chain.cache_off is None


def test_a_floor_from_before_the_lean_path_gets_its_labels_and_the_sdk_client() -> None:
    floor = {"handoff": {"step_ms": 11.0}, "dtfx": {"step_ms": 15.0}, "steps_per_run": 100}

    results = from_json(_document(raw={"floor": floor}))

    assert results.raw.floor is not None
    steps = results.raw.floor.steps
    assert list(steps) == ["dtfx", "handoff"]
    assert (steps["dtfx"].label, steps["dtfx"].client) == ("DTFx order", SDK_CLIENT)
    assert (steps["handoff"].label, steps["handoff"].step_ms) == ("handoff", 11.0)
