"""Route templates (`orders/{id:int}/{name?}`, `files/{*path}`) under `routePrefix`, matched as
ASP.NET routing does for the host: literals case-insensitive, constraints, optional and default
values, catch-all last; routes tried in precedence order (literals before parameters), and a
route whose methods do not include the request's is no match (so a wrong method answers 404)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["Route", "RouteTable", "RouteTemplateError"]

_PARAMETER = re.compile(
    r"^\{(?P<star>\*{1,2})?(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?P<constraints>(?::[a-z]+(?:\([^)]*\))?)*)(?P<optional>\?)?(?:=(?P<default>[^}]*))?\}$"
)
_CONSTRAINT = re.compile(r":([a-z]+)(?:\(([^)]*)\))?")
_PATTERNS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
}


class RouteTemplateError(ValueError):
    """A route template this fake host cannot parse."""


@dataclass(frozen=True)
class _Segment:
    literal: str | None = None
    name: str = ""
    pattern: str = r"[^/]+"
    constrained: bool = False
    optional: bool = False
    default: str | None = None
    catch_all: bool = False


def _segment(text: str) -> _Segment:
    if "{" not in text and "}" not in text:
        return _Segment(literal=text)
    match = _PARAMETER.match(text)
    if match is None:
        raise RouteTemplateError(f"unsupported route segment {text!r}")
    constraints = _CONSTRAINT.findall(match["constraints"] or "")
    pattern = r"[^/]+"
    for kind, argument in constraints:
        if kind == "regex":
            pattern = f"(?:{argument})"
        elif kind in _PATTERNS:
            pattern = _PATTERNS[kind]
    if match["star"]:
        pattern = r".*"
    return _Segment(
        name=match["name"],
        pattern=pattern,
        constrained=bool(constraints),
        optional=bool(match["optional"]) or match["default"] is not None or bool(match["star"]),
        default=match["default"],
        catch_all=bool(match["star"]),
    )


@dataclass(frozen=True)
class Route:
    """One function's route: full template (prefix included), methods and the function's name."""

    template: str
    methods: tuple[str, ...]
    target: Any
    segments: tuple[_Segment, ...]
    regex: re.Pattern[str]

    @classmethod
    def build(cls, prefix: str, template: str, methods: tuple[str, ...], target: Any) -> Route:
        """Compile `template` (the function's route) under `prefix`."""
        parts = [p for p in f"{prefix.strip('/')}/{template.strip('/')}".split("/") if p]
        segments = tuple(_segment(p) for p in parts)
        pattern = ""
        for seg in segments:
            if seg.literal is not None:
                pattern += "/" + re.escape(seg.literal)
            elif seg.optional:
                pattern += f"(?:/(?P<{seg.name}>{seg.pattern}))?"
            else:
                pattern += f"/(?P<{seg.name}>{seg.pattern})"
        regex = re.compile(f"^{pattern or '/'}/?$", re.IGNORECASE)
        return cls("/".join(parts), methods, target, segments, regex)

    @property
    def precedence(self) -> tuple[int, ...]:
        """Lower sorts first: literal < constrained < plain < optional < catch-all, per segment."""
        return tuple(
            1
            if s.literal is not None
            else 5
            if s.catch_all
            else 4
            if s.optional
            else 2
            if s.constrained
            else 3
            for s in self.segments
        )

    def match(self, path: str) -> dict[str, str] | None:
        """Route values for `path` (defaults filled, unmatched optional ones absent), or None."""
        found = self.regex.match(path)
        if found is None:
            return None
        values: dict[str, str] = {}
        for seg in self.segments:
            if seg.literal is None:
                value = found[seg.name]
                if value:
                    values[seg.name] = value
                elif seg.default is not None:
                    values[seg.name] = seg.default
        return values


class RouteTable:
    """All HTTP functions' routes, tried in precedence order."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = sorted(routes, key=lambda r: r.precedence)

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route serving `method path` and its values, or None (the host answers 404)."""
        for route in self.routes:
            if method.upper() not in route.methods:
                continue
            values = route.match(path)
            if values is not None:
                return route, values
        return None
