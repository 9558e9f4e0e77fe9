"""The engines the suite compares, behind one small synchronous interface (`Engine`).

- `durable_ext` (ours): `durable_ext.Runtime` — worker and client in one process — on the
  bench's private Azurite;
- `durable_ext_http`: the same app served by `durable-ext start` (a host process) and driven
  over HTTP as users drive it (`engines/http_host.py`);
- `dbos`: DBOS Transact with a SQLite system database (steps in-process, a durable queue for the
  fan-out, workflows for HelloCities, ``DBOS.send``/``DBOS.recv`` for events);
- `durabletask`: Microsoft's durabletask Python SDK against its in-memory test backend (gRPC on
  loopback, no storage at all): an upper bound for the programming model.

Each engine module imports its framework only when the engine is created, so the suite runs (and
reports why) when a peer is not installed.
"""

from __future__ import annotations

import importlib.util

from .base import ActivityClock, Engine, Outcome

__all__ = ["ENGINES", "ActivityClock", "Engine", "Outcome", "missing_reason"]

ENGINES = ("durable_ext", "durable_ext_http", "dbos", "durabletask")
_PACKAGES = {
    "durable_ext": "durable_ext",
    "durable_ext_http": "aiohttp",
    "dbos": "dbos",
    "durabletask": "durabletask.testing",
}


def missing_reason(engine: str) -> str | None:
    """Why an engine cannot run here (its package is not importable), or None."""
    module = _PACKAGES[engine]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if found:
        return None
    return (
        f"the Python package providing `{module}` is not installed in this environment "
        "(install the bench extra: pip install -e '.[bench]')"
    )
