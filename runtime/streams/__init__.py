"""Streams: state as stream → group → item, each group an actor.

Owns: `Stream` handles and `StreamConfig`, the `StreamEngine` (the running
streams of an app), the group actor and its committers (local, shared),
update ops and schemas (pure code), events and their wire envelope, the
subscriber protocol and index, stream triggers' dispatch.
May import: ``actors``, ``runtime.storage``, ``runtime.errors`` and its
dependencies (orjson, jsonpatch, the JSON Schema validators, loaded lazily).
Must never be imported by it: ``steps``, ``server``, ``app``, ``client`` —
they use streams through the engine and `Subscriber`, never the reverse.
"""

from .config import DeleteResult, SetResult, SetResults, StreamConfig, StreamDefinition
from .engine import StreamEngine, current_engine
from .events import Event
from .messages import Joined
from .presence import PresenceEntry, PresenceRegistry
from .stream import Stream
from .subscribers import Subscriber
from .triggers import StreamListener

__all__ = [
    "DeleteResult", "Event", "Joined", "PresenceEntry", "PresenceRegistry",
    "SetResult", "SetResults", "Stream", "StreamConfig", "StreamDefinition",
    "StreamEngine", "StreamListener", "Subscriber", "current_engine",
]
