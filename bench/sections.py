"""The measurement sections of docs/performance.md: storage sensitivity, the floor, storage
requests, the profile, replay, replay growth, CPU per episode, idle memory and the levers."""

from __future__ import annotations

from .analysis import others_busy, speedup, within_run
from .formatting import num, pct, table
from .results import (
    SDK_CLIENT,
    ChainSeries,
    Failed,
    FloorStep,
    Idle,
    Profile,
    Replay,
    Results,
    ScenarioSummary,
)
from .verdicts import episode_sentence
from .workloads import SCENARIOS

__all__ = [
    "chain_section",
    "episode_section",
    "floor_section",
    "idle_section",
    "levers_section",
    "profile_section",
    "replay_section",
    "requests_section",
    "sensitivity_section",
]


def sensitivity_section(results: Results) -> str:
    """durable_ext on an in-memory Azurite against the main runs on disk."""
    measured = results.summary.storage_sensitivity
    if measured is None:
        if results.environment.azurite_persistence == "in-memory":
            return "Not measured: the main runs are on an in-memory Azurite already."
        return "Not measured in this run."
    if measured.error:
        return f"Not measured: the in-memory Azurite failed ({measured.error})."
    rows = []
    for scenario, memory in measured.scenarios.items():
        disk = results.scenario(scenario, "durable_ext")
        if memory.error:
            rows.append([scenario, "", "", f"failed: {memory.error}", "", "", "", ""])
            continue
        if scenario == "latency":
            unit = "ms p50"
            on_disk, in_memory = disk.p50_ms if disk else None, memory.p50_ms
        else:
            unit = SCENARIOS[scenario].unit + "/s"
            on_disk, in_memory = disk.throughput_per_s if disk else None, memory.throughput_per_s
        disk_send = disk.request_median_ms.get("queue.send") if disk else None
        rows.append(
            [
                scenario,
                unit,
                num(on_disk),
                num(in_memory) + ("" if memory.all_correct else " (wrong output)"),
                num(speedup(scenario, disk, memory), 2, "×"),
                f"{num(disk.storage_cpu_ms_per_unit if disk else None, 2)} → "
                f"{num(memory.storage_cpu_ms_per_unit, 2)}",
                f"{num(disk_send, 1)} → {num(memory.request_median_ms.get('queue.send'), 1)}",
                f"{pct(others_busy(disk))} → {pct(others_busy(memory))}",
            ]
        )
    return "\n".join(
        [
            "durable_ext on a second, fresh Azurite started with `--inMemoryPersistence`, once "
            "per scenario, against the main runs on disk (their medians). Everything else is "
            "the same; the headline figures above are the disk ones. `speed-up` is how many "
            "times faster the in-memory run is (for latency: disk p50 over in-memory p50). "
            "Per unit as in the details (per orchestration for HelloCities); `others busy` is "
            "the CPU other processes on the machine used over the run: a single run next to a "
            "busy neighbour is not a fair comparison.",
            "",
            table(
                [
                    "scenario",
                    "unit",
                    "disk",
                    "in memory",
                    "speed-up",
                    "Azurite CPU ms/unit (disk → memory)",
                    "queue send median ms (disk → memory)",
                    "others busy, % of a core (disk → memory)",
                ],
                rows,
            ),
        ]
    )


def _variant_name(step: FloorStep) -> str:
    client = "SDK" if step.client == SDK_CLIENT else step.client
    return f"{step.label} ({client})"


def floor_section(results: Results) -> str:
    """The raw storage calls of one orchestration step, with no engine."""
    floor = results.raw.floor
    if floor is None:
        return "Not measured in this run."
    variants = list(floor.steps.values())
    rows = []
    for v in variants:
        rows.append(
            [
                v.label,
                v.client,
                str(v.requests_per_step if v.requests_per_step is not None else "?"),
                f"**{num(v.step_ms, 2)}**",
                num(v.steps_per_s, 0),
                num(v.cpu_ms_per_step, 2),
                num(v.cpu_ms_per_request, 2),
                num(v.storage_cpu_ms_per_step, 2),
                num(v.storage_cpu_ms_per_request, 2),
                ", ".join(f"{x:.1f}" for x in v.runs_step_ms),
            ]
        )
    steps_per_run = floor.steps_per_run if floor.steps_per_run is not None else "?"
    lines = [
        f"One orchestration step's raw storage calls with no engine, {steps_per_run} "
        "steps in a row per run: in DTFx order (every message received), as a handoff (both "
        "messages sent invisible and deleted by the pop receipt the send returns; no "
        "receives), and as the engine's own sequential step now (the work item sent invisible, "
        "the result handed over in memory: no result message, no receive, no Instances merge "
        "while the status is unchanged). The DTFx and handoff shapes go through the Azure SDK's aio "
        "clients and through the lean REST path the engine uses, the engine's shape through the "
        "lean path, all in the same run. `CPU` is this (client) process's CPU per step "
        "(time.process_time around the loop), `Azurite CPU` the emulator's over the same steps.",
        "",
        table(
            [
                "step",
                "client",
                "requests",
                "ms/step",
                "steps/s",
                "CPU ms/step",
                "CPU ms/request",
                "Azurite CPU ms/step",
                "Azurite ms/request",
                "runs (ms/step)",
            ],
            rows,
        ),
        "",
    ]
    sdk, lean = floor.steps.get("dtfx"), floor.steps.get("dtfx_lean")
    if (
        sdk
        and lean
        and sdk.cpu_ms_per_request
        and lean.cpu_ms_per_request
        and sdk.step_ms
        and lean.step_ms
    ):
        lines.append(
            f"The lean REST path costs **{lean.cpu_ms_per_request:.2f} ms** of client CPU per "
            f"request against the SDK's {sdk.cpu_ms_per_request:.2f} ms "
            f"({sdk.cpu_ms_per_request / lean.cpu_ms_per_request:.1f}× less) and makes the "
            f"DTFx step {sdk.step_ms / lean.step_ms:.1f}× faster "
            f"({sdk.step_ms:.1f} → {lean.step_ms:.1f} ms)"
            + (
                f"; what is left of a lean step is mostly Azurite "
                f"({lean.storage_cpu_ms_per_step:.1f} ms of its CPU per step) and the round "
                "trips."
                if lean.storage_cpu_ms_per_step
                else "."
            )
        )
        lines.append("")
    for parallel in floor.parallel.values():
        client = parallel.client
        shares = ""
        if parallel.cpu_share is not None:
            shares = f"; the client process was busy {pct(parallel.cpu_share)} of a core"
            if parallel.storage_cpu_share is not None:
                shares += f", Azurite {pct(parallel.storage_cpu_share)}"
        lines.append(
            f"- {parallel.chains} independent chains of DTFx-order steps at once through "
            f"{'the ' + client if client == SDK_CLIENT else 'the ' + client + ' path'}: "
            f"**{parallel.steps_per_s:.0f} steps/s** ({parallel.requests_per_s:.0f} "
            f"requests/s){shares}."
        )
    lines += [
        "",
        "The parallel figures are what this client and Azurite sustain for many concurrent "
        "steps made one request at a time; the engine does better than that on fan-out and "
        "HelloCities because it needs fewer requests per activity (results in memory, one "
        "history transaction for many results).",
        "",
        "Median latency of each request, as the client saw it (ms; the sum of medians is below "
        "the step time because each request also has a tail):",
        "",
    ]
    ops: list[str] = []
    for v in variants:
        for op in v.op_median_ms:
            if op not in ops:
                ops.append(op)
    op_rows = [[op, *[num(v.op_median_ms.get(op), 2) for v in variants]] for op in ops]
    lines.append(table(["request", *[_variant_name(v) for v in variants]], op_rows))
    return "\n".join(lines)


def requests_section(results: Results) -> str:
    """durable_ext's worker requests per unit, by category, and their median latency."""
    measured = {
        name: (s, s.requests_by_category_per_unit)
        for name in SCENARIOS
        if (s := results.scenario(name, "durable_ext")) and s.requests_by_category_per_unit
    }
    if not measured:
        return "Not measured in this run."
    scenarios = list(measured)
    categories = sorted({c for _, per_unit in measured.values() for c in per_unit})
    rows = []
    for category in categories:
        row = [category]
        for _, per_unit in measured.values():
            row.append(num(per_unit.get(category, 0.0), 2))
        rows.append(row)
    rows.append(["**total**"] + [num(s.requests_per_unit, 2) for s, _ in measured.values()])
    header = ["request", *[f"{s} (per {SCENARIOS[s].per})" for s in scenarios]]
    latency_rows = []
    for category in categories:
        cells = [category]
        for s, _ in measured.values():
            cells.append(num(s.request_median_ms.get(category), 2))
        latency_rows.append(cells)
    return "\n".join(
        [
            "Every request durable_ext's worker sent during the measured stretch, per unit of "
            "the scenario (leases and idle polling included; `queue.receive.empty` are receives "
            "that found nothing); the bench client's own requests are not in it (they are the "
            "`client requests/unit` column above). The floor's "
            "DTFx step is 8 requests, its handoff step 6, the engine's sequential shape (result "
            "handed over in memory) 3.",
            "",
            table(header, rows),
            "",
            "Median latency per request, as the worker saw it (ms, from sending to the answer):",
            "",
            table(["request", *scenarios], latency_rows),
        ]
    )


def profile_section(results: Results) -> str:
    """Where the event-loop thread's CPU goes, by area and by function (cProfile)."""
    usable = {s: p for s, p in results.raw.profile.items() if isinstance(p, Profile)}
    if not usable:
        return "Not profiled in this run."
    areas: list[str] = []
    for profile in usable.values():
        for area in profile.by_area:
            if area not in areas:
                areas.append(area)
    rows = []
    for area in areas:
        row = [area]
        for profile in usable.values():
            entry = profile.by_area.get(area)
            row.append(f"{pct(entry.share)} ({entry.seconds:.2f} s)" if entry else "—")
        rows.append(row)
    parts = [
        "Own CPU time of the event-loop thread by area, under cProfile with a thread-CPU "
        "timer (sync activities run on the thread pool and are not in it; cProfile slows the "
        "run, so read shares, not absolute times):",
        "",
        table(["area", *usable], rows),
    ]
    for scenario, profile in usable.items():
        parts += [
            "",
            f"Top functions by own time, `{scenario}`:",
            "",
            table(
                ["function", "own s", "calls"],
                [
                    [f"`{f.function}`", num(f.own_s, 3), f"{f.calls:,}"]
                    for f in profile.top_functions[:10]
                ],
            ),
        ]
    return "\n".join(parts)


def replay_section(results: Results) -> str:
    """The replay benchmark: durable_ext against azure-functions-durable 1.7."""
    replay = results.raw.replay
    if not isinstance(replay, Replay):
        error = replay.error if isinstance(replay, Failed) else "not run"
        return f"bench/replay.py did not produce results: {error}."
    rows = []
    for s in replay.scenarios:
        rows.append(
            [
                s.scenario,
                f"{s.events:,}",
                num(s.durable_ext.cpu_median_s * 1000, 1),
                num(s.sdk.cpu_median_s * 1000, 1),
                f"{s.wall_ratio:.1f}×",
                f"{s.cpu_ratio:.1f}×",
                f"{s.cpu_ratios['replay_only']:.1f}×",
            ]
        )
    return "\n".join(
        [
            "bench/replay.py replays the same scripted history with both engines in one process "
            "(ours: decode storage-shaped rows + `OrchestrationExecutor.execute`; the SDK: "
            "`Orchestrator.create(fn)(trigger_json)`), median of "
            f"{replay.runs if replay.runs is not None else '?'} runs each:",
            "",
            table(
                [
                    "history",
                    "events",
                    "durable_ext CPU ms",
                    "azure-functions-durable 1.7 CPU ms",
                    "speed-up (wall)",
                    "speed-up (CPU)",
                    "replay alone (CPU, est.)",
                ],
                rows,
            ),
        ]
    )


def chain_section(results: Results) -> str:
    """N-step chains with the instance cache on and off: replay work and its growth."""
    chain = results.summary.chain
    if chain is None:
        return "Not measured in this run."
    series = {"cache on": chain.cache_on, "cache off": chain.cache_off}
    rows = []
    for title, data in series.items():
        if not isinstance(data, ChainSeries):
            rows.append([title, "failed", *[""] * 7])
            continue
        for i, n in enumerate(chain.lengths):
            requests = data.requests[i]
            rows.append(
                [
                    title,
                    str(n),
                    num(data.wall_s[i], 2),
                    num(data.cpu_s[i], 2),
                    num(data.storage_cpu_s[i], 2),
                    f"{data.invocations[i]:,}",
                    f"{data.replayed_resumes[i]:,}",
                    f"{data.history_query_bytes[i] / 1024:,.0f}",
                    f"{requests:,}" if requests is not None else "—",
                ]
            )
    exponent_rows = []
    for title, data in series.items():
        known = data if isinstance(data, ChainSeries) else None
        exponent_rows.append(
            [
                title,
                num(known.exponent_resumes if known else None, 2),
                num(known.exponent_cpu if known else None, 2),
                num(known.exponent_storage_cpu if known else None, 2),
                num(known.exponent_history_query_bytes if known else None, 2),
            ]
        )
    return "\n".join(
        [
            "An N-step chain (the `sequential` orchestration) run with the instance cache on "
            "(default) and off (`instance_cache_size=0`). The orchestrator counts its own work: "
            "`invocations` is how often the function was started from the first event (a full "
            "replay), `replayed resumes` how many activity results it was handed from history "
            "again. `history read` is the bytes of history-table queries Azurite returned.",
            "",
            table(
                [
                    "instance cache",
                    "N",
                    "wall s",
                    "worker CPU s",
                    "Azurite CPU s",
                    "invocations",
                    "replayed resumes",
                    "history read KiB",
                    "requests",
                ],
                rows,
            ),
            "",
            "Growth exponents (least-squares slope of log(value) over log(N); 1 = linear, "
            "2 = quadratic):",
            "",
            table(
                [
                    "instance cache",
                    "orchestrator resumes",
                    "worker CPU",
                    "Azurite CPU",
                    "history read",
                ],
                exponent_rows,
            ),
        ]
    )


def episode_section(results: Results) -> str:
    """CPU per episode along a cached chain, and whether it stays flat."""
    summary = results.summary.episode
    if summary is None:
        return "Not measured in this run."
    window = summary.window
    if summary.error is not None or not summary.rows or window is None:
        return f"The measurement failed: {summary.error or 'no windows'}."
    rounds = summary.rounds
    rows = [
        [
            f"{r.position:,}–{r.position + window:,}",
            f"{r.history_events:,}",
            num(r.cpu_ms_median, 2),
            num(r.cpu_ms_mean, 2),
            num(r.wall_ms_median, 2),
            num(r.storage_cpu_ms_per_episode, 1),
            num(r.engine_cached_ms_median and r.engine_cached_ms_median * 1000, 0),
            num(r.engine_replay_ms, 2),
            "yes" if r.correct else "**no**",
        ]
        for r in summary.rows
    ]
    measured_at = summary.measured_at
    when = (
        f" Measured on {measured_at}"
        + (f" at commit `{summary.git_commit[:10]}`" if summary.git_commit else "")
        + ", in a run of this part alone (the rest of the page is from the run above)."
        if measured_at and not within_run(results, measured_at)
        else ""
    )
    return "\n".join(
        [
            f"A chain orchestration with the instance cache on, {window} episodes measured from "
            f"each position ({rounds} round{'s' if rounds != 1 else ''}, samples pooled; beyond "
            "step 0 the chain is seeded to the position and handed to the worker's cache, then "
            "runs for real). `worker CPU` is the process's CPU between two consecutive activity "
            "calls, which is one episode with its checkpoint and the activity; `engine alone` "
            "is a cached episode's `continue_episode` and summary update, `full replay` what "
            f"the engine spends on a cache miss at that step (history read not included).{when}",
            "",
            table(
                [
                    "steps",
                    "history events seeded",
                    "worker CPU ms/episode (median)",
                    "(mean)",
                    "wall ms/episode",
                    "Azurite CPU ms/episode",
                    "engine alone µs",
                    "full replay ms",
                    "outputs correct",
                ],
                rows,
            ),
            "",
            episode_sentence(summary),
        ]
    )


def idle_section(results: Results) -> str:
    """The worker's memory with many orchestrations waiting for an event."""
    idle = results.raw.idle
    if idle is None:
        return "Not measured in this run."
    if isinstance(idle, Failed):
        return f"The measurement failed: {idle.error}"
    return (
        f"{idle.count:,} orchestrations each waiting for an external event: the worker "
        f"process's RSS was **{idle.rss_idle_mb:.0f} MB** once all were idle "
        f"({idle.rss_before_mb:.0f} MB before the first start; peak "
        f"{idle.rss_peak_mb:.0f} MB; about {idle.rss_per_instance_kb:.1f} KB per "
        f"instance), with {idle.cached_instances:,} instances in its instance cache. "
        f"Starting them (the client's {idle.count:,} `start_new` calls, 16 in flight; "
        f"{idle.start_retries_after_connection_errors} retried after Azurite dropped "
        "the connection) and "
        f"running every first episode took {idle.all_running_s:.0f} s "
        f"({idle.running_per_s:.0f} orchestrations/s) and "
        f"{idle.worker_cpu_s:.0f} s of worker CPU"
        + _idle_others(idle)
        + ". The memory figure is what the goal is about; the start-up rate is bounded by the "
        "client's three sequential requests per start (an Instances read, the queue send, the "
        "Instances insert)"
        + (
            f"; it went from {rates[0]:.0f} starts/s in the first tenth to {rates[-1]:.0f} in "
            "the last as the hub grew"
            if (rates := idle.starts_per_s_by_tenth)
            else ""
        )
        + "."
    )


def _idle_others(idle: Idle) -> str:
    """The CPU the client, Azurite and the other processes used while the idle ones started."""
    if idle.client_cpu_s is None or idle.storage_cpu_s is None or idle.other_cpu_s is None:
        return ""
    return (
        f", {idle.client_cpu_s:.0f} s of the client's and "
        f"{idle.storage_cpu_s:.0f} s of Azurite's (other processes: "
        f"{idle.other_cpu_s:.0f} s)"
    )


def levers_section(results: Results) -> str:
    """Each WorkerOptions lever switched off, and what the engine does that is not a switch."""
    parts: list[str] = []
    for lever in results.summary.levers:
        parts += [f"### {lever.label}", "", lever.description, ""]
        if lever.missing is not None:
            parts += [f"Not measured: {lever.missing}.", ""]
            continue
        rows = []
        for scenario, off in lever.off.items():
            on = lever.on.get(scenario, ScenarioSummary())
            on_rate, off_rate = on.throughput_per_s, off.throughput_per_s
            unit = SCENARIOS[scenario].per if scenario in SCENARIOS else "unit"
            rows.append(
                [
                    f"{scenario} (per {unit})",
                    num(on_rate),
                    num(off_rate) if not off.error else f"failed: {off.error}",
                    f"{on_rate / off_rate:.2f}×" if on_rate and off_rate else "—",
                    num(on.requests_per_unit, 1),
                    num(off.requests_per_unit, 1),
                    num(on.cpu_ms_per_unit, 2),
                    num(off.cpu_ms_per_unit, 2),
                ]
            )
        runs = results.lever_runs
        parts += [
            f"Measured by switching it off (`{lever.off_option}`) on "
            + ", ".join(f"`{s}`" for s in lever.off)
            + f" ({runs} run{'s' if runs != 1 else ''} each, against the main runs' medians), "
            "everything else equal:",
            "",
            table(
                [
                    "scenario",
                    "on /s",
                    "off /s",
                    "effect",
                    "requests/unit on",
                    "off",
                    "CPU ms/unit on",
                    "off",
                ],
                rows,
            ),
            "",
        ]
        if lever.key == "instance_cache":
            parts += ["Its effect on replay growth is in the chain measurement above.", ""]
    parts += ["### Fewer and cheaper requests (not switchable)", "", *_request_savings(results)]
    return "\n".join(parts)


def _request_savings(results: Results) -> list[str]:
    """What the engine does to make fewer and cheaper requests, with the figures of this run."""
    steps = results.raw.floor.steps if results.raw.floor else {}
    sdk, lean = steps.get("dtfx"), steps.get("dtfx_lean")
    lean_text = (
        "The lean REST path (`durable_ext.storage.rest`): queue message put/get/delete/update "
        "and table row get/insert/write/query/transaction go straight over aiohttp, signed "
        "like the SDK's requests (Shared Key, SAS or a Microsoft Entra token), storing the "
        "same bytes and raising the same `azure.core` errors, instead of through the Azure "
        "SDK's pipeline; creating and deleting queues, tables and containers, leases and blobs "
        "stay on the SDK."
    )
    if (
        sdk
        and lean
        and sdk.cpu_ms_per_request
        and lean.cpu_ms_per_request
        and sdk.step_ms
        and lean.step_ms
    ):
        lean_text += (
            f" In the floor above it costs {lean.cpu_ms_per_request:.2f} ms of client CPU "
            f"per request against the SDK's {sdk.cpu_ms_per_request:.2f} ms, and a DTFx-order "
            f"step takes {lean.step_ms:.1f} ms instead of {sdk.step_ms:.1f} ms."
        )
    sequential_run = results.scenario("sequential", "durable_ext")
    sequential = sequential_run.requests_per_unit if sequential_run else None
    memory_text = (
        "Results handed over in memory: an activity's result goes to the orchestration that "
        "this process owns without a result message (bound to its work item, which the "
        "recording checkpoint deletes), so a sequential activity is the floor's "
        "result-in-memory shape: send the work item (invisible), the history transaction, "
        "delete the work item, 3 requests against DTFx's 8"
    )
    memory_text += (
        f"; this run's `sequential` made {sequential:.1f} worker requests per activity."
        if sequential
        else "."
    )
    fanout_run = results.scenario("fanout", "durable_ext")
    fanout = (fanout_run.requests_by_category_per_unit if fanout_run else None) or {}
    batch_text = (
        "One history transaction per checkpoint: all the rows an episode adds go in one "
        "table transaction with the sentinel merge (split only beyond a transaction's 100 "
        "operations or about 3 MB), so a "
        "fan-out records many results per transaction"
    )
    batch = fanout.get("table.batch")
    batch_text += (
        f" (this run's `fanout`: {batch:.2f} transactions per activity)." if batch else "."
    )
    return [
        f"- {lean_text}",
        f"- {memory_text}",
        "- Statuses coalesced: a running orchestration's unchanged status is not merged into "
        "Instances at every checkpoint (the `instance_status_refresh` lever above).",
        f"- {batch_text}",
        "- Parallel sends and deletes: a checkpoint sends its outbound messages concurrently "
        "before the history write and deletes the messages it consumed concurrently after it.",
        "- Not batched: work items. Every activity is its own DTFx message in the work-item "
        "queue (one send and one delete per activity), not several work items packed into one "
        "queue message, so the queues keep the storage contract DTFx and other workers read.",
    ]
