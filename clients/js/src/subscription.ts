/**
 * Subscriptions: one group's or item's state, its listeners, and how frames change it.
 *
 * The public surface is Motia's (`@motiadev/stream-client` 0.17: `sub`, `getState`,
 * `addChangeListener`, `removeChangeListener`, `onEvent`, `offEvent`, `onClose`,
 * `close`), plus `onChange`, `onResumed`, `onResync`, `onRefused`, `onPresence`.
 * A subscription does no I/O: its `Stream` feeds it frames in arrival order and
 * tells it when a join is sent or the transport went away. A listener that throws
 * is reported on the console and never breaks the stream.
 */

import { GroupState, isDuplicate, ItemState, type MergeState, ReplayBuffer } from './merge.js'
import { framePosition, isStateFrame, type JoinMessage, type Position, type StreamFrame } from './protocol.js'

export type Listener<T> = (state: T) => void
export type CustomEventListener = (event: any) => void // eslint-disable-line @typescript-eslint/no-explicit-any

export type PresenceEntry = { key: string; count: number; data?: unknown }
export type Refusal = { code: string; message: string; data: unknown }

/** Frames kept while a resume is pending: past this the replay is not trusted and a sync is asked for. */
export const REPLAY_LIMIT = 10_000

function call(listener: (...args: any[]) => void, ...args: unknown[]): void { // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    listener(...args)
  } catch (error) {
    console.error('stream client listener failed', error)
  }
}

/** What a subscription asks of its stream (implemented by `Stream`). */
export interface SubscriptionHost {
  rejoin(subscription: AnySubscription, fresh: boolean): void
  leave(subscription: AnySubscription): void
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnySubscription = StreamSubscription<any>

export abstract class StreamSubscription<TData = unknown> {
  /** Motia's join data: streamName, groupId, id (items), subscriptionId. */
  readonly sub: JoinMessage
  /** Ask for presence on every join (groups only; WIRE_CONTRACT.md). */
  readonly presence: boolean
  readonly presenceData: unknown
  /** Why the server refused this subscription, once it did (it is then closed). */
  refusal: Refusal | null = null
  /** How many times a sync replaced state this subscription already had (a gap a replay could not cover). */
  resyncs = 0
  /** How many reconnects were covered by a replay (`resumed`), with no sync. */
  resumes = 0

  protected abstract readonly state: MergeState<TData>
  private changeListeners = new Set<Listener<TData>>()
  private eventListeners = new Map<string, CustomEventListener[]>()
  private closeListeners = new Set<() => void>()
  private resumedListeners = new Set<(replayed: number) => void>()
  private resyncListeners = new Set<Listener<TData>>()
  private refusedListeners = new Set<(refusal: Refusal) => void>()
  private presenceListeners = new Set<(entries: PresenceEntry[]) => void>()
  private presenceEntries = new Map<string, PresenceEntry>()
  private position: Position | null = null
  private synced = false
  private awaiting = false
  private since: Position | null = null
  private replay = new ReplayBuffer(REPLAY_LIMIT)
  private finished = false
  private host: SubscriptionHost | null = null

  constructor(sub: JoinMessage, options: { presence?: boolean; presenceData?: unknown } = {}) {
    this.sub = sub
    this.presence = Boolean(options.presence) && !sub.id
    this.presenceData = options.presenceData
  }

  // -- Motia's surface ----------------------------------------------------------------------

  /** The current state: the group's items (sorted by its sort key), or the item or null. */
  getState(): TData {
    return this.state.view()
  }

  /** `listener(state)` after every change of the state. */
  addChangeListener(listener: Listener<TData>): void {
    this.changeListeners.add(listener)
  }

  removeChangeListener(listener: Listener<TData>): void {
    this.changeListeners.delete(listener)
  }

  /** `listener(data)` for each custom event of `type`; a refused join reaches `onEvent('error')`, as in Motia. */
  onEvent(type: string, listener: CustomEventListener): void {
    this.eventListeners.set(type, [...(this.eventListeners.get(type) ?? []), listener])
  }

  offEvent(type: string, listener: CustomEventListener): void {
    this.eventListeners.set(type, (this.eventListeners.get(type) ?? []).filter((l) => l !== listener))
  }

  onClose(listener: () => void): void {
    this.closeListeners.add(listener)
  }

  /** Leave: the server forgets the subscription; no listener is called after this. */
  close(): void {
    if (this.finished) return
    this.finished = true
    const host = this.host
    this.host = null
    host?.leave(this)
    this.closeListeners.forEach((listener) => call(listener))
    this.closeListeners.clear()
  }

  // -- extras -------------------------------------------------------------------------------

  /** `addChangeListener` that returns its own removal. */
  onChange(listener: Listener<TData>): () => void {
    this.addChangeListener(listener)
    return () => this.removeChangeListener(listener)
  }

  /** `listener(replayed)` when a reconnect was covered by a replay: nothing was missed, no sync. */
  onResumed(listener: (replayed: number) => void): () => void {
    this.resumedListeners.add(listener)
    return () => this.resumedListeners.delete(listener)
  }

  /** `listener(state)` when a sync replaced state this subscription had: events may have been missed. */
  onResync(listener: Listener<TData>): () => void {
    this.resyncListeners.add(listener)
    return () => this.resyncListeners.delete(listener)
  }

  /** `listener({code, message})` when the server refuses this subscription (it is then closed). */
  onRefused(listener: (refusal: Refusal) => void): () => void {
    this.refusedListeners.add(listener)
    return () => this.refusedListeners.delete(listener)
  }

  /** `listener(entries)` with the whole presence list (sorted by key) whenever it changes. */
  onPresence(listener: (entries: PresenceEntry[]) => void): () => void {
    this.presenceListeners.add(listener)
    return () => this.presenceListeners.delete(listener)
  }

  getPresence(): PresenceEntry[] {
    return [...this.presenceEntries.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
  }

  /** (epoch, offset) of the last state applied: where a reconnect resumes from. */
  get lastPosition(): Position | null {
    return this.position
  }

  get closed(): boolean {
    return this.finished
  }

  /** True while a (re)join is unanswered. */
  get pending(): boolean {
    return this.awaiting
  }

  // -- fed by the stream --------------------------------------------------------------------

  /** @internal */
  attach(host: SubscriptionHost): void {
    this.host = host
  }

  /** @internal A join is being sent: its `since` (null for a first join, or `fresh`). */
  beginJoin(fresh = false): Position | null {
    this.awaiting = true
    this.since = this.synced && !fresh ? this.position : null
    this.replay.clear()
    return this.since
  }

  /** @internal The transport went away: whatever was pending is void. */
  disconnected(): void {
    this.awaiting = false
    this.since = null
    this.replay.clear()
  }

  /** @internal A frame routed here that answers no join of this subscription. */
  frame(frame: StreamFrame): void {
    if (this.finished) return
    if (frame.type === 'presence' || frame.type === 'presence_join' || frame.type === 'presence_leave') {
      if (!frame.id) this.presenceFrame(frame)
      return
    }
    if (this.awaiting) {
      if (isStateFrame(frame)) {
        if (this.since !== null) this.replay.add(frame) // ours or a sibling's replay: sorted out on `resumed`
      } else if (frame.type === 'event' && this.synced) {
        this.customEvent(frame, false) // live, so newer than the replay still to come
      }
      return
    }
    if (!this.synced) return
    if (isStateFrame(frame)) this.stateFrame(frame)
    else if (frame.type === 'event') this.customEvent(frame, true)
    // other types (newer protocol versions) are ignored, as Motia's clients do
  }

  /** @internal The sync answering our join: the first one, or a snapshot instead of a replay. */
  answerSync(frame: StreamFrame): void {
    if (this.finished) return
    this.awaiting = false
    this.replay.clear()
    const resynced = this.synced
    this.state.sync(frame.data, frame.timestamp, true)
    this.position = framePosition(frame)
    this.synced = true
    this.emitSync(resynced)
  }

  /** @internal The `resumed` marker answering our join: apply what was replayed, in offset order. */
  answerResumed(frame: StreamFrame): void {
    if (this.finished) return
    const since = this.since
    this.awaiting = false
    if (this.replay.overflowed || since === null) {
      this.replay.clear()
      this.host?.rejoin(this, true) // cannot trust the buffer: ask for a sync
      return
    }
    for (const replayed of this.replay.drain(since)) {
      this.stateFrame(replayed)
      if (this.finished) return
    }
    const position = framePosition(frame)
    if (position && (!this.position || position.epoch !== this.position.epoch || position.offset > this.position.offset)) {
      this.position = position
    }
    this.resumes += 1
    this.resumedListeners.forEach((listener) => call(listener, frame.replayed ?? 0))
  }

  /** @internal A sync in our room that is not our join's answer: a sibling's answer
   * (`solicited`) or the server's resync after it dropped this connection's backlog. */
  otherSync(frame: StreamFrame, solicited: boolean): void {
    if (this.finished || !this.synced || this.awaiting) return
    const position = framePosition(frame)
    if (this.state.equals(frame.data) && (solicited || samePosition(position, this.position))) {
      if (position && (!this.position || position.epoch !== this.position.epoch || position.offset > this.position.offset)) {
        this.position = position
      }
      return
    }
    if (!this.state.sync(frame.data, frame.timestamp)) return // Motia: a sync older than the newest change
    this.position = position
    this.emitSync(true)
  }

  /** @internal The server refused this subscription (`unauthorized` + the error event). */
  refuse(code: string, message: string, data: unknown): void {
    if (this.finished) return
    this.refusal = { code, message, data }
    ;(this.eventListeners.get('error') ?? []).forEach((listener) => call(listener, data))
    this.refusedListeners.forEach((listener) => call(listener, this.refusal))
    this.close()
  }

  /** @internal Presence was asked for: what the server sends after the join's answer. */
  presenceFrame(frame: StreamFrame): void {
    if (frame.type === 'presence') {
      const entries = Array.isArray(frame.data) ? (frame.data as PresenceEntry[]) : []
      this.presenceEntries = new Map(entries.filter(isEntry).map((entry) => [entry.key, entry]))
    } else if (isEntry(frame.data)) {
      if (frame.type === 'presence_leave' || frame.data.count <= 0) this.presenceEntries.delete(frame.data.key)
      else this.presenceEntries.set(frame.data.key, frame.data)
    } else {
      return
    }
    const entries = this.getPresence()
    this.presenceListeners.forEach((listener) => call(listener, entries))
  }

  // -- own ---------------------------------------------------------------------------------------

  private stateFrame(frame: StreamFrame): void {
    if (isDuplicate(this.position, frame)) return
    if (!this.state.apply(frame.type, frame.id, frame.data, frame.timestamp)) return
    this.position = framePosition(frame) ?? this.position
    this.emitChange()
  }

  protected acceptEvent(_timestamp: number): boolean {
    return true
  }

  private customEvent(frame: StreamFrame, checkTime: boolean): void {
    if (checkTime && !this.acceptEvent(frame.timestamp)) return
    ;(this.eventListeners.get(frame.eventType ?? '') ?? []).forEach((listener) => call(listener, frame.data))
  }

  private emitSync(resynced: boolean): void {
    this.emitChange()
    if (resynced) {
      this.resyncs += 1
      const state = this.state.view()
      this.resyncListeners.forEach((listener) => call(listener, state))
    }
  }

  private emitChange(): void {
    const state = this.state.view()
    this.changeListeners.forEach((listener) => call(listener, state))
  }
}

function isEntry(value: unknown): value is PresenceEntry {
  return value !== null && typeof value === 'object' && typeof (value as PresenceEntry).key === 'string' &&
    typeof (value as PresenceEntry).count === 'number'
}

function samePosition(a: Position | null, b: Position | null): boolean {
  return a === b || (a !== null && b !== null && a.epoch === b.epoch && a.offset === b.offset)
}

/** A whole group: `getState()` is its items, keyed by `id`, in insertion order or sorted by `sortKey`. */
export class StreamGroupSubscription<TData = unknown> extends StreamSubscription<TData[]> {
  protected readonly state: GroupState<TData>

  constructor(sub: JoinMessage, sortKey?: string | null, options: { presence?: boolean; presenceData?: unknown } = {}) {
    super(sub, options)
    this.state = new GroupState<TData>(sortKey)
  }
}

/** One item: `getState()` is the item, or null while it does not exist. */
export class StreamItemSubscription<TData = unknown> extends StreamSubscription<TData | null> {
  protected readonly state: ItemState<TData>

  constructor(sub: JoinMessage) {
    super(sub)
    this.state = new ItemState<TData>()
  }

  protected acceptEvent(timestamp: number): boolean {
    return this.state.acceptEvent(timestamp)
  }
}
