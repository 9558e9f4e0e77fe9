"""Reading the Bicep in infra/ through pycep-parser, for tests/infra/.

pycep turns a file into JSON: parameters, variables, resources, modules and outputs. Identifiers and
string literals both come out as plain strings (`principalId: identityPrincipalId` and
`principalType: 'ServicePrincipal'` look alike), so the tests check names against the file's own
parameters, variables and resources. `a.b.c` comes out as nested property accessors; `dotted`
flattens them back.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[2] / "infra"


@cache
def bicep(relative: str) -> dict[str, Any]:
    """The parsed file `infra/<relative>`."""
    return BicepParser().parse(file_path=INFRA / relative)


def bicep_files() -> list[Path]:
    """Every Bicep file under infra/."""
    return sorted(INFRA.rglob("*.bicep"))


def dotted(node: Any) -> Any:
    """`a.b.c` for a chain of property accessors; any other node unchanged."""
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        operands = node["operator"]["operands"]
        return f"{dotted(operands['operand_1'])}.{dotted(operands['operand_2'])}"
    return node


def conditional(node: Any) -> tuple[Any, Any, Any]:
    """(condition, value if true, value if false) of `condition ? a : b`."""
    operator = node["operator"]
    assert operator["type"] == "conditional", node
    operands = operator["operands"]
    return operands["condition"], operands["true_value"], operands["false_value"]


def function_call(node: Any) -> tuple[str, dict[str, Any]]:
    """(pycep's function type, its parameters) of a function call."""
    return node["function"]["type"], node["function"].get("parameters") or {}


def resources_of_type(parsed: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """The file's resources of one type, by symbolic name."""
    return {
        name: resource
        for name, resource in parsed.get("resources", {}).items()
        if resource["type"] == resource_type
    }


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's or module's body, inside any `if (...)` or `[for ...]` wrapper."""
    config = resource["config"]
    if "condition" in config or "loop_type" in config:
        return config["config"]
    return config


def parameter_default(parsed: dict[str, Any], name: str) -> Any:
    """The default value of a parameter (it must exist)."""
    return parsed["parameters"][name]["default"]


def decorator(parsed: dict[str, Any], parameter: str, kind: str) -> Any:
    """The argument of a parameter's decorator (`secure` gives True), or None without it."""
    for found in parsed["parameters"][parameter]["decorators"]:
        if found["type"] == kind:
            return found.get("argument", True)
    return None


def app_settings(variable_value: list[dict[str, Any]]) -> dict[str, Any]:
    """`[{name, value}, ...]` (a site's appSettings) as a dict, names unique."""
    names = [entry["name"] for entry in variable_value]
    assert len(names) == len(set(names)), names
    return {entry["name"]: dotted(entry["value"]) for entry in variable_value}


def strings(node: Any) -> Iterator[str]:
    """Every string anywhere in a parsed tree, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
