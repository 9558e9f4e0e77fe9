"""Start, stop and restart a private Azurite (for the tests and the benchmarks).

Each `AzuriteInstance` owns one Azurite process (blob, queue and table services) on its own
free ports with its own workspace folder. The ports are chosen once and kept, so `stop()` then
`start()` brings the same storage back at the same endpoints: that is how fault tests take
storage away from a running worker and give it back. With disk persistence (the default) the
data survives a `stop()`; with `in_memory=True` every start begins empty.

`kill()` is the abrupt variant (SIGKILL): Azurite persists its metadata lazily, so writes just
before a kill may be lost even on disk.

With `tls=(cert, key, ca)` (PEM files) Azurite serves HTTPS, and with `oauth=True` it also accepts
Microsoft Entra bearer tokens (`--oauth basic`: audience, issuer and lifetime are checked, the
signature is not).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite"

HOST = "127.0.0.1"
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.02
# Auto-picked ports can be taken by someone else between picking and binding; retry then.
PORT_ATTEMPTS = 3


class AzuriteError(RuntimeError):
    """Azurite could not be started or stopped."""


def free_ports(count: int, host: str = HOST) -> list[int]:
    """`count` distinct ports that are free right now (the OS picks them)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def answers_http(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when something answers an HTTP request on the port (any status counts)."""
    return _answers(http.client.HTTPConnection(host, port, timeout=timeout))


def answers_https(host: str, port: int, ca_file: Path, timeout: float = 1.0) -> bool:
    """True when something answers an HTTPS request on the port with a certificate `ca_file`
    vouches for (any status counts)."""
    context = ssl.create_default_context(cafile=str(ca_file))
    return _answers(http.client.HTTPSConnection(host, port, timeout=timeout, context=context))


def _answers(connection: http.client.HTTPConnection) -> bool:
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn that makes the child die with this process (Linux), so a pytest that is
    killed hard does not leave Azurite running. The libc lookup happens here, before fork."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL)

    return preexec


class AzuriteInstance:
    """One private Azurite process: blob, queue and table on fixed ports, one workspace."""

    def __init__(
        self,
        location: Path,
        *,
        in_memory: bool = False,
        ports: tuple[int, int, int] | None = None,
        executable: Path = AZURITE_BIN,
        startup_timeout: float = STARTUP_TIMEOUT,
        tls: tuple[Path, Path, Path] | None = None,
        oauth: bool = False,
    ) -> None:
        if oauth and tls is None:
            raise AzuriteError("Azurite accepts OAuth only over HTTPS: pass tls as well")
        self.location = Path(location)
        self.tls = tls
        self.oauth = oauth
        self.in_memory = in_memory
        self.executable = Path(executable)
        self.startup_timeout = startup_timeout
        self._ports_fixed = ports is not None
        self.blob_port, self.queue_port, self.table_port = ports or free_ports(3)
        self.log_path = self.location / "azurite.log"
        self.last_startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- endpoints -------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def blob_endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.blob_port}/{ACCOUNT_NAME}"

    @property
    def queue_endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.queue_port}/{ACCOUNT_NAME}"

    @property
    def table_endpoint(self) -> str:
        return f"{self.scheme}://{HOST}:{self.table_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )

    @property
    def ports(self) -> tuple[int, int, int]:
        return (self.blob_port, self.queue_port, self.table_port)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- lifecycle -------------------------------------------------------------------------

    def command(self) -> list[str]:
        command = [
            str(self.executable),
            "--silent",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--blobHost",
            HOST,
            "--blobPort",
            str(self.blob_port),
            "--queueHost",
            HOST,
            "--queuePort",
            str(self.queue_port),
            "--tableHost",
            HOST,
            "--tablePort",
            str(self.table_port),
        ]
        if self.tls is not None:
            cert, key, _ = self.tls
            command += ["--cert", str(cert), "--key", str(key)]
        if self.oauth:
            command += ["--oauth", "basic"]
        if self.in_memory:
            # Azurite refuses --location together with --inMemoryPersistence; it still runs in
            # `location` (its working directory), where nothing is persisted.
            command.append("--inMemoryPersistence")
        else:
            command += ["--location", str(self.location)]
        return command

    def start(self) -> None:
        """Start Azurite and return once all three services answer HTTP."""
        if self.running:
            raise AzuriteError("Azurite is already running")
        if not self.executable.exists():
            raise AzuriteError(
                f"{self.executable} not found: run `make node_modules` (npm ci) first"
            )
        self.location.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._start_once()
                return
            except AzuriteError:
                port_taken = "EADDRINUSE" in self._log_tail()
                if self._ports_fixed or not port_taken or attempt == PORT_ATTEMPTS:
                    raise
                self.blob_port, self.queue_port, self.table_port = free_ports(3)

    def _start_once(self) -> None:
        began = time.monotonic()
        with self.log_path.open("ab") as log:
            # Own session and process group: Ctrl-C in the terminal does not reach it, and
            # stop() can signal the whole group.
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.location,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        deadline = began + self.startup_timeout
        waiting = set(self.ports)
        while waiting:
            waiting = {port for port in waiting if not self._answers(port)}
            if not waiting:
                break
            if time.monotonic() > deadline:
                self._terminate(STOP_TIMEOUT)
                raise AzuriteError(
                    f"Azurite did not answer on ports {sorted(waiting)} within "
                    f"{self.startup_timeout:.0f} s.\n{self._log_tail()}"
                )
            try:
                code = self._process.wait(timeout=POLL_INTERVAL)
            except subprocess.TimeoutExpired:
                continue
            self._process = None
            raise AzuriteError(
                f"Azurite exited with code {code} while starting.\n{self._log_tail()}"
            )
        if self._process.poll() is not None:
            # Something else answered on our ports while Azurite itself failed to bind.
            self._process = None
            raise AzuriteError(f"Azurite exited while starting.\n{self._log_tail()}")
        self.last_startup_seconds = time.monotonic() - began

    def _answers(self, port: int) -> bool:
        if self.tls is None:
            return answers_http(HOST, port, timeout=0.5)
        return answers_https(HOST, port, self.tls[2], timeout=0.5)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop Azurite gracefully (SIGTERM; SIGKILL after `timeout`). Ports stay reserved
        for the next start()."""
        self._terminate(timeout)

    def kill(self) -> None:
        """Stop Azurite abruptly (SIGKILL), like a crash."""
        self._terminate(0)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _terminate(self, timeout: float) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM if timeout > 0 else signal.SIGKILL)
            try:
                process.wait(timeout=timeout if timeout > 0 else None)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def _log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no Azurite log)"
        return "Azurite log (tail):\n" + "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> AzuriteInstance:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"AzuriteInstance(blob={self.blob_port}, queue={self.queue_port}, "
            f"table={self.table_port}, in_memory={self.in_memory}, {state})"
        )
