"""The OpenAPI document the package ships (durable_ext/openapi.json, copied to docs/openapi.json)
parses and describes exactly the routes the app serves."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from durable_ext.client import MANAGEMENT_ROUTE, DurableOrchestrationClient
from durable_ext.http_api import INSTANCE_OPERATIONS, create_management_routes
from durable_ext.management_functions import MANAGEMENT_FUNCTIONS

SPEC = files("durable_ext") / "openapi.json"
DOCS_COPY = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def no_client(task_hub: str | None) -> DurableOrchestrationClient:
    raise LookupError(task_hub)


def served_routes() -> set[tuple[str, str]]:
    """(method, path) of every route, with `{operation}` spelled out as the documented names."""
    app = create_management_routes(no_client)
    served: set[tuple[str, str]] = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "*":  # the JSON 404 for everything else
            continue
        if path == "/instances/{instanceId}/{operation}":
            paths = [f"/instances/{{instanceId}}/{op}" for op in INSTANCE_OPERATIONS]
        elif path == "/instances/{instanceId}/{operation}/{eventName}":
            paths = ["/instances/{instanceId}/raiseEvent/{eventName}"]
        else:
            paths = [path]
        served |= {(route.method.lower(), p) for p in paths}
    return served


def function_routes() -> set[tuple[str, str]]:
    """(method, path) of every management function's route (optional segments spelled out)."""
    served: set[tuple[str, str]] = set()
    for _, methods, route, _ in MANAGEMENT_FUNCTIONS:
        segments = route.removeprefix(MANAGEMENT_ROUTE).strip("/").split("/")
        while True:
            path = "/" + "/".join(s.replace("?", "") for s in segments)
            path = path.replace("{operation}/{eventName}", "raiseEvent/{eventName}")
            if path.endswith("/{operation}"):
                paths = [path.replace("{operation}", op) for op in INSTANCE_OPERATIONS]
            else:
                paths = [path]
            served |= {(m.lower(), p) for m in methods for p in paths}
            if not segments[-1].endswith("?}"):
                break
            segments = segments[:-1]
    return served


def documented_routes(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, path) for path, item in spec["paths"].items() for m in item if m in METHODS}


def test_openapi_parses_and_covers_every_route() -> None:
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.0")
    assert documented_routes(spec) == served_routes()


def test_the_management_functions_serve_every_documented_route() -> None:
    """The app's functions have the same routes (the host ignores a trailing slash)."""
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    documented = {(m, p) for m, p in documented_routes(spec) if not p.endswith("/")}
    assert function_routes() == documented


def test_every_operation_documents_its_responses_and_references_resolve() -> None:
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    operation_ids = []
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method in METHODS:
                operation_ids.append(operation["operationId"])
                assert {"401", "404", "500"} <= set(operation["responses"]), operation[
                    "operationId"
                ]
    assert len(operation_ids) == len(set(operation_ids))

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for value in node for r in refs(value)]
        return []

    for ref in refs(spec):
        target: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        assert isinstance(target, dict), ref


def test_the_docs_copy_is_the_shipped_document() -> None:
    assert DOCS_COPY.read_text() == SPEC.read_text(), (
        "docs/openapi.json differs from durable_ext/openapi.json (the source): "
        "cp durable_ext/openapi.json docs/openapi.json"
    )
