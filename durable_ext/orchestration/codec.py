"""JSON encoding of orchestration inputs, outputs, events and custom status.

One codec for every payload, encoded once (no double encoding):
- plain JSON types pass through;
- objects with `to_json` / classmethod `from_json` travel in the SDK's envelope
  `{"__class__", "__module__", "__data__"}` so payloads written by `azure-functions-durable` read back;
- dataclasses travel as plain JSON objects and come back as the dataclass when an expected type says so.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from typing import Any

__all__ = ["encode", "decode", "from_plain", "PayloadError"]


class PayloadError(TypeError):
    """A value that cannot be carried as a durable payload."""


def _default(value: Any) -> Any:
    to_json = getattr(type(value), "to_json", None)
    if callable(to_json):
        return {
            "__class__": type(value).__name__,
            "__module__": type(value).__module__,
            "__data__": to_json(value),
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise PayloadError(
        f"Object of type {type(value).__name__} is not JSON serializable: pass JSON types "
        "(dict, list, str, int, float, bool, None), a dataclass, or a class with "
        "to_json()/from_json()."
    )


def encode(value: Any) -> str:
    """JSON text for a payload; raises `PayloadError` naming the offending type."""
    try:
        return json.dumps(value, default=_default, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        raise PayloadError(f"Value is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise PayloadError("Value is nested too deeply (or contains a cycle) to encode") from exc


def _object_hook(obj: dict[str, Any]) -> Any:
    if "__class__" in obj and "__module__" in obj and "__data__" in obj and len(obj) == 3:
        module = sys.modules.get(obj["__module__"])
        cls = getattr(module, obj["__class__"], None) if module is not None else None
        from_json = getattr(cls, "from_json", None)
        if from_json is None:
            raise PayloadError(
                f"Cannot rebuild {obj['__module__']}.{obj['__class__']}: the class is not "
                "imported or has no from_json()"
            )
        return from_json(obj["__data__"])
    return obj


def decode(text: str | None, expected_type: type | None = None) -> Any:
    """The value of JSON text (None for None/empty), converted to `expected_type` when given."""
    if text is None or text == "":
        return None
    value = json.loads(text, object_hook=_object_hook)
    return from_plain(value, expected_type) if expected_type is not None else value


def from_plain(value: Any, expected_type: Any) -> Any:
    """Convert decoded JSON to `expected_type` (dataclasses, from_json classes, containers)."""
    if value is None or expected_type is None or expected_type is Any:
        return value
    origin = typing.get_origin(expected_type)
    if origin is not None:
        args = typing.get_args(expected_type)
        if origin in (list, tuple, set, frozenset) and isinstance(value, list) and args:
            return origin(from_plain(item, args[0]) for item in value)
        if origin is dict and isinstance(value, dict) and len(args) == 2:
            return {key: from_plain(item, args[1]) for key, item in value.items()}
        if origin in (typing.Union, types.UnionType):
            for arg in args:
                if arg is not type(None):
                    return from_plain(value, arg)
        return value
    if not isinstance(expected_type, type) or isinstance(value, expected_type):
        return value
    if dataclasses.is_dataclass(expected_type) and isinstance(value, dict):
        hints = typing.get_type_hints(expected_type)
        names = {f.name for f in dataclasses.fields(expected_type) if f.init}
        return expected_type(
            **{k: from_plain(v, hints.get(k)) for k, v in value.items() if k in names}
        )
    from_json = getattr(expected_type, "from_json", None)
    if callable(from_json):
        return from_json(value)
    return value
