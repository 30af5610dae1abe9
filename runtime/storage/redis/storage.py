"""`RedisStorage`: groups, history, state and queues in one Redis that several processes share.

Each process still runs one actor per active group, which batches and
commits with compare-and-set; Redis is the arbiter. Every change is one
Lua script (``scripts.py``) that checks the (epoch, offset) the batch was
computed from, stamps timestamps that are strictly increasing across all
writers, writes the items, appends the history and publishes the batch on
the group's channel, atomically. ``follow`` turns those publications
into `RemoteBatch` objects for the other processes' group actors.

Nothing here retries a command: a commit whose reply was lost may or may
not have landed, so a blind retry could apply an increment twice. The
error goes back to the caller (`StorageError`, within ``timeout``), and
the group actor re-reads the group before its next change.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import coredis
import orjson
import trio
from coredis.exceptions import RedisError
from coredis.retry import NoRetryPolicy

from ...errors import StorageError
from ..base import (
    Busy,
    ConflictError,
    GroupCommit,
    GroupPosition,
    GroupState,
    HistoryPolicy,
    QueuedMessage,
    RemoteBatch,
    Send,
    SharedStorage,
    StoredEvent,
    new_epoch,
)
from . import records, scripts
from .codec import decode_entry, decode_message, encode_body, encode_message, group_head, message_head
from .feed import follow_groups
from .keys import Keys
from .pipeline import ScriptPipeline

__all__ = ["RedisStorage"]


def _final_writes(writes: list[tuple[str, dict | None]]) -> list[tuple[str, bytes, bytes]]:
    """Each id once, with its last value: ``(id, JSON or b"" to delete, b"1" to move it last)``.

    A hot item written 200 times in a batch costs one HSET, not 200. Order
    is what the dict semantics give: an id keeps its place, unless it was
    deleted and written again in the batch, which moves it last.
    """
    final: dict[str, tuple[dict | None, bool]] = {}
    for item_id, value in writes:
        known = final.get(item_id)
        if value is not None and known is not None and known[0] is None:
            del final[item_id]  # deleted earlier in the batch: re-created, goes last
            final[item_id] = (value, True)
        else:
            final[item_id] = (value, known[1] if known is not None else False)
    return [
        (item_id, b"" if value is None else orjson.dumps(value), b"1" if moved else b"")
        for item_id, (value, moved) in final.items()
    ]


def _send_entry(send: Send) -> tuple[int, int, bytes]:
    return 0, send.timestamp, encode_body(send.item_id, "event", send.payload)

logger = logging.getLogger("runtime.storage")

#: How long a group that was read or joined but never written keeps its epoch.
UNWRITTEN_GROUP_TTL = 24 * 3600

_ERRORS = (RedisError, TimeoutError, OSError)


class RedisStorage(SharedStorage):
    """Storage on Redis; see the module docstring. ``url`` is ``redis://host:port/db``.

    URL query parameters: ``prefix`` (default ``rt``) namespaces every key,
    ``timeout`` (seconds, default 5) bounds every command, so an outage is a
    clear error and never a hang.
    """

    durable = True

    def __init__(self, url: str = "redis://127.0.0.1:6379/0") -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("redis", "rediss"):
            raise ValueError(f"not a Redis URL: {url!r}")
        query = dict(urllib.parse.parse_qsl(parsed.query))
        self.keys = Keys(query.pop("prefix", "rt"))
        try:
            self.timeout = float(query.pop("timeout", "5"))
        except ValueError:
            raise ValueError(f"{url!r}: timeout must be a number of seconds") from None
        if not self.timeout > 0:
            raise ValueError(f"{url!r}: timeout must be positive")
        rest = urllib.parse.urlencode(query)
        self.url = urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, parsed.path, rest, ""))
        self.where = f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 6379}"
        self.origin = secrets.token_hex(6)
        #: Seconds between checks that Redis still holds this data set (see feed.py).
        self.check_interval = 1.0
        self._client: coredis.Redis[bytes] | None = None
        self._presence: Any = None
        self._scripts: dict[str, Any] = {}
        self._exit: contextlib.AsyncExitStack | None = None

    def __repr__(self) -> str:
        return f"<RedisStorage {self.where} prefix={self.keys.prefix!r}>"

    # -- lifecycle -------------------------------------------------------------

    def _new_client(self) -> coredis.Redis[bytes]:
        return coredis.Redis.from_url(
            self.url,
            decode_responses=False,
            stream_timeout=self.timeout,
            connect_timeout=self.timeout,
            retry_policy=NoRetryPolicy(),
        )

    async def open(self) -> None:
        if self._client is not None:
            return
        stack = contextlib.AsyncExitStack()
        try:
            client = await stack.enter_async_context(self._new_client())
            self._scripts = {name: client.register_script(source)
                             for name, source in {**scripts.ALL, **records.ALL}.items()}
            self._pipeline = ScriptPipeline(client, self._commit_call)
            await client.set(self.keys.alive, secrets.token_hex(8), condition=coredis.PureToken.NX)
        except BaseException as exc:
            # Not shielded: the client's task group was opened outside any
            # shield, so closing it inside one would unbalance Trio's scopes.
            await stack.aclose()
            if isinstance(exc, _ERRORS):
                raise StorageError(f"cannot reach Redis at {self.where}: {exc}") from exc
            raise
        self._client, self._exit = client, stack

    async def aclose(self) -> None:
        stack, self._client, self._exit = self._exit, None, None
        if stack is not None:
            await stack.aclose()  # not shielded, for the reason given in open()

    def presence_records(self) -> Any:
        """This storage's presence records (presence.py), made once: the engine's registry shares them."""
        if self._presence is None:
            from .presence import PresenceRecords

            self._presence = PresenceRecords(self)
        return self._presence

    @property
    def client(self) -> coredis.Redis[bytes]:
        """The open client (for the queue transport and the cron lock, which share it)."""
        if self._client is None:
            raise StorageError("RedisStorage is not open: use `async with storage:` or `await storage.open()`")
        return self._client

    def _script(self, name: str) -> Any:
        self.client  # noqa: B018 - raises StorageError when not open
        return self._scripts[name]

    async def _call(self, what: str, awaitable: Any) -> Any:
        try:
            return await awaitable
        except _ERRORS as exc:
            raise StorageError(f"Redis at {self.where}: {what} failed: {exc!r}") from exc

    # -- groups ----------------------------------------------------------------------

    async def load_group(self, stream: str, group: str) -> GroupState:
        keys = self.keys.group(stream, group)
        reply = await self._call(
            f"loading {stream}/{group}",
            self._script("LOAD")(keys=[keys.meta, keys.items, keys.order, keys.history],
                                 args=[new_epoch(), UNWRITTEN_GROUP_TTL]),
        )
        epoch, offset, timestamp, order, flat, history = reply
        values = dict(zip(flat[::2], flat[1::2]))
        items = {item_id.decode(): orjson.loads(values[item_id]) for item_id in order if item_id in values}
        return GroupState(
            epoch=epoch.decode(), offset=int(offset), timestamp=int(timestamp), items=items,
            history=[decode_entry(entry) for entry in history],
        )

    async def commit(
        self, stream: str, group: str, commit: GroupCommit, policy: HistoryPolicy, sends: Sequence[Send] = ()
    ) -> int:
        events: list[tuple[int, int, bytes]] = []
        pending = list(sends)
        for event in commit.events:
            while pending and pending[0].after < event.offset:
                events.append(_send_entry(pending.pop(0)))
            events.append((event.offset, event.timestamp, encode_body(event.item_id, event.type, event.data)))
        events.extend(_send_entry(send) for send in pending)
        return await self._run_commit(stream, group, commit, _final_writes(commit.writes), events, policy)

    async def _run_commit(
        self, stream: str, group: str, commit: GroupCommit, writes: list[tuple[str, bytes, bytes]],
        events: list[tuple[int, int, bytes]], policy: HistoryPolicy,
    ) -> int:
        keys = self.keys.group(stream, group)
        args: list[Any] = [
            commit.epoch, commit.expected_offset, commit.offset, commit.timestamp, group, policy.max_events,
            policy.max_age_ms, group_head(stream, group, commit.epoch), len(writes),
        ]
        for write in writes:
            args += write
        args.append(len(events))
        for event_offset, event_timestamp, body in events:
            args += (event_offset, event_timestamp, body)
        self.client  # noqa: B018 - raises StorageError when not open
        if records.needs_records(commit):  # expiries, idempotency records or deletes: one call (records.py)
            reply = await self._call(f"committing to {stream}/{group}", self._script("COMMIT_WITH_RECORDS")(
                keys=keys.as_list() + records.extra_keys(self.keys, stream, group),
                args=[self.origin, "PUBLISH", self.keys.channel, message_head(self.origin), *args,
                      *records.extra_args(commit)]))
        else:
            reply = await self._call(f"committing to {stream}/{group}", self._pipeline.commit(keys.as_list(), args))
        if reply[0] == 1:
            return int(reply[1])
        if reply[0] == 2:
            raise Busy(stream, group, max(int(reply[1]), 1) / 1000)
        stored_epoch = reply[1].decode() or None
        conflict = ConflictError(stream, group, stored_epoch=stored_epoch, stored_offset=int(reply[2]), commit=commit)
        if len(reply) > 3 and reply[3] is not None:
            conflict.missed = [decode_entry(entry) for entry in reply[3]]
        raise conflict

    def _commit_call(self, commits: Sequence[Any]) -> tuple[Any, list[str], list[Any]]:
        """The queued commits of many groups as one COMMIT call (see pipeline.py)."""
        keys: list[str] = []
        args: list[Any] = [self.origin, "PUBLISH", self.keys.channel, message_head(self.origin), len(commits)]
        for call in commits:
            keys += call.keys
            args += call.args
        return self._scripts["COMMIT"], keys, args

    async def reserve(self, stream: str, group: str, *, count: int, now: int) -> GroupPosition:
        keys = self.keys.group(stream, group)
        reply = await self._call(
            f"reading {stream}/{group}",
            self._pipeline.call(self._script("RESERVE"), [keys.meta], [new_epoch(), count, now, UNWRITTEN_GROUP_TTL]),
        )
        return GroupPosition(epoch=reply[0].decode(), offset=int(reply[1]), timestamp=int(reply[2]))

    async def events_after(self, stream: str, group: str, epoch: str, offset: int) -> list[StoredEvent] | None:
        keys = self.keys.group(stream, group)
        reply = await self._call(
            f"reading the history of {stream}/{group}",
            self._script("EVENTS_AFTER")(keys=[keys.meta, keys.history], args=[epoch, offset]),
        )
        return None if reply is None else [decode_entry(entry) for entry in reply]

    async def list_groups(self, stream: str) -> list[str]:
        members = await self._call(f"listing {stream}", self.client.smembers(self.keys.group(stream, "").groups))
        return sorted(member.decode() for member in members)

    # -- item expiry and idempotency records (records.py) ------------------------------

    async def expiry_due(self, stream: str, now: int, limit: int = 100) -> list[str]:
        due = await self._call(f"listing the due groups of {stream}", self._script("EXPIRY_DUE")(
            keys=[records.expiry_index(self.keys, stream)], args=[now, limit]))
        return [group.decode() for group in due]

    async def expired_items(self, stream: str, group: str, now: int) -> list[str]:
        ttl = records.RecordKeys.of(self.keys, stream, group).ttl
        due = await self._call(f"listing the due items of {stream}/{group}",
                               self._script("EXPIRED_ITEMS")(keys=[ttl], args=[now]))
        return [item_id.decode() for item_id in due]

    async def expiry_next(self, stream: str) -> int | None:
        first = await self._call(f"reading the next expiry of {stream}", self._script("EXPIRY_NEXT")(
            keys=[records.expiry_index(self.keys, stream)], args=[]))
        return None if first is None else int(float(first))

    async def idempotency_get(self, stream: str, group: str, keys: Sequence[str], now: int) -> dict[str, Any]:
        if not keys:
            return {}
        record_keys = records.RecordKeys.of(self.keys, stream, group)
        found = await self._call(f"reading idempotency records of {stream}/{group}", self._script(
            "IDEMPOTENCY_GET")(keys=[record_keys.records, record_keys.records_by_expiry], args=[now, *keys]))
        return records.decode_found(found)

    async def follow(
        self,
        deliver: Callable[[RemoteBatch], None],
        lost: Callable[[bool], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        await follow_groups(self, deliver, lost, task_status=task_status)

    # -- key-value state ----------------------------------------------------------------

    async def state_get(self, scope: str, key: str) -> Any | None:
        raw = await self._call("reading state", self.client.hget(self.keys.state(scope), key))
        return None if raw is None else orjson.loads(raw)

    async def state_set(self, scope: str, key: str, value: Any) -> None:
        encoded = orjson.dumps(value)  # before touching anything: a TypeError changes nothing
        await self._call("writing state", self.client.hset(self.keys.state(scope), {key: encoded}))

    async def state_delete(self, scope: str, key: str) -> None:
        await self._call("deleting state", self.client.hdel(self.keys.state(scope), [key]))

    async def state_list(self, scope: str) -> dict[str, Any]:
        flat = await self._call("listing state", self.client.hgetall(self.keys.state(scope)))
        return {key.decode(): orjson.loads(flat[key]) for key in sorted(flat)}

    async def state_clear(self, scope: str) -> None:
        await self._call("clearing state", self.client.delete([self.keys.state(scope)]))

    # -- queues -------------------------------------------------------------------------------

    async def queue_put(self, message: QueuedMessage) -> None:
        encoded = encode_message(message)
        keys = self.keys
        await self._call("storing a queued message", self._script("QUEUE_PUT")(
            keys=[keys.pending, keys.pending_order, keys.sequence], args=[message.id, encoded]))

    async def queue_ack(self, message_id: str) -> None:
        await self._call("acknowledging a queued message", self._ack(message_id))

    async def _ack(self, message_id: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:  # runs, atomically, when the block exits
            pipe.hdel(self.keys.pending, [message_id])
            pipe.zrem(self.keys.pending_order, [message_id])

    async def _ordered(self, values_key: str, order_key: str) -> list[QueuedMessage]:
        ids = await self._call("listing queued messages", self.client.zrange(order_key, 0, -1))
        if not ids:
            return []
        values = await self._call("listing queued messages", self.client.hmget(values_key, ids))
        return [decode_message(raw) for raw in values if raw is not None]

    async def queue_pending(self) -> list[QueuedMessage]:
        return await self._ordered(self.keys.pending, self.keys.pending_order)

    async def queue_dead(self, message: QueuedMessage) -> None:
        encoded = encode_message(message)
        keys = self.keys
        await self._call("dead-lettering a message", self._script("QUEUE_DEAD")(
            keys=[keys.pending, keys.pending_order, keys.dead, keys.dead_order, keys.sequence],
            args=[message.id, encoded]))

    async def dead_letters(self, topic: str | None = None) -> list[QueuedMessage]:
        letters = await self._ordered(self.keys.dead, self.keys.dead_order)
        return [letter for letter in letters if topic is None or letter.topic == topic]

    async def dead_letter_take(self, message_id: str) -> QueuedMessage | None:
        raw = await self._call("taking a dead letter", self._script("QUEUE_TAKE_DEAD")(
            keys=[self.keys.dead, self.keys.dead_order], args=[message_id]))
        return None if raw is None else decode_message(raw)
