"""Network listeners: HTTP (step routes, SSE, health, metrics)."""

from .serve import Listening, serve
from .settings import SLOW_CLOSE, SLOW_RESYNC, ServerSettings

__all__ = ["Listening", "SLOW_CLOSE", "SLOW_RESYNC", "ServerSettings", "serve"]
