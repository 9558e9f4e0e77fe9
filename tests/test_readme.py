"""The README's example app is real code: it imports, indexes and runs."""

from __future__ import annotations

from pathlib import Path

from durable_ext.host.engine_functions import ENGINE_FUNCTIONS
from durable_ext.management_functions import DASHBOARD_FUNCTION, MANAGEMENT_FUNCTIONS
from durable_ext.testing import run_orchestration

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs() -> None:
    source = README.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(source, "README.md", "exec"), namespace)  # our own README
    app = namespace["app"]
    management = [name for name, *_ in MANAGEMENT_FUNCTIONS]
    names = [f.get_function_name() for f in app.get_functions()]
    assert [name for name in names if name not in ENGINE_FUNCTIONS] == [*management, DASHBOARD_FUNCTION, "http_start"]
    result = run_orchestration(namespace["hello_cities"], activities={"say_hello": namespace["say_hello"]})
    assert result.output == ["Hello Tokyo!", "Hello Seattle!", "Hello London!"]
