"""One `durable-ext start` with seeded instances and one headless Chromium, shared by the
module's browser tests (tests/dashboard/live.py). Without the browser the tests are skipped,
except under CI=true, where a missing browser fails the run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.azurite import AzuriteInstance
from tests.dashboard.live import LiveDashboard, browser, live_dashboard, require_browser


@pytest.fixture(scope="module")
def live(azurite: AzuriteInstance, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDashboard]:
    require_browser()
    with live_dashboard(azurite, tmp_path_factory.mktemp("dashboard_app")) as dashboard:
        dashboard.seed()
        yield dashboard


@pytest.fixture(scope="module")
def page(live: LiveDashboard) -> Iterator[Page]:
    """The one browser page the module's tests drive, in turn."""
    with browser() as context:
        context.set_default_timeout(15_000)
        yield context.new_page()
