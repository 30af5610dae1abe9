// The merge cases shared with the Python client (merge_cases.json), through a real Stream:
// each step is a frame the server sends, the state is what getState() and the change listener say.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { beforeEach, test } from 'node:test'
import { envelope, FakeWebSocket, flush, options, Stream } from './fakes.mjs'

const { cases } = JSON.parse(readFileSync(new URL('./merge_cases.json', import.meta.url)))

beforeEach(() => FakeWebSocket.reset())

for (const one of cases) {
  test(one.name, async () => {
    const stream = new Stream('ws://server', options())
    await flush()
    const ws = FakeWebSocket.last
    ws.open()
    const sub = one.kind === 'group'
      ? stream.subscribeGroup('todos', 'inbox', one.sortKey)
      : stream.subscribeItem('todos', 'inbox', one.item)
    const seen = []
    const delivered = []
    sub.addChangeListener((state) => seen.push(state))
    for (const step of one.steps) {
      if (step.type === 'event') sub.onEvent(step.eventType, (data) => delivered.push(data))
    }
    for (const [number, step] of one.steps.entries()) {
      const before = delivered.length
      const frame = step.type === 'event'
        ? envelope({ id: step.id ?? (one.kind === 'item' ? one.item : null), type: 'event',
          event: { type: step.eventType, data: step.data }, ts: step.ts })
        : envelope({ id: step.type === 'sync' ? (one.item ?? null) : step.id, type: step.type, data: step.data, ts: step.ts })
      ws.message(frame)
      assert.deepEqual(sub.getState(), step.state, `step ${number}`)
      if (step.type === 'event') assert.equal(delivered.length > before, step.delivered, `step ${number} delivered`)
    }
    assert.deepEqual(seen.at(-1), one.steps.at(-1).state) // listeners saw the final state
    stream.close()
  })
}

test('every group view is a new array, never mutated afterwards', async () => {
  const stream = new Stream('ws://server', options())
  await flush()
  FakeWebSocket.last.open()
  const sub = stream.subscribeGroup('todos', 'inbox')
  FakeWebSocket.last.message(envelope({ type: 'sync', data: [] }))
  const view = sub.getState()
  FakeWebSocket.last.message(envelope({ id: 'z', type: 'create', data: { id: 'z' } }))
  assert.deepEqual(view, [])
  assert.deepEqual(sub.getState(), [{ id: 'z' }])
  stream.close()
})
