"""Process identifiers and references."""

from __future__ import annotations

import itertools
import secrets
from typing import Any, NamedTuple, TypeVar

import attrs

__all__ = ["Pid", "Ref", "new_creation"]

_tuple_eq = tuple.__eq__
_T = TypeVar("_T", bound=tuple[Any, ...])


def tuple_value(cls: type[_T]) -> type[_T]:
    """Make a ``NamedTuple`` class a value of its own: equal only to an instance
    of the same class (never to a plain tuple), with a tuple's hash, and no order.

    For identifiers made on hot paths (``Ref``, ``From``): a tuple is made and
    hashed in C, where an attrs class pays Python calls for both.
    """

    def __eq__(self: _T, other: object) -> bool:
        return other.__class__ is cls and _tuple_eq(self, other)

    def __ne__(self: _T, other: object) -> bool:
        return not (other.__class__ is cls and _tuple_eq(self, other))

    def unordered(self: _T, other: object) -> bool:
        return NotImplemented

    cls.__eq__ = __eq__  # type: ignore[method-assign,assignment]
    cls.__ne__ = __ne__  # type: ignore[method-assign,assignment]
    cls.__hash__ = tuple.__hash__  # type: ignore[method-assign,assignment]
    cls.__lt__ = cls.__le__ = cls.__gt__ = cls.__ge__ = unordered  # type: ignore[method-assign,assignment]
    return cls


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


@tuple_value
class Ref(NamedTuple):
    """A unique reference, as made by ``monitor``, ``send_after`` or a ``call``.

    A frozen, hashable value. It is a tuple underneath, so that making one and
    hashing it (every ``call`` does both) cost what a tuple costs; but it
    equals only another ``Ref`` (never a plain tuple) and has no order. Treat
    it as opaque.

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
