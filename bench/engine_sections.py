"""The engine sections of docs/performance.md: where the CPU goes, replay against
azure-functions-durable, replay growth, CPU per episode along a cached chain, idle memory."""

from __future__ import annotations

from .analysis import within_run
from .formatting import num, pct, table
from .results import ChainSeries, Entities, Failed, Idle, Profile, Replay, Results
from .verdicts import episode_sentence

__all__ = [
    "chain_section",
    "entities_section",
    "episode_section",
    "idle_section",
    "profile_section",
    "replay_section",
]


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


def entities_section(results: Results) -> str:
    """Entity operations per second, beside Durable Functions' published target."""
    entities = results.raw.entities
    if entities is None:
        return "Not measured in this run."
    if isinstance(entities, Failed):
        return f"The measurement failed: {entities.error}"
    rows = [
        [
            "one entity" if run.entities == 1 else f"{run.entities} entities",
            num(run.ops_per_s),
            num(run.ops_per_s_per_entity),
            num(run.wall_s),
            num(run.cpu_s),
            num(run.client_sends_per_s),
        ]
        for run in (entities.one, entities.spread)
    ]
    return "\n".join(
        [
            _entities_intro(entities),
            "",
            table(
                [
                    "signals to",
                    "operations/s",
                    "per entity",
                    "wall s",
                    "worker CPU s",
                    "client sends/s",
                ],
                rows,
            ),
        ]
    )


def _entities_intro(entities: Entities) -> str:
    target = entities.df_target_ops_per_s
    one = entities.one.ops_per_s
    ratio = f" ({one / target:.1f}× it)" if one else ""
    return (
        f"{entities.ops:,} `add` signals queued by a client, then run by one worker, timed from the "
        "first operation applied to the last (neither the sends nor the worker's start count). "
        f"Durable Functions publishes **{target:.0f} operations/s** per entity on Azure Storage as "
        f"its target; one entity here ran **{num(one)}/s**{ratio}. Operations waiting for an "
        "entity run as one batch per checkpoint, so a hot entity's rate is the control-queue "
        "batch (32 messages) per checkpoint; spread over 100 entities each checkpoint carries a "
        "few operations, so the rate is bounded by checkpoints (storage round trips) per second."
    )
