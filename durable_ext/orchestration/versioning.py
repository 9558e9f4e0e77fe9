"""Orchestration versioning, as Durable Functions does it (DTFx `VersioningSettings`).

An instance's version is stamped when it starts (`start_new(version=)`, else host.json
`defaultVersion`) and read through `context.version`. A worker runs the app's `defaultVersion`;
`versionMatchStrategy` says which instances it may run: `None` all, `Strict` only its own version,
`CurrentOrOlder` (the default) its own and older ones; without a `defaultVersion` it runs every
instance (versioning is off). An instance it may not run is left alone for a
compatible worker (`versionFailureStrategy` `Reject`, the default: its messages go back to the queue)
or failed (`Fail`: the execution ends Failed with a `VersionMismatch` failure, its code not run).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "VersionMatchStrategy",
    "VersionFailureStrategy",
    "VersioningPolicy",
    "VersionMismatch",
    "compare_versions",
]


class VersionMatchStrategy(Enum):
    NONE = "None"
    STRICT = "Strict"
    CURRENT_OR_OLDER = "CurrentOrOlder"


class VersionFailureStrategy(Enum):
    REJECT = "Reject"
    FAIL = "Fail"


class VersionMismatch(Exception):  # noqa: N818 - DTFx's failure type name
    """An instance whose version this worker may not run (`versionFailureStrategy` `Fail`)."""


_DOTNET_VERSION = re.compile(r"\d+(\.\d+){1,3}")


def _parts(version: str) -> tuple[int, ...] | None:
    """The components of a .NET `System.Version` (2 to 4 numbers), or None."""
    text = version.strip()
    if not _DOTNET_VERSION.fullmatch(text):
        return None
    return tuple(int(p) for p in text.split("."))


def compare_versions(source: str | None, other: str | None) -> int:
    """<0, 0 or >0 as `source` is older than, equal to or newer than `other`: empty versions are
    equal and older than any other; two .NET versions compare by number; else case-insensitively."""
    source, other = (source or "").strip(), (other or "").strip()
    if not source or not other:
        return (1 if source else 0) - (1 if other else 0)
    mine, theirs = _parts(source), _parts(other)
    if mine is not None and theirs is not None:
        # System.Version: a missing component is lower than any present one (1.0 < 1.0.0).
        a, b = mine + (-1,) * (4 - len(mine)), theirs + (-1,) * (4 - len(theirs))
        return (a > b) - (a < b)
    a_text, b_text = source.lower(), other.lower()
    return (a_text > b_text) - (a_text < b_text)


@dataclass(frozen=True, slots=True)
class VersioningPolicy:
    """The worker's version and its strategies (host.json `defaultVersion`,
    `versionMatchStrategy`, `versionFailureStrategy`)."""

    version: str = ""
    match: VersionMatchStrategy = VersionMatchStrategy.CURRENT_OR_OLDER
    failure: VersionFailureStrategy = VersionFailureStrategy.REJECT

    @classmethod
    def of(cls, version: str, match: str, failure: str) -> VersioningPolicy:
        """A policy from the host.json values (names as Durable Functions spells them)."""
        return cls(version, VersionMatchStrategy(match), VersionFailureStrategy(failure))

    def refuses(self, instance_version: str | None) -> bool:
        """Whether this worker may not run an instance of `instance_version` (never without a
        `defaultVersion`: versioning is off, as before the setting existed)."""
        if not self.version:
            return False
        if self.match is VersionMatchStrategy.STRICT:
            return (instance_version or "") != self.version
        if self.match is VersionMatchStrategy.CURRENT_OR_OLDER:
            return compare_versions(instance_version, self.version) > 0
        return False

    def mismatch(self, name: str | None, instance_version: str | None) -> VersionMismatch:
        """The failure of an instance this worker refuses (for `Fail`)."""
        return VersionMismatch(
            f"Orchestration version did not comply with Worker Versioning: instance of "
            f"'{name}' has version '{instance_version or ''}', this worker runs version "
            f"'{self.version}' with versionMatchStrategy {self.match.value}."
        )
