// The connection's state machine, backoff, resume and refusals, against a fake server socket.
import assert from 'node:assert/strict'
import { afterEach, beforeEach, mock, test } from 'node:test'
import { envelope, FakeWebSocket, fakeFetch, flush, options, Stream } from './fakes.mjs'

beforeEach(() => {
  FakeWebSocket.reset()
  mock.timers.enable({ apis: ['setTimeout'] })
})
afterEach(() => mock.timers.reset())

function record(stream) {
  const states = []
  stream.on('state', (state, detail) => states.push([state, detail]))
  return states
}

async function connected(opts = {}) {
  const stream = new Stream('ws://server', options(opts))
  const states = record(stream)
  await flush()
  return { stream, states, ws: FakeWebSocket.last }
}

test('connecting, open, then every drop reconnects with a doubling, capped, jittered delay', async () => {
  const random = mock.fn(() => 1) // the top of the jitter band: +20 %
  const stream = new Stream('ws://server', options({ random, backoff: { initial: 100, max: 1000, jitter: 0.2 } }))
  const states = record(stream)
  await flush()
  assert.equal(stream.state, 'connecting')
  const delays = []
  stream.on('connecting', (detail) => delays.push(detail.delay))
  for (let i = 0; i < 6; i++) {
    FakeWebSocket.last.drop()
    await flush()
    const before = FakeWebSocket.instances.length
    mock.timers.tick(delays.at(-1) - 1)
    await flush()
    assert.equal(FakeWebSocket.instances.length, before, 'not before its delay')
    mock.timers.tick(1)
    await flush()
    assert.equal(FakeWebSocket.instances.length, before + 1, 'a new socket at its delay')
  }
  assert.deepEqual(delays.map(Math.round), [120, 240, 480, 960, 1200, 1200]) // capped at max, then +20 %
  assert.equal(stream.state, 'connecting')
  FakeWebSocket.last.open()
  assert.equal(stream.state, 'open')
  // a connection that works restarts the backoff
  FakeWebSocket.last.drop()
  await flush()
  assert.equal(Math.round(delays.at(-1)), 120)
  stream.close()
  assert.equal(stream.state, 'closed')
  assert.deepEqual(states.at(-1), ['closed', {}])
  mock.timers.tick(10_000)
  await flush()
  assert.equal(FakeWebSocket.instances.filter((ws) => ws.readyState === 0).length, 0, 'no reconnect after close')
})

test('jitter spreads reconnects: delays of one attempt differ between clients', async () => {
  let seed = 7
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647)
  const delays = new Set()
  for (let i = 0; i < 20; i++) {
    const stream = new Stream('ws://server', options({ random, backoff: { initial: 1000, max: 30000, jitter: 0.2 } }))
    stream.on('connecting', (detail) => delays.add(detail.delay))
    await flush()
    FakeWebSocket.last.drop()
    await flush()
    stream.close()
  }
  const values = [...delays].filter((d) => d > 0)
  assert.ok(values.length >= 15, `spread: ${values}`)
  assert.ok(values.every((d) => d >= 800 && d <= 1200), `within ±20 %: ${values}`)
})

test('a reconnect resumes each subscription from its position: replay applied, no sync, state right', async () => {
  const { stream, states, ws } = await connected()
  ws.open()
  const group = stream.subscribeGroup('todos', 'inbox')
  const item = stream.subscribeItem('todos', 'inbox', 'a')
  assert.deepEqual(ws.joins().map((j) => j.data.since), [undefined, undefined])
  ws.message(envelope({ type: 'sync', data: [{ id: 'a', n: 1 }], epoch: 'e1', offset: 4 }))
  ws.message(envelope({ id: 'a', type: 'sync', data: { id: 'a', n: 1 }, epoch: 'e1', offset: 4 }))
  ws.message(envelope({ id: 'a', type: 'update', data: { id: 'a', n: 2 }, epoch: 'e1', offset: 5 }))
  assert.deepEqual(group.getState(), [{ id: 'a', n: 2 }])
  const resumed = []
  group.onResumed((n) => resumed.push(['group', n]))
  item.onResumed((n) => resumed.push(['item', n]))
  const resyncs = []
  group.onResync(() => resyncs.push('group'))

  ws.drop()
  await flush()
  assert.equal(stream.state, 'connecting')
  mock.timers.tick(500)
  await flush()
  const again = FakeWebSocket.last
  assert.notEqual(again, ws)
  again.open()
  assert.equal(stream.state, 'resyncing')
  assert.deepEqual(again.joins().map((j) => j.data.since), ['e1:5', 'e1:5'])
  // the server replays what was missed to each join (the item's frames reach the group's room too)
  again.message(envelope({ id: 'a', type: 'update', data: { id: 'a', n: 3 }, epoch: 'e1', offset: 6 }))
  again.message(envelope({ id: 'b', type: 'create', data: { id: 'b' }, epoch: 'e1', offset: 7 }))
  again.message(envelope({ type: 'resumed', replayed: 2, epoch: 'e1', offset: 7 }))
  assert.equal(stream.state, 'resyncing', 'the item has not been answered yet')
  again.message(envelope({ id: 'a', type: 'update', data: { id: 'a', n: 3 }, epoch: 'e1', offset: 6 }))
  again.message(envelope({ id: 'a', type: 'resumed', replayed: 1, epoch: 'e1', offset: 7 }))
  assert.equal(stream.state, 'open')
  assert.deepEqual(group.getState(), [{ id: 'a', n: 3 }, { id: 'b' }])
  assert.deepEqual(item.getState(), { id: 'a', n: 3 })
  assert.deepEqual(resumed, [['group', 2], ['item', 1]])
  assert.deepEqual(resyncs, [])
  assert.deepEqual(group.lastPosition, { epoch: 'e1', offset: 7 })
  assert.deepEqual(states.map(([s]) => s), ['connecting', 'open', 'connecting', 'resyncing', 'open'])
  stream.close()
})

test('a resume the history cannot cover is answered by a sync: onResync says events may be missing', async () => {
  const { stream, ws } = await connected()
  ws.open()
  const group = stream.subscribeGroup('todos', 'inbox')
  ws.message(envelope({ type: 'sync', data: [{ id: 'a' }], epoch: 'e1', offset: 4 }))
  const resyncs = []
  group.onResync((state) => resyncs.push(state))
  ws.drop()
  await flush()
  mock.timers.tick(500)
  await flush()
  FakeWebSocket.last.open()
  FakeWebSocket.last.message(envelope({ type: 'sync', data: [{ id: 'z' }], epoch: 'e2', offset: 0 }))
  assert.deepEqual(group.getState(), [{ id: 'z' }])
  assert.deepEqual(resyncs, [[{ id: 'z' }]])
  assert.equal(group.resyncs, 1)
  assert.equal(stream.state, 'open')
  stream.close()
})

test('a refused handshake is reported with the probe\'s status and code; a static token is not retried', async () => {
  const fetch = fakeFetch(401, { error: { code: 'UNAUTHORIZED', message: 'bad token' } })
  const { stream, states, ws } = await connected({ token: 'nope', httpUrl: 'http://server:3111', fetch })
  assert.deepEqual(ws.protocols, ['Authorization', 'nope'])
  const refused = []
  stream.on('refused', (detail) => refused.push(detail))
  ws.drop()
  await flush()
  assert.deepEqual(refused, [{ status: 401, code: 'UNAUTHORIZED', message: 'bad token' }])
  assert.equal(stream.state, 'refused')
  assert.equal(fetch.calls[0].url, 'http://server:3111/_client/auth')
  assert.equal(fetch.calls[0].init.headers.authorization, 'Bearer nope')
  mock.timers.tick(60_000)
  await flush()
  assert.equal(FakeWebSocket.instances.length, 1, 'no retry with the same token')
  assert.deepEqual(states.map(([s]) => s), ['connecting', 'refused'])
  stream.close()
})

test('with a token function a refusal is retried with backoff, asking for a new token each time', async () => {
  const tokens = ['t1', 't2']
  const token = mock.fn(async () => tokens.shift())
  const fetch = fakeFetch(401, { error: { code: 'UNAUTHORIZED', message: 'expired' } })
  const { stream } = await connected({ token, httpUrl: 'http://server:3111', fetch })
  assert.deepEqual(FakeWebSocket.last.protocols, ['Authorization', 't1'])
  FakeWebSocket.last.drop()
  await flush()
  assert.equal(stream.state, 'refused')
  mock.timers.tick(500)
  await flush()
  assert.equal(token.mock.callCount(), 2)
  assert.deepEqual(FakeWebSocket.last.protocols, ['Authorization', 't2'])
  FakeWebSocket.last.open()
  assert.equal(stream.state, 'open')
  stream.close()
})

test('a server that is down (the probe cannot reach it) is retried, not called refused', async () => {
  const fetch = async () => { throw new TypeError('failed to fetch') }
  const { stream } = await connected({ token: 'x', httpUrl: 'http://server:3111', fetch })
  FakeWebSocket.last.drop()
  await flush()
  assert.equal(stream.state, 'connecting')
  mock.timers.tick(500)
  await flush()
  assert.equal(FakeWebSocket.instances.length, 2)
  stream.close()
})

test('a refused join: onEvent("error") gets its data, onRefused its code, and it is not re-joined', async () => {
  const { stream, ws } = await connected()
  ws.open()
  const secret = stream.subscribeGroup('todos', 'secret')
  const open = stream.subscribeGroup('todos', 'inbox')
  const errors = []
  secret.onEvent('error', (data) => errors.push(data))
  const refusals = []
  secret.onRefused((r) => refusals.push(r.code))
  const data = { code: 'STREAM_ACCESS_DENIED', message: 'no' }
  ws.message(envelope({ group: 'secret', type: 'unauthorized' }))
  ws.message(envelope({ group: 'secret', type: 'event', event: { type: 'error', data } }))
  ws.message(envelope({ type: 'sync', data: [] }))
  assert.deepEqual(errors, [data])
  assert.deepEqual(refusals, ['STREAM_ACCESS_DENIED'])
  assert.ok(secret.closed && !open.closed)
  ws.drop()
  await flush()
  mock.timers.tick(500)
  await flush()
  FakeWebSocket.last.open()
  assert.deepEqual(FakeWebSocket.last.joins().map((j) => j.data.groupId), ['inbox'])
  stream.close()
})

test('Motia routing: an item\'s frames reach the group; a close leaves; close() ends every listener', async () => {
  const { stream, ws } = await connected()
  ws.open()
  const group = stream.subscribeGroup('todos', 'inbox')
  const item = stream.subscribeItem('todos', 'inbox', 'a')
  ws.message(envelope({ type: 'sync', data: [] }))
  ws.message(envelope({ id: 'a', type: 'sync', data: null }))
  ws.message(envelope({ id: 'a', type: 'create', data: { id: 'a' } }))
  assert.deepEqual(group.getState(), [{ id: 'a' }])
  assert.deepEqual(item.getState(), { id: 'a' })
  const closed = []
  item.onClose(() => closed.push('item'))
  item.close()
  assert.deepEqual(closed, ['item'])
  assert.deepEqual(ws.sent.at(-1), { type: 'leave', data: item.sub })
  const after = []
  group.addChangeListener((s) => after.push(s))
  stream.close()
  ws.message(envelope({ id: 'b', type: 'create', data: { id: 'b' } }))
  assert.deepEqual(after, [])
})

test('a malformed or unknown frame is ignored and the connection goes on', async () => {
  const { stream, ws } = await connected()
  ws.open()
  const group = stream.subscribeGroup('todos', 'inbox')
  ws.message('not json')
  ws.message({ type: 'what' })
  ws.message(envelope({ type: 'sync', data: [{ id: 'a' }] }))
  ws.message(envelope({ type: 'something_new', data: 1 }))
  assert.deepEqual(group.getState(), [{ id: 'a' }])
  assert.equal(stream.state, 'open')
  stream.close()
})

test('a listener that throws breaks nothing', async () => {
  const { stream, ws } = await connected()
  ws.open()
  const group = stream.subscribeGroup('todos', 'inbox')
  const seen = []
  const error = console.error
  console.error = () => {}
  try {
    group.addChangeListener(() => { throw new Error('app bug') })
    group.addChangeListener((s) => seen.push(s))
    ws.message(envelope({ type: 'sync', data: [{ id: 'a' }] }))
  } finally {
    console.error = error
  }
  assert.deepEqual(seen, [[{ id: 'a' }]])
  stream.close()
})

test('a token that is no valid subprotocol (a colon, base64 padding) goes in the authToken parameter', async () => {
  const { stream } = await connected({ token: 'user:ann=' })
  assert.equal(FakeWebSocket.last.protocols, undefined)
  assert.equal(new URL(FakeWebSocket.last.url).searchParams.get('authToken'), 'user:ann=')
  stream.close()
  const jwt = await connected({ token: 'eyJhbGciOi.eyJzdWIi.c2ln-_' })
  assert.deepEqual(FakeWebSocket.last.protocols, ['Authorization', 'eyJhbGciOi.eyJzdWIi.c2ln-_'])
  assert.equal(FakeWebSocket.last.url, 'ws://server')
  jwt.stream.close()
})
