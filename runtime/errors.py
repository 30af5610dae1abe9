"""Errors a user of the runtime can catch, all importable from ``runtime``.

Each carries enough to tell the caller *what* was wrong without reading logs:
a validation error lists every failing path, an update error names the op.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "RuntimeErrorBase",
    "ValidationError",
    "UpdateError",
    "StreamNotFound",
    "Unauthorized",
    "StorageError",
    "ConfigurationError",
    "IdempotencyError",
]


class RuntimeErrorBase(Exception):
    """Base of every error this runtime raises on purpose."""

    code: str = "ERROR"


class ValidationError(RuntimeErrorBase, ValueError):
    """A value failed its schema. Nothing was changed or emitted.

    ``errors`` is a list of ``{"path": "/json/pointer", "message": str}``,
    one per failing place, so a client can show them all at once.
    """

    code = "VALIDATION_ERROR"

    def __init__(self, errors: list[dict[str, str]], message: str | None = None) -> None:
        self.errors = list(errors)
        if message is None:
            shown = "; ".join(f"{e['path'] or '/'}: {e['message']}" for e in self.errors[:5])
            more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
            message = f"validation failed: {shown}{more}"
        super().__init__(message)


class UpdateError(RuntimeErrorBase, ValueError):
    """An update op was malformed, unknown, failed its ``test``, or hit a bad path.

    ``index`` is the position of the failing op in the list passed to
    ``update()`` (``None`` when the list itself is malformed); nothing changed.
    """

    code = "UPDATE_ERROR"

    def __init__(self, message: str, *, index: int | None = None, op: Any = None) -> None:
        self.index = index
        self.op = op
        prefix = f"op {index}: " if index is not None else ""
        super().__init__(prefix + message)


class StreamNotFound(RuntimeErrorBase, LookupError):
    """No loaded module declares a stream of this name."""

    code = "STREAM_NOT_FOUND"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"stream {name!r} is not declared")


class Unauthorized(RuntimeErrorBase):
    """Raised by an ``authenticate`` hook to refuse a connection (HTTP 401)."""

    code = "UNAUTHORIZED"


class IdempotencyError(RuntimeErrorBase, ValueError):
    """An idempotency key was used again, within its window, for a different call.

    A repeat of a keyed call returns the first call's result only when it is
    the same kind of call on the same item(s); anything else is refused (and
    changes nothing) rather than answered with an unrelated result.
    """

    code = "IDEMPOTENCY_KEY_REUSED"


class StorageError(RuntimeErrorBase):
    """The storage backend failed; the mutation was not committed."""

    code = "STORAGE_ERROR"


class ConfigurationError(RuntimeErrorBase, ValueError):
    """The app cannot be served as configured (e.g. a step route on the server's own paths).

    Raised before anything is served; ``python -m runtime serve`` prints it as one line and exits 2.
    """

    code = "CONFIGURATION"
