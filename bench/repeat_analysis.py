"""Figures, verdict and report section of the repeated fan-out on one hub (bench/repeat.py).

`summarize_repeat(raw)` computes, from the part's raw results, every run's derived figures and the
first-against-last comparison (medians of the first and last `window` runs, so one noisy run on a
shared machine does not decide it); `repeat_markdown(summary)` gives the report's section.

The verdict (`RULE`): met when the last runs' rate is at least 0.9 × the first runs'. Otherwise
bounded by the emulator when the raw-storage probe on the same hub, weighed by the engine's own
request mix, slowed by at least as much as the rate while the engine's CPU per activity stayed
flat (at most 1.1 × the first runs'); inconclusive when other processes kept the machine busier by
a quarter of a core or more at the end than at the start, or when the control fan-out on a fresh
hub slowed as much; else not met.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .formatting import num, table
from .metrics import median

__all__ = [
    "CONTENTION_MARGIN",
    "FIGURES",
    "FLAT_CPU",
    "GOAL_RATIO",
    "RULE",
    "repeat_markdown",
    "summarize_repeat",
    "verdict",
]

GOAL_RATIO = 0.9
"""The last runs' rate over the first runs': the goal."""
FLAT_CPU = 1.1
"""Engine CPU per activity, last over first, that still counts as flat."""
CONTENTION_MARGIN = 0.25
"""Other processes busier by this much of a core at the end than at the start make a slowdown
that neither the probe nor the engine explains inconclusive."""
RULE = (
    f"met when the last runs' rate is at least {GOAL_RATIO} × the first runs'; otherwise "
    "**bounded by the emulator** when the raw-storage probe on the same hub, weighed by the "
    "engine's own request mix, slowed by at least as much as the rate while the engine's CPU per "
    f"activity stayed flat (at most {FLAT_CPU} × the first runs'); inconclusive when other "
    f"processes kept the machine busier by {CONTENTION_MARGIN} of a core or more at the end than "
    "at the start, or when the same fan-out on a fresh hub run beside them (the control) slowed "
    f"as much (the rate's ratio at least {GOAL_RATIO} × the control's); else not met"
)
PROBE_CATEGORY = {
    "history.query": "table.query",
    "history.get": "table.get",
    "history.batch": "table.batch",
    "instances.merge": "table.merge",
    "queue.send": "queue.send",
    "queue.receive": "queue.receive",
    "queue.delete": "queue.delete",
}
"""The request category (bench/counting.py) each probe op stands for."""


def _ratio(last: float | None, first: float | None) -> float | None:
    return last / first if last is not None and first else None


def _worker_counts(record: dict[str, Any]) -> dict[str, int]:
    """The worker's requests of a run and of its tail (after the client saw it complete)."""
    counts = dict(record["requests"].get("by_category", {}))
    for category, n in record.get("tail", {}).get("requests", {}).get("by_category", {}).items():
        counts[category] = counts.get(category, 0) + n
    return counts


def _all_requests(record: dict[str, Any]) -> int:
    total = 0
    for requests in (record["requests"], record.get("tail", {}).get("requests", {})):
        total += requests.get("total", 0) + requests.get("client", {}).get("total", 0)
    return total


def _weighted_probe_ms(probe: dict[str, Any], weights: dict[str, float]) -> float | None:
    """The probe's op medians weighed by how often the engine makes each kind of request."""
    ops = probe["op_median_ms"]
    used = {op: weights[c] for op, c in PROBE_CATEGORY.items() if op in ops and weights.get(c)}
    total = sum(used.values())
    return sum(ops[op] * w for op, w in used.items()) / total if total else None


def _run_figures(record: dict[str, Any], weights: dict[str, float]) -> dict[str, Any]:
    units = max(record["units"], 1)
    tail = record.get("tail", {})
    counts = _worker_counts(record)
    worker = sum(n for c, n in counts.items() if c != "queue.receive.empty")
    storage_cpu = (record.get("storage_cpu_s") or 0.0) + (tail.get("storage_cpu_s") or 0.0)
    requests = _all_requests(record)
    gc_seconds = record.get("gc", {}).get("seconds", [])
    return {
        "run": record["run"],
        "correct": record["correct"],
        "rate": record.get("throughput_per_s"),
        "engine_cpu_ms_per_activity": (record["cpu_s"] + tail.get("cpu_s", 0.0)) * 1000 / units,
        "azurite_cpu_ms_per_request": (
            storage_cpu * 1000 / requests if record.get("storage_cpu_s") is not None else None
        ),
        "requests_per_activity": worker / units,
        "probe_ms": record["probe"]["pass_ms"],
        "control_probe_ms": record["control"]["pass_ms"],
        "probe_weighted_ms": _weighted_probe_ms(record["probe"], weights),
        "control_weighted_ms": _weighted_probe_ms(record["control"], weights),
        "history_query_ms": record["probe"]["op_median_ms"].get("history.query"),
        "control_history_query_ms": record["control"]["op_median_ms"].get("history.query"),
        "probe_azurite_cpu_ms_per_request": record["probe"].get("storage_cpu_ms_per_request"),
        "gc_ms": sum(gc_seconds) * 1000,
        "gc_objects": record.get("heap_before", {}).get("gc_objects"),
        "rss_mb": record.get("rss_mb"),
        "azurite_rss_mb": record.get("azurite_rss_mb"),
        "cached_instances": record.get("cached_instances"),
        "others_cores": (record.get("other_cpu_s") or 0.0) / record["wall_s"],
    }


def _window(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if isinstance(r.get(key), int | float)]
    return median(values) if values else None


FIGURES = (
    ("rate", "rate (activities/s)"),
    ("engine_cpu_ms_per_activity", "engine CPU per activity (ms, run + tail)"),
    ("requests_per_activity", "worker requests per activity (run + tail)"),
    ("azurite_cpu_ms_per_request", "Azurite CPU per request (ms)"),
    ("probe_weighted_ms", "probe on the same hub, weighed by the engine's mix (ms per request)"),
    ("control_weighted_ms", "the same probe on a fresh hub (ms per request)"),
    ("history_query_ms", "same hub: query of a 10-row History partition (ms)"),
    ("control_history_query_ms", "fresh hub: the same query (ms)"),
    ("probe_ms", "same hub: one pass of the whole probe (ms)"),
    ("probe_azurite_cpu_ms_per_request", "Azurite CPU per probe request, same hub (ms)"),
    ("gc_ms", "garbage collection during the run (ms)"),
    ("gc_objects", "objects tracked by the GC before the run"),
    ("rss_mb", "engine RSS (MB)"),
    ("azurite_rss_mb", "Azurite RSS (MB)"),
    ("cached_instances", "instance cache entries after the run"),
    ("others_cores", "other processes' load (cores)"),
)


def summarize_repeat(raw: dict[str, Any]) -> dict[str, Any]:
    """Every run's figures, first against last, the fresh-hub controls, and the verdict."""
    if "error" in raw:
        return {"error": raw["error"], "met": None, "why": f"the part failed: {raw['error']}"}
    records: list[dict[str, Any]] = raw["records"]
    if not records:
        return {"error": "no runs", "met": None, "why": "no runs"}
    weights = {c: float(n) for c, n in _worker_counts(records[0]).items()}
    rows = [_run_figures(r, weights) for r in records]
    window = max(1, min(3, len(rows) // 4))
    first = {key: _window(rows[:window], key) for key, _ in FIGURES}
    last = {key: _window(rows[-window:], key) for key, _ in FIGURES}
    ratios = {key: _ratio(last[key], first[key]) for key, _ in FIGURES}
    controls = raw.get("controls", [])
    control_ratio = (
        _ratio(controls[-1].get("throughput_per_s"), controls[0].get("throughput_per_s"))
        if len(controls) >= 2
        else None
    )
    summary: dict[str, Any] = {
        "runs": len(rows),
        "size": raw["size"],
        "window": window,
        "all_correct": all(r["correct"] for r in rows)
        and all(c.get("correct", True) for c in controls),
        "rows": rows,
        "first": first,
        "last": last,
        "ratios": ratios,
        "controls": [
            {"before_run": c["before_run"], "rate": c.get("throughput_per_s")} for c in controls
        ],
        "control_ratio": control_ratio,
        "control_every": raw.get("control_every"),
        "goal_ratio": GOAL_RATIO,
        "rule": RULE,
    }
    summary.update(_tail(records))
    summary.update(_chained(raw.get("back_to_back", [])))
    summary.update(verdict(summary))
    return summary


def _tail(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What each run still did after its client saw it complete (until the worker went quiet)."""
    tails = [r["tail"] for r in records if "tail" in r]
    if not tails:
        return {}

    def of(values: list[float | None]) -> float | None:
        found = [v for v in values if v is not None]
        return median(found) if found else None

    return {
        "tail": {
            "requests": of([t["requests"].get("total") for t in tails]),
            "deletes": of(
                [t["requests"].get("by_category", {}).get("queue.delete", 0) for t in tails]
            ),
            "wall_s": of([t["wall_s"] for t in tails]),
            "storage_cpu_s": of([t.get("storage_cpu_s") for t in tails]),
            "run_storage_cpu_s": of([r.get("storage_cpu_s") for r in records]),
            "run_requests": of([r["requests"].get("total") for r in records]),
            "rate_with_tail_ratio": of(
                [
                    r["wall_s"] / (r["wall_s"] + r["tail"]["wall_s"])
                    for r in records
                    if "tail" in r and r["wall_s"] > 0
                ]
            ),
        }
    }


def _chained(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Runs started one right after the other: the first starts settled, the others on the tail
    of the one before."""
    if not runs:
        return {}
    rates = [r.get("throughput_per_s") for r in runs]
    later = [v for v in rates[1:] if v is not None]
    return {
        "back_to_back": [
            {
                "rate": r.get("throughput_per_s"),
                "deletes": r.get("deletes"),
                "requests_per_activity": r["worker_requests"] / max(r["units"], 1),
                "others_cores": (r.get("other_cpu_s") or 0.0) / r["wall_s"],
                "storage_cpu_s": r.get("storage_cpu_s"),
                "correct": r.get("correct"),
            }
            for r in runs
        ],
        "back_to_back_ratio": _ratio(median(later), rates[0]) if later else None,
    }


def verdict(summary: dict[str, Any]) -> dict[str, Any]:
    """`met`, `verdict` and `why` from a summary's first/last figures (see `RULE`)."""
    first, last, ratios = summary["first"], summary["last"], summary["ratios"]
    rate = ratios.get("rate")
    if rate is None:
        return {"met": None, "verdict": "not measured", "why": "no rate measured"}
    cpu = ratios.get("engine_cpu_ms_per_activity")
    probe = ratios.get("probe_weighted_ms")
    figures = (
        f"last/first rate {rate:.2f} ({num(first['rate'], 0)} → {num(last['rate'], 0)}/s); "
        f"engine CPU per activity ×{num(cpu, 2)}; same-hub probe ×{num(probe, 2)} "
        f"(fresh hub ×{num(ratios.get('control_weighted_ms'), 2)}); requests per activity "
        f"×{num(ratios.get('requests_per_activity'), 2)}"
    )
    if rate >= GOAL_RATIO:
        return {"met": True, "verdict": "met", "why": figures}
    if probe is not None and cpu is not None and probe >= 1 / rate and cpu <= FLAT_CPU:
        return {
            "met": True,
            "verdict": "bounded by the emulator",
            "why": f"bounded by the emulator: {figures}",
        }
    busier = (last.get("others_cores") or 0.0) - (first.get("others_cores") or 0.0)
    if busier >= CONTENTION_MARGIN:
        return {
            "met": None,
            "verdict": "inconclusive",
            "why": f"inconclusive: other processes were busier by {busier:.2f} of a core at the "
            f"end; {figures}",
        }
    control = summary.get("control_ratio")
    if control is not None and rate >= GOAL_RATIO * control:
        return {
            "met": None,
            "verdict": "inconclusive",
            "why": f"inconclusive: the same fan-out on a fresh hub, run beside them, slowed as "
            f"much (×{control:.2f}); {figures}",
        }
    return {"met": False, "verdict": "not met", "why": f"not met: {figures}"}


def _cell(key: str) -> Callable[[dict[str, Any]], str]:
    digits = {"engine_cpu_ms_per_activity": 2, "azurite_cpu_ms_per_request": 2}

    def cell(row: dict[str, Any]) -> str:
        return num(row.get(key), digits.get(key, 1))

    return cell


def _findings(summary: dict[str, Any]) -> list[str]:
    """Where the time goes, first against last, in sentences computed from the figures."""
    r, first, last = summary["ratios"], summary["first"], summary["last"]
    lines = [
        f"- **The engine's own share**: CPU per activity ×{num(r['engine_cpu_ms_per_activity'], 2)}"
        f" ({num(first['engine_cpu_ms_per_activity'], 2)} → "
        f"{num(last['engine_cpu_ms_per_activity'], 2)} ms), worker requests per activity "
        f"×{num(r['requests_per_activity'], 2)}, objects tracked by the GC "
        f"×{num(r['gc_objects'], 2)}, GC time per run ×{num(r['gc_ms'], 2)}, RSS "
        f"×{num(r['rss_mb'], 2)}, instance cache {num(last['cached_instances'], 0)} entries "
        "after a run (a finished orchestration is not kept).",
        f"- **The emulator**: the 10-row History partition query on the grown hub "
        f"×{num(r['history_query_ms'], 2)} ({num(first['history_query_ms'], 1)} → "
        f"{num(last['history_query_ms'], 1)} ms; Azurite's LokiJS scans the whole table for a "
        f"query) against ×{num(r['control_history_query_ms'], 2)} on a fresh hub; Azurite CPU per "
        f"request ×{num(r['azurite_cpu_ms_per_request'], 2)}, its RSS "
        f"×{num(r['azurite_rss_mb'], 2)}; the probe weighed by the engine's request mix (mostly "
        f"queue sends and deletes, which no table size touches) ×{num(r['probe_weighted_ms'], 2)}"
        f" on the same hub, ×{num(r['control_weighted_ms'], 2)} on a fresh one.",
    ]
    tail = summary.get("tail")
    if tail:
        lines.append(
            f"- **The tail**: after its client saw it complete, each run's worker still made "
            f"{num(tail['requests'], 0)} requests ({num(tail['deletes'], 0)} deletes of the work "
            f"items its last checkpoints consumed) over {num(tail['wall_s'], 2)} s, costing Azurite "
            f"{num(tail['storage_cpu_s'], 2)} s of CPU against {num(tail['run_storage_cpu_s'], 2)}"
            f" s during the run itself ({num(tail['run_requests'], 0)} requests). The runs above "
            "start only once it is done."
        )
    chained = summary.get("back_to_back")
    if chained:
        lines.append(
            "- **Back to back** (each run started as soon as the previous one completed, as a "
            "client driving a host does): "
            + ", ".join(
                f"{num(c['rate'], 0)}/s ({num(c['deletes'], 0)} deletes, "
                f"{num(c['requests_per_activity'], 2)} requests per activity, others "
                f"{num(c['others_cores'], 1)} cores)"
                for c in chained
            )
            + f"; the runs after the first at ×{num(summary['back_to_back_ratio'], 2)} of the "
            "first, which alone starts with no earlier tail to finish"
            + (
                f"; counted with its tail (units over the run's and the tail's wall time), a "
                f"settled run goes at ×{num(tail['rate_with_tail_ratio'], 2)} of its rate."
                if tail
                else "."
            )
        )
    return [*lines, ""]


def repeat_markdown(summary: dict[str, Any]) -> list[str]:
    """The report's section: the verdict, first against last, and every run."""
    if "rows" not in summary:
        return [f"Not measured: {summary.get('why', 'not run')}."]
    window = summary["window"]
    lines = [
        f"The FanOut scenario ({summary['size']:,} activities) {summary['runs']} times in a row in "
        "one process on ONE hub (its History table grows by a fan-out's rows each run), with "
        "tracking events on; before each run a fixed raw-storage probe (no engine, the lean REST "
        "path) on the same hub's tables and a probe queue, and on a fresh hub made for it; a "
        "fan-out on a fresh hub served by a second runtime in the same process (the control) "
        f"before every {summary.get('control_every', 5)}th run and after the last. First and last "
        f"are medians of the first and last {window} run(s).",
        "",
        f"**{summary['verdict']}** — {summary['why']}.",
        "",
        f"Rule: {summary['rule']}.",
        "",
    ]
    if not summary["all_correct"]:
        lines += ["**A run's output was wrong.**", ""]
    rows = [
        [
            label,
            num(summary["first"][key], 2),
            num(summary["last"][key], 2),
            num(summary["ratios"][key], 2),
        ]
        for key, label in FIGURES
    ]
    lines += [table(["figure", "first", "last", "last/first"], rows), ""]
    lines += _findings(summary)
    controls = summary["controls"]
    if controls:
        lines += [
            "Fan-out on a fresh hub in the same process (control): "
            + ", ".join(f"before run {c['before_run']}: {num(c['rate'], 0)}/s" for c in controls)
            + (
                f" (last/first ×{num(summary['control_ratio'], 2)}: what the machine and the "
                "process alone did to the rate, without the hub's growth)."
                if summary["control_ratio"] is not None
                else "."
            ),
            "",
        ]
    per_run = (
        ("rate", "rate/s"),
        ("engine_cpu_ms_per_activity", "engine CPU ms/activity"),
        ("azurite_cpu_ms_per_request", "Azurite CPU ms/request"),
        ("probe_weighted_ms", "probe ms (same hub)"),
        ("control_weighted_ms", "probe ms (fresh hub)"),
        ("history_query_ms", "History query ms"),
        ("gc_ms", "GC ms"),
        ("azurite_rss_mb", "Azurite RSS MB"),
        ("others_cores", "others (cores)"),
    )
    lines += [
        table(
            ["run", *(label for _, label in per_run)],
            [[str(r["run"]), *(_cell(key)(r) for key, _ in per_run)] for r in summary["rows"]],
        ),
        "",
    ]
    return lines
