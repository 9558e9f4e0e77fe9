"""The `durable-ext` command line: `start` (the local host) and Core Tools' `func durable ...`
instance-management commands (`start-new`, `get-instances`, `purge-history`, ...).

Exit codes: 0 success, 1 the command failed (one line on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..orchestration.status import OrchestrationRuntimeStatus
from . import management_commands
from .management_commands import UsageError

PROG = "durable-ext"
DISTRIBUTION = "durable-ext"
LOCAL_HOST_MODULE = f"{__package__}.local_host"

EXIT_ERROR = 1
EXIT_USAGE = 2
DEFAULT_TOP = 10  # Core Tools' default page size for get-instances
MAX_TOP = 1000  # the most rows Azure Tables returns in one page

# A command handler takes the parsed arguments and returns the exit code.
Handler = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class CommandSpec:
    """A subcommand: its name, one-line summary, options and handler."""

    name: str
    summary: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Callable[[argparse.Namespace, argparse.ArgumentParser], int]


def package_version() -> str:
    """The installed version of the durable-ext distribution."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown (not installed; run `pip install -e .`)"


# -- argument types ----------------------------------------------------------------------------


def parse_utc_datetime(text: str) -> datetime:
    """An ISO 8601 date or date-time; without a zone it is UTC (as in Core Tools)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date/time: {text!r} (e.g. 2024-05-01 or 2024-05-01T13:45:00Z)"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_runtime_statuses(text: str) -> list[OrchestrationRuntimeStatus]:
    """Runtime status names, comma- or space-separated, any case (`running,completed`)."""
    by_name = {status.value.lower(): status for status in OrchestrationRuntimeStatus}
    statuses: list[OrchestrationRuntimeStatus] = []
    for name in re.split(r"[,\s]+", text.strip()):
        if not name:
            continue
        status = by_name.get(name.lower())
        if status is None:
            valid = ", ".join(status.value for status in OrchestrationRuntimeStatus)
            raise argparse.ArgumentTypeError(f"unknown runtime status {name!r} (use {valid})")
        statuses.append(status)
    return statuses


def _top(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_TOP:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 1 to {MAX_TOP}, got {text!r}"
        )
    return value


# -- common options ----------------------------------------------------------------------------


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every management command takes: where the app and the hub are, output form."""
    group = parser.add_argument_group("task hub and output")
    group.add_argument(
        "--app-root",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="function app root with host.json and local.settings.json (default: current directory)",
    )
    group.add_argument(
        "--connection-string-setting",
        metavar="NAME",
        help="app setting holding the storage connection (default: host.json's "
        "storageProvider.connectionName, else AzureWebJobsStorage)",
    )
    group.add_argument(
        "--task-hub-name", metavar="NAME", help="task hub (default: hubName in host.json)"
    )
    group.add_argument("--json", action="store_true", help="print JSON instead of text")


def _add_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--id", required=True, metavar="INSTANCE_ID", help="the instance ID")


def _add_reason(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--reason", default=default, help=f"reason recorded (default: {default!r})")


def _add_filters(parser: argparse.ArgumentParser, *, created_after_help: str) -> None:
    parser.add_argument(
        "--created-after", type=parse_utc_datetime, metavar="TIME", help=created_after_help
    )
    parser.add_argument(
        "--created-before",
        type=parse_utc_datetime,
        metavar="TIME",
        help="only instances created at or before this ISO 8601 time (UTC if no zone)",
    )
    parser.add_argument(
        "--runtime-status",
        type=parse_runtime_statuses,
        action="extend",
        metavar="STATUS",
        help="only instances with this status; repeat it or give a comma-separated list",
    )


def _arguments_start_new(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--function-name", required=True, help="the orchestrator function")
    parser.add_argument("--id", metavar="INSTANCE_ID", help="instance ID (default: a new GUID)")
    parser.add_argument("--input", metavar="JSON", help="input as JSON text, or @file.json")


def _arguments_get_runtime_status(parser: argparse.ArgumentParser) -> None:
    _add_id(parser)
    parser.add_argument("--show-input", action="store_true", help="include the input")
    parser.add_argument("--show-output", action="store_true", help="include the output")


def _arguments_get_instances(parser: argparse.ArgumentParser) -> None:
    _add_filters(
        parser,
        created_after_help="only instances created at or after this ISO 8601 time (UTC if no zone)",
    )
    parser.add_argument(
        "--instance-id-prefix", metavar="PREFIX", help="only instance IDs starting with PREFIX"
    )
    parser.add_argument(
        "--top",
        type=_top,
        default=DEFAULT_TOP,
        help=f"instances per page, 1 to {MAX_TOP} (default: {DEFAULT_TOP})",
    )
    parser.add_argument("--continuation-token", metavar="TOKEN", help="the page to read next")
    parser.add_argument("--show-input", action="store_true", help="include inputs (with --json)")


def _arguments_raise_event(parser: argparse.ArgumentParser) -> None:
    _add_id(parser)
    parser.add_argument("--event-name", required=True, help="the event name")
    parser.add_argument("--event-data", metavar="JSON", help="event data as JSON, or @file.json")


def _arguments_purge_history(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--id", metavar="INSTANCE_ID", help="purge this one instance")
    _add_filters(
        parser,
        created_after_help="purge by filter: instances created at or after this ISO 8601 time "
        "(required without --id)",
    )


def _arguments_delete_task_hub(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def _with_id_and_reason(default: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        _add_id(parser)
        _add_reason(parser, default)

    return add


# -- start ---------------------------------------------------------------------------------------


def _start_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=7071, help="HTTP port (default: 7071)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--app-root",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="function app root with host.json (default: current directory)",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="print the engine's debug messages too (overrides host.json logging.logLevel)",
    )
    output.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print only warnings and errors (overrides host.json logging.logLevel)",
    )


def _start(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Hand over to the local host, imported only now (the other commands do not need it)."""
    try:
        local_host = importlib.import_module(LOCAL_HOST_MODULE)
    except ImportError as exc:
        print(f"{PROG}: error: the local host is not available: {exc}", file=sys.stderr)
        return EXIT_ERROR
    run: Handler = local_host.run
    return run(args)


# -- management commands -------------------------------------------------------------------------


def _management(
    name: str, summary: str, add_arguments: Callable[[argparse.ArgumentParser], None]
) -> CommandSpec:
    """A management command: its own options, the common ones, and `execute`."""
    command = management_commands.COMMANDS[name]

    def add_all_arguments(parser: argparse.ArgumentParser) -> None:
        add_arguments(parser)
        _add_common_arguments(parser)

    def handle(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
        try:
            return management_commands.execute(command, args)
        except UsageError as exc:
            parser.error(str(exc))  # prints the usage and exits with code 2

    return CommandSpec(name, summary, add_all_arguments, handle)


START = CommandSpec(
    "start", "run the function app locally (like `func start`)", _start_arguments, _start
)

# Command name -> spec, in the order `--help` lists them.
COMMANDS: dict[str, CommandSpec] = {
    spec.name: spec
    for spec in (
        START,
        _management("start-new", "start an orchestration instance", _arguments_start_new),
        _management(
            "get-runtime-status", "show the status of an instance", _arguments_get_runtime_status
        ),
        _management("get-history", "show the history of an instance", _add_id),
        _management("get-instances", "list instances, a page at a time", _arguments_get_instances),
        _management("raise-event", "send an event to an instance", _arguments_raise_event),
        _management(
            "terminate", "terminate an instance", _with_id_and_reason("Terminated by durable-ext")
        ),
        _management(
            "suspend", "suspend a running instance", _with_id_and_reason("Suspended by durable-ext")
        ),
        _management(
            "resume", "resume a suspended instance", _with_id_and_reason("Resumed by durable-ext")
        ),
        _management(
            "purge-history", "delete the history of finished instances", _arguments_purge_history
        ),
        _management(
            "delete-task-hub",
            "delete the task hub's queues, tables and blobs",
            _arguments_delete_task_hub,
        ),
    )
}


# -- parsing -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Durable Functions for Python on Azure Storage: local host and tools.",
        epilog=f"Run `{PROG} COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {package_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for spec in COMMANDS.values():
        sub = commands.add_parser(spec.name, help=spec.summary, description=spec.summary)
        spec.add_arguments(sub)
        sub.set_defaults(spec=spec, command_parser=sub)
    return parser


def _command_name(argv: Sequence[str]) -> str | None:
    """The first argument that is not an option (top-level options take no values)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    available = ", ".join(COMMANDS)
    name = _command_name(arguments)
    if name is None and not {"-h", "--help", "--version"} & set(arguments):
        parser.print_usage(sys.stderr)
        print(f"{PROG}: no command given. Available commands: {available}.", file=sys.stderr)
        return EXIT_USAGE
    if name is not None and name not in COMMANDS:
        print(
            f"{PROG}: unknown command {name!r}. Available commands: {available}. "
            f"See `{PROG} --help`.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    options = parser.parse_args(arguments)
    spec: CommandSpec = options.spec
    return spec.handler(options, options.command_parser)


if __name__ == "__main__":
    sys.exit(main())
