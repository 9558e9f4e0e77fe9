"""Reliability tests reuse the end-to-end fixtures."""

from tests.worker.conftest import runtime  # noqa: F401 - re-exported fixture
