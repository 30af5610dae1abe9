"""Virtual actors: addressed by key, activated by their first message.

As in Orleans, a caller never creates or destroys them: `ref(key)` is always
valid, the actor is activated when a message arrives and passivated after it
has been idle for ``idle_timeout`` (if `Actor.can_passivate` agrees). A
message that arrives while it passivates is handled by the next activation.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING

from .actor import Actor, ActorRef
from .errors import ActorStopped

if TYPE_CHECKING:
    from .cell import ActorCell
    from .supervisor import ActorOptions, Supervisor

__all__ = ["VirtualActors"]


class VirtualActors:
    """The directory of one kind of virtual actor."""

    def __init__(
        self, supervisor: Supervisor, name: str, factory: Callable[[Hashable], Actor], options: ActorOptions
    ) -> None:
        self.name = name
        self._supervisor = supervisor
        self._factory = factory
        self._options = options
        self._active: dict[Hashable, ActorCell] = {}
        #: Activations so far (for metrics and tests).
        self.activations = 0

    def __repr__(self) -> str:
        return f"<VirtualActors {self.name!r} active={len(self._active)}>"

    def __len__(self) -> int:
        return len(self._active)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._active

    def active_keys(self) -> Iterator[Hashable]:
        return iter(list(self._active))

    def ref(self, key: Hashable) -> ActorRef:
        """A ref to the actor for ``key``; no activation until a message is sent."""
        cell = self._active.get(key)
        if cell is not None:
            return cell.ref
        return ActorRef(None, key=key, kind=self, ask_timeout=self._options.ask_timeout)

    def activate(self, key: Hashable) -> ActorCell:
        """The live cell for ``key``, activating it if there is none (what a ref's first message does)."""
        cell = self._active.get(key)
        if cell is not None and not cell.ended:
            return cell
        if self._supervisor.stopping:
            raise ActorStopped(f"cannot activate {self.name} {key!r}: the system is stopping")
        factory = self._factory
        cell = self._supervisor.start_cell(lambda: factory(key), key, self._options, kind=self, on_end=self._ended)
        self._active[key] = cell
        self.activations += 1
        return cell

    def _ended(self, cell: ActorCell) -> None:
        if self._active.get(cell.key) is cell:
            del self._active[cell.key]
