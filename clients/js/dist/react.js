// built from clients/js/src by clients/js/build.mjs: do not edit

// src/react.ts
import React, { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Stream } from "./stream.js";
import { Stream as Stream2, StreamGroupSubscription, StreamItemSubscription } from "./stream.js";
var MotiaStreamContext = React.createContext({ stream: null });
var MotiaStreamProvider = ({ children, address, ...options }) => {
  const [stream, setStream] = useState(null);
  const optionsRef = useRef(options);
  optionsRef.current = options;
  const protocolsKey = JSON.stringify(options.protocols ?? null);
  useEffect(() => {
    const instance = new Stream(address, optionsRef.current);
    setStream(instance);
    return () => instance.close();
  }, [address, protocolsKey, options.transport]);
  const value = useMemo(() => ({ stream }), [stream]);
  return React.createElement(MotiaStreamContext.Provider, { value }, children);
};
var useMotiaStream = () => {
  const context = React.useContext(MotiaStreamContext);
  if (!context) throw new Error("useMotiaStream must be used within a MotiaStreamProvider");
  return context;
};
var useStreamGroup = (args) => {
  const { stream } = useMotiaStream();
  const [data, setData] = useState([]);
  const [presence, setPresence] = useState([]);
  const [event, setEvent] = useState(null);
  const { streamName, groupId, sortKey, setData: setDataCallback, presence: wantPresence } = args ?? {};
  const presenceData = JSON.stringify(args?.presenceData ?? null);
  useEffect(() => {
    if (!streamName || !groupId || !stream) return;
    const subscription = stream.subscribeGroup(
      streamName,
      groupId,
      sortKey ?? null,
      { presence: wantPresence, presenceData: args?.presenceData }
    );
    subscription.addChangeListener((items) => {
      setData(items);
      setDataCallback?.(items);
    });
    if (wantPresence) subscription.onPresence(setPresence);
    setEvent(subscription);
    return () => {
      subscription.close();
      setEvent(null);
      setData([]);
      setPresence([]);
    };
  }, [stream, streamName, groupId, sortKey, setDataCallback, wantPresence, presenceData]);
  return { data, event, presence };
};
var useStreamItem = (args) => {
  const { stream } = useMotiaStream();
  const [data, setData] = useState();
  const [event, setEvent] = useState(null);
  const { streamName, groupId, id } = args ?? {};
  const handleChange = useCallback((value) => setData(value), []);
  useEffect(() => {
    if (!streamName || !groupId || !id || !stream) return;
    const subscription = stream.subscribeItem(streamName, groupId, id);
    subscription.addChangeListener(handleChange);
    setEvent(subscription);
    return () => {
      setData(void 0);
      setEvent(null);
      subscription.close();
    };
  }, [stream, streamName, groupId, id, handleChange]);
  return { data, event };
};
var useStreamEventHandler = ({ event, type, listener }, dependencies) => {
  useEffect(() => {
    if (!event) return;
    event.onEvent(type, listener);
    return () => event.offEvent(type, listener);
  }, [event, type, ...dependencies]);
};
var useStreamConnection = () => {
  const { stream } = useMotiaStream();
  const [value, setValue] = useState({
    state: stream?.state ?? "idle",
    detail: null
  });
  useEffect(() => {
    if (!stream) return;
    setValue({ state: stream.state, detail: null });
    return stream.on("state", (state, detail) => setValue({ state, detail }));
  }, [stream]);
  return value;
};
export {
  MotiaStreamContext,
  MotiaStreamProvider,
  Stream2 as Stream,
  StreamGroupSubscription,
  StreamItemSubscription,
  useMotiaStream,
  useStreamConnection,
  useStreamEventHandler,
  useStreamGroup,
  useStreamItem
};
