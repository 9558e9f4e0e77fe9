"""Worker tuning, with DTFx / Durable Functions defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta

from ..orchestration.executor import ReplayOptions
from ..orchestration.versioning import VersioningPolicy
from ..settings import DurableTaskSettings, default_worker_id
from ..storage.app_lease import default_app_name
from .http_activity import CredentialFactory

__all__ = ["WorkerOptions"]


_HOST_JSON = DurableTaskSettings()
"""The host.json defaults (one home: `settings.DurableTaskSettings`)."""


@dataclass(slots=True)
class WorkerOptions:
    """How a worker polls, leases and runs work (see docs/configuration.md). Options with a
    host.json setting default to that setting's default."""

    partition_count: int = _HOST_JSON.partition_count
    control_queue_batch_size: int = _HOST_JSON.control_queue_batch_size
    control_queue_buffer_threshold: int = _HOST_JSON.control_queue_buffer_threshold
    control_queue_visibility_timeout: timedelta = _HOST_JSON.control_queue_visibility_timeout
    work_item_queue_visibility_timeout: timedelta = _HOST_JSON.work_item_queue_visibility_timeout
    max_queue_polling_interval: timedelta = _HOST_JSON.max_queue_polling_interval
    max_concurrent_activity_functions: int = _HOST_JSON.max_concurrent_activity_functions
    max_concurrent_orchestrator_functions: int = _HOST_JSON.max_concurrent_orchestrator_functions
    max_storage_operation_concurrency: int = 25 * (os.cpu_count() or 1)
    """Storage operations (outbound sends, inbound deletes and abandons) this worker runs at once
    (DTFx `MaxStorageOperationConcurrency`; not a host.json setting in Durable Functions)."""
    lease_interval: timedelta = _HOST_JSON.lease_interval
    lease_renew_interval: timedelta = _HOST_JSON.lease_renew_interval
    lease_acquire_interval: timedelta = _HOST_JSON.lease_acquire_interval
    worker_id: str = field(default_factory=default_worker_id)
    use_legacy_partition_management: bool = _HOST_JSON.use_legacy_partition_management
    """Own partitions through blob leases (DTFx V1) instead of the `{Hub}Partitions` table."""
    partition_table_operation_timeout: timedelta = _HOST_JSON.partition_table_operation_timeout
    drain_timeout: timedelta = timedelta(seconds=60)
    """How long a partition being handed over waits for its episodes in flight (DTFx: 60 s)."""
    use_app_lease: bool = _HOST_JSON.use_app_lease
    app_name: str = field(default_factory=default_app_name)
    """Workers of one app share the app lease (`WEBSITE_SITE_NAME`, else `DTFX_APP_NAME`)."""
    app_lease_interval: timedelta = _HOST_JSON.app_lease_interval
    app_lease_renew_interval: timedelta = _HOST_JSON.app_lease_renew_interval
    app_lease_acquire_interval: timedelta = _HOST_JSON.app_lease_acquire_interval
    replay: ReplayOptions = field(default_factory=ReplayOptions)
    shutdown_timeout: timedelta = timedelta(seconds=30)
    instance_cache_size: int = 1000
    """Replayed orchestrations kept in memory between episodes (0 turns the cache off)."""
    instance_cache_idle_timeout: timedelta = _HOST_JSON.extended_session_idle_timeout
    in_process_handoff: bool = True
    """Run work this process sends to itself without a queue receive (messages are still written)."""
    client_handoff: bool = True
    """With `in_process_handoff`: what this process's client sends to an instance whose
    partition this worker owns (start, event, terminate, suspend, resume, entity signal) is
    written held and processed from memory, without a receive; off: sent visible and received."""
    status_read_max_age: timedelta = timedelta(seconds=1)
    """A client status read (`get_status`, `raise_event`'s check, the HTTP status endpoint) in
    this process of an instance this worker owns is answered from the row last read when no
    write by this process touched it since, and that read is at most this old (the bound on
    seeing a create or purge by a client elsewhere). 0: every status read goes to storage."""
    handoff_hold: timedelta = timedelta(seconds=30)
    """How long a handed-off message stays invisible to other workers (renewed while it waits or
    runs): after a crash, the longest its work waits to be picked up again."""
    instance_status_refresh: timedelta = timedelta(seconds=10)
    """While an orchestration runs with an unchanged runtime and custom status, a checkpoint skips
    its Instances merge unless the last one is this old (so LastUpdatedTime lags by at most this);
    any visible change, a new execution or the end is merged at once. 0: merge every checkpoint."""
    trace_inputs_and_outputs: bool = _HOST_JSON.trace_inputs_and_outputs
    """Tracking events show inputs and outputs (else `(Redacted N characters)`)."""
    trace_replay_events: bool = _HOST_JSON.trace_replay_events
    """Tracking events of replayed steps are logged too (`replay.observe_replay` notes them)."""
    distributed_tracing: bool = _HOST_JSON.distributed_tracing
    """OpenTelemetry spans (`tracing.distributedTracingEnabled`, version V2)."""
    versioning: VersioningPolicy = field(default_factory=VersioningPolicy)
    """Which orchestration versions this worker runs (`defaultVersion`, `versionMatchStrategy`,
    `versionFailureStrategy`)."""
    replace_running_instances: bool = False
    """`start_new` may replace a Pending, Running or Suspended instance (host.json
    `overridableExistingInstanceStates` AnyState)."""
    http_credential: CredentialFactory | None = None
    """Makes the credential for `call_http` token sources (None: DefaultAzureCredential)."""
    entity_message_reorder_window: timedelta = timedelta(minutes=30)
    """How long an entity remembers the requests it received, to drop redelivered copies (DF's
    `entityMessageReorderWindowInMinutes`)."""
    settle_in_background: bool = False
    """After a checkpoint, delete the messages it applied in the background, so the instance's
    next episode starts without waiting for the deletes. They are marked applied before; one not
    deleted (a crash) comes back and is dropped as already applied, as after a crash today. Off
    by default: on Azurite, whose queue writes run one at a time, a background delete only delays
    the next send (docs/performance.md measures switching it on)."""
    handoff_backlog: int = 1000
    """Work items this process may hand to itself beyond the activities it runs at once; they wait
    in memory, held in their queue. Beyond it, work items go to the queue for any worker."""

    @classmethod
    def from_settings(cls, settings: DurableTaskSettings) -> WorkerOptions:
        """Options from host.json's `extensions.durableTask` settings."""
        return cls(
            partition_count=settings.partition_count,
            control_queue_batch_size=settings.control_queue_batch_size,
            control_queue_buffer_threshold=settings.control_queue_buffer_threshold,
            control_queue_visibility_timeout=settings.control_queue_visibility_timeout,
            work_item_queue_visibility_timeout=settings.work_item_queue_visibility_timeout,
            max_queue_polling_interval=settings.max_queue_polling_interval,
            max_concurrent_activity_functions=settings.max_concurrent_activity_functions,
            max_concurrent_orchestrator_functions=settings.max_concurrent_orchestrator_functions,
            lease_interval=settings.lease_interval,
            lease_renew_interval=settings.lease_renew_interval,
            lease_acquire_interval=settings.lease_acquire_interval,
            worker_id=settings.worker_id,
            use_legacy_partition_management=settings.use_legacy_partition_management,
            partition_table_operation_timeout=settings.partition_table_operation_timeout,
            use_app_lease=settings.use_app_lease,
            app_lease_interval=settings.app_lease_interval,
            app_lease_renew_interval=settings.app_lease_renew_interval,
            app_lease_acquire_interval=settings.app_lease_acquire_interval,
            replay=ReplayOptions(
                settings.max_timer_duration,
                settings.long_timer_interval,
                observe_replay=settings.trace_replay_events,
                http_async_sleep=settings.http_async_sleep,
                version=settings.default_version,
            ),
            trace_inputs_and_outputs=settings.trace_inputs_and_outputs,
            trace_replay_events=settings.trace_replay_events,
            distributed_tracing=settings.distributed_tracing,
            replace_running_instances=settings.overridable_existing_instance_states == "AnyState",
            versioning=VersioningPolicy.of(
                settings.default_version,
                settings.version_match_strategy,
                settings.version_failure_strategy,
            ),
            instance_cache_idle_timeout=settings.extended_session_idle_timeout,
        )
