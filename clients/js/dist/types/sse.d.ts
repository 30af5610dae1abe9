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
import { type Position } from './protocol.js';
import type { DriverHost } from './websocket.js';
import type { AnySubscription } from './subscription.js';
export type EventSourceLike = {
    readyState: number;
    close(): void;
    addEventListener(type: string, listener: (event: any) => void): void;
};
export type EventSourceConstructor = new (url: string) => EventSourceLike;
type Sub = AnySubscription;
export declare function sseUrl(httpUrl: string, prefix: string, sub: Sub, token: string | undefined, since: Position | null): string;
export declare class SseDriver {
    private readonly EventSourceImpl;
    private readonly httpUrl;
    private readonly prefix;
    private readonly token;
    private readonly host;
    private sources;
    private ended;
    private openedOnce;
    constructor(EventSourceImpl: EventSourceConstructor, httpUrl: string, prefix: string, token: string | undefined, host: DriverHost);
    get isOpen(): boolean;
    /** Open the EventSources of every subscription (the `Stream` calls it once per attempt). */
    start(): void;
    join(sub: Sub, fresh?: boolean): void;
    leave(sub: Sub): void;
    close(): void;
    /** The URL that failed, for the Stream's probe of why (a 401/403/404 before any stream data). */
    lastFailedUrl: string | null;
    private drop;
    private onData;
}
export {};
