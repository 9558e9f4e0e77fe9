"""host.json and app settings: defaults, validation messages, TimeSpans, app setting lookups."""

from __future__ import annotations

import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from durable_ext.host.local_host import load_config
from durable_ext.settings import (
    DurableTaskSettings,
    HostJsonError,
    HttpSettings,
    SettingsError,
    app_settings,
    effective_host_json,
    format_timespan,
    get_app_setting,
    load_durable_task_settings,
    load_host_json,
    load_http_settings,
    load_local_settings,
    load_log_levels,
    parse_timespan,
    read_app_host_json,
)

DURABLE = "host.json: extensions.durableTask"
STORAGE = f"{DURABLE}.storageProvider"
EXTRAS = f"{DURABLE}.durableExt"
OVERRIDE = "AzureFunctionsJobHost__extensions__durableTask__"


def durable_task(**settings: Any) -> dict[str, Any]:
    return {"version": "2.0", "extensions": {"durableTask": settings}}


def storage_provider(**settings: Any) -> dict[str, Any]:
    return durable_task(storageProvider=settings)


# -- defaults --------------------------------------------------------------------------------


@pytest.mark.parametrize("host_json", [None, {}, {"version": "2.0"}, durable_task()])
def test_defaults_match_durable_functions(host_json: dict[str, Any] | None) -> None:
    settings = load_durable_task_settings(host_json)
    processors = os.cpu_count() or 1
    assert settings.hub_name == "TestHubName"
    assert settings.connection_name == "AzureWebJobsStorage"
    assert settings.partition_count == 4
    assert settings.control_queue_batch_size == 32
    assert settings.control_queue_buffer_threshold == 256
    assert settings.control_queue_visibility_timeout == timedelta(minutes=5)
    assert settings.work_item_queue_visibility_timeout == timedelta(minutes=5)
    assert settings.max_queue_polling_interval == timedelta(seconds=30)
    assert settings.max_concurrent_activity_functions == 10 * processors
    assert settings.max_concurrent_orchestrator_functions == 10 * processors
    assert settings.lease_interval == timedelta(seconds=30)
    assert settings.lease_renew_interval == timedelta(seconds=10)
    assert settings.lease_acquire_interval == timedelta(seconds=10)
    assert settings.extended_sessions_enabled is False
    assert settings.extended_session_idle_timeout == timedelta(seconds=30)
    assert settings.trace_inputs_and_outputs is False
    assert settings.default_version == ""
    assert settings.max_timer_duration == timedelta(days=6)
    assert settings.long_timer_interval == timedelta(days=3)


def test_worker_id_is_host_and_process() -> None:
    worker_id = load_durable_task_settings(None).worker_id
    host, _, pid = worker_id.rpartition(":")
    assert host and pid == str(os.getpid())
    assert DurableTaskSettings().worker_id == worker_id


def test_every_setting_is_read() -> None:
    host_json = {
        "extensions": {
            "durableTask": {
                "hubName": "MyHub",
                "maxConcurrentActivityFunctions": 3,
                "maxConcurrentOrchestratorFunctions": 7,
                "extendedSessionsEnabled": True,
                "extendedSessionIdleTimeoutInSeconds": 90,
                "defaultVersion": "1.2",
                "tracing": {
                    "traceInputsAndOutputs": True,
                    "traceReplayEvents": True,
                    "distributedTracingEnabled": True,
                    "version": "V2",
                },
                "storageProvider": {
                    "type": "AzureStorage",
                    "connectionName": "MyStorage",
                    "partitionCount": 16,
                    "controlQueueBatchSize": 8,
                    "controlQueueBufferThreshold": 1000,
                    "controlQueueVisibilityTimeout": "00:01:00",
                    "workItemQueueVisibilityTimeout": "00:10:00",
                    "maxQueuePollingInterval": "00:00:02",
                    "useTablePartitionManagement": False,
                    "useLegacyPartitionManagement": True,
                    "partitionTableOperationTimeout": "00:00:05",
                },
                "useAppLease": False,
                "appLeaseOptions": {
                    "leaseInterval": "00:00:20",
                    "renewInterval": "00:00:05",
                    "acquireInterval": "00:00:30",
                },
                "durableExt": {
                    "maxTimerDuration": "00:00:10",
                    "longTimerInterval": "00:00:04",
                    "leaseInterval": "00:00:03",
                    "leaseRenewInterval": "00:00:01",
                    "leaseAcquireInterval": "00:00:00.5",
                },
                "notifications": {"eventGrid": None},
            }
        }
    }
    settings = load_durable_task_settings(host_json)
    assert settings == DurableTaskSettings(
        hub_name="MyHub",
        connection_name="MyStorage",
        partition_count=16,
        control_queue_batch_size=8,
        control_queue_buffer_threshold=1000,
        control_queue_visibility_timeout=timedelta(minutes=1),
        work_item_queue_visibility_timeout=timedelta(minutes=10),
        max_queue_polling_interval=timedelta(seconds=2),
        max_concurrent_activity_functions=3,
        max_concurrent_orchestrator_functions=7,
        lease_interval=timedelta(seconds=3),
        lease_renew_interval=timedelta(seconds=1),
        lease_acquire_interval=timedelta(milliseconds=500),
        extended_sessions_enabled=True,
        extended_session_idle_timeout=timedelta(seconds=90),
        trace_inputs_and_outputs=True,
        trace_replay_events=True,
        distributed_tracing=True,
        default_version="1.2",
        max_timer_duration=timedelta(seconds=10),
        long_timer_interval=timedelta(seconds=4),
        worker_id=settings.worker_id,
        use_legacy_partition_management=True,
        partition_table_operation_timeout=timedelta(seconds=5),
        use_app_lease=False,
        app_lease_interval=timedelta(seconds=20),
        app_lease_renew_interval=timedelta(seconds=5),
        app_lease_acquire_interval=timedelta(seconds=30),
    )


@pytest.mark.parametrize(
    ("storage", "legacy"),
    [
        ({}, False),
        ({"useTablePartitionManagement": True}, False),
        ({"useLegacyPartitionManagement": True}, True),
        ({"useLegacyPartitionManagement": "true", "useTablePartitionManagement": "false"}, True),
    ],
)
def test_partition_manager_choice(storage: dict[str, Any], legacy: bool) -> None:
    host_json = {"extensions": {"durableTask": {"storageProvider": storage}}}
    assert load_durable_task_settings(host_json).use_legacy_partition_management is legacy


@pytest.mark.parametrize(
    ("storage", "message"),
    [
        (
            {"useTablePartitionManagement": True, "useLegacyPartitionManagement": True},
            "cannot both be true",
        ),
        ({"useTablePartitionManagement": False}, "not DTFx's \"safe\" blob manager"),
    ],
)
def test_partition_manager_choices_dtfx_refuses(storage: dict[str, Any], message: str) -> None:
    host_json = {"extensions": {"durableTask": {"storageProvider": storage}}}
    with pytest.raises(SettingsError, match=message):
        load_durable_task_settings(host_json)


def test_keys_are_case_insensitive() -> None:
    host_json = {
        "Extensions": {
            "DURABLETASK": {
                "HubName": "CaseHub",
                "StorageProvider": {"PARTITIONCOUNT": 2, "maxqueuepollinginterval": "00:00:05"},
                "Tracing": {"TraceInputsAndOutputs": True},
            }
        }
    }
    settings = load_durable_task_settings(host_json)
    assert settings.hub_name == "CaseHub"
    assert settings.partition_count == 2
    assert settings.max_queue_polling_interval == timedelta(seconds=5)
    assert settings.trace_inputs_and_outputs is True


def test_values_as_strings_are_accepted_like_dotnet_configuration() -> None:
    settings = load_durable_task_settings(
        durable_task(
            maxConcurrentActivityFunctions="5",
            extendedSessionsEnabled="True",
            storageProvider={"partitionCount": " 8 "},
        )
    )
    assert settings.max_concurrent_activity_functions == 5
    assert settings.extended_sessions_enabled is True
    assert settings.partition_count == 8


def test_null_means_unset() -> None:
    settings = load_durable_task_settings(
        durable_task(hubName=None, defaultVersion=None, storageProvider=None)
    )
    assert settings.hub_name == "TestHubName"
    assert settings.default_version == ""
    assert settings.partition_count == 4


@pytest.mark.parametrize(
    ("storage", "expected"),
    [
        ({"connectionName": "Primary"}, "Primary"),
        ({"connectionStringName": "Legacy"}, "Legacy"),
        ({"ConnectionName": "Primary", "connectionStringName": "Legacy"}, "Primary"),
        ({"connectionName": ""}, "AzureWebJobsStorage"),
    ],
)
def test_connection_name(storage: dict[str, str], expected: str) -> None:
    assert load_durable_task_settings(storage_provider(**storage)).connection_name == expected


# -- hub names -------------------------------------------------------------------------------


def test_hub_name_substitutes_app_settings() -> None:
    settings = load_durable_task_settings(
        durable_task(hubName="%MyTaskHub%"), {"MYTASKHUB": "FromSetting"}
    )
    assert settings.hub_name == "FromSetting"
    settings = load_durable_task_settings(durable_task(hubName="Hub%Env%2"), {"Env": "Staging"})
    assert settings.hub_name == "HubStaging2"


def test_hub_name_reference_to_missing_setting() -> None:
    with pytest.raises(SettingsError) as error:
        load_durable_task_settings(durable_task(hubName="%MyTaskHub%"), {})
    assert str(error.value) == (
        f"{DURABLE}.hubName refers to app setting 'MyTaskHub' (%MyTaskHub%), which is not set"
    )


def test_hub_name_substituted_value_is_validated() -> None:
    with pytest.raises(SettingsError) as error:
        load_durable_task_settings(durable_task(hubName="%Hub%"), {"Hub": "my-hub"})
    message = str(error.value)
    assert message.startswith(f"{DURABLE}.hubName must contain only letters and digits")
    assert message.endswith('got "my-hub" (from "%Hub%")')


@pytest.mark.parametrize(
    "hub_name", ["ab", "1Hub", "my-hub", "my_hub", "", " Hub1", "H" * 46, "Hüb1", 42]
)
def test_invalid_hub_names(hub_name: object) -> None:
    with pytest.raises(SettingsError) as error:
        load_durable_task_settings(durable_task(hubName=hub_name))
    message = str(error.value)
    assert message.startswith(f"{DURABLE}.hubName must ")
    assert message.endswith(f"got {json.dumps(hub_name)}")


@pytest.mark.parametrize("hub_name", ["abc", "Hub1", "H" * 45, "TestHubName"])
def test_valid_hub_names(hub_name: str) -> None:
    assert load_durable_task_settings(durable_task(hubName=hub_name)).hub_name == hub_name


@pytest.mark.parametrize(
    ("site_name", "hub_name"),
    [
        ("my-func-app", "myfuncapp"),
        ("1app", "t1app"),
        ("a", "aHub"),
        ("---", "DefaultTaskHub"),
        ("x" * 60, "x" * 45),
    ],
)
def test_default_hub_name_comes_from_the_site_name(site_name: str, hub_name: str) -> None:
    settings = load_durable_task_settings(None, {"WEBSITE_SITE_NAME": site_name})
    assert settings.hub_name == hub_name


def test_deployment_slot_needs_an_explicit_hub_name() -> None:
    slot = {"WEBSITE_SITE_NAME": "app", "WEBSITE_SLOT_NAME": "staging"}
    with pytest.raises(SettingsError, match=r"extensions\.durableTask\.hubName must be set"):
        load_durable_task_settings(None, slot)
    assert load_durable_task_settings(durable_task(hubName="StagingHub"), slot).hub_name == (
        "StagingHub"
    )
    production = {"WEBSITE_SITE_NAME": "app", "WEBSITE_SLOT_NAME": "Production"}
    assert load_durable_task_settings(None, production).hub_name == "app"


# -- validation messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host_json", "message"),
    [
        (
            storage_provider(partitionCount=20),
            f"{STORAGE}.partitionCount must be an integer from 1 to 16, got 20",
        ),
        (
            storage_provider(partitionCount=0),
            f"{STORAGE}.partitionCount must be an integer from 1 to 16, got 0",
        ),
        (
            storage_provider(partitionCount="four"),
            f'{STORAGE}.partitionCount must be an integer from 1 to 16, got "four"',
        ),
        (
            storage_provider(partitionCount=4.5),
            f"{STORAGE}.partitionCount must be an integer from 1 to 16, got 4.5",
        ),
        (
            storage_provider(partitionCount=True),
            f"{STORAGE}.partitionCount must be an integer from 1 to 16, got true",
        ),
        (
            storage_provider(controlQueueBatchSize=33),
            f"{STORAGE}.controlQueueBatchSize must be an integer from 1 to 32, got 33",
        ),
        (
            storage_provider(controlQueueBufferThreshold=0),
            f"{STORAGE}.controlQueueBufferThreshold must be an integer from 1 to 1000, got 0",
        ),
        (
            storage_provider(controlQueueBufferThreshold=1001),
            f"{STORAGE}.controlQueueBufferThreshold must be an integer from 1 to 1000, got 1001",
        ),
        (
            storage_provider(controlQueueVisibilityTimeout="00:00:30"),
            f"{STORAGE}.controlQueueVisibilityTimeout must be a TimeSpan ([d.]hh:mm:ss[.fffffff]) "
            'from 00:01:00 to 01:00:00, got "00:00:30"',
        ),
        (
            storage_provider(controlQueueVisibilityTimeout="02:00:00"),
            f"{STORAGE}.controlQueueVisibilityTimeout must be a TimeSpan ([d.]hh:mm:ss[.fffffff]) "
            'from 00:01:00 to 01:00:00, got "02:00:00"',
        ),
        (
            storage_provider(workItemQueueVisibilityTimeout="8.00:00:00"),
            f"{STORAGE}.workItemQueueVisibilityTimeout must be a TimeSpan ([d.]hh:mm:ss[.fffffff]) "
            'greater than 00:00:00 and at most 7.00:00:00, got "8.00:00:00"',
        ),
        (
            storage_provider(maxQueuePollingInterval="00:00:00"),
            f"{STORAGE}.maxQueuePollingInterval must be a TimeSpan ([d.]hh:mm:ss[.fffffff]) "
            'greater than 00:00:00, got "00:00:00"',
        ),
        (
            storage_provider(maxQueuePollingInterval="-00:00:05"),
            f"{STORAGE}.maxQueuePollingInterval must be a TimeSpan ([d.]hh:mm:ss[.fffffff]) "
            'greater than 00:00:00, got "-00:00:05"',
        ),
        (
            storage_provider(maxQueuePollingInterval="30s"),
            f"{STORAGE}.maxQueuePollingInterval must be a TimeSpan ([d.]hh:mm:ss[.fffffff]) "
            'greater than 00:00:00, got "30s"',
        ),
        (
            storage_provider(maxQueuePollingInterval=1.5),
            f"{STORAGE}.maxQueuePollingInterval must be a TimeSpan ([d.]hh:mm:ss[.fffffff]) "
            "greater than 00:00:00, got 1.5",
        ),
        (
            storage_provider(type="mssql"),
            f'{STORAGE}.type must be "AzureStorage" (the only storage provider this package '
            'implements), got "mssql"',
        ),
        (
            storage_provider(connectionName=7),
            f"{STORAGE}.connectionName must be a string, got 7",
        ),
        (
            durable_task(storageProvider=[]),
            f"{STORAGE} must be an object, got []",
        ),
        (
            durable_task(maxConcurrentActivityFunctions=0),
            f"{DURABLE}.maxConcurrentActivityFunctions must be an integer of at least 1, got 0",
        ),
        (
            durable_task(maxConcurrentOrchestratorFunctions=-1),
            f"{DURABLE}.maxConcurrentOrchestratorFunctions must be an integer of at least 1, got -1",
        ),
        (
            durable_task(extendedSessionsEnabled="yes"),
            f'{DURABLE}.extendedSessionsEnabled must be true or false, got "yes"',
        ),
        (
            durable_task(extendedSessionIdleTimeoutInSeconds=-5),
            f"{DURABLE}.extendedSessionIdleTimeoutInSeconds must be an integer of at least 0, got -5",
        ),
        (
            durable_task(defaultVersion=2),
            f"{DURABLE}.defaultVersion must be a string, got 2",
        ),
        (
            durable_task(tracing={"traceInputsAndOutputs": 1}),
            f"{DURABLE}.tracing.traceInputsAndOutputs must be true or false, got 1",
        ),
        (
            durable_task(durableExt={"maxTimerDuration": "7.00:00:01"}),
            f"{EXTRAS}.maxTimerDuration must be a TimeSpan ([d.]hh:mm:ss[.fffffff]) "
            'greater than 00:00:00 and at most 7.00:00:00, got "7.00:00:01"',
        ),
        (
            durable_task(durableExt={"longTimerInterval": "7.00:00:00"}),
            f"{EXTRAS}.longTimerInterval must be a TimeSpan ([d.]hh:mm:ss[.fffffff]) "
            'greater than 00:00:00 and at most 6.00:00:00, got "7.00:00:00"',
        ),
        (
            durable_task(durableExt={"leaseRenewInterval": "00:00:30"}),
            f"{EXTRAS}.leaseRenewInterval must be shorter than "
            'extensions.durableTask.durableExt.leaseInterval (00:00:30), got "00:00:30"',
        ),
        (
            {"extensions": "durableTask"},
            'host.json: extensions must be an object, got "durableTask"',
        ),
    ],
)
def test_invalid_values_name_their_setting(host_json: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_durable_task_settings(host_json)
    assert str(error.value) == message
    assert isinstance(error.value, ValueError)


def test_unknown_keys_are_ignored() -> None:
    settings = load_durable_task_settings(
        durable_task(
            useAppLease=False,
            maxEntityOperationBatchSize=10,
            storageProvider={"useLegacyPartitionManagement": True, "somethingNew": [1, 2]},
            httpSettings={"defaultAsyncRequestSleepTimeMilliseconds": 100},
        )
    )
    assert settings.partition_count == 4


def test_storage_provider_type_is_case_insensitive() -> None:
    assert load_durable_task_settings(storage_provider(type="azureStorage")).partition_count == 4


# -- TimeSpan --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:30", timedelta(seconds=30)),
        ("00:05:00", timedelta(minutes=5)),
        ("1.00:00:00", timedelta(days=1)),
        ("00:00:30.5", timedelta(seconds=30, milliseconds=500)),
        ("00:00:00.1234567", timedelta(microseconds=123456)),
        ("2.03:04:05.06", timedelta(days=2, hours=3, minutes=4, seconds=5, milliseconds=60)),
        ("1:02:03:04", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1:02:03", timedelta(hours=1, minutes=2, seconds=3)),
        ("00:30", timedelta(minutes=30)),
        ("6", timedelta(days=6)),
        ("-00:00:01", timedelta(seconds=-1)),
        (" 23:59:59 ", timedelta(hours=23, minutes=59, seconds=59)),
    ],
)
def test_parse_timespan(text: str, expected: timedelta) -> None:
    assert parse_timespan(text) == expected


@pytest.mark.parametrize(
    "text", ["", "abc", "24:00:00", "00:60:00", "00:00:60", "1.5", "00:00:01.12345678", "1h", "::"]
)
def test_parse_timespan_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timespan(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=30), "00:00:30"),
        (timedelta(days=1), "1.00:00:00"),
        (timedelta(seconds=30, milliseconds=500), "00:00:30.5000000"),
        (timedelta(days=-1, hours=23), "-01:00:00"),
    ],
)
def test_format_timespan(value: timedelta, text: str) -> None:
    assert format_timespan(value) == text
    assert parse_timespan(text) == value


def test_json_number_timespan_is_days_as_in_dotnet() -> None:
    settings = load_durable_task_settings(storage_provider(workItemQueueVisibilityTimeout=2))
    assert settings.work_item_queue_visibility_timeout == timedelta(days=2)


# -- HTTP settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host_json", "prefix"),
    [
        (None, "api"),
        ({"extensions": {"http": {}}}, "api"),
        ({"extensions": {"http": {"routePrefix": ""}}}, ""),
        ({"extensions": {"HTTP": {"RoutePrefix": "/v1/"}}}, "v1"),
    ],
)
def test_route_prefix(host_json: dict[str, Any] | None, prefix: str) -> None:
    assert load_http_settings(host_json) == HttpSettings(route_prefix=prefix)


def test_route_prefix_must_be_a_string() -> None:
    with pytest.raises(SettingsError) as error:
        load_http_settings({"extensions": {"http": {"routePrefix": 1}}})
    assert str(error.value) == "host.json: extensions.http.routePrefix must be a string, got 1"


# -- files and app settings ------------------------------------------------------------------


def test_load_host_json(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text('{"version": "2.0", "extensions": {"durableTask": {"hubName": "FileHub"}}}')
    host_json = load_host_json(path)
    assert load_durable_task_settings(host_json).hub_name == "FileHub"


def test_load_host_json_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_bytes(b'\xef\xbb\xbf{"version": "2.0"}')
    assert load_host_json(path) == {"version": "2.0"}


def test_missing_host_json(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    with pytest.raises(HostJsonError) as error:
        load_host_json(path)
    assert error.value.path == path
    assert str(error.value) == (
        f"{path}: host.json not found (the function app root must contain one)"
    )


def test_invalid_host_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text('{\n  "version": "2.0",\n  "extensions": {,}\n}\n')
    with pytest.raises(SettingsError) as error:
        load_host_json(path)
    assert str(error.value).startswith(f"{path}: invalid JSON at line 3, column 18: ")


def test_host_json_must_be_utf8(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_bytes(b'{"version": "2.0\xff"}')
    with pytest.raises(
        SettingsError, match=r"host\.json: not UTF-8 text \(bad byte at offset 16\)"
    ):
        load_host_json(path)


def test_host_json_must_be_an_object(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text("[]")
    with pytest.raises(SettingsError, match="must contain a JSON object, got list"):
        load_host_json(path)


def test_load_local_settings(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(
        json.dumps(
            {
                "IsEncrypted": False,
                "Values": {
                    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                    "FUNCTIONS_WORKER_RUNTIME": "python",
                    "Count": 2,
                    "Flag": True,
                    "Unset": None,
                },
                "Host": {"LocalHttpPort": 7071},
            }
        )
    )
    assert load_local_settings(path) == {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "Count": "2",
        "Flag": "true",
    }


def test_missing_local_settings_is_empty(tmp_path: Path) -> None:
    assert load_local_settings(tmp_path / "local.settings.json") == {}


def test_local_settings_without_values(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text('{"IsEncrypted": false}')
    assert load_local_settings(path) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"Values": {', "invalid JSON at line 1, column 13"),
        ('{"Values": []}', "Values must be an object, got []"),
        ('{"Values": {"A": {"b": 1}}}', "Values.A must be a string, got dict"),
        ('{"IsEncrypted": true, "Values": {}}', "the values are encrypted"),
    ],
)
def test_invalid_local_settings(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(content)
    with pytest.raises(SettingsError) as error:
        load_local_settings(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_environment_overrides_local_settings() -> None:
    local = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "MyHub": "LocalHub"}
    merged = app_settings(local, {"MyHub": "EnvHub", "PATH": "/bin"})
    assert merged == {
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",
        "MyHub": "EnvHub",
        "PATH": "/bin",
    }


def test_app_settings_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURABLE_EXT_TEST_SETTING", "from-env")
    merged = app_settings({"DURABLE_EXT_TEST_SETTING": "from-file", "OnlyLocal": "x"})
    assert merged["DURABLE_EXT_TEST_SETTING"] == "from-env"
    assert merged["OnlyLocal"] == "x"


@pytest.mark.parametrize(
    ("settings", "name", "expected"),
    [
        ({"MyStorage": "a"}, "MyStorage", "a"),
        ({"mystorage": "a"}, "MyStorage", "a"),
        ({"MyStorage": "exact", "MYSTORAGE": "other"}, "MyStorage", "exact"),
        ({"Conn__accountName": "acct"}, "Conn:accountName", "acct"),
        ({"Conn:AccountName": "acct"}, "conn__accountname", "acct"),
        ({"MyStorage": ""}, "MyStorage", None),
        ({}, "MyStorage", None),
    ],
)
def test_get_app_setting(settings: dict[str, str], name: str, expected: str | None) -> None:
    assert get_app_setting(settings, name) == expected


# -- AzureFunctionsJobHost__* app settings override host.json ---------------------------------


def test_app_setting_overrides_the_hub_name() -> None:
    settings = {f"{OVERRIDE}hubName": "AppSettingHub"}
    assert load_durable_task_settings(durable_task(hubName="FileHub"), settings).hub_name == (
        "AppSettingHub"
    )
    assert load_durable_task_settings(None, settings).hub_name == "AppSettingHub"


def test_app_setting_overrides_typed_values_from_strings() -> None:
    host_json = durable_task(
        maxConcurrentActivityFunctions=5,
        extendedSessionsEnabled=True,
        storageProvider={
            "partitionCount": 4,
            "connectionName": "FileStorage",
            "controlQueueVisibilityTimeout": "00:05:00",
        },
        tracing={"traceInputsAndOutputs": False},
    )
    settings = load_durable_task_settings(
        host_json,
        {
            f"{OVERRIDE}maxConcurrentActivityFunctions": "12",
            f"{OVERRIDE}extendedSessionsEnabled": "False",
            f"{OVERRIDE}extendedSessionIdleTimeoutInSeconds": " 45 ",
            f"{OVERRIDE}storageProvider__partitionCount": "10",
            f"{OVERRIDE}storageProvider__connectionName": "OtherStorage",
            f"{OVERRIDE}storageProvider__controlQueueVisibilityTimeout": "00:02:30",
            f"{OVERRIDE}storageProvider__maxQueuePollingInterval": "00:00:00.5",
            f"{OVERRIDE}storageProvider__workItemQueueVisibilityTimeout": "1.00:00:00",
            f"{OVERRIDE}tracing__traceInputsAndOutputs": "TRUE",
            f"{OVERRIDE}durableExt__leaseInterval": "00:00:20",
        },
    )
    assert settings.max_concurrent_activity_functions == 12
    assert settings.extended_sessions_enabled is False
    assert settings.extended_session_idle_timeout == timedelta(seconds=45)
    assert settings.partition_count == 10
    assert settings.connection_name == "OtherStorage"
    assert settings.control_queue_visibility_timeout == timedelta(minutes=2, seconds=30)
    assert settings.max_queue_polling_interval == timedelta(milliseconds=500)
    assert settings.work_item_queue_visibility_timeout == timedelta(days=1)
    assert settings.trace_inputs_and_outputs is True
    assert settings.lease_interval == timedelta(seconds=20)
    # what no app setting names still comes from host.json
    assert settings.control_queue_batch_size == 32


def test_a_number_overriding_a_timespan_is_days_as_in_dotnet() -> None:
    settings = {f"{OVERRIDE}storageProvider__workItemQueueVisibilityTimeout": "2"}
    assert load_durable_task_settings(None, settings).work_item_queue_visibility_timeout == (
        timedelta(days=2)
    )


@pytest.mark.parametrize(
    "name",
    [
        "AZUREFUNCTIONSJOBHOST__EXTENSIONS__DURABLETASK__HUBNAME",
        "azurefunctionsjobhost__extensions__durabletask__hubname",
        "AzureFunctionsJobHost:extensions:durableTask:hubName",
    ],
)
def test_override_names_ignore_case_and_may_use_colons(name: str) -> None:
    # host.json spells the keys differently again: the override replaces them, whatever the case
    host_json = {"Extensions": {"DurableTask": {"HubName": "FileHub"}}}
    effective = effective_host_json(host_json, {name: "EnvHub"})
    assert effective == {"Extensions": {"DurableTask": {"HubName": "EnvHub"}}}
    assert load_durable_task_settings(host_json, {name: "EnvHub"}).hub_name == "EnvHub"


def test_override_creates_missing_sections_and_leaves_host_json_unchanged() -> None:
    host_json = {"version": "2.0", "extensions": {"http": {"routePrefix": "api"}}}
    effective = effective_host_json(
        host_json,
        {f"{OVERRIDE}storageProvider__partitionCount": "8", "Unrelated__setting": "x"},
    )
    assert effective == {
        "version": "2.0",
        "extensions": {
            "http": {"routePrefix": "api"},
            "durableTask": {"storageProvider": {"partitionCount": "8"}},
        },
    }
    assert host_json == {"version": "2.0", "extensions": {"http": {"routePrefix": "api"}}}
    assert effective.overrides == {
        "extensions.durabletask.storageprovider.partitioncount": (
            f"{OVERRIDE}storageProvider__partitionCount"
        )
    }


def test_override_sets_array_items_by_index() -> None:
    host_json = {"watchDirectories": ["a", "b"], "items": [{"x": 1}, {"x": 2}]}
    effective = effective_host_json(
        host_json,
        {
            "AzureFunctionsJobHost__watchDirectories__1": "B",
            "AzureFunctionsJobHost__watchDirectories__7": "appended",
            "AzureFunctionsJobHost__watchDirectories__4": "first appended",
            "AzureFunctionsJobHost__items__0__x": "10",
        },
    )
    assert effective["watchDirectories"] == ["a", "B", "first appended", "appended"]
    assert effective["items"] == [{"x": "10"}, {"x": 2}]


def test_empty_override_is_ignored() -> None:
    settings = {f"{OVERRIDE}hubName": ""}
    assert load_durable_task_settings(durable_task(hubName="FileHub"), settings).hub_name == (
        "FileHub"
    )


def test_override_of_route_prefix() -> None:
    settings = {"AzureFunctionsJobHost__extensions__http__routePrefix": "/svc/"}
    assert load_http_settings({"extensions": {"http": {"routePrefix": "api"}}}, settings) == (
        HttpSettings(route_prefix="svc")
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "storageProvider__partitionCount",
            "twenty",
            'must be an integer from 1 to 16, got "twenty"',
        ),
        ("storageProvider__partitionCount", "17", 'must be an integer from 1 to 16, got "17"'),
        ("extendedSessionsEnabled", "yes", 'must be true or false, got "yes"'),
        ("storageProvider__maxQueuePollingInterval", "30s", "must be a TimeSpan"),
        ("storageProvider__controlQueueVisibilityTimeout", "00:00:30", "from 00:01:00"),
        ("hubName", "my-hub", "must contain only letters and digits"),
        ("storageProvider__type", "mssql", 'must be "AzureStorage"'),
    ],
)
def test_invalid_override_names_the_app_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_durable_task_settings(durable_task(hubName="FileHub"), {f"{OVERRIDE}{name}": value})
    assert str(error.value).startswith(f"app setting {OVERRIDE}{name} ")
    assert message in str(error.value)


def test_invalid_host_json_value_still_names_host_json() -> None:
    host_json = storage_provider(partitionCount=20)
    with pytest.raises(SettingsError, match=f"^{STORAGE}.partitionCount must be"):
        load_durable_task_settings(host_json, {f"{OVERRIDE}hubName": "EnvHub"})


@pytest.mark.parametrize(
    ("host_json", "settings", "message"),
    [
        (
            storage_provider(partitionCount=4),
            {f"{OVERRIDE}storageProvider": "x"},
            f"app setting {OVERRIDE}storageProvider: host.json "
            "extensions.durableTask.storageProvider is an object; set its items",
        ),
        (
            {"watchDirectories": ["a"]},
            {"AzureFunctionsJobHost__watchDirectories__first": "x"},
            "host.json watchDirectories is an array, and 'first' is not an item index",
        ),
        (
            None,
            {f"{OVERRIDE}__hubName": "x"},
            "the host.json path has an empty key",
        ),
        (
            None,
            {f"{OVERRIDE}hubName": "OneHub", f"{OVERRIDE.upper()}HUBNAME": "OtherHub"},
            "set host.json extensions.durableTask.hubName to different values",
        ),
    ],
)
def test_override_that_cannot_apply(
    host_json: dict[str, Any] | None, settings: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as error:
        effective_host_json(host_json, settings)
    assert message in str(error.value)


def test_durable_ext_start_config_has_the_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "host.json").write_text(json.dumps(durable_task(hubName="FileHub")))
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"Values": {f"{OVERRIDE}hubName": "LocalHub", f"{OVERRIDE}defaultVersion": "1"}})
    )
    monkeypatch.setenv(f"{OVERRIDE}hubName", "EnvHub")
    config = load_config(tmp_path)
    # environment variables win over Values, as with `func start`; both win over host.json
    settings = load_durable_task_settings(config.host_json, config.values)
    assert (settings.hub_name, settings.default_version) == ("EnvHub", "1")


# -- host.json of a running app: Azure never falls back to the defaults ------------------------

AZURE_SETTINGS = [
    {"WEBSITE_INSTANCE_ID": "0123abcd"},
    {"WEBSITE_SITE_NAME": "my-app"},
    {"WEBSITE_POD_NAME": "my-app-7d9f"},
    {"WEBSITE_SKU": "FlexConsumption"},
]


def test_container_name_alone_is_not_azure(tmp_path: Path) -> None:
    """Container runtimes set CONTAINER_NAME too; a devcontainer keeps the local defaults."""
    assert read_app_host_json(tmp_path / "host.json", {"CONTAINER_NAME": "devcontainer"}) == {}


@pytest.mark.parametrize("azure", AZURE_SETTINGS)
def test_missing_host_json_in_azure_is_an_error(tmp_path: Path, azure: dict[str, str]) -> None:
    path = tmp_path / "host.json"
    with pytest.raises(HostJsonError) as error:
        read_app_host_json(path, {**azure, f"{OVERRIDE}hubName": "EnvHub"})
    assert error.value.path == path
    assert error.value.cause.startswith("host.json not found; in Azure the app must deploy")
    assert str(error.value).startswith(f"{path}: host.json not found")


def test_missing_host_json_locally_warns_with_the_hub_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "host.json"
    with caplog.at_level(logging.WARNING, logger="durable_ext.settings"):
        host_json = read_app_host_json(path, {f"{OVERRIDE}hubName": "EnvHub"})
    assert host_json == {"extensions": {"durableTask": {"hubName": "EnvHub"}}}
    assert [record.getMessage() for record in caplog.records] == [
        f"{path} not found: using the default settings, with task hub 'EnvHub'"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="durable_ext.settings"):
        assert read_app_host_json(path, {}) == {}
    assert "with task hub 'TestHubName'" in caplog.records[0].getMessage()


@pytest.mark.parametrize("azure", [{}, *AZURE_SETTINGS])
@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b'{"version": "2.0",', "invalid JSON at line 1, column 19: "),
        (b'{"version": "2.0\xff"}', "not UTF-8 text (bad byte at offset 16)"),
        (b"[]", "must contain a JSON object, got list"),
        (None, "cannot read the file: Is a directory"),
    ],
)
def test_unreadable_or_invalid_host_json_is_an_error_everywhere(
    tmp_path: Path, azure: dict[str, str], content: bytes | None, cause: str
) -> None:
    path = tmp_path / "host.json"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(HostJsonError) as error:
        read_app_host_json(path, azure)
    assert error.value.path == path
    assert error.value.cause.startswith(cause)


@pytest.mark.parametrize("azure", [{}, *AZURE_SETTINGS])
def test_valid_host_json_is_read_with_overrides(tmp_path: Path, azure: dict[str, str]) -> None:
    path = tmp_path / "host.json"
    path.write_text(json.dumps(durable_task(hubName="FileHub", storageProvider={})))
    settings = {**azure, f"{OVERRIDE}storageProvider__partitionCount": "6"}
    host_json = read_app_host_json(path, settings)
    durable = load_durable_task_settings(host_json, settings)
    assert (durable.hub_name, durable.partition_count) == ("FileHub", 6)


@pytest.mark.parametrize(
    ("tracing", "expected"),
    [
        ({}, False),
        ({"distributedTracingEnabled": True}, True),
        ({"distributedTracingEnabled": True, "version": "v2"}, True),
        ({"distributedTracingEnabled": True, "version": "None"}, False),
        ({"distributedTracingEnabled": False, "version": "V2"}, False),
    ],
)
def test_distributed_tracing_needs_the_switch_and_version_two(tracing, expected) -> None:
    settings = load_durable_task_settings(durable_task(tracing=tracing))
    assert settings.distributed_tracing is expected


@pytest.mark.parametrize(
    ("tracing", "message"),
    [
        (
            {"distributedTracingEnabled": True, "version": "V1"},
            f'{DURABLE}.tracing.version "V1" (the legacy correlation protocol) is not supported',
        ),
        ({"version": "V3"}, f'{DURABLE}.tracing.version must be "V2", "V1" or "None", got "V3"'),
    ],
)
def test_bad_tracing_versions_are_refused(tracing, message) -> None:
    with pytest.raises(SettingsError) as error:
        load_durable_task_settings(durable_task(tracing=tracing))
    assert str(error.value).startswith(message)


def test_log_levels_are_read_with_dotnet_names_and_the_categories_as_written() -> None:
    host_json = {
        "logging": {
            "logLevel": {
                "default": "Information",
                "Host.Triggers.DurableTask": "warning",
                "DurableTask.Core": "None",
            }
        }
    }
    assert load_log_levels(host_json) == {
        "default": logging.INFO,
        "Host.Triggers.DurableTask": logging.WARNING,
        "DurableTask.Core": logging.CRITICAL + 10,
    }


def test_a_bad_log_level_is_refused_with_its_path() -> None:
    with pytest.raises(SettingsError) as error:
        load_log_levels({"logging": {"logLevel": {"Host.Triggers.DurableTask": "Loud"}}})
    assert str(error.value) == (
        "host.json: logging.logLevel.Host.Triggers.DurableTask must be one of Trace, Debug, "
        'Information, Warning, Error, Critical, None, got "Loud"'
    )
