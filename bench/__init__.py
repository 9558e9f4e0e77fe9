"""The benchmark suite: durable_ext (worker + Azurite) against DBOS and Microsoft's durabletask SDK.

Run it with ``make bench`` or ``.venv/bin/python -m bench`` from the repository root; the method
and the modules are described in bench/README.md and docs/performance.md.
"""
