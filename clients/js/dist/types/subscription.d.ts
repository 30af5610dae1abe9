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
import { GroupState, ItemState, type MergeState } from './merge.js';
import { type JoinMessage, type Position, type StreamFrame } from './protocol.js';
export type Listener<T> = (state: T) => void;
export type CustomEventListener = (event: any) => void;
export type PresenceEntry = {
    key: string;
    count: number;
    data?: unknown;
};
export type Refusal = {
    code: string;
    message: string;
    data: unknown;
};
/** Frames kept while a resume is pending: past this the replay is not trusted and a sync is asked for. */
export declare const REPLAY_LIMIT = 10000;
/** What a subscription asks of its stream (implemented by `Stream`). */
export interface SubscriptionHost {
    rejoin(subscription: AnySubscription, fresh: boolean): void;
    leave(subscription: AnySubscription): void;
}
export type AnySubscription = StreamSubscription<any>;
export declare abstract class StreamSubscription<TData = unknown> {
    /** Motia's join data: streamName, groupId, id (items), subscriptionId. */
    readonly sub: JoinMessage;
    /** Ask for presence on every join (groups only; WIRE_CONTRACT.md). */
    readonly presence: boolean;
    readonly presenceData: unknown;
    /** Why the server refused this subscription, once it did (it is then closed). */
    refusal: Refusal | null;
    /** How many times a sync replaced state this subscription already had (a gap a replay could not cover). */
    resyncs: number;
    /** How many reconnects were covered by a replay (`resumed`), with no sync. */
    resumes: number;
    protected abstract readonly state: MergeState<TData>;
    private changeListeners;
    private eventListeners;
    private closeListeners;
    private resumedListeners;
    private resyncListeners;
    private refusedListeners;
    private presenceListeners;
    private presenceEntries;
    private position;
    private synced;
    private awaiting;
    private since;
    private replay;
    private finished;
    private host;
    constructor(sub: JoinMessage, options?: {
        presence?: boolean;
        presenceData?: unknown;
    });
    /** The current state: the group's items (sorted by its sort key), or the item or null. */
    getState(): TData;
    /** `listener(state)` after every change of the state. */
    addChangeListener(listener: Listener<TData>): void;
    removeChangeListener(listener: Listener<TData>): void;
    /** `listener(data)` for each custom event of `type`; a refused join reaches `onEvent('error')`, as in Motia. */
    onEvent(type: string, listener: CustomEventListener): void;
    offEvent(type: string, listener: CustomEventListener): void;
    onClose(listener: () => void): void;
    /** Leave: the server forgets the subscription; no listener is called after this. */
    close(): void;
    /** `addChangeListener` that returns its own removal. */
    onChange(listener: Listener<TData>): () => void;
    /** `listener(replayed)` when a reconnect was covered by a replay: nothing was missed, no sync. */
    onResumed(listener: (replayed: number) => void): () => void;
    /** `listener(state)` when a sync replaced state this subscription had: events may have been missed. */
    onResync(listener: Listener<TData>): () => void;
    /** `listener({code, message})` when the server refuses this subscription (it is then closed). */
    onRefused(listener: (refusal: Refusal) => void): () => void;
    /** `listener(entries)` with the whole presence list (sorted by key) whenever it changes. */
    onPresence(listener: (entries: PresenceEntry[]) => void): () => void;
    getPresence(): PresenceEntry[];
    /** (epoch, offset) of the last state applied: where a reconnect resumes from. */
    get lastPosition(): Position | null;
    get closed(): boolean;
    /** True while a (re)join is unanswered. */
    get pending(): boolean;
    /** @internal */
    attach(host: SubscriptionHost): void;
    /** @internal A join is being sent: its `since` (null for a first join, or `fresh`). */
    beginJoin(fresh?: boolean): Position | null;
    /** @internal The transport went away: whatever was pending is void. */
    disconnected(): void;
    /** @internal A frame routed here that answers no join of this subscription. */
    frame(frame: StreamFrame): void;
    /** @internal The sync answering our join: the first one, or a snapshot instead of a replay. */
    answerSync(frame: StreamFrame): void;
    /** @internal The `resumed` marker answering our join: apply what was replayed, in offset order. */
    answerResumed(frame: StreamFrame): void;
    /** @internal A sync in our room that is not our join's answer: a sibling's answer
     * (`solicited`) or the server's resync after it dropped this connection's backlog. */
    otherSync(frame: StreamFrame, solicited: boolean): void;
    /** @internal The server refused this subscription (`unauthorized` + the error event). */
    refuse(code: string, message: string, data: unknown): void;
    /** @internal Presence was asked for: what the server sends after the join's answer. */
    presenceFrame(frame: StreamFrame): void;
    private stateFrame;
    protected acceptEvent(_timestamp: number): boolean;
    private customEvent;
    private emitSync;
    private emitChange;
}
/** A whole group: `getState()` is its items, keyed by `id`, in insertion order or sorted by `sortKey`. */
export declare class StreamGroupSubscription<TData = unknown> extends StreamSubscription<TData[]> {
    protected readonly state: GroupState<TData>;
    constructor(sub: JoinMessage, sortKey?: string | null, options?: {
        presence?: boolean;
        presenceData?: unknown;
    });
}
/** One item: `getState()` is the item, or null while it does not exist. */
export declare class StreamItemSubscription<TData = unknown> extends StreamSubscription<TData | null> {
    protected readonly state: ItemState<TData>;
    constructor(sub: JoinMessage);
    protected acceptEvent(timestamp: number): boolean;
}
