"""docs/performance.png from the results: throughput against the targets and goals, latency,
replay growth along a chain, and who used the CPU while durable_ext ran."""

from __future__ import annotations

from pathlib import Path

from .formatting import ENGINE_LABELS, num
from .results import ChainSeries, Results
from .workloads import DF_TARGETS, GOALS, SCENARIOS, THROUGHPUT_SCENARIOS

__all__ = ["render_chart"]

ENGINE_COLORS = {"durable_ext": "#1f6feb", "dbos": "#8250df", "durabletask": "#bf8700"}


def render_chart(results: Results, path: Path) -> None:
    """Draw the four panels into `path` (PNG)."""
    # matplotlib comes with the `bench` extra only: imported here, so that the rest of the report
    # (and the tests that render the page) work without it.
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    engines = [e for e in results.engines if e in ENGINE_LABELS]
    figure, axes = plt.subplots(2, 2, figsize=(14, 10))
    throughput, latency, chain, breakdown = axes[0][0], axes[0][1], axes[1][0], axes[1][1]

    # Throughput per scenario, log scale, with DF targets and goals.
    width = 0.8 / max(len(engines), 1)
    positions = list(range(len(THROUGHPUT_SCENARIOS)))
    for i, engine in enumerate(engines):
        values = [_throughput(results, s, engine) for s in THROUGHPUT_SCENARIOS]
        xs = [p + (i - (len(engines) - 1) / 2) * width for p in positions]
        bars = throughput.bar(
            xs, values, width, label=ENGINE_LABELS[engine], color=ENGINE_COLORS[engine]
        )
        throughput.bar_label(bars, labels=[num(v) for v in values], fontsize=7, padding=1)
    for p, scenario in zip(positions, THROUGHPUT_SCENARIOS, strict=True):
        low, high = DF_TARGETS[scenario]
        throughput.hlines(
            high,
            p - 0.45,
            p + 0.45,
            colors="#cf222e",
            linestyles="--",
            linewidth=1.5,
            label="Durable Functions target" if p == 0 else None,
        )
        goal = GOALS[scenario].minimum
        throughput.hlines(
            goal,
            p - 0.45,
            p + 0.45,
            colors="#1a7f37",
            linewidth=2,
            label="durable_ext's goal" if p == 0 else None,
        )
    throughput.set_yscale("log")
    throughput.set_xticks(
        positions, [f"{s}\n({SCENARIOS[s].unit}/s)" for s in THROUGHPUT_SCENARIOS], fontsize=8
    )
    throughput.set_title("Throughput (higher is better)")
    throughput.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3)

    # Latency p50 / p99 per engine.
    labels, p50s, p99s = [], [], []
    for engine in engines:
        s = results.scenario("latency", engine)
        labels.append(ENGINE_LABELS[engine])
        p50s.append((s.p50_ms if s else None) or 0.0)
        p99s.append((s.p99_ms if s else None) or 0.0)
    xs = list(range(len(labels)))
    bars50 = latency.bar([x - 0.2 for x in xs], p50s, 0.4, label="p50", color="#1f6feb")
    bars99 = latency.bar([x + 0.2 for x in xs], p99s, 0.4, label="p99", color="#9ec5fe")
    latency.bar_label(bars50, labels=[num(v) for v in p50s], fontsize=7)
    latency.bar_label(bars99, labels=[num(v) for v in p99s], fontsize=7)
    latency_goal = GOALS["latency"].maximum
    if latency_goal:
        latency.axhline(latency_goal, color="#1a7f37", label=f"goal: p50 ≤ {latency_goal:g} ms")
    latency.set_yscale("log")
    latency.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    latency.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    latency.set_xticks(xs, labels, fontsize=8)
    latency.set_ylabel("ms")
    latency.set_title("Start → completed, one activity (lower is better)")
    latency.legend(fontsize=7)

    # Replay growth with the cache on and off.
    summary = results.summary.chain
    lengths = summary.lengths if summary else []
    series = {"cache on": summary.cache_on, "cache off": summary.cache_off} if summary else {}
    twin = chain.twinx()
    for (name, data), style in zip(series.items(), ("-", "--"), strict=True):
        if not isinstance(data, ChainSeries):
            continue
        chain.plot(
            lengths,
            data.cpu_s,
            style,
            marker="o",
            color="#1f6feb",
            label=f"worker CPU s, {name}",
        )
        twin.plot(
            lengths,
            data.resumes,
            style,
            marker="s",
            color="#bf8700",
            label=f"orchestrator resumes, {name}",
        )
    chain.set_xlabel("chain length N (activities)")
    chain.set_ylabel("worker CPU seconds")
    twin.set_ylabel("orchestrator resumes (replay work)")
    chain.set_title("N-step chain: replay work, instance cache on vs off")
    handles = chain.get_legend_handles_labels()
    twin_handles = twin.get_legend_handles_labels()
    chain.legend(handles[0] + twin_handles[0], handles[1] + twin_handles[1], fontsize=7)

    # Where durable_ext's wall time per unit goes.
    names: list[str] = []
    worker: list[float] = []
    storage: list[float] = []
    others: list[float] = []
    for scenario in SCENARIOS:
        s = results.scenario(scenario, "durable_ext")
        if s is None or not s.throughput_per_s or s.cpu_ms_per_unit is None:
            continue
        wall = 1000 / s.throughput_per_s
        names.append(scenario)
        worker.append(s.cpu_ms_per_unit / wall * 100)
        storage.append((s.storage_cpu_ms_per_unit or 0.0) / wall * 100)
        others.append((s.other_cpu_s or 0.0) * 1000 / (s.units or 1) / wall * 100)
    xs = list(range(len(names)))
    breakdown.bar(xs, worker, label="worker process CPU", color="#1f6feb")
    breakdown.bar(xs, storage, bottom=worker, label="Azurite CPU", color="#8250df")
    stacked = [w + a for w, a in zip(worker, storage, strict=True)]
    breakdown.bar(
        xs, others, bottom=stacked, label="other processes on the machine", color="#ffb3b3"
    )
    breakdown.axhline(100, color="#57606a", linewidth=1, linestyle=":")
    breakdown.axhline(200, color="#57606a", linewidth=1, linestyle=":")
    tops = [x + o for x, o in zip(stacked, others, strict=True)]
    breakdown.set_ylim(0, max([210.0, *tops]) * 1.05)
    breakdown.set_xticks(xs, names, fontsize=8)
    breakdown.set_ylabel("% of one core over the wall time (2 cores = 200%)")
    breakdown.set_title("durable_ext: who used the CPU while it ran")
    breakdown.legend(fontsize=7)

    figure.suptitle(
        f"durable_ext vs peers — {results.generated_at}"
        + (" (quick run)" if results.quick else ""),
        fontsize=11,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _throughput(results: Results, scenario: str, engine: str) -> float:
    summary = results.scenario(scenario, engine)
    return (summary.throughput_per_s if summary else None) or 0.0
