"""The Azurite harness, re-exported from harness/azurite.py (shared with bench/) so that the
tests keep importing it from here."""

from harness.azurite import (
    ACCOUNT_KEY,
    ACCOUNT_NAME,
    HOST,
    REPO_ROOT,
    AzuriteInstance,
    answers_http,
    free_ports,
)

__all__ = [
    "ACCOUNT_KEY",
    "ACCOUNT_NAME",
    "HOST",
    "REPO_ROOT",
    "AzuriteInstance",
    "answers_http",
    "free_ports",
]
