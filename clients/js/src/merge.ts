/**
 * How a subscription's state follows the frames: Motia's merge rules, without I/O.
 *
 * The same rules as the Python client (runtime/client/merge.py; the cases in
 * tests/js/merge_cases.json run against both): state keyed by each item's
 * `id`, a group's optional sort key, frames whose timestamp is not newer than
 * that item's last change dropped. Two differences from Motia's
 * `@motiadev/stream-client`, which a conforming server never triggers but which
 * make the state converge whatever arrives: a group's `create` of an id already
 * present replaces it and an `update` of an absent id appends it (Motia ignores
 * both), and the timestamp check covers `create` and `delete` too.
 *
 * On top of the timestamps this runtime's frames carry `epoch`/`offset`:
 * `isDuplicate` drops a state frame at or below what was applied, and
 * `ReplayBuffer` holds the frames that arrive while a resume is pending.
 */

import type { Position, StreamFrame } from './protocol.js'

export type Item = Record<string, unknown> & { id?: unknown }

/** An item's key: its `id` (Motia's clients key on it), else the frame's item id. */
export function itemKey(data: unknown, fallback: string | null): unknown {
  if (data !== null && typeof data === 'object' && 'id' in (data as object)) return (data as Item).id
  return fallback
}

/** Motia's group order: insertion order, stably sorted by `sortKey` (`localeCompare` of the two
 * values' strings when both are truthy, else kept in place), exactly as Motia's client sorts. */
export function sortItems<T>(items: T[], sortKey?: string | null): T[] {
  if (!sortKey) return items
  return [...items].sort((a, b) => {
    const av = a !== null && typeof a === 'object' ? (a as Item)[sortKey] : undefined
    const bv = b !== null && typeof b === 'object' ? (b as Item)[sortKey] : undefined
    return av && bv ? String(av).localeCompare(String(bv)) : 0
  })
}

/** Structural equality of JSON values (what a sync that changes nothing is compared with). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) {
    const bb = b as unknown[]
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]))
  }
  const ak = Object.keys(a as object)
  const bk = Object.keys(b as object)
  return ak.length === bk.length && ak.every((k) => jsonEqual((a as Item)[k], (b as Item)[k]))
}

/** A state frame at or below what was already applied, in the same epoch (a replay overlap). */
export function isDuplicate(position: Position | null, frame: StreamFrame): boolean {
  return position !== null && frame.epoch === position.epoch && frame.offset !== null && frame.offset <= position.offset
}

export interface MergeState<V> {
  view(): V
  sync(value: unknown, timestamp: number, force?: boolean): boolean
  equals(value: unknown): boolean
  apply(kind: string, itemId: string | null, data: unknown, timestamp: number): boolean
  lastTimestamp: number
}

/** A group subscription's items, keyed by id in insertion order (sorted view on demand). */
export class GroupState<T = unknown> implements MergeState<T[]> {
  lastTimestamp = 0
  private items = new Map<unknown, T>()
  private itemTimestamps = new Map<unknown, number>()
  private cached: T[] | null = []

  constructor(readonly sortKey?: string | null) {}

  /** The items as an array (sorted by the sort key): a new array after each change, never mutated. */
  view(): T[] {
    if (this.cached === null) this.cached = sortItems([...this.items.values()], this.sortKey)
    return this.cached
  }

  /** Replace the state; Motia ignores a sync older than the newest change (unless `force`). */
  sync(value: unknown, timestamp: number, force = false): boolean {
    if (!force && timestamp < this.lastTimestamp) return false
    const values = Array.isArray(value) ? (value as T[]) : []
    this.items = new Map(values.map((item, index) => [itemKey(item, String(index)), item]))
    this.itemTimestamps = new Map()
    this.lastTimestamp = timestamp
    this.cached = null
    return true
  }

  equals(value: unknown): boolean {
    return jsonEqual([...this.items.values()], Array.isArray(value) ? value : [])
  }

  /** create / update / delete; false when dropped as not newer than that item's last change. */
  apply(kind: string, itemId: string | null, data: unknown, timestamp: number): boolean {
    const key = itemKey(data, itemId)
    const seen = this.itemTimestamps.get(key)
    if (seen !== undefined && seen >= timestamp) return false
    this.itemTimestamps.set(key, timestamp)
    this.lastTimestamp = Math.max(this.lastTimestamp, timestamp)
    if (kind === 'delete') this.items.delete(key)
    else this.items.set(key, data as T)
    this.cached = null
    return true
  }
}

/** An item subscription's value (null when absent); every frame must be newer than the last. */
export class ItemState<T = unknown> implements MergeState<T | null> {
  lastTimestamp = 0
  private value: T | null = null

  view(): T | null {
    return this.value
  }

  sync(value: unknown, timestamp: number, force = false): boolean {
    if (!force && timestamp <= this.lastTimestamp) return false
    this.value = (value ?? null) as T | null
    this.lastTimestamp = timestamp
    return true
  }

  equals(value: unknown): boolean {
    return jsonEqual(this.value, value ?? null)
  }

  apply(kind: string, _itemId: string | null, data: unknown, timestamp: number): boolean {
    if (timestamp <= this.lastTimestamp) return false
    this.lastTimestamp = timestamp
    this.value = kind === 'delete' ? null : (data as T)
    return true
  }

  /** Motia's item client drops a custom event that is not newer than the last frame, too. */
  acceptEvent(timestamp: number): boolean {
    if (timestamp <= this.lastTimestamp) return false
    this.lastTimestamp = timestamp
    return true
  }
}

/**
 * State frames received while a resume is pending, keyed by offset (overlaps collapse).
 * Bounded: past `limit` frames it gives up (`overflowed`) and the subscription asks for a
 * fresh sync instead of trusting a partial replay.
 */
export class ReplayBuffer {
  overflowed = false
  private frames = new Map<number, StreamFrame>()

  constructor(readonly limit: number) {}

  add(frame: StreamFrame): void {
    if (this.overflowed || frame.offset === null) return
    if (!this.frames.has(frame.offset) && this.frames.size >= this.limit) {
      this.overflowed = true
      this.frames.clear()
      return
    }
    this.frames.set(frame.offset, frame)
  }

  /** The frames after `since` in its epoch, in offset order; empties the buffer. */
  drain(since: Position): StreamFrame[] {
    const frames = [...this.frames.values()]
      .filter((f) => f.epoch === since.epoch && f.offset !== null && f.offset > since.offset)
      .sort((a, b) => (a.offset as number) - (b.offset as number))
    this.frames.clear()
    return frames
  }

  clear(): void {
    this.frames.clear()
    this.overflowed = false
  }
}
