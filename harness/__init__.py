"""Harnesses the tests and the benchmarks share (a private Azurite); not part of the wheel."""
