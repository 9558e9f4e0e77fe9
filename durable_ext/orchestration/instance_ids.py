"""Instance id rules shared by the client and orchestrations that name their sub-orchestrations."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["validate_instance_id", "MAX_INSTANCE_ID_LENGTH"]

MAX_INSTANCE_ID_LENGTH = 256
_INVALID_ID_CHARS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")


def validate_instance_id(instance_id: Any) -> str:
    """The id, if it is a usable instance id (1–256 characters, none of `/ \\ # ?`, no controls)."""
    if not isinstance(instance_id, str) or not instance_id:
        raise ValueError("Instance ID must be a non-empty string.")
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        raise ValueError(
            f"Instance ID is {len(instance_id)} characters; the limit is {MAX_INSTANCE_ID_LENGTH}."
        )
    bad = _INVALID_ID_CHARS.search(instance_id)
    if bad:
        raise ValueError(
            f"Instance ID {instance_id!r} contains the invalid character {bad.group()!r}."
        )
    try:
        instance_id.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"Instance ID {instance_id!r} is not valid Unicode text ({exc.reason})."
        ) from exc
    if instance_id.startswith("@"):
        raise ValueError("Instance IDs starting with '@' are reserved for entities.")
    return instance_id
