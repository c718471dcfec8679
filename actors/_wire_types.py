"""Wire types: how the classes of packages below ``beamlet.cluster`` cross between nodes.

The codec lives in ``beamlet.cluster``, above ``beamlet.actors`` and
``beamlet.supervisors``, which must not import it. A package below declares
its values' wire form here, with ``register_wire_type``; the codec, when it is
imported, registers every type declared so far and subscribes to later ones
(``on_wire_type``). So a supervisor's replies (``ChildInfo``, ``ChildCounts``
...) reach a caller on another node without ``beamlet.supervisors`` knowing
the codec exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

__all__ = ["WireType", "on_wire_type", "register_wire_type", "wire_types"]


@attrs.frozen
class WireType:
    """How instances of ``cls`` cross between nodes, under the stable name ``name``.

    Attributes:
        cls: the class (instances of exactly this type).
        name: its wire name; it starts with ``"beamlet."``.
        to_fields: returns an instance's field values, each of them encodable.
        from_fields: rebuilds an instance from the decoded field values; they
            come from the network, so it checks them and raises on anything
            unexpected (the codec turns that into a ``DecodeError``).
    """

    cls: type
    name: str
    to_fields: Callable[[Any], Sequence[Any]]
    from_fields: Callable[[Sequence[Any]], Any]


_TYPES: list[WireType] = []
_LISTENERS: list[Callable[[WireType], None]] = []


def register_wire_type(
    cls: type,
    name: str,
    to_fields: Callable[[Any], Sequence[Any]],
    from_fields: Callable[[Sequence[Any]], Any],
) -> None:
    """Declare how instances of ``cls`` cross between nodes (see ``WireType``).

    Fields travel by position. For beamlet's own packages below the codec;
    a user's message classes use ``beamlet.cluster.message`` instead.

    Raises:
        ValueError: ``name`` does not start with ``"beamlet."``.
    """
    if not isinstance(name, str) or not name.startswith("beamlet."):
        raise ValueError(f"a wire type's name starts with 'beamlet.', not {name!r}")
    wire_type = WireType(cls, name, to_fields, from_fields)
    _TYPES.append(wire_type)
    for listener in list(_LISTENERS):
        listener(wire_type)


def on_wire_type(listener: Callable[[WireType], None]) -> None:
    """Call ``listener`` with every wire type declared so far, then with each new one."""
    _LISTENERS.append(listener)
    for wire_type in list(_TYPES):
        listener(wire_type)


def wire_types() -> list[WireType]:
    """The wire types declared so far, in order."""
    return list(_TYPES)
