"""The dashboard in a browser against a host with a system key: the page asks for the key, keeps
it for the tab (out of the address bar) and reads the API with it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.access.conftest import KeyedHost
from tests.dashboard.live import API, browser, require_browser, wait_ready


@pytest.fixture(scope="module")
def tabs(keyed_host: KeyedHost) -> Iterator[BrowserContext]:
    """One browser; each test opens its own tab (the key lives in the tab's session storage)."""
    require_browser()
    with browser() as context:
        context.set_default_timeout(15_000)
        yield context


def test_the_page_asks_for_the_key_then_reads_with_it(
    keyed_host: KeyedHost, tabs: BrowserContext
) -> None:
    page = tabs.new_page()
    refused: list[str] = []
    page.on("response", lambda r: refused.append(r.url) if r.status == 401 else None)
    page.goto(f"{keyed_host.base_url}{API}/dashboard/")
    expect(page.locator("#dialog-title")).to_have_text("System key required")
    assert refused, "the API refused the page's first reads"
    page.fill("#key-input", keyed_host.keys.system)
    page.click("#dialog-confirm")
    wait_ready(page)
    expect(page.locator("#instances tbody")).to_contain_text("No instances on this page.")
    expect(page.locator("#dialog")).not_to_be_visible()


def test_a_key_in_the_address_is_kept_for_the_tab_and_taken_out(
    keyed_host: KeyedHost, tabs: BrowserContext
) -> None:
    page = tabs.new_page()
    page.goto(f"{keyed_host.base_url}{API}/dashboard/?code={keyed_host.keys.system}#/taskhub")
    wait_ready(page)
    expect(page.locator("#partitions tbody tr").first).to_be_visible()
    assert keyed_host.keys.system not in page.url
    assert page.url.endswith("/dashboard/#/taskhub")
    page.reload()  # the key stays with the tab
    wait_ready(page)
    expect(page.locator("#partitions tbody tr").first).to_be_visible()
    expect(page.locator("#dialog")).not_to_be_visible()
