"""What the executor saw during an episode, in order, for the tracking events (`tracking.py`).

The executor notes each lifecycle step that only it can tell apart (an event delivered or buffered,
a wait begun, a task scheduled or replayed) with its replay flag; the worker turns the notes into
Durable Functions' tracking events after the episode. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto

__all__ = ["Observation", "Seen"]


class Seen(Enum):
    SCHEDULED = auto()
    """A task was scheduled (an activity, a sub-orchestration or an entity operation; `name`,
    `function_type`)."""
    LISTENING = auto()
    """The code waits for an event or a timer (`detail`: the reason)."""
    EVENT_RAISED = auto()
    """An external event reached a waiting task (`name`: the event)."""
    EVENT_SAVED = auto()
    """An external event arrived with no one waiting and was kept (`name`: the event)."""
    TIMER_FIRED = auto()
    """A durable timer fired (`detail`: its fire time, ISO 8601)."""
    TASK_COMPLETED = auto()
    """A replayed task completion (live ones are logged where the task ran)."""
    TASK_FAILED = auto()
    """A replayed task failure (`detail`: the reason)."""
    ENTITY_RESPONSE = auto()
    """An entity answered a call (`detail`: the request id)."""
    CONTINUED_AS_NEW = auto()
    """The execution continued as new in this episode (`detail`: the new input)."""


@dataclass(frozen=True, slots=True)
class Observation:
    kind: Seen
    is_replay: bool
    name: str = ""
    function_type: str = "Activity"
    """What `name` is: `Activity`, `Orchestrator` (a sub-orchestration) or `Entity`."""
    task_id: int = -1
    detail: str | None = None
