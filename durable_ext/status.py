"""Status types the client returns, shaped like `azure.durable_functions`' ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .orchestration.history import parse_time
from .orchestration.status import OrchestrationRuntimeStatus

__all__ = ["DurableOrchestrationStatus", "PurgeHistoryResult", "format_status_time"]


def format_status_time(value: datetime | None) -> str | None:
    """Whole seconds with `Z`, as the Durable Functions status API writes times."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _sdk_time(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


class DurableOrchestrationStatus:
    """The status of an orchestration instance. A status for a missing instance is falsy."""

    def __init__(
        self,
        name: str | None = None,
        instanceId: str | None = None,  # noqa: N803 - the SDK's keywords
        createdTime: datetime | str | None = None,  # noqa: N803
        lastUpdatedTime: datetime | str | None = None,  # noqa: N803
        input: Any = None,  # noqa: A002
        output: Any = None,
        runtimeStatus: OrchestrationRuntimeStatus | str | None = None,  # noqa: N803
        customStatus: Any = None,  # noqa: N803
        history: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._name = name
        self._instance_id = instanceId
        self._created_time = parse_time(createdTime)
        self._last_updated_time = parse_time(lastUpdatedTime)
        self._input = input
        self._output = output
        self._runtime_status = (
            OrchestrationRuntimeStatus(runtimeStatus)
            if isinstance(runtimeStatus, str)
            else runtimeStatus
        )
        self._custom_status = customStatus
        self._history = history
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __bool__(self) -> bool:
        return self._created_time is not None

    def __repr__(self) -> str:
        status = self._runtime_status.value if self._runtime_status else None
        return f"DurableOrchestrationStatus(instance_id={self._instance_id!r}, runtime_status={status!r})"

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def instance_id(self) -> str | None:
        return self._instance_id

    @property
    def created_time(self) -> datetime | None:
        return self._created_time

    @property
    def last_updated_time(self) -> datetime | None:
        return self._last_updated_time

    @property
    def input_(self) -> Any:
        return self._input

    @property
    def output(self) -> Any:
        return self._output

    @property
    def runtime_status(self) -> OrchestrationRuntimeStatus | None:
        return self._runtime_status

    @property
    def custom_status(self) -> Any:
        return self._custom_status

    @property
    def history(self) -> list[Any] | None:
        return self._history

    @classmethod
    def from_json(cls, json_obj: Any) -> DurableOrchestrationStatus:
        """A status from the status API's JSON (a bare string becomes `.message`, as in the SDK)."""
        if isinstance(json_obj, str):
            return cls(message=json_obj)
        return cls(**json_obj)

    def to_json(self) -> dict[str, Any]:
        """The SDK's `to_json()`: its keys, times as `%Y-%m-%dT%H:%M:%S.%fZ`, the runtime status
        by name (a missing time is None where the SDK raises)."""
        return {
            "name": self._name,
            "instanceId": self._instance_id,
            "createdTime": _sdk_time(self._created_time),
            "lastUpdatedTime": _sdk_time(self._last_updated_time),
            "output": self._output,
            "input": self._input,
            "runtimeStatus": self._runtime_status.name if self._runtime_status else None,
            "customStatus": self._custom_status,
            "history": self._history,
        }

    def to_status_payload(self) -> dict[str, Any]:
        """The status API's JSON shape (whole-second `Z` times; history only when loaded)."""
        body: dict[str, Any] = {
            "name": self._name,
            "instanceId": self._instance_id,
            "runtimeStatus": self._runtime_status.value if self._runtime_status else None,
            "input": self._input,
            "customStatus": self._custom_status,
            "output": self._output,
            "createdTime": format_status_time(self._created_time),
            "lastUpdatedTime": format_status_time(self._last_updated_time),
        }
        if self._history is not None:
            body["historyEvents"] = self._history
        return body


class PurgeHistoryResult:
    """How many instances a purge deleted."""

    def __init__(self, instancesDeleted: int, **kwargs: Any) -> None:  # noqa: N803 - the SDK's keyword
        self._instances_deleted = instancesDeleted
        for key, value in kwargs.items():
            setattr(self, key, value)

    @classmethod
    def from_json(cls, json_obj: dict[Any, Any]) -> PurgeHistoryResult:
        """A result from the purge API's JSON (`{"instancesDeleted": n}`)."""
        return cls(**json_obj)

    @property
    def instances_deleted(self) -> int:
        return self._instances_deleted
