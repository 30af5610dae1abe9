"""CORS: which headers a response to a cross-origin request carries (every HTTP route's, both HTTP stacks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .settings import ServerSettings

__all__ = ["cors_headers"]


def cors_headers(settings: ServerSettings, origin: str | None) -> list[tuple[str, str]]:
    """What a response to ``origin`` carries when CORS allows it (nothing otherwise)."""
    if not settings.cors_allows(origin):
        return []
    allow = "*" if "*" in settings.cors_origins else str(origin)
    return [("Access-Control-Allow-Origin", allow), ("Access-Control-Expose-Headers", "X-Trace-Id"), ("Vary", "Origin")]
