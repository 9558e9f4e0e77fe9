"""`durable-ext start`'s console: one short line per tracking event; --verbose and --quiet."""

from __future__ import annotations

import io
import logging

import pytest

from durable_ext.host.cli import build_parser
from durable_ext.host.console_log import ConsoleFormatter
from durable_ext.host.local_host import _console_level
from durable_ext.host.log_levels import apply_log_levels
from durable_ext.tracking import FunctionType, TrackingLog

from .conftest import TrackingRecords


def lines_of(records: TrackingRecords) -> list[str]:
    formatter = ConsoleFormatter()
    return [formatter.format(r).split("] ", 1)[1] for r in records.records]


def test_tracking_events_print_without_the_repeated_fields(tracked: TrackingRecords) -> None:
    log = TrackingLog("hub", trace_replay_events=True)
    log.scheduled("i1", "work", FunctionType.Activity, "chain")
    log.completed("i1", "chain", FunctionType.Orchestrator, '"x"', continued_as_new=True)
    log.started("i1", "chain", FunctionType.Orchestrator, "null", is_replay=True)
    log.failed("i1", "work", FunctionType.Activity, "ValueError", task_event_id=3)
    log.information("Task hub worker started. Latency: 12 ms")
    assert lines_of(tracked) == [
        "i1: Function 'work (Activity)' scheduled. Reason: chain",
        "i1: Function 'chain (Orchestrator)' completed. Output: (Redacted 3 characters)"
        " (continued as new)",
        "i1: Function 'chain (Orchestrator)' started. Input: (Redacted 4 characters) (replay)",
        "i1: Function 'work (Activity)' failed with an error. Reason: ValueError",
        "Task hub worker started. Latency: 12 ms",
    ]


def test_other_records_keep_their_logger_name() -> None:
    record = logging.LogRecord(
        "durable_ext.worker", logging.INFO, __file__, 1, "hi %s", ("x",), None
    )
    assert ConsoleFormatter().format(record).endswith("] durable_ext.worker: hi x")


@pytest.mark.parametrize(
    ("flags", "level"),
    [([], None), (["--verbose"], logging.DEBUG), (["-q"], logging.WARNING)],
)
def test_start_flags_choose_the_console_level(flags: list[str], level: int | None) -> None:
    args = build_parser().parse_args(["start", *flags])
    assert _console_level(args) == level


def test_verbose_and_quiet_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["start", "--verbose", "--quiet"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_quiet_leaves_failures_and_terminations(tracked: TrackingRecords) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(ConsoleFormatter())
    logger = logging.getLogger("Host.Triggers.DurableTask")
    logger.addHandler(handler)
    try:
        log = TrackingLog("hub")
        log.completed("i2", "act", FunctionType.Activity, "1")
        log.terminated("i2", "orch", "stop")
        log.failed("i2", "act", FunctionType.Activity, "KeyError")
    finally:
        logger.removeHandler(handler)
    printed = [line.split("] ", 1)[1] for line in stream.getvalue().splitlines()]
    assert printed == [
        "i2: Function 'orch (Orchestrator)' was terminated. Reason: (Redacted 4 characters)",
        "i2: Function 'act (Activity)' failed with an error. Reason: KeyError",
    ]


def test_host_json_log_levels_set_our_loggers() -> None:
    names = ["Host.Triggers.DurableTask", "durable_ext", "durable_ext.queues", "durable_ext.leases"]
    saved = {name: logging.getLogger(name).level for name in names}
    root_level = logging.getLogger().level
    try:
        apply_log_levels(
            {
                "default": logging.ERROR,
                "Host.Triggers.DurableTask": logging.WARNING,
                "DurableTask.AzureStorage": logging.DEBUG,
                "DurableTask.Core": logging.ERROR,
            },
            include_default=False,
        )
        assert logging.getLogger().level == root_level  # the worker's, in Azure
        assert logging.getLogger("Host.Triggers.DurableTask").level == logging.WARNING
        assert logging.getLogger("durable_ext").level == logging.ERROR
        # The storage category is more specific than the engine's: it wins for its loggers.
        assert logging.getLogger("durable_ext.queues").level == logging.DEBUG
        assert not logging.getLogger("durable_ext.worker").isEnabledFor(logging.WARNING)
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
