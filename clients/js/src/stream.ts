/**
 * `Stream`: the browser client, with the surface of `@motiadev/stream-client-browser` 0.17
 * (`new Stream(address, {protocols})`, `subscribeGroup`, `subscribeItem`, `close`), so a
 * front end switches by changing its import, plus what Motia's client lacks:
 *
 * - every reconnect resumes each subscription with `since` (docs/protocol.md, "Resume"):
 *   no full sync when the server's history covers the gap;
 * - reconnects back off exponentially with jitter and a cap (Motia: a fixed 2 s forever);
 * - the connection's state and the reason of a refusal are events (`connecting`, `open`,
 *   `resyncing`, `refused {status, code}`, `closed`): the browser hides a WebSocket's 401,
 *   so a handshake that fails is followed by one HTTP probe (`/_client/auth`) to learn why;
 * - `token` as a string or an async function, called on every connect and on the server's
 *   `refresh_required` (the new token is sent as a `refresh` frame; WIRE_CONTRACT.md);
 * - presence on group subscriptions; SSE as a transport where WebSocket is blocked.
 *
 * The protocol is pure code (protocol.ts, merge.ts); this class owns the timers, the token
 * and the driver of the current connection (websocket.ts or sse.ts).
 */

import { backoffDelay, type Backoff, type ConnectionInput, type ConnectionState, DEFAULT_BACKOFF, nextState,
  roomName } from './protocol.js'
import { SseDriver, type EventSourceConstructor } from './sse.js'
import { type PresenceEntry, StreamGroupSubscription, StreamItemSubscription, type AnySubscription } from './subscription.js'
import { type DriverHost, type WebSocketConstructor, WebSocketDriver } from './websocket.js'

export type TokenSource = string | (() => string | null | undefined | Promise<string | null | undefined>)
export type Transport = 'websocket' | 'sse' | 'auto'

export type StreamOptions = {
  /** WebSocket subprotocols, as Motia's client: `['Authorization', token]` carries a token. */
  protocols?: string | string[]
  /** The token, or a function returning it (called on each connect and on `refresh_required`). */
  token?: TokenSource
  /** `websocket` (default), `sse`, or `auto`: WebSocket, and SSE when a socket never opens while HTTP works. */
  transport?: Transport
  /** The server's HTTP address (SSE, and the refusal probe); default: where this module was served from. */
  httpUrl?: string
  /** The SSE subscription prefix (`ServerSettings.sse_prefix`). */
  ssePrefix?: string
  /** Reconnect delays in ms: `initial × 2^n` capped at `max`, ±`jitter` (a fraction). */
  backoff?: Partial<Backoff>
  /** Keep reconnecting after a refused handshake (default: only when `token` is a function). */
  retryRefused?: boolean
  WebSocket?: WebSocketConstructor
  EventSource?: EventSourceConstructor
  fetch?: typeof fetch
  random?: () => number
}

/** Motia's name for the options object. */
export type BrowserStreamOptions = StreamOptions

export type RefusedDetail = { status: number; code: string; message: string }
export type ConnectingDetail = { attempt: number; delay: number }

type Driver = {
  readonly isOpen: boolean
  join(sub: AnySubscription, fresh?: boolean): void
  leave(sub: AnySubscription): void
  close(): void
  refresh?(token: string): void
  lastFailedUrl?: string | null
}

type StreamEvents = {
  state: (state: ConnectionState, detail: unknown) => void
  connecting: (detail: ConnectingDetail) => void
  open: (detail: { transport: 'websocket' | 'sse' }) => void
  resyncing: (detail: { pending: number }) => void
  refused: (detail: RefusedDetail) => void
  closed: (detail: Record<string, never>) => void
  error: (detail: { code: string; message: string }) => void
  refresh_required: (detail: { expiresAt: number | null }) => void
  refreshed: (detail: { expiresAt: number | null }) => void
  transport: (detail: { transport: 'websocket' | 'sse' }) => void
}

type Sub = AnySubscription

export const PROBE_PATH = '/_client/auth'

/** RFC 7230's token characters: what a WebSocket subprotocol may hold. */
const SUBPROTOCOL = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Where this module was served from, when the runtime served it (`<http>/_client/stream.js`). */
function servedFrom(): string | undefined {
  try {
    const url = new URL(import.meta.url)
    return url.pathname.startsWith('/_client/') ? url.origin : undefined
  } catch {
    return undefined
  }
}

function uuid(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto
  if (c && typeof c.randomUUID === 'function') return c.randomUUID()
  const bytes = new Uint8Array(16) // randomUUID needs a secure context; getRandomValues does not
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(bytes)
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256)
  bytes[6] = (bytes[6] & 0x0f) | 0x40
  bytes[8] = (bytes[8] & 0x3f) | 0x80
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export class Stream implements DriverHost {
  private readonly options: StreamOptions
  private readonly backoff: Backoff
  private readonly subs = new Set<Sub>()
  private readonly rooms = new Map<string, Set<Sub>>()
  private readonly listeners = new Map<keyof StreamEvents, Set<(...args: any[]) => void>>() // eslint-disable-line @typescript-eslint/no-explicit-any
  private connectionState: ConnectionState = 'idle'
  private driver: Driver | null = null
  private transportKind: 'websocket' | 'sse'
  private attempt = 0
  private timer: ReturnType<typeof setTimeout> | null = null
  private token: string | undefined
  private refreshing = false
  private expired: Sub[] = []
  private generation = 0

  constructor(readonly address: string, options: StreamOptions = {}) {
    this.options = options
    this.backoff = { ...DEFAULT_BACKOFF, ...options.backoff }
    this.transportKind = options.transport === 'sse' ? 'sse' : 'websocket'
    const protocols = typeof options.protocols === 'string' ? [options.protocols] : options.protocols ?? []
    const at = protocols.indexOf('Authorization')
    this.token = at >= 0 ? protocols[at + 1] : undefined
    // on the next microtask, so listeners added right after `new Stream` see `connecting` too
    queueMicrotask(() => void this.connect())
  }

  // -- Motia's surface ------------------------------------------------------------------------

  /** Subscribe to one item: `getState()` is the item or null. */
  subscribeItem<TData = unknown>(streamName: string, groupId: string, id: string): StreamItemSubscription<TData> {
    const subscription = new StreamItemSubscription<TData>({ streamName, groupId, id, subscriptionId: uuid() })
    this.subscribe(subscription as Sub)
    return subscription
  }

  /**
   * Subscribe to a group: `getState()` is its items, sorted by `sortKey` when given.
   * `options.presence` asks for presence (`onPresence`), with `presenceData` (<= 1 KiB JSON) as this
   * subscriber's entry; the options may also stand in the place of `sortKey`.
   */
  subscribeGroup<TData = unknown>(streamName: string, groupId: string,
    sortKey?: string | GroupOptions | null, options: GroupOptions = {}): StreamGroupSubscription<TData> {
    if (sortKey !== null && typeof sortKey === 'object') {
      options = sortKey
      sortKey = options.sortKey
    }
    const subscription = new StreamGroupSubscription<TData>(
      { streamName, groupId, subscriptionId: uuid() }, sortKey ?? null, options)
    this.subscribe(subscription as Sub)
    return subscription
  }

  /** Close the connection and forget every subscription: nothing is called after this. */
  close(): void {
    this.clearTimer()
    this.input('close', {})
    const subs = [...this.subs]
    this.subs.clear()
    this.rooms.clear()
    this.driver?.close()
    this.driver = null
    subs.forEach((sub) => sub.close())
  }

  // -- extras -----------------------------------------------------------------------------------

  /** `connecting`, `open`, `resyncing` (connected, re-joins unanswered), `refused`, `closed` (or `idle`). */
  get state(): ConnectionState {
    return this.connectionState
  }

  get transport(): 'websocket' | 'sse' {
    return this.transportKind
  }

  /** Listen to a connection event (see `StreamEvents`); returns the removal. */
  on<K extends keyof StreamEvents>(event: K, listener: StreamEvents[K]): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(listener)
    return () => this.off(event, listener)
  }

  off<K extends keyof StreamEvents>(event: K, listener: StreamEvents[K]): void {
    this.listeners.get(event)?.delete(listener)
  }

  /** Reconnect now (after a refusal without retries, or to skip a backoff). */
  reconnect(): void {
    this.restart(undefined)
  }

  // -- what the driver tells us (DriverHost) ----------------------------------------------------

  subscriptions(): Iterable<Sub> {
    return this.subs
  }

  room(name: string): Sub[] {
    return [...(this.rooms.get(name) ?? [])]
  }

  transportOpened(rejoining: boolean): void {
    if (rejoining) this.input('rejoining', { pending: this.pendingCount() })
    else this.input('opened', { transport: this.transportKind })
  }

  transportAnswered(): void {
    this.attempt = 0 // the backoff restarts once a connection works
    this.input('answered', { transport: this.transportKind })
  }

  transportDropped(opened: boolean, _code: number): void {
    const driver = this.driver
    this.driver = null
    if (this.connectionState === 'closed') return
    if (opened) {
      this.scheduleReconnect()
      return
    }
    void this.diagnose(driver)
  }

  streamError(code: string, message: string): void {
    if (code === 'REFRESH_FAILED') {
      this.refreshing = false
      const expired = this.expired
      this.expired = []
      expired.forEach((sub) => sub.refuse('TOKEN_EXPIRED', message, { code: 'TOKEN_EXPIRED', message }))
    }
    this.emit('error', { code, message })
  }

  refreshRequired(expiresAt: number | null): void {
    this.emit('refresh_required', { expiresAt })
    if (typeof this.options.token === 'function') void this.refreshToken()
  }

  refreshed(expiresAt: number | null): void {
    this.refreshing = false
    this.emit('refreshed', { expiresAt })
    const expired = this.expired.filter((sub) => !sub.closed)
    this.expired = []
    if (expired.length && this.driver?.isOpen) {
      for (const sub of expired) this.driver.join(sub)
      this.input('rejoining', { pending: this.pendingCount() })
    }
  }

  tokenExpired(subscriptions: Sub[]): void {
    if (typeof this.options.token !== 'function') {
      subscriptions.forEach((sub) => sub.refuse('TOKEN_EXPIRED', 'the token expired', { code: 'TOKEN_EXPIRED' }))
      return
    }
    for (const sub of subscriptions) {
      sub.disconnected()
      if (!this.expired.includes(sub)) this.expired.push(sub)
    }
    void this.refreshToken()
  }

  // -- own --------------------------------------------------------------------------------------

  private subscribe(sub: Sub): void {
    const room = roomName(sub.sub.streamName, sub.sub.groupId, sub.sub.id)
    let set = this.rooms.get(room)
    if (!set) this.rooms.set(room, (set = new Set()))
    set.add(sub)
    this.subs.add(sub)
    sub.attach({
      rejoin: (one, fresh) => this.driver?.join(one, fresh),
      leave: (one) => {
        this.subs.delete(one)
        this.rooms.get(room)?.delete(one)
        if (this.rooms.get(room)?.size === 0) this.rooms.delete(room)
        this.driver?.leave(one)
      },
    })
    if (this.driver?.isOpen) this.driver.join(sub)
  }

  private pendingCount(): number {
    return [...this.subs].filter((sub) => sub.pending).length
  }

  private input(input: ConnectionInput, detail: unknown): void {
    const before = this.connectionState
    const after = nextState(before, input)
    if (after === before && !(input === 'dropped' && after === 'connecting')) return
    this.connectionState = after
    this.emit('state', after, detail)
    if (after !== 'idle') this.emit(after as keyof StreamEvents, detail)
  }

  private emit(event: keyof StreamEvents, ...args: unknown[]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(...args)
      } catch (error) {
        console.error(`stream ${event} listener failed`, error)
      }
    }
  }

  private isClosed(): boolean {
    return this.connectionState === 'closed'
  }

  private get httpUrl(): string | undefined {
    return this.options.httpUrl ?? servedFrom()
  }

  private async resolveToken(): Promise<string | undefined> {
    const source = this.options.token
    if (typeof source === 'function') return (await source()) ?? undefined
    return source ?? this.token
  }

  private restart(token: string | undefined): void {
    if (this.isClosed()) return
    this.clearTimer()
    this.driver?.close()
    this.driver = null
    for (const sub of this.subs) sub.disconnected()
    this.input('dropped', { attempt: this.attempt, delay: 0 })
    void this.connect(token)
  }

  /** One connection attempt; `fresh` is a token just obtained (a refresh), else the source is asked. */
  private async connect(fresh?: string): Promise<void> {
    if (this.connectionState === 'closed') return
    const generation = ++this.generation
    this.input('connect', { attempt: this.attempt, delay: 0 })
    let token: string | undefined
    try {
      token = fresh ?? await this.resolveToken()
    } catch (error) {
      this.emit('error', { code: 'TOKEN_FAILED', message: String(error) })
      if (generation === this.generation) this.scheduleReconnect()
      return
    }
    if (generation !== this.generation || this.isClosed()) return
    this.token = token
    if (this.transportKind === 'sse') {
      const EventSourceImpl = this.options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource
      const httpUrl = this.httpUrl
      if (!EventSourceImpl || !httpUrl) {
        this.emit('error', { code: 'SSE_UNAVAILABLE', message: 'SSE needs EventSource and the httpUrl option' })
        return
      }
      const driver = new SseDriver(EventSourceImpl, httpUrl, this.options.ssePrefix ?? '/streams', token, this)
      this.driver = driver
      driver.start()
      return
    }
    const WebSocketImpl = this.options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (!WebSocketImpl) {
      this.emit('error', { code: 'WEBSOCKET_UNAVAILABLE', message: 'no WebSocket: give the WebSocket option' })
      return
    }
    let ws
    try {
      ws = new WebSocketImpl(this.socketUrl(token), this.protocols(token))
    } catch (error) {
      this.emit('error', { code: 'CONNECT_FAILED', message: String(error) })
      this.scheduleReconnect()
      return
    }
    this.driver = new WebSocketDriver(ws, this)
  }

  /** The token travels as Motia's `Authorization` subprotocol pair when it is a valid subprotocol
   * (an HTTP token: a JWT is), else as the `authToken` query parameter (`new WebSocket` throws on
   * a subprotocol with, say, a colon or base64 padding). */
  private protocols(token: string | undefined): string[] | undefined {
    const given = typeof this.options.protocols === 'string' ? [this.options.protocols] : this.options.protocols
    if (given?.includes('Authorization') || !token || !SUBPROTOCOL.test(token)) return given
    return ['Authorization', token, ...(given ?? [])]
  }

  private socketUrl(token: string | undefined): string {
    const given = typeof this.options.protocols === 'string' ? [this.options.protocols] : this.options.protocols
    if (!token || SUBPROTOCOL.test(token) || given?.includes('Authorization')) return this.address
    const url = new URL(this.address)
    url.searchParams.set('authToken', token)
    return url.toString()
  }

  private scheduleReconnect(): void {
    if (this.connectionState === 'closed') return
    this.clearTimer()
    const delay = backoffDelay(this.attempt, this.backoff, this.options.random)
    const detail: ConnectingDetail = { attempt: this.attempt, delay }
    this.attempt += 1
    this.input('dropped', detail)
    this.timer = setTimeout(() => {
      this.timer = null
      void this.connect()
    }, delay)
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
  }

  /** A connection that never opened: refused (the probe says 401/403), WebSocket blocked, or down. */
  private async diagnose(driver: Driver | null): Promise<void> {
    const generation = this.generation
    const httpUrl = this.httpUrl
    const url = this.transportKind === 'sse' ? driver?.lastFailedUrl : httpUrl ? `${httpUrl.replace(/\/$/, '')}${PROBE_PATH}` : null
    const verdict = url ? await this.probe(url) : null
    if (generation !== this.generation || this.isClosed()) return
    if (verdict && verdict !== 'ok') {
      this.input('refused', verdict)
      const retry = this.options.retryRefused ?? typeof this.options.token === 'function'
      if (retry) this.scheduleReconnect()
      return
    }
    if (verdict === 'ok' && this.transportKind === 'websocket' && this.options.transport === 'auto') {
      this.transportKind = 'sse' // HTTP works and admits us, the socket does not open: WebSocket is blocked
      this.emit('transport', { transport: 'sse' })
      void this.connect()
      return
    }
    this.scheduleReconnect()
  }

  /** 'ok' (HTTP admits this token), a refusal, or null (unreachable: the server is down). */
  private async probe(url: string): Promise<RefusedDetail | 'ok' | null> {
    const fetchImpl = this.options.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch
    if (!fetchImpl) return null
    const controller = typeof AbortController === 'function' ? new AbortController() : undefined
    try {
      const headers: Record<string, string> = { accept: 'application/json' }
      if (this.token) headers.authorization = `Bearer ${this.token}`
      const response = await fetchImpl(url, { headers, signal: controller?.signal, cache: 'no-store' })
      if (response.ok) {
        controller?.abort() // an SSE probe that was admitted: do not keep its stream
        return 'ok'
      }
      if (![401, 403, 404].includes(response.status)) return null
      const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null
      return { status: response.status, code: body?.error?.code ?? String(response.status), message: body?.error?.message ?? '' }
    } catch {
      return null
    }
  }

  private async refreshToken(): Promise<void> {
    if (this.refreshing) return
    this.refreshing = true
    let token: string | undefined
    try {
      token = await this.resolveToken()
    } catch (error) {
      this.refreshing = false
      this.emit('error', { code: 'TOKEN_FAILED', message: String(error) })
      return
    }
    if (this.isClosed() || !token) {
      this.refreshing = false
      return
    }
    this.token = token
    if (this.driver instanceof WebSocketDriver && this.driver.isOpen) {
      this.driver.refresh(token) // answered by `refreshed` or a REFRESH_FAILED error
      return
    }
    // SSE (or no socket): a new connection carries the new token and resumes where each subscription is
    this.refreshing = false
    this.restart(token)
  }
}

export type GroupOptions = { sortKey?: string | null; presence?: boolean; presenceData?: unknown }
export type { PresenceEntry }
