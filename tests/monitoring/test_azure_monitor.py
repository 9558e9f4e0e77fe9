"""Application Insights export through azure-monitor-opentelemetry, to a local stand-in for the
ingestion service: the tracking events arrive as `traces` rows with their customDimensions, the
documented queries find what they should, and nothing is configured twice or leaves the machine.

The exporting run is a child process (`azure_monitor_child.py`): configuring Azure Monitor sets
process-wide OpenTelemetry providers and logging handlers that would leak into other tests.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from durable_ext import azure_monitor
from durable_ext.azure_monitor import AzureMonitorExport, export_to_azure_monitor
from durable_ext.tracking import TRACKING_CATEGORY
from tests.functions_host.test_engine_lifecycle import sample_app_root
from tests.functions_host.worker_process import worker_processes
from tests.sample_app.host_process import (
    LocalHostProcess,
    assert_stopped_cleanly,
    http,
    make_app_root,
    poll_status,
)
from tests.wait import wait_for

from .azure_monitor_child import ASKED_LINE, USER_LINE
from .ingestion import REQUEST, Ingestion, TraceRow, trace_rows

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "monitoring.md"
APP_NAME = "durable-ext-monitored"
OFFLINE = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",  # usage telemetry to Microsoft
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",  # the exporter's settings service
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "",  # the Azure VM detector asks the metadata endpoint
}
"""What would call out of the machine, off (the child also fails on any address not local)."""
NOWHERE = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"
)
"""For the tests that must not export: were they to, it would be to a closed local port."""
CHAIN_TIMELINE = [
    ("chain", "Scheduled"), ("chain", "Started"), ("echo", "Scheduled"), ("chain", "Awaited"),
    ("echo", "Started"), ("echo", "Completed"), ("echo", "Scheduled"), ("chain", "Awaited"),
    ("echo", "Started"), ("echo", "Completed"), ("chain", "Completed"),
]  # fmt: skip


@dataclass
class Exported:
    outcome: dict[str, Any]
    """What the child printed: export outcome, instance ids, trace id, outside addresses."""
    envelopes: list[dict[str, Any]]
    other_requests: list[str]

    @property
    def rows(self) -> list[TraceRow]:
        return trace_rows(self.envelopes)

    def tracking(self, instance_id: str) -> list[TraceRow]:
        return [
            r
            for r in self.rows
            if r.customDimensions.get("Category") == TRACKING_CATEGORY
            and r.customDimensions.get("prop__instanceId") == instance_id
        ]


@pytest.fixture(scope="module")
def exported(azurite: Any) -> Iterator[Exported]:
    """One exporting run of the child, against this session's Azurite."""
    hub = "Tazmonitor" + secrets.token_hex(3)
    with Ingestion() as ingestion:
        env = {
            **os.environ,
            **OFFLINE,
            "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string,
            "WEBSITE_SITE_NAME": APP_NAME,
            "DURABLE_EXT_APPLICATIONINSIGHTS_LOGGERS": "asked",
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        for name in azure_monitor.WORKER_SETTINGS:
            env.pop(name, None)
        child = subprocess.run(
            [sys.executable, "-m", "tests.monitoring.azure_monitor_child", azurite.connection_string, hub],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert child.returncode == 0, child.stderr[-4000:]
        yield Exported(
            json.loads(child.stdout.splitlines()[-1]), ingestion.envelopes, ingestion.other
        )


def test_tracking_events_arrive_as_traces_with_their_custom_dimensions(exported: Exported) -> None:
    assert exported.outcome["export"] == AzureMonitorExport.CONFIGURED
    chain_id = exported.outcome["ids"]["chain"]
    rows = [
        r for r in exported.tracking(chain_id) if r.customDimensions["prop__isReplay"] == "False"
    ]
    steps = [
        (r.customDimensions["prop__functionName"], r.customDimensions["prop__state"]) for r in rows
    ]
    assert steps == CHAIN_TIMELINE
    first = rows[0]
    dims = first.customDimensions
    assert first.message == (
        f"{chain_id}: Function 'chain (Orchestrator)' scheduled. Reason: NewInstance. "
        "IsReplay: False. State: Scheduled. RuntimeStatus: Pending. "
        f"HubName: {dims['prop__hubName']}. AppName: {APP_NAME}. SlotName: . "
        f"ExtensionVersion: {dims['prop__extensionVersion']}. SequenceNumber: {dims['prop__sequenceNumber']}."
    )
    assert dims["Category"] == "Host.Triggers.DurableTask"
    assert dims["LogLevel"] == "Information"
    assert dims["prop__functionType"] == "Orchestrator"
    assert dims["prop__reason"] == "NewInstance"
    assert dims["prop__{OriginalFormat}"].startswith("{instanceId}: Function '{functionName}")
    assert first.severityLevel == 1
    assert {r.cloud_RoleName for r in exported.rows} == {APP_NAME}
    assert {r.customDimensions["prop__appName"] for r in rows} == {APP_NAME}
    # Replayed steps too (the run had traceReplayEvents on), marked as such.
    replayed = [
        r for r in exported.tracking(chain_id) if r.customDimensions.get("prop__isReplay") == "True"
    ]
    assert replayed
    failed = [
        r for r in exported.tracking(exported.outcome["ids"]["failing"]) if r.severityLevel == 3
    ]
    assert {r.customDimensions["prop__state"] for r in failed} == {"Failed"}
    assert {r.customDimensions["LogLevel"] for r in failed} == {"Error"}


def test_our_loggers_are_exported_and_the_apps_only_when_asked(exported: Exported) -> None:
    by_logger: dict[str, list[str]] = {}
    for row in exported.rows:
        by_logger.setdefault(row.customDimensions.get("logger_name", "?"), []).append(row.message)
    assert set(by_logger) <= {TRACKING_CATEGORY, "asked"} | {
        name for name in by_logger if name.startswith("durable_ext")
    }
    assert any(m.startswith("Acquired partition") for m in by_logger["durable_ext.leases"])
    assert by_logger["asked"] == [ASKED_LINE, ASKED_LINE]
    assert USER_LINE not in {row.message for row in exported.rows}


def test_spans_of_the_durable_ext_tracer_are_exported(exported: Exported) -> None:
    requests = [e for e in exported.envelopes if e["name"] == REQUEST]
    assert [e["data"]["baseData"]["name"] for e in requests] == ["orchestration:chain"]
    trace_id = exported.outcome["trace_id"]
    assert requests[0]["tags"]["ai.operation.id"] == trace_id
    assert requests[0]["data"]["baseData"]["properties"]["durabletask.type"] == "orchestration"
    inside = [r for r in exported.rows if r.message == "inside the span"]
    assert [r.operation_Id for r in inside] == [trace_id]


def test_nothing_left_the_machine(exported: Exported) -> None:
    assert exported.outcome["outside"] == []
    assert exported.other_requests == []


def completed(ingestion: Ingestion, instance_id: str) -> bool:
    """The sample's hello_sequence instance's Completed event has arrived."""
    rows = Exported({}, ingestion.envelopes, []).tracking(instance_id)
    steps = {
        (r.customDimensions["prop__functionName"], r.customDimensions["prop__state"]) for r in rows
    }
    return ("hello_sequence", "Completed") in steps


async def test_durable_ext_start_exports_once_the_app_settings_say_so(
    azurite: Any, tmp_path: Path
) -> None:
    """The local host: the connection string from local.settings.json turns the export on."""
    with Ingestion() as ingestion:
        root = make_app_root(
            tmp_path / "app",
            code=[ROOT / "function_app", ROOT / "function_app.py"],
            hub_name="Tazstart" + secrets.token_hex(3),
            connection_string=azurite.connection_string,
            values={"APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string},
        )
        host = LocalHostProcess(root, env={**OFFLINE, "OTEL_BLRP_SCHEDULE_DELAY": "200"})
        host.launch()
        try:
            host.wait_ready()
            started = http("POST", f"{host.base_url}/api/orchestrators/hello_sequence").json()
            assert poll_status(started["statusQueryGetUri"]).json()["runtimeStatus"] == "Completed"
            await wait_for(lambda: completed(ingestion, started["id"]), timeout=30)
        except BaseException:
            host.kill()
            raise
        assert_stopped_cleanly(host)
    assert ingestion.other == []


async def test_the_embedded_engine_exports_from_its_own_thread(
    azurite: Any, tmp_path: Path
) -> None:
    """In a Python worker process (the fake Functions host's), with no invocation running: the
    engine's thread exports its tracking events itself."""
    root, _ = sample_app_root(tmp_path, azurite)
    with Ingestion() as ingestion:
        settings = {
            **OFFLINE,
            "AzureWebJobsStorage": azurite.connection_string,
            "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string,
            "OTEL_BLRP_SCHEDULE_DELAY": "200",
        }
        with worker_processes(root, settings, 1) as [worker]:
            started = http("POST", f"{worker['url']}/api/orchestrators/hello_sequence").json()
            await wait_for(lambda: completed(ingestion, started["id"]), timeout=60)
    assert ingestion.other == []


# -- the documented queries ------------------------------------------------------------------


def documented_queries() -> dict[str, tuple[str, dict[str, Any]]]:
    """Each query of docs/monitoring.md with the filters written under it, by name."""
    found = re.findall(r"```kusto\n(.*?)```\n<!-- checked: (.*?) -->", DOC.read_text(), re.DOTALL)
    queries = {}
    for text, spec in found:
        checked = json.loads(spec)
        queries[checked.pop("name")] = (text, checked)
    return queries


def test_every_query_in_the_doc_is_checked() -> None:
    assert DOC.read_text().count("```kusto") == len(documented_queries()) == 5


def run_query(rows: list[TraceRow], spec: dict[str, Any], instance_id: str) -> list[TraceRow]:
    """The query's filters, ordering and `arg_max` applied to the rows, as Kusto would."""
    now = datetime.now(UTC)

    def column(row: TraceRow, name: str) -> Any:
        if name == "timestamp":
            return datetime.fromisoformat(row.timestamp.replace("Z", "+00:00"))
        if name == "prop__sequenceNumber":
            return int(row.customDimensions[name])
        return (
            getattr(row, name)
            if name in {"severityLevel", "cloud_RoleName"}
            else row.customDimensions.get(name)
        )

    def keep(row: TraceRow, f: dict[str, Any]) -> bool:
        value = column(row, f["column"])
        wanted = f.get("value", "").replace("<instance id>", instance_id)
        match f["op"]:
            case "==":
                return value == wanted
            case "within":
                return now - timedelta(days=int(wanted.removesuffix("d"))) < value
            case "startswith":
                return str(value or "").startswith(wanted)
            case "is true":
                return str(value).lower() == "true"
            case "is not true":
                return str(value).lower() != "true"
        raise AssertionError(f"unknown op {f['op']}")

    out = [r for r in rows if all(keep(r, f) for f in spec["filters"])]
    for key in reversed(spec["order"]):
        out.sort(key=lambda r, k=key: column(r, k.lstrip("-")), reverse=key.startswith("-"))
    if "latest_by" in spec:
        latest: dict[str, TraceRow] = {}
        for row in sorted(out, key=lambda r: column(r, "timestamp")):
            latest[column(row, spec["latest_by"])] = row
        out = list(latest.values())
    return out


def kql_structure(text: str) -> tuple[list[str], list[str], str | None]:
    """A query's `where` conditions, its sort keys (as columns, `-` for desc) and its
    `arg_max ... by` column, with names introduced by `extend` mapped to their columns."""
    columns = dict(
        re.findall(r'extend (\w+) = \w+\((?:tolower\()?customDimensions\["(\w+)"\]', text)
    )
    wheres = re.findall(r"^\| where (.+)$", text, re.MULTILINE)
    sort = re.search(r"^\| sort by (.+)$", text, re.MULTILINE)
    order = []
    for part in sort.group(1).split(",") if sort else []:
        name, direction = part.split()
        order.append(("-" if direction == "desc" else "") + columns.get(name, name))
    by = re.search(r"arg_max\(timestamp, \*\) by (\w+)", text)
    return wheres, order, columns.get(by.group(1), by.group(1)) if by else None


@pytest.mark.parametrize("name", sorted(documented_queries()))
def test_a_documented_query_finds_what_it_should(exported: Exported, name: str) -> None:
    text, spec = documented_queries()[name]
    wheres, order, latest_by = kql_structure(text)
    assert sorted(wheres) == sorted(f["kql"] for f in spec["filters"]), (
        "the checked filters are the query's"
    )
    assert order == spec["order"] and latest_by == spec.get("latest_by")
    ids = exported.outcome["ids"]
    rows = run_query(exported.rows, spec, ids["chain"])
    dims = [r.customDimensions for r in rows]
    if name == "timeline":
        assert [(d["prop__functionName"], d["prop__state"]) for d in dims] == CHAIN_TIMELINE
        assert {r.cloud_RoleName for r in rows} == {APP_NAME}
    elif name == "failures":
        assert [
            (d["prop__instanceId"], d["prop__functionName"], d["prop__functionType"]) for d in dims
        ] == [
            (ids["failing"], "failing", "Orchestrator"),
            (ids["failing"], "boom", "Activity"),
        ]
        assert {r.severityLevel for r in rows} == {3}
        # Redacted: the error's type and frames, not its message.
        assert [d["prop__reason"].split("\n")[0] for d in dims] == ["TaskFailedError", "ValueError"]
        assert not any("kaput" in d["prop__reason"] for d in dims)
    elif name == "replays":
        assert {d["prop__isReplay"] for d in dims} == {"True"}
        assert ("chain", "Started") in {(d["prop__functionName"], d["prop__state"]) for d in dims}
        assert {d["prop__instanceId"] for d in dims} == set(ids.values())
    elif name == "summary":
        states = {d["prop__instanceId"]: d["prop__state"] for d in dims}
        assert states == {ids["chain"]: "Completed", ids["failing"]: "Failed"}
        chain = next(d for d in dims if d["prop__instanceId"] == ids["chain"])
        assert chain["prop__output"] == "(Redacted 4 characters)"  # "ab"
    elif name == "engine":
        assert rows and all(d["logger_name"].startswith("durable_ext") for d in dims)
        assert any(r.message.startswith("Acquired partition") for r in rows)
    else:
        raise AssertionError(f"no expectation for the query {name!r}")


# -- configuration decisions (in this process: nothing here configures Azure Monitor) ---------


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A process where the export has not run yet; our loggers' handlers put back after."""
    monkeypatch.setattr(azure_monitor, "_outcome", None)
    loggers = [logging.getLogger(n) for n in azure_monitor.OWN_LOGGERS] + [logging.getLogger()]
    saved = [list(logger.handlers) for logger in loggers]
    yield
    for logger, handlers in zip(loggers, saved, strict=True):
        logger.handlers[:] = handlers


def test_a_missing_extra_gives_one_warning_naming_it(
    fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "azure.monitor.opentelemetry", None)  # not installed
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING": NOWHERE}
    with caplog.at_level(logging.INFO, logger="durable_ext"):
        outcomes = {export_to_azure_monitor(env), export_to_azure_monitor(env)}
    assert outcomes == {AzureMonitorExport.MISSING_EXTRA}
    assert [
        (r.levelno, "durable-ext[azure-monitor]" in r.getMessage()) for r in caplog.records
    ] == [(logging.WARNING, True)]


def test_every_instrumentation_the_distro_knows_is_turned_off() -> None:
    from azure.monitor.opentelemetry._constants import _ALL_SUPPORTED_INSTRUMENTED_LIBRARIES

    assert set(_ALL_SUPPORTED_INSTRUMENTED_LIBRARIES) <= set(azure_monitor.INSTRUMENTATIONS)


def test_a_failing_configuration_is_one_warning_and_no_exception(
    fresh: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import azure.monitor.opentelemetry

    def refuse(**_: Any) -> None:
        raise ValueError("Invalid instrumentation key")

    monkeypatch.setattr(azure.monitor.opentelemetry, "configure_azure_monitor", refuse)
    with caplog.at_level(logging.INFO, logger="durable_ext"):
        outcome = export_to_azure_monitor({"APPLICATIONINSIGHTS_CONNECTION_STRING": NOWHERE})
    assert outcome is AzureMonitorExport.FAILED
    assert [
        (r.levelno, "Invalid instrumentation key" in r.getMessage()) for r in caplog.records
    ] == [(logging.WARNING, True)]


def test_without_a_connection_string_nothing_happens(fresh: None) -> None:
    assert export_to_azure_monitor({}) is AzureMonitorExport.OFF
    assert azure_monitor._outcome is None  # a later call with the setting still exports


@pytest.mark.parametrize("switch", [*azure_monitor.WORKER_SETTINGS, "app"])
@pytest.mark.parametrize("logger_name", ["", "workerapp"])
def test_someone_elses_configuration_is_joined_not_repeated(
    fresh: None, monkeypatch: pytest.MonkeyPatch, logger_name: str, switch: str
) -> None:
    """The worker (`switch`), or the app before the engine started (`app`: its SDK logger
    provider is installed), configured OpenTelemetry with its handler on `logger_name` (root by
    default): our loggers reach that handler once (directly or through the root), and nothing
    is configured again."""
    import opentelemetry._logs
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    provider = LoggerProvider()  # theirs; installed globally only in this test's view
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    if switch == "app":
        monkeypatch.setattr(opentelemetry._logs, "get_logger_provider", lambda: provider)
    worker_logger = logging.getLogger(logger_name) if logger_name else logging.getLogger()
    handler = LoggingHandler(logger_provider=provider)
    worker_logger.addHandler(handler)
    try:
        env = {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": NOWHERE,
            "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME": logger_name,
        }
        if switch != "app":
            env[switch] = "true"
        before = opentelemetry._logs.get_logger_provider()
        assert export_to_azure_monitor(env) is AzureMonitorExport.CONNECTED
        assert opentelemetry._logs.get_logger_provider() is before  # configured nothing
        logging.getLogger(TRACKING_CATEGORY).warning("tracked", extra={"prop__state": "Failed"})
        logging.getLogger("durable_ext.leases").warning("engine")
        exported = [
            (r.log_record.body, r.log_record.attributes.get("prop__state"))
            for r in memory.get_finished_logs()
        ]
        assert exported == [("tracked", "Failed"), ("engine", None)]
    finally:
        worker_logger.removeHandler(handler)
        provider.shutdown()


def test_a_record_is_exported_once_when_an_ancestor_is_asked_for_too(fresh: None) -> None:
    """The handler is on the tracking logger (where configure_azure_monitor puts it when we
    configure) and the setting asks for the root logger: the root gets it, the tracking logger
    gives it up, so a tracking event is not exported twice."""
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

    provider = LoggerProvider()
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    handler = LoggingHandler(logger_provider=provider)
    logging.getLogger(TRACKING_CATEGORY).addHandler(handler)
    try:
        env = {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": NOWHERE,
            "PYTHON_ENABLE_OPENTELEMETRY": "true",
            "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME": TRACKING_CATEGORY,
            "DURABLE_EXT_APPLICATIONINSIGHTS_LOGGERS": "root",
        }
        assert export_to_azure_monitor(env) is AzureMonitorExport.CONNECTED
        logging.getLogger(TRACKING_CATEGORY).warning("tracked")
        logging.getLogger("userapp").warning("asked for through the root")
        exported = [r.log_record.body for r in memory.get_finished_logs()]
        assert exported == ["tracked", "asked for through the root"]
    finally:
        provider.shutdown()  # `fresh` puts the loggers' handlers back
