"""The sample app as the Azure Functions Python worker indexes it."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from durable_ext.host.engine_functions import ENGINE_FUNCTIONS
from durable_ext.management_functions import DASHBOARD_FUNCTION, MANAGEMENT_FUNCTIONS
from tests.sample_app.host_process import REPO_ROOT
from tests.sample_app.indexing import (
    assert_host_sees_only_native_bindings,
    index_like_the_python_worker,
)


def test_import_function_app_resolves_to_the_package() -> None:
    module = importlib.import_module("function_app")
    assert Path(module.__file__ or "") == REPO_ROOT / "function_app" / "__init__.py"


def test_the_root_shim_is_valid_python_that_re_exports_the_app() -> None:
    tree = ast.parse((REPO_ROOT / "function_app.py").read_text())
    assert ast.get_docstring(tree)
    imports = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert [(i.module, [a.name for a in i.names]) for i in imports] == [("function_app", ["app"])]


def test_the_host_sees_only_http_functions_with_their_bindings() -> None:
    functions = index_like_the_python_worker(importlib.import_module("function_app"))
    assert_host_sees_only_native_bindings(functions)
    assert sorted(str(f.get_function_name()) for f in functions) == sorted(
        ["http_start", "http_start_and_wait", "start_cleanup", "add_to_counter", "read_counter"]
        + list(ENGINE_FUNCTIONS)
        + [name for name, *_ in MANAGEMENT_FUNCTIONS]
        + [DASHBOARD_FUNCTION]
    )


def test_every_pattern_is_registered_with_the_worker() -> None:
    app = importlib.import_module("function_app").app
    assert sorted(app.durable_registry.orchestrator_names) == [
        "approval_workflow",
        "counter_orchestration",
        "fan_out_fan_in",
        "hello_sequence",
        "job_monitor",
        "periodic_cleanup",
        "transfer",
        "transfer_funds",
    ]
    assert sorted(app.durable_registry.entity_names) == ["Account", "Counter"]
