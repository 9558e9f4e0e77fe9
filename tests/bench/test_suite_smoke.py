"""Smoke tests of the benchmark suite's machinery (bench/) at tiny sizes.

They check that every part runs and reports what it should — outputs verified, requests counted,
replays counted, results written — never how fast anything is: speed is `make bench`'s business.
Peers (DBOS, durabletask) and the chart (matplotlib) are bench-only dependencies; their tests are
skipped when the `bench` extra is not installed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import results as bench_results
from bench import suite, telemetry
from bench.child import make_engine, measure
from bench.counting import classify
from bench.engines import missing_reason
from bench.episode import measure_episodes, summarize_episodes
from bench.floor import DTFX_ORDER, HANDOFF_ORDER, VARIANTS, measure_floor
from bench.idle import measure_idle
from bench.markdown import render_markdown
from bench.results import EpisodeRow, EpisodeSummary
from bench.verdicts import episode_sentence, sensitivity_sentence
from bench.workloads import QUICK, SCENARIOS
from durable_ext.worker import WorkerOptions
from tests.azurite import AzuriteInstance

TINY = {"sequential": 3, "fanout": 4, "hellocities": 2, "events": 3, "latency": 2}


def test_requests_are_classified_by_service_method_and_path() -> None:
    base = "http://127.0.0.1:1/devstoreaccount1"
    assert classify("queue", "POST", f"{base}/hub-workitems/messages") == "queue.send"
    assert classify("queue", "GET", f"{base}/hub-control-00/messages?numofmessages=32") == (
        "queue.receive"
    )
    assert classify("queue", "DELETE", f"{base}/q/messages/abc?popreceipt=x") == "queue.delete"
    assert classify("queue", "PUT", f"{base}/q/messages/abc?popreceipt=x") == "queue.update"
    assert classify("table", "POST", f"{base}/$batch") == "table.batch"
    assert classify("table", "GET", f"{base}/HubInstances(PartitionKey='a',RowKey='')") == (
        "table.get"
    )
    assert classify("table", "GET", f"{base}/HubHistory()?$filter=x") == "table.query"
    assert classify("table", "PATCH", f"{base}/HubInstances(PartitionKey='a',RowKey='')") == (
        "table.merge"
    )
    assert classify("blob", "PUT", f"{base}/hub-leases/control-00?comp=lease") == "blob.lease"


def test_growth_exponent_tells_linear_from_quadratic() -> None:
    lengths = [50, 100, 200]
    assert suite.growth_exponent(lengths, [3 * n for n in lengths]) == pytest.approx(1.0)
    assert suite.growth_exponent(lengths, [n * n for n in lengths]) == pytest.approx(2.0)
    assert suite.growth_exponent(lengths, [0, 0, 0]) is None


async def test_floor_times_every_storage_call(azurite: AzuriteInstance) -> None:
    floor = await measure_floor(
        azurite.connection_string, runs=1, steps=2, parallel_chains=2, storage_pid=azurite.pid
    )

    figures = floor.to_json()
    assert list(figures["dtfx"]["op_median_ms"]) == list(DTFX_ORDER)
    assert list(figures["handoff"]["op_median_ms"]) == list(HANDOFF_ORDER)
    assert figures["variants"] == [v.key for v in VARIANTS]
    for variant in VARIANTS:
        timed = figures[variant.key]
        assert list(timed["op_median_ms"]) == list(variant.order), variant.key
        assert timed["requests_per_step"] == len(variant.order)
        assert timed["step_ms"] > 0
        assert timed["cpu_ms_per_step"] > 0
        assert timed["storage_cpu_ms_per_step"] is not None
    assert figures["dtfx_lean"]["client"] == "lean REST"
    assert figures["result_in_memory"]["requests_per_step"] == 3
    assert figures["parallel"]["steps_per_s"] > 0
    assert figures["parallel_lean"]["steps_per_s"] > 0


def test_each_lever_is_a_worker_option_measured_on_known_scenarios() -> None:
    fields = set(WorkerOptions.__dataclass_fields__) | {telemetry.OPTION}
    assert {lever.key for lever in suite.LEVERS} >= {
        "instance_cache",
        "in_process_handoff",
        "handoff_backlog",
        "instance_status_refresh",
    }
    for lever in suite.LEVERS:
        assert lever.field in fields or lever.engine != "durable_ext", lever.key
        assert lever.scenarios and set(lever.scenarios) <= set(SCENARIOS), lever.key


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_durable_ext_runs_each_scenario_and_counts_its_requests(
    azurite: AzuriteInstance, hub_name: str, scenario: str
) -> None:
    engine = make_engine("durable_ext", connection=azurite.connection_string, hub=hub_name)

    result = measure(engine, scenario, TINY[scenario], 2, storage_pid=azurite.pid)

    assert result["correct"], result
    assert result["units"] == TINY[scenario]
    assert result["requests"]["total"] > 0  # the worker's requests
    assert result["requests"]["client"]["total"] > 0  # the bench client's, apart
    assert result["storage_cpu_s"] is not None
    if scenario == "latency":
        assert len(result["samples_ms"]) == TINY["latency"]


@pytest.mark.parametrize(
    ("options", "invocations", "replayed"), [([], 1, 0), (["instance_cache_size=0"], 5, 6)]
)
def test_chain_counts_replays_with_the_instance_cache_on_and_off(
    azurite: AzuriteInstance, hub_name: str, options: list[str], invocations: int, replayed: int
) -> None:
    """A 4-step chain: with the cache the orchestrator runs once and never replays; without it
    every episode replays the whole history so far (0 + 1 + 2 + 3 results handed back)."""
    engine = make_engine(
        "durable_ext", connection=azurite.connection_string, hub=hub_name, options=options
    )

    result = measure(engine, "chain", 4, 0, warm_up=False)

    assert result["correct"]
    assert result["detail"]["replays"] == {
        "invocations": invocations,
        "replayed": replayed,
        "fresh": 4,
    }


@pytest.mark.slow
async def test_idle_worker_reports_its_memory(azurite: AzuriteInstance, hub_name: str) -> None:
    result = await measure_idle(azurite.connection_string, hub_name, 5)

    assert result["first_episodes"] == 5
    assert result["rss_idle_mb"] > 0
    assert result["cached_instances"] == 5


async def test_episode_cost_is_sampled_along_a_seeded_cached_chain(
    azurite: AzuriteInstance, hub_name: str
) -> None:
    """Windows of 3 episodes from steps 0, 10 and 30 (the last two seeded into the hub and the
    worker's cache): every chain completes with its output, every episode has a CPU sample, and
    the engine alone is timed at each position."""
    raw = await measure_episodes(
        azurite.connection_string, hub_name, (0, 10, 30), 3, storage_pid=azurite.pid
    )

    assert [(w["position"], w["correct"]) for w in raw["windows"]] == [
        (0, True),
        (10, True),
        (30, True),
    ]
    assert [w.get("history_events", 0) for w in raw["windows"]] == [0, 40, 120]
    for found in raw["windows"]:
        assert len(found["cpu_ms"]) == len(found["wall_ms"]) == 3
        assert all(ms > 0 for ms in found["wall_ms"])
        assert found["storage_cpu_ms_per_episode"] is not None
    summary = summarize_episodes(raw)
    assert [r["position"] for r in summary["rows"]] == [0, 10, 30]
    for row in summary["rows"]:
        assert row["episodes"] == 3
        assert row["engine_cached_ms_median"] > 0
        assert row["engine_replay_ms"] > 0
    assert summary["spread"] >= 1.0


@pytest.mark.parametrize(
    ("cpu_ms", "says"),
    [((2.0, 2.4, 2.1), "is **flat** along the chain"), ((2.0, 3.5, 9.0), "is **not flat**")],
)
def test_episode_sentence_says_whether_cpu_per_episode_is_flat(
    cpu_ms: tuple[float, ...], says: str
) -> None:
    rows = [
        EpisodeRow(
            position=position,
            history_events=4 * position,
            correct=True,
            cpu_ms_median=ms,
            engine_cached_ms_median=0.015,
            engine_replay_ms=position / 100 or 0.05,
        )
        for position, ms in zip((0, 1_000, 10_000), cpu_ms, strict=True)
    ]

    sentence = episode_sentence(EpisodeSummary(rows=rows))

    assert says in sentence
    assert f"{cpu_ms[0]:.2f} ms at step 0 and {cpu_ms[-1]:.2f} ms at step 10,000" in sentence
    assert "grows from 0.05 ms at step 0 to 100.0 ms at step 10,000" in sentence
    assert "stays at 15 µs" in sentence


@pytest.mark.parametrize("engine_name", ["dbos", "durabletask"])
def test_peers_run_each_scenario(engine_name: str, tmp_path: Path) -> None:
    if missing_reason(engine_name) is not None:
        pytest.skip(f"{engine_name} is not installed (bench extra)")
    engine = make_engine(engine_name, workdir=tmp_path)
    engine.start()
    try:
        engine.warm_up()
        for scenario, size in TINY.items():
            outcome = engine.run(scenario, size, 2)

            assert outcome.correct, scenario
            assert outcome.units == size
    finally:
        engine.stop()


@pytest.mark.slow
def test_suite_writes_results_and_report(tmp_path: Path) -> None:
    """The whole pipeline at QUICK sizes on durable_ext alone: own Azurite, child processes,
    replay.py, summary, JSON, Markdown (and the chart when matplotlib is installed)."""
    results, markdown, chart = tmp_path / "r.json", tmp_path / "p.md", tmp_path / "p.png"
    chart_available = _has_matplotlib()
    argv = ["--quick", "--engines", "durable_ext", "--skip", "levers", "profile", "idle"]
    argv.append("scale_out")  # tests/bench/test_scale_out.py
    argv += ["--results", str(results), "--markdown", str(markdown), "--chart", str(chart)]
    if not chart_available:
        argv.append("--no-report")

    assert suite.main(argv) == 0

    document = json.loads(results.read_text())
    assert document["sizes"]["sequential"] == QUICK.sequential
    for scenario in SCENARIOS:
        (run,) = document["raw"]["scenarios"][scenario]["durable_ext"]
        assert run.get("correct"), run
    assert document["raw"]["floor"]["dtfx"]["step_ms"] > 0
    assert document["raw"]["floor"]["result_in_memory"]["step_ms"] > 0
    assert {s["scenario"] for s in document["raw"]["replay"]["scenarios"]} == {"chain", "fan_out"}
    assert document["summary"]["chain"]["cache_off"]["replayed_resumes"][-1] > 0
    episode = document["summary"]["episode"]
    assert [r["position"] for r in episode["rows"]] == list(QUICK.episode_positions)
    assert all(r["correct"] and r["episodes"] == QUICK.episode_window for r in episode["rows"])
    sensitivity = document["raw"]["storage_sensitivity"]
    assert sensitivity["persistence"] == "in-memory"
    assert list(sensitivity["scenarios"]) == list(suite.SENSITIVITY_SCENARIOS)
    for scenario, run in sensitivity["scenarios"].items():
        assert run.get("correct"), run
        assert run["size"] == document["sizes"][scenario]
    summarized = document["summary"]["storage_sensitivity"]["scenarios"]
    assert summarized["hellocities"]["throughput_per_s"] > 0
    rendered = render_markdown(bench_results.load(results), "p.png")
    assert "## Summary" in rendered and "## Method" in rendered
    assert "handoff, result in memory" in rendered and "lean REST" in rendered
    assert "## Storage sensitivity" in rendered and "| hellocities | orchestrations/s |" in rendered
    assert "## CPU per episode along a cached chain" in rendered
    assert "| 50–55 | 200 |" in rendered
    assert "With Azurite keeping its data in memory instead of on disk" in rendered
    entities = document["raw"]["entities"]
    assert entities["one"]["ops"] == entities["spread"]["ops"] == QUICK.entity_ops
    assert "## Entities" in rendered and "| one entity |" in rendered
    assert len(document["raw"]["repeat"]["records"]) == QUICK.repeat_runs
    assert "## Fan-out repeated on one hub" in rendered and "Rule: met when" in rendered
    if chart_available:
        assert markdown.read_text() == rendered
        assert chart.stat().st_size > 0


def test_sensitivity_is_left_out_when_the_suite_runs_in_memory(tmp_path: Path) -> None:
    results = tmp_path / "r.json"
    argv = ["--quick", "--engines", "durable_ext", "--azurite-in-memory", "--no-report"]
    skipped = ["floor", "scenarios", "levers", "chain", "episode", "profile", "replay", "idle"]
    argv += ["--skip", *skipped, "entities", "repeat", "scale_out"]

    assert suite.main([*argv, "--results", str(results)]) == 0

    document = json.loads(results.read_text())
    assert "storage_sensitivity" not in document["raw"]
    rendered = render_markdown(bench_results.load(results), "p.png")
    assert "already" in rendered.split("## Storage sensitivity")[1]


def test_episode_part_runs_on_its_own(tmp_path: Path) -> None:
    """Only the episode part (as when refreshing just its figures): its windows are in results."""
    results = tmp_path / "r.json"
    skipped = ["floor", "scenarios", "sensitivity", "levers", "chain", "profile", "replay"]
    argv = ["--quick", "--engines", "durable_ext", "--no-report", "--skip", *skipped, "idle"]
    argv += ["entities", "repeat", "scale_out"]

    assert suite.main([*argv, "--results", str(results)]) == 0

    document = json.loads(results.read_text())
    assert list(document["raw"]) == ["episode"]
    rows = document["summary"]["episode"]["rows"]
    assert [r["position"] for r in rows] == list(QUICK.episode_positions)
    assert all(r["correct"] for r in rows)


def _sensitivity_document(
    disk_rate: float, memory_rate: float, disk_others: float = 0.0, memory_others: float = 0.0
) -> bench_results.Results:
    def figures(rate: float, others: float) -> dict[str, object]:
        return {"throughput_per_s": rate, "wall_s": 10.0, "other_cpu_s": others * 10.0}

    header = {"generated_at": "2026-01-01T00:00:00+00:00", "duration_s": 1.0, "runs": 1}
    return bench_results.from_json(
        {
            **header,
            "environment": {},
            "engines": ["durable_ext"],
            "summary": {
                "scenarios": {"hellocities": {"durable_ext": figures(disk_rate, disk_others)}},
                "storage_sensitivity": {
                    "persistence": "in-memory",
                    "scenarios": {"hellocities": figures(memory_rate, memory_others)},
                },
            },
        }
    )


@pytest.mark.parametrize(
    ("disk", "memory", "others", "says"),
    [
        (50.0, 65.0, (0.1, 0.1), "bounds this scenario: with the same engine it is what keeps"),
        (40.0, 50.0, (0.1, 0.1), "bounds this scenario, though in memory it still falls short"),
        (70.0, 80.0, (0.1, 0.1), "bounds this scenario."),
        (50.0, 51.0, (0.1, 0.1), "is not what bounds it"),
        (50.0, 45.0, (0.1, 0.9), "inconclusive"),
    ],
)
def test_sensitivity_sentence_says_whether_disk_persistence_bounds_the_run(
    disk: float, memory: float, others: tuple[float, float], says: str
) -> None:
    document = _sensitivity_document(disk, memory, *others)

    sentence = sensitivity_sentence(document, "hellocities")

    assert sentence.startswith("With Azurite keeping its data in memory instead of on disk")
    assert f"reaches {memory:.1f}/s" in sentence
    assert says in sentence
    assert sensitivity_sentence(document, "sequential") == ""


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
