"""Streams: state as stream → group → item, each group an actor."""

from .config import DeleteResult, SetResult, SetResults, StreamConfig, StreamDefinition
from .engine import StreamEngine, current_engine
from .events import Event
from .messages import Joined
from .stream import Stream
from .subscribers import Subscriber
from .triggers import StreamListener

__all__ = [
    "DeleteResult", "Event", "Joined", "SetResult", "SetResults", "Stream", "StreamConfig", "StreamDefinition",
    "StreamEngine", "StreamListener", "Subscriber", "current_engine",
]
