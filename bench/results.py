"""The schema of bench/results.json: typed, read-only views of what the report uses.

`load(path)` (or `from_json(document)`) parses and checks a results document once; the report
modules work only on these types. The suite still writes the document as plain JSON (it keeps
more than the report reads: every run's raw figures, the packages, the sizes); keys the types do
not name are left out here, and a key the report needs that has the wrong type, or a required
key that is missing, is a `ResultsError` naming where in the document it is.
"""

from __future__ import annotations

import dataclasses
import json
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

__all__ = [
    "SDK_CLIENT",
    "ChainSeries",
    "ChainSummary",
    "EpisodeRow",
    "EpisodeSummary",
    "Failed",
    "Floor",
    "FloorParallel",
    "FloorStep",
    "Idle",
    "Lever",
    "Results",
    "ResultsError",
    "ScenarioSummary",
    "from_json",
    "load",
]

SDK_CLIENT = "Azure SDK (aio)"
"""The floor's `client` for steps made through the Azure SDK's aio clients."""

T = TypeVar("T")


class ResultsError(ValueError):
    """A results document that does not match the schema (the message says where)."""


@dataclass(frozen=True)
class Failed:
    """A part of the suite that failed: only its error was recorded."""

    error: str


# -- environment -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Machine:
    cpu: str | None = None
    cores: int | None = None
    memory_gb: float | None = None


@dataclass(frozen=True)
class Environment:
    machine: Machine = field(default_factory=Machine)
    python: str | None = None
    node: str | None = None
    azurite: str | None = None
    azurite_persistence: str | None = None
    git_commit: str | None = None
    durable_ext_uncommitted_files: list[str] = field(default_factory=list)
    load_average_at_start: float | None = None
    load_average_at_end: float | None = None
    durable_ext_source_at_start: str | None = None
    durable_ext_source_at_end: str | None = None


@dataclass(frozen=True)
class Sizes:
    hellocities_steps: int = 5


# -- scenario runs and their summaries ---------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    """One scenario run (raw.scenarios), as far as the report reads it."""

    wall_s: float | None = None
    other_cpu_s: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class ScenarioSummary:
    """The medians of one scenario on one engine (`suite.summarize_runs`). An empty summary (a
    lever's scenario the main runs did not cover) has every figure None."""

    runs: int = 0
    failed_runs: int = 0
    all_correct: bool = True
    error: str | None = None
    units: int | None = None
    throughput_per_s: float | None = None
    throughput_runs: list[float | None] = field(default_factory=list)
    """Each successful run's rate (the median is `throughput_per_s`)."""
    wall_s: float | None = None
    cpu_s: float | None = None
    storage_cpu_s: float | None = None
    other_cpu_s: float | None = None
    rss_peak_mb: float | None = None
    requests_per_unit: float | None = None
    client_requests_per_unit: float | None = None
    requests_total_per_unit: float | None = None
    sql_statements_per_unit: float | None = None
    until_last_activity_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    raise_calls_s: float | None = None
    cpu_ms_per_unit: float | None = None
    storage_cpu_ms_per_unit: float | None = None
    requests_by_category_per_unit: dict[str, float] | None = None
    request_median_ms: dict[str, float] = field(default_factory=dict)
    """The worker's median milliseconds per request, by category."""
    client_request_median_ms: dict[str, float] = field(default_factory=dict)
    """The same for the bench client's requests."""


# -- the physical floor ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FloorStep:
    """One sequential variant of the floor (a raw orchestration step's storage calls)."""

    label: str = "?"
    client: str = "?"
    step_ms: float | None = None
    steps_per_s: float | None = None
    requests_per_step: int | None = None
    runs_step_ms: list[float] = field(default_factory=list)
    cpu_ms_per_step: float | None = None
    cpu_ms_per_request: float | None = None
    storage_cpu_ms_per_step: float | None = None
    storage_cpu_ms_per_request: float | None = None
    op_median_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FloorParallel:
    """Many chains of DTFx-order steps at once."""

    chains: int
    steps_per_s: float
    requests_per_s: float
    client: str = SDK_CLIENT
    cpu_share: float | None = None
    storage_cpu_share: float | None = None


_LEGACY_FLOOR = {"dtfx": "DTFx order", "handoff": "handoff"}
"""Results from before the lean REST path have only these two variants, both on the SDK, and
no `variants` list, labels or clients."""
_PARALLEL = ("parallel", "parallel_lean")


@dataclass(frozen=True)
class Floor:
    """raw.floor: the sequential variants in the order measured, and the parallel runs."""

    steps_per_run: int | None
    steps: dict[str, FloorStep]
    parallel: dict[str, FloorParallel]


# -- replay, profile, chain, episode, idle, levers, sensitivity --------------------------------------
@dataclass(frozen=True)
class ReplayTiming:
    cpu_median_s: float


@dataclass(frozen=True)
class ReplayScenario:
    scenario: str
    events: int
    durable_ext: ReplayTiming
    sdk: ReplayTiming
    wall_ratio: float
    cpu_ratio: float
    cpu_ratios: dict[str, float]


@dataclass(frozen=True)
class Replay:
    scenarios: list[ReplayScenario]
    runs: int | None = None


@dataclass(frozen=True)
class AreaTime:
    seconds: float
    share: float


@dataclass(frozen=True)
class ProfiledFunction:
    function: str
    own_s: float
    calls: int


@dataclass(frozen=True)
class Profile:
    by_area: dict[str, AreaTime]
    top_functions: list[ProfiledFunction] = field(default_factory=list)


@dataclass(frozen=True)
class ChainSeries:
    """The N-step chains with the instance cache on or off, one entry per length."""

    wall_s: list[float]
    cpu_s: list[float]
    storage_cpu_s: list[float | None]
    invocations: list[int]
    replayed_resumes: list[int]
    resumes: list[int]
    history_query_bytes: list[int]
    requests: list[int | None]
    exponent_resumes: float | None = None
    exponent_cpu: float | None = None
    exponent_storage_cpu: float | None = None
    exponent_history_query_bytes: float | None = None


@dataclass(frozen=True)
class ChainSummary:
    lengths: list[int]
    cache_on: ChainSeries | Failed | None = None
    cache_off: ChainSeries | Failed | None = None


@dataclass(frozen=True)
class EpisodeRow:
    """One position along the cached chain (`episode.summarize_episodes`)."""

    position: int
    history_events: int
    correct: bool
    cpu_ms_median: float | None = None
    cpu_ms_mean: float | None = None
    wall_ms_median: float | None = None
    storage_cpu_ms_per_episode: float | None = None
    engine_cached_ms_median: float | None = None
    engine_replay_ms: float | None = None


@dataclass(frozen=True)
class EpisodeSummary:
    rows: list[EpisodeRow] = field(default_factory=list)
    window: int | None = None
    rounds: int = 1
    measured_at: str | None = None
    git_commit: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Idle:
    """Idle-worker memory (bench/idle.py)."""

    count: int
    rss_idle_mb: float
    rss_before_mb: float
    rss_peak_mb: float
    rss_per_instance_kb: float
    cached_instances: int
    all_running_s: float
    running_per_s: float
    worker_cpu_s: float
    start_retries_after_connection_errors: int = 0
    client_cpu_s: float | None = None
    storage_cpu_s: float | None = None
    other_cpu_s: float | None = None
    starts_per_s_by_tenth: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class EntityRun:
    """Signalled entity operations run by a worker (bench/entities.py)."""

    entities: int
    ops: int
    measured_ops: int
    wall_s: float
    cpu_s: float
    client_sends_per_s: float
    ops_per_s: float | None = None
    ops_per_s_per_entity: float | None = None


@dataclass(frozen=True)
class Entities:
    """Entity throughput on one entity and over 100 (bench/entities.py)."""

    ops: int
    df_target_ops_per_s: float
    one: EntityRun
    spread: EntityRun


@dataclass(frozen=True)
class Lever:
    """A WorkerOptions lever switched off (`off`) against the main runs' medians (`on`)."""

    key: str
    label: str
    description: str
    off_option: str | None = None
    missing: str | None = None
    off: dict[str, ScenarioSummary] = field(default_factory=dict)
    on: dict[str, ScenarioSummary] = field(default_factory=dict)


@dataclass(frozen=True)
class Sensitivity:
    """durable_ext once per scenario on an in-memory Azurite."""

    scenarios: dict[str, ScenarioSummary] = field(default_factory=dict)
    error: str | None = None


# -- the document ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Raw:
    floor: Floor | None = None
    scenarios: dict[str, dict[str, list[Run]]] = field(default_factory=dict)
    replay: Replay | Failed | None = None
    profile: dict[str, Profile | Failed] = field(default_factory=dict)
    idle: Idle | Failed | None = None
    entities: Entities | Failed | None = None


@dataclass(frozen=True)
class Summary:
    scenarios: dict[str, dict[str, ScenarioSummary]] = field(default_factory=dict)
    chain: ChainSummary | None = None
    episode: EpisodeSummary | None = None
    levers: list[Lever] = field(default_factory=list)
    storage_sensitivity: Sensitivity | None = None
    repeat: dict[str, Any] | None = None
    """bench/repeat_analysis.py's summary, read by its own functions."""
    scale_out: dict[str, Any] | None = None
    """bench/scale_out.py's summary, read by its own `scale_out_markdown` as it is."""
    http: dict[str, Any] | None = None
    """The HTTP row (bench/http_analysis.py `summarize_http`), kept as the suite wrote it."""


@dataclass(frozen=True)
class Results:
    """A whole results document."""

    generated_at: str
    duration_s: float
    runs: int
    environment: Environment
    engines: list[str]
    quick: bool = False
    lever_runs: int = 1
    sizes: Sizes = field(default_factory=Sizes)
    unavailable_engines: dict[str, str] = field(default_factory=dict)
    method: dict[str, str] | None = None
    raw: Raw = field(default_factory=Raw)
    summary: Summary = field(default_factory=Summary)

    def scenario(self, scenario: str, engine: str) -> ScenarioSummary | None:
        """The summary of `scenario` on `engine`, None if it was not run."""
        return self.summary.scenarios.get(scenario, {}).get(engine)


def load(path: Path) -> Results:
    """Read and check a results file."""
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not JSON ({exc})") from exc
    try:
        return from_json(document)
    except ResultsError as exc:
        raise ResultsError(f"{path}: {exc}") from exc


def from_json(document: Any) -> Results:
    """Check a parsed results document against the schema; the typed view of it."""
    return _decode(Results, document, "results")


# -- decoding ----------------------------------------------------------------------------------------
_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}


def _decode(kind: Any, value: Any, where: str) -> Any:
    """`value` checked against the type `kind` (built from the annotations above)."""
    if kind is Any:
        return value
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        return _decode_union(args, value, where)
    if kind is Floor:
        return _decode_floor(value, where)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ResultsError(f"{where}: expected a list, got {_shown(value)}")
        return [_decode(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ResultsError(f"{where}: expected an object, got {_shown(value)}")
        return {k: _decode(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if kind is Any:
        return value
    if kind is type(None):
        if value is not None:
            raise ResultsError(f"{where}: expected null, got {_shown(value)}")
        return None
    return _decode_scalar(kind, value, where)


def _decode_scalar(kind: type, value: Any, where: str) -> Any:
    # bool is an int in Python, not in the schema; an integer is a valid number (kept as is, so
    # the report prints it as the suite wrote it).
    accepted = (int, float) if kind is float else (kind,)
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, accepted):
        raise ResultsError(f"{where}: expected {_NAMES[kind]}, got {_shown(value)}")
    return value


def _decode_union(members: tuple[Any, ...], value: Any, where: str) -> Any:
    if value is None:
        if type(None) in members:
            return None
        raise ResultsError(f"{where}: expected a value, got null")
    if Failed in members and isinstance(value, dict) and "error" in value:
        return _decode_dataclass(Failed, value, where)
    candidates = [m for m in members if m is not type(None) and m is not Failed]
    if len(candidates) != 1:
        raise TypeError(f"unsupported union at {where}: {members}")
    return _decode(candidates[0], value, where)


def _decode_dataclass(kind: type[T], value: Any, where: str) -> T:
    if not isinstance(value, dict):
        raise ResultsError(f"{where}: expected an object, got {_shown(value)}")
    hints = get_type_hints(kind)
    arguments = {}
    for spec in dataclasses.fields(kind):  # type: ignore[arg-type]
        if spec.name in value:
            arguments[spec.name] = _decode(
                hints[spec.name], value[spec.name], f"{where}.{spec.name}"
            )
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ResultsError(f"{where}: missing {spec.name!r}")
    return kind(**arguments)


def _decode_floor(value: Any, where: str) -> Floor:
    """raw.floor keeps its variants as keys beside `variants` (their order) and the parallel
    runs; legacy results (no `variants`) get their labels and the SDK client filled in."""
    if not isinstance(value, dict):
        raise ResultsError(f"{where}: expected an object, got {_shown(value)}")
    order = _decode(list[str] | None, value.get("variants"), f"{where}.variants")
    steps = {}
    for key in order or [k for k in _LEGACY_FLOOR if k in value]:
        if key not in value:
            continue
        entry = value[key]
        if order is None and isinstance(entry, dict):
            entry = {"label": _LEGACY_FLOOR[key], "client": SDK_CLIENT, **entry}
        steps[key] = _decode_dataclass(FloorStep, entry, f"{where}.{key}")
    parallel = {
        key: _decode_dataclass(FloorParallel, value[key], f"{where}.{key}")
        for key in _PARALLEL
        if value.get(key)
    }
    steps_per_run = _decode(int | None, value.get("steps_per_run"), f"{where}.steps_per_run")
    return Floor(steps_per_run=steps_per_run, steps=steps, parallel=parallel)


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
