"""Table entity values to and from the JSON wire format (`Prop@odata.type` annotations).

Writes store what the Azure SDK stores for the same Python values: str, bool, int (Edm.Int32, or
Edm.Int64 beyond 32 bits), float (Edm.Double), datetime (Edm.DateTime, UTC), bytes (Edm.Binary),
UUID (Edm.Guid). Reads give plain Python values: datetimes are aware UTC datetimes, Int64 values
plain ints, GUIDs strings.
"""

from __future__ import annotations

import base64
import math
from datetime import UTC, datetime
from enum import Enum
from typing import Any
from uuid import UUID

__all__ = ["Entity", "to_wire", "from_wire"]

_INT32 = range(-(2**31), 2**31)
_INT64 = range(-(2**63), 2**63)
_SPECIAL_DOUBLES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class Entity(dict[str, Any]):
    """A table row's properties, with `metadata` holding its `etag` and `timestamp`."""

    def __init__(self, properties: dict[str, Any], metadata: dict[str, Any]) -> None:
        super().__init__(properties)
        self.metadata = metadata


def _double(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def to_wire(entity: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for `entity`; None values are left out. Raises TypeError on other types."""
    wire: dict[str, Any] = {}
    for name, value in entity.items():
        if value is None:
            continue
        if isinstance(value, bool | str):
            wire[name] = value
        elif isinstance(value, Enum):
            wire[name] = str(value.value)
        elif isinstance(value, int):
            if value in _INT32:
                wire[name] = value
            elif value not in _INT64:
                raise TypeError(f"table property {name!r} cannot hold {value} (beyond Edm.Int64)")
            else:
                wire[name] = str(value)
                wire[f"{name}@odata.type"] = "Edm.Int64"
        elif isinstance(value, float):
            wire[name] = _double(value)
            wire[f"{name}@odata.type"] = "Edm.Double"
        elif isinstance(value, datetime):
            utc = value.astimezone(UTC) if value.tzinfo else value
            wire[name] = utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            wire[f"{name}@odata.type"] = "Edm.DateTime"
        elif isinstance(value, bytes):
            wire[name] = base64.b64encode(value).decode()
            wire[f"{name}@odata.type"] = "Edm.Binary"
        elif isinstance(value, UUID):
            wire[name] = str(value)
            wire[f"{name}@odata.type"] = "Edm.Guid"
        else:
            raise TypeError(f"table property {name!r} cannot hold a {type(value).__name__}")
    return wire


def _parse_datetime(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _from_typed(edm: str, value: Any) -> Any:
    if edm == "Edm.DateTime":
        return _parse_datetime(value)
    if edm == "Edm.Int64":
        return int(value)
    if edm == "Edm.Double":
        return _SPECIAL_DOUBLES.get(value, value) if isinstance(value, str) else float(value)
    if edm == "Edm.Binary":
        return base64.b64decode(value)
    return value


def from_wire(wire: dict[str, Any], etag: str | None = None) -> Entity:
    """An entity from its JSON (minimal metadata): typed values, `odata.etag` in metadata."""
    properties: dict[str, Any] = {}
    for name, value in wire.items():
        if name.startswith("odata.") or name.endswith("@odata.type"):
            continue
        edm = wire.get(f"{name}@odata.type")
        properties[name] = _from_typed(edm, value) if edm else value
    timestamp = properties.pop("Timestamp", None)
    if isinstance(timestamp, str):
        timestamp = _parse_datetime(timestamp)
    return Entity(properties, {"etag": wire.get("odata.etag", etag), "timestamp": timestamp})
