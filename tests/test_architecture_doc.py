"""docs/architecture.md stays the true map: it names every module of the package (and nothing
else), and the layers it draws hold (a module imports only from its own layer or below)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "durable_ext"
DOC = ROOT / "docs" / "architecture.md"

HOSTING = ("host", "app", "management_functions", "http_api", "dashboard")
CLIENT = ("client", "status", "history_view", "runtime", "testing", "hub_clients", "entity_client")
SHARED = (
    "settings",
    "clock",
    "fault_points",
    "tracking",
    "tracing",
    "azure_monitor",
    "compatibility",
    "",
)
LAYERS = {"orchestration": 0, "storage": 1, "worker": 2, "client": 3, "hosting": 4}


def modules() -> dict[str, Path]:
    """Module path relative to the package (`worker/options.py`) → file."""
    return {str(p.relative_to(PACKAGE)): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str | None:
    """The layer of a dotted module name inside the package (None: shared by all)."""
    top = module.split(".")[0]
    if module in SHARED or top in SHARED:
        return None
    if top in HOSTING:
        return "hosting"
    if module in CLIENT:
        return "client"
    return top


def imported(path: Path) -> set[str]:
    """Package modules `path` imports (dotted, relative to the package)."""
    dotted = str(path.relative_to(PACKAGE).with_suffix("")).replace("/", ".")
    package = dotted.split(".")[:-1]  # a module's package; for __init__.py, the package itself
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            elif node.module and node.module.startswith("durable_ext"):
                target = node.module.removeprefix("durable_ext").lstrip(".")
            else:
                continue
            found.add(target)
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("durable_ext").lstrip(".")
                for a in node.names
                if a.name.startswith("durable_ext")
            }
    return found


def test_the_doc_lists_every_module_and_only_those() -> None:
    listed = set(re.findall(r"^- `([\w/]+\.py)`: \S", DOC.read_text(), flags=re.MULTILINE))
    assert listed == set(modules())


@pytest.mark.parametrize("module", sorted(modules()))
def test_a_module_imports_only_its_own_layer_or_below(module: str) -> None:
    dotted = module.removesuffix(".py").removesuffix("__init__").rstrip("/").replace("/", ".")
    own = layer(dotted)
    if own is None:
        return
    for target in imported(modules()[module]):
        other = layer(target)
        assert other is None or LAYERS[other] <= LAYERS[own], (
            f"{module} ({own}) imports {target} ({other})"
        )
