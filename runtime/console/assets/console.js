// The console's page: plain ES module, no build step, no dependencies.
// Live data comes from the product itself: SSE subscriptions for items and
// events, /metrics for the monitor, step routes for the request form; the
// console API (/_console/api/...) adds what the protocol does not carry.

const TOKEN = document.querySelector('meta[name="console-token"]').content;
const SSE_PREFIX = document.querySelector('meta[name="sse-prefix"]').content || "/streams";
const $ = (selector, root = document) => root.querySelector(selector);
const MAX_LOG_ROWS = 1000;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (TOKEN) headers["X-Console-Token"] = TOKEN;
  const response = await fetch("/_console/api" + path, { ...options, headers });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && (body.message || body.error)) || `HTTP ${response.status}`);
  return body;
}

const time = (ms) => (ms ? new Date(ms).toLocaleTimeString([], { hour12: false }) + "." + String(ms % 1000).padStart(3, "0") : "");
const short = (value, n = 120) => { const s = typeof value === "string" ? value : JSON.stringify(value); return s && s.length > n ? s.slice(0, n) + "…" : s; };
const traceLink = (id) => id ? el("a", { class: "trace-link", href: `#traces/${id}`, dataset: { trace: id } }, id) : "";
const encode = encodeURIComponent;

// -- tabs and routing ----------------------------------------------------------------------

let overview = null;
const tabs = ["streams", "monitor", "steps", "traces"];

function route() {
  const [tab, ...rest] = (location.hash.slice(1) || "streams").split("/").map(decodeURIComponent);
  const current = tabs.includes(tab) ? tab : "streams";
  for (const name of tabs) $(`#tab-${name}`).hidden = name !== current;
  for (const link of document.querySelectorAll("header nav a")) link.classList.toggle("active", link.dataset.tab === current);
  if (current === "streams" && rest.length >= 1) selectStream(rest[0], rest[1], rest[2]);
  if (current === "steps") refreshQueues();
  if (current === "traces") { refreshTraces(); if (rest[0]) showTrace(rest[0]); }
}
window.addEventListener("hashchange", route);

async function refreshOverview() {
  try {
    overview = await api("/overview");
    $("#status").textContent = `${overview.storage} · ${overview.traces.kept} traces kept` +
      (overview.dev ? ` · dev: ${overview.dev.reloads} reload(s)` : "");
    const banner = $("#dev-errors");
    banner.hidden = !overview.dev_errors.length;
    banner.textContent = overview.dev_errors.map((e) => `${e.file}${e.line ? ":" + e.line : ""}: ${e.message}`).join("\n") +
      (overview.dev_errors.length ? "\n(the last version that loaded keeps serving)" : "");
  } catch (error) {
    $("#status").textContent = `console API: ${error.message}`;
  }
  return overview;
}

// -- streams ---------------------------------------------------------------------------------------

let selected = { stream: null, group: null, item: null };

function renderStreams() {
  const list = $("#streams-list");
  list.replaceChildren(...overview.streams.map((s) => el("li", {
    class: "stream" + (s.name === selected.stream ? " active" : ""), dataset: { stream: s.name },
    onclick: () => { location.hash = `#streams/${encode(s.name)}`; },
  }, el("strong", {}, s.name), s.description ? el("div", { class: "muted" }, s.description) : "")));
}

async function selectStream(stream, group, item) {
  if (!overview) return;
  const changed = stream !== selected.stream;
  selected.stream = stream;
  renderStreams();
  const info = overview.streams.find((s) => s.name === stream);
  $("#stream-detail").replaceChildren(info ? el("div", {},
    el("h2", {}, stream, " ", el("span", { class: "muted" }, info.hooks.length ? `hooks: ${info.hooks.join(", ")}` : "")),
    el("h3", {}, "Schema"), el("pre", { id: "schema" }, info.schema ? JSON.stringify(info.schema, null, 2) : "(none: any JSON object)"),
  ) : el("p", { class: "muted" }, `no stream named ${stream}`));
  if (changed || !group) await loadGroups(stream);
  if (group) openGroup(stream, group, item);
  else closeGroup();
}

async function loadGroups(stream) {
  const data = await api(`/streams/${encode(stream)}/groups`);
  $("#groups-title").hidden = $("#groups").hidden = false;
  $("#groups-title").textContent = `Groups (${data.total})`;
  $("#groups tbody").replaceChildren(...data.groups.map((g) => el("tr", {
    class: "group" + (g.group === selected.group ? " active" : ""), dataset: { group: g.group },
    onclick: () => { location.hash = `#streams/${encode(stream)}/${encode(g.group)}`; },
  }, el("td", {}, g.group), el("td", {}, g.items), el("td", {}, g.subscribers))));
}

// One open group at a time: its live table and event log.
let live = null;

function closeGroup() {
  if (live) live.close();
  live = null;
  selected.group = selected.item = null;
  $("#group-view").hidden = true;
}

function openGroup(stream, group, item) {
  if (!live || live.stream !== stream || live.group !== group) {
    if (live) live.close();
    live = new LiveGroup(stream, group);
  }
  selected.group = group;
  selected.item = item || null;
  $("#group-view").hidden = false;
  $("#group-title").textContent = `${stream} / ${group}`;
  for (const row of document.querySelectorAll("#groups tbody tr")) row.classList.toggle("active", row.dataset.group === group);
  if (item) showItem(stream, group, item); else $("#item-view").hidden = true;
}

class LiveGroup {
  constructor(stream, group) {
    this.stream = stream; this.group = group;
    this.items = new Map();
    this.rows = new Map(); // event-log key -> entry
    this.lastSeq = 0; this.paused = false; this.held = 0; this.refreshing = null;
    $("#items-table tbody").replaceChildren();
    $("#event-log tbody").replaceChildren();
    this.loadLog().then(() => this.subscribe());
  }

  subscribe() {
    const query = TOKEN ? `?authToken=${encode(TOKEN)}` : "";
    this.source = new EventSource(`${SSE_PREFIX}/${encode(this.stream)}/${encode(this.group)}${query}`);
    const state = $("#live-state");
    state.textContent = "connecting"; state.className = "pill";
    this.source.onopen = () => { state.textContent = "live"; state.className = "pill live"; };
    this.source.onerror = () => { state.textContent = "reconnecting"; state.className = "pill down"; };
    for (const type of ["sync", "create", "update", "delete", "event", "resumed"]) {
      this.source.addEventListener(type, (message) => this.onMessage(JSON.parse(message.data), message.data.length));
    }
  }

  close() { if (this.source) this.source.close(); }

  onMessage(envelope, size) {
    const event = envelope.event;
    if (event.type === "sync") {
      this.items = new Map(event.data.map((value) => [value.id, value]));
      this.renderItems();
      return;
    }
    if (event.type === "resumed") return;
    if (event.type === "create" || event.type === "update") this.items.set(envelope.id, event.data);
    if (event.type === "delete") this.items.delete(envelope.id);
    if (event.type !== "event") this.renderItems();
    this.addRow({
      type: event.type === "event" ? `event:${event.event && event.event.type}` : event.type, item: envelope.id,
      offset: envelope.offset, epoch: envelope.epoch, timestamp: envelope.timestamp, trace_id: null, size,
      preview: short(event.type === "event" ? event.event : event.data, 160),
    });
    this.scheduleRefresh();
  }

  renderItems() {
    $("#item-count").textContent = `(${this.items.size})`;
    $("#items-table tbody").replaceChildren(...[...this.items.values()].map((value) => el("tr", {
      class: value.id === selected.item ? "active" : null, dataset: { item: value.id },
      onclick: () => { location.hash = `#streams/${encode(this.stream)}/${encode(this.group)}/${encode(value.id)}`; },
    }, el("td", { class: "mono" }, value.id), el("td", { class: "payload" }, short(value, 200)))));
    if (selected.item && this.stream === selected.stream) showItem(this.stream, this.group, selected.item);
  }

  key(entry) { return entry.offset != null ? `${entry.epoch}:${entry.offset}` : `t${entry.timestamp}:${entry.type}`; }

  addRow(entry) {
    const key = this.key(entry);
    const known = this.rows.get(key);
    if (known) { // the server's copy adds the trace id
      if (entry.trace_id && !known.trace_id) { known.trace_id = entry.trace_id; if (known.row) known.row.cells[5].replaceChildren(traceLink(entry.trace_id)); }
      return;
    }
    this.rows.set(key, entry);
    if (this.paused) { this.held++; $("#paused-count").textContent = `${this.held} new while paused`; return; }
    this.renderRow(entry);
  }

  renderRow(entry) {
    entry.row = el("tr", { dataset: { key: this.key(entry), type: entry.type, item: entry.item ?? "" } },
      el("td", {}, entry.type), el("td", { class: "mono" }, entry.item ?? "—"), el("td", {}, entry.offset ?? ""),
      el("td", { class: "mono" }, entry.epoch ?? ""), el("td", {}, time(entry.timestamp)), el("td", {}, traceLink(entry.trace_id)),
      el("td", { class: "payload", title: entry.preview }, entry.preview), el("td", {}, entry.size));
    applyFilter(entry.row);
    const body = $("#event-log tbody");
    body.prepend(entry.row);
    while (body.rows.length > MAX_LOG_ROWS) body.lastElementChild.remove();
  }

  async loadLog() {
    try {
      const data = await api(`/streams/${encode(this.stream)}/groups/${encode(this.group)}/events?after=${this.lastSeq}`);
      for (const entry of data.events) { this.lastSeq = Math.max(this.lastSeq, entry.seq); this.addRow(entry); }
    } catch (error) { $("#paused-count").textContent = `event log: ${error.message}`; }
  }

  scheduleRefresh() {
    if (this.refreshing) return;
    this.refreshing = setTimeout(async () => { await this.loadLog(); this.refreshing = null; }, 150);
  }

  setPaused(paused) {
    this.paused = paused;
    $("#pause").textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      for (const entry of this.rows.values()) if (!entry.row) this.renderRow(entry);
      this.held = 0; $("#paused-count").textContent = "";
    }
  }
}

function applyFilter(row) {
  const type = $("#filter-type").value.trim(), item = $("#filter-item").value.trim();
  row.hidden = (type && !row.dataset.type.includes(type)) || (item && !row.dataset.item.includes(item));
}
for (const id of ["#filter-type", "#filter-item"]) {
  $(id).addEventListener("input", () => { for (const row of $("#event-log tbody").rows) applyFilter(row); });
}
$("#pause").addEventListener("click", () => live && live.setPaused(!live.paused));
$("#export").addEventListener("click", () => {
  if (!live) return;
  const rows = [...live.rows.values()].filter((e) => !e.row || !e.row.hidden).map(({ row, ...entry }) => entry);
  const link = el("a", { href: URL.createObjectURL(new Blob([JSON.stringify(rows, null, 2)], { type: "application/json" })),
    download: `${live.stream}-${live.group}-events.json` });
  document.body.append(link); link.click(); link.remove();
});

async function showItem(stream, group, item) {
  $("#item-view").hidden = false;
  $("#item-title").textContent = item;
  try {
    const data = await api(`/streams/${encode(stream)}/groups/${encode(group)}/items/${encode(item)}`);
    $("#item-value").textContent = data.value === null ? "(deleted or never set)" : JSON.stringify(data.value, null, 2);
    $("#item-history tbody").replaceChildren(...data.history.slice().reverse().map((e) => el("tr", {},
      el("td", {}, e.offset ?? ""), el("td", {}, e.type), el("td", {}, time(e.timestamp)), el("td", {}, traceLink(e.trace_id)),
      el("td", { class: "payload" }, e.preview))));
  } catch (error) { $("#item-value").textContent = error.message; }
}

// -- live monitor ------------------------------------------------------------------------------

const SAMPLES = 300;
const charts = new Map();
let previous = null;

function parseMetrics(text) {
  const values = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/);
    if (match) values.set(match[1] + (match[2] || ""), Number(match[3]));
  }
  return values;
}
const total = (values, name) => { let sum = 0; for (const [key, value] of values) if (key === name || key.startsWith(name + "{")) sum += value; return sum; };

function chart(id, title, unit) {
  let one = charts.get(id);
  if (!one) {
    const node = el("div", { class: "chart", dataset: { chart: id } }, el("div", {}, title), el("div", { class: "value" }, "–"),
      document.createElementNS("http://www.w3.org/2000/svg", "svg"), el("div", { class: "legend" }));
    node.querySelector("svg").setAttribute("viewBox", `0 0 ${SAMPLES} 60`);
    node.querySelector("svg").setAttribute("preserveAspectRatio", "none");
    one = { node, series: new Map(), unit };
    charts.set(id, one);
    $("#charts").append(node);
  }
  return one;
}

const COLOURS = ["#2b6cb0", "#2f855a", "#c05621", "#805ad5", "#c53030", "#319795"];

function plot(id, title, unit, series) {
  const one = chart(id, title, unit);
  for (const [name, value] of Object.entries(series)) {
    if (!one.series.has(name)) one.series.set(name, []);
    const points = one.series.get(name);
    points.push(value);
    if (points.length > SAMPLES) points.shift();
  }
  const max = Math.max(1, ...[...one.series.values()].flat());
  const svg = one.node.querySelector("svg");
  svg.replaceChildren(...[...one.series.entries()].map(([, points], i) => {
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    const offset = SAMPLES - points.length;
    line.setAttribute("points", points.map((v, x) => `${x + offset},${58 - (v / max) * 56}`).join(" "));
    line.setAttribute("fill", "none"); line.setAttribute("stroke", COLOURS[i % COLOURS.length]); line.setAttribute("stroke-width", "1.5");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    return line;
  }));
  const fmt = (v) => (v >= 100 ? Math.round(v) : Math.round(v * 10) / 10) + (unit ? " " + unit : "");
  const latest = [...one.series.entries()].map(([name, points]) => [name, points[points.length - 1]]);
  one.node.querySelector(".value").textContent = fmt(latest.reduce((a, [, v]) => a + v, 0));
  one.node.querySelector(".legend").replaceChildren(...latest.map(([name, v], i) =>
    el("span", { style: `color:${COLOURS[i % COLOURS.length]}` }, `${name} ${fmt(v)}`)));
}

async function sample() {
  try {
    const [text, streams] = await Promise.all([fetch("/metrics").then((r) => r.text()), api("/monitor")]);
    const now = { time: Date.now(), metrics: parseMetrics(text), streams: streams.streams };
    const m = now.metrics;
    plot("connections", "Connections", "", { sse: m.get('runtime_connections{transport="sse"}') || 0, websocket: m.get('runtime_connections{transport="websocket"}') || 0 });
    plot("subscriptions", "Subscriptions", "", { sse: m.get('runtime_subscriptions{transport="sse"}') || 0, websocket: m.get('runtime_subscriptions{transport="websocket"}') || 0 });
    if (previous) {
      const seconds = Math.max(0.001, (now.time - previous.time) / 1000);
      const rate = (name) => Math.max(0, (total(m, name) - total(previous.metrics, name)) / seconds);
      plot("deliveries", "Deliveries/s", "/s", { deliveries: rate("runtime_deliveries_total") });
      const perStream = (field) => Object.fromEntries(Object.entries(now.streams).map(([name, v]) =>
        [name, Math.max(0, (v[field] - ((previous.streams[name] || {})[field] || 0)) / seconds)]));
      plot("events", "Events/s per stream", "/s", perStream("events"));
      plot("bytes", "Event bytes/s per stream", "B/s", perStream("bytes"));
      plot("slow", "Slow consumers (drops, resyncs)/s", "/s", { drops: rate("runtime_slow_consumer_drops_total"), resyncs: rate("runtime_resyncs_total") });
      plot("errors", "Connection errors/s", "/s", { errors: rate("runtime_connection_errors_total") });
      plot("http", "HTTP requests/s", "/s", { requests: rate("runtime_http_requests_total") });
    }
    previous = now;
  } catch (error) { /* the server restarted (dev reload): the next sample resumes */ }
}

// -- steps ------------------------------------------------------------------------------------------

function renderSteps() {
  const container = $("#steps-list");
  const byFlow = new Map();
  for (const step of overview.steps) for (const flow of step.flows.length ? step.flows : ["(no flow)"]) {
    if (!byFlow.has(flow)) byFlow.set(flow, []);
    byFlow.get(flow).push(step);
  }
  container.replaceChildren(...[...byFlow.entries()].map(([flow, steps]) => el("div", {},
    el("h3", {}, "Flow: ", flow), ...steps.map(renderStep))));
}

function renderStep(step) {
  const node = el("div", { class: "step", dataset: { step: step.name } },
    el("strong", {}, step.name), " ", el("span", { class: "muted" }, step.file || ""),
    step.description ? el("div", { class: "muted" }, step.description) : "",
    el("div", { class: "triggers" }, step.triggers.map((t) => el("span", { class: `trigger ${t.type}` },
      t.type === "http" ? `${t.method} ${t.path}` : t.type === "queue" ? `queue ${t.topic}` :
      t.type === "stream" ? `stream ${t.stream}${t.group_id ? "/" + t.group_id : ""}` : `cron ${t.expression}`))),
    step.enqueues.length ? el("div", { class: "muted" }, "enqueues: ", step.enqueues.join(", ")) : "");
  for (const trigger of step.triggers) {
    if (trigger.type === "http") node.append(requestForm(step, trigger));
    if (trigger.type === "cron") {
      node.append(el("div", { class: "cron", dataset: { step: step.name, next: new Date(trigger.next_ms).toISOString() } }, "next fire: ", el("span", { class: "next" }, new Date(trigger.next_ms).toLocaleString()), " ",
        el("button", { class: "run-now", onclick: async (e) => {
          e.target.disabled = true;
          try { await api(`/cron/${encode(step.name)}/run`, { method: "POST" }); e.target.textContent = "ran ✓"; }
          catch (error) { e.target.textContent = error.message; }
          e.target.disabled = false;
        } }, "Run now")));
    }
  }
  return node;
}

function requestForm(step, trigger) {
  const params = trigger.path.split("/").filter((s) => s.startsWith(":")).map((s) => s.slice(1));
  const hasBody = !["GET", "HEAD", "DELETE"].includes(trigger.method);
  const inputs = Object.fromEntries(params.map((p) => [p, el("input", { name: `param-${p}`, placeholder: p })]));
  const query = el("input", { name: "query", placeholder: "a=1&b=2" });
  const body = el("textarea", { name: "body", rows: 3 }, trigger.body_schema ? exampleOf(trigger.body_schema) : "{}");
  const output = el("div", { class: "response", hidden: true });
  const form = el("form", { class: "request-form", dataset: { method: trigger.method, path: trigger.path },
    onsubmit: async (e) => {
      e.preventDefault();
      let path = trigger.path;
      for (const [name, input] of Object.entries(inputs)) path = path.replace(`:${name}`, encode(input.value));
      if (query.value.trim()) path += "?" + query.value.trim();
      const started = performance.now();
      const response = await fetch(path, { method: trigger.method, headers: hasBody ? { "content-type": "application/json" } : {},
        body: hasBody ? body.value : undefined });
      const text = await response.text();
      let shown = text; try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
      const traceId = response.headers.get("x-trace-id");
      output.hidden = false;
      output.replaceChildren(
        el("div", {}, el("span", { class: `status status-${String(response.status)[0]}` }, response.status, " ", response.statusText),
          ` · ${Math.round(performance.now() - started)} ms · trace `, traceLink(traceId)),
        el("details", {}, el("summary", {}, "headers"), el("pre", { class: "headers" }, [...response.headers].map(([k, v]) => `${k}: ${v}`).join("\n"))),
        el("pre", { class: "body" }, shown));
    } },
    el("label", {}, trigger.method), el("code", {}, trigger.path),
    ...params.flatMap((p) => [el("label", {}, p), inputs[p]]),
    el("label", {}, "query"), query,
    ...(hasBody ? [el("label", {}, "JSON body"), body] : []),
    el("span"), el("div", {}, el("button", { type: "submit" }, "Send")));
  return el("div", {}, form, output);
}

function exampleOf(schema) {
  const properties = schema.properties || (schema.type ? {} : schema);
  const example = {};
  for (const [name, spec] of Object.entries(properties)) {
    const type = typeof spec === "string" ? spec : spec.type;
    example[name] = { string: "", number: 0, integer: 0, boolean: false, array: [], object: {} }[type] ?? null;
  }
  return JSON.stringify(example, null, 2);
}

async function refreshQueues() {
  try {
    const data = await api("/queues");
    $("#lanes tbody").replaceChildren(...data.lanes.map((l) => el("tr", { dataset: { topic: l.topic, step: l.step } },
      el("td", {}, l.topic), el("td", {}, l.step), el("td", { class: "depth" }, l.depth), el("td", {}, l.in_flight), el("td", {}, l.retrying))));
    $("#dead-letters tbody").replaceChildren(...data.dead_letters.map((d) => el("tr", { dataset: { id: d.id } },
      el("td", { class: "mono" }, d.id.slice(0, 8)), el("td", {}, `${d.topic} → ${d.step}`), el("td", {}, d.attempts),
      el("td", { class: "error" }, d.error), el("td", {}, traceLink(d.trace_id)), el("td", { class: "payload" }, short(d.data)),
      el("td", {}, el("button", { class: "replay", onclick: async (e) => {
        e.target.disabled = true;
        try { await api(`/dead-letters/${encode(d.id)}/replay`, { method: "POST" }); } catch (error) { e.target.textContent = error.message; }
        refreshQueues();
      } }, "Replay")))));
  } catch (error) { /* shown on the next refresh */ }
}

// -- traces -------------------------------------------------------------------------------------------

async function refreshTraces() {
  try {
    const data = await api("/traces");
    $("#traces-kept").textContent = `(${data.kept} kept, at most ${data.max})`;
    $("#trace-list tbody").replaceChildren(...data.traces.map((t) => el("tr", { dataset: { trace: t.trace_id },
      class: t.trace_id === shownTrace ? "active" : null, onclick: () => { location.hash = `#traces/${t.trace_id}`; } },
      el("td", { class: "mono" }, t.trace_id), el("td", {}, t.root, t.errors ? el("span", { class: "status-5" }, " ✗") : ""),
      el("td", {}, t.duration_ms))));
  } catch (error) { /* shown on the next refresh */ }
}

let shownTrace = null;

async function showTrace(id) {
  shownTrace = id;
  $("#trace-title").textContent = id;
  let trace;
  try { trace = await api(`/traces/${encode(id)}`); }
  catch (error) { $("#timeline").replaceChildren(el("p", { class: "muted" }, error.message)); return; }
  const start = trace.entries.length ? Math.min(...trace.entries.map((e) => e.start)) : 0;
  const end = Math.max(start + 1, ...trace.entries.map((e) => e.end ?? e.start));
  const span = end - start;
  $("#timeline").replaceChildren(...trace.entries.map((e) => {
    const left = ((e.start - start) / span) * 100;
    const width = e.end ? Math.max(0.3, ((e.end - e.start) / span) * 100) : 0.3;
    const details = [];
    if (e.kind === "http") details.push(`status ${e.status ?? "…"}`);
    if (e.kind === "step") details.push(`trigger ${e.trigger}`, e.skipped ? "skipped (condition)" : "");
    if (e.kind === "stream") details.push(`${e.type} · offset ${e.offset} · epoch ${e.epoch} · ${e.size} B`);
    if (e.kind === "enqueue") details.push(`${(e.messages || []).length} message(s) by ${e.step}`);
    if (e.kind === "log") details.push(`${e.level}${e.step ? " · " + e.step : ""}`, Object.entries(e.fields || {}).map(([k, v]) => `${k}=${v}`).join(" "), e.exception || "");
    if (e.error) details.push(e.error);
    return el("div", { class: "entry" + (e.error || e.level === "error" ? " error" : ""), dataset: { kind: e.kind } },
      el("span", { class: "kind" }, e.kind), el("span", { class: "name", title: e.name }, short(e.name, 60)),
      el("div", { class: "bar-wrap" }, el("div", { class: "bar", style: `left:${left}%;width:${width}%` })),
      el("span", { class: "muted" }, e.duration_ms != null ? `${e.duration_ms} ms` : `+${Math.round(e.start - start)} ms`),
      el("div", { class: "details" }, details.filter(Boolean).join(" · ")));
  }), trace.dropped ? el("p", { class: "muted" }, `${trace.dropped} more entries were not kept`) : "");
  for (const row of document.querySelectorAll("#trace-list tbody tr")) row.classList.toggle("active", row.dataset.trace === id);
}

// -- start ----------------------------------------------------------------------------------------------

await refreshOverview();
if (overview) { renderStreams(); renderSteps(); }
route();
sample();
setInterval(sample, 1000);
setInterval(async () => {
  const before = overview && JSON.stringify([overview.streams, overview.steps]);
  await refreshOverview();
  if (overview && JSON.stringify([overview.streams, overview.steps]) !== before) { renderStreams(); renderSteps(); }
  if (!$("#tab-steps").hidden) refreshQueues();
  if (!$("#tab-traces").hidden) refreshTraces();
}, 2000);
