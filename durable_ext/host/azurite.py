"""Start Azurite for `UseDevelopmentStorage=true` when nothing answers on its ports."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from pathlib import Path

__all__ = ["ensure_azurite", "AzuriteNotFoundError", "port_open"]


class AzuriteNotFoundError(RuntimeError):
    """Development storage is configured, not running, and no Azurite executable was found."""


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _executable(app_root: Path) -> str:
    for folder in (app_root, *app_root.parents):
        candidate = folder / "node_modules" / ".bin" / "azurite"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("azurite")
    if found is None:
        raise AzuriteNotFoundError(
            "Development storage is not running and Azurite was not found: run `npm install azurite` "
            "in the app root (or start Azurite yourself)."
        )
    return found


async def ensure_azurite(
    app_root: Path, ports: tuple[int, int, int], host: str = "127.0.0.1", timeout: float = 30.0
) -> subprocess.Popen[bytes] | None:
    """Start Azurite on `ports` (blob, queue, table) unless it already answers; the process or None."""
    if all(port_open(host, p) for p in ports):
        return None
    blob, queue, table = ports
    location = app_root / ".azurite"
    location.mkdir(exist_ok=True)
    command = [
        _executable(app_root),
        "--silent",
        "--location",
        str(location),
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--blobHost",
        host,
        "--blobPort",
        str(blob),
        "--queueHost",
        host,
        "--queuePort",
        str(queue),
        "--tableHost",
        host,
        "--tablePort",
        str(table),
    ]
    log = (location / "azurite.log").open("ab")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not all(port_open(host, p) for p in ports):
        if process.poll() is not None:
            raise AzuriteNotFoundError(
                f"Azurite exited with code {process.returncode}; see {location / 'azurite.log'}"
            )
        if loop.time() > deadline:
            process.terminate()
            raise AzuriteNotFoundError(f"Azurite did not answer within {timeout:.0f} s")
        await asyncio.sleep(0.1)
    return process
