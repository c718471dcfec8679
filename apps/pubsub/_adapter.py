"""The adapter interface: how a PubSub reaches the other nodes.

A PubSub is the same on every node up to the network hop: subscriptions live
in a node-local ``Registry`` and a broadcast is dispatched on the publisher's
node by the publisher itself. The *adapter* carries a broadcast to the other
nodes and hands what arrives from them to local dispatch. beamlet ships two:
``"cluster"`` (beamlet distribution and ``pg``; ``_cluster.py``) and
``"redis"`` (Redis PUBLISH/SUBSCRIBE; ``_redis_adapter.py``, optional).
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping
from typing import Any

import attrs
from beamlet.actors import Pid
from beamlet.actors.lowlevel import Reply, check_number
from beamlet.cluster import RUNTIME_SIGNALS as _SIGNALS

__all__ = ["ADAPTERS", "RUNTIME_SIGNALS", "Adapter", "AdapterConfig", "resolve_adapter"]

#: What an adapter refuses as a broadcast from another node: the messages only
#: the runtime delivers (``beamlet.cluster.RUNTIME_SIGNALS``), and a call's
#: ``Reply``, which only the called node sends (a subscriber waiting in
#: ``call`` would take one with its ref as the answer). A broadcast that
#: carries one would forge it to every subscriber: adapters refuse it, as
#: distribution refuses such a plain message.
RUNTIME_SIGNALS: frozenset[type] = _SIGNALS | {Reply}


def _positive_int(instance: object, attribute: Any, value: Any) -> None:
    check_number(value, f"PubSub: {attribute.name}", minimum=1, integer=True)


@attrs.frozen
class AdapterConfig:
    """What every adapter is told about the PubSub it serves.

    Attributes:
        pubsub: the PubSub's name (also the name of its Registry).
        adapter_name: a prefix for the names of the adapter's processes
            (``f"{pubsub}.Adapter"``): register them as ``adapter_name`` or
            ``f"{adapter_name}.{i}"`` so they are the same on every node.
        pool_size: how many shards (processes) per node the adapter may run;
            the same on every node.
        broadcast_pool_size: how many of them publishers pick from (at most
            ``pool_size``; see Phoenix's two-step pool resizing).
    """

    pubsub: str
    adapter_name: str
    pool_size: int = attrs.field(default=1, validator=_positive_int)
    broadcast_pool_size: int = attrs.field(default=1, validator=_positive_int)

    def __attrs_post_init__(self) -> None:
        if self.broadcast_pool_size > self.pool_size:
            raise ValueError(
                f"PubSub: broadcast_pool_size ({self.broadcast_pool_size}) must not be over "
                f"pool_size ({self.pool_size})"
            )


class Adapter(abc.ABC):
    """How a PubSub carries broadcasts to other nodes (Phoenix.PubSub.Adapter).

    **Selection.** ``PubSub.start_link(name, adapter=...)`` takes ``"cluster"``
    (the default), ``"redis"`` or an ``Adapter`` subclass. A string is looked up
    in ``ADAPTERS`` (``"module:Class"``) when the PubSub is started, so the
    module of an optional adapter is imported only if it is chosen; a missing
    one raises ``ImportError`` saying what to install. The class is then
    instantiated as ``cls(config, **adapter_options)``, where ``config`` is an
    ``AdapterConfig`` and ``adapter_options`` are the keyword arguments of
    ``start_link``/``child_spec`` that the PubSub does not take itself.
    ``__init__`` only checks and stores its options (no I/O, no processes):
    it runs once when ``child_spec`` is written (to refuse bad options early,
    raising ``TypeError``/``ValueError``) and once per start of the PubSub on
    each node, so an instance belongs to one PubSub on one node and may keep
    that node's live state (connections, counters) set by its own processes.

    **Supervision.** The PubSub is a supervisor, ``rest_for_one`` over
    ``[Registry (duplicate keys, named after the PubSub), the adapter]``.
    ``child_spec()`` returns the spec of the adapter's child (a mapping
    ``ChildSpec`` accepts, or a ``ChildSpec``): one process or a supervisor of
    several (shards, connections). It starts after the Registry and is
    restarted whenever the Registry is; a crash of the adapter alone restarts
    only the adapter. Subscriptions survive an adapter restart. Register the
    adapter's processes under names derived from ``config.adapter_name``.

    **Sending.** ``broadcast`` and ``direct_broadcast`` are called
    synchronously, in the publisher's process (or in code outside any
    process), never in a server of the PubSub: they must not block or await.
    The PubSub calls ``broadcast`` first and then dispatches to this node's
    subscribers itself: an adapter's ``broadcast`` reaches the *other* nodes
    only, and must never deliver to this node (or its own messages would
    arrive twice). ``direct_broadcast`` gets only other nodes' names (a
    direct broadcast to this node is dispatched locally by the PubSub). The
    topic has been checked (a ``str``) and the dispatcher resolved to its
    registered name (a ``str``) before the adapter is called; ``from_pid``
    is the pid to skip (``broadcast_from``) or None.

    **Errors in the caller.** The message must be checked before anything
    is sent: if it cannot be encoded (``beamlet.cluster.encode`` raises
    ``TypeError``, or ``ValueError`` for a value over the codec's limits),
    raise that error from ``broadcast``/``direct_broadcast`` with nothing
    sent to any node. (Encode once and send the bytes, or send to the first
    node first: a beamlet ``send`` to a remote pid encodes before it queues.)
    Nothing else may raise for a problem of the network: delivery is
    at-most-once. A node that is unknown, down or unreachable gets nothing,
    and the call returns normally; what an adapter drops that way (a busy
    connection, Redis unreachable) it counts in ``stats()`` and logs
    (rate-limited, ``beamlet.actors.lowlevel.BadInputLog`` style).

    **Receiving.** An adapter process that gets a broadcast from another
    node hands it to local dispatch with
    ``local_broadcast_from(pubsub, from_pid, topic, message,
    dispatcher=name)`` (``from_pid`` may be None): that runs the dispatcher
    in the adapter's process, once per node, which fans out to the node's
    subscribers. What arrives from the network is untrusted: check its shape
    first; ``local_broadcast_from`` raises ``TypeError`` (topic not a str,
    from_pid not a Pid or None) or ``UnknownDispatcherError`` (a name not
    registered on this node), and a custom dispatcher may raise anything:
    catch it, report it through a ``BadInputLog``, and keep serving (never
    crash on input).

    **Dispatchers across nodes.** Functions cannot cross the wire, so a
    dispatcher crosses as the stable name it was registered under
    (``@dispatcher("name")``, on every node, as a ``@message`` class is).
    The default dispatcher's name is ``DEFAULT_DISPATCHER``.

    **Ordering.** Messages of one publisher must arrive in the order sent
    (per publisher and subscriber). With several shards, pick the shard by
    publisher (``shard_for(pid, config.broadcast_pool_size)``), never at
    random.

    A minimal adapter, for a single node (it reaches no other node)::

        class Alone(Adapter):
            def __init__(self, config):
                self.config = config

            def child_spec(self):
                return worker(trio.sleep_forever, id="alone")

            def node_name(self):
                return beamlet.cluster.node_name()

            def broadcast(self, topic, message, dispatcher, from_pid):
                beamlet.cluster.encode(message)  # the same errors as a real one

            def direct_broadcast(self, node, topic, message, dispatcher, from_pid):
                beamlet.cluster.encode(message)
    """

    @abc.abstractmethod
    def child_spec(self) -> Any:
        """The spec of the adapter's child under the PubSub's supervisor."""

    @abc.abstractmethod
    def node_name(self) -> str:
        """This node's identity for the adapter (``PubSub.node_name``).

        ``direct_broadcast`` on another node with this name reaches this node.
        """

    @abc.abstractmethod
    def broadcast(self, topic: str, message: Any, dispatcher: str, from_pid: Pid | None) -> None:
        """Send the broadcast to every other node (not this one); never blocks.

        Raises:
            TypeError, ValueError: ``message`` cannot be encoded; nothing was sent.
        """

    @abc.abstractmethod
    def direct_broadcast(
        self, node: str, topic: str, message: Any, dispatcher: str, from_pid: Pid | None
    ) -> None:
        """Send the broadcast to ``node`` only (never this node); never blocks.

        An unknown or unreachable ``node`` gets nothing, and this returns normally.

        Raises:
            TypeError, ValueError: ``message`` cannot be encoded; nothing was sent.
        """

    def stats(self) -> Mapping[str, int]:
        """The adapter's own counters on this node, merged into ``stats(pubsub)``."""
        return {}


#: The adapters selected by name: ``"module:Class"``, imported on first use.
ADAPTERS: dict[str, str] = {
    "cluster": "beamlet.apps.pubsub._cluster:ClusterAdapter",
    "redis": "beamlet.apps.pubsub._redis_adapter:RedisAdapter",
}

_EXTRAS = {"redis": "pip install 'beamlet[redis]'"}


def resolve_adapter(adapter: Any) -> type[Adapter]:
    """The adapter class for ``adapter`` (a name in ``ADAPTERS`` or a subclass).

    Raises:
        ValueError: an unknown name.
        TypeError: neither a str nor an ``Adapter`` subclass.
        ImportError: the adapter's module (or what it needs) is not installed.
    """
    if isinstance(adapter, type) and issubclass(adapter, Adapter):
        return adapter
    if not isinstance(adapter, str):
        raise TypeError(
            f"PubSub: adapter must be 'cluster', 'redis' or an Adapter subclass, not {adapter!r}"
        )
    target = ADAPTERS.get(adapter)
    if target is None:
        raise ValueError(
            f"PubSub: unknown adapter {adapter!r}; choose one of {sorted(ADAPTERS)} "
            "or pass an Adapter subclass"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = _EXTRAS.get(adapter)
        raise ImportError(
            f"PubSub: the {adapter!r} adapter cannot be loaded ({exc})"
            + (f"; it needs {hint}" if hint else "")
        ) from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise ImportError(f"PubSub: {target} is not an Adapter subclass")
    return cls
