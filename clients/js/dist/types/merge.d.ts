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
import type { Position, StreamFrame } from './protocol.js';
export type Item = Record<string, unknown> & {
    id?: unknown;
};
/** An item's key: its `id` (Motia's clients key on it), else the frame's item id. */
export declare function itemKey(data: unknown, fallback: string | null): unknown;
/** Motia's group order: insertion order, stably sorted by `sortKey` (`localeCompare` of the two
 * values' strings when both are truthy, else kept in place), exactly as Motia's client sorts. */
export declare function sortItems<T>(items: T[], sortKey?: string | null): T[];
/** Structural equality of JSON values (what a sync that changes nothing is compared with). */
export declare function jsonEqual(a: unknown, b: unknown): boolean;
/** A state frame at or below what was already applied, in the same epoch (a replay overlap). */
export declare function isDuplicate(position: Position | null, frame: StreamFrame): boolean;
export interface MergeState<V> {
    view(): V;
    sync(value: unknown, timestamp: number, force?: boolean): boolean;
    equals(value: unknown): boolean;
    apply(kind: string, itemId: string | null, data: unknown, timestamp: number): boolean;
    lastTimestamp: number;
}
/** A group subscription's items, keyed by id in insertion order (sorted view on demand). */
export declare class GroupState<T = unknown> implements MergeState<T[]> {
    readonly sortKey?: string | null | undefined;
    lastTimestamp: number;
    private items;
    private itemTimestamps;
    private cached;
    constructor(sortKey?: string | null | undefined);
    /** The items as an array (sorted by the sort key): a new array after each change, never mutated. */
    view(): T[];
    /** Replace the state; Motia ignores a sync older than the newest change (unless `force`). */
    sync(value: unknown, timestamp: number, force?: boolean): boolean;
    equals(value: unknown): boolean;
    /** create / update / delete; false when dropped as not newer than that item's last change. */
    apply(kind: string, itemId: string | null, data: unknown, timestamp: number): boolean;
}
/** An item subscription's value (null when absent); every frame must be newer than the last. */
export declare class ItemState<T = unknown> implements MergeState<T | null> {
    lastTimestamp: number;
    private value;
    view(): T | null;
    sync(value: unknown, timestamp: number, force?: boolean): boolean;
    equals(value: unknown): boolean;
    apply(kind: string, _itemId: string | null, data: unknown, timestamp: number): boolean;
    /** Motia's item client drops a custom event that is not newer than the last frame, too. */
    acceptEvent(timestamp: number): boolean;
}
/**
 * State frames received while a resume is pending, keyed by offset (overlaps collapse).
 * Bounded: past `limit` frames it gives up (`overflowed`) and the subscription asks for a
 * fresh sync instead of trusting a partial replay.
 */
export declare class ReplayBuffer {
    readonly limit: number;
    overflowed: boolean;
    private frames;
    constructor(limit: number);
    add(frame: StreamFrame): void;
    /** The frames after `since` in its epoch, in offset order; empties the buffer. */
    drain(since: Position): StreamFrame[];
    clear(): void;
}
