// Unit tests of the dashboard's logic (durable_ext/dashboard/static/logic.mjs): node --test.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  allowedActions,
  apiBase,
  entityParts,
  eventSummary,
  executionInfo,
  filterParams,
  formatCount,
  formatDuration,
  instanceHash,
  instancesHash,
  parseHash,
  peakConcurrency,
  preciseTime,
  sortRows,
  timeline,
} from "../../durable_ext/dashboard/static/logic.mjs";

const at = (seconds) => new Date(Date.UTC(2026, 0, 1, 0, 0, seconds)).toISOString();

test("the API base is the page's path before /dashboard", () => {
  assert.equal(apiBase("/api/durabletask/dashboard/"), "/api/durabletask");
  assert.equal(apiBase("/custom/durabletask/dashboard/index.html"), "/custom/durabletask");
});

test("counts past the cap read 1,000+", () => {
  assert.equal(formatCount(1000, true), "1,000+");
  assert.equal(formatCount(999, false), "999");
  assert.equal(formatCount(0, false), "0");
});

test("filters become the API's query parameters, empty ones left out", () => {
  const params = filterParams({ status: "Failed", name: "hello", prefix: "ord-", from: "", to: "" });
  assert.equal(params.toString(), "runtimeStatus=Failed&name=hello&instanceIdPrefix=ord-");
  const timed = filterParams({ from: "2026-01-01T10:00:00" });
  assert.match(timed.get("createdTimeFrom"), /^2026-01-01T\d\d:00:00\.000Z$/);
  assert.equal(filterParams({}).toString(), "");
});

test("a location round-trips through its hash", () => {
  const filters = { status: "Running", name: "", prefix: "a b", from: "", to: "" };
  assert.deepEqual(parseHash(instancesHash(filters)), { view: "instances", id: "", filters });
  assert.equal(parseHash(instanceHash("@counter@k/1?x")).id, "@counter@k/1?x");
  assert.equal(parseHash("#/taskhub").view, "taskhub");
  assert.equal(parseHash("").view, "instances");
});

test("rows sort within the page, either way, missing values last", () => {
  const rows = [{ n: "b" }, { n: "a" }, { n: null }, { n: "c" }];
  assert.deepEqual(sortRows(rows, "n", "ascending").map((r) => r.n), ["a", "b", "c", null]);
  assert.deepEqual(sortRows(rows, "n", "descending").map((r) => r.n), ["c", "b", "a", null]);
  assert.deepEqual(rows.map((r) => r.n), ["b", "a", null, "c"], "the page itself is untouched");
});

test("durations read in the unit that fits", () => {
  assert.equal(formatDuration(850), "850 ms");
  assert.equal(formatDuration(12_340), "12.3 s");
  assert.equal(formatDuration(245_000), "4 min 5 s");
  assert.equal(formatDuration(7_380_000), "2 h 3 min");
});

const fanOut = [
  { EventType: "ExecutionStarted", EventId: -1, Timestamp: at(0), Generation: 2, OrchestrationInstance: { InstanceId: "p", ExecutionId: "e1" } },
  { EventType: "TaskScheduled", EventId: 0, Name: "a", Timestamp: at(1) },
  { EventType: "TaskScheduled", EventId: 1, Name: "b", Timestamp: at(1) },
  { EventType: "SubOrchestrationInstanceCreated", EventId: 2, Name: "child", InstanceId: "c1", Timestamp: at(1) },
  { EventType: "TimerCreated", EventId: 3, FireAt: at(9), Timestamp: at(2) },
  { EventType: "TaskCompleted", EventId: -1, TaskScheduledId: 0, Timestamp: at(3) },
  { EventType: "TaskFailed", EventId: -1, TaskScheduledId: 1, Timestamp: at(4), FailureDetails: { ErrorType: "ValueError", ErrorMessage: "bad" } },
  { EventType: "SubOrchestrationInstanceCompleted", EventId: -1, TaskScheduledId: 2, Timestamp: at(6) },
  { EventType: "TimerFired", EventId: -1, TimerId: 3, FireAt: at(9), Timestamp: at(9) },
  {
    EventType: "ExecutionCompleted",
    EventId: 4,
    Timestamp: at(10),
    FailureDetails: { ErrorType: "RuntimeError", ErrorMessage: "boom", StackTrace: "Traceback..." },
  },
];

test("the timeline has a bar per task, scheduled to result, with its outcome", () => {
  const { bars, start, end, peak } = timeline(fanOut);
  assert.deepEqual(
    bars.map((b) => [b.kind, b.label, (b.end - b.start) / 1000, b.outcome]),
    [
      ["activity", "a", 2, "completed"],
      ["activity", "b", 3, "failed"],
      ["sub-orchestration", "child", 5, "completed"],
      ["timer", "timer", 7, "completed"],
    ],
  );
  assert.equal(bars[2].instanceId, "c1");
  assert.equal((end - start) / 1000, 10);
  assert.equal(peak, 4, "all four run at once from t=2 to t=3");
});

test("a task without a result runs to now", () => {
  const now = new Date(at(30)).getTime();
  const { bars, end } = timeline(fanOut.slice(0, 2), now);
  assert.equal(bars[0].end, null);
  assert.equal(bars[0].outcome, "running");
  assert.equal(end, now);
});

test("peak concurrency counts bars that touch as sequential", () => {
  const bars = [
    { start: 0, end: 10 },
    { start: 10, end: 20 },
    { start: 5, end: 15 },
  ];
  assert.equal(peakConcurrency(bars), 2);
  assert.equal(peakConcurrency([]), 0);
});

test("execution info: execution, generation, children, parent and the failure", () => {
  const info = executionInfo(fanOut);
  assert.equal(info.executionId, "e1");
  assert.equal(info.generation, 2);
  assert.deepEqual(info.children, [{ instanceId: "c1", name: "child" }]);
  assert.equal(info.parent, null);
  assert.deepEqual(info.failure, { type: "RuntimeError", message: "boom", stack: "Traceback..." });
  const child = executionInfo([
    { EventType: "ExecutionStarted", ParentInstance: { OrchestrationInstance: { InstanceId: "p" } } },
  ]);
  assert.equal(child.parent, "p");
  assert.equal(child.failure, null);
});

test("entity ids are recognised by their leading @", () => {
  assert.deepEqual(entityParts("@counter@key@with@ats"), { name: "counter", key: "key@with@ats" });
  assert.equal(entityParts("plain-id"), null);
});

test("the actions offered follow the status, and read-only offers none", () => {
  assert.deepEqual(allowedActions("Running", false), ["raiseEvent", "suspend", "terminate", "restart"]);
  assert.deepEqual(allowedActions("Suspended", false), ["raiseEvent", "resume", "terminate", "restart"]);
  assert.deepEqual(allowedActions("Failed", false), ["restart", "rewind", "purge"]);
  assert.deepEqual(allowedActions("Completed", false), ["restart", "purge"]);
  assert.deepEqual(allowedActions("Running", true), []);
});

test("a history event's summary names its failure or its payload", () => {
  assert.equal(eventSummary(fanOut[6]), "ValueError: bad");
  assert.equal(eventSummary({ Result: "42" }), "Result: 42");
  assert.equal(eventSummary({ FireAt: "t" }), "fires at t");
  assert.equal(eventSummary({}), "");
});

test("history times read to the millisecond on a 24-hour clock", () => {
  const date = new Date("2026-12-05T13:04:05.067Z");
  assert.equal(preciseTime(date, "en-GB", "UTC"), "05/12/2026 13:04:05.067");
  assert.equal(preciseTime(date, "en-US", "UTC"), "12/5/2026 13:04:05.067");
});
