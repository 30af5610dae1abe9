/**
 * The wire protocol as pure code: frames in, messages out, rooms, backoff, and the
 * connection's state table. No I/O here (the drivers are websocket.ts and sse.ts).
 *
 * The frames are those of docs/protocol.md: Motia's envelope plus this runtime's
 * extensions (epoch/offset, `resumed`, presence, token refresh); Motia's clients
 * ignore the extensions, and so does this one for anything it does not know.
 */

export type Position = { epoch: string; offset: number }

/** Join-answer error codes of a refused join, in the join's envelope. */
export const REFUSAL_CODES = new Set(['STREAM_ACCESS_DENIED', 'STREAM_NOT_FOUND', 'TOO_MANY_SUBSCRIPTIONS', 'JOIN_FAILED',
  'TOKEN_EXPIRED'])

/** Presence event types (WIRE_CONTRACT): not part of the offset log, never merged into state. */
export const PRESENCE_TYPES = new Set(['presence', 'presence_join', 'presence_leave'])

export interface StreamFrame {
  streamName: string
  groupId: string
  id: string | null
  timestamp: number
  /** The event type: sync, create, update, delete, event, unauthorized, resumed, presence... */
  type: string
  /** sync/create/update/delete: the value; event: the custom event's data; presence: the list or entry. */
  data: unknown
  /** For `event`: the custom event's own type. */
  eventType: string | null
  epoch: string | null
  offset: number | null
  replayed: number | null
}

export type ServerFrame =
  | { kind: 'stream'; frame: StreamFrame }
  | { kind: 'error'; code: string; message: string }
  | { kind: 'refresh_required'; expiresAt: number | null }
  | { kind: 'refreshed'; expiresAt: number | null }
  | { kind: 'malformed'; reason: string }

export function formatPosition(position: Position): string {
  return `${position.epoch}:${position.offset}`
}

/** `"<epoch>:<offset>"` (the epoch may itself hold colons); null when it does not parse. */
export function parsePosition(token: string | null | undefined): Position | null {
  if (!token) return null
  const at = token.lastIndexOf(':')
  const offset = Number(token.slice(at + 1))
  if (at <= 0 || !Number.isInteger(offset) || offset < 0) return null
  return { epoch: token.slice(0, at), offset }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

function expiresAt(data: unknown): number | null {
  const value = isObject(data) ? data.expiresAt : null
  return typeof value === 'number' ? value : null
}

/** One server text frame, parsed; anything unreadable is named (`malformed`), never thrown. */
export function parseFrame(text: string): ServerFrame {
  let message: unknown
  try {
    message = JSON.parse(text)
  } catch {
    return { kind: 'malformed', reason: 'not JSON' }
  }
  if (!isObject(message)) return { kind: 'malformed', reason: 'not an object' }
  if (message.type === 'error') {
    const error = message.error
    if (!isObject(error) || typeof error.code !== 'string') return { kind: 'malformed', reason: 'error without a code' }
    return { kind: 'error', code: error.code, message: String(error.message ?? '') }
  }
  if (message.type === 'refresh_required' || message.type === 'refreshed') {
    return { kind: message.type, expiresAt: expiresAt(message.data) }
  }
  if (message.type !== 'stream') return { kind: 'malformed', reason: `unknown type ${String(message.type)}` }
  const event = message.event
  if (typeof message.streamName !== 'string' || typeof message.groupId !== 'string' || !isObject(event) ||
      typeof event.type !== 'string') {
    return { kind: 'malformed', reason: 'stream frame without streamName, groupId or event' }
  }
  const custom = event.type === 'event' && isObject(event.event) ? event.event : null
  return {
    kind: 'stream',
    frame: {
      streamName: message.streamName,
      groupId: message.groupId,
      id: typeof message.id === 'string' ? message.id : null,
      timestamp: typeof message.timestamp === 'number' ? message.timestamp : 0,
      type: event.type,
      data: custom ? custom.data : event.data,
      eventType: custom && typeof custom.type === 'string' ? custom.type : null,
      epoch: typeof message.epoch === 'string' ? message.epoch : null,
      offset: typeof message.offset === 'number' ? message.offset : null,
      replayed: typeof event.replayed === 'number' ? event.replayed : null,
    },
  }
}

export function framePosition(frame: StreamFrame): Position | null {
  return frame.epoch !== null && frame.offset !== null ? { epoch: frame.epoch, offset: frame.offset } : null
}

export function isStateFrame(frame: StreamFrame): boolean {
  return frame.type === 'create' || frame.type === 'update' || frame.type === 'delete'
}

/** The code of a refused join's custom `error` event, else null. */
export function refusalCode(frame: StreamFrame): string | null {
  if (frame.type !== 'event' || frame.eventType !== 'error' || !isObject(frame.data)) return null
  const code = frame.data.code
  return typeof code === 'string' && REFUSAL_CODES.has(code) ? code : null
}

/** Motia's room names: an item's frames reach its item subscriptions and its group's. */
export function roomName(streamName: string, groupId: string, id?: string | null): string {
  return id ? `${streamName}:group:${groupId}:item:${id}` : `${streamName}:group:${groupId}`
}

/** Where a frame goes: its own room, and its group's too for an item's events (not a join's answers). */
export function frameRooms(frame: StreamFrame): string[] {
  const own = roomName(frame.streamName, frame.groupId, frame.id)
  if (frame.id && frame.type !== 'sync' && frame.type !== 'resumed' && frame.type !== 'unauthorized') {
    return [own, roomName(frame.streamName, frame.groupId)]
  }
  return [own]
}

export type JoinMessage = { streamName: string; groupId: string; id?: string; subscriptionId: string }

export type JoinOptions = { since?: Position | null; presence?: boolean; presenceData?: unknown }

export function joinMessage(sub: JoinMessage, options: JoinOptions = {}): string {
  const data: Record<string, unknown> = { ...sub }
  if (options.since) data.since = formatPosition(options.since)
  if (options.presence && !sub.id) {
    data.presence = true
    if (options.presenceData !== undefined) data.presenceData = options.presenceData
  }
  return JSON.stringify({ type: 'join', data })
}

export function leaveMessage(sub: JoinMessage): string {
  return JSON.stringify({ type: 'leave', data: sub })
}

export function refreshMessage(token: string): string {
  return JSON.stringify({ type: 'refresh', data: { token } })
}

export type Backoff = { initial: number; max: number; jitter: number }

export const DEFAULT_BACKOFF: Backoff = { initial: 500, max: 30_000, jitter: 0.2 }

/** Milliseconds before reconnect attempt `attempt` (0-based): `initial × 2^attempt`, capped at
 * `max`, spread by ±`jitter` (a fraction) so clients do not reconnect in step (as the Python client). */
export function backoffDelay(attempt: number, backoff: Backoff = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const base = Math.min(backoff.max, backoff.initial * 2 ** Math.min(attempt, 62))
  const spread = backoff.jitter ? 1 + (random() * 2 - 1) * backoff.jitter : 1
  return Math.max(0, base * spread)
}

// -- the connection's states ------------------------------------------------------------------

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'resyncing' | 'refused' | 'closed'

/** What happens to a connection: the inputs of `nextState`. */
export type ConnectionInput =
  | 'connect'    // an attempt starts (first, or after a backoff)
  | 'opened'     // the transport is open and nothing waits for an answer
  | 'rejoining'  // the transport is open and re-joins after a reconnect (or a refresh) wait for answers
  | 'answered'   // every pending re-join is answered (replayed, or synced)
  | 'dropped'    // the transport went away; a reconnect follows
  | 'refused'    // the server refused the handshake (401/403, seen with the HTTP probe)
  | 'close'      // the app closed the stream

/**
 * The table (h11's `_state.py` is the model): a missing entry is an input the state ignores.
 * `resyncing` is "connected, catching up": the app may show its state as stale until `open`.
 */
export const TRANSITIONS: Record<ConnectionState, Partial<Record<ConnectionInput, ConnectionState>>> = {
  idle: { connect: 'connecting', close: 'closed' },
  connecting: { opened: 'open', rejoining: 'resyncing', dropped: 'connecting', refused: 'refused', close: 'closed' },
  open: { rejoining: 'resyncing', dropped: 'connecting', close: 'closed' },
  resyncing: { answered: 'open', dropped: 'connecting', close: 'closed' },
  refused: { connect: 'connecting', close: 'closed' },
  closed: {},
}

export function nextState(state: ConnectionState, input: ConnectionInput): ConnectionState {
  return TRANSITIONS[state][input] ?? state
}
