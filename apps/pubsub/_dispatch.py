"""Dispatchers (by stable name), the per-subscription bound, and shard choice.

Pure: no trio, no processes. A dispatcher is a plain function
``dispatch(entries, from_pid, message)``; it crosses between nodes as the
name it was registered under, since functions cannot cross the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from beamlet.actors import Pid

__all__ = [
    "DEFAULT_DISPATCHER",
    "Bounded",
    "DispatchFn",
    "UnknownDispatcherError",
    "default_dispatch",
    "dispatcher",
    "dispatcher_name",
    "dispatchers_by_name",
    "lookup_dispatcher",
    "shard_for",
    "strip_bounds",
]

#: ``dispatch(entries, from_pid, message)``: ``entries`` is ``[(pid, metadata), ...]``.
DispatchFn = Callable[[list[tuple[Pid, Any]], "Pid | None", Any], Any]
F = TypeVar("F", bound=DispatchFn)

#: The name of the default dispatcher (send ``message`` to every pid but ``from_pid``).
DEFAULT_DISPATCHER = "beamlet.pubsub"


class UnknownDispatcherError(LookupError):
    """No dispatcher is registered under that name on this node.

    Attributes:
        name: the name.
    """

    def __init__(self, name: object) -> None:
        self.name = name
        super().__init__(
            f"no PubSub dispatcher is registered as {name!r} on this node; register it "
            "with @dispatcher(name) on every node"
        )


_BY_NAME: dict[str, DispatchFn] = {}
_NAMES: dict[int, tuple[DispatchFn, str]] = {}  # id(fn) -> (fn, name)


def _register(name: str, fn: DispatchFn) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a dispatcher's name is a non-empty str, not {name!r}")
    if not callable(fn):
        raise TypeError(
            f"a dispatcher is a function dispatch(entries, from_pid, message), not {fn!r}"
        )
    old = _BY_NAME.get(name)
    if old is not None and old is not fn:
        raise ValueError(f"another dispatcher is already registered as {name!r}: {old!r}")
    _BY_NAME[name] = fn
    _NAMES[id(fn)] = (fn, name)


def dispatcher(name: str) -> Callable[[F], F]:
    """Register a dispatcher under a stable ``name`` (a decorator).

    A dispatcher is a plain function ``dispatch(entries, from_pid, message)``
    that delivers ``message`` to the subscribers of a topic on one node:
    ``entries`` is ``[(pid, metadata), ...]`` (the metadata given to
    ``subscribe``) and ``from_pid`` the pid ``broadcast_from`` skips, or None.
    It runs in the publisher (local subscribers) and once per other node, in
    the adapter's process there; it must not block. Register it on every
    node, under the same name: a broadcast carries the name, not the function.

    Example::

        @dispatcher("myapp.fastlane")
        def fastlane(entries, from_pid, message):
            encoded = {}
            for pid, serializer in entries:
                if pid != from_pid:
                    if serializer not in encoded:
                        encoded[serializer] = serializer.encode(message)
                    send(pid, ("push", encoded[serializer]))

        broadcast("chat", "room:1", event, dispatcher=fastlane)

    Raises:
        TypeError: ``name`` is not a non-empty str, or the function is not callable.
        ValueError: another function is registered under ``name``.
    """

    def register(fn: F) -> F:
        _register(name, fn)
        return fn

    return register


def lookup_dispatcher(name: str) -> DispatchFn:
    """The dispatcher registered as ``name``.

    Raises:
        UnknownDispatcherError: none is.
    """
    fn = _BY_NAME.get(name) if type(name) is str else None
    if fn is None:
        raise UnknownDispatcherError(name)
    return fn


def dispatchers_by_name() -> dict[str, DispatchFn]:
    """The live table of registered dispatchers (name -> function); read, never write."""
    return _BY_NAME


def dispatcher_name(fn: Any) -> str | None:
    """The name ``fn`` is registered under, or None."""
    found = _NAMES.get(id(fn))
    return found[1] if found is not None and found[0] is fn else None


class Bounded:
    """A subscription's registry value when it has a bound (``max_pending``)."""

    __slots__ = ("max_pending", "metadata")

    def __init__(self, metadata: Any, max_pending: int) -> None:
        self.metadata = metadata
        self.max_pending = max_pending

    def __repr__(self) -> str:
        return f"Bounded({self.metadata!r}, max_pending={self.max_pending})"


def strip_bounds(entries: list[tuple[Pid, Any]]) -> list[tuple[Pid, Any]]:
    """The entries with each ``Bounded`` value replaced by its metadata."""
    return [(pid, v.metadata if type(v) is Bounded else v) for pid, v in entries]


def default_dispatch(entries: list[tuple[Pid, Any]], from_pid: Pid | None, message: Any) -> None:
    """The default dispatcher: ``send(pid, message)`` to every entry but ``from_pid``.

    (The PubSub delivers with this node's fast path when it is selected;
    this function is what it does.)
    """
    from beamlet.actors import send

    for pid, _ in entries:
        if pid != from_pid:
            send(pid, message)


_register(DEFAULT_DISPATCHER, default_dispatch)


def shard_for(pid: Pid | None, pool_size: int) -> int:
    """The shard a publisher sends through: the same one for every message of ``pid``.

    Sharding by publisher (as Phoenix does) keeps each publisher's messages
    in order across nodes. Code outside any process (``pid`` None) uses shard 0.

    Returns:
        An int in ``range(pool_size)``.
    """
    if pid is None or pool_size <= 1:
        return 0
    return pid.id % pool_size
