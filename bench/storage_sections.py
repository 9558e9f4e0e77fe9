"""The storage sections of docs/performance.md: Azurite on disk and in memory, the physical
floor, storage requests per unit, and the levers (with the requests the engine saves)."""

from __future__ import annotations

from .analysis import others_busy, speedup
from .formatting import num, pct, table
from .results import SDK_CLIENT, FloorStep, Results, ScenarioSummary
from .workloads import SCENARIOS

__all__ = ["floor_section", "levers_section", "requests_section", "sensitivity_section"]


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
            spread = [r for r in on.throughput_runs if r]
            effect = f"{on_rate / off_rate:.2f}×" if on_rate and off_rate else "—"
            if spread and off_rate and min(spread) <= off_rate <= max(spread):
                effect += " (within the main runs' range: no effect shown)"
            rows.append(
                [
                    f"{scenario} (per {unit})",
                    num(on_rate),
                    f"{num(min(spread))}–{num(max(spread))}" if spread else "—",
                    num(off_rate) if not off.error else f"failed: {off.error}",
                    effect,
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
            + f" ({runs} run{'s' if runs != 1 else ''} each, made after the main runs and "
            "set against their medians), everything else equal. The main runs' range shows how "
            "far runs of the same code spread on this machine; an `off` figure inside it shows no "
            "effect of the lever:",
            "",
            table(
                [
                    "scenario",
                    "on /s",
                    "main runs' range /s",
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
