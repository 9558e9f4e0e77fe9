"""The chaos driver's markdown report (docs/reliability.md): method, faults, invariants, figures."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from tests.reliability.chaos_audit import KNOWN_BUGS
from tests.reliability.chaos_cluster import FAULT_POINT_NAMES, LEASE_SECONDS, PARTITIONS

if TYPE_CHECKING:
    from tests.reliability.chaos import ChaosConfig, ChaosResult

__all__ = ["percentile", "render_report"]

KIND_TEXT = {
    "chain": "chains of 3–5 activities",
    "fan": "fan-out/fan-in parents (2 sub-orchestrations of 4 parallel activities each)",
    "timer": "timer chains (2 activities, each followed by a durable timer)",
    "approval": "approvals (2 external events raised by the driver, then an activity)",
    "eternal": "continue-as-new loops (3 generations of one activity)",
    "fan-child": "sub-orchestrations of the fan-outs",
}

FAULT_TEXT = {
    "duplicates": "**duplicate messages**: for 2 s every visible control-queue message (up to "
    "{c.duplicate_batch} per queue and peek) is copied back into its queue, and up to "
    "{c.late_duplicates} copies taken in earlier bursts are sent again, late",
    "lease-break": "**broken lease**: a random partition's `{{Hub}}Partitions` row is made to expire "
    "at once (with the legacy manager: its blob lease is broken); any worker may claim it",
    "zombie": "**zombie**: a random worker is SIGSTOPped for {c.zombie_seconds:.0f} s (past its "
    "lease: the others take its partitions), then SIGCONTed; whatever it was checkpointing must be "
    "fenced by the history sentinel ETag",
    "lease-steal": "**stolen lease**: an intruder overwrites a random partition's row (or changes "
    "its blob lease away from its owner), names itself owner, holds it "
    "{c.steal_hold_seconds:.0f} s without serving the queue, then releases it",
    "azurite-restart": "**storage outage**: Azurite is stopped for {c.azurite_outage_seconds:.0f} s "
    "and started again on the same data (at most {c.azurite_restarts} times)",
}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (`q` from 0 to 100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _method(result: ChaosResult) -> list[str]:
    c: ChaosConfig = result.config
    top_level = sum(count for kind, count in result.kinds.items() if kind != "fan-child")
    mix = ", ".join(f"{result.kinds.get(kind, 0)} {KIND_TEXT[kind]}" for kind in KIND_TEXT)
    others = "; ".join(FAULT_TEXT[kind].format(c=c) for kind in c.faults)
    points = ", ".join(f"`{name}`" for name in FAULT_POINT_NAMES)
    clocks: list[str] = []
    if any(c.clock_offsets):
        offsets = ", ".join(f"{o:+g} s" for o in c.clock_offsets)
        spread = max(c.clock_offsets) - min(c.clock_offsets)
        clocks = [
            f"* **Clock skew/jumps.** The workers' clocks are off by {offsets} "
            "(`DURABLE_EXT_FAULT_CLOCK_OFFSET`, one per worker, the next one in turn after each "
            f"restart, so a restarted worker's clock jumps): an instance's episodes, activity "
            f"results and timers are stamped by clocks up to {spread:g} s apart, which jump "
            "whenever its partition moves. Its own clock must still never go backwards nor show a "
            "timer firing early (`clock-monotonic`), and no timer may wait longer for it.",
        ]
    return [
        "## Fault phase: method",
        "",
        f"**Workers.** {c.workers} worker processes (`tests/reliability/chaos_worker.py`) serve one "
        f"task hub of {PARTITIONS} partitions owned through the "
        f"{_manager_text(result)}, with {LEASE_SECONDS:.0f} s partition leases "
        f"and a {c.visibility_seconds:.0f} s queue visibility timeout, so that work a dead "
        "worker had taken reappears within seconds rather than the 5-minute default. A supervisor "
        f"restarts every worker that exits: {c.new_identity_probability:.0%} of the restarts come "
        "back under a new worker id (the dead one's leases must expire and be taken over), the "
        "others under the old id (the leases are reclaimed at once).",
        "",
        f"**Workload.** {top_level} top-level instances, at most {c.concurrency} in flight (a new "
        f"one starts when one finishes): {mix}; {result.instances_total} instances in all. "
        f"Activities sleep {c.activity_ms} ms and append their key to a log file shared by the "
        "workers; orchestrators log every execution they begin.",
        "",
        "**Faults**, all while the workload runs:",
        "",
        f"* **Crash points.** Every worker runs with `DURABLE_EXT_FAULT_POINTS` at probability "
        f"{c.fault_probability:g} for each of {points}: at each step of every checkpoint the process "
        f"exits with status 137 with that probability (until {c.fault_point_crash_limit} such "
        "crashes have happened; restarted workers run without them after that).",
        f"* **SIGKILL** of a random worker every {c.kill_every:g} s.",
        *clocks,
        f"* Every {c.other_every:g} s, taking turns: {others}.",
        "* **Poison message.** One control-queue message whose body is not JSON is put in before "
        "the workers start. By design it is set aside with DTFx's back-off (2^n s, at most 10 "
        "minutes) and retried forever; it must not hold up anything else on its partition.",
        "",
        "Faults stop once every instance has been started and every kind of fault has had its turn. "
        "The driver then waits for every instance "
        "to finish and every queue to drain, stops the workers, and reads the History and Instances "
        "tables raw (Azure SDK, DTFx layout; nothing through `durable_ext`), instance by instance, "
        "to check the invariants.",
    ]


def _distribution(counts: Counter[int], noun: str) -> str:
    """`{1: 70, 2: 3}` as "70 tasks ×1, 3 tasks ×2" (`noun` plural)."""
    if not counts:
        return f"no {noun}"
    return ", ".join(f"{counts[n]} {noun} ×{n}" for n in sorted(counts))


def _exactness(result: ChaosResult) -> list[str]:
    """The bullets on executions per activity task and events per raise."""
    return [
        f"* **Executions per activity task** (the workload's activity tasks, by how many times "
        f"they ran): {_distribution(result.activity_runs, 'tasks')}.",
        f"* **Events per raise** (each external event the driver raised, by how many times it is "
        f"in history / was received by the orchestration): "
        f"{_distribution(result.events_recorded, 'events')} / "
        f"{_distribution(result.events_applied, 'events')}; the driver sent "
        f"{result.event_copies} extra copies of raised events (copied control-queue messages, "
        "retried raises), each of which may count once more.",
    ]


def _no_fault(result: ChaosResult) -> list[str]:
    """The section on the no-fault phase with short visibility timeouts."""
    c: ChaosConfig = result.config
    mix = ", ".join(
        f"{result.kinds.get(kind, 0)} {KIND_TEXT[kind].split(' (')[0]}" for kind in KIND_TEXT
    )
    out = [
        "## No-fault phase: held messages under short visibility timeouts",
        "",
        f"Before the faults, on a task hub of its own: {c.workers} workers that are never killed, "
        "with no crash points, no clock skew, no copied or poison messages and no outage, but with "
        f"control-queue and work-item visibility timeouts (and the in-process handoff hold) of "
        f"**{c.visibility_seconds:g} s**. {result.long_instances} of the "
        f"{sum(1 for k in result.kinds.elements() if k != 'fan-child')} top-level instances run "
        f"activities of {c.long_activity_ms} ms, longer than the visibility timeout (the others "
        f"{c.activity_ms} ms), and each worker runs "
        f"{c.max_orchestrations or 'the default number of'} episode(s) at a time, "
        f"{c.slow_episode_share:.0%} of the episodes held {c.slow_episode_seconds:g} s at their "
        "start (the `episode-start` stall point: a slow disk or a pause), so that control "
        "messages and activity results wait in memory for a slot or a busy instance for longer "
        "than the visibility timeout, while up to "
        f"{c.concurrency} instances are in flight: {mix}; {result.instances_total} instances in "
        "all. A message held that long must be renewed until it is deleted: one that expired "
        "would be received again and run an activity twice or apply an event twice. Here every "
        "activity task must run exactly once and every event be applied exactly once.",
        "",
        f"{result.completed_top_level} top-level instances finished in "
        f"{result.workload_seconds:.0f} s ({result.duration:.0f} s with start-up and audit).",
        "",
        *_exactness(result),
    ]
    if result.log_signals:
        out += ["", "What the workers' logs show:", ""]
        out += _table(["log signal", "count"], sorted(result.log_signals.items()))
    out += ["", *_invariants(result, "### Invariants of the no-fault phase")]
    return out


def _invariants(result: ChaosResult, heading: str = "## Invariants") -> list[str]:
    rows = []
    for inv in result.invariants:
        if inv.held:
            state = "held"
        elif inv.known_bug:
            state = f"**violated** ({len(inv.violations)}; known bug `{inv.known_bug}`)"
        else:
            state = f"**violated** ({len(inv.violations)})"
        rows.append((f"`{inv.name}`", inv.description, inv.checked, state))
    sub = heading.split(" ", 1)[0] + "#"
    out = [heading, ""]
    out += _table(["invariant", "what is checked", "checked on", "result"], rows)
    violated = [i for i in result.invariants if not i.held]
    for inv in violated:
        out += ["", f"{sub} `{inv.name}`: {len(inv.violations)} violation(s)", ""]
        out += [f"* {v}" for v in inv.violations[:12]]
        if len(inv.violations) > 12:
            out.append(f"* … and {len(inv.violations) - 12} more")
    bugs = sorted({i.known_bug for i in violated if i.known_bug})
    if bugs:
        out += ["", f"{sub} Known bugs behind these violations", ""]
        out += [f"* `{bug}`: {KNOWN_BUGS[bug]}" for bug in bugs]
    if result.errors:
        out += ["", f"{sub} Errors of the run", ""]
        out += [f"* {error}" for error in result.errors]
    return out


def _figures(result: ChaosResult) -> list[str]:
    c = result.config
    seconds = result.workload_seconds or 1.0
    everything = [v for values in result.latencies.values() for v in values]
    out = [
        "## Fault phase: figures",
        "",
        f"* **Throughput:** {result.completed_top_level} top-level instances "
        f"({result.instances_total} with sub-orchestrations) finished in {seconds:.0f} s: "
        f"**{result.throughput():.1f} instances/s**, {result.activity_executions / seconds:.1f} "
        "activity executions/s, under faults.",
    ]
    if everything:
        out.append(
            "* **Completion latency** (start request → first seen finished by the driver, which "
            f"polls every {c.poll_interval:g} s, since `CompletedTime` comes from a worker's skewed "
            "clock; top-level instances): "
            f"p50 **{percentile(everything, 50):.1f} s**, p99 **{percentile(everything, 99):.1f} s**, "
            f"max {max(everything):.1f} s."
        )
    out += [
        f"* **Activities:** {result.activity_executions} executions of {result.activity_keys} "
        f"distinct activities: {result.activity_repeats} re-executions (activities are "
        "at-least-once: a crash or a zombie between running an activity and deleting its work item "
        "repeats it).",
        *_exactness(result),
        f"* **Duplicates absorbed:** {result.duplicate_responses} duplicate responses appended to "
        "histories and ignored by replay; "
        f"{result.duplicate_events} EventRaised rows beyond one per raised event (copies the "
        "driver sent count here too).",
        f"* **Fenced checkpoints:** {result.fenced_checkpoints} checkpoints refused by the history "
        "sentinel ETag (another worker had written first) and abandoned.",
    ]
    if result.poison_partition is not None:
        out.append(
            f"* **Poison message:** in partition {result.poison_partition}; set aside "
            f"{result.poison_retries} time(s) during the run while "
            f"{result.poison_partition_instances} instances of that partition completed; it is the "
            "one message left in the queues at the end, as designed."
        )
    out.append(
        f"* **Queues** drained {result.drain_seconds:.0f} s after the last instance finished: "
        + ", ".join(f"`{name}` {count}" for name, count in result.queue_counts_at_end.items())
        + "."
    )
    if result.latencies:
        out += ["", "Completion latency by kind of orchestration, in seconds:", ""]
        out += _table(
            ["kind", "instances", "p50", "p99", "max"],
            [
                (
                    KIND_TEXT.get(kind, kind).split(" (")[0],
                    len(values),
                    f"{percentile(values, 50):.1f}",
                    f"{percentile(values, 99):.1f}",
                    f"{max(values):.1f}",
                )
                for kind, values in sorted(result.latencies.items())
            ],
        )
    out += [
        "",
        "Latency includes every stall a fault causes: an instance whose messages a killed worker "
        f"had taken waits for their {c.visibility_seconds:.0f} s visibility timeout, one on a "
        f"partition whose owner died under its old id waits for the {LEASE_SECONDS:.0f} s lease to "
        "expire, and everything waits out a storage outage. Approvals include the driver's polling "
        "before it raises their events, timer chains their timers. Azurite, the driver and every "
        "worker share the machine's cores, so these are figures of a laptop under fire, not a "
        "benchmark (that is `bench/`).",
    ]
    return out


def _manager_text(result: ChaosResult) -> str:
    if result.partition_manager == "legacy":
        return "legacy blob-lease manager (`useLegacyPartitionManagement`; renewed every 2 s)"
    return "table partition manager (`{Hub}Partitions`, the default; one pass a second)"


def _takeover(result: ChaosResult) -> list[str]:
    """Time from a worker's SIGKILL until its partitions are owned again and work resumes."""
    manager = result.partition_manager or "table"
    out = [
        "## Fault phase: takeover after a SIGKILL",
        "",
        f"Partition manager: **{manager}**. After each SIGKILL the driver watches the partitions "
        "the victim owned (by the `{Hub}Partitions` rows): *owned again* is when every one of them "
        "has been renewed by a worker after the kill (a survivor, once the dead worker's rows "
        "expired, or the victim itself when it was restarted under its old id, at once); "
        "*progress* is, per such partition with instances in flight at the kill, when one of "
        "them wrote a History row again (so it also counts the message visibility timeout and "
        "polling). With DTFx's defaults (30 s lease interval, 10 s acquire interval) a takeover "
        "after a crash takes 30 to 40 s; these runs use a "
        f"{LEASE_SECONDS:.0f} s lease.",
        "",
    ]
    owned, progress = result.takeover_seconds, result.progress_seconds
    if not owned:
        return [*out, "No SIGKILL hit a worker that owned a partition during this run."]
    rows = [("owned again", owned), ("progress", progress)]
    out += _table(
        ["after a SIGKILL", "count", "p50 (s)", "p99 (s)", "max (s)", "DTFx defaults"],
        [
            (
                what,
                len(values),
                f"{percentile(values, 50):.1f}" if values else "-",
                f"{percentile(values, 99):.1f}" if values else "-",
                f"{max(values):.1f}" if values else "-",
                "30 s lease + up to 10 s",
            )
            for what, values in rows
        ],
    )
    if result.takeovers_unmeasured:
        out += ["", f"{result.takeovers_unmeasured} takeovers were not seen within the watch."]
    return out


def _ownership() -> list[str]:
    """How partitions are owned (static text)."""
    return [
        "## Partition ownership",
        "",
        "Each control queue (partition) is served by one worker at a time, as DTFx does it today:",
        "",
        "* **Table partition manager** (default; Durable Functions v3's, "
        "`useTablePartitionManagement`). Table `{Hub}Partitions`, one row per control queue: "
        'PartitionKey `""`, RowKey `{hub}-control-NN`, `CurrentOwner` (worker id; absent when '
        "free), `NextOwner` (the worker taking it over), `OwnedSince`, `LastRenewal`, `ExpiresAt` "
        "(UTC), `IsDraining` (bool). Each worker reads every row once per `leaseAcquireInterval` "
        "(every second while a handover is under way) and writes with `Replace` under the ETag it "
        "read: it claims free, expired or released rows, renews its own (`ExpiresAt` = now + "
        "`leaseInterval`), and takes its share from busier workers by setting `NextOwner`. The "
        "owner then **drains**: it stops receiving from the queue, gives back what it had "
        "buffered, lets the episodes in flight finish (at most 60 s), renewing meanwhile with "
        "`IsDraining` set, and only then releases the row; the next owner claims it. A graceful "
        "stop drains and releases every row. Rows are interchangeable with Durable Functions': a "
        "hub one of them created works with the other.",
        "* **Legacy blob leases** (`useLegacyPartitionManagement: true`): DTFx's V1 manager, "
        "`{hub}-leases/default/{hub}-control-NN` blobs carrying a blob lease and "
        '`{"PartitionId","Owner","Token","Epoch"}`. A steal changes the lease away at once, so the '
        "previous owner may serve the queue until its next renewal (the history sentinel fences "
        "it).",
        "* **Ownership deadline** (both managers). Each owned partition has a local deadline: the "
        "start of its last successful claim or renewal request, plus the lease interval, minus a "
        "sixth of it (5 s of 30 s) for clock skew. The managers run on a thread of their own "
        "(an orchestrator that computes for longer than the lease does not stop renewals). The "
        "worker checks the deadline right before every request it makes for a partition (receive, "
        "send, history write, Instances merge, delete; every retry too): past it, it stops "
        "receiving, gives back what it had buffered, drops the partition's cached instances, "
        "stops renewing its held messages, and never caches an instance of it again until it "
        "owns it anew. The history sentinel ETag stays the final fence.",
        "* **App lease** (`useAppLease`, default on): a container lease on `{hub}-applease` whose "
        "id is derived from the app name (`WEBSITE_SITE_NAME`, else `DTFX_APP_NAME`: FNV-1a of "
        "the name in the first 4 bytes of a GUID, the rest zero), so the workers of one app share "
        "it and another app cannot take it; `{hub}-applease/{hub}-appleaseinfo` holds "
        '`{"OwnerId","DesiredSwapId"}`. A worker starts its partition manager only once it holds '
        "the lease (60 s, renewed every 25 s, acquire retried every 300 s; `appLeaseOptions`); "
        "losing it stops the manager gracefully. The lease is not released on stop: a second "
        "app (a deployment slot, a Durable Functions app) takes over once it expires.",
        "",
        "Durable Functions and durable_ext on one hub: with the same app name (both unset "
        "locally, or the same `WEBSITE_SITE_NAME`) they share the app lease and the table "
        "manager splits the partitions between their workers, which is safe (same rows, same "
        "rules, same history fence) as long as both run the same orchestrations; with different "
        "app names, only the one holding the app lease runs and the other waits. Do not run the "
        "legacy manager and the table manager on one hub at the same time: they do not see each "
        "other's ownership. To switch managers, stop every worker of the hub, change the "
        "setting, start again: the table manager creates `{Hub}Partitions` and claims every row "
        "(rows left by an earlier run expire first), the legacy manager creates its blobs; "
        "neither deletes the other's store.",
    ]


def render_report(result: ChaosResult, command: str = "") -> str:
    """The whole page, as markdown: the no-fault phase (when there was one), then the faults."""
    calm = result.no_fault
    started = calm.started_at if calm is not None else result.started_at
    minutes = (result.duration + (calm.duration if calm is not None else 0.0)) / 60
    verdict = (
        "**every invariant held**"
        if result.passed
        else "**some invariants were violated** (see below)"
    )
    out = [
        "# Reliability: what is injected, and what held",
        "",
        "<!-- Generated by tests/reliability/chaos.py (`make chaos`); do not edit by hand. -->",
        "",
        "`durable_ext` promises that a worker that dies, stalls or loses its partition loses "
        "nothing, and says precisely what happens once:",
        "",
        "* **Exactly once:** every change of an orchestration's state. Each message's event is "
        "recorded in the instance's history once (an external event raised once is in history "
        "once and received by the orchestration once; an activity's result completes its task "
        "once), each decision (activity scheduled, timer, sub-orchestration) is recorded once, "
        "and the instance completes once, whatever crashes, duplicates or expired messages "
        "happen on the way. A client that raises the same event twice has raised two events.",
        "* **At least once:** activity executions. A worker that dies (or stalls past its lease) "
        "after running an activity and before its result is recorded leaves the work item to be "
        "run again. Without such a fault an activity runs exactly once: a work item, a "
        "control-queue message or a result held in memory is kept invisible (renewed) for as "
        "long as it waits or runs, however short the visibility timeout. Also at least once: an "
        "event that one orchestration sends another, when the receiving worker dies after "
        "writing it into history and before deleting its message (a client's event is "
        "recognised by the microsecond it was raised at and applied once).",
        "",
        "This page is the evidence: the chaos driver `tests/reliability/chaos.py` writes it from a "
        "real run against Azurite on the project's development machine, and `make chaos` "
        "rewrites it.",
        "",
        f"Last run: {started:%Y-%m-%d %H:%M} UTC, {minutes:.1f} minutes on "
        f"{result.machine}; {verdict}.",
    ]
    if command:
        out += ["", f"Command: `{command}`"]
    if calm is not None:
        out += ["", *_no_fault(calm)]
    out += ["", *_method(result), ""]
    out += ["## Faults injected", ""]
    out += _table(["fault", "count"], sorted(result.faults.items()))
    if result.log_signals:
        out += ["", "What the workers' logs show of them:", ""]
        out += _table(["log signal", "count"], sorted(result.log_signals.items()))
    out += ["", *_invariants(result, "## Fault phase: invariants"), "", *_figures(result), ""]
    out += [*_takeover(result), "", *_ownership(), ""]
    out += [
        "## What this does not show",
        "",
        "* Azurite is not Azure Storage: latencies, throttling and the exact error codes of a real "
        "account differ. Azurite is stopped with SIGTERM for an outage, not SIGKILL, because it "
        "persists its metadata lazily and a SIGKILL may lose writes it had acknowledged, which a "
        "real account never does; to the workers both look the same (every connection refused).",
        "* One machine: no network partitions between workers. The clock skew is the engine's "
        "own clock offset in each worker (`durable_ext/clock.py`); the system clock, Azurite and "
        "the lease timings keep the real time.",
        "* The duplicates come from peeking, so only messages visible at that moment are copied.",
        "",
        "## Reproduce",
        "",
        "* `make chaos`: this run (10–15 minutes), the no-fault phase first; it rewrites this "
        "page.",
        "* `.venv/bin/python -m tests.reliability.chaos --help`: every knob (workers, instances, "
        "kill interval, fault probability, seed...); `--report FILE` writes the page elsewhere.",
        "* `tests/reliability/test_chaos_quick.py`: a one-minute version in the default test run.",
        "",
    ]
    return "\n".join(out)
