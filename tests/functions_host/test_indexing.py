"""Indexing as worker and host do: metadata from the raw bindings, and what each refuses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.functions_host import FakeHost, HostFunctionError, WorkerIndexingError
from tests.functions_host.conftest import APPS
from tests.functions_host.host_checks import host_errors
from tests.functions_host.metadata import ALL_METHODS, IndexedFunction

SETTINGS = {"TICK_SCHEDULE": "0 */5 * * * *"}


async def test_the_rules_app_is_indexed_from_its_bindings() -> None:
    environment = dict(os.environ)
    async with FakeHost(APPS / "rules", app_settings=SETTINGS) as host:
        seen = {
            fn.name: (fn.trigger_type, fn.route, fn.methods, fn.auth_level, fn.requires_context)
            for fn in host.index.functions
            if fn.trigger_type == "httpTrigger"
        }
        tick = host.index.get("tick")
        assert host.register is not None
        with pytest.raises(ValueError, match="does not have a unique function name"):
            host.register.get_functions()  # the library allows one call: the host made it
        assert os.environ["AzureWebJobsScriptRoot"] == str(APPS / "rules")  # noqa: SIM112
    assert seen == {
        "hello": ("httpTrigger", "hello", ("GET",), "anonymous", True),
        "order": ("httpTrigger", "orders/{id:int}/{part?}", ("GET", "POST"), "function", False),
        "reset": ("httpTrigger", "manage/reset", ("POST",), "admin", False),
        "broken": ("httpTrigger", "broken", ALL_METHODS, "anonymous", False),
    }
    assert (tick.trigger_type, tick.schedule, tick.trigger_name) == (
        "timerTrigger",
        "%TICK_SCHEDULE%",
        "timer",
    )
    assert dict(os.environ) == environment


async def test_reserved_and_conflicting_routes_are_refused_with_the_host_messages() -> None:
    with pytest.raises(HostFunctionError) as refused:
        async with FakeHost(APPS / "refused"):
            pass
    assert refused.value.errors == {
        "status": "The specified route conflicts with one or more built in routes.",
        "tools": "The specified route conflicts with one or more built in routes.",
        "add_item": "The route specified conflicts with the route defined by function 'list_items'.",
    }
    assert "The 'status' function is in error: The specified route conflicts" in str(refused.value)


async def test_the_host_still_serves_the_functions_not_in_error(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeHost(APPS / "refused", allow_function_errors=True) as host:
        assert [fn.name for fn in host.index.functions] == ["list_items"]
        async with http.get(host.url("items")) as ok:
            assert (ok.status, await ok.text()) == (200, "items")
        async with http.get(
            f"{host.base_url}/api/runtime/webhooks/durabletask/instances/x"
        ) as gone:
            assert gone.status == 404


async def test_a_binding_parameter_mismatch_fails_the_whole_app() -> None:
    with pytest.raises(WorkerIndexingError) as failed:
        async with FakeHost(APPS / "mismatch"):
            pass
    assert str(failed.value) == (
        "Worker failed to index functions: cannot load the mismatch function: the following "
        "parameters are declared in Python but not in the function definition (function.json or "
        "function decorators):  {'request'}"
    )


async def test_duplicate_function_names_fail_the_whole_app(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.function_name('same')\n"
        "@app.route(route='a')\n"
        "def a(req): ...\n"
        "@app.function_name('same')\n"
        "@app.route(route='b')\n"
        "def b(req): ...\n"
    )
    with pytest.raises(WorkerIndexingError, match="Function same does not have a unique"):
        async with FakeHost(tmp_path):
            pass


async def test_an_app_without_function_app_instance_fails(tmp_path: Path) -> None:
    (tmp_path / "function_app.py").write_text("import azure.functions as func\n")
    with pytest.raises(WorkerIndexingError, match="Could not find top level function app"):
        async with FakeHost(tmp_path):
            pass


def _fn(name: str, bindings: list[dict[str, Any]]) -> IndexedFunction:
    return IndexedFunction(name, "", tuple(bindings), print, "", False, False)


HTTP: dict[str, Any] = {"type": "httpTrigger", "name": "req", "direction": "IN", "route": "x"}


@pytest.mark.parametrize(
    ("functions", "expected"),
    [
        (
            [_fn("Hello", [HTTP]), _fn("hello", [{**HTTP, "route": "y"}])],
            {"hello": "The function or proxy name 'hello' must be unique within the function app."},
        ),
        ([_fn("1st", [HTTP])], {"1st": "'1st' is not a valid function name."}),
        ([_fn("host", [HTTP])], {"host": "'host' is not a valid function name."}),
        (
            [_fn("dup", [HTTP, {"type": "http", "name": "req", "direction": "OUT"}])],
            {"dup": "Multiple bindings with name 'req' discovered. Binding names must be unique."},
        ),
        (
            [_fn("bad", [{**HTTP, "name": "my-req"}])],
            {
                "bad": "The binding name my-req is invalid. Please assign a valid name to the binding. "
                "See https://aka.ms/azure-functions-binding-name-rules for more details."
            },
        ),
        (
            [_fn("q", [{"type": "queueTrigger", "name": "msg", "direction": "IN"}])],
            {
                "q": "The binding type(s) 'queueTrigger' are not registered. Please ensure the type is "
                "correct and the binding extension is installed."
            },
        ),
        (
            [_fn("notrigger", [{"type": "blob", "name": "b", "direction": "IN"}])],
            {
                "notrigger": "No trigger binding specified. A function must have a trigger input binding."
            },
        ),
    ],
)
def test_host_checks(functions: list[IndexedFunction], expected: dict[str, str]) -> None:
    assert host_errors(functions, has_bundle=False) == expected
