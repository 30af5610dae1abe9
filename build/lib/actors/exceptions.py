"""The earlier home of the exception-group helpers, now in `actors.errors` (and exported by `actors`).

Kept only so that code written against the old name keeps importing while
other branches merge; new code imports from ``actors``.
"""

from .errors import leaves, raise_sole_error, sole_error

__all__ = ["leaves", "raise_sole_error", "sole_error"]
