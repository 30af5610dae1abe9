// Token refresh, presence and the SSE transport against fakes of the server (WIRE_CONTRACT.md).
import assert from 'node:assert/strict'
import { afterEach, beforeEach, mock, test } from 'node:test'
import { envelope, FakeEventSource, FakeWebSocket, fakeFetch, flush, options, Stream } from './fakes.mjs'

beforeEach(() => {
  FakeWebSocket.reset()
  FakeEventSource.reset()
  mock.timers.enable({ apis: ['setTimeout'] })
})
afterEach(() => mock.timers.reset())

test('refresh_required: the token function is called and its token sent as a refresh frame', async () => {
  let n = 0
  const token = mock.fn(async () => `t${++n}`)
  const stream = new Stream('ws://server', options({ token }))
  const events = []
  stream.on('refresh_required', (d) => events.push(['required', d.expiresAt]))
  stream.on('refreshed', (d) => events.push(['refreshed', d.expiresAt]))
  await flush()
  const ws = FakeWebSocket.last
  assert.deepEqual(ws.protocols, ['Authorization', 't1'])
  ws.open()
  ws.message({ type: 'refresh_required', data: { expiresAt: 1000.5 } })
  await flush()
  assert.deepEqual(ws.sent.at(-1), { type: 'refresh', data: { token: 't2' } })
  ws.message({ type: 'refreshed', data: { expiresAt: 2000 } })
  assert.deepEqual(events, [['required', 1000.5], ['refreshed', 2000]])
  assert.equal(FakeWebSocket.instances.length, 1, 'the same connection')
  stream.close()
})

test('TOKEN_EXPIRED: refresh, then re-join with since (a resume, no sync); REFRESH_FAILED ends them', async () => {
  let n = 0
  const stream = new Stream('ws://server', options({ token: async () => `t${++n}` }))
  await flush()
  const ws = FakeWebSocket.last
  ws.open()
  const group = stream.subscribeGroup('todos', 'inbox')
  ws.message(envelope({ type: 'sync', data: [{ id: 'a' }], epoch: 'e', offset: 3 }))
  const expired = { code: 'TOKEN_EXPIRED', message: 'the token expired' }
  ws.message(envelope({ type: 'unauthorized' }))
  ws.message(envelope({ type: 'event', event: { type: 'error', data: expired } }))
  await flush()
  assert.ok(!group.closed, 'kept while the refresh is tried')
  assert.deepEqual(ws.sent.at(-1), { type: 'refresh', data: { token: 't2' } })
  ws.message({ type: 'refreshed', data: { expiresAt: null } })
  assert.equal(ws.sent.at(-1).type, 'join')
  assert.equal(ws.sent.at(-1).data.since, 'e:3')
  assert.equal(stream.state, 'resyncing')
  ws.message(envelope({ type: 'resumed', replayed: 0, epoch: 'e', offset: 3 }))
  assert.equal(stream.state, 'open')
  assert.deepEqual(group.getState(), [{ id: 'a' }])
  // the next expiry, and the refresh is refused: the subscription ends with TOKEN_EXPIRED
  const errors = []
  group.onEvent('error', (data) => errors.push(data.code))
  ws.message(envelope({ type: 'unauthorized' }))
  ws.message(envelope({ type: 'event', event: { type: 'error', data: expired } }))
  await flush()
  ws.message({ type: 'error', error: { code: 'REFRESH_FAILED', message: 'no' } })
  assert.ok(group.closed)
  assert.deepEqual(errors, ['TOKEN_EXPIRED'])
  stream.close()
})

test('presence: asked for in the join, the list kept from presence, presence_join and presence_leave', async () => {
  const stream = new Stream('ws://server', options())
  await flush()
  const ws = FakeWebSocket.last
  ws.open()
  const room = stream.subscribeGroup('chat', 'lobby', { presence: true, presenceData: { name: 'Ann' } })
  const plain = stream.subscribeGroup('chat', 'other', 'id')
  assert.deepEqual(ws.joins()[0].data, { streamName: 'chat', groupId: 'lobby', subscriptionId: room.sub.subscriptionId,
    presence: true, presenceData: { name: 'Ann' } })
  assert.equal(ws.joins()[1].data.presence, undefined)
  const lists = []
  room.onPresence((entries) => lists.push(entries.map((e) => `${e.key}:${e.count}`)))
  ws.message(envelope({ stream: 'chat', group: 'lobby', type: 'sync', data: [] }))
  ws.message(envelope({ stream: 'chat', group: 'lobby', type: 'presence',
    data: [{ key: 'u1', count: 2, data: { name: 'Ann' } }, { key: 'u0', count: 1, data: {} }] }))
  ws.message(envelope({ stream: 'chat', group: 'lobby', type: 'presence_join', data: { key: 'u2', count: 1, data: {} } }))
  ws.message(envelope({ stream: 'chat', group: 'lobby', type: 'presence_leave', data: { key: 'u0', count: 0 } }))
  assert.deepEqual(lists, [['u0:1', 'u1:2'], ['u0:1', 'u1:2', 'u2:1'], ['u1:2', 'u2:1']])
  assert.deepEqual(room.getState(), [], 'presence is never merged into the state')
  assert.deepEqual(room.getPresence().map((e) => e.key), ['u1', 'u2'])
  plain.close()
  stream.close()
})

test('SSE: one EventSource per subscription, token and presence in the URL, resumes with lastEventId', async () => {
  const stream = new Stream('ws://unused', options({ transport: 'sse', httpUrl: 'http://server:3111', token: 'tok' }))
  await flush()
  const group = stream.subscribeGroup('todos', 'inbox', { presence: true })
  await flush()
  const es = FakeEventSource.instances[0]
  assert.equal(es.url.pathname, '/streams/todos/inbox')
  assert.equal(es.url.searchParams.get('authToken'), 'tok')
  assert.equal(es.url.searchParams.get('presence'), 'true')
  assert.equal(es.url.searchParams.get('lastEventId'), null)
  es.open()
  es.event('sync', envelope({ type: 'sync', data: [{ id: 'a' }], epoch: 'e', offset: 1 }), 'e:1')
  es.event('create', envelope({ id: 'b', type: 'create', data: { id: 'b' }, epoch: 'e', offset: 2 }), 'e:2')
  es.event('presence', envelope({ type: 'presence', data: [{ key: 'u', count: 1 }] }))
  assert.deepEqual(group.getState(), [{ id: 'a' }, { id: 'b' }])
  assert.deepEqual(group.getPresence(), [{ key: 'u', count: 1 }])
  assert.equal(stream.state, 'open')
  // the server goes away: our own backoff, then a new EventSource from where we were
  es.fail()
  await flush()
  assert.ok(es.closed)
  assert.equal(stream.state, 'connecting')
  mock.timers.tick(500)
  await flush()
  const again = FakeEventSource.instances.at(-1)
  assert.notEqual(again, es)
  assert.equal(again.url.searchParams.get('lastEventId'), 'e:2')
  again.open()
  assert.equal(stream.state, 'resyncing')
  again.event('update', envelope({ id: 'a', type: 'update', data: { id: 'a', n: 1 }, epoch: 'e', offset: 3 }), 'e:3')
  again.event('resumed', envelope({ type: 'resumed', replayed: 1, epoch: 'e', offset: 3 }))
  assert.equal(stream.state, 'open')
  assert.deepEqual(group.getState(), [{ id: 'a', n: 1 }, { id: 'b' }])
  assert.equal(group.resumes, 1)
  group.close()
  assert.ok(again.closed)
  stream.close()
})

test('SSE: a refusal is probed on the subscription URL (status and code); refresh_required reconnects', async () => {
  let n = 0
  const fetch = fakeFetch(403, { error: { code: 'STREAM_ACCESS_DENIED', message: 'no' } })
  const stream = new Stream('ws://unused', options({ transport: 'sse', httpUrl: 'http://server:3111',
    token: async () => `t${++n}`, fetch }))
  await flush()
  stream.subscribeGroup('todos', 'inbox')
  await flush()
  const es = FakeEventSource.instances[0]
  es.open()
  es.event('sync', envelope({ type: 'sync', data: [], epoch: 'e', offset: 1 }), 'e:1')
  es.event('refresh_required', { expiresAt: 10 })
  await flush()
  assert.ok(es.closed)
  const renewed = FakeEventSource.instances.at(-1)
  assert.equal(renewed.url.searchParams.get('authToken'), 't2')
  assert.equal(renewed.url.searchParams.get('lastEventId'), 'e:1')
  const refused = []
  stream.on('refused', (d) => refused.push(d))
  renewed.fail() // before it opened: why?
  await flush()
  assert.equal(fetch.calls[0].url, renewed.url.toString())
  assert.deepEqual(refused, [{ status: 403, code: 'STREAM_ACCESS_DENIED', message: 'no' }])
  stream.close()
})

test('transport auto: a socket that never opens while HTTP admits us switches to SSE', async () => {
  const fetch = fakeFetch(200, { ok: true })
  const stream = new Stream('ws://server', options({ transport: 'auto', httpUrl: 'http://server:3111', fetch }))
  const transports = []
  stream.on('transport', (d) => transports.push(d.transport))
  await flush()
  stream.subscribeGroup('todos', 'inbox')
  FakeWebSocket.last.drop()
  await flush()
  assert.deepEqual(transports, ['sse'])
  assert.equal(stream.transport, 'sse')
  assert.equal(FakeEventSource.instances.length, 1)
  stream.close()
})

test('the surface of Motia\'s client: the same classes, methods and argument shapes', async () => {
  const mod = await import('../../clients/js/dist/stream.js')
  for (const name of ['Stream', 'StreamSubscription', 'StreamGroupSubscription', 'StreamItemSubscription']) {
    assert.equal(typeof mod[name], 'function', name)
  }
  for (const method of ['subscribeItem', 'subscribeGroup', 'close']) assert.equal(typeof mod.Stream.prototype[method], 'function')
  for (const method of ['getState', 'addChangeListener', 'removeChangeListener', 'onEvent', 'offEvent', 'onClose', 'close']) {
    assert.equal(typeof mod.StreamSubscription.prototype[method], 'function', method)
  }
  const stream = new Stream('ws://server', options({ protocols: ['Authorization', 'abc'] }))
  await flush()
  assert.deepEqual(FakeWebSocket.last.protocols, ['Authorization', 'abc'], 'Motia\'s way of passing a token')
  const sub = stream.subscribeGroup('todos', 'inbox', 'title')
  assert.deepEqual(Object.keys(sub.sub).sort(), ['groupId', 'streamName', 'subscriptionId'])
  stream.close()
})
