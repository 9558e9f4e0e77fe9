"""A running `durable-ext start` serving `dashboard_app.py` on Azurite, with instances to show,
and headless Chromium (Debian's `chromium`) to look at it: for the browser tests and for
`make dashboard-screenshots`.

The browser is Debian's package, driven by Playwright's Python package through
`executable_path`; Playwright's own browser downloads are never used, and the flags keep
Chromium off the network (the machine has none anyway).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.azurite import REPO_ROOT, AzuriteInstance
from tests.sample_app.host_process import LocalHostProcess, http, make_app_root

CHROMIUM = Path(os.environ.get("DURABLE_EXT_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
APP_SOURCE = Path(__file__).with_name("dashboard_app.py")
API = "/api/durabletask"
PAGED = 250
"""Instances under the `page-` prefix, for paging."""
WAIT = 30.0
BANNER = re.compile(r"^\s*Dashboard: (http://\S+/dashboard/)$", re.MULTILINE)


@dataclass
class Seeded:
    """The instances the dashboard is shown: ids by what they do."""

    failed: str
    fanned: str
    continued: str
    waiting: list[str] = field(default_factory=list)
    paged: list[str] = field(default_factory=list)


@dataclass
class LiveDashboard:
    """The host, its base URL, and the instances seeded into its task hub."""

    host: LocalHostProcess
    hub_name: str
    url: str
    """The dashboard's page, as the host's banner names it."""
    seeded: Seeded | None = None

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """One management API call; the JSON body of a 2xx answer (AssertionError otherwise)."""
        response = http(method, f"{self.host.base_url}{API}{path}", body)
        assert 200 <= response.status < 300, f"{method} {path}: {response.status} {response.text}"
        return response.json() if response.body else None

    def start(self, name: str, instance_id: str, value: Any = None) -> str:
        self.api("POST", f"/orchestrators/{name}/{quote(instance_id, safe='')}", value)
        return instance_id

    def status(self, instance_id: str) -> dict[str, Any]:
        response = http("GET", f"{self.host.base_url}{API}/instances/{quote(instance_id, safe='')}")
        return {} if response.status == 404 else response.json()

    def wait_status(self, instance_id: str, wanted: str, timeout: float = WAIT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(instance_id)
            if status.get("runtimeStatus") == wanted:
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"{instance_id} is {status.get('runtimeStatus')}, not {wanted}")
            time.sleep(0.1)

    def seed(self) -> Seeded:
        """Instances of every kind; returns once each has reached the status it stays in."""
        run = secrets.token_hex(3)
        seeded = Seeded(
            failed=self.start("fails", f"failed-{run}", "order 17"),
            fanned=self.start("fan_out", f"fan-{run}", 6),
            continued=self.start("again", f"again-{run}", 0),
        )
        seeded.waiting = [self.start("waits", f"waiting-{run}-{i}") for i in range(3)]
        with ThreadPoolExecutor(8) as pool:
            seeded.paged = list(
                pool.map(lambda i: self.start("quick", f"page-{i:03d}", i), range(PAGED))
            )
        self.wait_status(seeded.failed, "Failed")
        self.wait_status(seeded.fanned, "Completed")
        self.wait_status(seeded.continued, "Completed")
        for instance_id in seeded.waiting:
            self.wait_status(instance_id, "Running")
        self.seeded = seeded
        return seeded


@contextmanager
def live_dashboard(
    azurite: AzuriteInstance, root: Path, values: dict[str, str] | None = None
) -> Iterator[LiveDashboard]:
    """`durable-ext start` on the dashboard app, in `root`, for the duration of the block."""
    hub_name = "Dash" + secrets.token_hex(4)
    make_app_root(
        root,
        code=[],
        hub_name=hub_name,
        connection_string=azurite.connection_string,
        values=values,
    )
    shutil.copy2(APP_SOURCE, root / "function_app.py")
    host = LocalHostProcess(root)
    host.launch()
    try:
        host.wait_ready()
        yield LiveDashboard(host, hub_name, banner_url(host))
    finally:
        host.stop()


def banner_url(host: LocalHostProcess) -> str:
    """The dashboard's URL as `durable-ext start` prints it in its banner."""
    deadline = time.monotonic() + WAIT
    while not (found := BANNER.search(host.log())):
        assert time.monotonic() < deadline, f"no dashboard URL in the banner:\n{host.log()[-3000:]}"
        time.sleep(0.05)
    return found.group(1)


def require_browser() -> None:
    """Skip the calling test when the browser cannot run here; under CI=true, fail it."""
    missing = chromium_missing()
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and the browser tests cannot run: {missing}")
        pytest.skip(missing)


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium (make test does)"
    if not AXE.exists():
        return f"{AXE} is missing: npm ci (make node_modules)"
    return None


@contextmanager
def browser(dark: bool = False) -> Iterator[BrowserContext]:
    """One headless Chromium with a fresh profile, closed after the block."""
    profile = tempfile.mkdtemp(prefix="durable-ext-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                args=CHROMIUM_FLAGS,
                headless=True,
                viewport={"width": 1366, "height": 800},
                color_scheme="dark" if dark else "light",
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def open_view(page: Page, url: str) -> None:
    """Go to `url` and wait until the dashboard has rendered the view."""
    page.goto(url)
    wait_ready(page)


def wait_ready(page: Page) -> None:
    page.wait_for_selector("#view[data-ready='true']", timeout=WAIT * 1000)


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is (WCAG 2.x A and AA rules and best practices),
    axe injected from node_modules (the page's policy blocks inline scripts, not the driver's)."""
    if not page.evaluate("() => Boolean(window.axe)"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result
    ]


def rows_per_response(page: Page) -> Callable[[], list[int]]:
    """Start recording how many instance rows each `GET /instances` response carried; the
    returned function gives the counts so far."""
    counts: list[int] = []

    def record(response: Any) -> None:
        path = response.url.split("?")[0]
        if path.endswith(f"{API}/instances") and response.request.method == "GET":
            counts.append(len(json.loads(response.body())))

    page.on("response", record)
    return lambda: list(counts)
