"""`make dashboard-screenshots`: the dashboard's views as PNGs in docs/img/ (shown in
docs/dashboard.md), taken in headless Chromium from a `durable-ext start` on a private Azurite
with the browser tests' instances."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

from tests.azurite import REPO_ROOT, AzuriteInstance
from tests.dashboard.live import LiveDashboard, browser, chromium_missing, live_dashboard, open_view

OUT = REPO_ROOT / "docs" / "img"


def shoot(live: LiveDashboard) -> None:
    """Every view, light (and the list dark too), and the raise-event dialog."""
    seeded = live.seed()
    base = live.url
    # name: (URL, dark, the whole page rather than the window's height)
    shots = {
        "dashboard-instances.png": (base, False, False),
        "dashboard-failed.png": (f"{base}#/instance/{quote(seeded.failed)}", False, True),
        "dashboard-timeline.png": (f"{base}#/instance/{quote(seeded.fanned)}", False, True),
        "dashboard-taskhub.png": (f"{base}#/taskhub", False, False),
        "dashboard-instances-dark.png": (base, True, False),
    }
    for dark in (False, True):
        with browser(dark=dark) as context:
            page = context.new_page()
            for name, (url, shot_dark, full_page) in shots.items():
                if shot_dark == dark:
                    open_view(page, url)
                    page.screenshot(path=str(OUT / name), full_page=full_page)
                    print(f"saved docs/img/{name}")
            if not dark:
                open_view(page, f"{base}#/instance/{quote(seeded.waiting[0])}")
                page.click("button[data-action='raiseEvent']")
                page.fill("#event-name", "approve")
                page.fill("#event-data", '{"by": "dashboard"}')
                page.screenshot(path=str(OUT / "dashboard-raise-event.png"))
                print("saved docs/img/dashboard-raise-event.png")


def main() -> int:
    missing = chromium_missing()
    if missing:
        print(missing, file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as temp,
        AzuriteInstance(Path(temp) / "azurite") as azurite,
        live_dashboard(azurite, Path(temp) / "app") as live,
    ):
        shoot(live)
    return 0


if __name__ == "__main__":
    sys.exit(main())
