"""A one-minute chaos run in the default test suite: the driver of `make chaos`, scaled down.

First a short no-fault phase: 30 instances on workers with 2 s queue visibility timeouts, a quarter
of them with 3 s activities, one episode per worker at a time, 3% of the episodes held 3 s at their
start; every activity task must run exactly once and every event be applied once. Then three worker
processes run 150 instances of every pattern (chains, fan-out/fan-in through sub-orchestrations,
timers, external events, continue-as-new) while workers crash at the checkpoint fault points and are
SIGKILLed, control-queue messages are duplicated, a partition's lease is broken and another is
stolen, a poison message sits in a control queue, and the workers' clocks are 10 minutes apart (and
jump on restarts). Every invariant of `tests/reliability/chaos_audit.py` must hold in both phases.

Randomness is seeded (the workload, the victims, the fault-point draws in each worker), deadlines
are generous, and nothing is asserted about timing, so the test does not depend on the machine's
speed; what varies from run to run is only where exactly the faults land.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.azurite import AzuriteInstance
from tests.reliability.chaos import ChaosConfig, run_chaos
from tests.reliability.chaos_report import render_report


def quick_config(hub: str, work_dir: Path) -> ChaosConfig:
    """The scaled-down run: about a minute on a 2-core machine."""
    return ChaosConfig(
        workers=3,
        instances=150,
        concurrency=40,
        kill_every=10.0,
        other_every=10.0,
        faults=("duplicates", "lease-break", "lease-steal"),
        fault_probability=0.003,
        fault_point_crash_limit=3,
        min_chaos_seconds=25.0,
        azurite_restarts=0,
        seed=7,
        no_fault_instances=30,
        no_fault_visibility_seconds=2.0,
        no_fault_slow_episode_share=0.03,
        completion_deadline=180.0,
        drain_deadline=90.0,
        hub=hub,
        work_dir=work_dir,
    )


@pytest.mark.slow
async def test_quick_chaos_run_keeps_every_invariant(
    private_azurite: AzuriteInstance, hub_name: str, tmp_path: Path
) -> None:
    """Kills, crash points, duplicates, lease faults, a poison message and skewed clocks: every
    instance completes once with its output, histories are whole, the orchestration clocks are
    monotonic, queues drain but for the poison."""
    result = await run_chaos(quick_config(hub_name, tmp_path), private_azurite)
    report = render_report(result)
    (tmp_path / "report.md").write_text(report, encoding="utf-8")
    print(report)

    calm = result.no_fault
    assert calm is not None
    assert not result.errors and not calm.errors, (calm.errors, result.errors)
    violated = {
        f"{phase}: {i.name}": (i.known_bug, i.violations[:5])
        for phase, outcome in (("no-fault", calm), ("faults", result))
        for i in outcome.invariants
        if not i.held
    }
    assert not violated, f"invariants violated (see {tmp_path / 'report.md'}): {violated}"
    assert calm.completed_top_level == 30
    assert calm.long_instances > 0
    assert any("slow episode" in signal for signal in calm.log_signals), calm.log_signals
    assert set(calm.activity_runs) == {1}, calm.activity_runs
    assert set(calm.events_applied) == {1} and calm.events_applied.total() > 0
    checked = {i.name: i.checked for i in result.invariants}
    assert checked["terminal"] == result.instances_total > 150, checked
    assert checked["poison-isolated"] > 0, checked
    assert checked["clock-monotonic"] == result.instances_total, checked

    faults = result.faults
    assert faults["SIGKILL of a worker"] >= 1, faults
    assert faults["fault-point crash"] >= 1, faults
    assert faults["duplicate bursts"] >= 1, faults
    assert faults["poison message"] == 1, faults
    assert faults["clock skew/jumps: worker started with a skewed clock"] >= 2, faults
    assert result.poison_retries >= 1, "the poison message was never even looked at"
    assert result.completed_top_level == 150
