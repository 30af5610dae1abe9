"""Script calls from many group actors, sent to Redis together.

Each group actor commits its own batch, so ops spread over many groups make
many small script calls at once. Sent one by one, each costs a round trip
and ~0.3–0.5 ms of client CPU; sent as one pipeline, the CPU per call falls
about five-fold (measured: 5k → 26k script calls/s from 200 callers).

The commits queued together go further: up to ``chunk`` of them become ONE
call of the multi-group COMMIT script (scripts.py), which publishes one
message for all of them, and the chunks go as one pipeline. Measured with
200 actors committing to 1,000 groups, three interleaved runs each (the
spread workload of ``bench/redis.py``): per-group scripts (chunk 1)
5.6–6.4k commits/s, chunks of 64 6.6–7.4k, the whole round as one call
5.5–7.4k. Smaller calls let Redis answer the first chunks while it runs the
later ones, and each reply is handed to its callers as it arrives, so the
actors work while Redis does; one call per group costs a request in coredis
and a pub/sub message that every process (this one too) parses. Storage
alone, with no actors (200 tasks calling ``commit``): 90 → 52 µs of client
CPU per commit. The same workload on memory storage runs ~29k ops/s here:
the actor path, not Redis, is most of what is left.
Other script calls (reservations) ride in the same pipeline.

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

from collections.abc import Callable
from typing import Any

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
        max_calls: int = 512, chunk: int = 64,
    ) -> None:
        self._client = client
        self._chunk = chunk
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
        sent: list[tuple[list[_Call], bool, Any, list[str], list[Any]]] = [
            (chunk, True, *self._commit_call(chunk))
            for chunk in (commits[k:k + self._chunk] for k in range(0, len(commits), self._chunk))
        ]
        sent.extend(([call], False, call.script, call.keys, call.args) for call in batch if call.script is not None)
        try:
            if len(sent) == 1:  # nothing to pipeline
                _, merged, script, keys, args = sent[0]
                self._settle(sent[0][0], merged, await outcome.acapture(self._run, script, keys, args))
                return
            async with self._client.pipeline(transaction=False, raise_on_error=False) as pipe:
                pending = [pipe.evalsha(script.sha, keys, args) for _, _, script, keys, args in sent]
        except BaseException as exc:
            failure = exc if isinstance(exc, Exception) else StorageError(
                "the task sending this call to Redis was cancelled: it may or may not have been applied"
            )
            for call in batch:
                if call.result is None:
                    call.result = outcome.Error(failure)
                    call.wake.set()
            raise
        for reply, (calls, merged, script, keys, args) in zip(pending, sent):
            self._settle(calls, merged, await outcome.acapture(self._reply, reply, script, keys, args))

    @staticmethod
    def _settle(calls: list[_Call], merged: bool, reply: outcome.Outcome) -> None:
        """Hand each caller its reply at once: actors resume while later replies are still coming."""
        if merged and isinstance(reply, outcome.Value):
            for call, own in zip(calls, reply.value):
                call.result = outcome.Value(own)
        else:
            for call in calls:
                call.result = reply
        for call in calls:
            call.wake.set()

    async def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        return await script(keys=keys, args=args)  # loads the script when Redis forgot it

    async def _reply(self, reply: Any, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await reply
        except NoScriptError:  # Redis restarted and forgot its scripts: the Script call loads it
            return await script(keys=keys, args=args)
