"""What handlers receive and return: `ApiRequest`, `ApiResponse`, `StreamTriggerInput`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from .awaits import coroutine_in

__all__ = [
    "ApiRequest", "ApiResponse", "Headers", "RequestBody", "StreamTriggerInput", "StreamEventInfo", "to_response",
]


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only header mapping (the last value of a repeated name)."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items = {name.lower(): value for name, value in pairs}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@attrs.define
class RequestBody:
    """``request.request_body.stream``: the raw body chunks, as received."""

    stream: list[bytes] = attrs.field(factory=list)


@attrs.define
class ApiRequest:
    """An HTTP request as a step sees it.

    ``query_params`` holds a string per name, or a list where the name
    repeats; ``body`` is parsed JSON for JSON content types, a dict for form
    data, else bytes, and ``None`` when empty. ``request`` and ``response``
    make Motia's ``args.request`` / ``args.response`` code run unchanged.
    """

    method: str
    path: str
    path_params: dict[str, str] = attrs.field(factory=dict)
    query_params: dict[str, str | list[str]] = attrs.field(factory=dict)
    headers: Headers = attrs.field(factory=Headers, converter=lambda h: h if isinstance(h, Headers) else Headers(h))
    body: Any = None
    request_body: RequestBody = attrs.field(factory=RequestBody)
    response: Any = None
    trace_id: str | None = None

    __class_getitem__ = classmethod(lambda cls, _item: cls)  # ApiRequest[Any] in annotations

    @property
    def request(self) -> ApiRequest:
        return self


@attrs.define
class ApiResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)

    __class_getitem__ = classmethod(lambda cls, _item: cls)  # ApiResponse[Any] in annotations


def to_response(value: Any) -> ApiResponse | None:
    """Normalise what a handler returned: an ApiResponse, a dict, or None (streamed).

    A body that is (or holds) a coroutine is a forgotten ``await``: a
    ``TypeError`` saying so (the runner logs it with the step's file).
    """
    if value is None:
        return value
    if isinstance(value, ApiResponse):
        response = value
    elif isinstance(value, Mapping) and ("status" in value or "status_code" in value or "body" in value):
        status = value.get("status", value.get("status_code", 200))
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise TypeError(f"a handler returned an invalid HTTP status {status!r}")
        response = ApiResponse(status=status, body=value.get("body"), headers=dict(value.get("headers") or {}))
    else:
        response = None
    if response is not None:
        if coroutine_in(response.body):
            raise TypeError("the response body is a 'coroutine' object (an async call's result without `await`)")
        return response
    raise TypeError(
        "an http handler must return ApiResponse(status, body, headers), a dict with status/body/headers, "
        f"or None after streaming; it returned {type(value).__name__}"
    )


@attrs.frozen
class StreamEventInfo:
    type: str  # create | update | delete | event
    data: Any  # the new value; the old value for delete; {"type", "data"} for a custom event

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


@attrs.frozen
class StreamTriggerInput:
    """What a ``stream(...)`` trigger's handler receives (attributes or ``input["..."]``)."""

    stream_name: str
    group_id: str
    id: str | None
    timestamp: int
    offset: int | None
    event: StreamEventInfo
    type: str = "stream"

    __class_getitem__ = classmethod(lambda cls, _item: cls)

    def __getitem__(self, key: str) -> Any:
        aliases = {"streamName": "stream_name", "groupId": "group_id"}
        return getattr(self, aliases.get(key, key))
