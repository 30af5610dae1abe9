// built from clients/js/src by clients/js/build.mjs: do not edit

// src/protocol.ts
var REFUSAL_CODES = /* @__PURE__ */ new Set([
  "STREAM_ACCESS_DENIED",
  "STREAM_NOT_FOUND",
  "TOO_MANY_SUBSCRIPTIONS",
  "JOIN_FAILED",
  "TOKEN_EXPIRED"
]);
function formatPosition(position) {
  return `${position.epoch}:${position.offset}`;
}
function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
function expiresAt(data) {
  const value = isObject(data) ? data.expiresAt : null;
  return typeof value === "number" ? value : null;
}
function parseFrame(text) {
  let message;
  try {
    message = JSON.parse(text);
  } catch {
    return { kind: "malformed", reason: "not JSON" };
  }
  if (!isObject(message)) return { kind: "malformed", reason: "not an object" };
  if (message.type === "error") {
    const error = message.error;
    if (!isObject(error) || typeof error.code !== "string") return { kind: "malformed", reason: "error without a code" };
    return { kind: "error", code: error.code, message: String(error.message ?? "") };
  }
  if (message.type === "refresh_required" || message.type === "refreshed") {
    return { kind: message.type, expiresAt: expiresAt(message.data) };
  }
  if (message.type !== "stream") return { kind: "malformed", reason: `unknown type ${String(message.type)}` };
  const event = message.event;
  if (typeof message.streamName !== "string" || typeof message.groupId !== "string" || !isObject(event) || typeof event.type !== "string") {
    return { kind: "malformed", reason: "stream frame without streamName, groupId or event" };
  }
  const custom = event.type === "event" && isObject(event.event) ? event.event : null;
  return {
    kind: "stream",
    frame: {
      streamName: message.streamName,
      groupId: message.groupId,
      id: typeof message.id === "string" ? message.id : null,
      timestamp: typeof message.timestamp === "number" ? message.timestamp : 0,
      type: event.type,
      data: custom ? custom.data : event.data,
      eventType: custom && typeof custom.type === "string" ? custom.type : null,
      epoch: typeof message.epoch === "string" ? message.epoch : null,
      offset: typeof message.offset === "number" ? message.offset : null,
      replayed: typeof event.replayed === "number" ? event.replayed : null
    }
  };
}
function framePosition(frame) {
  return frame.epoch !== null && frame.offset !== null ? { epoch: frame.epoch, offset: frame.offset } : null;
}
function isStateFrame(frame) {
  return frame.type === "create" || frame.type === "update" || frame.type === "delete";
}
function refusalCode(frame) {
  if (frame.type !== "event" || frame.eventType !== "error" || !isObject(frame.data)) return null;
  const code = frame.data.code;
  return typeof code === "string" && REFUSAL_CODES.has(code) ? code : null;
}
function roomName(streamName, groupId, id) {
  return id ? `${streamName}:group:${groupId}:item:${id}` : `${streamName}:group:${groupId}`;
}
function frameRooms(frame) {
  const own = roomName(frame.streamName, frame.groupId, frame.id);
  if (frame.id && frame.type !== "sync" && frame.type !== "resumed" && frame.type !== "unauthorized") {
    return [own, roomName(frame.streamName, frame.groupId)];
  }
  return [own];
}
function joinMessage(sub, options = {}) {
  const data = { ...sub };
  if (options.since) data.since = formatPosition(options.since);
  if (options.presence && !sub.id) {
    data.presence = true;
    if (options.presenceData !== void 0) data.presenceData = options.presenceData;
  }
  return JSON.stringify({ type: "join", data });
}
function leaveMessage(sub) {
  return JSON.stringify({ type: "leave", data: sub });
}
function refreshMessage(token) {
  return JSON.stringify({ type: "refresh", data: { token } });
}
var DEFAULT_BACKOFF = { initial: 500, max: 3e4, jitter: 0.2 };
function backoffDelay(attempt, backoff = DEFAULT_BACKOFF, random = Math.random) {
  const base = Math.min(backoff.max, backoff.initial * 2 ** Math.min(attempt, 62));
  const spread = backoff.jitter ? 1 + (random() * 2 - 1) * backoff.jitter : 1;
  return Math.max(0, base * spread);
}
var TRANSITIONS = {
  idle: { connect: "connecting", close: "closed" },
  connecting: { opened: "open", rejoining: "resyncing", dropped: "connecting", refused: "refused", close: "closed" },
  open: { rejoining: "resyncing", dropped: "connecting", close: "closed" },
  resyncing: { answered: "open", dropped: "connecting", close: "closed" },
  refused: { connect: "connecting", close: "closed" },
  closed: {}
};
function nextState(state, input) {
  return TRANSITIONS[state][input] ?? state;
}

// src/sse.ts
var EVENTS = [
  "sync",
  "create",
  "update",
  "delete",
  "event",
  "resumed",
  "presence",
  "presence_join",
  "presence_leave",
  "message"
];
function sseUrl(httpUrl, prefix, sub, token, since) {
  const { streamName, groupId, id } = sub.sub;
  const path = [streamName, groupId, ...id ? [id] : []].map(encodeURIComponent).join("/");
  const query = new URLSearchParams();
  if (token) query.set("authToken", token);
  if (sub.presence) query.set("presence", "true");
  if (since) query.set("lastEventId", formatPosition(since));
  const search = query.toString();
  return `${httpUrl.replace(/\/$/, "")}${prefix}/${path}${search ? `?${search}` : ""}`;
}
var SseDriver = class {
  constructor(EventSourceImpl, httpUrl, prefix, token, host) {
    this.EventSourceImpl = EventSourceImpl;
    this.httpUrl = httpUrl;
    this.prefix = prefix;
    this.token = token;
    this.host = host;
    this.sources = /* @__PURE__ */ new Map();
    this.ended = false;
    this.openedOnce = false;
    /** The URL that failed, for the Stream's probe of why (a 401/403/404 before any stream data). */
    this.lastFailedUrl = null;
  }
  get isOpen() {
    return !this.ended;
  }
  /** Open the EventSources of every subscription (the `Stream` calls it once per attempt). */
  start() {
    const subs = [...this.host.subscriptions()];
    if (subs.length === 0) {
      this.openedOnce = true;
      this.host.transportOpened(false);
      this.host.transportAnswered();
      return;
    }
    for (const sub of subs) this.join(sub);
  }
  join(sub, fresh = false) {
    if (this.ended) return;
    this.sources.get(sub)?.close();
    const url = sseUrl(this.httpUrl, this.prefix, sub, this.token, fresh ? null : sub.lastPosition);
    const source = new this.EventSourceImpl(url);
    this.sources.set(sub, source);
    source.addEventListener("open", () => {
      if (this.ended || this.sources.get(sub) !== source) return;
      const rejoining = sub.lastPosition !== null;
      sub.beginJoin(fresh);
      this.openedOnce = true;
      this.host.transportOpened(rejoining);
    });
    source.addEventListener("error", () => {
      if (this.ended || this.sources.get(sub) !== source) return;
      this.drop(url);
    });
    for (const name of EVENTS) {
      source.addEventListener(name, (event) => {
        if (this.ended || this.sources.get(sub) !== source || typeof event.data !== "string") return;
        this.onData(sub, event.data);
      });
    }
    source.addEventListener("refresh_required", (event) => {
      if (this.ended || typeof event.data !== "string") return;
      let expiresAt2 = null;
      try {
        const value = JSON.parse(event.data)?.expiresAt;
        expiresAt2 = typeof value === "number" ? value : null;
      } catch {
      }
      this.host.refreshRequired(expiresAt2);
    });
  }
  leave(sub) {
    this.sources.get(sub)?.close();
    this.sources.delete(sub);
  }
  close() {
    this.ended = true;
    for (const source of this.sources.values()) source.close();
    this.sources.clear();
  }
  drop(url) {
    this.lastFailedUrl = url;
    const opened = this.openedOnce;
    this.close();
    for (const sub of this.host.subscriptions()) sub.disconnected();
    this.host.transportDropped(opened, 1006);
  }
  onData(sub, text) {
    const parsed = parseFrame(text);
    if (parsed.kind !== "stream") return;
    const frame = parsed.frame;
    if (frame.type === "sync" && sub.pending) sub.answerSync(frame);
    else if (frame.type === "sync") sub.otherSync(frame, false);
    else if (frame.type === "resumed") sub.answerResumed(frame);
    else sub.frame(frame);
    if (![...this.host.subscriptions()].some((one) => one.pending)) this.host.transportAnswered();
  }
};

// src/merge.ts
function itemKey(data, fallback) {
  if (data !== null && typeof data === "object" && "id" in data) return data.id;
  return fallback;
}
function sortItems(items, sortKey) {
  if (!sortKey) return items;
  return [...items].sort((a, b) => {
    const av = a !== null && typeof a === "object" ? a[sortKey] : void 0;
    const bv = b !== null && typeof b === "object" ? b[sortKey] : void 0;
    return av && bv ? String(av).localeCompare(String(bv)) : 0;
  });
}
function jsonEqual(a, b) {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b;
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]));
  }
  const ak = Object.keys(a);
  const bk = Object.keys(b);
  return ak.length === bk.length && ak.every((k) => jsonEqual(a[k], b[k]));
}
function isDuplicate(position, frame) {
  return position !== null && frame.epoch === position.epoch && frame.offset !== null && frame.offset <= position.offset;
}
var GroupState = class {
  constructor(sortKey) {
    this.sortKey = sortKey;
    this.lastTimestamp = 0;
    this.items = /* @__PURE__ */ new Map();
    this.itemTimestamps = /* @__PURE__ */ new Map();
    this.cached = [];
  }
  /** The items as an array (sorted by the sort key): a new array after each change, never mutated. */
  view() {
    if (this.cached === null) this.cached = sortItems([...this.items.values()], this.sortKey);
    return this.cached;
  }
  /** Replace the state; Motia ignores a sync older than the newest change (unless `force`). */
  sync(value, timestamp, force = false) {
    if (!force && timestamp < this.lastTimestamp) return false;
    const values = Array.isArray(value) ? value : [];
    this.items = new Map(values.map((item, index) => [itemKey(item, String(index)), item]));
    this.itemTimestamps = /* @__PURE__ */ new Map();
    this.lastTimestamp = timestamp;
    this.cached = null;
    return true;
  }
  equals(value) {
    return jsonEqual([...this.items.values()], Array.isArray(value) ? value : []);
  }
  /** create / update / delete; false when dropped as not newer than that item's last change. */
  apply(kind, itemId, data, timestamp) {
    const key = itemKey(data, itemId);
    const seen = this.itemTimestamps.get(key);
    if (seen !== void 0 && seen >= timestamp) return false;
    this.itemTimestamps.set(key, timestamp);
    this.lastTimestamp = Math.max(this.lastTimestamp, timestamp);
    if (kind === "delete") this.items.delete(key);
    else this.items.set(key, data);
    this.cached = null;
    return true;
  }
};
var ItemState = class {
  constructor() {
    this.lastTimestamp = 0;
    this.value = null;
  }
  view() {
    return this.value;
  }
  sync(value, timestamp, force = false) {
    if (!force && timestamp <= this.lastTimestamp) return false;
    this.value = value ?? null;
    this.lastTimestamp = timestamp;
    return true;
  }
  equals(value) {
    return jsonEqual(this.value, value ?? null);
  }
  apply(kind, _itemId, data, timestamp) {
    if (timestamp <= this.lastTimestamp) return false;
    this.lastTimestamp = timestamp;
    this.value = kind === "delete" ? null : data;
    return true;
  }
  /** Motia's item client drops a custom event that is not newer than the last frame, too. */
  acceptEvent(timestamp) {
    if (timestamp <= this.lastTimestamp) return false;
    this.lastTimestamp = timestamp;
    return true;
  }
};
var ReplayBuffer = class {
  constructor(limit) {
    this.limit = limit;
    this.overflowed = false;
    this.frames = /* @__PURE__ */ new Map();
  }
  add(frame) {
    if (this.overflowed || frame.offset === null) return;
    if (!this.frames.has(frame.offset) && this.frames.size >= this.limit) {
      this.overflowed = true;
      this.frames.clear();
      return;
    }
    this.frames.set(frame.offset, frame);
  }
  /** The frames after `since` in its epoch, in offset order; empties the buffer. */
  drain(since) {
    const frames = [...this.frames.values()].filter((f) => f.epoch === since.epoch && f.offset !== null && f.offset > since.offset).sort((a, b) => a.offset - b.offset);
    this.frames.clear();
    return frames;
  }
  clear() {
    this.frames.clear();
    this.overflowed = false;
  }
};

// src/subscription.ts
var REPLAY_LIMIT = 1e4;
function call(listener, ...args) {
  try {
    listener(...args);
  } catch (error) {
    console.error("stream client listener failed", error);
  }
}
var StreamSubscription = class {
  constructor(sub, options = {}) {
    /** Why the server refused this subscription, once it did (it is then closed). */
    this.refusal = null;
    /** How many times a sync replaced state this subscription already had (a gap a replay could not cover). */
    this.resyncs = 0;
    /** How many reconnects were covered by a replay (`resumed`), with no sync. */
    this.resumes = 0;
    this.changeListeners = /* @__PURE__ */ new Set();
    this.eventListeners = /* @__PURE__ */ new Map();
    this.closeListeners = /* @__PURE__ */ new Set();
    this.resumedListeners = /* @__PURE__ */ new Set();
    this.resyncListeners = /* @__PURE__ */ new Set();
    this.refusedListeners = /* @__PURE__ */ new Set();
    this.presenceListeners = /* @__PURE__ */ new Set();
    this.presenceEntries = /* @__PURE__ */ new Map();
    this.position = null;
    this.synced = false;
    this.awaiting = false;
    this.since = null;
    this.replay = new ReplayBuffer(REPLAY_LIMIT);
    this.finished = false;
    this.host = null;
    this.sub = sub;
    this.presence = Boolean(options.presence) && !sub.id;
    this.presenceData = options.presenceData;
  }
  // -- Motia's surface ----------------------------------------------------------------------
  /** The current state: the group's items (sorted by its sort key), or the item or null. */
  getState() {
    return this.state.view();
  }
  /** `listener(state)` after every change of the state. */
  addChangeListener(listener) {
    this.changeListeners.add(listener);
  }
  removeChangeListener(listener) {
    this.changeListeners.delete(listener);
  }
  /** `listener(data)` for each custom event of `type`; a refused join reaches `onEvent('error')`, as in Motia. */
  onEvent(type, listener) {
    this.eventListeners.set(type, [...this.eventListeners.get(type) ?? [], listener]);
  }
  offEvent(type, listener) {
    this.eventListeners.set(type, (this.eventListeners.get(type) ?? []).filter((l) => l !== listener));
  }
  onClose(listener) {
    this.closeListeners.add(listener);
  }
  /** Leave: the server forgets the subscription; no listener is called after this. */
  close() {
    if (this.finished) return;
    this.finished = true;
    const host = this.host;
    this.host = null;
    host?.leave(this);
    this.closeListeners.forEach((listener) => call(listener));
    this.closeListeners.clear();
  }
  // -- extras -------------------------------------------------------------------------------
  /** `addChangeListener` that returns its own removal. */
  onChange(listener) {
    this.addChangeListener(listener);
    return () => this.removeChangeListener(listener);
  }
  /** `listener(replayed)` when a reconnect was covered by a replay: nothing was missed, no sync. */
  onResumed(listener) {
    this.resumedListeners.add(listener);
    return () => this.resumedListeners.delete(listener);
  }
  /** `listener(state)` when a sync replaced state this subscription had: events may have been missed. */
  onResync(listener) {
    this.resyncListeners.add(listener);
    return () => this.resyncListeners.delete(listener);
  }
  /** `listener({code, message})` when the server refuses this subscription (it is then closed). */
  onRefused(listener) {
    this.refusedListeners.add(listener);
    return () => this.refusedListeners.delete(listener);
  }
  /** `listener(entries)` with the whole presence list (sorted by key) whenever it changes. */
  onPresence(listener) {
    this.presenceListeners.add(listener);
    return () => this.presenceListeners.delete(listener);
  }
  getPresence() {
    return [...this.presenceEntries.values()].sort((a, b) => a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  }
  /** (epoch, offset) of the last state applied: where a reconnect resumes from. */
  get lastPosition() {
    return this.position;
  }
  get closed() {
    return this.finished;
  }
  /** True while a (re)join is unanswered. */
  get pending() {
    return this.awaiting;
  }
  // -- fed by the stream --------------------------------------------------------------------
  /** @internal */
  attach(host) {
    this.host = host;
  }
  /** @internal A join is being sent: its `since` (null for a first join, or `fresh`). */
  beginJoin(fresh = false) {
    this.awaiting = true;
    this.since = this.synced && !fresh ? this.position : null;
    this.replay.clear();
    return this.since;
  }
  /** @internal The transport went away: whatever was pending is void. */
  disconnected() {
    this.awaiting = false;
    this.since = null;
    this.replay.clear();
  }
  /** @internal A frame routed here that answers no join of this subscription. */
  frame(frame) {
    if (this.finished) return;
    if (frame.type === "presence" || frame.type === "presence_join" || frame.type === "presence_leave") {
      if (!frame.id) this.presenceFrame(frame);
      return;
    }
    if (this.awaiting) {
      if (isStateFrame(frame)) {
        if (this.since !== null) this.replay.add(frame);
      } else if (frame.type === "event" && this.synced) {
        this.customEvent(frame, false);
      }
      return;
    }
    if (!this.synced) return;
    if (isStateFrame(frame)) this.stateFrame(frame);
    else if (frame.type === "event") this.customEvent(frame, true);
  }
  /** @internal The sync answering our join: the first one, or a snapshot instead of a replay. */
  answerSync(frame) {
    if (this.finished) return;
    this.awaiting = false;
    this.replay.clear();
    const resynced = this.synced;
    this.state.sync(frame.data, frame.timestamp, true);
    this.position = framePosition(frame);
    this.synced = true;
    this.emitSync(resynced);
  }
  /** @internal The `resumed` marker answering our join: apply what was replayed, in offset order. */
  answerResumed(frame) {
    if (this.finished) return;
    const since = this.since;
    this.awaiting = false;
    if (this.replay.overflowed || since === null) {
      this.replay.clear();
      this.host?.rejoin(this, true);
      return;
    }
    for (const replayed of this.replay.drain(since)) {
      this.stateFrame(replayed);
      if (this.finished) return;
    }
    const position = framePosition(frame);
    if (position && (!this.position || position.epoch !== this.position.epoch || position.offset > this.position.offset)) {
      this.position = position;
    }
    this.resumes += 1;
    this.resumedListeners.forEach((listener) => call(listener, frame.replayed ?? 0));
  }
  /** @internal A sync in our room that is not our join's answer: a sibling's answer
   * (`solicited`) or the server's resync after it dropped this connection's backlog. */
  otherSync(frame, solicited) {
    if (this.finished || !this.synced || this.awaiting) return;
    const position = framePosition(frame);
    if (this.state.equals(frame.data) && (solicited || samePosition(position, this.position))) {
      if (position && (!this.position || position.epoch !== this.position.epoch || position.offset > this.position.offset)) {
        this.position = position;
      }
      return;
    }
    if (!this.state.sync(frame.data, frame.timestamp)) return;
    this.position = position;
    this.emitSync(true);
  }
  /** @internal The server refused this subscription (`unauthorized` + the error event). */
  refuse(code, message, data) {
    if (this.finished) return;
    this.refusal = { code, message, data };
    (this.eventListeners.get("error") ?? []).forEach((listener) => call(listener, data));
    this.refusedListeners.forEach((listener) => call(listener, this.refusal));
    this.close();
  }
  /** @internal Presence was asked for: what the server sends after the join's answer. */
  presenceFrame(frame) {
    if (frame.type === "presence") {
      const entries2 = Array.isArray(frame.data) ? frame.data : [];
      this.presenceEntries = new Map(entries2.filter(isEntry).map((entry) => [entry.key, entry]));
    } else if (isEntry(frame.data)) {
      if (frame.type === "presence_leave" || frame.data.count <= 0) this.presenceEntries.delete(frame.data.key);
      else this.presenceEntries.set(frame.data.key, frame.data);
    } else {
      return;
    }
    const entries = this.getPresence();
    this.presenceListeners.forEach((listener) => call(listener, entries));
  }
  // -- own ---------------------------------------------------------------------------------------
  stateFrame(frame) {
    if (isDuplicate(this.position, frame)) return;
    if (!this.state.apply(frame.type, frame.id, frame.data, frame.timestamp)) return;
    this.position = framePosition(frame) ?? this.position;
    this.emitChange();
  }
  acceptEvent(_timestamp) {
    return true;
  }
  customEvent(frame, checkTime) {
    if (checkTime && !this.acceptEvent(frame.timestamp)) return;
    (this.eventListeners.get(frame.eventType ?? "") ?? []).forEach((listener) => call(listener, frame.data));
  }
  emitSync(resynced) {
    this.emitChange();
    if (resynced) {
      this.resyncs += 1;
      const state = this.state.view();
      this.resyncListeners.forEach((listener) => call(listener, state));
    }
  }
  emitChange() {
    const state = this.state.view();
    this.changeListeners.forEach((listener) => call(listener, state));
  }
};
function isEntry(value) {
  return value !== null && typeof value === "object" && typeof value.key === "string" && typeof value.count === "number";
}
function samePosition(a, b) {
  return a === b || a !== null && b !== null && a.epoch === b.epoch && a.offset === b.offset;
}
var StreamGroupSubscription = class extends StreamSubscription {
  constructor(sub, sortKey, options = {}) {
    super(sub, options);
    this.state = new GroupState(sortKey);
  }
};
var StreamItemSubscription = class extends StreamSubscription {
  constructor(sub) {
    super(sub);
    this.state = new ItemState();
  }
  acceptEvent(timestamp) {
    return this.state.acceptEvent(timestamp);
  }
};

// src/websocket.ts
var LEGACY_JOIN_ERRORS = /* @__PURE__ */ new Set(["TOO_MANY_SUBSCRIPTIONS", "JOIN_FAILED"]);
function subRoom(sub) {
  return roomName(sub.sub.streamName, sub.sub.groupId, sub.sub.id);
}
var WebSocketDriver = class {
  constructor(ws, host) {
    this.ws = ws;
    this.host = host;
    this.pending = [];
    // joins on the wire, unanswered, in wire order
    this.refusing = null;
    this.opened = false;
    this.ended = false;
    ws.addEventListener("open", () => this.onOpen());
    ws.addEventListener("message", (event) => {
      if (typeof event.data === "string") this.onMessage(event.data);
    });
    ws.addEventListener("close", (event) => this.onClose(event.code ?? 1006));
  }
  get isOpen() {
    return this.opened && !this.ended && this.ws.readyState === 1;
  }
  /** Send a join (first or re-join) for `sub`; `fresh` asks for a sync instead of a resume. */
  join(sub, fresh = false) {
    if (!this.isOpen) return;
    const since = sub.beginJoin(fresh);
    this.pending.push(sub);
    this.ws.send(joinMessage(sub.sub, { since, presence: sub.presence, presenceData: sub.presenceData }));
  }
  leave(sub) {
    if (this.isOpen) this.ws.send(leaveMessage(sub.sub));
  }
  refresh(token) {
    if (this.isOpen) this.ws.send(refreshMessage(token));
  }
  close() {
    this.ended = true;
    try {
      this.ws.close(1e3);
    } catch {
    }
  }
  onOpen() {
    if (this.ended) return;
    this.opened = true;
    const subs = [...this.host.subscriptions()];
    const rejoining = subs.some((sub) => sub.lastPosition !== null);
    for (const sub of subs) this.join(sub);
    this.host.transportOpened(rejoining);
    if (this.pending.length === 0) this.host.transportAnswered();
  }
  onClose(code) {
    if (this.ended) return;
    this.ended = true;
    this.pending = [];
    for (const sub of this.host.subscriptions()) sub.disconnected();
    this.host.transportDropped(this.opened, code);
  }
  popPending(room) {
    const index = this.pending.findIndex((sub) => room === null || subRoom(sub) === room);
    return index < 0 ? null : this.pending.splice(index, 1)[0];
  }
  roomSubs(room) {
    return this.host.room(room);
  }
  /** A refusal of `sub`, or (a sub of null: not a join's answer) of every live subscription of `room`. */
  refuse(room, sub, code, message, data) {
    const targets = sub ? [sub] : this.roomSubs(room);
    if (code === "TOKEN_EXPIRED") this.host.tokenExpired(targets);
    else targets.forEach((target) => target.refuse(code, message, data));
  }
  onMessage(text) {
    if (this.ended) return;
    const parsed = parseFrame(text);
    if (parsed.kind === "malformed") return;
    if (parsed.kind === "error") {
      const sub = LEGACY_JOIN_ERRORS.has(parsed.code) ? this.popPending(null) : null;
      if (sub) this.refuse(subRoom(sub), sub, parsed.code, parsed.message, { code: parsed.code, message: parsed.message });
      else this.host.streamError(parsed.code, parsed.message);
    } else if (parsed.kind === "refresh_required") {
      this.host.refreshRequired(parsed.expiresAt);
    } else if (parsed.kind === "refreshed") {
      this.host.refreshed(parsed.expiresAt);
    } else {
      this.streamFrame(parsed.frame);
    }
    if (this.pending.length === 0 && parsed.kind === "stream") this.host.transportAnswered();
  }
  streamFrame(frame) {
    const room = roomName(frame.streamName, frame.groupId, frame.id);
    const code = refusalCode(frame);
    const refusing = this.refusing;
    this.refusing = null;
    if (refusing) {
      const data = frame.data;
      if (code !== null && refusing.room === room) {
        this.refuse(room, refusing.sub, code, String(data?.message ?? ""), frame.data);
        return;
      }
      const denied = { code: "STREAM_ACCESS_DENIED", message: "the join was refused" };
      this.refuse(refusing.room, refusing.sub, denied.code, denied.message, denied);
    }
    if (frame.type === "unauthorized") {
      this.refusing = { room, sub: this.popPending(room) };
      return;
    }
    if (code !== null) {
      const sub = this.popPending(room);
      if (sub) {
        this.refuse(room, sub, code, String(frame.data.message ?? ""), frame.data);
        return;
      }
    }
    if (frame.type === "sync") {
      const answer = this.popPending(room);
      for (const sub of this.roomSubs(room)) {
        if (sub === answer) sub.answerSync(frame);
        else sub.otherSync(frame, answer !== null);
      }
      return;
    }
    if (frame.type === "resumed") {
      this.popPending(room)?.answerResumed(frame);
      return;
    }
    for (const target of frameRooms(frame)) {
      for (const sub of this.roomSubs(target)) sub.frame(frame);
    }
  }
};

// src/stream.ts
var PROBE_PATH = "/_client/auth";
var SUBPROTOCOL = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
function servedFrom() {
  try {
    const url = new URL(import.meta.url);
    return url.pathname.startsWith("/_client/") ? url.origin : void 0;
  } catch {
    return void 0;
  }
}
function uuid() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = bytes[6] & 15 | 64;
  bytes[8] = bytes[8] & 63 | 128;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
var Stream = class {
  constructor(address, options = {}) {
    this.address = address;
    this.subs = /* @__PURE__ */ new Set();
    this.rooms = /* @__PURE__ */ new Map();
    this.listeners = /* @__PURE__ */ new Map();
    // eslint-disable-line @typescript-eslint/no-explicit-any
    this.connectionState = "idle";
    this.driver = null;
    this.attempt = 0;
    this.timer = null;
    this.refreshing = false;
    this.expired = [];
    this.generation = 0;
    this.options = options;
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff };
    this.transportKind = options.transport === "sse" ? "sse" : "websocket";
    const protocols = typeof options.protocols === "string" ? [options.protocols] : options.protocols ?? [];
    const at = protocols.indexOf("Authorization");
    this.token = at >= 0 ? protocols[at + 1] : void 0;
    queueMicrotask(() => void this.connect());
  }
  // -- Motia's surface ------------------------------------------------------------------------
  /** Subscribe to one item: `getState()` is the item or null. */
  subscribeItem(streamName, groupId, id) {
    const subscription = new StreamItemSubscription({ streamName, groupId, id, subscriptionId: uuid() });
    this.subscribe(subscription);
    return subscription;
  }
  /**
   * Subscribe to a group: `getState()` is its items, sorted by `sortKey` when given.
   * `options.presence` asks for presence (`onPresence`), with `presenceData` (<= 1 KiB JSON) as this
   * subscriber's entry; the options may also stand in the place of `sortKey`.
   */
  subscribeGroup(streamName, groupId, sortKey, options = {}) {
    if (sortKey !== null && typeof sortKey === "object") {
      options = sortKey;
      sortKey = options.sortKey;
    }
    const subscription = new StreamGroupSubscription(
      { streamName, groupId, subscriptionId: uuid() },
      sortKey ?? null,
      options
    );
    this.subscribe(subscription);
    return subscription;
  }
  /** Close the connection and forget every subscription: nothing is called after this. */
  close() {
    this.clearTimer();
    this.input("close", {});
    const subs = [...this.subs];
    this.subs.clear();
    this.rooms.clear();
    this.driver?.close();
    this.driver = null;
    subs.forEach((sub) => sub.close());
  }
  // -- extras -----------------------------------------------------------------------------------
  /** `connecting`, `open`, `resyncing` (connected, re-joins unanswered), `refused`, `closed` (or `idle`). */
  get state() {
    return this.connectionState;
  }
  get transport() {
    return this.transportKind;
  }
  /** Listen to a connection event (see `StreamEvents`); returns the removal. */
  on(event, listener) {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, set = /* @__PURE__ */ new Set());
    set.add(listener);
    return () => this.off(event, listener);
  }
  off(event, listener) {
    this.listeners.get(event)?.delete(listener);
  }
  /** Reconnect now (after a refusal without retries, or to skip a backoff). */
  reconnect() {
    this.restart(void 0);
  }
  // -- what the driver tells us (DriverHost) ----------------------------------------------------
  subscriptions() {
    return this.subs;
  }
  room(name) {
    return [...this.rooms.get(name) ?? []];
  }
  transportOpened(rejoining) {
    if (rejoining) this.input("rejoining", { pending: this.pendingCount() });
    else this.input("opened", { transport: this.transportKind });
  }
  transportAnswered() {
    this.attempt = 0;
    this.input("answered", { transport: this.transportKind });
  }
  transportDropped(opened, _code) {
    const driver = this.driver;
    this.driver = null;
    if (this.connectionState === "closed") return;
    if (opened) {
      this.scheduleReconnect();
      return;
    }
    void this.diagnose(driver);
  }
  streamError(code, message) {
    if (code === "REFRESH_FAILED") {
      this.refreshing = false;
      const expired = this.expired;
      this.expired = [];
      expired.forEach((sub) => sub.refuse("TOKEN_EXPIRED", message, { code: "TOKEN_EXPIRED", message }));
    }
    this.emit("error", { code, message });
  }
  refreshRequired(expiresAt2) {
    this.emit("refresh_required", { expiresAt: expiresAt2 });
    if (typeof this.options.token === "function") void this.refreshToken();
  }
  refreshed(expiresAt2) {
    this.refreshing = false;
    this.emit("refreshed", { expiresAt: expiresAt2 });
    const expired = this.expired.filter((sub) => !sub.closed);
    this.expired = [];
    if (expired.length && this.driver?.isOpen) {
      for (const sub of expired) this.driver.join(sub);
      this.input("rejoining", { pending: this.pendingCount() });
    }
  }
  tokenExpired(subscriptions) {
    if (typeof this.options.token !== "function") {
      subscriptions.forEach((sub) => sub.refuse("TOKEN_EXPIRED", "the token expired", { code: "TOKEN_EXPIRED" }));
      return;
    }
    for (const sub of subscriptions) {
      sub.disconnected();
      if (!this.expired.includes(sub)) this.expired.push(sub);
    }
    void this.refreshToken();
  }
  // -- own --------------------------------------------------------------------------------------
  subscribe(sub) {
    const room = roomName(sub.sub.streamName, sub.sub.groupId, sub.sub.id);
    let set = this.rooms.get(room);
    if (!set) this.rooms.set(room, set = /* @__PURE__ */ new Set());
    set.add(sub);
    this.subs.add(sub);
    sub.attach({
      rejoin: (one, fresh) => this.driver?.join(one, fresh),
      leave: (one) => {
        this.subs.delete(one);
        this.rooms.get(room)?.delete(one);
        if (this.rooms.get(room)?.size === 0) this.rooms.delete(room);
        this.driver?.leave(one);
      }
    });
    if (this.driver?.isOpen) this.driver.join(sub);
  }
  pendingCount() {
    return [...this.subs].filter((sub) => sub.pending).length;
  }
  input(input, detail) {
    const before = this.connectionState;
    const after = nextState(before, input);
    if (after === before && !(input === "dropped" && after === "connecting")) return;
    this.connectionState = after;
    this.emit("state", after, detail);
    if (after !== "idle") this.emit(after, detail);
  }
  emit(event, ...args) {
    for (const listener of [...this.listeners.get(event) ?? []]) {
      try {
        listener(...args);
      } catch (error) {
        console.error(`stream ${event} listener failed`, error);
      }
    }
  }
  isClosed() {
    return this.connectionState === "closed";
  }
  get httpUrl() {
    return this.options.httpUrl ?? servedFrom();
  }
  async resolveToken() {
    const source = this.options.token;
    if (typeof source === "function") return await source() ?? void 0;
    return source ?? this.token;
  }
  restart(token) {
    if (this.isClosed()) return;
    this.clearTimer();
    this.driver?.close();
    this.driver = null;
    for (const sub of this.subs) sub.disconnected();
    this.input("dropped", { attempt: this.attempt, delay: 0 });
    void this.connect(token);
  }
  /** One connection attempt; `fresh` is a token just obtained (a refresh), else the source is asked. */
  async connect(fresh) {
    if (this.connectionState === "closed") return;
    const generation = ++this.generation;
    this.input("connect", { attempt: this.attempt, delay: 0 });
    let token;
    try {
      token = fresh ?? await this.resolveToken();
    } catch (error) {
      this.emit("error", { code: "TOKEN_FAILED", message: String(error) });
      if (generation === this.generation) this.scheduleReconnect();
      return;
    }
    if (generation !== this.generation || this.isClosed()) return;
    this.token = token;
    if (this.transportKind === "sse") {
      const EventSourceImpl = this.options.EventSource ?? globalThis.EventSource;
      const httpUrl = this.httpUrl;
      if (!EventSourceImpl || !httpUrl) {
        this.emit("error", { code: "SSE_UNAVAILABLE", message: "SSE needs EventSource and the httpUrl option" });
        return;
      }
      const driver = new SseDriver(EventSourceImpl, httpUrl, this.options.ssePrefix ?? "/streams", token, this);
      this.driver = driver;
      driver.start();
      return;
    }
    const WebSocketImpl = this.options.WebSocket ?? globalThis.WebSocket;
    if (!WebSocketImpl) {
      this.emit("error", { code: "WEBSOCKET_UNAVAILABLE", message: "no WebSocket: give the WebSocket option" });
      return;
    }
    let ws;
    try {
      ws = new WebSocketImpl(this.socketUrl(token), this.protocols(token));
    } catch (error) {
      this.emit("error", { code: "CONNECT_FAILED", message: String(error) });
      this.scheduleReconnect();
      return;
    }
    this.driver = new WebSocketDriver(ws, this);
  }
  /** The token travels as Motia's `Authorization` subprotocol pair when it is a valid subprotocol
   * (an HTTP token: a JWT is), else as the `authToken` query parameter (`new WebSocket` throws on
   * a subprotocol with, say, a colon or base64 padding). */
  protocols(token) {
    const given = typeof this.options.protocols === "string" ? [this.options.protocols] : this.options.protocols;
    if (given?.includes("Authorization") || !token || !SUBPROTOCOL.test(token)) return given;
    return ["Authorization", token, ...given ?? []];
  }
  socketUrl(token) {
    const given = typeof this.options.protocols === "string" ? [this.options.protocols] : this.options.protocols;
    if (!token || SUBPROTOCOL.test(token) || given?.includes("Authorization")) return this.address;
    const url = new URL(this.address);
    url.searchParams.set("authToken", token);
    return url.toString();
  }
  scheduleReconnect() {
    if (this.connectionState === "closed") return;
    this.clearTimer();
    const delay = backoffDelay(this.attempt, this.backoff, this.options.random);
    const detail = { attempt: this.attempt, delay };
    this.attempt += 1;
    this.input("dropped", detail);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }
  clearTimer() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
  /** A connection that never opened: refused (the probe says 401/403), WebSocket blocked, or down. */
  async diagnose(driver) {
    const generation = this.generation;
    const httpUrl = this.httpUrl;
    const url = this.transportKind === "sse" ? driver?.lastFailedUrl : httpUrl ? `${httpUrl.replace(/\/$/, "")}${PROBE_PATH}` : null;
    const verdict = url ? await this.probe(url) : null;
    if (generation !== this.generation || this.isClosed()) return;
    if (verdict && verdict !== "ok") {
      this.input("refused", verdict);
      const retry = this.options.retryRefused ?? typeof this.options.token === "function";
      if (retry) this.scheduleReconnect();
      return;
    }
    if (verdict === "ok" && this.transportKind === "websocket" && this.options.transport === "auto") {
      this.transportKind = "sse";
      this.emit("transport", { transport: "sse" });
      void this.connect();
      return;
    }
    this.scheduleReconnect();
  }
  /** 'ok' (HTTP admits this token), a refusal, or null (unreachable: the server is down). */
  async probe(url) {
    const fetchImpl = this.options.fetch ?? globalThis.fetch;
    if (!fetchImpl) return null;
    const controller = typeof AbortController === "function" ? new AbortController() : void 0;
    try {
      const headers = { accept: "application/json" };
      if (this.token) headers.authorization = `Bearer ${this.token}`;
      const response = await fetchImpl(url, { headers, signal: controller?.signal, cache: "no-store" });
      if (response.ok) {
        controller?.abort();
        return "ok";
      }
      if (![401, 403, 404].includes(response.status)) return null;
      const body = await response.json().catch(() => null);
      return { status: response.status, code: body?.error?.code ?? String(response.status), message: body?.error?.message ?? "" };
    } catch {
      return null;
    }
  }
  async refreshToken() {
    if (this.refreshing) return;
    this.refreshing = true;
    let token;
    try {
      token = await this.resolveToken();
    } catch (error) {
      this.refreshing = false;
      this.emit("error", { code: "TOKEN_FAILED", message: String(error) });
      return;
    }
    if (this.isClosed() || !token) {
      this.refreshing = false;
      return;
    }
    this.token = token;
    if (this.driver instanceof WebSocketDriver && this.driver.isOpen) {
      this.driver.refresh(token);
      return;
    }
    this.refreshing = false;
    this.restart(token);
  }
};
export {
  PROBE_PATH,
  Stream,
  StreamGroupSubscription,
  StreamItemSubscription,
  StreamSubscription
};
