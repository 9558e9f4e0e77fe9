"""What `durable-ext start` prints: one readable line per tracking event, as Core Tools prints
one per function execution, and the engine's own messages.

A tracking event's line is its Durable Functions message without the fields every event repeats
(hub, app, slot, version, sequence number, state, runtime status, `IsReplay: False`):
`[12:00:01.250] 51d38904…: Function 'echo (Activity)' completed. Output: (Redacted 3 characters)`.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from ..tracking import TRACKING_CATEGORY

__all__ = ["ConsoleFormatter", "configure_console"]

_REPEATED = re.compile(
    r"\.? (?:IsReplay|State|RuntimeStatus|ContinuedAsNew): \{(?:isReplay|state|runtimeStatus|"
    r"continuedAsNew)\}\.?"
)
_TAIL = ". HubName: {hubName}"
_NOISY = ("azure", "aiohttp.access")


_INFORMATION_TAIL = ". InstanceId: {instanceId}. Function: {functionName}"


def _short_template(template: str) -> str:
    head = template.split(_TAIL, 1)[0].replace(_INFORMATION_TAIL, "")
    return _REPEATED.sub(".", head).rstrip(".").replace("..", ".")


class ConsoleFormatter(logging.Formatter):
    """Tracking events shortened; everything else as `[time] logger: message`."""

    def __init__(self) -> None:
        super().__init__("[%(asctime)s.%(msecs)03d] %(name)s: %(message)s", "%H:%M:%S")
        self._templates: dict[str, str] = {}

    def format(self, record: logging.LogRecord) -> str:
        if record.name != TRACKING_CATEGORY:
            return super().format(record)
        template: str = getattr(record, "prop__{OriginalFormat}", "")
        short = self._templates.get(template)
        if short is None:
            short = self._templates[template] = _short_template(template)
        values = {k[6:]: v for k, v in vars(record).items() if k.startswith("prop__")}
        text = short.format_map(_Missing(values))
        if values.get("continuedAsNew") == "True":
            text += " (continued as new)"
        if values.get("isReplay") == "True":
            text += " (replay)"
        stamp = f"[{self.formatTime(record, '%H:%M:%S')}.{int(record.msecs):03d}]"
        return f"{stamp} {text}"


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "(null)"


def configure_console(level: int, stream: TextIO | None = None) -> None:
    """Print the engine's messages and tracking events at `level` and above (the chatty Azure SDK
    and access logs only from WARNING, unless `level` is DEBUG)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(
            logging.DEBUG if level <= logging.DEBUG else logging.WARNING
        )
