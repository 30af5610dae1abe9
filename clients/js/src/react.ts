/**
 * React bindings with the names of `@motiadev/stream-client-react` 0.17: `MotiaStreamProvider`,
 * `useMotiaStream`, `useStreamGroup`, `useStreamItem`, `useStreamEventHandler`; plus
 * `useStreamConnection` (the connection's state) and `presence` from `useStreamGroup`.
 * React is a peer dependency of this entry only; `stream.js` needs nothing.
 */

import React, { type DependencyList, useCallback, useEffect, useMemo, useRef, useState } from 'react'
import { Stream, type StreamOptions } from './stream.js'
import type { PresenceEntry, StreamSubscription } from './subscription.js'
import type { ConnectionState } from './protocol.js'

export { Stream, StreamGroupSubscription, StreamItemSubscription } from './index.js'

type ContextValue = { stream: Stream | null }

export const MotiaStreamContext = React.createContext<ContextValue>({ stream: null })

export type MotiaStreamProviderProps = React.PropsWithChildren<StreamOptions & { address: string }>

/** One `Stream` for the tree below; re-created when `address`, `protocols` or `transport` change. */
export const MotiaStreamProvider = ({ children, address, ...options }: MotiaStreamProviderProps) => {
  const [stream, setStream] = useState<Stream | null>(null)
  const optionsRef = useRef(options)
  optionsRef.current = options
  const protocolsKey = JSON.stringify(options.protocols ?? null)
  useEffect(() => {
    const instance = new Stream(address, optionsRef.current)
    setStream(instance)
    return () => instance.close()
  }, [address, protocolsKey, options.transport])
  const value = useMemo(() => ({ stream }), [stream])
  return React.createElement(MotiaStreamContext.Provider, { value }, children)
}

/** `{ stream }` of the nearest provider. */
export const useMotiaStream = (): ContextValue => {
  const context = React.useContext(MotiaStreamContext)
  if (!context) throw new Error('useMotiaStream must be used within a MotiaStreamProvider')
  return context
}

export type StreamGroupArgs<TData> = {
  streamName: string
  groupId: string
  sortKey?: keyof TData & string
  setData?: (data: TData[]) => void
  /** Ask for presence; the list is returned as `presence`. */
  presence?: boolean
  presenceData?: unknown
}

/** `{ data, event, presence }`: the group's items, its subscription (for `useStreamEventHandler`), presence. */
export const useStreamGroup = <TData = unknown>(args?: StreamGroupArgs<TData>) => {
  const { stream } = useMotiaStream()
  const [data, setData] = useState<TData[]>([])
  const [presence, setPresence] = useState<PresenceEntry[]>([])
  const [event, setEvent] = useState<StreamSubscription<TData[]> | null>(null)
  const { streamName, groupId, sortKey, setData: setDataCallback, presence: wantPresence } = args ?? {}
  const presenceData = JSON.stringify(args?.presenceData ?? null)
  useEffect(() => {
    if (!streamName || !groupId || !stream) return
    const subscription = stream.subscribeGroup<TData>(streamName, groupId, sortKey ?? null,
      { presence: wantPresence, presenceData: args?.presenceData })
    subscription.addChangeListener((items) => {
      setData(items)
      setDataCallback?.(items)
    })
    if (wantPresence) subscription.onPresence(setPresence)
    setEvent(subscription)
    return () => {
      subscription.close()
      setEvent(null)
      setData([])
      setPresence([])
    }
  }, [stream, streamName, groupId, sortKey, setDataCallback, wantPresence, presenceData])
  return { data, event, presence }
}

export type StreamItemArgs = { streamName: string; groupId: string; id?: string }

/** `{ data, event }`: the item (null when absent, undefined before its sync) and its subscription. */
export const useStreamItem = <TData = unknown>(args?: StreamItemArgs) => {
  const { stream } = useMotiaStream()
  const [data, setData] = useState<TData | null | undefined>()
  const [event, setEvent] = useState<StreamSubscription<TData | null> | null>(null)
  const { streamName, groupId, id } = args ?? {}
  const handleChange = useCallback((value: TData | null) => setData(value), [])
  useEffect(() => {
    if (!streamName || !groupId || !id || !stream) return
    const subscription = stream.subscribeItem<TData>(streamName, groupId, id)
    subscription.addChangeListener(handleChange)
    setEvent(subscription)
    return () => {
      setData(undefined)
      setEvent(null)
      subscription.close()
    }
  }, [stream, streamName, groupId, id, handleChange])
  return { data, event }
}

type EventHandlerArgs = {
  event: StreamSubscription<any> | null // eslint-disable-line @typescript-eslint/no-explicit-any
  type: string
  listener: (event: any) => void // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Call `listener` for each custom event `type` of the subscription `event`. */
export const useStreamEventHandler = ({ event, type, listener }: EventHandlerArgs, dependencies: DependencyList) => {
  useEffect(() => {
    if (!event) return
    event.onEvent(type, listener)
    return () => event.offEvent(type, listener)
  }, [event, type, ...dependencies]) // eslint-disable-line react-hooks/exhaustive-deps
}

/** The provider's connection state (`connecting`, `open`, `resyncing`, `refused`, `closed`) and its last detail. */
export const useStreamConnection = (): { state: ConnectionState; detail: unknown } => {
  const { stream } = useMotiaStream()
  const [value, setValue] = useState<{ state: ConnectionState; detail: unknown }>({
    state: stream?.state ?? 'idle', detail: null })
  useEffect(() => {
    if (!stream) return
    setValue({ state: stream.state, detail: null })
    return stream.on('state', (state, detail) => setValue({ state, detail }))
  }, [stream])
  return value
}
