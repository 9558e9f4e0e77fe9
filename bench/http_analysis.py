"""The HTTP row of issue 20: the scenarios over HTTP through `durable-ext start` (engine
``durable_ext_http``, bench/engines/http_host.py) against the same scenarios in-process
(``durable_ext``), measured interleaved in the same run, and where the HTTP path spends its time.

Everything here is computed from results.json: the ratio per scenario (throughputs: HTTP /
in-process; latency: in-process p50 / HTTP p50; the goal is ≥ `GOAL_RATIO`), the per-unit costs
of both modes side by side (wall, CPU of the host and of the driving process apart, Azurite's CPU,
storage requests by category, the driver's HTTP requests), the categories whose requests per unit
differ most, and the host's CPU profile by area (`profile_host`, one run per `PROFILED_SCENARIOS`
under cProfile inside the host, see bench/http_app/hook.py).
"""

from __future__ import annotations

import pstats
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .formatting import num
from .http_app.hook import PROFILE_VARIABLE
from .metrics import median
from .profiling import summarize_profile

__all__ = [
    "GOAL_RATIO",
    "HTTP_ENGINE",
    "IN_PROCESS",
    "PROFILED_SCENARIOS",
    "http_markdown",
    "profile_host",
    "summarize_http",
    "verdict",
]

HTTP_ENGINE = "durable_ext_http"
IN_PROCESS = "durable_ext"
GOAL_RATIO = 0.85
PROFILED_SCENARIOS = ("hellocities", "events", "latency")
_ORDER = ("sequential", "fanout", "hellocities", "events", "latency")

Child = Callable[..., dict[str, Any]]
HOST_STAGES = (
    ("aiohttp/web_protocol.py", "data_received", "aiohttp server: reading requests"),
    (
        "durable_ext/host/http_functions.py",
        "handle",
        "HTTP functions, whole (conversions + function)",
    ),
    ("durable_ext/management_functions.py", "serve", "management functions (status, raise, list)"),
    ("durable_ext/http_api.py", "respond", "management API handlers"),
    ("logging/__init__.py", "callHandlers", "logging (tracking events to the console)"),
    ("durable_ext/worker/", "", "durable_ext.worker (all of its functions' own time)"),
)
"""(file, function, label): cumulative CPU of these functions in the host's profile (a function
name of "" sums the own time of every function of the file or folder instead)."""


# -- measuring ----------------------------------------------------------------------------------
def profile_host(child: Child, size_of: Callable[[str], int], workdir: Path) -> dict[str, Any]:
    """One run of each `PROFILED_SCENARIOS` at half size with the host under cProfile (thread
    CPU time of its event-loop thread); the profile by area, and the run's wall and CPU."""
    found: dict[str, Any] = {}
    for scenario in PROFILED_SCENARIOS:
        path = workdir / f"http-host-{scenario}.pstats"
        size = max(1, size_of(scenario) // 2)
        run = child(HTTP_ENGINE, scenario, size, options=[f"{PROFILE_VARIABLE}={path}"])
        if "error" in run or not path.exists():
            found[scenario] = {"error": run.get("error", "no profile written")}
            continue
        found[scenario] = summarize_profile(path)
        found[scenario]["stages"] = host_stages(path)
        found[scenario].update(
            size=size,
            wall_s=run["wall_s"],
            host_cpu_s=run.get("host_cpu_s"),
            driver_cpu_s=run.get("driver_cpu_s"),
            http_requests=((run.get("requests") or {}).get("http") or {}).get("total"),
        )
    return {"profiles": found}


def host_stages(path: Path) -> dict[str, float]:
    """Seconds of CPU per `HOST_STAGES` entry in a host profile (cumulative: stages nest)."""
    raw: dict[Any, Any] = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    found: dict[str, float] = {}
    for marker, function, label in HOST_STAGES:
        found[label] = sum(
            (cumulative if function else own)
            for (filename, _, name), (_, _, own, cumulative, _) in raw.items()
            if marker in filename and (not function or name == function)
        )
    return found


# -- summarising ----------------------------------------------------------------------------------
def _good(runs: Sequence[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [r for r in runs or [] if "error" not in r]


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if isinstance(v, int | float)]
    return median(present) if present else None


def _per_unit_ms(run: dict[str, Any], key: str) -> float | None:
    value = run.get(key)
    return value * 1000 / run["units"] if isinstance(value, int | float) and run["units"] else None


def _categories(run: dict[str, Any]) -> dict[str, float]:
    """Storage requests per unit by category, the worker's and the client's together
    (empty queue receives left out: they are idle polling)."""
    requests = run.get("requests") or {}
    found: dict[str, float] = {}
    for part in (requests, requests.get("client") or {}):
        for category, count in (part.get("by_category") or {}).items():
            if category != "queue.receive.empty":
                found[category] = found.get(category, 0.0) + count / run["units"]
    return found


def _figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of one engine's runs of one scenario, per unit where it says so."""
    figures: dict[str, Any] = {
        "runs": len(runs),
        "all_correct": all(r.get("correct") for r in runs),
        "throughput_per_s": _median([r.get("throughput_per_s") for r in runs]),
        "p50_ms": _median([r.get("p50_ms") for r in runs]),
        "wall_ms_per_unit": _median([_per_unit_ms(r, "wall_s") for r in runs]),
        "cpu_ms_per_unit": _median([_per_unit_ms(r, "cpu_s") for r in runs]),
        "host_cpu_ms_per_unit": _median([_per_unit_ms(r, "host_cpu_s") for r in runs]),
        "driver_cpu_ms_per_unit": _median([_per_unit_ms(r, "driver_cpu_s") for r in runs]),
        "storage_cpu_ms_per_unit": _median([_per_unit_ms(r, "storage_cpu_s") for r in runs]),
    }
    per_run = [_categories(r) for r in runs]
    names = sorted({c for found in per_run for c in found})
    figures["requests_by_category_per_unit"] = {
        c: median([found.get(c, 0.0) for found in per_run]) for c in names
    }
    figures["requests_per_unit"] = sum(figures["requests_by_category_per_unit"].values())
    http = [(r.get("requests") or {}).get("http") for r in runs]
    if all(isinstance(h, dict) for h in http) and http:
        kinds = sorted({k for h in http if h for k in h if k != "total"})
        figures["http_requests_per_unit"] = {
            k: median([h.get(k, 0) / r["units"] for h, r in zip(http, runs, strict=True) if h])
            for k in kinds
        }
    return figures


def verdict(ratios: Mapping[str, float | None]) -> tuple[bool | None, str]:
    """Met when every scenario measured on both engines is at ≥ `GOAL_RATIO`; the one-line why."""
    known = {s: r for s, r in ratios.items() if r is not None}
    if not known:
        return (
            None,
            "not measured: the run had no scenario on both durable_ext and durable_ext_http",
        )
    worst = min(known, key=lambda s: known[s])
    shown = f"{worst} {known[worst]:.2f}×"
    if known[worst] >= GOAL_RATIO:
        return True, f"every scenario over HTTP at ≥ {GOAL_RATIO}× of in-process (lowest: {shown})"
    below = [s for s in _ORDER if s in known and known[s] < GOAL_RATIO]
    return False, f"below {GOAL_RATIO}× of in-process: {', '.join(below)} (lowest: {shown})"


def _differences(
    inside: dict[str, Any], http: dict[str, Any], top: int = 3
) -> list[dict[str, Any]]:
    """The storage request categories whose count per unit differs most between the modes."""
    a, b = inside["requests_by_category_per_unit"], http["requests_by_category_per_unit"]
    rows = [
        {"category": c, "in_process": a.get(c, 0.0), "http": b.get(c, 0.0)}
        for c in sorted(set(a) | set(b))
    ]
    rows.sort(key=lambda row: -abs(row["http"] - row["in_process"]))
    return [row for row in rows[:top] if abs(row["http"] - row["in_process"]) >= 0.05]


def _finding(scenario: str, row: dict[str, Any]) -> str:
    """One sentence of where the HTTP mode's time per unit goes, from the figures."""
    inside, http = row["in_process"], row["http"]
    parts = [f"**{scenario}**: {row['ratio']:.2f}×"]
    if inside["wall_ms_per_unit"] is not None and http["wall_ms_per_unit"] is not None:
        parts.append(
            f"wall {num(http['wall_ms_per_unit'], 2)} vs {num(inside['wall_ms_per_unit'], 2)} ms "
            "per unit"
        )
    host, driver = http["host_cpu_ms_per_unit"], http["driver_cpu_ms_per_unit"]
    if host is not None and driver is not None and inside["cpu_ms_per_unit"] is not None:
        parts.append(
            f"CPU {num(host, 2)} (host) + {num(driver, 2)} (driver) vs "
            f"{num(inside['cpu_ms_per_unit'], 2)} ms in-process"
        )
    if http["storage_cpu_ms_per_unit"] is not None and inside["storage_cpu_ms_per_unit"]:
        parts.append(
            f"Azurite {num(http['storage_cpu_ms_per_unit'], 2)} vs "
            f"{num(inside['storage_cpu_ms_per_unit'], 2)} ms"
        )
    parts.append(
        f"storage requests {num(http['requests_per_unit'], 2)} vs "
        f"{num(inside['requests_per_unit'], 2)} per unit"
    )
    differences = ", ".join(
        f"{d['category']} {d['http'] - d['in_process']:+.2f}" for d in row["differences"]
    )
    if differences:
        parts.append(f"most different: {differences}")
    kinds = http.get("http_requests_per_unit") or {}
    if kinds:
        parts.append(
            "HTTP requests per unit "
            + ", ".join(f"{k} {num(v, 2)}" for k, v in sorted(kinds.items()))
        )
    extra = _extra_cpu_per_request(inside, http)
    if extra is not None:
        parts.append(f"CPU over in-process per HTTP request {num(extra, 2)} ms (host + driver)")
    return "; ".join(parts) + "."


def _extra_cpu_per_request(inside: dict[str, Any], http: dict[str, Any]) -> float | None:
    """(host + driver CPU − in-process CPU) per unit, divided by the HTTP requests per unit."""
    requests = sum((http.get("http_requests_per_unit") or {}).values())
    values = (
        http["host_cpu_ms_per_unit"],
        http["driver_cpu_ms_per_unit"],
        inside["cpu_ms_per_unit"],
    )
    if not requests or any(v is None for v in values):
        return None
    host, driver, alone = values
    return (host + driver - alone) / requests


def summarize_http(raw: dict[str, Any]) -> dict[str, Any]:
    """The figures, ratios, goal verdict and findings of the HTTP row (see the module)."""
    rows: dict[str, Any] = {}
    for scenario in _ORDER:
        engines = raw.get("scenarios", {}).get(scenario, {})
        inside, http = _good(engines.get(IN_PROCESS)), _good(engines.get(HTTP_ENGINE))
        if not inside or not http:
            continue
        row: dict[str, Any] = {"in_process": _figures(inside), "http": _figures(http)}
        a, b = row["in_process"], row["http"]
        if scenario == "latency":
            ratio = a["p50_ms"] / b["p50_ms"] if a["p50_ms"] and b["p50_ms"] else None
        else:
            ratio = (
                b["throughput_per_s"] / a["throughput_per_s"]
                if a["throughput_per_s"] and b["throughput_per_s"]
                else None
            )
        row["ratio"] = ratio
        row["met"] = None if ratio is None else ratio >= GOAL_RATIO
        row["differences"] = _differences(a, b)
        row["finding"] = _finding(scenario, row) if ratio is not None else None
        rows[scenario] = row
    levers = []
    for lever in raw.get("levers", []):
        if lever.get("engine") != HTTP_ENGINE or "off" not in lever:
            continue
        effects = {}
        for scenario, runs in lever["off"].items():
            off, on = _good(runs), rows.get(scenario, {}).get("http")
            if off and on:
                effects[scenario] = {"on": on, "off": _figures(off)}
        levers.append({"key": lever["key"], "off_option": lever["off_option"], "effects": effects})
    met, why = verdict({s: r["ratio"] for s, r in rows.items()})
    summary: dict[str, Any] = {
        "goal_ratio": GOAL_RATIO,
        "scenarios": rows,
        "met": met,
        "why": why,
        "profiles": (raw.get("http") or {}).get("profiles", {}),
        "levers": levers,
    }
    return summary


# -- the report -----------------------------------------------------------------------------------
def _profile_lines(profiles: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for scenario, profile in profiles.items():
        if "error" in profile:
            lines.append(f"- {scenario}: the profiled run failed ({profile['error']})")
            continue
        areas = ", ".join(
            f"{area} {entry['share'] * 100:.0f}%"
            for area, entry in list(profile["by_area"].items())[:6]
        )
        functions = ", ".join(
            f"`{f['function']}` {f['own_s'] * 1000:.0f} ms" for f in profile["top_functions"][:4]
        )
        stages = ", ".join(
            f"{label} {seconds * 1000 / profile['size']:.2f} ms"
            for label, seconds in (profile.get("stages") or {}).items()
        )
        lines.append(
            f"- {scenario} ({profile['size']} units, host CPU {num(profile['host_cpu_s'], 2)} s "
            f"under the profiler): {areas}. Top functions by own time: {functions}. "
            f"Per unit, cumulative (stages nest): {stages}.{_per_request(profile)}"
        )
    return lines


def _per_request(profile: dict[str, Any]) -> str:
    """The HTTP path's own CPU per HTTP request under the profiler: the function host's
    conversions (aiohttp request → `func.HttpRequest`, response back) and the management
    functions' wrapper around the API handlers (settings, request and response objects)."""
    stages, requests = profile.get("stages") or {}, profile.get("http_requests")
    whole, serve, api = (stages.get(label) for _, _, label in HOST_STAGES[1:4])
    if not requests or whole is None or serve is None or api is None:
        return ""
    return (
        f" Per HTTP request ({requests}): function conversions and the starter "
        f"{(whole - serve) * 1000 / requests:.2f} ms, the management functions' wrapper "
        f"{(serve - api) * 1000 / requests:.2f} ms, the API handlers "
        f"{api * 1000 / requests:.2f} ms (their storage calls included)."
    )


def _rate(figures: dict[str, Any], scenario: str) -> str:
    if scenario == "latency":
        return f"p50 {num(figures['p50_ms'], 1)} ms"
    return f"{num(figures['throughput_per_s'], 1)}/s"


def _cpu(figures: dict[str, Any]) -> float | None:
    host, driver = figures["host_cpu_ms_per_unit"], figures["driver_cpu_ms_per_unit"]
    return host + driver if host is not None and driver is not None else None


def _changed(on: dict[str, Any], off: dict[str, Any]) -> str:
    rows = _differences(on, off, top=1)
    if not rows:
        return "—"
    row = rows[0]
    return f"{row['category']} {num(row['in_process'], 2)} → {num(row['http'], 2)}"


def http_markdown(summary: dict[str, Any] | None) -> list[str]:
    """The report's section on the HTTP row: ratios, per-unit costs side by side, findings."""
    if not summary or not summary.get("scenarios"):
        return ["Not measured in this run (the `durable_ext_http` engine was not run)."]
    met = {True: "met", False: "not met", None: "not measured"}[summary["met"]]
    lines = [
        f"Goal: every scenario over HTTP through `durable-ext start` at ≥ {summary['goal_ratio']}× "
        f"of the same scenario in-process, same run. **{met}**: {summary['why']}.",
        "",
        "Throughputs are HTTP / in-process; latency is in-process p50 / HTTP p50 (higher is "
        "better for both). CPU over HTTP is the host process's plus the driving process's.",
        "",
        "| scenario | in-process | HTTP | ratio | CPU ms/unit in-process | host + driver | "
        "Azurite ms/unit in-process / HTTP | storage req/unit in-process / HTTP | "
        "HTTP req/unit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for scenario, row in summary["scenarios"].items():
        a, b = row["in_process"], row["http"]
        if scenario == "latency":
            values = f"p50 {num(a['p50_ms'], 1)} ms | p50 {num(b['p50_ms'], 1)} ms"
        else:
            values = f"{num(a['throughput_per_s'], 1)}/s | {num(b['throughput_per_s'], 1)}/s"
        ratio = f"{row['ratio']:.2f}×" if row["ratio"] is not None else "n/a"
        http_requests = sum((b.get("http_requests_per_unit") or {}).values())
        lines.append(
            f"| {scenario} | {values} | {ratio} | {num(a['cpu_ms_per_unit'], 2)} | "
            f"{num(b['host_cpu_ms_per_unit'], 2)} + {num(b['driver_cpu_ms_per_unit'], 2)} | "
            f"{num(a['storage_cpu_ms_per_unit'], 2)} / {num(b['storage_cpu_ms_per_unit'], 2)} | "
            f"{num(a['requests_per_unit'], 2)} / {num(b['requests_per_unit'], 2)} | "
            f"{num(http_requests, 2)} |"
        )
    lines += ["", "Where the HTTP mode's time goes, per scenario (computed from the runs):", ""]
    lines += [f"- {row['finding']}" for row in summary["scenarios"].values() if row["finding"]]
    lever_rows = [
        f"| `{lever['off_option']}` | {scenario} | {_rate(e['on'], scenario)} | "
        f"{_rate(e['off'], scenario)} | {num(e['on']['requests_per_unit'], 2)} / "
        f"{num(e['off']['requests_per_unit'], 2)} | {_changed(e['on'], e['off'])} | "
        f"{num(_cpu(e['on']), 2)} / {num(_cpu(e['off']), 2)} |"
        for lever in summary.get("levers") or []
        for scenario, e in lever["effects"].items()
    ]
    if lever_rows:
        lines += [
            "",
            "The HTTP path's levers switched off (one run each against the HTTP medians above; "
            "storage requests are the host's worker's and HTTP functions' together):",
            "",
            "| switched off | scenario | on | off | storage req/unit on / off | changed most | "
            "CPU ms/unit on / off |",
            "|---|---|---:|---:|---:|---|---:|",
            *lever_rows,
        ]
    profiles = summary.get("profiles") or {}
    if profiles:
        lines += [
            "",
            "The host under cProfile (thread CPU of its event-loop thread; activities run on the "
            "thread pool and are not in it), by area:",
            "",
            *_profile_lines(profiles),
        ]
    return lines
