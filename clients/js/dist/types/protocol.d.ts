/**
 * The wire protocol as pure code: frames in, messages out, rooms, backoff, and the
 * connection's state table. No I/O here (the drivers are websocket.ts and sse.ts).
 *
 * The frames are those of docs/protocol.md: Motia's envelope plus this runtime's
 * extensions (epoch/offset, `resumed`, presence, token refresh); Motia's clients
 * ignore the extensions, and so does this one for anything it does not know.
 */
export type Position = {
    epoch: string;
    offset: number;
};
/** Join-answer error codes of a refused join, in the join's envelope. */
export declare const REFUSAL_CODES: Set<string>;
/** Presence event types (WIRE_CONTRACT): not part of the offset log, never merged into state. */
export declare const PRESENCE_TYPES: Set<string>;
export interface StreamFrame {
    streamName: string;
    groupId: string;
    id: string | null;
    timestamp: number;
    /** The event type: sync, create, update, delete, event, unauthorized, resumed, presence... */
    type: string;
    /** sync/create/update/delete: the value; event: the custom event's data; presence: the list or entry. */
    data: unknown;
    /** For `event`: the custom event's own type. */
    eventType: string | null;
    epoch: string | null;
    offset: number | null;
    replayed: number | null;
}
export type ServerFrame = {
    kind: 'stream';
    frame: StreamFrame;
} | {
    kind: 'error';
    code: string;
    message: string;
} | {
    kind: 'refresh_required';
    expiresAt: number | null;
} | {
    kind: 'refreshed';
    expiresAt: number | null;
} | {
    kind: 'malformed';
    reason: string;
};
export declare function formatPosition(position: Position): string;
/** `"<epoch>:<offset>"` (the epoch may itself hold colons); null when it does not parse. */
export declare function parsePosition(token: string | null | undefined): Position | null;
/** One server text frame, parsed; anything unreadable is named (`malformed`), never thrown. */
export declare function parseFrame(text: string): ServerFrame;
export declare function framePosition(frame: StreamFrame): Position | null;
export declare function isStateFrame(frame: StreamFrame): boolean;
/** The code of a refused join's custom `error` event, else null. */
export declare function refusalCode(frame: StreamFrame): string | null;
/** Motia's room names: an item's frames reach its item subscriptions and its group's. */
export declare function roomName(streamName: string, groupId: string, id?: string | null): string;
/** Where a frame goes: its own room, and its group's too for an item's events (not a join's answers). */
export declare function frameRooms(frame: StreamFrame): string[];
export type JoinMessage = {
    streamName: string;
    groupId: string;
    id?: string;
    subscriptionId: string;
};
export type JoinOptions = {
    since?: Position | null;
    presence?: boolean;
    presenceData?: unknown;
};
export declare function joinMessage(sub: JoinMessage, options?: JoinOptions): string;
export declare function leaveMessage(sub: JoinMessage): string;
export declare function refreshMessage(token: string): string;
export type Backoff = {
    initial: number;
    max: number;
    jitter: number;
};
export declare const DEFAULT_BACKOFF: Backoff;
/** Milliseconds before reconnect attempt `attempt` (0-based): `initial × 2^attempt`, capped at
 * `max`, spread by ±`jitter` (a fraction) so clients do not reconnect in step (as the Python client). */
export declare function backoffDelay(attempt: number, backoff?: Backoff, random?: () => number): number;
export type ConnectionState = 'idle' | 'connecting' | 'open' | 'resyncing' | 'refused' | 'closed';
/** What happens to a connection: the inputs of `nextState`. */
export type ConnectionInput = 'connect' | 'opened' | 'rejoining' | 'answered' | 'dropped' | 'refused' | 'close';
/**
 * The table (h11's `_state.py` is the model): a missing entry is an input the state ignores.
 * `resyncing` is "connected, catching up": the app may show its state as stale until `open`.
 */
export declare const TRANSITIONS: Record<ConnectionState, Partial<Record<ConnectionInput, ConnectionState>>>;
export declare function nextState(state: ConnectionState, input: ConnectionInput): ConnectionState;
