/**
 * The WebSocket driver: one socket carries every subscription of a `Stream`.
 *
 * It sends joins and leaves and routes what comes back. A join's answer (its
 * `sync`, or `resumed`, or a refusal) carries no subscription id, so answers are
 * matched to joins in wire order per room (the server answers in arrival order);
 * every other frame goes to the subscriptions of its rooms (an item's frames
 * reach its group's subscriptions too, as in Motia's clients). One driver lives
 * for one socket; the `Stream` makes a new one for each connection attempt.
 */

import { joinMessage, leaveMessage, parseFrame, refreshMessage, refusalCode, frameRooms, roomName,
  type StreamFrame } from './protocol.js'
import type { AnySubscription } from './subscription.js'

/** Stream-less error codes that answered a join before servers sent them in its envelope. */
const LEGACY_JOIN_ERRORS = new Set(['TOO_MANY_SUBSCRIPTIONS', 'JOIN_FAILED'])

export type WebSocketLike = {
  readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: string, listener: (event: any) => void): void // eslint-disable-line @typescript-eslint/no-explicit-any
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

/** What the driver tells its stream. */
export interface DriverHost {
  subscriptions(): Iterable<AnySubscription>
  /** The live subscriptions of one room (see `roomName`). */
  room(name: string): AnySubscription[]
  transportOpened(rejoining: boolean): void
  transportAnswered(): void
  transportDropped(opened: boolean, code: number): void
  streamError(code: string, message: string): void
  refreshRequired(expiresAt: number | null): void
  refreshed(expiresAt: number | null): void
  tokenExpired(subscriptions: AnySubscription[]): void
}

type Sub = AnySubscription

function subRoom(sub: Sub): string {
  return roomName(sub.sub.streamName, sub.sub.groupId, sub.sub.id)
}

export class WebSocketDriver {
  private pending: Sub[] = [] // joins on the wire, unanswered, in wire order
  private refusing: { room: string; sub: Sub | null } | null = null
  private opened = false
  private ended = false

  constructor(private readonly ws: WebSocketLike, private readonly host: DriverHost) {
    ws.addEventListener('open', () => this.onOpen())
    ws.addEventListener('message', (event: { data: unknown }) => {
      if (typeof event.data === 'string') this.onMessage(event.data)
    })
    ws.addEventListener('close', (event: { code?: number }) => this.onClose(event.code ?? 1006))
  }

  get isOpen(): boolean {
    return this.opened && !this.ended && this.ws.readyState === 1
  }

  /** Send a join (first or re-join) for `sub`; `fresh` asks for a sync instead of a resume. */
  join(sub: Sub, fresh = false): void {
    if (!this.isOpen) return
    const since = sub.beginJoin(fresh)
    this.pending.push(sub)
    this.ws.send(joinMessage(sub.sub, { since, presence: sub.presence, presenceData: sub.presenceData }))
  }

  leave(sub: Sub): void {
    if (this.isOpen) this.ws.send(leaveMessage(sub.sub))
  }

  refresh(token: string): void {
    if (this.isOpen) this.ws.send(refreshMessage(token))
  }

  close(): void {
    this.ended = true
    try {
      this.ws.close(1000)
    } catch {
      // already closing
    }
  }

  private onOpen(): void {
    if (this.ended) return
    this.opened = true
    const subs = [...this.host.subscriptions()]
    const rejoining = subs.some((sub) => sub.lastPosition !== null)
    for (const sub of subs) this.join(sub)
    this.host.transportOpened(rejoining)
    if (this.pending.length === 0) this.host.transportAnswered()
  }

  private onClose(code: number): void {
    if (this.ended) return
    this.ended = true
    this.pending = []
    for (const sub of this.host.subscriptions()) sub.disconnected()
    this.host.transportDropped(this.opened, code)
  }

  private popPending(room: string | null): Sub | null {
    const index = this.pending.findIndex((sub) => room === null || subRoom(sub) === room)
    return index < 0 ? null : this.pending.splice(index, 1)[0]
  }

  private roomSubs(room: string): Sub[] {
    return this.host.room(room)
  }

  /** A refusal of `sub`, or (a sub of null: not a join's answer) of every live subscription of `room`. */
  private refuse(room: string, sub: Sub | null, code: string, message: string, data: unknown): void {
    const targets = sub ? [sub] : this.roomSubs(room)
    if (code === 'TOKEN_EXPIRED') this.host.tokenExpired(targets)
    else targets.forEach((target) => target.refuse(code, message, data))
  }

  private onMessage(text: string): void {
    if (this.ended) return
    const parsed = parseFrame(text)
    if (parsed.kind === 'malformed') return // as Motia's clients: what cannot be read is ignored
    if (parsed.kind === 'error') {
      const sub = LEGACY_JOIN_ERRORS.has(parsed.code) ? this.popPending(null) : null
      if (sub) this.refuse(subRoom(sub), sub, parsed.code, parsed.message, { code: parsed.code, message: parsed.message })
      else this.host.streamError(parsed.code, parsed.message)
    } else if (parsed.kind === 'refresh_required') {
      this.host.refreshRequired(parsed.expiresAt)
    } else if (parsed.kind === 'refreshed') {
      this.host.refreshed(parsed.expiresAt)
    } else {
      this.streamFrame(parsed.frame)
    }
    if (this.pending.length === 0 && parsed.kind === 'stream') this.host.transportAnswered()
  }

  private streamFrame(frame: StreamFrame): void {
    const room = roomName(frame.streamName, frame.groupId, frame.id)
    const code = refusalCode(frame)
    const refusing = this.refusing
    this.refusing = null
    if (refusing) {
      const data = frame.data as { message?: unknown } | null
      if (code !== null && refusing.room === room) {
        this.refuse(room, refusing.sub, code, String(data?.message ?? ''), frame.data)
        return
      }
      const denied = { code: 'STREAM_ACCESS_DENIED', message: 'the join was refused' }
      this.refuse(refusing.room, refusing.sub, denied.code, denied.message, denied)
    }
    if (frame.type === 'unauthorized') {
      this.refusing = { room, sub: this.popPending(room) } // completed by the error event that follows
      return
    }
    if (code !== null) {
      const sub = this.popPending(room)
      if (sub) {
        this.refuse(room, sub, code, String((frame.data as { message?: unknown }).message ?? ''), frame.data)
        return
      }
      // no join waits in this room: an ordinary custom event named "error"
    }
    if (frame.type === 'sync') {
      const answer = this.popPending(room)
      for (const sub of this.roomSubs(room)) {
        if (sub === answer) sub.answerSync(frame)
        else sub.otherSync(frame, answer !== null)
      }
      return
    }
    if (frame.type === 'resumed') {
      this.popPending(room)?.answerResumed(frame)
      return
    }
    for (const target of frameRooms(frame)) {
      for (const sub of this.roomSubs(target)) sub.frame(frame)
    }
  }
}
