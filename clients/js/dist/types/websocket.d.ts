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
import type { AnySubscription } from './subscription.js';
export type WebSocketLike = {
    readyState: number;
    send(data: string): void;
    close(code?: number, reason?: string): void;
    addEventListener(type: string, listener: (event: any) => void): void;
};
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;
/** What the driver tells its stream. */
export interface DriverHost {
    subscriptions(): Iterable<AnySubscription>;
    /** The live subscriptions of one room (see `roomName`). */
    room(name: string): AnySubscription[];
    transportOpened(rejoining: boolean): void;
    transportAnswered(): void;
    transportDropped(opened: boolean, code: number): void;
    streamError(code: string, message: string): void;
    refreshRequired(expiresAt: number | null): void;
    refreshed(expiresAt: number | null): void;
    tokenExpired(subscriptions: AnySubscription[]): void;
}
type Sub = AnySubscription;
export declare class WebSocketDriver {
    private readonly ws;
    private readonly host;
    private pending;
    private refusing;
    private opened;
    private ended;
    constructor(ws: WebSocketLike, host: DriverHost);
    get isOpen(): boolean;
    /** Send a join (first or re-join) for `sub`; `fresh` asks for a sync instead of a resume. */
    join(sub: Sub, fresh?: boolean): void;
    leave(sub: Sub): void;
    refresh(token: string): void;
    close(): void;
    private onOpen;
    private onClose;
    private popPending;
    private roomSubs;
    /** A refusal of `sub`, or (a sub of null: not a join's answer) of every live subscription of `room`. */
    private refuse;
    private onMessage;
    private streamFrame;
}
export {};
