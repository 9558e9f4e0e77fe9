"""One more Python worker process of the same app instance (`FUNCTIONS_WORKER_PROCESS_COUNT` > 1).

`python -m tests.functions_host.worker_process <app dir> <app settings as JSON>` serves the app
folder with a `FakeHost` of its own, prints one JSON line (`url`, `pid`, the health function's
key, the master key) and runs until stdin closes or a signal ends it; `worker_processes(...)` starts such
processes from a test. Each such process imports the app, as each worker process does; SIGTERM
reaches the app's handlers as it would in a container.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .host import FakeHost
from .timers import ManualClock

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE = "tests.functions_host.worker_process"


async def main(app_dir: Path, settings: dict[str, str]) -> None:
    logging.getLogger().setLevel(logging.INFO)  # as the Python worker's dispatcher sets it
    async with FakeHost(app_dir, app_settings=settings, clock=ManualClock()) as host:
        print(
            json.dumps(
                {
                    "url": host.base_url,
                    "pid": os.getpid(),
                    "health_key": host.keys.function_key("durabletask_health"),
                    "master_key": host.keys.master,
                }
            ),
            flush=True,
        )
        await _stdin_closed()


async def _stdin_closed() -> None:
    """Wait until stdin closes (read on a daemon thread: nothing waits for it at exit)."""
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()

    def read() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(closed.set)

    threading.Thread(target=read, daemon=True).start()
    await closed.wait()


@contextmanager
def worker_processes(app_dir: Path, settings: dict[str, str], count: int) -> Iterator[list[Any]]:
    """`count` worker processes of one instance serving `app_dir`; yields their JSON lines,
    each with its `process`."""
    processes: list[subprocess.Popen[str]] = []
    try:
        for _ in range(count):
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", MODULE, str(app_dir), json.dumps(settings)],
                    cwd=REPO_ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        infos = []
        for process in processes:
            assert process.stdout is not None
            info = json.loads(process.stdout.readline())
            info["process"] = process
            infos.append(info)
        yield infos
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), json.loads(sys.argv[2])))
