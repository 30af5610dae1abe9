/**
 * React bindings with the names of `@motiadev/stream-client-react` 0.17: `MotiaStreamProvider`,
 * `useMotiaStream`, `useStreamGroup`, `useStreamItem`, `useStreamEventHandler`; plus
 * `useStreamConnection` (the connection's state) and `presence` from `useStreamGroup`.
 * React is a peer dependency of this entry only; `stream.js` needs nothing.
 */
import React, { type DependencyList } from 'react';
import { Stream, type StreamOptions } from './stream.js';
import type { PresenceEntry, StreamSubscription } from './subscription.js';
import type { ConnectionState } from './protocol.js';
export { Stream, StreamGroupSubscription, StreamItemSubscription } from './index.js';
type ContextValue = {
    stream: Stream | null;
};
export declare const MotiaStreamContext: React.Context<ContextValue>;
export type MotiaStreamProviderProps = React.PropsWithChildren<StreamOptions & {
    address: string;
}>;
/** One `Stream` for the tree below; re-created when `address`, `protocols` or `transport` change. */
export declare const MotiaStreamProvider: ({ children, address, ...options }: MotiaStreamProviderProps) => React.FunctionComponentElement<React.ProviderProps<ContextValue>>;
/** `{ stream }` of the nearest provider. */
export declare const useMotiaStream: () => ContextValue;
export type StreamGroupArgs<TData> = {
    streamName: string;
    groupId: string;
    sortKey?: keyof TData & string;
    setData?: (data: TData[]) => void;
    /** Ask for presence; the list is returned as `presence`. */
    presence?: boolean;
    presenceData?: unknown;
};
/** `{ data, event, presence }`: the group's items, its subscription (for `useStreamEventHandler`), presence. */
export declare const useStreamGroup: <TData = unknown>(args?: StreamGroupArgs<TData>) => {
    data: TData[];
    event: StreamSubscription<TData[]> | null;
    presence: PresenceEntry[];
};
export type StreamItemArgs = {
    streamName: string;
    groupId: string;
    id?: string;
};
/** `{ data, event }`: the item (null when absent, undefined before its sync) and its subscription. */
export declare const useStreamItem: <TData = unknown>(args?: StreamItemArgs) => {
    data: TData | null | undefined;
    event: StreamSubscription<TData | null> | null;
};
type EventHandlerArgs = {
    event: StreamSubscription<any> | null;
    type: string;
    listener: (event: any) => void;
};
/** Call `listener` for each custom event `type` of the subscription `event`. */
export declare const useStreamEventHandler: ({ event, type, listener }: EventHandlerArgs, dependencies: DependencyList) => void;
/** The provider's connection state (`connecting`, `open`, `resyncing`, `refused`, `closed`) and its last detail. */
export declare const useStreamConnection: () => {
    state: ConnectionState;
    detail: unknown;
};
