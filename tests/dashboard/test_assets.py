"""The dashboard's page and files as the `durabletask_dashboard` function answers them."""

from __future__ import annotations

import pytest

from durable_ext.dashboard.assets import (
    ASSETS,
    STATIC,
    DashboardMode,
    asset_response,
    dashboard_mode,
)

PAGE = "/api/durabletask/dashboard/"


def test_every_file_of_the_page_is_served_with_its_type_and_a_strict_policy() -> None:
    assert sorted(ASSETS) == sorted(p.name for p in STATIC.iterdir())
    for name in ASSETS:
        answer = asset_response(PAGE + name, "", name, DashboardMode.ENABLED)
        assert answer.status == 200, name
        assert answer.body == (STATIC / name).read_bytes() or name == "index.html"
        assert answer.content_type.startswith(("text/", "image/")), name
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy


def test_the_page_loads_nothing_from_elsewhere() -> None:
    for name in ASSETS:
        text = (STATIC / name).read_text(encoding="utf-8")
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", ""), name
        assert "https://" not in text and "//cdn" not in text and "@import" not in text, name


def test_the_page_url_gets_its_slash_and_keeps_the_query() -> None:
    answer = asset_response("/api/durabletask/dashboard", "code=k", None, DashboardMode.ENABLED)
    assert (answer.status, answer.headers["Location"]) == (301, PAGE + "?code=k")
    page = asset_response(PAGE, "code=k", None, DashboardMode.ENABLED)
    assert page.status == 200 and page.content_type == "text/html"
    assert b'data-read-only="false"' in page.body


def test_read_only_marks_the_page_and_disabled_serves_nothing() -> None:
    page = asset_response(PAGE, "", "", DashboardMode.READ_ONLY)
    assert b'data-read-only="true"' in page.body
    for name in (None, *ASSETS):
        assert asset_response(PAGE, "", name, DashboardMode.DISABLED).status == 404


def test_unknown_files_are_not_found() -> None:
    for name in ("../assets.py", "secret.txt", "__init__.py"):
        assert asset_response(PAGE + name, "", name, DashboardMode.ENABLED).status == 404


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (None, DashboardMode.ENABLED),
        ("enabled", DashboardMode.ENABLED),
        ("Read-Only", DashboardMode.READ_ONLY),
        ("readonly", DashboardMode.READ_ONLY),
        ("disabled", DashboardMode.DISABLED),
        ("false", DashboardMode.DISABLED),
    ],
)
def test_the_mode_comes_from_the_app_setting(value: str | None, mode: DashboardMode) -> None:
    settings = {} if value is None else {"DURABLE_EXT_DASHBOARD": value}
    assert dashboard_mode(settings) is mode


def test_a_mode_that_names_none_is_an_error() -> None:
    with pytest.raises(ValueError, match="enabled, read-only or disabled"):
        dashboard_mode({"DURABLE_EXT_DASHBOARD": "maybe"})
