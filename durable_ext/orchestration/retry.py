"""`RetryOptions` with the SDK's constructor and DTFx's full retry policy."""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["RetryOptions"]


class RetryOptions:
    """How often and how long to retry a failed activity or sub-orchestration.

    The first two arguments are the SDK's. The rest follow DTFx `RetryOptions`: the n-th wait is
    `first_retry_interval * backoff_coefficient ** (n - 1)`, capped by `max_retry_interval`; no
    retry starts after `retry_timeout` has passed since the first attempt. Each wait is a durable
    timer.
    """

    def __init__(
        self,
        first_retry_interval_in_milliseconds: int,
        max_number_of_attempts: int,
        backoff_coefficient: float = 1.0,
        max_retry_interval_in_milliseconds: int | None = None,
        retry_timeout_in_milliseconds: int | None = None,
    ) -> None:
        if first_retry_interval_in_milliseconds <= 0:
            raise ValueError("first_retry_interval_in_milliseconds value must be greater than 0.")
        if max_number_of_attempts < 1:
            raise ValueError("max_number_of_attempts must be at least 1.")
        if backoff_coefficient <= 0:
            raise ValueError("backoff_coefficient must be greater than 0.")
        if (
            max_retry_interval_in_milliseconds is not None
            and max_retry_interval_in_milliseconds <= 0
        ):
            raise ValueError("max_retry_interval_in_milliseconds must be greater than 0.")
        if retry_timeout_in_milliseconds is not None and retry_timeout_in_milliseconds <= 0:
            raise ValueError("retry_timeout_in_milliseconds must be greater than 0.")
        self._first_retry_interval_in_milliseconds = first_retry_interval_in_milliseconds
        self._max_number_of_attempts = max_number_of_attempts
        self.backoff_coefficient = backoff_coefficient
        self.max_retry_interval_in_milliseconds = max_retry_interval_in_milliseconds
        self.retry_timeout_in_milliseconds = retry_timeout_in_milliseconds

    @property
    def first_retry_interval_in_milliseconds(self) -> int:
        """Wait before the first retry."""
        return self._first_retry_interval_in_milliseconds

    @property
    def max_number_of_attempts(self) -> int:
        """Attempts in all, the first one included."""
        return self._max_number_of_attempts

    def to_json(self) -> dict[str, int | float]:
        """The SDK's JSON shape, plus the DTFx fields that are set."""
        out: dict[str, int | float] = {
            "firstRetryIntervalInMilliseconds": self.first_retry_interval_in_milliseconds,
            "maxNumberOfAttempts": self.max_number_of_attempts,
        }
        if self.backoff_coefficient != 1.0:
            out["backoffCoefficient"] = self.backoff_coefficient
        if self.max_retry_interval_in_milliseconds is not None:
            out["maxRetryIntervalInMilliseconds"] = self.max_retry_interval_in_milliseconds
        if self.retry_timeout_in_milliseconds is not None:
            out["retryTimeoutInMilliseconds"] = self.retry_timeout_in_milliseconds
        return out

    def next_delay(
        self, failed_attempts: int, first_attempt_at: datetime, now: datetime
    ) -> timedelta | None:
        """The wait before the next attempt, or None when no attempt is left."""
        if failed_attempts >= self.max_number_of_attempts:
            return None
        if self.retry_timeout_in_milliseconds is not None and now >= first_attempt_at + timedelta(
            milliseconds=self.retry_timeout_in_milliseconds
        ):
            return None
        delay_ms = self.first_retry_interval_in_milliseconds * (
            self.backoff_coefficient ** (failed_attempts - 1)
        )
        if self.max_retry_interval_in_milliseconds is not None:
            delay_ms = min(delay_ms, self.max_retry_interval_in_milliseconds)
        return timedelta(milliseconds=delay_ms)
