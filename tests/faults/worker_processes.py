"""Worker processes (`python -m tests.worker.worker_process`) on one task hub, for kill tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from harness.azurite import REPO_ROOT, die_with_parent
from tests.worker.fault_app import LOG_ENV

__all__ = ["WorkerProcess", "WorkerCluster"]

STOP_TIMEOUT = 20.0


class WorkerProcess:
    """One worker process; its stderr goes to a file next to the test's other output."""

    def __init__(
        self,
        worker_id: str,
        process: subprocess.Popen[bytes],
        stderr_path: Path,
        ownership_path: Path | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.process = process
        self.stderr_path = stderr_path
        self.ownership_path = ownership_path

    def owned(self) -> frozenset[int]:
        """The partitions the worker itself last said it owns (empty before it has said)."""
        if self.ownership_path is None:
            return frozenset()
        try:
            return frozenset(json.loads(self.ownership_path.read_text()))
        except (OSError, ValueError):
            return frozenset()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def send(self, signum: signal.Signals) -> None:
        """Send a signal (SIGKILL is the crash, SIGTERM the graceful stop)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """The exit code, once the process has exited (subprocess.TimeoutExpired after `timeout`)."""
        return self.process.wait(timeout=timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class WorkerCluster:
    """Worker processes of one hub, all logging activity executions to one file. Use as a context
    manager: every process still running at exit is stopped (SIGTERM, then SIGKILL), and the tail of
    each worker's log is printed (pytest shows it when the test fails)."""

    def __init__(
        self,
        connection_string: str,
        hub: str,
        directory: Path,
        activity_log: Path,
        *,
        visibility_seconds: float = 10.0,
        max_activities: int = 4,
    ) -> None:
        self.connection_string = connection_string
        self.hub = hub
        self.directory = directory
        self.activity_log = activity_log
        self.visibility_seconds = visibility_seconds
        self.max_activities = max_activities
        self.workers: dict[str, WorkerProcess] = {}

    def start(
        self,
        worker_id: str,
        env_overrides: Mapping[str, str] | None = None,
        arguments: Sequence[str] = (),
    ) -> WorkerProcess:
        """Start a worker process with this id (it returns at once; the worker starts on its own),
        with `env_overrides` added to its environment and `arguments` to its command line."""
        env = dict(os.environ)
        env.update(env_overrides or {})
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env[LOG_ENV] = str(self.activity_log)
        env["PYTHONUNBUFFERED"] = "1"
        stderr_path = self.directory / f"worker-{worker_id}.log"
        ownership_path = self.directory / f"worker-{worker_id}.owned.json"
        command = [
            sys.executable,
            "-m",
            "tests.worker.worker_process",
            "--connection",
            self.connection_string,
            "--hub",
            self.hub,
            "--worker-id",
            worker_id,
            "--visibility-seconds",
            str(self.visibility_seconds),
            "--max-activities",
            str(self.max_activities),
            "--ownership-file",
            str(ownership_path),
            *arguments,
        ]
        with stderr_path.open("ab") as stderr:
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                preexec_fn=die_with_parent(),
            )
        worker = WorkerProcess(worker_id, process, stderr_path, ownership_path)
        self.workers[worker_id] = worker
        return worker

    def __getitem__(self, worker_id: str) -> WorkerProcess:
        return self.workers[worker_id]

    def running(self) -> set[str]:
        return {worker_id for worker_id, w in self.workers.items() if w.running}

    def views(self) -> dict[str, frozenset[int]]:
        """What each running worker itself believes it owns."""
        return {worker_id: w.owned() for worker_id, w in self.workers.items() if w.running}

    def close(self) -> None:
        """Stop every worker still running: SIGTERM to all at once, then SIGKILL stragglers."""
        alive = [w for w in self.workers.values() if w.running]
        for worker in alive:
            worker.send(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for worker in alive:
            try:
                worker.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                worker.send(signal.SIGKILL)
                worker.wait(STOP_TIMEOUT)
        for worker in self.workers.values():
            print(f"--- worker {worker.worker_id} (exit {worker.process.returncode}) ---")
            print(worker.log_tail())

    def __enter__(self) -> WorkerCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
