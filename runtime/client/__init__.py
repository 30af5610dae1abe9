"""A Python client for the stream protocol, on Trio: Motia's clients' merge rules, plus resume.

    from runtime.client import StreamClient

    async with StreamClient("ws://127.0.0.1:3112", token=token) as client:
        todos = await client.subscribe_group("todo", "inbox")
        async for change in todos:
            print(change.kind, change.item_id, change.data)

See docs/client.md.

Owns: the client's connection, subscriptions, the merge of frames into
state and its resume positions. It talks to the server only over the wire.
May import: ``runtime.streams.events`` (the envelope and position format,
pure), Trio, trio-websocket (on first use), orjson.
Must never be imported by it: ``server``, ``steps``, ``app``; and nothing in
the server imports the client.
"""

from typing import TYPE_CHECKING, Any

from .errors import (
    ClientClosed,
    ConnectError,
    Forbidden,
    HandshakeRejected,
    ServerError,
    StreamClientError,
    SubscriptionRefused,
    Unauthorized,
)
from .merge import Change
from .protocol import Position, PresenceEntry
from .subscription import ChangeIterator, GroupSubscription, ItemSubscription, Subscription

if TYPE_CHECKING:
    from .client import StreamClient, TokenSource

__all__ = [
    "StreamClient", "TokenSource", "Subscription", "GroupSubscription", "ItemSubscription", "ChangeIterator", "Change",
    "Position", "PresenceEntry", "StreamClientError", "ConnectError", "HandshakeRejected", "Unauthorized", "Forbidden",
    "SubscriptionRefused", "ServerError", "ClientClosed",
]


def __getattr__(name: str) -> Any:
    # The transport (trio-websocket) is imported on first use, so that `python -m runtime`
    # can build its command line (the `tail` parser) without it.
    if name in ("StreamClient", "TokenSource"):
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
