"""The telemetry's cost, interleaved: sequential and fan-out with tracking events off, on (the
default) and with OpenTelemetry spans, RUNS times each in rotating order, on one private Azurite.

``python -m bench.telemetry_ab [RUNS]`` prints every run and the medians (throughput, CPU seconds
of the run's process, throughput against ``off``). Each run is a fresh ``bench.child`` process
(`bench/telemetry.py` sets its mode up).
"""

from __future__ import annotations

import json
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.azurite import AzuriteInstance

from .child import RESULT_PREFIX
from .telemetry import MODES

SIZES = {"sequential": 300, "fanout": 1000}


def run_child(connection: str, scenario: str, mode: str) -> tuple[float, float]:
    """(throughput per second, CPU seconds) of one run."""
    command = [
        sys.executable, "-m", "bench.child", "--engine", "durable_ext", "--scenario", scenario,
        "--size", str(SIZES[scenario]), "--connection", connection,
        "--hub", "Tele" + secrets.token_hex(4), "--option", f"telemetry={mode}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith(RESULT_PREFIX))
    result = json.loads(line[len(RESULT_PREFIX) :])
    return float(result["throughput_per_s"]), float(result["cpu_s"])


def main(runs: int) -> None:
    azurite = AzuriteInstance(Path(tempfile.mkdtemp(prefix="telemetry-ab-")) / "azurite")
    azurite.start()
    found: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        for run in range(runs):
            for scenario in SIZES:
                shift = run % len(MODES)
                for mode in MODES[shift:] + MODES[:shift]:
                    rate, cpu = run_child(azurite.connection_string, scenario, mode)
                    found.setdefault((scenario, mode), []).append((rate, cpu))
                    print(f"run {run}: {scenario:10s} {mode:8s} {rate:7.1f}/s  cpu {cpu:.2f} s")
    finally:
        azurite.stop()
    for scenario in SIZES:
        off = statistics.median(rate for rate, _ in found[(scenario, "off")])
        for mode in MODES:
            rate = statistics.median(r for r, _ in found[(scenario, mode)])
            cpu = statistics.median(c for _, c in found[(scenario, mode)])
            print(f"{scenario:10s} {mode:8s} median {rate:7.1f}/s  cpu {cpu:.2f} s  {rate / off:.2f}x off")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
