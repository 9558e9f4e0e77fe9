"""durable_ext_http: the scenarios of `ours` driven over HTTP through `durable-ext start`.

Each run starts the real local host (`durable-ext start --host 127.0.0.1 --port <free>`, the
console script of this environment) serving the bench's function app (bench/http_app/: the same
orchestrators and activities as the in-process engine, an HTTP starter answering
`client.create_check_status_response`), on the suite's Azurite and a hub of its own (environment
variables `AzureWebJobsStorage` and `AzureFunctionsJobHost__extensions__durableTask__hubName`; the
app root's host.json sets 4 partitions and a 1 s maximum queue polling interval, as the in-process
engine's options do). Its console (tracking events at INFO, as `durable-ext start` prints them)
goes to a log file. The engine waits until the host answers, then drives everything as a user's
HTTP client does, with one keep-alive aiohttp session:

- start: `POST /api/orchestrators/{name}` (the JSON input as body) → 202 and the check-status
  payload;
- completion: `GET statusQueryGetUri` every 10 ms (5 ms for latency) — the in-process engine's
  intervals — until it stops answering 202; for HelloCities, the instances query
  (`GET /api/durabletask/instances?runtimeStatus=Pending,Running&top=1`) every 50 ms until it
  returns nothing;
- events: `POST sendEventPostUri` with `{eventName}` = Tick, one after another.

`--option NAME=VALUE` sets an environment variable (an app setting) of the host: a host lever
(`durable_ext/host`), an `AzureFunctionsJobHost__...` host.json override, or
`DURABLE_EXT_BENCH_PROFILE=PATH` to profile the host (bench/http_app/hook.py). CPU is reported for
the host process (/proc/PID/stat) and this driving process apart; their sum is the engine's CPU.
Storage requests are counted inside the host by the bench app's hook (the host's worker and its
HTTP functions apart); this process counts its own HTTP requests by kind.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Coroutine, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from durable_ext.storage.connection import StorageConnection
from durable_ext.storage.task_hub import TaskHub
from harness.azurite import free_ports

from ..http_app.hook import ENVIRONMENT_VARIABLE, STATS_ROUTE
from ..metrics import pid_cpu_seconds
from ..workloads import expected_sum
from .base import Engine, Outcome
from .ours import CITIES, LATENCY_POLL, SCENARIO_TIMEOUT, START_CONCURRENCY, STATUS_POLL

__all__ = ["APP_ROOT", "DurableExtHttpEngine", "parse_setting"]

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
APP_ROOT = REPO_ROOT / "bench" / "http_app"
HOST_COMMAND = Path(sys.executable).with_name("durable-ext")
HOST = "127.0.0.1"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
PORT_ATTEMPTS = 3
INSTANCES_POLL = 0.05
_PR_SET_PDEATHSIG = 1
HUB_SETTING = "AzureFunctionsJobHost__extensions__durableTask__hubName"
_FOREIGN_SETTINGS = ("AzureWebJobs", "AzureFunctionsJobHost", "DURABLE_EXT_", "PYTHON_SCRIPT_FILE")
"""Settings of this shell that would point the host elsewhere (they override the app's)."""


def parse_setting(text: str) -> tuple[str, str]:
    """``NAME=VALUE``: an environment variable (app setting) of the host."""
    name, separator, value = text.partition("=")
    if not separator or not name:
        raise ValueError(f"expected NAME=VALUE (an app setting of the host), got {text!r}")
    return name, value


class HostFailedError(RuntimeError):
    """The host exited, did not answer, or answered something unexpected."""


class DurableExtHttpEngine(Engine):
    name = "durable_ext_http"

    def __init__(
        self,
        connection_string: str,
        hub: str,
        settings: Mapping[str, str] | None = None,
        workdir: Path | None = None,
    ) -> None:
        super().__init__()
        self.connection_string = connection_string
        self.hub = hub
        self.settings = dict(settings or {})
        self.log_path = (workdir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"host-{hub}.log"
        self.http_requests: Counter[str] = Counter()
        self._runner = asyncio.Runner()
        self._session: aiohttp.ClientSession | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._base = ""
        self._host_cpu0 = 0.0
        self._host_cpu: float | None = None

    # -- lifecycle
    def start(self) -> None:
        try:
            for attempt in range(1, PORT_ATTEMPTS + 1):
                self._launch()
                try:
                    self._runner.run(self._wait_ready())
                    return
                except HostFailedError:
                    self._kill()
                    if "address already in use" not in self.log().lower() or (
                        attempt == PORT_ATTEMPTS
                    ):
                        raise
        except BaseException:
            self._kill()
            raise

    def _launch(self) -> None:
        [port] = free_ports(1, HOST)
        self._base = f"http://{HOST}:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_SETTINGS)}
        env.update(
            {
                "AzureWebJobsStorage": self.connection_string,
                HUB_SETTING: self.hub,
                ENVIRONMENT_VARIABLE: "1",
                # The repository only (for `bench`): an inherited entry naming the app root would
                # keep the host from putting it first, and the repository's own function_app/
                # package would be imported instead of the bench app.
                "PYTHONPATH": str(REPO_ROOT),
                "PYTHONUNBUFFERED": "1",
            },
            **self.settings,
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [str(HOST_COMMAND), "start", "--host", HOST, "--port", str(port)],
                cwd=APP_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_terminate_with_parent,
            )

    async def _wait_ready(self) -> None:
        """Until the host answers the bench's stats route (its worker has started by then)."""
        process = self._require_process()
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if process.poll() is not None:
                raise HostFailedError(
                    f"the host exited with code {process.returncode}\n{self.tail()}"
                )
            try:
                async with self.session.get(self._stats_url()) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            if time.monotonic() > deadline:
                raise HostFailedError(
                    f"the host did not answer in {READY_TIMEOUT:.0f} s\n{self.tail()}"
                )
            await asyncio.sleep(0.05)

    def stop(self) -> None:
        try:
            if self._session is not None:
                self._runner.run(self._session.close())
            process = self._process
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._kill()
                    raise HostFailedError(f"the host ignored SIGTERM\n{self.tail()}") from None
            self._runner.run(self._delete_hub())  # keep the shared Azurite small between runs
        finally:
            self._kill()
            self._runner.close()

    async def _delete_hub(self) -> None:
        async with TaskHub(
            StorageConnection.from_connection_string(self.connection_string), self.hub
        ) as hub:
            await hub.delete()

    def _kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def _require_process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise HostFailedError("the host was never launched")
        return self._process

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "host log (tail):\n" + "\n".join(self.log().splitlines()[-lines:])

    def versions(self) -> dict[str, str]:
        return {
            "durable-ext": metadata.version("durable-ext"),
            "aiohttp": metadata.version("aiohttp"),
            "azure-functions": metadata.version("azure-functions"),
        }

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created on the runner's loop; keep-alive connections, no per-request timeout
            # beyond the scenario's own.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=START_CONCURRENCY * 2)
            )
        return self._session

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    # -- counting
    def _stats_url(self) -> str:
        return f"{self._base}/api/{STATS_ROUTE}"

    def reset_storage_requests(self) -> None:
        self.http_requests.clear()
        self._run(self._post_stats())
        self._host_cpu0 = pid_cpu_seconds(self._require_process().pid)
        self._host_cpu = None

    async def _post_stats(self) -> None:
        async with self.session.post(self._stats_url()) as response:
            if response.status != 204:
                raise HostFailedError(f"POST {STATS_ROUTE}: {response.status}")

    def storage_requests(self) -> dict[str, Any]:
        """The host's worker requests at the top level, its HTTP functions' under ``client``, and
        this driver's HTTP requests by kind under ``http``."""
        self._host_cpu = pid_cpu_seconds(self._require_process().pid) - self._host_cpu0
        stats = self._run(self._get_stats())
        found: dict[str, Any] = stats["worker"]
        found["client"] = stats["client"]
        found["http"] = {"total": sum(self.http_requests.values()), **self.http_requests}
        clock = stats["activities"]
        self.activities.count, self.activities.first = clock["count"], clock["first"]
        self.activities.last = clock["last"]
        return found

    async def _get_stats(self) -> dict[str, Any]:
        async with self.session.get(self._stats_url()) as response:
            if response.status != 200:
                raise HostFailedError(f"GET {STATS_ROUTE}: {response.status}")
            body: dict[str, Any] = await response.json()
            return body

    def host_cpu_s(self) -> float | None:
        return self._host_cpu

    # -- HTTP
    async def _request(
        self, kind: str, method: str, url: str, body: Any = None
    ) -> tuple[int, Any, Any]:
        """One request; its status, JSON body (None if empty) and headers."""
        self.http_requests[kind] += 1
        kwargs = {} if body is None else {"json": body}
        async with self.session.request(method, url, **kwargs) as response:
            raw = await response.read()
            return response.status, (await response.json() if raw else None), response.headers

    async def _start(self, name: str, client_input: Any = None) -> dict[str, str]:
        status, body, _ = await self._request(
            "start", "POST", f"{self._base}/api/orchestrators/{name}", client_input
        )
        if status != 202:
            raise HostFailedError(f"starting {name}: {status} {body}")
        links: dict[str, str] = body
        return links

    async def _wait(self, links: Mapping[str, str], interval: float) -> dict[str, Any]:
        """Poll the status URI until it stops answering 202; the final status payload."""
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            while True:
                status, body, _ = await self._request("status", "GET", links["statusQueryGetUri"])
                if status != 202:
                    if status != 200:
                        raise HostFailedError(f"status of {links['id']}: {status} {body}")
                    payload: dict[str, Any] = body
                    return payload
                await asyncio.sleep(interval)

    # -- scenarios
    def sequential(self, count: int) -> Outcome:
        return self._run(self._single("Sequential", count, count, expected_sum(count)))

    def fanout(self, count: int) -> Outcome:
        return self._run(self._single("FanOut", count, count, expected_sum(count)))

    def hellocities(self, count: int, steps: int) -> Outcome:
        return self._run(self._hellocities(count, steps))

    def events(self, count: int) -> Outcome:
        return self._run(self._events(count))

    def latency(self, runs: int) -> Outcome:
        return self._run(self._latency(runs))

    async def _single(self, name: str, client_input: Any, units: int, expected: Any) -> Outcome:
        links = await self._start(name, client_input)
        return await self._finish(links, units, expected)

    async def _finish(self, links: Mapping[str, str], units: int, expected: Any) -> Outcome:
        payload = await self._wait(links, STATUS_POLL)
        finished = time.perf_counter()
        correct = payload.get("runtimeStatus") == "Completed" and payload.get("output") == expected
        return Outcome(units, correct, detail={"finished_at": finished})

    async def _hellocities(self, count: int, steps: int) -> Outcome:
        cities = [CITIES[i % len(CITIES)] for i in range(steps)]
        gate = asyncio.Semaphore(START_CONCURRENCY)
        began = time.perf_counter()

        async def start() -> str:
            async with gate:
                return (await self._start("HelloCities", cities))["id"]

        instance_ids = await asyncio.gather(*(start() for _ in range(count)))
        started = time.perf_counter()
        instances = f"{self._base}/api/durabletask/instances"
        unfinished = f"{instances}?runtimeStatus=Pending,Running&top=1&showInput=false"
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            while True:
                status, page, headers = await self._request("instances", "GET", unfinished)
                if status != 200:
                    raise HostFailedError(f"instances query: {status} {page}")
                if not page and not headers.get("x-ms-continuation-token"):
                    break
                await asyncio.sleep(INSTANCES_POLL)
        finished = time.perf_counter()
        expected = [f"Hello {city}!" for city in cities]
        done = await self._completed_with(f"{instances}?runtimeStatus=Completed&top=1000", expected)
        return Outcome(
            count,
            done.issuperset(instance_ids),
            detail={"finished_at": finished, "start_calls_s": started - began},
        )

    async def _completed_with(self, url: str, expected: Any) -> set[str]:
        """The ids of the listed instances whose output is `expected` (every page; not timed)."""
        done: set[str] = set()
        token = ""
        while True:
            headers = {"x-ms-continuation-token": token} if token else {}
            async with self.session.get(url, headers=headers) as response:
                page = await response.json()
                token = response.headers.get("x-ms-continuation-token", "")
            done.update(s["instanceId"] for s in page if s.get("output") == expected)
            if not token:
                return done

    async def _events(self, count: int) -> Outcome:
        links = await self._start("Events", count)
        send = links["sendEventPostUri"].replace("{eventName}", "Tick")
        began = time.perf_counter()
        for i in range(count):
            status, body, _ = await self._request("raise", "POST", send, i)
            if status != 202:
                raise HostFailedError(f"raising event {i}: {status} {body}")
        raised = time.perf_counter()
        outcome = await self._finish(links, count, expected_sum(count))
        outcome.detail["raise_calls_s"] = raised - began
        return outcome

    async def _latency(self, runs: int) -> Outcome:
        """As the in-process engine's, without its engine-stamped figure: the status API gives
        whole seconds."""
        samples: list[float] = []
        correct = True
        for _ in range(runs):
            began = time.perf_counter()
            links = await self._start("OneActivity")
            payload = await self._wait(links, LATENCY_POLL)
            samples.append(time.perf_counter() - began)
            correct = correct and payload.get("output") == 1
        return Outcome(runs, correct, samples)


def _terminate_with_parent() -> None:
    """In the host's process before it runs: SIGTERM it when this process dies (Linux), so a
    child the suite kills on its timeout leaves no host behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
