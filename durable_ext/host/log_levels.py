"""host.json `logging.logLevel`, applied to Python's loggers.

Categories name loggers, as .NET categories do; Python matches a logger and its dotted children
(`durable_ext` covers `durable_ext.worker`), case-sensitively. Durable Functions' own categories
map onto ours: `Host.Triggers.DurableTask` is the tracking events' logger, `DurableTask.Core` the
engine (`durable_ext`) and `DurableTask.AzureStorage` its storage loggers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

__all__ = ["ENGINE_LOGGER", "STORAGE_LOGGERS", "apply_log_levels", "loggers_for"]

ENGINE_LOGGER = "durable_ext"
STORAGE_LOGGERS = ("durable_ext.queues", "durable_ext.history", "durable_ext.payloads",
                   "durable_ext.leases")  # fmt: skip
_ALIASES = {
    "durabletask.core": (ENGINE_LOGGER,),
    "durabletask.azurestorage": STORAGE_LOGGERS,
}


def loggers_for(category: str) -> tuple[str, ...]:
    """The Python loggers a host.json category sets."""
    return _ALIASES.get(category.lower(), (category,))


def apply_log_levels(levels: Mapping[str, int], *, include_default: bool) -> None:
    """Set each category's level; `default` sets the root logger only with `include_default`
    (the local host owns the process; in Azure the Python worker does). `DurableTask.Core` is
    applied before the storage categories, so the more specific one wins."""
    ordered = sorted(levels.items(), key=lambda item: item[0].lower() != "durabletask.core")
    for category, level in ordered:
        if category.lower() == "default":
            if include_default:
                logging.getLogger().setLevel(level)
            continue
        for name in loggers_for(category):
            logging.getLogger(name).setLevel(level)
