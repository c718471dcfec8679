"""Process identifiers and references."""

from __future__ import annotations

import itertools
import secrets

import attrs

__all__ = ["Pid", "Ref", "new_creation"]


def new_creation() -> int:
    """Return a random, non-zero 32-bit incarnation number for a node."""
    return secrets.randbits(32) | 1


@attrs.frozen(order=True, cache_hash=True, repr=False)
class Pid:
    """The identity of a process: its node, its number there, and the node's incarnation.

    Pids are values: frozen, hashable and orderable. ``creation`` tells apart two
    incarnations of a node with the same name, so that a pid of a node that has
    restarted never reaches a process of the new incarnation.

    Attributes:
        node: the name of the node the process lives on, e.g. ``"a@127.0.0.1"``.
        id: the process number, unique on that node incarnation.
        creation: the node incarnation number.
    """

    node: str
    id: int
    creation: int

    def __repr__(self) -> str:
        return f"<{self.node}.{self.id}>"


@attrs.frozen(cache_hash=True, repr=False)
class Ref:
    """A unique reference, as made by ``monitor``, ``send_after`` or a ``call``.

    Attributes:
        node: the name of the node that made it.
        id: a number unique on that node incarnation.
        creation: the incarnation of that node.
    """

    node: str
    id: int
    creation: int

    def __repr__(self) -> str:
        return f"#Ref<{self.node}.{self.id}>"


class Counter:
    """A per-node source of increasing ids (no module-level state)."""

    __slots__ = ("_next",)

    def __init__(self) -> None:
        self._next = itertools.count(1).__next__

    def __call__(self) -> int:
        return self._next()
