"""Azure Functions route templates (`orders/{id:int}/{rest?}`) as aiohttp routes."""

from __future__ import annotations

import re

__all__ = ["aiohttp_paths", "route_values", "RouteTemplateError"]

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
_LITERAL = "__literal"
"""Name prefix of the match groups that stand for a template's literal segments."""
_PARAMETER = re.compile(r"^\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+)(?:\([^)]*\))?)?(\?)?\}$")


class RouteTemplateError(ValueError):
    """A route template this host cannot serve."""


def _segment(segment: str, index: int) -> tuple[str, bool]:
    """(aiohttp segment, optional?) for one template segment. A literal matches in any case,
    as the Functions host's routes do (a match group named `__literal<index>`)."""
    match = _PARAMETER.match(segment)
    if match is None:
        if "{" in segment or "}" in segment:
            raise RouteTemplateError(f"unsupported route segment {segment!r}")
        return f"{{{_LITERAL}{index}:(?i:{re.escape(segment)})}}", False
    catch_all, name, constraint, optional = match.groups()
    if catch_all:
        return f"{{{name}:.*}}", True
    pattern = _CONSTRAINTS.get(constraint or "", r"[^/]+")
    return f"{{{name}:{pattern}}}", bool(optional)


def aiohttp_paths(prefix: str, template: str) -> list[str]:
    """Every aiohttp path the template matches: optional trailing parameters give several, and
    each also matches with a trailing slash, as in the Functions host."""
    literal_prefix = [p for p in prefix.strip("/").split("/") if p]
    parts = literal_prefix + [p for p in template.strip("/").split("/") if p]
    converted = [_segment(p, i) for i, p in enumerate(parts)]
    base = ""
    paths: list[str] = []
    for keep in range(len(converted), -1, -1):
        path = base + "".join("/" + seg for seg, _ in converted[:keep])
        paths.append(path or "/")
        if keep <= len(literal_prefix) or not converted[keep - 1][1]:
            break
    return paths + [path + "/" for path in paths if not path.endswith("/")]


def route_values(match_info: dict[str, str]) -> dict[str, str]:
    """The route parameters of a match (without the groups that matched literal segments)."""
    return {k: v for k, v in match_info.items() if not k.startswith(_LITERAL)}
