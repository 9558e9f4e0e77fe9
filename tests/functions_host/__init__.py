"""A fake Azure Functions host for tests, built from the host's and the Python worker's rules.

`FakeHost(app_dir)` imports `function_app.py` as the worker does, refuses what the worker and
host refuse, serves HTTP functions on 127.0.0.1 with the host's routing and key checks, and fires
timer functions on their schedules. See tests/functions_host/README.md.
"""

from .host import FakeHost, HostFunctionError
from .invocations import Invocation, InvocationLog
from .keys import HostKeys
from .loader import WorkerIndexingError
from .timers import ManualClock, SystemClock

__all__ = [
    "FakeHost",
    "HostFunctionError",
    "HostKeys",
    "Invocation",
    "InvocationLog",
    "ManualClock",
    "SystemClock",
    "WorkerIndexingError",
]
