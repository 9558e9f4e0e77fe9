"""One engine per app instance: an exclusive lock on a file in the instance's temp folder.

Every Python worker process of an instance (`FUNCTIONS_WORKER_PROCESS_COUNT` > 1) imports the app;
the one holding the lock runs the engine, the others stay client-only and retry. The operating
system drops the lock when its holder exits, however it dies (SIGKILL included), so a retry in
another process takes over. The file holds the holder's process id, for the health report.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the Functions Python worker runs on Linux only
    fcntl = None  # type: ignore[assignment]

__all__ = ["InstanceLock", "instance_lock_path"]


def instance_lock_path(script_root: Path, hub_name: str) -> Path:
    """The lock file of one app (script root) on one task hub, in the instance's temp folder."""
    digest = hashlib.sha256(f"{script_root.resolve()}|{hub_name.lower()}".encode()).hexdigest()
    return Path(tempfile.gettempdir()) / f"durable-ext-engine-{digest[:16]}.lock"


class InstanceLock:
    """A non-blocking exclusive `flock` on `path`; held until `release()` or process exit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this process holds it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the lock up (closing the file drops it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def holder(self) -> int | None:
        """The process id written by the current holder, if readable."""
        try:
            return int(self.path.read_text().strip())
        except (OSError, ValueError):
            return None
