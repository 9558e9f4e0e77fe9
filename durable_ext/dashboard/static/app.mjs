// The dashboard page: views and actions over the management API (docs/dashboard.md). Pure
// logic lives in logic.mjs; this module only reads the API and builds the DOM.

import {
  STATUSES,
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
  parseJson,
  preciseTime,
  pretty,
  sortRows,
  timeline,
} from "./logic.mjs";

const API = apiBase(window.location.pathname);
const READ_ONLY = document.documentElement.dataset.readOnly === "true";
const KEY_STORAGE = "durable-ext-dashboard-key";
const THEME_STORAGE = "durable-ext-dashboard-theme";
const REFRESH_MS = 5000;
const PAGE_SIZES = [25, 50, 100, 200];

const view = document.getElementById("view");
const notice = document.getElementById("notice");

// -- DOM helpers ---------------------------------------------------------------------------------

/** An element with attributes (`on*` are listeners) and children (text or nodes). */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (name.startsWith("on")) {
      element.addEventListener(name.slice(2), value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      element.append(child instanceof Node ? child : String(child));
    }
  }
  return element;
}

/** Replace `parent`'s children, leaving out the absent ones (null, false). */
function fill(parent, ...children) {
  parent.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function say(message, isError = false) {
  notice.textContent = message;
  notice.className = isError ? "error" : "";
}

function statusBadge(status) {
  return h("span", { class: `status status-${status}` }, status || "unknown");
}

/** A time in the browser's zone and locale; `precise`: with milliseconds. */
function localTime(iso, precise = false) {
  if (!iso) {
    return "";
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return iso;
  }
  return precise ? preciseTime(date) : date.toLocaleString();
}

// -- the API -------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function systemKey() {
  return window.sessionStorage.getItem(KEY_STORAGE) || "";
}

/** Take a key given as `?code=` into session storage and out of the address bar. */
function adoptKeyFromUrl() {
  const url = new URL(window.location.href);
  const code = url.searchParams.get("code");
  if (code) {
    window.sessionStorage.setItem(KEY_STORAGE, code);
    url.searchParams.delete("code");
    window.history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
}

async function api(path, { method = "GET", params = null, json, rawJson, headers = {} } = {}) {
  const query = params && params.toString() ? `?${params}` : "";
  const sent = { ...headers };
  const key = systemKey();
  if (key) {
    sent["x-functions-key"] = key;
  }
  let body;
  if (rawJson !== undefined) {
    body = rawJson;
  } else if (json !== undefined) {
    body = JSON.stringify(json);
  }
  if (body !== undefined) {
    sent["Content-Type"] = "application/json";
  }
  const response = await fetch(API + path + query, { method, headers: sent, body });
  const text = await response.text();
  const data = text ? parseJson(text) : null;
  if (!response.ok) {
    if (response.status === 401) {
      askForKey();
    }
    const message = data && typeof data === "object" && data.error ? data.error : response.statusText;
    throw new ApiError(response.status, message);
  }
  return { data, headers: response.headers, status: response.status };
}

// -- dialogs -------------------------------------------------------------------------------------

const dialog = document.getElementById("dialog");
const dialogForm = document.getElementById("dialog-form");
const dialogError = document.getElementById("dialog-error");
let dialogSubmit = null;

/** Open the confirmation dialog: `fields` go in its body; `submit()` runs on confirm and may
 * throw to keep it open with the error shown. */
function openDialog(title, confirmLabel, fields, submit, { danger = false } = {}) {
  document.getElementById("dialog-title").textContent = title;
  document.getElementById("dialog-body").replaceChildren(...fields);
  const confirm = document.getElementById("dialog-confirm");
  confirm.textContent = confirmLabel;
  confirm.className = danger ? "danger" : "";
  dialogError.textContent = "";
  dialogSubmit = submit;
  dialog.showModal();
  const first = dialog.querySelector("input, select, textarea") || confirm;
  first.focus();
}

dialogForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const confirm = document.getElementById("dialog-confirm");
  confirm.disabled = true;
  try {
    await dialogSubmit();
    dialog.close();
  } catch (error) {
    dialogError.textContent = error.message;
  } finally {
    confirm.disabled = false;
  }
});
document.getElementById("dialog-cancel").addEventListener("click", () => dialog.close());

function field(label, control) {
  return h("label", {}, label, control);
}

function askForKey() {
  if (dialog.open) {
    return;
  }
  const input = h("input", { type: "password", id: "key-input", autocomplete: "off", required: true });
  openDialog(
    "System key required",
    "Use this key",
    [
      h("p", {}, "The management API needs its system key (DURABLE_EXT_SYSTEM_KEY). It is kept in this tab only."),
      field("System key", input),
    ],
    async () => {
      window.sessionStorage.setItem(KEY_STORAGE, input.value);
      route();
    },
  );
}

function parseJsonInput(text, what) {
  if (!text.trim()) {
    return "null";
  }
  try {
    JSON.parse(text);
  } catch (error) {
    throw new Error(`${what} is not valid JSON: ${error.message}`, { cause: error });
  }
  return text;
}

// -- instances view ------------------------------------------------------------------------------

const list = {
  filters: {},
  pageSize: 50,
  tokens: [""],
  page: 0,
  next: "",
  rows: [],
  sort: { key: "", direction: "ascending" },
  autoRefresh: true,
};

const COLUMNS = [
  ["instanceId", "Instance ID"],
  ["name", "Name"],
  ["runtimeStatus", "Status"],
  ["createdTime", "Created"],
  ["lastUpdatedTime", "Last updated"],
];

async function showInstances(filters) {
  const sameFilters = JSON.stringify(filters) === JSON.stringify(list.filters);
  if (!sameFilters) {
    list.filters = filters;
    list.tokens = [""];
    list.page = 0;
  }
  document.title = "Instances · durable_ext dashboard";
  const orchestrators = await api("/orchestrators").then(
    (r) => r.data.orchestrators,
    () => [],
  );
  fill(
    view,
    h("h1", {}, "Instances"),
    filterForm(filters, orchestrators),
    h("ul", { class: "counts", id: "counts", "aria-label": "Instances per status" }),
    h(
      "div",
      { class: "toolbar" },
      h(
        "button",
        {
          type: "button",
          id: "auto-refresh",
          class: "quiet",
          "aria-pressed": String(list.autoRefresh),
          onclick: toggleAutoRefresh,
        },
        list.autoRefresh ? "Pause auto-refresh" : "Resume auto-refresh",
      ),
      h("button", { type: "button", class: "quiet", onclick: () => refreshInstances() }, "Refresh now"),
      h("span", { class: "spacer" }),
      READ_ONLY
        ? null
        : h(
            "button",
            { type: "button", id: "start-new", onclick: () => startDialog(orchestrators) },
            "Start orchestration…",
          ),
    ),
    h(
      "table",
      { id: "instances" },
      h("caption", { class: "visually-hidden" }, "Instances, one page"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          COLUMNS.map(([key, label]) =>
            h(
              "th",
              { scope: "col", "aria-sort": list.sort.key === key ? list.sort.direction : null },
              h("button", { type: "button", "data-sort": key, onclick: () => sortBy(key) }, label),
            ),
          ),
        ),
      ),
      h("tbody", {}),
    ),
    h(
      "div",
      { class: "pager" },
      h("button", { type: "button", class: "quiet", id: "prev-page", onclick: () => turnPage(-1) }, "Previous page"),
      h("span", { id: "page-label", "aria-live": "polite" }),
      h("button", { type: "button", class: "quiet", id: "next-page", onclick: () => turnPage(1) }, "Next page"),
      h(
        "label",
        { class: "inline" },
        "Rows per page",
        h(
          "select",
          { id: "page-size", onchange: changePageSize },
          PAGE_SIZES.map((size) =>
            h("option", { value: size, selected: size === list.pageSize }, size),
          ),
        ),
      ),
    ),
  );
  await refreshInstances();
}

function filterForm(filters, orchestrators) {
  const statusSelect = h(
    "select",
    { name: "status", id: "filter-status" },
    h("option", { value: "" }, "Any"),
    STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s)),
  );
  const nameSelect = h(
    "select",
    { name: "name", id: "filter-name" },
    h("option", { value: "" }, "Any"),
    orchestrators.map((n) => h("option", { value: n, selected: n === filters.name }, n)),
  );
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter instances",
      onsubmit: (event) => {
        event.preventDefault();
        const data = new FormData(form);
        const next = {};
        for (const key of ["status", "name", "prefix", "from", "to"]) {
          next[key] = String(data.get(key) || "");
        }
        window.location.hash = instancesHash(next);
      },
    },
    field("Status", statusSelect),
    field("Orchestrator", nameSelect),
    field("Instance ID prefix", h("input", { name: "prefix", id: "filter-prefix", value: filters.prefix || "" })),
    field("Created from", h("input", { type: "datetime-local", name: "from", id: "filter-from", step: 1, value: filters.from || "" })),
    field("Created to", h("input", { type: "datetime-local", name: "to", id: "filter-to", step: 1, value: filters.to || "" })),
    h("button", { type: "submit", id: "apply-filters" }, "Apply filters"),
    h("a", { href: "#/instances", class: "button quiet" }, "Clear"),
  );
  return form;
}

async function refreshInstances() {
  const token = list.tokens[list.page];
  const params = filterParams(list.filters);
  params.set("top", String(list.pageSize));
  params.set("showInput", "false");
  const headers = token ? { "x-ms-continuation-token": token } : {};
  const countParams = filterParams({ ...list.filters, status: "" });
  try {
    const [page, counts] = await Promise.all([
      api("/instances", { params, headers }),
      api("/taskhub/counts", { params: countParams }),
    ]);
    if (parseHash(window.location.hash).view !== "instances") {
      return;
    }
    list.rows = page.data;
    list.next = page.headers.get("x-ms-continuation-token") || "";
    renderRows();
    renderCounts(counts.data.counts);
  } catch (error) {
    say(`Could not load instances: ${error.message}`, true);
  }
}

function renderRows() {
  const body = view.querySelector("#instances tbody");
  if (!body) {
    return;
  }
  const rows = list.sort.key ? sortRows(list.rows, list.sort.key, list.sort.direction) : list.rows;
  body.replaceChildren(
    ...rows.map((row) =>
      h(
        "tr",
        {},
        h("td", { class: "id mono" }, h("a", { href: instanceHash(row.instanceId) }, row.instanceId)),
        h("td", {}, row.name),
        h("td", {}, statusBadge(row.runtimeStatus)),
        h("td", {}, h("time", { datetime: row.createdTime }, localTime(row.createdTime))),
        h("td", {}, h("time", { datetime: row.lastUpdatedTime }, localTime(row.lastUpdatedTime))),
      ),
    ),
  );
  if (!rows.length) {
    body.append(h("tr", {}, h("td", { colspan: COLUMNS.length }, "No instances on this page.")));
  }
  view.querySelector("#prev-page").disabled = list.page === 0;
  view.querySelector("#next-page").disabled = !list.next;
  view.querySelector("#page-label").textContent = `Page ${list.page + 1} · ${rows.length} rows`;
}

function renderCounts(counts) {
  const target = view.querySelector("#counts");
  if (!target) {
    return;
  }
  target.replaceChildren(
    ...counts
      .filter((c) => c.count > 0 || c.runtimeStatus === list.filters.status)
      .map((c) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              "aria-pressed": String(c.runtimeStatus === list.filters.status),
              "data-status": c.runtimeStatus,
              onclick: () => {
                const status = c.runtimeStatus === list.filters.status ? "" : c.runtimeStatus;
                window.location.hash = instancesHash({ ...list.filters, status });
              },
            },
            statusBadge(c.runtimeStatus),
            h("strong", {}, formatCount(c.count, c.capped)),
          ),
        ),
      ),
  );
}

function sortBy(key) {
  const same = list.sort.key === key;
  list.sort = { key, direction: same && list.sort.direction === "ascending" ? "descending" : "ascending" };
  for (const th of view.querySelectorAll("#instances th")) {
    const button = th.querySelector("button");
    if (button.dataset.sort === key) {
      th.setAttribute("aria-sort", list.sort.direction);
    } else {
      th.removeAttribute("aria-sort");
    }
  }
  renderRows();
}

function turnPage(step) {
  if (step > 0 && list.next) {
    list.tokens[list.page + 1] = list.next;
    list.page += 1;
  } else if (step < 0 && list.page > 0) {
    list.page -= 1;
  }
  refreshInstances();
}

function changePageSize(event) {
  list.pageSize = Number(event.target.value);
  list.tokens = [""];
  list.page = 0;
  refreshInstances();
}

function toggleAutoRefresh(event) {
  list.autoRefresh = !list.autoRefresh;
  event.target.setAttribute("aria-pressed", String(list.autoRefresh));
  event.target.textContent = list.autoRefresh ? "Pause auto-refresh" : "Resume auto-refresh";
}

function startDialog(orchestrators) {
  const name = h(
    "select",
    { id: "start-name", required: true },
    orchestrators.map((n) => h("option", { value: n }, n)),
  );
  const id = h("input", { id: "start-id", placeholder: "a new id if empty" });
  const input = h("textarea", { id: "start-input", spellcheck: "false" }, "null");
  openDialog(
    "Start an orchestration",
    "Start",
    [field("Orchestrator", name), field("Instance ID (optional)", id), field("Input (JSON)", input)],
    async () => {
      const body = parseJsonInput(input.value, "The input");
      const path = `/orchestrators/${encodeURIComponent(name.value)}${id.value ? `/${encodeURIComponent(id.value)}` : ""}`;
      const { data } = await api(path, { method: "POST", rawJson: body });
      say(`Started ${name.value} as ${data.id}.`);
      window.location.hash = instanceHash(data.id);
    },
  );
}

// -- instance view -------------------------------------------------------------------------------

let shownInstance = "";

async function showInstance(id, quiet = false) {
  document.title = `${id} · durable_ext dashboard`;
  let status;
  let history;
  try {
    const path = `/instances/${encodeURIComponent(id)}`;
    [status, history] = await Promise.all([
      api(path, { params: new URLSearchParams({ showInput: "true" }) }).then((r) => r.data),
      api(`${path}/history`).then((r) => r.data.events, () => []),
    ]);
  } catch (error) {
    fill(
      view,
      h("h1", {}, "Instance ", h("span", { class: "mono" }, id)),
      h("p", { class: "error" }, error.message),
      h("p", {}, h("a", { href: instancesHash(list.filters) }, "Back to the instances")),
    );
    return;
  }
  const rendered = JSON.stringify([status, history]);
  if (quiet && rendered === shownInstance) {
    return;
  }
  shownInstance = rendered;
  const info = executionInfo(history);
  const entity = entityParts(id);
  fill(
    view,
    h("p", {}, h("a", { href: instancesHash(list.filters) }, "← Instances")),
    h("h1", {}, entity ? "Entity " : "Instance ", h("span", { class: "mono" }, id)),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Status"),
      h("dd", { id: "instance-status" }, statusBadge(status.runtimeStatus)),
      h("dt", {}, "Name"),
      h("dd", {}, status.name),
      h("dt", {}, "Created"),
      h("dd", {}, localTime(status.createdTime)),
      h("dt", {}, "Last updated"),
      h("dd", {}, localTime(status.lastUpdatedTime)),
      info.executionId ? [h("dt", {}, "Execution"), h("dd", { class: "mono" }, info.executionId)] : null,
      info.generation
        ? [
            h("dt", {}, "Generation"),
            h("dd", { id: "generation" }, `${info.generation} (this instance ID was started again ${info.generation} times)`),
          ]
        : null,
      info.parent
        ? [h("dt", {}, "Parent"), h("dd", {}, h("a", { href: instanceHash(info.parent), class: "mono" }, info.parent))]
        : null,
    ),
    actionBar(id, status.runtimeStatus),
    info.failure ? failureSection(info.failure) : null,
    entity ? entitySection(entity, status) : null,
    h(
      "div",
      { class: "grid2" },
      h("section", { "aria-labelledby": "input-h" }, h("h2", { id: "input-h" }, "Input"), h("pre", { id: "input", tabindex: 0 }, pretty(status.input))),
      h("section", { "aria-labelledby": "output-h" }, h("h2", { id: "output-h" }, "Output"), h("pre", { id: "output", tabindex: 0 }, pretty(status.output))),
    ),
    h("section", { "aria-labelledby": "custom-h" }, h("h2", { id: "custom-h" }, "Custom status"), h("pre", { id: "custom-status", tabindex: 0 }, pretty(status.customStatus))),
    info.children.length ? childrenSection(info.children) : null,
    timelineSection(history),
    historySection(history),
  );
  placeBars();
}

function failureSection(failure) {
  return h(
    "section",
    { class: "failure", id: "failure", "aria-labelledby": "failure-h" },
    h("h2", { id: "failure-h", class: "error" }, "Failure"),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Error type"),
      h("dd", { class: "mono", id: "error-type" }, failure.type),
      h("dt", {}, "Message"),
      h("dd", { id: "error-message" }, failure.message),
    ),
    failure.stack ? h("pre", { id: "error-stack", tabindex: 0 }, failure.stack) : null,
  );
}

function entitySection(entity, status) {
  return h(
    "section",
    { id: "entity", "aria-labelledby": "entity-h" },
    h("h2", { id: "entity-h" }, "Entity state"),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Entity name"),
      h("dd", { class: "mono" }, entity.name),
      h("dt", {}, "Entity key"),
      h("dd", { class: "mono" }, entity.key),
    ),
    h("pre", { tabindex: 0 }, pretty(status.customStatus ?? status.input)),
  );
}

function childrenSection(children) {
  return h(
    "section",
    { "aria-labelledby": "children-h" },
    h("h2", { id: "children-h" }, `Sub-orchestrations (${children.length})`),
    h(
      "ul",
      { id: "children" },
      children.map((c) => h("li", {}, h("a", { href: instanceHash(c.instanceId), class: "mono" }, c.instanceId), ` (${c.name})`)),
    ),
  );
}

function timelineSection(history) {
  const { bars, start, end, peak } = timeline(history);
  const span = Math.max(end - start, 1);
  return h(
    "section",
    { "aria-labelledby": "timeline-h" },
    h("h2", { id: "timeline-h" }, "Timeline"),
    bars.length
      ? [
          h(
            "p",
            { class: "muted" },
            `${bars.length} tasks over ${formatDuration(end - start)}; at most ${peak} at once.`,
          ),
          h(
            "div",
            { class: "legend", "aria-hidden": "true" },
            h("span", {}, "activity"),
            h("span", { class: "sub-orchestration" }, "sub-orchestration"),
            h("span", { class: "timer" }, "timer"),
            h("span", { class: "failed" }, "failed"),
          ),
          h(
            "ol",
            { class: "gantt", id: "gantt", "aria-label": "Tasks over time" },
            bars.map((bar) => {
              const stop = bar.end ?? end;
              const left = ((bar.start - start) / span) * 100;
              const width = ((stop - bar.start) / span) * 100;
              const duration = formatDuration(stop - bar.start);
              const label = bar.instanceId
                ? h("a", { href: instanceHash(bar.instanceId) }, bar.label)
                : bar.label;
              return h(
                "li",
                {},
                h("span", { class: "label" }, label),
                h(
                  "span",
                  { class: "track" },
                  h("span", {
                    class: `bar ${bar.kind} ${bar.outcome}`,
                    "data-left": left.toFixed(3),
                    "data-width": width.toFixed(3),
                    role: "img",
                    "aria-label": `${bar.kind} ${bar.label}: ${bar.outcome}, starts ${formatDuration(bar.start - start)} in, takes ${duration}`,
                  }),
                ),
                h("span", { class: "duration" }, bar.outcome === "running" ? `${duration}…` : duration),
              );
            }),
          ),
        ]
      : h("p", { class: "muted" }, "No activities, sub-orchestrations or timers."),
  );
}

/** Bars are placed after rendering: the page's policy allows no inline style attributes, but
 * the style object (CSSOM) may be set from script. */
function placeBars() {
  for (const bar of view.querySelectorAll(".gantt .bar")) {
    bar.style.left = `${bar.dataset.left}%`;
    bar.style.width = `${bar.dataset.width}%`;
  }
}

function historySection(history) {
  const first = Math.min(...history.map((e) => new Date(e.Timestamp).getTime()));
  return h(
    "section",
    { "aria-labelledby": "history-h" },
    h("h2", { id: "history-h" }, `History (${history.length} events)`),
    h(
      "p",
      { class: "muted", id: "history-scope" },
      "The current execution only: a continue-as-new or a restart under the same ID replaces the history, as the Durable Task Framework stores it.",
    ),
    h(
      "div",
      { class: "history-wrap", tabindex: 0, role: "region", "aria-label": "History events, scrollable" },
      h(
        "table",
        { id: "history" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["#", "Event", "Name", "Time", "Elapsed", "Details"].map((label) => h("th", { scope: "col" }, label)),
          ),
        ),
        h(
          "tbody",
          {},
          history.map((event) =>
            h(
              "tr",
              {},
              h("td", {}, event.EventId),
              h("td", {}, event.EventType),
              h("td", {}, event.Name || ""),
              h("td", {}, h("time", { datetime: event.Timestamp }, localTime(event.Timestamp, true))),
              h("td", {}, formatDuration(new Date(event.Timestamp).getTime() - first)),
              h("td", { class: "details mono" }, eventSummary(event)),
            ),
          ),
        ),
      ),
    ),
  );
}

const ACTION_LABELS = {
  raiseEvent: "Raise event…",
  suspend: "Suspend…",
  resume: "Resume…",
  terminate: "Terminate…",
  restart: "Restart…",
  rewind: "Rewind…",
  purge: "Purge…",
};

function actionBar(id, status) {
  const actions = allowedActions(status, READ_ONLY);
  if (!actions.length) {
    return null;
  }
  return h(
    "div",
    { class: "toolbar", role: "group", "aria-label": "Actions" },
    actions.map((action) =>
      h(
        "button",
        {
          type: "button",
          "data-action": action,
          class: action === "terminate" || action === "purge" ? "danger" : "quiet",
          onclick: () => actionDialog(id, action),
        },
        ACTION_LABELS[action],
      ),
    ),
  );
}

function actionDialog(id, action) {
  const path = `/instances/${encodeURIComponent(id)}`;
  const done = async (message, hash) => {
    say(message);
    if (hash) {
      window.location.hash = hash;
    } else {
      await showInstance(id);
    }
  };
  if (action === "raiseEvent") {
    const name = h("input", { id: "event-name", required: true });
    const data = h("textarea", { id: "event-data", spellcheck: "false" }, "null");
    openDialog("Raise an event", "Raise event", [field("Event name", name), field("Event data (JSON)", data)], async () => {
      const body = parseJsonInput(data.value, "The event data");
      await api(`${path}/raiseEvent/${encodeURIComponent(name.value)}`, { method: "POST", rawJson: body });
      await done(`Raised ${name.value} on ${id}.`);
    });
    return;
  }
  if (action === "purge") {
    openDialog(
      "Purge this instance?",
      "Purge",
      [h("p", {}, "Its status and history are deleted for good: ", h("span", { class: "mono" }, id))],
      async () => {
        await api(path, { method: "DELETE" });
        await done(`Purged ${id}.`, instancesHash(list.filters));
      },
      { danger: true },
    );
    return;
  }
  if (action === "restart") {
    const fresh = h("input", { type: "checkbox", id: "restart-new-id", checked: true });
    openDialog("Restart this instance?", "Restart", [h("label", { class: "inline" }, fresh, "Under a new instance ID")], async () => {
      const params = new URLSearchParams({ restartWithNewInstanceId: String(fresh.checked) });
      const { data } = await api(`${path}/restart`, { method: "POST", params });
      await done(`Restarted ${id} as ${data.id}.`, instanceHash(data.id));
    });
    return;
  }
  const reason = h("input", { id: "action-reason" });
  const title = { terminate: "Terminate", suspend: "Suspend", resume: "Resume", rewind: "Rewind" }[action];
  openDialog(
    `${title} this instance?`,
    title,
    [field("Reason", reason)],
    async () => {
      const params = new URLSearchParams({ reason: reason.value });
      await api(`${path}/${action}`, { method: "POST", params });
      await done(`${title} requested for ${id}.`);
    },
    { danger: action === "terminate" },
  );
}

// -- task hub view -------------------------------------------------------------------------------

function age(seconds) {
  return seconds === null || seconds === undefined ? "–" : formatDuration(seconds * 1000);
}

function depth(messages) {
  return messages === null || messages === undefined ? "no queue" : formatCount(messages, false);
}

async function showTaskHub(quiet = false) {
  document.title = "Task hub · durable_ext dashboard";
  let hub;
  try {
    hub = (await api("/taskhub")).data;
  } catch (error) {
    if (!quiet) {
      fill(view, h("h1", {}, "Task hub"), h("p", { class: "error" }, error.message));
    }
    return;
  }
  document.getElementById("hub-name").textContent = hub.taskHub;
  const queues = [...hub.partitions.map((p) => p.messages ?? 0), hub.workItems.messages ?? 0];
  fill(
    view,
    h("h1", {}, "Task hub ", h("span", { class: "mono" }, hub.taskHub)),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Partitions"),
      h("dd", {}, hub.partitionCount),
      h("dt", {}, "Messages waiting"),
      h("dd", {}, formatCount(queues.reduce((a, b) => a + b, 0), false)),
      h("dt", {}, "Workers seen"),
      h("dd", { id: "workers" }, hub.workers.length ? hub.workers.join(", ") : "none holds a partition"),
    ),
    h("h2", {}, "Partitions"),
    h(
      "table",
      { id: "partitions" },
      h(
        "thead",
        {},
        h("tr", {}, ["Partition", "Control queue", "Owner", "Messages", "Oldest message"].map((l) => h("th", { scope: "col" }, l))),
      ),
      h(
        "tbody",
        {},
        hub.partitions.map((p) =>
          h(
            "tr",
            {},
            h("td", {}, p.partition),
            h("td", { class: "mono" }, p.queue),
            h("td", { class: "mono" }, p.owner || "(none)"),
            h("td", {}, depth(p.messages)),
            h("td", {}, age(p.oldestMessageAgeSeconds)),
          ),
        ),
      ),
    ),
    h("h2", {}, "Work items"),
    h(
      "table",
      { id: "work-items" },
      h("thead", {}, h("tr", {}, ["Queue", "Messages", "Oldest message"].map((l) => h("th", { scope: "col" }, l)))),
      h(
        "tbody",
        {},
        h(
          "tr",
          {},
          h("td", { class: "mono" }, hub.workItems.queue),
          h("td", {}, depth(hub.workItems.messages)),
          h("td", {}, age(hub.workItems.oldestMessageAgeSeconds)),
        ),
      ),
    ),
    h("p", { class: "muted" }, "Queue depths are Azure Storage's approximate counts; the oldest message is the first visible one (delayed timer messages are not visible)."),
  );
}

// -- routing, refresh, theme ---------------------------------------------------------------------

async function route(quiet = false) {
  const where = parseHash(window.location.hash);
  for (const link of document.querySelectorAll("[data-nav]")) {
    const current = link.dataset.nav === where.view || (where.view === "instance" && link.dataset.nav === "instances");
    if (current) {
      link.setAttribute("aria-current", "page");
    } else {
      link.removeAttribute("aria-current");
    }
  }
  if (!quiet) {
    say("");
    shownInstance = "";
  }
  if (where.view === "instance") {
    await showInstance(where.id, quiet);
  } else if (where.view === "taskhub") {
    await showTaskHub(quiet);
  } else if (quiet) {
    await refreshInstances();
  } else {
    await showInstances(where.filters);
  }
  view.dataset.ready = "true";
}

function refreshTick() {
  if (list.autoRefresh && !dialog.open && document.visibilityState === "visible") {
    route(true);
  }
}

function applyTheme(theme) {
  const dark = theme === "dark" || (!theme && window.matchMedia("(prefers-color-scheme: dark)").matches);
  document.documentElement.dataset.theme = dark ? "dark" : "light";
  const button = document.getElementById("theme");
  button.setAttribute("aria-pressed", String(dark));
  button.textContent = "Dark theme";
}

document.getElementById("theme").addEventListener("click", () => {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  window.localStorage.setItem(THEME_STORAGE, next);
  applyTheme(next);
});

// The skip link moves focus without touching the address (which holds the view).
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  document.getElementById("main").focus();
});
adoptKeyFromUrl();
applyTheme(window.localStorage.getItem(THEME_STORAGE));
window.addEventListener("hashchange", () => {
  view.dataset.ready = "false";
  route();
});
window.setInterval(refreshTick, REFRESH_MS);
route();
api("/taskhub").then(
  (r) => {
    document.getElementById("hub-name").textContent = r.data.taskHub;
  },
  () => {},
);
