"""Run a function app with `durable-ext start` in a subprocess and talk to it over HTTP.

`make_app_root` builds a throwaway app root (the app's code, a host.json with the test's own task
hub, a local.settings.json pointing at the test Azurite); `LocalHostProcess` starts the host on a
free port, waits until it answers HTTP, and stops it with SIGTERM. `http` and `poll_status` are a
small synchronous HTTP client for the Durable Functions status-polling protocol.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from tests.azurite import HOST, answers_http, free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]
DURABLE_EXT = Path(sys.executable).with_name("durable-ext")

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
POLL_INTERVAL = 0.1
PORT_ATTEMPTS = 3

# Settings the developer's shell may hold that would point the host elsewhere (environment
# variables override local.settings.json).
_FOREIGN_SETTINGS = ("AzureWebJobs", "AzureFunctionsJobHost", "DURABLE_EXT_", "PYTHON_SCRIPT_FILE")


def make_app_root(
    root: Path,
    *,
    code: Iterable[Path],
    hub_name: str,
    connection_string: str | None,
    values: dict[str, str] | None = None,
) -> Path:
    """An app root in `root`: copies of `code` (files or packages), host.json and
    local.settings.json (without AzureWebJobsStorage when `connection_string` is None: the
    connection is then in `values`). Returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for source in code:
        if source.is_dir():
            shutil.copytree(
                source, root / source.name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(source, root / source.name)
    host_json = json.loads((REPO_ROOT / "host.json").read_text())
    host_json["extensions"]["durableTask"]["hubName"] = hub_name
    # Quick idle polling keeps timer-driven tests fast.
    host_json["extensions"]["durableTask"]["storageProvider"]["maxQueuePollingInterval"] = (
        "00:00:01"
    )
    (root / "host.json").write_text(json.dumps(host_json, indent=2))
    connection = {} if connection_string is None else {"AzureWebJobsStorage": connection_string}
    settings = {
        "IsEncrypted": False,
        "Values": {**connection, "FUNCTIONS_WORKER_RUNTIME": "python", **(values or {})},
    }
    (root / "local.settings.json").write_text(json.dumps(settings, indent=2))
    return root


class LocalHostProcess:
    """`durable-ext start` serving one app root, as a subprocess."""

    def __init__(self, app_root: Path, env: dict[str, str] | None = None) -> None:
        """`env`: environment variables for the process on top of this one's."""
        self.app_root = app_root
        self.env = env or {}
        self.log_path = app_root / "host.log"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        # The `durable-ext` script to run: this venv's, or another one's (make dist's fresh venv).
        self.executable = DURABLE_EXT

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def launch(self) -> None:
        """Start the process on a free port (use `wait_ready` before talking to it)."""
        [self.port] = free_ports(1)
        env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_SETTINGS)}
        env.update(self.env, PYTHONUNBUFFERED="1")
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(self.executable), "start", "--host", HOST, "--port", str(self.port)],
                cwd=self.app_root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Return once the host answers HTTP; relaunch on another port if this one was taken."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                self._wait_answering(timeout)
                return
            except HostError:
                if "address already in use" not in self.log().lower() or attempt == PORT_ATTEMPTS:
                    raise
                self.launch()

    def _wait_answering(self, timeout: float) -> None:
        process = self._require_process()
        deadline = time.monotonic() + timeout
        while not answers_http(HOST, self.port, timeout=0.5):
            if process.poll() is not None:
                raise HostError(f"the host exited with code {process.returncode}", self.log())
            if time.monotonic() > deadline:
                raise HostError(f"the host did not answer within {timeout:.0f} s", self.log())
            time.sleep(POLL_INTERVAL)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait; the exit code (SIGKILL and HostError if it does not stop)."""
        process = self._require_process()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise HostError(
                    f"the host ignored SIGTERM for {timeout:.0f} s", self.log()
                ) from None
        return process.returncode

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise HostError("the host was never launched", "")
        return self._process


class HostError(RuntimeError):
    def __init__(self, message: str, log: str) -> None:
        tail = "\n".join(log.splitlines()[-60:])
        super().__init__(f"{message}\nhost log (tail):\n{tail}")


def assert_stopped_cleanly(host: LocalHostProcess) -> None:
    """Stop the host with SIGTERM; it must exit 0 without errors while shutting down."""
    code = host.stop()
    log = host.log()
    assert code == 0, f"exit code {code}\n{log[-5000:]}"
    assert "Stopping..." in log, log[-5000:]
    shutdown = log[log.rindex("Stopping...") :]
    for sign in ("Traceback", "Error", "Unclosed", "was destroyed", "Exception ignored"):
        assert sign not in shutdown, f"{sign!r} while stopping:\n{shutdown[-5000:]}"


# -- HTTP ---------------------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes = field(repr=False)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


NO_BODY: Any = object()


def http(
    method: str, url: str, body: Any = NO_BODY, *, raw: bytes | None = None, timeout: float = 30.0
) -> Response:
    """One request; 4xx/5xx are returned, not raised. `body` is sent as JSON, `raw` as is."""
    headers = {}
    data = raw
    if body is not NO_BODY:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Response(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, error.headers, error.read())


def poll_status(
    status_url: str,
    until: Callable[[Response], bool] = lambda r: r.status != 202,
    timeout: float = 60.0,
) -> Response:
    """GET `status_url` (a `statusQueryGetUri`) until `until(response)`, by default until it
    stops answering 202 Accepted; while running it must answer 202."""
    deadline = time.monotonic() + timeout
    while True:
        response = http("GET", status_url)
        if until(response):
            return response
        assert response.status == 202, f"{response.status}: {response.text}"
        if time.monotonic() > deadline:
            raise AssertionError(f"still {response.status} after {timeout} s: {response.text}")
        time.sleep(POLL_INTERVAL)
