"""Route precedence and values, and the HTTP output binding's encoding."""

from __future__ import annotations

import pytest

from tests.functions_host.http_conversion import ConversionError, from_return_value
from tests.functions_host.routing import Route, RouteTable


def _table(*templates: str) -> RouteTable:
    return RouteTable([Route.build("api", t, ("GET",), t) for t in templates])


@pytest.mark.parametrize(
    ("path", "template", "values"),
    [
        ("/api/items/new", "items/new", {}),
        ("/api/items/42", "items/{id:int}", {"id": "42"}),
        ("/api/items/abc", "items/{name}", {"name": "abc"}),
        ("/api/files/a/b/c.txt", "files/{*path}", {"path": "a/b/c.txt"}),
        ("/api/pages", "pages/{n=1}", {"n": "1"}),
        ("/api/ITEMS/NEW/", "items/new", {}),
    ],
)
def test_routes_resolve_by_precedence(path: str, template: str, values: dict[str, str]) -> None:
    table = _table("files/{*path}", "items/{name}", "pages/{n=1}", "items/{id:int}", "items/new")
    resolved = table.resolve("GET", path)
    assert resolved is not None
    assert (resolved[0].target, resolved[1]) == (template, values)


def test_a_string_shaped_like_a_response_is_read_as_one() -> None:
    result = from_return_value('{"statusCode": 418, "headers": {"x-a": "b"}, "body": "tea"}')
    assert (result.status, result.headers, result.body) == (418, [("x-a", "b")], b"tea")
    assert from_return_value("plain").status == 200


@pytest.mark.parametrize("value", [None, {"a": 1}, b"bytes"])
def test_other_return_values_cannot_be_encoded(value: object) -> None:
    with pytest.raises(ConversionError):
        from_return_value(value)
