"""Script calls from many group actors, sent to Redis together.

Each group actor commits its own batch, so ops spread over many groups make
many small script calls at once. Sent one by one, each costs a round trip
and ~0.3–0.5 ms of client CPU; sent as one pipeline, the CPU per call falls
about five-fold (measured: 5k → 26k script calls/s from 200 callers).

The commits queued together go further: they become ONE call of the
multi-group COMMIT script (scripts.py), and what it publishes is one
message. Measured with 200 actors committing to 1,000 groups
(``bench/redis.py``, the spread row): a pipeline of per-group scripts cost
~90 µs of client CPU per commit, most of it coredis building a request per
command and the feed parsing and dropping this process's own publication
of each commit; one multi-group call costs ~NN µs. Other script calls
(reservations) ride in the same pipeline.

There is no flusher task: the first caller that finds nobody sending
becomes the sender. It lets every task runnable in this tick queue its call
first (one checkpoint), sends what is queued, hands each caller its own
result, and, if more calls queued up meanwhile, wakes the first of them to
send the next round. A caller cancelled while queued withdraws its call; a
call already sent has an unknown outcome, exactly as a direct call would.
A multi-group call that fails as a whole (a lost connection, a timeout)
fails each of its commits with that error: each may or may not have been
applied, as with a lost reply to a call of its own.
"""

from __future__ import annotations

from typing import Any, Callable

import coredis
import outcome
import trio
from coredis.exceptions import NoScriptError

from ...errors import StorageError

__all__ = ["ScriptPipeline"]


class _Call:
    __slots__ = ("script", "keys", "args", "result", "wake")

    def __init__(self, script: Any, keys: list[str], args: list[Any]) -> None:
        self.script = script  # None for a group commit, merged into one COMMIT call
        self.keys = keys
        self.args = args
        self.result: outcome.Outcome | None = None
        self.wake = trio.Event()


class ScriptPipeline:
    """``commit_call(keys, args) -> (script, keys, args)`` merges the queued commits into one call."""

    def __init__(
        self, client: coredis.Redis[bytes],
        commit_call: Callable[[list[_Call]], tuple[Any, list[str], list[Any]]],
        max_calls: int = 512,
    ) -> None:
        self._client = client
        self._commit_call = commit_call
        self._max_calls = max_calls
        self._queue: list[_Call] = []
        self._sending = False

    async def commit(self, keys: list[str], args: list[Any]) -> Any:
        """One group's commit (its six keys, its ``commit_group`` arguments): its own reply."""
        return await self._queued(_Call(None, keys, args))

    async def call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        return await self._queued(_Call(script, keys, args))

    async def _queued(self, call: _Call) -> Any:
        self._queue.append(call)
        try:
            while call.result is None:
                if self._sending:
                    call.wake = trio.Event()
                    await call.wake.wait()
                    continue
                self._sending = True
                try:
                    await trio.lowlevel.checkpoint()  # let the others of this tick queue their calls
                    batch = self._queue[: self._max_calls]
                    del self._queue[: self._max_calls]
                    await self._send(batch)
                finally:
                    self._sending = False
                    if self._queue:
                        self._queue[0].wake.set()  # the next round's sender
        finally:
            if call.result is None and call in self._queue:  # cancelled before it was sent
                self._queue.remove(call)
                if not self._sending and self._queue:
                    self._queue[0].wake.set()
        return call.result.unwrap()

    async def _send(self, batch: list[_Call]) -> None:
        commits = [call for call in batch if call.script is None]
        others = [call for call in batch if call.script is not None]
        sent: list[tuple[list[_Call], Any, list[str], list[Any]]] = []
        if commits:
            sent.append((commits, *self._commit_call(commits)))
        sent.extend(([call], call.script, call.keys, call.args) for call in others)
        try:
            if len(sent) == 1:  # nothing to pipeline
                _, script, keys, args = sent[0]
                replies: list[outcome.Outcome] = [await outcome.acapture(self._run, script, keys, args)]
            else:
                async with self._client.pipeline(transaction=False, raise_on_error=False) as pipe:
                    pending = [pipe.evalsha(script.sha, keys, args) for _, script, keys, args in sent]
                replies = [await outcome.acapture(self._reply, reply, script, keys, args)
                           for reply, (_, script, keys, args) in zip(pending, sent)]
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else StorageError(
                "the task sending this call to Redis was cancelled: it may or may not have been applied"
            )
            for call in batch:
                call.result = outcome.Error(failure)
                call.wake.set()
            raise
        for (calls, script, _, _), reply in zip(sent, replies):
            if calls is commits:
                if isinstance(reply, outcome.Value):
                    for call, own in zip(calls, reply.value):
                        call.result = outcome.Value(own)
                else:
                    for call in calls:
                        call.result = reply
            else:
                calls[0].result = reply
            for call in calls:
                call.wake.set()

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        return await script(keys=keys, args=args)  # loads the script when Redis forgot it

    async def _reply(self, reply: Any, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await reply
        except NoScriptError:  # Redis restarted and forgot its scripts: the Script call loads it
            return await script(keys=keys, args=args)
