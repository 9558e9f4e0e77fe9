"""A logger for orchestrator code that stays quiet while the code replays (.NET's
`CreateReplaySafeLogger`): each line is logged once, when its episode first runs."""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from typing import Any

__all__ = ["ReplaySafeLogger"]


class ReplaySafeLogger(logging.LoggerAdapter[logging.Logger]):
    """`logging.LoggerAdapter` whose records are dropped while `is_replaying()` is true.

    Replay checks do not stop repeats caused by running an episode again after a crash or a lost
    lease: those carry the same instance id and a later timestamp.
    """

    def __init__(
        self,
        logger: logging.Logger,
        is_replaying: Callable[[], bool],
        extra: MutableMapping[str, Any] | None = None,
    ) -> None:
        super().__init__(logger, extra or {})
        self._is_replaying = is_replaying

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return not self._is_replaying() and self.logger.isEnabledFor(level)

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        if self.extra:
            kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}
        return msg, kwargs
