"""Azure Functions route templates (`orders/{id:int}/{rest?}`) as aiohttp routes."""

from __future__ import annotations

import re

__all__ = ["aiohttp_paths", "RouteTemplateError"]

_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?i:true|false)",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "datetime": r"[^/]+",
}
_PARAMETER = re.compile(r"^\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+)(?:\([^)]*\))?)?(\?)?\}$")


class RouteTemplateError(ValueError):
    """A route template this host cannot serve."""


def _segment(segment: str) -> tuple[str, bool]:
    """(aiohttp segment, optional?) for one template segment."""
    match = _PARAMETER.match(segment)
    if match is None:
        if "{" in segment or "}" in segment:
            raise RouteTemplateError(f"unsupported route segment {segment!r}")
        return segment, False
    catch_all, name, constraint, optional = match.groups()
    if catch_all:
        return f"{{{name}:.*}}", True
    pattern = _CONSTRAINTS.get(constraint or "", r"[^/]+")
    return f"{{{name}:{pattern}}}", bool(optional)


def aiohttp_paths(prefix: str, template: str) -> list[str]:
    """Every aiohttp path the template matches: optional trailing parameters give several, and
    each also matches with a trailing slash, as in the Functions host."""
    parts = [p for p in template.strip("/").split("/") if p]
    converted = [_segment(p) for p in parts]
    base = "/" + "/".join(p for p in prefix.strip("/").split("/") if p)
    base = "" if base == "/" else base
    paths: list[str] = []
    for keep in range(len(converted), -1, -1):
        path = base + "".join("/" + seg for seg, _ in converted[:keep])
        paths.append(path or "/")
        if keep == 0 or not converted[keep - 1][1]:
            break
    return paths + [path + "/" for path in paths if not path.endswith("/")]
