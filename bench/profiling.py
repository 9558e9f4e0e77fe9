"""Where a profiled run spent its CPU: cProfile's own time summed by area, and the top functions.

The child profiles with `time.thread_time`, so the figures are CPU seconds of the event-loop thread
(waiting in epoll costs nothing); sync activities run on the activity thread pool and are not in it.
The areas are the layers a step crosses: the engine (``durable_ext.<package>``), the Azure SDK
(``azure.core`` pipeline, ``azure.storage`` / ``azure.data.tables`` clients), aiohttp, asyncio's
event loop, request signing, and the rest; C built-ins are put with the layer they serve by name.
"""

from __future__ import annotations

import pstats
from pathlib import Path
from typing import Any

__all__ = ["area_of", "summarize_profile"]

_REPO = str(Path(__file__).resolve().parent.parent) + "/"

_FILE_AREAS = (
    ("/durable_ext/orchestration/", "durable_ext.orchestration (replay)"),
    ("/durable_ext/storage/", "durable_ext.storage"),
    ("/durable_ext/worker/", "durable_ext.worker"),
    ("/durable_ext/", "durable_ext (other)"),
    ("/azure/core/", "azure.core (SDK pipeline)"),
    ("/azure/storage/", "azure.storage (queue/blob SDK)"),
    ("/azure/data/tables/", "azure.data.tables (table SDK)"),
    ("/isodate/", "azure.data.tables (table SDK)"),
    ("/aiohttp/", "aiohttp (HTTP)"),
    ("/yarl/", "aiohttp (HTTP)"),
    ("/multidict/", "aiohttp (HTTP)"),
    ("/asyncio/", "asyncio (event loop)"),
    ("/selectors.py", "asyncio (event loop)"),
    ("/json/", "json"),
    ("/hmac.py", "request signing (hmac, base64)"),
    ("/base64.py", "request signing (hmac, base64)"),
    ("/concurrent/", "threads (activity pool)"),
    ("/threading.py", "threads (activity pool)"),
    ("/logging/", "logging"),
    ("/bench/", "bench (client side)"),
)
_BUILTIN_AREAS = (
    ("select.epoll", "asyncio (event loop)"),
    ("_contextvars", "asyncio (event loop)"),
    ("_asyncio", "asyncio (event loop)"),
    ("_socket", "socket syscalls"),
    ("_ssl", "socket syscalls"),
    ("_queue", "threads (activity pool)"),
    ("_thread", "threads (activity pool)"),
    ("_json", "json"),
    ("json", "json"),
    ("_hashlib", "request signing (hmac, base64)"),
    ("hmac", "request signing (hmac, base64)"),
    ("binascii", "request signing (hmac, base64)"),
    ("datetime", "datetime"),
    ("re.Pattern", "regular expressions"),
    ("_sre", "regular expressions"),
)


def area_of(filename: str, function: str = "") -> str:
    """The area a profiled function belongs to, from its file (or, for built-ins, its name)."""
    for marker, area in _FILE_AREAS:
        if marker in filename:
            return area
    if filename.startswith("~") or filename == "{built-in}":
        for marker, area in _BUILTIN_AREAS:
            if marker in function:
                return area
        return "other built-ins (C)"
    if "/site-packages/" in filename:
        return "other libraries"
    if "/lib/python3" in filename:
        module = filename.split("/lib/python3", 1)[1].split("/", 2)[1]
        return f"stdlib {module.removesuffix('.py')}"
    return "other"


def summarize_profile(path: Path, top: int = 15) -> dict[str, Any]:
    """Own time per area (seconds, share) and the `top` functions by own time."""
    stats = pstats.Stats(str(path))
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    by_area: dict[str, float] = {}
    functions: list[tuple[float, int, str]] = []
    total = 0.0
    for (filename, line, name), (_, calls, own, _cumulative, _) in raw.items():
        area = area_of(filename, name)
        by_area[area] = by_area.get(area, 0.0) + own
        total += own
        short = filename
        for marker in ("/site-packages/", "/lib/python3.11/", _REPO):
            if marker in short:
                short = short.split(marker, 1)[1]
        where = name if filename.startswith("~") else f"{short}:{line}({name})"
        functions.append((own, calls, where))
    functions.sort(reverse=True)
    small = [area for area, seconds in by_area.items() if total and seconds / total < 0.01]
    if len(small) > 1:
        by_area["(areas under 1% each)"] = sum(by_area.pop(area) for area in small)
    return {
        "timer": "thread CPU time of the event-loop thread",
        "total_s": total,
        "by_area": {
            area: {"seconds": seconds, "share": seconds / total if total else 0.0}
            for area, seconds in sorted(by_area.items(), key=lambda kv: -kv[1])
        },
        "top_functions": [
            {"function": where, "own_s": own, "calls": calls}
            for own, calls, where in functions[:top]
        ],
    }
