"""The harness: an App in process, an HTTP test client, subscription probes, settling."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import attrs
import trio
import trio.testing

from ..app import App
from ..steps.clock import RuntimeClock
from ..steps.loader import load_project
from ..streams.events import Event
from ..streams.subscribers import Subscriber

__all__ = ["TestApp", "TestHttp", "TestResponse", "TestSubscription", "open_test_app", "DEFAULT_START_WALL"]

#: Where a test's wall clock starts unless it says otherwise: 2026-01-01T00:00:00Z, a whole second.
#: Starting from ``time.time()`` made due times fractional, and a test's retries landed at
#: ``[0, 9.999, 29.999]`` in some runs and ``[0, 10, 30]`` in others (13 and 17 of 30 runs).
DEFAULT_START_WALL = 1_767_225_600.0

_ANY: Any = object()


@attrs.frozen
class TestResponse:
    """What a route answered: ``status``, ``body`` (parsed JSON stays parsed), ``headers``."""

    __test__ = False  # not a pytest test class

    status: int
    body: Any
    headers: Mapping[str, str]

    def json(self) -> Any:
        return self.body

    @property
    def trace_id(self) -> str | None:
        return self.headers.get("X-Trace-Id")


class TestHttp:
    """``await app.http.post("/todos", json={...})``: routes in process, as the server would."""

    __test__ = False

    def __init__(self, app: App) -> None:
        self._app = app

    async def request(
        self, method: str, path: str, *, json: Any = None, body: bytes | None = None,
        headers: Mapping[str, str] | None = None, query: Mapping[str, Any] | None = None,
    ) -> TestResponse:
        response = await self._app.request(method, path, json=json, body=body, headers=headers, query=query)
        if response is None:  # a streamed response has no body in process
            return TestResponse(200, None, {})
        return TestResponse(response.status, response.body, dict(response.headers))

    async def get(self, path: str, **options: Any) -> TestResponse:
        return await self.request("GET", path, **options)

    async def post(self, path: str, **options: Any) -> TestResponse:
        return await self.request("POST", path, **options)

    async def put(self, path: str, **options: Any) -> TestResponse:
        return await self.request("PUT", path, **options)

    async def patch(self, path: str, **options: Any) -> TestResponse:
        return await self.request("PATCH", path, **options)

    async def delete(self, path: str, **options: Any) -> TestResponse:
        return await self.request("DELETE", path, **options)


class TestSubscription(Subscriber):
    """A test client's subscription: it records every event it is delivered.

    ``expect`` takes the next event and checks it; ``expect_nothing`` checks
    that none arrives for a while (virtual time under MockClock).
    """

    __test__ = False

    def __init__(self, app: TestApp, stream: str, group: str, item_id: str | None, default_timeout: float) -> None:
        self._app = app
        self.stream = stream
        self.group = group
        self.item_id = item_id
        self._pending: deque[Event] = deque()
        self.events: list[Event] = []
        self._arrived = trio.Event()
        self._timeout = default_timeout
        self.joined: Any = None

    def deliver(self, event: Event, *, initial: bool = False) -> bool:
        self._pending.append(event)
        self.events.append(event)
        self._arrived.set()
        return True

    async def next(self, *, timeout: float | None = None) -> Event:
        """The next event, waiting up to ``timeout`` seconds (default 5)."""
        with trio.fail_after(self._timeout if timeout is None else timeout):
            while not self._pending:
                self._arrived = trio.Event()
                await self._arrived.wait()
        return self._pending.popleft()

    async def expect(
        self, type: str, *, id: Any = _ANY, data: Any = _ANY, timeout: float | None = None
    ) -> Event:
        """Take the next event and assert its type (and ``id``, ``data`` if given)."""
        try:
            event = await self.next(timeout=timeout)
        except trio.TooSlowError:
            raise AssertionError(f"expected a {type!r} event on {self.stream}/{self.group}; none arrived") from None
        problems = []
        if event.type != type:
            problems.append(f"type {event.type!r} != {type!r}")
        if id is not _ANY and event.item_id != id:
            problems.append(f"id {event.item_id!r} != {id!r}")
        if data is not _ANY and event.data != data:
            problems.append(f"data {event.data!r} != {data!r}")
        if problems:
            raise AssertionError(f"unexpected event {event!r}: " + "; ".join(problems))
        return event

    async def expect_nothing(self, *, timeout: float = 1.0) -> None:
        """Assert that no event arrives within ``timeout`` seconds (after everything settles)."""
        await self._app.settle()
        with trio.move_on_after(timeout):
            event = await self.next(timeout=float("inf"))
            raise AssertionError(f"expected no event on {self.stream}/{self.group}, got {event!r}")

    async def close(self) -> None:
        await self._app.app.engine.leave(self, self.stream, self.group, id(self))


class TestApp:
    """An App under test; ``app``, ``engine`` and ``steps`` are the real objects."""

    __test__ = False

    def __init__(self, app: App, *, default_timeout: float = 5.0) -> None:
        self.app = app
        self.engine = app.engine
        self.steps = app.steps
        self.http = TestHttp(app)
        self._default_timeout = default_timeout

    def stream(self, name: str) -> Any:
        """A `Stream` handle on this app (``await app.stream("todo").get(...)``)."""
        return self.app.stream(name)

    async def subscribe(
        self, stream: str, group: str, item_id: str | None = None, *, since: tuple[str, int] | None = None
    ) -> TestSubscription:
        """Subscribe like a client; the first event is the sync (or a replay)."""
        subscription = TestSubscription(self, stream, group, item_id, self._default_timeout)
        subscription.joined = await self.engine.join(
            subscription, stream, group, subscription_id=id(subscription), item_id=item_id, since=since
        )
        return subscription

    async def enqueue(self, topic: str, data: Any, *, trace_id: str | None = None) -> list[str]:
        return await self.app.enqueue(topic, data, trace_id=trace_id)

    async def run_cron(self, step_name: str) -> None:
        """Fire one tick of a cron step now (and wait for it)."""
        await self.steps.fire_cron(step_name)

    async def dead_letters(self, topic: str | None = None) -> list[Any]:
        return await self.app.dead_letters(topic)

    def _idle(self) -> bool:
        if not self.steps.queues_idle(trio.current_time()):
            return False
        return not self.engine.triggers.pending and not self.engine.mailbox_depth()

    async def settle(self, *, timeout: float = 60.0) -> None:
        """Wait until nothing is running or due now: queues, stream triggers, group mailboxes.

        Messages scheduled for later (a retry's backoff) do not count: use
        ``trio.sleep`` to move virtual time past them.
        """
        with trio.fail_after(timeout):
            while True:
                await trio.testing.wait_all_tasks_blocked()
                if self._idle():
                    return
                await trio.sleep(0.001)


@asynccontextmanager
async def open_test_app(
    project: str | os.PathLike[str] | None = None,
    *,
    modules: Iterable[ModuleType] = (),
    steps: Iterable[Any] = (),
    streams: Iterable[Any] = (),
    storage: Any = "memory",
    start_wall: float | None = None,
    default_timeout: float = 5.0,
    **options: Any,
) -> AsyncIterator[TestApp]:
    """Run an app in process for a test: from a project directory, modules, or objects.

    ``start_wall`` is where the runtime clock's wall time starts, in seconds
    since the epoch (`DEFAULT_START_WALL` unless given, so cron ticks and
    queue due times are the same in every run); other options go to `App`.
    """
    clock = RuntimeClock(start_wall=DEFAULT_START_WALL if start_wall is None else start_wall)
    if project is not None:
        app = App(load_project(project), steps=steps, streams=streams, storage=storage, clock=clock, **options)
    elif modules:
        base = App.from_modules(list(modules), storage=storage, clock=clock, **options)
        app = base if not (steps or streams) else App(base.project, steps=steps, streams=streams,
                                                      storage=storage, clock=clock, **options)
    else:
        app = App(steps=steps, streams=streams, storage=storage, clock=clock, **options)
    async with app:
        yield TestApp(app, default_timeout=default_timeout)
