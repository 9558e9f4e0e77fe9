"""Import a function app the way the Python worker does and find its one FunctionRegister."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from azure.functions import FunctionRegister

from ..compatibility import V1_MODEL_MESSAGE

__all__ = ["load_app", "AppLoadError", "DEFAULT_SCRIPT_FILE"]

DEFAULT_SCRIPT_FILE = "function_app.py"


class AppLoadError(RuntimeError):
    """The app module is missing, fails to import, or has no single FunctionRegister."""


def load_app(app_root: Path, script_file: str | None = None) -> FunctionRegister:
    """Import `function_app.py` (or PYTHON_SCRIPT_FILE_NAME) from `app_root`; its FunctionRegister."""
    script = script_file or os.environ.get("PYTHON_SCRIPT_FILE_NAME") or DEFAULT_SCRIPT_FILE
    path = app_root / script
    package = app_root / Path(script).stem / "__init__.py"
    if not path.is_file() and not package.is_file():
        if any(app_root.glob("*/function.json")):
            raise AppLoadError(f"No {script} in {app_root}. {V1_MODEL_MESSAGE}")
        raise AppLoadError(f"No {script} in {app_root}: run this in a function app's root folder")
    root = str(app_root)
    if root not in sys.path:
        sys.path.insert(0, root)
    module_name = path.stem
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise AppLoadError(f"Importing {path} failed: {type(exc).__name__}: {exc}") from exc
    registers = [v for v in vars(module).values() if isinstance(v, FunctionRegister)]
    if len(registers) != 1:
        raise AppLoadError(
            f"{path} must define exactly one function app (DFApp or FunctionApp); found {len(registers)}"
        )
    return registers[0]
