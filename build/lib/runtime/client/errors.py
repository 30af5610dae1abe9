"""What the stream client raises, or hands to ``on_error`` listeners.

Every failure the server reports reaches the user as one of these, raised
from the call that waits for it (``subscribe_*``, ``wait_connected``, an
``async for`` over a subscription) or passed to an ``on_error`` listener
when no call is waiting: never as silence.
"""

from __future__ import annotations

__all__ = [
    "StreamClientError", "ConnectError", "HandshakeRejected", "Unauthorized", "Forbidden", "SubscriptionRefused",
    "ServerError", "ClientClosed",
]


class StreamClientError(Exception):
    """Base class of every stream client error."""


class ConnectError(StreamClientError):
    """A connection attempt failed or an open connection was lost (the client retries)."""


class HandshakeRejected(StreamClientError):
    """The server refused the WebSocket upgrade with an HTTP status (``status``, ``code``, ``body``)."""

    def __init__(self, status: int, code: str | None, message: str, body: bytes | None = None) -> None:
        self.status = status
        self.code = code
        self.body = body
        super().__init__(message)


class Unauthorized(HandshakeRejected):
    """HTTP 401: the app's ``authenticate`` hook refused the token (fatal for a fixed token)."""


class Forbidden(HandshakeRejected):
    """HTTP 403: e.g. the page's ``Origin`` is not allowed (fatal for a fixed token)."""


class SubscriptionRefused(StreamClientError):
    """A join the server refused: ``code`` is ``STREAM_ACCESS_DENIED``, ``STREAM_NOT_FOUND``,
    ``TOO_MANY_SUBSCRIPTIONS`` or ``JOIN_FAILED``."""

    def __init__(self, code: str, message: str, *, stream: str, group: str, item_id: str | None = None) -> None:
        self.code = code
        self.message = message
        self.stream = stream
        self.group = group
        self.item_id = item_id
        where = f"{stream}/{group}" + (f"/{item_id}" if item_id is not None else "")
        super().__init__(f"{where}: {code}: {message}")


class ServerError(StreamClientError):
    """An error frame that belongs to no subscription (``BAD_FRAME``...), or a frame the client cannot read."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class ClientClosed(StreamClientError):
    """The client (or the subscription) was closed."""
