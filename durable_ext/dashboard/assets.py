"""The dashboard page and its scripts and styles, served from the package (no CDN, no fonts).

The files are public: they hold no data. Everything the page shows it reads from the management
API with the system key the user gives it, so a caller without the key sees an empty shell. The
app setting `DURABLE_EXT_DASHBOARD` turns it off or makes it read-only (the page then offers no
actions; the API itself still takes them from whoever has the key).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.resources import files

from ..settings import get_app_setting

__all__ = ["DASHBOARD_SETTING", "DashboardMode", "AssetResponse", "dashboard_mode", "asset_response"]

DASHBOARD_SETTING = "DURABLE_EXT_DASHBOARD"
STATIC = files(__package__) / "static"
CONTENT_TYPES = {
    ".html": "text/html",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
ASSETS = ("index.html", "app.mjs", "logic.mjs", "style.css", "favicon.svg")
SECURITY_HEADERS = {
    # Only the page's own files and the API on the same origin: nothing from elsewhere.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class DashboardMode(enum.Enum):
    """What the dashboard offers (the app setting `DURABLE_EXT_DASHBOARD`)."""

    ENABLED = "enabled"
    READ_ONLY = "read-only"
    DISABLED = "disabled"


_MODES = {
    "": DashboardMode.ENABLED,
    "enabled": DashboardMode.ENABLED,
    "true": DashboardMode.ENABLED,
    "read-only": DashboardMode.READ_ONLY,
    "readonly": DashboardMode.READ_ONLY,
    "disabled": DashboardMode.DISABLED,
    "false": DashboardMode.DISABLED,
}


def dashboard_mode(settings: Mapping[str, str]) -> DashboardMode:
    """The mode the app settings ask for; ValueError for a value that names none."""
    value = (get_app_setting(settings, DASHBOARD_SETTING) or "").strip().lower()
    try:
        return _MODES[value]
    except KeyError:
        raise ValueError(
            f"{DASHBOARD_SETTING} must be enabled, read-only or disabled, not {value!r}"
        ) from None


@dataclass(frozen=True, slots=True)
class AssetResponse:
    """What to answer for one dashboard request."""

    status: int
    body: bytes
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)


def asset_response(path: str, query: str, asset: str | None, mode: DashboardMode) -> AssetResponse:
    """The answer to `GET {path}?{query}`, where `asset` is the file named after `dashboard/`
    (None or empty: the page). The page's own URL ends with a slash, so its files resolve
    next to it: without one, a redirect adds it (keeping the query, which may carry the key)."""
    if mode is DashboardMode.DISABLED:
        return AssetResponse(404, b"The dashboard is disabled (DURABLE_EXT_DASHBOARD).")
    name = asset or "index.html"
    if name not in ASSETS:
        return AssetResponse(404, b"No such dashboard file.")
    if not asset and not path.endswith("/"):
        location = path + "/" + (f"?{query}" if query else "")
        return AssetResponse(301, b"", headers={"Location": location})
    body = (STATIC / name).read_bytes()
    if name == "index.html" and mode is DashboardMode.READ_ONLY:
        body = body.replace(b'data-read-only="false"', b'data-read-only="true"', 1)
    content_type = CONTENT_TYPES[name[name.rindex(".") :]]
    return AssetResponse(200, body, content_type, dict(SECURITY_HEADERS))
