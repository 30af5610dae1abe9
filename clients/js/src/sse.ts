/**
 * The Server-Sent Events driver, for where WebSocket is blocked: one `EventSource`
 * per subscription (`GET <httpUrl><ssePrefix>/<stream>/<group>[/<id>]`, docs/sse.md).
 *
 * Each EventSource is one subscription, so a (re)connect's first `sync` or
 * `resumed` is its answer. The resume token (`epoch:offset`, the `id:` lines) is
 * sent back as the `lastEventId` query parameter: a new EventSource cannot set
 * the `Last-Event-ID` header, and this driver makes a new one after every failure
 * (the `Stream`'s backoff with jitter, not EventSource's fixed retry). The token
 * travels as `authToken` (EventSource cannot set `Authorization` either).
 */

import { formatPosition, parseFrame, type Position } from './protocol.js'
import type { DriverHost } from './websocket.js'
import type { AnySubscription } from './subscription.js'

export type EventSourceLike = {
  readyState: number
  close(): void
  addEventListener(type: string, listener: (event: any) => void): void // eslint-disable-line @typescript-eslint/no-explicit-any
}

export type EventSourceConstructor = new (url: string) => EventSourceLike

/** The SSE event names this runtime sends (docs/sse.md, WIRE_CONTRACT.md). */
const EVENTS = ['sync', 'create', 'update', 'delete', 'event', 'resumed', 'presence', 'presence_join', 'presence_leave',
  'message']

type Sub = AnySubscription

export function sseUrl(httpUrl: string, prefix: string, sub: Sub, token: string | undefined,
  since: Position | null): string {
  const { streamName, groupId, id } = sub.sub
  const path = [streamName, groupId, ...(id ? [id] : [])].map(encodeURIComponent).join('/')
  const query = new URLSearchParams()
  if (token) query.set('authToken', token)
  if (sub.presence) query.set('presence', 'true')
  if (since) query.set('lastEventId', formatPosition(since))
  const search = query.toString()
  return `${httpUrl.replace(/\/$/, '')}${prefix}/${path}${search ? `?${search}` : ''}`
}

export class SseDriver {
  private sources = new Map<Sub, EventSourceLike>()
  private ended = false
  private openedOnce = false

  constructor(
    private readonly EventSourceImpl: EventSourceConstructor,
    private readonly httpUrl: string,
    private readonly prefix: string,
    private readonly token: string | undefined,
    private readonly host: DriverHost,
  ) {}

  get isOpen(): boolean {
    return !this.ended
  }

  /** Open the EventSources of every subscription (the `Stream` calls it once per attempt). */
  start(): void {
    const subs = [...this.host.subscriptions()]
    if (subs.length === 0) {
      this.openedOnce = true
      this.host.transportOpened(false)
      this.host.transportAnswered()
      return
    }
    for (const sub of subs) this.join(sub)
  }

  join(sub: Sub, fresh = false): void {
    if (this.ended) return
    this.sources.get(sub)?.close()
    const url = sseUrl(this.httpUrl, this.prefix, sub, this.token, fresh ? null : sub.lastPosition)
    const source = new this.EventSourceImpl(url)
    this.sources.set(sub, source)
    source.addEventListener('open', () => {
      if (this.ended || this.sources.get(sub) !== source) return
      const rejoining = sub.lastPosition !== null
      sub.beginJoin(fresh)
      this.openedOnce = true
      this.host.transportOpened(rejoining)
    })
    source.addEventListener('error', () => {
      if (this.ended || this.sources.get(sub) !== source) return
      // closed or retrying by itself: either way the Stream reconnects everything, with backoff
      this.drop(url)
    })
    for (const name of EVENTS) {
      source.addEventListener(name, (event: { data?: unknown }) => {
        if (this.ended || this.sources.get(sub) !== source || typeof event.data !== 'string') return
        this.onData(sub, event.data)
      })
    }
    source.addEventListener('refresh_required', (event: { data?: unknown }) => {
      if (this.ended || typeof event.data !== 'string') return
      let expiresAt: number | null = null
      try {
        const value = JSON.parse(event.data)?.expiresAt
        expiresAt = typeof value === 'number' ? value : null
      } catch {
        // no expiry given
      }
      this.host.refreshRequired(expiresAt)
    })
  }

  leave(sub: Sub): void {
    this.sources.get(sub)?.close()
    this.sources.delete(sub)
  }

  close(): void {
    this.ended = true
    for (const source of this.sources.values()) source.close()
    this.sources.clear()
  }

  /** The URL that failed, for the Stream's probe of why (a 401/403/404 before any stream data). */
  lastFailedUrl: string | null = null

  private drop(url: string): void {
    this.lastFailedUrl = url
    const opened = this.openedOnce
    this.close()
    for (const sub of this.host.subscriptions()) sub.disconnected()
    this.host.transportDropped(opened, 1006)
  }

  private onData(sub: Sub, text: string): void {
    const parsed = parseFrame(text)
    if (parsed.kind !== 'stream') return
    const frame = parsed.frame
    if (frame.type === 'sync' && sub.pending) sub.answerSync(frame)
    else if (frame.type === 'sync') sub.otherSync(frame, false)
    else if (frame.type === 'resumed') sub.answerResumed(frame)
    else sub.frame(frame)
    if (![...this.host.subscriptions()].some((one) => one.pending)) this.host.transportAnswered()
  }
}
