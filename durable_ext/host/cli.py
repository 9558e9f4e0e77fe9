"""The `durable-ext` command line.

Only `--version` exists so far; commands such as `start` are added as the host grows.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

PROG = "durable-ext"
DISTRIBUTION = "durable-ext"

# A command handler takes the arguments after its name and returns the exit code.
Command = Callable[[Sequence[str]], int]

# Command name -> handler. Empty until the first command (`start`) lands.
COMMANDS: dict[str, Command] = {}

EXIT_USAGE = 2


def package_version() -> str:
    """The installed version of the durable-ext distribution."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown (not installed; run `pip install -e .`)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Durable Functions for Python on Azure Storage: local host and tools.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {package_version()}")
    parser.add_argument("command", nargs="?", help="the command to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    options = parser.parse_args(argv)
    command: str | None = options.command
    available = ", ".join(sorted(COMMANDS)) or "none yet (only --version)"
    if command is None:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: no command given. Available commands: {available}.", file=sys.stderr)
        return EXIT_USAGE
    if command not in COMMANDS:
        print(
            f"{PROG}: unknown command {command!r}. Available commands: {available}. "
            f"See `{PROG} --help`.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return COMMANDS[command](options.args)


if __name__ == "__main__":
    sys.exit(main())
