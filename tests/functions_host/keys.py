"""Function keys as the host checks them (`AuthenticationLevelHandler`, `AuthUtility`).

The key comes from the `x-functions-key` header, else the `code` query parameter. The master key
gives the Admin level, a system key System, a host function key or one of the function's own keys
Function. A function of level L opens to a claim of exactly L or Admin: a system key does not open
a function-level function, and an admin-level function needs the master key.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["HostKeys", "presented_key"]


def _new_key() -> str:
    return secrets.token_urlsafe(40)


def _matches(presented: str, values: Iterable[str]) -> bool:
    given = presented.encode("utf-8", "surrogateescape")
    return any(hmac.compare_digest(given, value.encode()) for value in values)


def presented_key(headers: dict[str, str], query: dict[str, str]) -> str | None:
    """The key a request presents: header `x-functions-key` first, then query `code`."""
    return headers.get("x-functions-key") or query.get("code") or None


@dataclass
class HostKeys:
    """The app's keys. Unset ones are generated; `functions` maps function name → {name: key}."""

    master: str = field(default_factory=_new_key)
    host: dict[str, str] = field(default_factory=lambda: {"default": _new_key()})
    system: dict[str, str] = field(default_factory=dict)
    functions: dict[str, dict[str, str]] = field(default_factory=dict)

    def function_key(self, function_name: str, key_name: str = "default") -> str:
        """A function's own key (one is generated for every HTTP function the host indexes)."""
        return self._own(function_name)[key_name]

    def ensure_function(self, function_name: str) -> None:
        """Give `function_name` a `default` key unless the test gave it keys."""
        if not self._own(function_name):
            self.functions[function_name] = {"default": _new_key()}

    def _own(self, function_name: str) -> dict[str, str]:
        for name, keys in self.functions.items():
            if name.lower() == function_name.lower():
                return keys
        return {}

    def level_of(self, presented: str | None, function_name: str) -> str:
        """The level a presented key grants for `function_name`."""
        if not presented:
            return "anonymous"
        if _matches(presented, [self.master]):
            return "admin"
        if _matches(presented, self.system.values()):
            return "system"
        if _matches(presented, [*self.host.values(), *self._own(function_name).values()]):
            return "function"
        return "anonymous"

    def allows(self, auth_level: str, presented: str | None, function_name: str) -> bool:
        """Whether a function of `auth_level` runs for a request presenting `presented`."""
        if auth_level == "anonymous":
            return True
        return self.level_of(presented, function_name) in ("admin", auth_level)
