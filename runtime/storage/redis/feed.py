"""Following other processes' commits: one pub/sub connection per process, for every group.

Why pub/sub and not a Redis Stream per group: the commit script already
keeps each group's history (the resume log) and publishes from inside the
same atomic step, so pub/sub only has to be a low-latency doorbell. Each
batch carries its offsets, which are contiguous per group, so a receiver
sees any lost message as a gap at the next batch and catches up from the
history instead of delivering a hole; a dropped connection is reported as
``lost(False)`` after it is back, so every active group checks itself.
One subscription serves every group (a commit script call publishes one
message for all the groups it committed), so activating a group costs no
subscribe round trip and has no window in which its batches are missed.

Redis losing its data (a restart without persistence, FLUSHALL) cannot be
seen on pub/sub, so a token written once per data set is checked every
``storage.check_interval`` seconds; when it has changed, ``lost(True)``
makes every active group reload, which starts a new epoch.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

import coredis
import orjson
import trio
from coredis.exceptions import RedisError
from coredis.retry import NoRetryPolicy

from ..base import RemoteBatch
from .codec import decode_batches

if TYPE_CHECKING:
    from .storage import RedisStorage

__all__ = ["follow_groups"]

logger = logging.getLogger("runtime.storage")

_ERRORS = (RedisError, TimeoutError, OSError)


async def follow_groups(
    storage: RedisStorage,
    deliver: Callable[[RemoteBatch], None],
    lost: Callable[[bool], None],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Deliver other processes' batches until cancelled, reconnecting with backoff.

    Reports started once the first subscription is live (or has failed:
    the feed then keeps trying while the app serves what it can).
    """
    follower = _Follower(storage, deliver, lost)
    follower.token = await _read_token(storage)
    delay = 0.1
    while True:
        connected = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follower.watch_data_set)
                await follower.listen(connected, task_status)
        except* _ERRORS as failure:
            reason = failure.exceptions[0]
        if not follower.started:
            follower.started = True
            task_status.started()
        if connected.is_set():
            delay = 0.1
        logger.warning("lost the Redis feed at %s (%r); reconnecting in %.1f s", storage.where, reason, delay)
        await trio.sleep(delay)
        delay = min(delay * 2, 5.0)
        lost(False)  # batches published while we were away are caught up from the history


class _Follower:
    def __init__(self, storage: RedisStorage, deliver: Callable[[RemoteBatch], None],
                 lost: Callable[[bool], None]) -> None:
        self.storage = storage
        self.deliver = deliver
        self.lost = lost
        self.started = False
        self.token: bytes | None = None

    async def listen(self, connected: trio.Event, task_status: trio.TaskStatus[None]) -> None:
        storage = self.storage
        keys = storage.keys
        own = b'{"g":' + orjson.dumps(storage.origin) + b","
        pubsub = storage.client.pubsub(ignore_subscribe_messages=True, retry_policy=NoRetryPolicy())
        async with pubsub:
            await pubsub.subscribe(keys.channel)
            connected.set()
            if not self.started:
                self.started = True
                task_status.started()
            while True:
                message = await pubsub.get_message()
                if message is None or message["type"] != "message":
                    continue
                data = message["data"]
                assert isinstance(data, bytes)  # the client decodes nothing (decode_responses=False)
                if data.startswith(own):  # our own commit, published for the others
                    continue
                try:
                    batches = decode_batches(data)
                except ValueError as exc:
                    logger.error("ignoring a malformed batch on %r: %s", message["channel"], exc)
                    continue
                for batch in batches:
                    if batch.origin != storage.origin:  # (a prefix check above skips nearly all)
                        self.deliver(batch)

    async def watch_data_set(self) -> None:
        """Report ``lost(True)`` when the data set's token is gone or replaced."""
        storage = self.storage
        client: coredis.Redis[bytes] = storage.client
        while True:
            await trio.sleep(storage.check_interval)
            current = await client.get(storage.keys.alive)
            if current is not None and current == self.token:
                continue
            if current is None:
                await client.set(storage.keys.alive, secrets.token_hex(8), condition=coredis.PureToken.NX)
                current = await client.get(storage.keys.alive)
            if self.token is not None:
                logger.warning("Redis at %s lost its data; every active group reloads (new epochs)", storage.where)
                self.lost(True)
            self.token = current


async def _read_token(storage: RedisStorage) -> bytes | None:
    try:
        return await storage.client.get(storage.keys.alive)
    except _ERRORS:
        return None
