"""The task-hub worker: orchestration and activity dispatchers over the storage provider."""

from .registry import FunctionRegistry, UnknownFunctionError
from .worker import TaskHubWorker, WorkerOptions

__all__ = ["FunctionRegistry", "TaskHubWorker", "UnknownFunctionError", "WorkerOptions"]
