"""Table keys and OData filters built from user text (DTFx `KeySanitation`), never spliced raw."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["escape_key", "unescape_key", "odata_string", "odata_datetime", "prefix_range"]

_ESCAPE = {"^": "^^", "/": "^0", "\\": "^1", "#": "^2", "?": "^3"}
_UNESCAPE = {"^": "^", "0": "/", "1": "\\", "2": "#", "3": "?"}


def _is_control(char: str) -> bool:
    code = ord(char)
    return code <= 0x1F or 0x7F <= code <= 0x9F


def escape_key(instance_id: str) -> str:
    """The PartitionKey for an instance id: `^ / \\ # ?` and control characters escaped with `^`."""
    out = []
    for char in instance_id:
        if char in _ESCAPE:
            out.append(_ESCAPE[char])
        elif _is_control(char):
            out.append("^" + chr(0xC0 + ord(char)))
        else:
            out.append(char)
    return "".join(out)


def unescape_key(key: str) -> str:
    """The instance id of a PartitionKey."""
    out = []
    chars = iter(key)
    for char in chars:
        if char != "^":
            out.append(char)
            continue
        code = next(chars, "")
        if code in _UNESCAPE:
            out.append(_UNESCAPE[code])
        elif code and ord(code) >= 0xC0:
            out.append(chr(ord(code) - 0xC0))
        else:
            out.append("^" + code)
    return "".join(out)


def odata_string(value: str) -> str:
    """An OData string literal: single-quoted, inner quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def odata_datetime(value: datetime) -> str:
    """An OData datetime literal in UTC (naive datetimes are taken as UTC)."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return "datetime'" + utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + "'"


def prefix_range(column: str, prefix: str) -> str:
    """A filter for `column` starting with `prefix` (a key range, safe for any characters)."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1) if prefix else ""
    if not upper:
        return ""
    return f"{column} ge {odata_string(prefix)} and {column} lt {odata_string(upper)}"
