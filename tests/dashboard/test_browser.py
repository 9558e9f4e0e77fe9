"""The dashboard in headless Chromium against a running `durable-ext start` on Azurite: list,
filter and page through instances, read a failure, raise an event, terminate, purge, start, the
task hub view, and axe-core's accessibility checks on every view in light and dark."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from playwright.sync_api import Page, Route, expect

from durable_ext.dashboard.assets import DashboardMode, asset_response
from tests.dashboard.live import (
    API,
    PAGED,
    LiveDashboard,
    axe_violations,
    open_view,
    rows_per_response,
    wait_ready,
)

PAGE_SIZE = 100
REFRESH_MS = 5000
"""The page's auto-refresh interval (app.mjs)."""


def instance_url(live: LiveDashboard, instance_id: str) -> str:
    return f"{live.url}#/instance/{quote(instance_id, safe='')}"


def shown_ids(page: Page) -> list[str]:
    return page.locator("#instances tbody td.id").all_inner_texts()


def pause_auto_refresh(page: Page) -> None:
    button = page.locator("#auto-refresh")
    if button.get_attribute("aria-pressed") == "true":
        button.click()


def test_lists_and_filters_instances_by_status_name_and_prefix(live: LiveDashboard, page: Page) -> None:
    assert live.seeded is not None
    open_view(page, live.url)
    expect(page.locator("#instances tbody tr").first).to_be_visible()
    expect(page.locator("#counts button[data-status='Failed'] strong")).to_have_text("1")
    running = sum(live.status(i).get("runtimeStatus") == "Running" for i in live.seeded.waiting)
    expect(page.locator("#counts button[data-status='Running'] strong")).to_have_text(str(running))

    page.select_option("#filter-status", "Failed")
    page.click("#apply-filters")
    expect(page.locator("#instances tbody td.id")).to_have_text([live.seeded.failed])
    assert "status=Failed" in page.url, "the filters are in the (shareable) address"

    page.select_option("#filter-status", "")
    page.select_option("#filter-name", "waits")
    page.click("#apply-filters")
    present = [i for i in live.seeded.waiting if live.status(i)]
    expect(page.locator("#instances tbody td.id")).to_have_count(len(present))
    assert sorted(shown_ids(page)) == sorted(present)

    page.select_option("#filter-name", "")
    page.fill("#filter-prefix", "page-01")
    page.click("#apply-filters")
    expect(page.locator("#instances tbody td.id")).to_have_count(10)
    assert all(i.startswith("page-01") for i in shown_ids(page))


def test_sorts_within_the_page(live: LiveDashboard, page: Page) -> None:
    open_view(page, f"{live.url}#/instances?prefix=page-00")
    pause_auto_refresh(page)
    expect(page.locator("#instances tbody td.id")).to_have_count(10)
    page.click("button[data-sort='instanceId']")
    page.click("button[data-sort='instanceId']")
    expect(page.locator("th[aria-sort='descending']")).to_have_count(1)
    assert shown_ids(page) == [f"page-{i:03d}" for i in range(9, -1, -1)]


def test_pages_through_250_instances_one_page_per_request(live: LiveDashboard, page: Page) -> None:
    counts = rows_per_response(page)
    open_view(page, f"{live.url}#/instances?prefix=page-")
    pause_auto_refresh(page)
    page.select_option("#page-size", str(PAGE_SIZE))
    expect(page.locator("#page-label")).to_contain_text("Page 1 · 100 rows")
    seen = shown_ids(page)
    for number in (2, 3):
        page.click("#next-page")
        expect(page.locator("#page-label")).to_contain_text(f"Page {number} ·")
        seen += shown_ids(page)
    expect(page.locator("#next-page")).to_be_disabled()
    assert sorted(seen) == [f"page-{i:03d}" for i in range(PAGED)]
    assert counts() and max(counts()) <= PAGE_SIZE, counts()
    page.click("#prev-page")
    expect(page.locator("#page-label")).to_contain_text("Page 2 · 100 rows")


def test_a_failed_instance_shows_its_error_type_message_and_stack(live: LiveDashboard, page: Page) -> None:
    assert live.seeded is not None
    open_view(page, live.url + "#/instances?status=Failed")
    page.click(f"a:text-is('{live.seeded.failed}')")
    wait_ready(page)
    expect(page.locator("#instance-status")).to_have_text("Failed")
    expect(page.locator("#error-type")).to_have_text("TaskFailedError")
    expect(page.locator("#error-message")).to_contain_text("cannot process 'order 17'")
    expect(page.locator("#error-stack")).to_contain_text("Traceback")
    expect(page.locator("#gantt .bar.failed")).to_have_count(1)


def test_the_timeline_draws_the_fan_out(live: LiveDashboard, page: Page) -> None:
    assert live.seeded is not None
    open_view(page, instance_url(live, live.seeded.fanned))
    expect(page.locator("#gantt .bar.activity")).to_have_count(6)
    expect(page.locator("#gantt .bar.sub-orchestration")).to_have_count(1)
    expect(page.locator("#gantt .bar.timer")).to_have_count(1)
    expect(page.locator("#timeline-h + p")).to_contain_text("at most 7 at once")
    child_id = page.locator("#children a").inner_text()
    page.click("#children a")
    wait_ready(page)
    expect(page.locator("h1")).to_contain_text(child_id)
    page.click(f"a:text-is('{live.seeded.fanned}')")  # the child's link to its parent
    wait_ready(page)
    expect(page.locator("h1")).to_contain_text(live.seeded.fanned)


def test_a_continued_instance_shows_its_last_execution(live: LiveDashboard, page: Page) -> None:
    """Storage keeps only the current execution (DTFx's layout): the view shows that one, says
    so, and the execution id is the one the status API reports."""
    assert live.seeded is not None
    open_view(page, instance_url(live, live.seeded.continued))
    expect(page.locator("#instance-status")).to_have_text("Completed")
    expect(page.locator("#output")).to_contain_text("round 2")
    started = page.locator("#history tbody tr", has_text="ExecutionStarted")
    expect(started).to_contain_text("Input: 2")
    expect(page.locator("#history-scope")).to_contain_text("continue-as-new")


def test_raising_an_event_completes_the_waiting_instance(live: LiveDashboard, page: Page) -> None:
    assert live.seeded is not None
    waiting = live.seeded.waiting[0]
    open_view(page, instance_url(live, waiting))
    expect(page.locator("#custom-status")).to_contain_text("waiting for approve")
    page.click("button[data-action='raiseEvent']")
    page.fill("#event-name", "approve")
    page.fill("#event-data", '{"by": "dashboard"}')
    page.click("#dialog-confirm")
    expect(page.locator("#dialog")).not_to_be_visible()
    live.wait_status(waiting, "Completed")
    page.reload()
    wait_ready(page)
    expect(page.locator("#instance-status")).to_have_text("Completed")
    expect(page.locator("#output")).to_contain_text('"by": "dashboard"')


def test_a_bad_event_payload_keeps_the_dialog_open_with_the_error(live: LiveDashboard, page: Page) -> None:
    assert live.seeded is not None
    open_view(page, instance_url(live, live.seeded.waiting[1]))
    page.click("button[data-action='raiseEvent']")
    page.fill("#event-name", "approve")
    page.fill("#event-data", "{not json")
    page.click("#dialog-confirm")
    expect(page.locator("#dialog-error")).to_contain_text("not valid JSON")
    page.click("#dialog-cancel")
    assert live.status(live.seeded.waiting[1])["runtimeStatus"] == "Running"


def test_terminate_then_purge(live: LiveDashboard, page: Page) -> None:
    assert live.seeded is not None
    doomed = live.seeded.waiting[2]
    open_view(page, instance_url(live, doomed))
    page.click("button[data-action='terminate']")
    page.fill("#action-reason", "from the browser test")
    page.click("#dialog-confirm")
    live.wait_status(doomed, "Terminated")
    page.reload()
    wait_ready(page)
    expect(page.locator("#instance-status")).to_have_text("Terminated")
    page.click("button[data-action='purge']")
    page.click("#dialog-confirm")
    expect(page.locator("h1")).to_have_text("Instances")
    assert live.status(doomed) == {}


def test_starts_a_registered_orchestrator_with_an_input(live: LiveDashboard, page: Page) -> None:
    open_view(page, live.url)
    page.click("#start-new")
    expect(page.locator("#start-name option")).to_have_text(["again", "fails", "fan_out", "quick", "waits"])
    page.select_option("#start-name", "quick")
    page.fill("#start-id", "started-from-dashboard")
    page.fill("#start-input", '{"hello": "browser"}')
    page.click("#dialog-confirm")
    expect(page).to_have_url(re.compile(r"#/instance/started-from-dashboard$"))
    live.wait_status("started-from-dashboard", "Completed")
    page.reload()
    wait_ready(page)
    expect(page.locator("#output")).to_contain_text('"hello": "browser"')


def test_the_task_hub_view_shows_partitions_owners_and_queues(live: LiveDashboard, page: Page) -> None:
    open_view(page, f"{live.url}#/taskhub")
    expect(page.locator("#partitions tbody tr")).to_have_count(4)
    owners = page.locator("#partitions tbody td:nth-child(3)").all_inner_texts()
    assert len(set(owners)) == 1 and owners[0] != "(none)", owners
    expect(page.locator("#workers")).to_have_text(owners[0])
    expect(page.locator("#work-items tbody td").first).to_have_text(f"{live.hub_name.lower()}-workitems")


def test_every_view_passes_axe_in_light_and_dark(live: LiveDashboard, page: Page) -> None:
    assert live.seeded is not None
    views = {
        "instances": live.url,
        "failed instance": instance_url(live, live.seeded.failed),
        "fan-out instance": instance_url(live, live.seeded.fanned),
        "task hub": f"{live.url}#/taskhub",
    }
    found = {}
    for theme in ("light", "dark"):
        for name, url in views.items():
            open_view(page, url)
            page.evaluate(f"document.documentElement.dataset.theme = '{theme}'")
            found[f"{name} ({theme})"] = axe_violations(page)
        open_view(page, instance_url(live, live.seeded.waiting[1]))
        page.click("button[data-action='raiseEvent']")
        found[f"raise-event dialog ({theme})"] = axe_violations(page)
        page.click("#dialog-cancel")
    assert not any(found.values()), {k: v for k, v in found.items() if v}


def test_the_keyboard_reaches_filters_rows_and_actions(live: LiveDashboard, page: Page) -> None:
    open_view(page, live.url)
    page.keyboard.press("Tab")
    expect(page.locator(".skip")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    assert page.url.endswith("/dashboard/"), "the skip link leaves the view's address alone"
    focused: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
    for wanted in ("filter-status", "filter-prefix", "apply-filters", "auto-refresh", "start-new", "A"):
        assert wanted in focused, focused


def test_read_only_offers_no_actions(live: LiveDashboard, page: Page) -> None:
    """The page as the server serves it with DURABLE_EXT_DASHBOARD=read-only."""
    assert live.seeded is not None
    answer = asset_response(urlsplit(live.url).path, "", None, DashboardMode.READ_ONLY)

    def read_only(route: Route) -> None:
        route.fulfill(status=200, body=answer.body, content_type="text/html", headers=answer.headers)

    page.route(live.url, read_only)
    try:
        page.goto("about:blank")  # a new document: not a mere change of the hash
        open_view(page, instance_url(live, live.seeded.waiting[1]))
        expect(page.locator("#instance-status")).to_have_text("Running")
        expect(page.locator("[data-action]")).to_have_count(0)
        page.click("a[data-nav='instances']")
        wait_ready(page)
        expect(page.locator("#instances tbody tr").first).to_be_visible()
        expect(page.locator("#start-new")).to_have_count(0)
    finally:
        page.unroute(live.url)
        page.goto("about:blank")


def test_auto_refresh_follows_new_instances_until_paused(live: LiveDashboard, page: Page) -> None:
    """The page's clock is Playwright's: the refresh interval is fast-forwarded, not waited for."""
    tab = page.context.new_page()
    try:
        tab.clock.install()
        lists: list[str] = []
        tab.on("request", lambda r: lists.append(r.url) if f"{API}/instances?" in r.url else None)
        open_view(tab, f"{live.url}#/instances?prefix=late-")
        expect(tab.locator("#instances tbody")).to_contain_text("No instances on this page.")
        live.start("quick", "late-1")
        tab.clock.fast_forward(REFRESH_MS)
        expect(tab.locator("#instances tbody td.id")).to_have_text(["late-1"])

        tab.click("#auto-refresh")
        expect(tab.locator("#auto-refresh")).to_have_attribute("aria-pressed", "false")
        live.start("quick", "late-2")
        before = len(lists)
        tab.clock.fast_forward(REFRESH_MS * 4)
        with tab.expect_response(lambda r: f"{API}/instances?" in r.url):
            tab.click("text=Refresh now")
        assert len(lists) == before + 1, "paused: only the manual refresh asked for the page"
        expect(tab.locator("#instances tbody td.id")).to_have_count(2)
    finally:
        tab.close()
