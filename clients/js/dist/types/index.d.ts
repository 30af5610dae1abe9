/**
 * The runtime's browser stream client: `import { Stream } from '/_client/stream.js'` where a page
 * imported `@motiadev/stream-client-browser` (docs/client-js.md).
 */
export { Stream, PROBE_PATH } from './stream.js';
export type { BrowserStreamOptions, StreamOptions, TokenSource, Transport, RefusedDetail, ConnectingDetail, GroupOptions } from './stream.js';
export { StreamSubscription, StreamGroupSubscription, StreamItemSubscription } from './subscription.js';
export type { Listener, CustomEventListener, PresenceEntry, Refusal } from './subscription.js';
export type { ConnectionState, Position } from './protocol.js';
