"""The ``todo`` stream: one group per list (``inbox`` unless the client names one), one item per todo.

Items look like ``{"id": "<uuid4>", "title": "buy milk", "completed": false,
"createdAt": 1763726401000}``; ``createdAt`` is milliseconds since the epoch
(a number, like the event timestamps clients already handle).
"""

from __future__ import annotations

import re
from typing import Any

from runtime import Stream, StreamConfig

todo = Stream(StreamConfig(
    name="todo",
    description="Todo items, grouped by list",
    # Motia's shorthand: listed fields must have these types when present.
    schema={"title": "string", "completed": "boolean", "createdAt": "number"},
))

DEFAULT_GROUP = "inbox"
_GROUP_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def group_of(request: Any) -> tuple[str | None, dict[str, Any] | None]:
    """The list a request targets: ``?groupId=...``, default ``inbox``.

    Returns ``(group_id, None)``, or ``(None, error_response)`` for a bad value,
    shaped like the runtime's own body-validation errors.
    """
    value = request.query_params.get("groupId", DEFAULT_GROUP)
    if isinstance(value, str) and _GROUP_ID.match(value):
        return value, None
    return None, {
        "status": 400,
        "body": {
            "error": "validation",
            "errors": [{"path": "/groupId", "message": "groupId must be 1-64 of A-Z a-z 0-9 _ . - (given once)"}],
        },
    }
