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
import { type Backoff, type ConnectionState } from './protocol.js';
import { type EventSourceConstructor } from './sse.js';
import { type PresenceEntry, StreamGroupSubscription, StreamItemSubscription, type AnySubscription } from './subscription.js';
import { type DriverHost, type WebSocketConstructor } from './websocket.js';
export type TokenSource = string | (() => string | null | undefined | Promise<string | null | undefined>);
export type Transport = 'websocket' | 'sse' | 'auto';
export type StreamOptions = {
    /** WebSocket subprotocols, as Motia's client: `['Authorization', token]` carries a token. */
    protocols?: string | string[];
    /** The token, or a function returning it (called on each connect and on `refresh_required`). */
    token?: TokenSource;
    /** `websocket` (default), `sse`, or `auto`: WebSocket, and SSE when a socket never opens while HTTP works. */
    transport?: Transport;
    /** The server's HTTP address (SSE, and the refusal probe); default: where this module was served from. */
    httpUrl?: string;
    /** The SSE subscription prefix (`ServerSettings.sse_prefix`). */
    ssePrefix?: string;
    /** Reconnect delays in ms: `initial × 2^n` capped at `max`, ±`jitter` (a fraction). */
    backoff?: Partial<Backoff>;
    /** Keep reconnecting after a refused handshake (default: only when `token` is a function). */
    retryRefused?: boolean;
    WebSocket?: WebSocketConstructor;
    EventSource?: EventSourceConstructor;
    fetch?: typeof fetch;
    random?: () => number;
};
/** Motia's name for the options object. */
export type BrowserStreamOptions = StreamOptions;
export type RefusedDetail = {
    status: number;
    code: string;
    message: string;
};
export type ConnectingDetail = {
    attempt: number;
    delay: number;
};
type StreamEvents = {
    state: (state: ConnectionState, detail: unknown) => void;
    connecting: (detail: ConnectingDetail) => void;
    open: (detail: {
        transport: 'websocket' | 'sse';
    }) => void;
    resyncing: (detail: {
        pending: number;
    }) => void;
    refused: (detail: RefusedDetail) => void;
    closed: (detail: Record<string, never>) => void;
    error: (detail: {
        code: string;
        message: string;
    }) => void;
    refresh_required: (detail: {
        expiresAt: number | null;
    }) => void;
    refreshed: (detail: {
        expiresAt: number | null;
    }) => void;
    transport: (detail: {
        transport: 'websocket' | 'sse';
    }) => void;
};
type Sub = AnySubscription;
export declare const PROBE_PATH = "/_client/auth";
export declare class Stream implements DriverHost {
    readonly address: string;
    private readonly options;
    private readonly backoff;
    private readonly subs;
    private readonly rooms;
    private readonly listeners;
    private connectionState;
    private driver;
    private transportKind;
    private attempt;
    private timer;
    private token;
    private refreshing;
    private expired;
    private generation;
    constructor(address: string, options?: StreamOptions);
    /** Subscribe to one item: `getState()` is the item or null. */
    subscribeItem<TData = unknown>(streamName: string, groupId: string, id: string): StreamItemSubscription<TData>;
    /**
     * Subscribe to a group: `getState()` is its items, sorted by `sortKey` when given.
     * `options.presence` asks for presence (`onPresence`), with `presenceData` (<= 1 KiB JSON) as this
     * subscriber's entry; the options may also stand in the place of `sortKey`.
     */
    subscribeGroup<TData = unknown>(streamName: string, groupId: string, sortKey?: string | GroupOptions | null, options?: GroupOptions): StreamGroupSubscription<TData>;
    /** Close the connection and forget every subscription: nothing is called after this. */
    close(): void;
    /** `connecting`, `open`, `resyncing` (connected, re-joins unanswered), `refused`, `closed` (or `idle`). */
    get state(): ConnectionState;
    get transport(): 'websocket' | 'sse';
    /** Listen to a connection event (see `StreamEvents`); returns the removal. */
    on<K extends keyof StreamEvents>(event: K, listener: StreamEvents[K]): () => void;
    off<K extends keyof StreamEvents>(event: K, listener: StreamEvents[K]): void;
    /** Reconnect now (after a refusal without retries, or to skip a backoff). */
    reconnect(): void;
    subscriptions(): Iterable<Sub>;
    room(name: string): Sub[];
    transportOpened(rejoining: boolean): void;
    transportAnswered(): void;
    transportDropped(opened: boolean, _code: number): void;
    streamError(code: string, message: string): void;
    refreshRequired(expiresAt: number | null): void;
    refreshed(expiresAt: number | null): void;
    tokenExpired(subscriptions: Sub[]): void;
    private subscribe;
    private pendingCount;
    private input;
    private emit;
    private isClosed;
    private get httpUrl();
    private resolveToken;
    private restart;
    /** One connection attempt; `fresh` is a token just obtained (a refresh), else the source is asked. */
    private connect;
    /** The token travels as Motia's `Authorization` subprotocol pair when it is a valid subprotocol
     * (an HTTP token: a JWT is), else as the `authToken` query parameter (`new WebSocket` throws on
     * a subprotocol with, say, a colon or base64 padding). */
    private protocols;
    private socketUrl;
    private scheduleReconnect;
    private clearTimer;
    /** A connection that never opened: refused (the probe says 401/403), WebSocket blocked, or down. */
    private diagnose;
    /** 'ok' (HTTP admits this token), a refusal, or null (unreachable: the server is down). */
    private probe;
    private refreshToken;
}
export type GroupOptions = {
    sortKey?: string | null;
    presence?: boolean;
    presenceData?: unknown;
};
export type { PresenceEntry };
