// The dashboard's logic without the DOM: filters and URLs, sorting, counts, the history's
// timeline. Unit-tested with node's test runner (tests/dashboard/logic.test.mjs).

export const STATUSES = [
  "Running",
  "Pending",
  "Suspended",
  "Completed",
  "Failed",
  "Terminated",
  "ContinuedAsNew",
  "Canceled",
];

export const TERMINAL = new Set(["Completed", "Failed", "Terminated", "Canceled"]);

const DASHBOARD_SEGMENT = "/dashboard";

/** The management API's base path for the dashboard page at `pathname`
 * (`/api/durabletask/dashboard/` → `/api/durabletask`). */
export function apiBase(pathname) {
  const at = pathname.lastIndexOf(DASHBOARD_SEGMENT);
  return at < 0 ? "" : pathname.slice(0, at);
}

/** "1,234", or "1,000+" when the server stopped counting at its cap. */
export function formatCount(count, capped) {
  const text = Number(count).toLocaleString("en-US");
  return capped ? `${text}+` : text;
}

/** A `datetime-local` value (local time, no zone) as an ISO-8601 UTC time; "" stays "". */
export function localToIso(value) {
  if (!value) {
    return "";
  }
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** The instance filters as query parameters of `GET /instances` and `GET /taskhub/counts`. */
export function filterParams(filters) {
  const params = new URLSearchParams();
  if (filters.status) {
    params.set("runtimeStatus", filters.status);
  }
  if (filters.name) {
    params.set("name", filters.name);
  }
  if (filters.prefix) {
    params.set("instanceIdPrefix", filters.prefix);
  }
  const from = localToIso(filters.from);
  const to = localToIso(filters.to);
  if (from) {
    params.set("createdTimeFrom", from);
  }
  if (to) {
    params.set("createdTimeTo", to);
  }
  return params;
}

const FILTER_KEYS = ["status", "name", "prefix", "from", "to"];

/** The dashboard's location (`#/`, `#/instances?status=Failed`, `#/instance/{id}`,
 * `#/taskhub`) as `{view, id, filters}`. */
export function parseHash(hash) {
  const text = (hash || "").replace(/^#/, "");
  const [path, query = ""] = text.split("?", 2);
  const params = new URLSearchParams(query);
  const filters = {};
  for (const key of FILTER_KEYS) {
    filters[key] = params.get(key) || "";
  }
  if (path.startsWith("/instance/")) {
    return { view: "instance", id: decodeURIComponent(path.slice("/instance/".length)), filters };
  }
  if (path === "/taskhub") {
    return { view: "taskhub", id: "", filters };
  }
  return { view: "instances", id: "", filters };
}

/** The hash of the instances view with these filters (a shareable link). */
export function instancesHash(filters) {
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) {
    if (filters[key]) {
      params.set(key, filters[key]);
    }
  }
  const query = params.toString();
  return query ? `#/instances?${query}` : "#/instances";
}

export function instanceHash(id) {
  return `#/instance/${encodeURIComponent(id)}`;
}

/** Rows sorted by `key` (a status field) without changing `rows`; times and text compare as
 * text (ISO times sort as text), missing values last. */
export function sortRows(rows, key, direction) {
  const sign = direction === "descending" ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = a[key] ?? "";
    const y = b[key] ?? "";
    if (x === y) {
      return 0;
    }
    if (x === "") {
      return 1;
    }
    if (y === "") {
      return -1;
    }
    return x < y ? -sign : sign;
  });
}

/** "850 ms", "12.3 s", "4 min 5 s", "2 h 3 min". */
export function formatDuration(ms) {
  if (ms < 1000) {
    return `${Math.round(ms)} ms`;
  }
  const seconds = ms / 1000;
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${Math.round(seconds % 60)} s`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A date and a 24-hour time to the millisecond, in `locale` and `timeZone` (default: the
 * browser's). */
export function preciseTime(date, locale = undefined, timeZone = undefined) {
  const day = date.toLocaleDateString(locale, { timeZone });
  const clock = date.toLocaleTimeString(locale, {
    timeZone,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    fractionalSecondDigits: 3,
    hourCycle: "h23",
  });
  return `${day} ${clock}`;
}

/** JSON text as a value (text that is not JSON stays text). */
export function parseJson(text) {
  if (text === null || text === undefined || text === "") {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A value as indented JSON for display. */
export function pretty(value) {
  if (value === null || value === undefined) {
    return "(none)";
  }
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

const time = (text) => new Date(text).getTime();

/** The bars of the timeline: one per activity, sub-orchestration and timer, from when it was
 * scheduled to when its result came back (`end` null: still running, drawn to `now`). */
export function timeline(events, now = Date.now()) {
  const open = new Map();
  const bars = [];
  for (const event of events) {
    const type = event.EventType;
    if (type === "TaskScheduled" || type === "SubOrchestrationInstanceCreated") {
      const kind = type === "TaskScheduled" ? "activity" : "sub-orchestration";
      open.set(event.EventId, openBar(bars, event, kind, event.Name || "(unnamed)"));
    } else if (type === "TimerCreated") {
      open.set(event.EventId, openBar(bars, event, "timer", "timer"));
    } else if (type === "TimerFired") {
      // Stamped when the timer was set (as DTFx does): it ran until it was due.
      close(open.get(event.TimerId), time(event.FireAt || event.Timestamp), "completed");
    } else if (type.endsWith("Completed") && event.TaskScheduledId !== undefined) {
      close(open.get(event.TaskScheduledId), time(event.Timestamp), "completed");
    } else if (type.endsWith("Failed") && event.TaskScheduledId !== undefined) {
      close(open.get(event.TaskScheduledId), time(event.Timestamp), "failed");
    }
  }
  const first = events.length ? Math.min(...events.map((e) => time(e.Timestamp))) : now;
  const ends = bars.map((bar) => bar.end ?? now);
  const last = Math.max(first, ...ends, ...events.map((e) => time(e.Timestamp)));
  return { bars, start: first, end: last, peak: peakConcurrency(bars, now) };
}

function openBar(bars, event, kind, label) {
  const bar = {
    id: event.EventId,
    kind,
    label,
    instanceId: event.InstanceId || null,
    start: time(event.Timestamp),
    end: null,
    outcome: "running",
  };
  bars.push(bar);
  return bar;
}

function close(bar, end, outcome) {
  if (bar && bar.end === null) {
    bar.end = Math.max(end, bar.start);
    bar.outcome = outcome;
  }
}

/** The most bars running at once: the fan-out width. */
export function peakConcurrency(bars, now = Date.now()) {
  const edges = [];
  for (const bar of bars) {
    edges.push([bar.start, 1], [bar.end ?? now, -1]);
  }
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let peak = 0;
  for (const [, step] of edges) {
    running += step;
    peak = Math.max(peak, running);
  }
  return peak;
}

/** Where the instance's execution stands: its id, its generation (how many times the instance
 * ID was started again), its parent and children, and the failure that ended it (type, message,
 * stack). */
export function executionInfo(events) {
  const started = events.find((e) => e.EventType === "ExecutionStarted") || {};
  const completed = events.find((e) => e.EventType === "ExecutionCompleted") || {};
  const parent = started.ParentInstance?.OrchestrationInstance?.InstanceId || null;
  const children = events
    .filter((e) => e.EventType === "SubOrchestrationInstanceCreated" && e.InstanceId)
    .map((e) => ({ instanceId: e.InstanceId, name: e.Name }));
  const failure = completed.FailureDetails
    ? {
        type: completed.FailureDetails.ErrorType,
        message: completed.FailureDetails.ErrorMessage,
        stack: completed.FailureDetails.StackTrace || "",
      }
    : null;
  return {
    executionId: started.OrchestrationInstance?.ExecutionId || null,
    generation: started.Generation ?? 0,
    parent,
    children,
    failure,
  };
}

/** `{name, key}` of an entity's instance id (`@counter@key`), or null for an orchestration. */
export function entityParts(instanceId) {
  const match = /^@([^@]*)@(.*)$/s.exec(instanceId);
  return match ? { name: match[1], key: match[2] } : null;
}

/** The actions a status allows (read-only: none). */
export function allowedActions(status, readOnly) {
  if (readOnly) {
    return [];
  }
  if (TERMINAL.has(status)) {
    return status === "Failed" ? ["restart", "rewind", "purge"] : ["restart", "purge"];
  }
  const pause = status === "Suspended" ? "resume" : "suspend";
  return ["raiseEvent", pause, "terminate", "restart"];
}

/** A one-line summary of a history event's details for the history table. */
export function eventSummary(event) {
  if (event.FailureDetails) {
    return `${event.FailureDetails.ErrorType}: ${event.FailureDetails.ErrorMessage}`;
  }
  for (const field of ["Reason", "Result", "Input", "Data"]) {
    if (event[field] !== null && event[field] !== undefined && event[field] !== "") {
      return `${field}: ${String(event[field])}`;
    }
  }
  if (event.FireAt) {
    return `fires at ${event.FireAt}`;
  }
  return "";
}
