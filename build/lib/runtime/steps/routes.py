"""HTTP route matching, as pure functions over strings.

``/todos/:id`` segments bind path parameters; where several routes match a
path, the one with literal segments earliest wins (``/todos/today`` beats
``/todos/:id``). A path that matches only under other methods is a 405,
with the methods that would work.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar
from urllib.parse import unquote

import attrs

__all__ = ["RouteTable", "RouteMatch", "MethodNotAllowed", "RouteConflict", "split_path"]

T = TypeVar("T")


def split_path(path: str) -> tuple[str, ...]:
    stripped = path.strip("/")
    return tuple(stripped.split("/")) if stripped else ()


class RouteConflict(ValueError):
    """Two routes with the same method and path shape."""


@attrs.frozen
class _Route(Generic[T]):
    method: str
    path: str
    segments: tuple[str, ...]
    target: T

    @property
    def shape(self) -> tuple[str, ...]:
        return tuple(":" if s.startswith(":") else s for s in self.segments)

    @property
    def rank(self) -> tuple[int, ...]:
        return tuple(1 if s.startswith(":") else 0 for s in self.segments)

    def bind(self, parts: tuple[str, ...]) -> dict[str, str] | None:
        params = {}
        for pattern, part in zip(self.segments, parts):
            if pattern.startswith(":"):
                if not part:
                    return None
                params[pattern[1:]] = unquote(part)
            elif pattern != part:
                return None
        return params


@attrs.frozen
class RouteMatch(Generic[T]):
    target: T
    params: dict[str, str]
    path: str  # the route's declared path


@attrs.frozen
class MethodNotAllowed:
    allowed: tuple[str, ...]


class RouteTable(Generic[T]):
    def __init__(self) -> None:
        self._by_length: dict[int, list[_Route[T]]] = {}

    def __len__(self) -> int:
        return sum(len(routes) for routes in self._by_length.values())

    def routes(self) -> list[tuple[str, str, T]]:
        return [(r.method, r.path, r.target) for rs in self._by_length.values() for r in rs]

    def add(self, method: str, path: str, target: T) -> None:
        route = _Route(method.upper(), path, split_path(path), target)
        for other in self._by_length.get(len(route.segments), []):
            if other.method == route.method and other.shape == route.shape:
                raise RouteConflict(f"{route.method} {path} conflicts with {other.method} {other.path}")
        routes = self._by_length.setdefault(len(route.segments), [])
        routes.append(route)
        routes.sort(key=lambda r: r.rank)

    def match(self, method: str, path: str) -> RouteMatch[T] | MethodNotAllowed | None:
        """The route for ``method path``; `MethodNotAllowed`; or None (404)."""
        parts = split_path(path)
        method = method.upper()
        allowed: list[str] = []
        fallback: Any = None
        for route in self._by_length.get(len(parts), ()):
            params = route.bind(parts)
            if params is None:
                continue
            if route.method == method:
                return RouteMatch(route.target, params, route.path)
            if method == "HEAD" and route.method == "GET" and fallback is None:
                fallback = RouteMatch(route.target, params, route.path)
            allowed.append(route.method)
        if fallback is not None:
            return fallback
        if allowed:
            return MethodNotAllowed(tuple(sorted(set(allowed))))
        return None
