"""One more Python worker process of the same app instance (`FUNCTIONS_WORKER_PROCESS_COUNT` > 1).

`python -m tests.functions_host.worker_process <app dir> <app settings as JSON>` serves the app
folder with a `FakeHost` of its own, prints one JSON line (`url`, `pid`, the health function's
key) and runs until stdin closes or a signal ends it. Each such process imports the app, as each
worker process does; SIGTERM reaches the app's handlers as it would in a container.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from pathlib import Path

from .host import FakeHost
from .timers import ManualClock


async def main(app_dir: Path, settings: dict[str, str]) -> None:
    async with FakeHost(app_dir, app_settings=settings, clock=ManualClock()) as host:
        print(
            json.dumps(
                {
                    "url": host.base_url,
                    "pid": os.getpid(),
                    "health_key": host.keys.function_key("durabletask_health"),
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


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), json.loads(sys.argv[2])))
