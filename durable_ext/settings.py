"""host.json and app settings, read the way the Durable Functions extension reads them.

`load_durable_task_settings` turns `extensions.durableTask` of host.json into a frozen
`DurableTaskSettings` with the extension's defaults. Keys are case-insensitive, as in .NET
configuration; unknown keys are ignored; every invalid value raises `SettingsError` naming the
full setting path and the value. App settings come from local.settings.json `Values` with
environment variables taking precedence, as Azure Functions Core Tools does.

`AzureFunctionsJobHost__path__to__setting` app settings override host.json values as the Functions
host applies them (`effective_host_json`); every loader here applies them, so `durable-ext start`,
the management commands and the embedded engine see the same settings. `read_app_host_json` is
the host.json policy of the embedded engine: in Azure a missing or unreadable host.json is a
`HostJsonError`, never a silent switch to the default task hub.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from .orchestration.executor import ReplayOptions

__all__ = [
    "DurableTaskSettings",
    "HostJson",
    "HostJsonError",
    "HttpSettings",
    "SettingsError",
    "app_settings",
    "effective_host_json",
    "format_timespan",
    "get_app_setting",
    "load_durable_task_settings",
    "load_host_json",
    "load_http_settings",
    "load_log_levels",
    "load_local_settings",
    "parse_timespan",
    "read_app_host_json",
    "running_in_azure",
]

_log = logging.getLogger(__name__)

DEFAULT_HUB_NAME = "TestHubName"
DEFAULT_CONNECTION_NAME = "AzureWebJobsStorage"
HUB_NAME_MIN = 3
HUB_NAME_MAX = 45
# Azure Queues refuse a visibility timeout or delay over 7 days.
QUEUE_VISIBILITY_MAX = timedelta(days=7)

_HUB_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_APP_SETTING_REF_RE = re.compile(r"%([^%]+)%")
# .NET TimeSpan.Parse (invariant culture): `d`, `[d.]h:mm[:ss[.fffffff]]` or `d:h:mm:ss[.fffffff]`.
_TIMESPAN_PATTERNS = (
    re.compile(r"(?P<d>\d{1,8})"),
    re.compile(
        r"(?:(?P<d>\d{1,8})\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2})(?::(?P<s>\d{1,2})(?:\.(?P<f>\d{1,7}))?)?"
    ),
    re.compile(r"(?P<d>\d{1,8}):(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2})(?:\.(?P<f>\d{1,7}))?"),
)


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the setting and what to do."""


class HostJsonError(SettingsError):
    """host.json is missing, unreadable or not a JSON object: `path` is the file, `cause` why."""

    def __init__(self, path: Path, cause: str) -> None:
        super().__init__(f"{path}: {cause}")
        self.path = path
        self.cause = cause


def _default_concurrency() -> int:
    """The extension's default for both concurrency limits: 10 x processor count."""
    return 10 * (os.cpu_count() or 1)


_REPLAY = ReplayOptions()
"""The engine's own defaults for the timer settings."""


def default_worker_id() -> str:
    """Host name and process id: DTFx uses the machine name alone, but several worker
    processes on one machine must not share an id."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class DurableTaskSettings:
    """The `extensions.durableTask` settings this package uses, with the extension's defaults.

    `lease_*` are DTFx settings with no host.json key in Durable Functions, and
    `max_timer_duration`/`long_timer_interval` are this package's own (the longest timer
    delay one queue message carries, and the leg length of longer chained timers), as is
    `scale_signal_interval` (how often the embedded engine measures the backlog for the
    platform, `host.scale_signal`). All can be set under `extensions.durableTask.durableExt`.
    """

    hub_name: str = DEFAULT_HUB_NAME
    connection_name: str = DEFAULT_CONNECTION_NAME
    partition_count: int = 4
    control_queue_batch_size: int = 32
    control_queue_buffer_threshold: int = 256
    control_queue_visibility_timeout: timedelta = timedelta(minutes=5)
    work_item_queue_visibility_timeout: timedelta = timedelta(minutes=5)
    max_queue_polling_interval: timedelta = timedelta(seconds=30)
    max_concurrent_activity_functions: int = field(default_factory=_default_concurrency)
    max_concurrent_orchestrator_functions: int = field(default_factory=_default_concurrency)
    lease_interval: timedelta = timedelta(seconds=30)
    lease_renew_interval: timedelta = timedelta(seconds=10)
    lease_acquire_interval: timedelta = timedelta(seconds=10)
    extended_sessions_enabled: bool = False
    extended_session_idle_timeout: timedelta = timedelta(seconds=30)
    trace_inputs_and_outputs: bool = False
    trace_replay_events: bool = False
    distributed_tracing: bool = False
    """`tracing.distributedTracingEnabled` with `tracing.version` V2: OpenTelemetry spans."""
    default_version: str = ""
    version_match_strategy: str = "CurrentOrOlder"
    version_failure_strategy: str = "Reject"
    overridable_existing_instance_states: str = "NonRunningStates"
    http_async_sleep: timedelta = timedelta(milliseconds=30000)
    max_timer_duration: timedelta = _REPLAY.maximum_timer_duration
    long_timer_interval: timedelta = _REPLAY.long_timer_interval
    scale_signal_interval: timedelta = timedelta(seconds=10)
    worker_id: str = field(default_factory=default_worker_id)
    use_legacy_partition_management: bool = False
    """Blob leases in `{hub}-leases` instead of the `{Hub}Partitions` table (docs/reliability.md)."""
    partition_table_operation_timeout: timedelta = timedelta(seconds=2)
    use_app_lease: bool = True
    app_lease_interval: timedelta = timedelta(seconds=60)
    app_lease_renew_interval: timedelta = timedelta(seconds=25)
    app_lease_acquire_interval: timedelta = timedelta(seconds=300)


VERSION_MATCH_STRATEGIES = ("None", "Strict", "CurrentOrOlder")
VERSION_FAILURE_STRATEGIES = ("Reject", "Fail")


@dataclass(frozen=True)
class HttpSettings:
    """`extensions.http` settings: the route prefix of the app's HTTP functions."""

    route_prefix: str = "api"


# -- TimeSpan --------------------------------------------------------------------------------


def parse_timespan(text: str) -> timedelta:
    """Parse a .NET TimeSpan string (`[-][d.]hh:mm:ss[.fffffff]`, `d:hh:mm:ss`, `hh:mm` or a
    bare number of days, as `TimeSpan.Parse` accepts). Raises ValueError if it is not one."""
    stripped = text.strip()
    negative = stripped.startswith("-")
    body = stripped[1:] if negative else stripped
    for pattern in _TIMESPAN_PATTERNS:
        match = pattern.fullmatch(body)
        if match is None:
            continue
        parts = match.groupdict()
        hours, minutes, seconds = (int(parts.get(unit) or 0) for unit in ("h", "m", "s"))
        if hours > 23 or minutes > 59 or seconds > 59:
            break
        ticks = int((parts.get("f") or "").ljust(7, "0"))  # 100 ns units
        value = timedelta(
            days=int(parts["d"] or 0),
            hours=hours,
            minutes=minutes,
            seconds=seconds,
            microseconds=ticks // 10,
        )
        return -value if negative else value
    raise ValueError(f"not a TimeSpan: {text!r}")


def format_timespan(value: timedelta) -> str:
    """Format like .NET's TimeSpan.ToString(): `[-][d.]hh:mm:ss[.fffffff]`."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    days = f"{value.days}." if value.days else ""
    fraction = f".{value.microseconds * 10:07d}" if value.microseconds else ""
    return f"{sign}{days}{hours:02d}:{minutes:02d}:{seconds:02d}{fraction}"


# -- reading host.json -----------------------------------------------------------------------


def _show(value: Any) -> str:
    return json.dumps(value)


class _Section:
    """One object of host.json, read with case-insensitive keys; JSON null counts as unset.
    `overrides` (lower-case path -> app setting name) says which values came from app settings."""

    def __init__(
        self, values: Mapping[str, Any], path: str, overrides: Mapping[str, str] | None = None
    ) -> None:
        self._values = {key.lower(): value for key, value in values.items()}
        self._keys = {key.lower(): key for key in values}
        self.path = path
        self._overrides = overrides or {}

    @classmethod
    def root(cls, host_json: Mapping[str, Any] | None, settings: Mapping[str, str]) -> _Section:
        """host.json with the app setting overrides applied."""
        effective = effective_host_json(host_json, settings)
        return cls(effective, "", effective.overrides)

    def _child(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def setting(self, key: str) -> str:
        """Where the value of `key` comes from: its host.json path or the app setting."""
        name = self._overrides.get(self._child(key).lower())
        return f"app setting {name}" if name else f"host.json: {self._child(key)}"

    def get(self, key: str) -> Any:
        return self._values.get(key.lower())

    def items(self) -> list[tuple[str, Any]]:
        """The keys (as written) and values of this object."""
        return [(self._keys[key], value) for key, value in self._values.items()]

    def section(self, key: str) -> _Section:
        value = self.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise SettingsError(f"{self.setting(key)} must be an object, got {_show(value)}")
        return _Section(value or {}, self._child(key), self._overrides)

    def string(self, key: str, default: str) -> str:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise SettingsError(f"{self.setting(key)} must be a string, got {_show(value)}")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        """One of `choices`, matched case-insensitively as .NET binds an enum."""
        value = self.string(key, default)
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
        raise SettingsError(
            f"{self.setting(key)} must be one of {', '.join(choices)}, got {_show(value)}"
        )

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise SettingsError(f"{self.setting(key)} must be true or false, got {_show(value)}")

    def integer(self, key: str, default: int, low: int, high: int | None = None) -> int:
        value = self.get(key)
        if value is None:
            return default
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            number = int(value)
        if number is None or number < low or (high is not None and number > high):
            bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise SettingsError(
                f"{self.setting(key)} must be an integer {bounds}, got {_show(value)}"
            )
        return number

    def timespan(
        self,
        key: str,
        default: timedelta,
        low: timedelta | None = None,
        high: timedelta | None = None,
    ) -> timedelta:
        """A TimeSpan setting: greater than zero, at least `low`, at most `high`."""
        value = self.get(key)
        if value is None:
            return default
        # .NET configuration sees a JSON number as its text, and TimeSpan.Parse("5") is 5 days.
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        span: timedelta | None = None
        if isinstance(text, str):
            try:
                span = parse_timespan(text)
            except ValueError:
                span = None
        in_range = (
            span is not None
            and span > timedelta(0)
            and (low is None or span >= low)
            and (high is None or span <= high)
        )
        if span is None or not in_range:
            bounds = f"from {format_timespan(low)}" if low else "greater than 00:00:00"
            if high is not None:
                bounds += f" {'to' if low else 'and at most'} {format_timespan(high)}"
            raise SettingsError(
                f"{self.setting(key)} must be a TimeSpan ([d.]hh:mm:ss[.fffffff]) {bounds}, "
                f"got {_show(value)}"
            )
        return span


def get_app_setting(settings: Mapping[str, str], name: str) -> str | None:
    """An app setting as .NET configuration finds it: exact name first, then ignoring case,
    with `__` and `:` as the same section separator. None when unset or empty."""
    value = settings.get(name)
    if not value:
        wanted = name.replace("__", ":").lower()
        value = next(
            (v for k, v in settings.items() if v and k.replace("__", ":").lower() == wanted),
            None,
        )
    return value or None


# -- AzureFunctionsJobHost__* app settings -----------------------------------------------------

# The Functions host loads host.json under the configuration section `AzureFunctionsJobHost`
# (one key per value, array items by index) and the environment variables after it, so
# `AzureFunctionsJobHost__a__b` (or `AzureFunctionsJobHost:a:b`) replaces host.json's `a.b`, with
# keys compared ignoring case (azure-functions-host `HostJsonFileConfigurationSource`;
# azure-webjobs-sdk `ConfigureWebJobs` adds the environment variables last).
_JOB_HOST_SECTION = "azurefunctionsjobhost"


class HostJson(dict[str, Any]):
    """host.json as the Functions host sees it: the file with the `AzureFunctionsJobHost__*` app
    settings applied. `overrides` maps each overridden path (lower case, `.`-separated, e.g.
    `extensions.durabletask.hubname`) to the app setting that set it."""

    def __init__(self, values: Mapping[str, Any], overrides: Mapping[str, str]) -> None:
        super().__init__(values)
        self.overrides: dict[str, str] = dict(overrides)


class _IndexedArray(dict[str, Any]):
    """A host.json array, keyed by item index while overrides are applied to it."""


@dataclass(frozen=True)
class _Override:
    name: str
    path: tuple[str, ...]
    value: str


def _job_host_overrides(settings: Mapping[str, str]) -> list[_Override]:
    """The non-empty `AzureFunctionsJobHost__*` app settings, one per host.json path."""
    found: dict[tuple[str, ...], _Override] = {}
    for name in sorted(settings):
        value = settings[name]
        section, _, rest = name.replace("__", ":").partition(":")
        if section.lower() != _JOB_HOST_SECTION or not rest or not value:
            continue
        path = tuple(rest.split(":"))
        if "" in path:
            raise SettingsError(f"app setting {name}: the host.json path has an empty key")
        other = found.get(key := tuple(part.lower() for part in path))
        if other is not None and other.value != value:
            raise SettingsError(
                f"app settings {other.name} and {name} set host.json {'.'.join(path)} to "
                f"different values ({_show(other.value)} and {_show(value)})"
            )
        found[key] = _Override(name, path, value)
    return list(found.values())


def _key_in(node: Mapping[str, Any], key: str) -> str:
    """The key of `node` equal to `key` ignoring case, else `key` itself."""
    return next((existing for existing in node if existing.lower() == key.lower()), key)


def _apply_override(document: dict[str, Any], override: _Override) -> None:
    node = document
    for depth, part in enumerate(override.path):
        if isinstance(node, _IndexedArray) and not part.isdecimal():
            raise SettingsError(
                f"app setting {override.name}: host.json {'.'.join(override.path[:depth])} is "
                f"an array, and {part!r} is not an item index"
            )
        key = _key_in(node, part)
        child = node.get(key)
        if depth == len(override.path) - 1:
            if isinstance(child, Mapping | list):
                raise SettingsError(
                    f"app setting {override.name}: host.json {'.'.join(override.path)} is an "
                    f"{'object' if isinstance(child, Mapping) else 'array'}; set its items "
                    f"({override.name}__<{'key' if isinstance(child, Mapping) else 'index'}>) "
                    "instead"
                )
            node[key] = override.value
        elif isinstance(child, list):
            node[key] = _IndexedArray({str(index): item for index, item in enumerate(child)})
        elif isinstance(child, Mapping):
            node[key] = dict(child) if not isinstance(child, dict) else child
        else:
            node[key] = {}  # an absent, null or scalar value: the override's keys make an object
        node = node[key]


def _restore_arrays(value: Any) -> Any:
    """Indexed arrays back to JSON arrays, items ordered by index (as .NET binds `a:0`, `a:5`)."""
    if not isinstance(value, dict):
        return value
    items = {key: _restore_arrays(item) for key, item in value.items()}
    if isinstance(value, _IndexedArray):
        return [items[key] for key in sorted(items, key=int)]
    return items


def effective_host_json(
    host_json: Mapping[str, Any] | None, app_settings: Mapping[str, str] | None = None
) -> HostJson:
    """host.json with the `AzureFunctionsJobHost__*` app settings applied, as the Functions host
    applies them: `__` (or `:`) separates keys, keys match ignoring case, an array item is set by
    its index (an index past the end appends), values stay strings (each setting parses its
    string as the host does: "true", "10", "00:00:30"), app settings win over host.json, and an
    empty value is ignored. A HostJson is returned as it is (its overrides are applied)."""
    if isinstance(host_json, HostJson):
        return host_json
    document: dict[str, Any] = copy.deepcopy(dict(host_json or {}))
    overrides = _job_host_overrides(app_settings or {})
    for override in overrides:
        _apply_override(document, override)
    return HostJson(
        _restore_arrays(document), {".".join(o.path).lower(): o.name for o in overrides}
    )


def _resolve_app_setting_refs(text: str, setting: str, settings: Mapping[str, str]) -> str:
    """Replace each `%NAME%` in `text` with the app setting NAME."""

    def replace(match: re.Match[str]) -> str:
        value = get_app_setting(settings, match.group(1))
        if value is None:
            raise SettingsError(
                f"{setting} refers to app setting {match.group(1)!r} ({match.group(0)}), "
                "which is not set"
            )
        return value

    return _APP_SETTING_REF_RE.sub(replace, text)


def _sanitized_hub_name(site_name: str) -> str:
    """The extension's default hub name from an app name: letters and digits only, a `t` in
    front of a leading digit, at most 45 characters, padded with `Hub` below 3."""
    name = "".join(char for char in site_name if char.isascii() and char.isalnum())
    if not name:
        return "DefaultTaskHub"
    if name[0].isdigit():
        name = "t" + name
    name = name[:HUB_NAME_MAX]
    return name + "Hub" if len(name) < HUB_NAME_MIN else name


def _hub_name(durable: _Section, settings: Mapping[str, str]) -> str:
    """The configured hub name, validated; else the extension's default for this app."""
    setting = durable.setting("hubName")
    if durable.get("hubName") is None:
        slot = get_app_setting(settings, "WEBSITE_SLOT_NAME")
        if slot is not None and slot.lower() != "production":
            raise SettingsError(
                f"{setting} must be set when running in a deployment slot "
                f"(WEBSITE_SLOT_NAME is {slot!r}), so that slots do not share a task hub"
            )
        site_name = get_app_setting(settings, "WEBSITE_SITE_NAME")
        return _sanitized_hub_name(site_name) if site_name else DEFAULT_HUB_NAME
    raw = durable.string("hubName", DEFAULT_HUB_NAME)
    hub_name = _resolve_app_setting_refs(raw, setting, settings)
    valid = _HUB_NAME_RE.fullmatch(hub_name) and HUB_NAME_MIN <= len(hub_name) <= HUB_NAME_MAX
    if not valid:
        shown = _show(hub_name) + (f" (from {_show(raw)})" if raw != hub_name else "")
        raise SettingsError(
            f"{setting} must contain only letters and digits, start with a letter and be "
            f"{HUB_NAME_MIN} to {HUB_NAME_MAX} characters long, got {shown}"
        )
    return hub_name


def _connection_name(storage: _Section) -> str:
    for key in ("connectionName", "connectionStringName"):
        name = storage.string(key, "").strip()
        if name:
            return name
    return DEFAULT_CONNECTION_NAME


def load_durable_task_settings(
    host_json: Mapping[str, Any] | None, app_settings: Mapping[str, str] | None = None
) -> DurableTaskSettings:
    """Read `extensions.durableTask` of host.json, with the `AzureFunctionsJobHost__*` overrides
    and `%NAME%` app setting references in `hubName`, into settings with the Durable Functions
    defaults."""
    settings = app_settings or {}
    durable = _Section.root(host_json, settings).section("extensions").section("durableTask")
    storage = durable.section("storageProvider")
    tracing = durable.section("tracing")
    extras = durable.section("durableExt")
    defaults = DurableTaskSettings()

    provider = storage.string("type", "AzureStorage")
    if provider.lower() != "azurestorage":
        raise SettingsError(
            f'{storage.setting("type")} must be "AzureStorage" (the only storage provider '
            f"this package implements), got {_show(provider)}"
        )
    lease_interval = extras.timespan("leaseInterval", defaults.lease_interval)
    lease_renew_interval = extras.timespan("leaseRenewInterval", defaults.lease_renew_interval)
    if lease_renew_interval >= lease_interval:
        raise SettingsError(
            f"{extras.setting('leaseRenewInterval')} must be shorter than "
            f"{extras.path}.leaseInterval ({format_timespan(lease_interval)}), "
            f"got {_show(format_timespan(lease_renew_interval))}"
        )
    max_timer_duration = extras.timespan(
        "maxTimerDuration", defaults.max_timer_duration, high=QUEUE_VISIBILITY_MAX
    )
    app_lease = durable.section("appLeaseOptions")
    return DurableTaskSettings(
        hub_name=_hub_name(durable, settings),
        connection_name=_connection_name(storage),
        partition_count=storage.integer("partitionCount", defaults.partition_count, 1, 16),
        control_queue_batch_size=storage.integer(
            "controlQueueBatchSize", defaults.control_queue_batch_size, 1, 32
        ),
        control_queue_buffer_threshold=storage.integer(
            "controlQueueBufferThreshold", defaults.control_queue_buffer_threshold, 1, 1000
        ),
        control_queue_visibility_timeout=storage.timespan(
            "controlQueueVisibilityTimeout",
            defaults.control_queue_visibility_timeout,
            timedelta(minutes=1),
            timedelta(minutes=60),
        ),
        work_item_queue_visibility_timeout=storage.timespan(
            "workItemQueueVisibilityTimeout",
            defaults.work_item_queue_visibility_timeout,
            high=QUEUE_VISIBILITY_MAX,
        ),
        max_queue_polling_interval=storage.timespan(
            "maxQueuePollingInterval", defaults.max_queue_polling_interval
        ),
        max_concurrent_activity_functions=durable.integer(
            "maxConcurrentActivityFunctions", defaults.max_concurrent_activity_functions, 1
        ),
        max_concurrent_orchestrator_functions=durable.integer(
            "maxConcurrentOrchestratorFunctions", defaults.max_concurrent_orchestrator_functions, 1
        ),
        lease_interval=lease_interval,
        lease_renew_interval=lease_renew_interval,
        lease_acquire_interval=extras.timespan(
            "leaseAcquireInterval", defaults.lease_acquire_interval
        ),
        extended_sessions_enabled=durable.boolean(
            "extendedSessionsEnabled", defaults.extended_sessions_enabled
        ),
        extended_session_idle_timeout=timedelta(
            seconds=durable.integer(
                "extendedSessionIdleTimeoutInSeconds",
                int(defaults.extended_session_idle_timeout.total_seconds()),
                0,
            )
        ),
        trace_inputs_and_outputs=tracing.boolean(
            "traceInputsAndOutputs", defaults.trace_inputs_and_outputs
        ),
        trace_replay_events=tracing.boolean("traceReplayEvents", defaults.trace_replay_events),
        distributed_tracing=_distributed_tracing(tracing),
        default_version=durable.string("defaultVersion", defaults.default_version),
        version_match_strategy=durable.choice(
            "versionMatchStrategy", defaults.version_match_strategy, VERSION_MATCH_STRATEGIES
        ),
        version_failure_strategy=durable.choice(
            "versionFailureStrategy", defaults.version_failure_strategy, VERSION_FAILURE_STRATEGIES
        ),
        overridable_existing_instance_states=durable.choice(
            "overridableExistingInstanceStates",
            defaults.overridable_existing_instance_states,
            ("NonRunningStates", "AnyState"),
        ),
        http_async_sleep=timedelta(
            milliseconds=durable.section("httpSettings").integer(
                "defaultAsyncRequestSleepTimeMilliseconds",
                int(defaults.http_async_sleep.total_seconds() * 1000),
                0,
            )
        ),
        max_timer_duration=max_timer_duration,
        long_timer_interval=extras.timespan(
            "longTimerInterval", defaults.long_timer_interval, high=max_timer_duration
        ),
        scale_signal_interval=extras.timespan(
            "scaleSignalInterval", defaults.scale_signal_interval
        ),
        worker_id=defaults.worker_id,
        use_legacy_partition_management=_legacy_partition_management(storage),
        partition_table_operation_timeout=storage.timespan(
            "partitionTableOperationTimeout", defaults.partition_table_operation_timeout
        ),
        use_app_lease=durable.boolean("useAppLease", defaults.use_app_lease),
        app_lease_interval=app_lease.timespan(
            "leaseInterval",
            defaults.app_lease_interval,
            timedelta(seconds=15),
            timedelta(seconds=60),
        ),
        app_lease_renew_interval=app_lease.timespan(
            "renewInterval", defaults.app_lease_renew_interval
        ),
        app_lease_acquire_interval=app_lease.timespan(
            "acquireInterval", defaults.app_lease_acquire_interval
        ),
    )


_TRACING_VERSIONS = ("none", "v1", "v2")


def _distributed_tracing(tracing: _Section) -> bool:
    """Whether OpenTelemetry spans are on: `distributedTracingEnabled` and `version` V2 (V1, the
    legacy correlation protocol, is not implemented: asking for it is an error, not silence)."""
    enabled = tracing.boolean("distributedTracingEnabled", False)
    version = tracing.string("version", "V2" if enabled else "None")
    if version.lower() not in _TRACING_VERSIONS:
        raise SettingsError(
            f'{tracing.setting("version")} must be "V2", "V1" or "None", got {_show(version)}'
        )
    if enabled and version.lower() == "v1":
        raise SettingsError(
            f'{tracing.setting("version")} "V1" (the legacy correlation protocol) is not '
            'supported; use "V2" (OpenTelemetry spans)'
        )
    return enabled and version.lower() == "v2"


_LOG_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "information": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "none": logging.CRITICAL + 10,
}


def load_log_levels(
    host_json: Mapping[str, Any] | None, app_settings: Mapping[str, str] | None = None
) -> dict[str, int]:
    """host.json `logging.logLevel` as Python levels by category (`default` included as
    given); .NET's names (Trace ... Critical, None) are accepted in any case."""
    section = _Section.root(host_json, app_settings or {}).section("logging").section("logLevel")
    levels: dict[str, int] = {}
    for category, value in section.items():
        text = section.string(category, "")
        level = _LOG_LEVELS.get(text.strip().lower())
        if level is None:
            names = ", ".join(name.title() for name in _LOG_LEVELS)
            raise SettingsError(
                f"{section.setting(category)} must be one of {names}, got {_show(value)}"
            )
        levels[category] = level
    return levels


def _legacy_partition_management(storage: _Section) -> bool:
    """DTFx's choice of partition manager: the table manager unless `useTablePartitionManagement`
    is false and `useLegacyPartitionManagement` true (or only the latter is set). The "safe"
    blob manager (both false) is not implemented."""
    legacy = storage.boolean("useLegacyPartitionManagement", False)
    table = storage.boolean("useTablePartitionManagement", not legacy)
    if table and legacy:
        raise SettingsError(
            f"{storage.setting('useTablePartitionManagement')} and "
            f"{storage.setting('useLegacyPartitionManagement')} cannot both be true"
        )
    if not table and not legacy:
        raise SettingsError(
            f"{storage.setting('useTablePartitionManagement')} is false: durable_ext implements "
            "the table partition manager and the legacy one (useLegacyPartitionManagement: "
            'true), not DTFx\'s "safe" blob manager'
        )
    return legacy


def load_http_settings(
    host_json: Mapping[str, Any] | None, app_settings: Mapping[str, str] | None = None
) -> HttpSettings:
    """Read `extensions.http.routePrefix` (default "api"; "" serves functions at the root),
    with the `AzureFunctionsJobHost__*` overrides."""
    http = _Section.root(host_json, app_settings or {}).section("extensions").section("http")
    return HttpSettings(route_prefix=http.string("routePrefix", "api").strip().strip("/"))


# -- files and the environment ---------------------------------------------------------------


def _read_json_object(path: Path, error: Callable[[Path, str], SettingsError]) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise error(path, f"cannot read the file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(path, f"not UTF-8 text (bad byte at offset {exc.start})") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
    if not isinstance(document, dict):
        raise error(path, f"must contain a JSON object, got {type(document).__name__}")
    return document


def _settings_file_error(path: Path, cause: str) -> SettingsError:
    return SettingsError(f"{path}: {cause}")


def load_host_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed host.json; HostJsonError if it is missing, unreadable or not a JSON object."""
    host_json = Path(path)
    if not host_json.exists():
        raise HostJsonError(
            host_json, "host.json not found (the function app root must contain one)"
        )
    return _read_json_object(host_json, HostJsonError)


_AZURE_MARKERS = ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME", "WEBSITE_POD_NAME")


def running_in_azure(app_settings: Mapping[str, str]) -> bool:
    """Whether these are the app settings of a function app in Azure, by the variables the
    Functions host checks: WEBSITE_INSTANCE_ID (App Service plans: Dedicated, Elastic Premium,
    Windows Consumption), WEBSITE_POD_NAME (Flex Consumption), WEBSITE_SKU=FlexConsumption, and
    WEBSITE_SITE_NAME, which every plan sets. Not CONTAINER_NAME alone: the host reads it on Linux
    Consumption, where WEBSITE_SITE_NAME is set too, but any container runtime may set it (a
    devcontainer running `durable-ext start` is not Azure)."""
    if any(app_settings.get(name) for name in _AZURE_MARKERS):
        return True
    return app_settings.get("WEBSITE_SKU", "").lower() == "flexconsumption"


def read_app_host_json(path: str | os.PathLike[str], app_settings: Mapping[str, str]) -> HostJson:
    """The effective host.json of an app run by the Functions host (the embedded engine).

    An unreadable or invalid file is a HostJsonError; so is a missing one in Azure
    (`running_in_azure`), where the defaults would silently run another task hub than the app's.
    Locally a missing file gives the defaults, with a warning naming the task hub they use.
    """
    host_json = Path(path)
    if host_json.exists():
        return effective_host_json(load_host_json(host_json), app_settings)
    if running_in_azure(app_settings):
        raise HostJsonError(
            host_json,
            "host.json not found; in Azure the app must deploy the host.json of its root "
            "(it names the task hub: the defaults would run the app on another one)",
        )
    effective = effective_host_json({}, app_settings)
    hub_name = load_durable_task_settings(effective, app_settings).hub_name
    _log.warning("%s not found: using the default settings, with task hub %r", host_json, hub_name)
    return effective


def load_local_settings(path: str | os.PathLike[str]) -> dict[str, str]:
    """The `Values` of local.settings.json as strings; {} if the file does not exist."""
    local_settings = Path(path)
    if not local_settings.exists():
        return {}
    document = _read_json_object(local_settings, _settings_file_error)
    if document.get("IsEncrypted") is True:
        raise SettingsError(
            f"{local_settings}: the values are encrypted (IsEncrypted is true); "
            "run `func settings decrypt` first"
        )
    values = document.get("Values")
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise SettingsError(f"{local_settings}: Values must be an object, got {_show(values)}")
    result: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, str):
            result[name] = value
        elif isinstance(value, bool | int | float):
            result[name] = json.dumps(value)
        elif value is not None:
            raise SettingsError(
                f"{local_settings}: Values.{name} must be a string, got {type(value).__name__}"
            )
    return result


def app_settings(
    local_values: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """App settings as a local host sees them: local.settings.json `Values`, overridden by
    environment variables (Core Tools only sets values that the environment lacks)."""
    return {**local_values, **(os.environ if environ is None else environ)}
