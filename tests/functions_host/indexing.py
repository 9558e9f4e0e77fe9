"""Index an imported app as worker and host do: `get_functions()` once, the worker's signature
check (any failure: no functions at all), then the host's per-function checks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from azure.functions import FunctionRegister

from .host_checks import host_errors
from .loader import WorkerIndexingError
from .metadata import IndexedFunction, describe
from .worker_checks import check_signature

__all__ = ["AppIndex", "index_functions"]


@dataclass(frozen=True)
class AppIndex:
    """The functions the host runs, and those it put in error (name → the host's message)."""

    functions: tuple[IndexedFunction, ...]
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> IndexedFunction:
        """The running function called `name` (case-insensitive, as the host)."""
        for fn in self.functions:
            if fn.name.lower() == name.lower():
                return fn
        raise KeyError(name)


def index_functions(register: FunctionRegister, has_bundle: bool) -> AppIndex:
    """Index `register` (calls its `get_functions()` exactly once)."""
    try:
        functions = register.get_functions()
    except Exception as exc:
        raise WorkerIndexingError(f"{type(exc).__name__}: {exc}") from exc
    described = []
    for function in functions:
        name = str(function.get_function_name())
        bindings = [json.loads(raw) for raw in function.get_raw_bindings()]
        try:
            requires_context = check_signature(name, function.get_user_function(), bindings)
        except Exception as exc:  # FunctionLoadError, or get_type_hints' NameError...
            raise WorkerIndexingError(str(exc)) from exc
        described.append(describe(function, requires_context))
    errors = host_errors(described, has_bundle)
    return AppIndex(tuple(fn for fn in described if fn.name not in errors), errors)
