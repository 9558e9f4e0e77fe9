"""Import a function app the way the Python worker does (`loader.index_function_app`).

The script (`PYTHON_SCRIPT_FILE_NAME`, default `function_app.py`) is imported as a top-level module
from the app folder, which goes first on `sys.path`; the module's one `FunctionRegister` is the app.
A package of the same name in the app folder wins over the script, as for any import.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from azure.functions import FunctionRegister

__all__ = ["WorkerIndexingError", "imported_app"]

DEFAULT_SCRIPT_FILE = "function_app.py"
_SCRIPT_NAME = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9_\-]*\.py$")


class WorkerIndexingError(RuntimeError):
    """The worker could not index the app: the host runs it with no functions at all."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"Worker failed to index functions: {cause}")
        self.cause = cause


def _find_register(module: ModuleType, script: str) -> FunctionRegister:
    found: FunctionRegister | None = None
    for name in dir(module):
        value = getattr(module, name, None)
        if isinstance(value, FunctionRegister):
            if found is not None:
                raise WorkerIndexingError(
                    f"More than one {type(found).__name__} or other top level function app "
                    "instances are defined."
                )
            found = value
    if found is None:
        raise WorkerIndexingError(f"Could not find top level function app instances in {script}.")
    return found


def _evict(stem: str) -> dict[str, ModuleType]:
    evicted = {
        name: module
        for name, module in sys.modules.items()
        if name == stem or name.startswith(stem + ".")
    }
    for name in evicted:
        del sys.modules[name]
    return evicted


@contextmanager
def imported_app(app_dir: Path, script: str) -> Iterator[tuple[ModuleType, FunctionRegister]]:
    """Import the app module from `app_dir`; undo the import (sys.path, sys.modules) on exit."""
    if not _SCRIPT_NAME.match(script):
        raise WorkerIndexingError(f"{script!r} is not a valid PYTHON_SCRIPT_FILE_NAME")
    stem = script.removesuffix(".py")
    if not (app_dir / script).is_file():
        raise WorkerIndexingError(
            f"No {script} in {app_dir}: the worker would fall back to function.json indexing, "
            "which this fake host does not model"
        )
    saved = _evict(stem)
    sys.path.insert(0, str(app_dir))
    sys.path_importer_cache.clear()
    try:
        try:
            module = importlib.import_module(stem)
        except ImportError as exc:
            raise WorkerIndexingError(
                f"{type(exc).__name__}: {exc}. Cannot find module. Please check the "
                "requirements.txt file for the missing module. For more info, please refer the "
                "troubleshooting guide: https://aka.ms/functions-modulenotfound. Current "
                f"sys.path: {sys.path}"
            ) from exc
        except Exception as exc:
            raise WorkerIndexingError(f"{type(exc).__name__}: {exc}") from exc
        yield module, _find_register(module, script)
    finally:
        sys.path.remove(str(app_dir))
        _evict(stem)
        sys.modules.update(saved)
