"""How figures and tables are written on the report's page and chart."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ENGINE_LABELS", "num", "pct", "table"]

ENGINE_LABELS = {
    "durable_ext": "durable_ext (Azurite)",
    "dbos": "DBOS (SQLite)",
    "durabletask": "durabletask (in-memory)",
}


def num(value: float | None, digits: int = 1, suffix: str = "") -> str:
    """A figure with as many decimals as its size deserves; a dash when not measured."""
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}{suffix}"
    if abs(value) >= 100:
        return f"{value:.0f}{suffix}"
    return f"{value:.{digits}f}{suffix}"


def pct(value: float | None) -> str:
    """A share as a whole percentage; a dash when not measured."""
    return "—" if value is None else f"{value * 100:.0f}%"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
