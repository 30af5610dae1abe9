"""Streaming responses from steps, in Motia's style.

``await response.status(200)``, ``await response.headers({...})``, then
``response.writer.stream.write(b"...")`` for each chunk, and
``response.close()``; the handler returns None. The client receives each
write as it happens. Writes go to a bounded buffer: ``write`` is
synchronous (as in Motia), so a handler that outruns a slow client gets
`BufferError` rather than unbounded memory; ``await response.send(b"...")``
waits for room instead.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping

import trio

__all__ = ["ResponseStream"]


class _Writer:
    __slots__ = ("stream",)

    def __init__(self, stream: ResponseStream) -> None:
        self.stream = stream


class ResponseStream:
    def __init__(self, limit: int = 1024 * 1024) -> None:
        self.limit = limit
        self.status_code = 200
        self.header_values: dict[str, str] = {}
        self.writer = _Writer(self)
        self.started = trio.Event()  # the first write (or close): headers are final
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._closed = False
        #: Whether the handler wrote anything (then the response is a stream).
        self.wrote = False
        self._wake: trio.Event | None = None  # made when a reader or a sender waits: most responses never do
        self._room: trio.Event | None = None
        #: Called once, at the first write: the server starts writing the body then
        #: (so a handler that returns a plain response costs no writer task).
        self.on_first_write: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    async def status(self, code: int) -> None:
        if self.started.is_set():
            raise RuntimeError("the status cannot change once the body has started")
        if not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError(f"invalid HTTP status {code!r}")
        self.status_code = code

    async def headers(self, values: Mapping[str, str]) -> None:
        if self.started.is_set():
            raise RuntimeError("headers cannot change once the body has started")
        self.header_values.update({str(k): str(v) for k, v in values.items()})

    def write(self, data: bytes | str) -> None:
        if self._closed:
            raise RuntimeError("the response is closed")
        chunk = data.encode() if isinstance(data, str) else bytes(data)
        if self._size + len(chunk) > self.limit:
            raise BufferError(f"the client is not reading fast enough ({self._size} bytes waiting)")
        self._chunks.append(chunk)
        self._size += len(chunk)
        if not self.wrote and self.on_first_write is not None:
            self.on_first_write()
        self.wrote = True
        self.started.set()
        if self._wake is not None:
            self._wake.set()

    async def send(self, data: bytes | str) -> None:
        """``write``, waiting while the buffer is full."""
        chunk = data.encode() if isinstance(data, str) else bytes(data)
        while self._size and self._size + len(chunk) > self.limit:
            self._room = trio.Event()
            await self._room.wait()
        self.write(chunk)

    def close(self) -> None:
        self._closed = True
        self.started.set()
        if self._wake is not None:
            self._wake.set()

    def finish(self) -> None:
        """Called by the server when the handler ends, closed or not."""
        self.close()

    async def next_chunk(self) -> bytes | None:
        """What to send next (all queued bytes at once), or None at the end."""
        while not self._chunks:
            if self._closed:
                return None
            self._wake = trio.Event()
            await self._wake.wait()
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._size = 0
        if self._room is not None:
            self._room.set()
        return data
