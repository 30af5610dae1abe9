// Fakes of the browser's WebSocket, EventSource and fetch for the Node tests of clients/js:
// what the server would send is written by the test, what the client sends is recorded.
export { Stream } from '../../clients/js/dist/stream.js'

export const flush = async (rounds = 5) => {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve))
}

class Emitter {
  constructor() { this.listeners = {} }
  addEventListener(type, listener) { (this.listeners[type] ??= []).push(listener) }
  dispatch(type, event = {}) { for (const listener of this.listeners[type] ?? []) listener(event) }
}

export class FakeWebSocket extends Emitter {
  static instances = []
  constructor(url, protocols) {
    super()
    this.url = url
    this.protocols = protocols
    this.readyState = 0
    this.sent = []
    FakeWebSocket.instances.push(this)
  }
  static reset() { FakeWebSocket.instances = [] }
  static get last() { return FakeWebSocket.instances.at(-1) }
  send(data) { this.sent.push(JSON.parse(data)) }
  close() { if (this.readyState < 2) { this.readyState = 3; this.dispatch('close', { code: 1000 }) } }
  // the server's side
  open() { this.readyState = 1; this.dispatch('open') }
  message(frame) { this.dispatch('message', { data: typeof frame === 'string' ? frame : JSON.stringify(frame) }) }
  drop(code = 1006) { this.readyState = 3; this.dispatch('close', { code }) }
  joins() { return this.sent.filter((m) => m.type === 'join') }
}

export class FakeEventSource extends Emitter {
  static instances = []
  constructor(url) {
    super()
    this.url = new URL(url)
    this.readyState = 0
    this.closed = false
    FakeEventSource.instances.push(this)
  }
  static reset() { FakeEventSource.instances = [] }
  close() { this.closed = true; this.readyState = 2 }
  open() { this.readyState = 1; this.dispatch('open') }
  event(name, data, id) { this.dispatch(name, { data: JSON.stringify(data), lastEventId: id ?? '' }) }
  fail() { this.readyState = 0; this.dispatch('error') }
}

/** A fetch answering every request with `status` and `body` (JSON); its calls are recorded. */
export function fakeFetch(status, body = {}) {
  const calls = []
  const impl = async (url, init) => {
    calls.push({ url: String(url), init })
    return { ok: status >= 200 && status < 300, status, json: async () => body }
  }
  impl.calls = calls
  return impl
}

let clock = 1000
/** A server envelope; `timestamp` increases by itself unless given. */
export function envelope({ stream = 'todos', group = 'inbox', id = null, type, data, event, epoch, offset, ts, ...rest }) {
  const frame = { type: 'stream', timestamp: ts ?? ++clock, streamName: stream, groupId: group, id }
  if (epoch !== undefined) Object.assign(frame, { epoch, offset })
  frame.event = type === 'event' ? { type, event } : { type, ...(data !== undefined ? { data } : {}), ...rest }
  return frame
}

export function options(extra = {}) {
  return { WebSocket: FakeWebSocket, EventSource: FakeEventSource, random: () => 0.5, ...extra }
}
