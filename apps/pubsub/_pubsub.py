"""The PubSub: its supervision tree, subscriptions, and the broadcasts.

A PubSub named ``name`` is, on each node, a supervisor (``f"{name}.Supervisor"``,
``rest_for_one``) over a duplicate-keys ``Registry`` named ``name`` (topic ->
subscribers, with their metadata) and the adapter's child. The Registry's
metadata holds the node's ``_State`` (the adapter instance and the counters),
so that every function below finds it in the caller without a message.
Local dispatch runs in the publisher: it reads the Registry and delivers.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any

from beamlet.actors import Pid, Registry, UnknownRegistryError
from beamlet.actors.lowlevel import check_number, current_node
from beamlet.cluster import encode
from beamlet.supervisors import Supervisor

from ._adapter import Adapter, AdapterConfig, resolve_adapter
from ._dispatch import (
    DEFAULT_DISPATCHER,
    Bounded,
    DispatchFn,
    default_dispatch,
    dispatcher_name,
    lookup_dispatcher,
)

__all__ = [
    "PubSub",
    "UnknownPubSubError",
    "broadcast",
    "broadcast_from",
    "direct_broadcast",
    "local_broadcast",
    "local_broadcast_from",
    "node_name",
    "stats",
    "subscribe",
    "unsubscribe",
]

#: The Registry metadata key under which a PubSub keeps its node's state.
_META = "beamlet.pubsub"


class UnknownPubSubError(LookupError):
    """No PubSub of that name runs on this node.

    Attributes:
        pubsub: the name.
    """

    def __init__(self, pubsub: object) -> None:
        self.pubsub = pubsub
        super().__init__(
            f"no PubSub named {pubsub!r} is running on this node (start it with "
            f"PubSub.start_link({pubsub!r}) or PubSub.child_spec({pubsub!r}))"
        )


class _State:
    """A PubSub's state on one node: its adapter and its counters."""

    __slots__ = ("adapter", "config", "name", "slow_drops")

    def __init__(self, config: AdapterConfig, adapter: Adapter) -> None:
        self.name = config.pubsub
        self.config = config
        self.adapter = adapter
        #: Messages not delivered to a subscriber over its ``max_pending``.
        self.slow_drops = 0


def _state(pubsub: Any) -> _State:
    if type(pubsub) is not str:
        raise TypeError(f"a PubSub is named by a str, not {pubsub!r}")
    try:
        state = Registry.meta(pubsub, _META, None)
    except UnknownRegistryError:
        raise UnknownPubSubError(pubsub) from None
    if type(state) is not _State:
        raise UnknownPubSubError(pubsub)
    return state


def _check_topic(topic: Any) -> None:
    if type(topic) is not str:
        raise TypeError(f"a PubSub topic is a str, not {type(topic).__name__}: {topic!r}")


def _check_from(from_pid: Any, optional: bool) -> None:
    if type(from_pid) is not Pid and not (optional and from_pid is None):
        raise TypeError(f"from_pid must be a Pid, not {from_pid!r}")


def _resolve(dispatcher: Any, remote: bool) -> tuple[DispatchFn, str]:
    """The dispatcher function and the name it crosses the wire as."""
    if dispatcher is None:
        return default_dispatch, DEFAULT_DISPATCHER
    if type(dispatcher) is str:
        return lookup_dispatcher(dispatcher), dispatcher
    if callable(dispatcher):
        name = dispatcher_name(dispatcher)
        if name is None:
            if remote:
                raise TypeError(
                    f"the dispatcher {dispatcher!r} is not registered: a broadcast to other "
                    "nodes carries a dispatcher by name; register it with @dispatcher(name) "
                    "on every node"
                )
            name = DEFAULT_DISPATCHER  # never sent
        return dispatcher, name
    raise TypeError(f"a dispatcher is a registered name or function, not {dispatcher!r}")


def _dispatch_local(
    state: _State, topic: str, message: Any, fn: DispatchFn, from_pid: Pid | None
) -> None:
    """Deliver to this node's subscribers of ``topic``, in the caller."""
    entries = Registry.lookup(state.name, topic)
    if not entries:
        return
    if fn is default_dispatch:
        lookup = current_node().lookup
        for pid, value in entries:
            if from_pid is not None and pid == from_pid:
                continue
            proc = lookup(pid)
            if proc is None:
                continue
            if type(value) is Bounded and proc.message_queue_len >= value.max_pending:
                state.slow_drops += 1
                continue
            proc.deliver(message)
        return
    kept = []
    lookup = current_node().lookup
    for pid, value in entries:
        if type(value) is Bounded:
            if from_pid is None or pid != from_pid:
                proc = lookup(pid)
                if proc is not None and proc.message_queue_len >= value.max_pending:
                    state.slow_drops += 1
                    continue
            value = value.metadata
        kept.append((pid, value))
    if kept:
        fn(kept, from_pid, message)


def _targets(state: _State, topic: str) -> list[tuple[Any, int]]:
    """This node's subscriber processes of ``topic`` for the default dispatcher,
    each with its bound (0: none), for several messages in a row.

    Valid until the caller lets other code run (a checkpoint, or a function
    that may subscribe, unsubscribe or end a process).
    """
    lookup = current_node().lookup
    targets = []
    for pid, value in Registry.lookup(state.name, topic):
        proc = lookup(pid)
        if proc is not None:
            targets.append((proc, value.max_pending if type(value) is Bounded else 0))
    return targets


# -- subscriptions ----------------------------------------------------------------------


def subscribe(
    pubsub: str, topic: str, metadata: Any = None, *, max_pending: int | None = None
) -> None:
    """Subscribe the calling process to ``topic`` until it unsubscribes or exits.

    Subscribing twice delivers each message twice. The subscriber receives
    each broadcast message itself, as sent (locally, the very object).

    Args:
        pubsub: the PubSub's name.
        topic: a str.
        metadata: kept with the subscription and given to dispatchers.
        max_pending: a bound for a slow subscriber: a message that finds
            ``max_pending`` or more messages already waiting in the
            subscriber's mailbox is dropped for this subscription, and
            counted in ``stats(pubsub)["slow_subscriber_drops"]``. None (the
            default): no bound, as in Phoenix. Either way the publisher never
            waits.

    Raises:
        UnknownPubSubError: no such PubSub on this node.
        TypeError: ``topic`` is not a str, or ``max_pending`` not an int.
        ValueError: ``max_pending`` < 1.
        NotInProcessError: not called from a process.
    """
    state = _state(pubsub)
    _check_topic(topic)
    if max_pending is None:
        Registry.register(state.name, topic, metadata)
    else:
        check_number(max_pending, "max_pending", minimum=1, integer=True)
        Registry.register(state.name, topic, Bounded(metadata, max_pending))


def unsubscribe(pubsub: str, topic: str) -> None:
    """Remove every subscription of the calling process to ``topic`` (none: a no-op).

    Raises:
        UnknownPubSubError: no such PubSub on this node.
        TypeError: ``topic`` is not a str.
        NotInProcessError: not called from a process.
    """
    state = _state(pubsub)
    _check_topic(topic)
    Registry.unregister(state.name, topic)


# -- broadcasts -------------------------------------------------------------------------


def broadcast(pubsub: str, topic: str, message: Any, dispatcher: Any = None) -> None:
    """Send ``message`` to every subscriber of ``topic`` on every node.

    The adapter sends one message per other node, where it is fanned out;
    this node's subscribers get it from the caller, before this returns,
    without any server in between. At most once: a node that is down,
    partitioned or too busy to take it misses it for good. Messages of one
    publisher arrive in the order sent.

    Args:
        pubsub: the PubSub's name.
        topic: a str.
        message: what subscribers receive; it must be encodable (see
            ``beamlet.cluster``), even with no other node connected, so that
            code behaves the same on one node and on many.
        dispatcher: a registered dispatcher (its name or function), or None
            for the default (send to each subscriber).

    Raises:
        UnknownPubSubError: no such PubSub on this node.
        TypeError: ``topic`` is not a str, ``message`` cannot be encoded, or
            ``dispatcher`` is not registered. Nothing was sent to anyone.
        ValueError: ``message`` is over the codec's limits; nothing was sent.
        UnknownDispatcherError: no dispatcher has that name.
    """
    state = _state(pubsub)
    _check_topic(topic)
    fn, name = _resolve(dispatcher, True)
    state.adapter.broadcast(topic, message, name, None)
    _dispatch_local(state, topic, message, fn, None)


def broadcast_from(
    pubsub: str, from_pid: Pid, topic: str, message: Any, dispatcher: Any = None
) -> None:
    """``broadcast``, except to ``from_pid`` (on every node), usually the caller.

    Raises:
        As ``broadcast``; ``TypeError`` if ``from_pid`` is not a ``Pid``.
    """
    state = _state(pubsub)
    _check_topic(topic)
    _check_from(from_pid, False)
    fn, name = _resolve(dispatcher, True)
    state.adapter.broadcast(topic, message, name, from_pid)
    _dispatch_local(state, topic, message, fn, from_pid)


def local_broadcast(pubsub: str, topic: str, message: Any, dispatcher: Any = None) -> None:
    """Send ``message`` to the subscribers of ``topic`` on this node only.

    Never touches the network or the codec: ``message`` may be any value,
    and ``dispatcher`` any function (registered or not).

    Raises:
        UnknownPubSubError, TypeError (topic), UnknownDispatcherError.
    """
    state = _state(pubsub)
    _check_topic(topic)
    fn, _ = _resolve(dispatcher, False)
    _dispatch_local(state, topic, message, fn, None)


def local_broadcast_from(
    pubsub: str, from_pid: Pid | None, topic: str, message: Any, dispatcher: Any = None
) -> None:
    """``local_broadcast``, except to ``from_pid``.

    Adapters hand what arrives from other nodes to this, with ``from_pid``
    None for a plain broadcast.

    Raises:
        As ``local_broadcast``; ``TypeError`` if ``from_pid`` is neither a
        ``Pid`` nor None.
    """
    state = _state(pubsub)
    _check_topic(topic)
    _check_from(from_pid, True)
    fn, _ = _resolve(dispatcher, False)
    _dispatch_local(state, topic, message, fn, from_pid)


def direct_broadcast(
    node: str, pubsub: str, topic: str, message: Any, dispatcher: Any = None
) -> None:
    """Send ``message`` to the subscribers of ``topic`` on ``node`` only.

    ``node`` is a name ``node_name(pubsub)`` gives on that node. An unknown
    or unreachable node gets nothing, and this returns normally (as in
    Phoenix). For this node's own name, the subscribers here get it from the
    caller (the message is still checked for encoding).

    Raises:
        As ``broadcast``; ``TypeError`` if ``node`` is not a str.
    """
    state = _state(pubsub)
    _check_topic(topic)
    if type(node) is not str:
        raise TypeError(f"direct_broadcast() needs a node name (a str), not {node!r}")
    fn, name = _resolve(dispatcher, True)
    adapter = state.adapter
    if node == adapter.node_name():
        encode(message)
        _dispatch_local(state, topic, message, fn, None)
    else:
        adapter.direct_broadcast(node, topic, message, name, None)


def node_name(pubsub: str) -> str:
    """This node's name for the PubSub's adapter (what ``direct_broadcast`` takes).

    Raises:
        UnknownPubSubError: no such PubSub on this node.
    """
    return _state(pubsub).adapter.node_name()


def stats(pubsub: str) -> dict[str, int]:
    """The PubSub's counters on this node.

    ``"slow_subscriber_drops"``: messages dropped for subscribers over their
    ``max_pending``; ``"subscriptions"``: subscriptions on this node; plus the
    adapter's own. The cluster adapter's: ``"remote_sent"`` (broadcasts
    sent to other nodes: one per node per broadcast), ``"remote_batches"``
    (wire messages sent to other nodes: one per node per batch),
    ``"remote_received"`` (broadcasts received from other nodes, each fanned
    out here), ``"remote_busy_drops"`` (broadcasts not sent because a node's
    connection was over its ``busy_limit``) and ``"bad_input"`` (messages
    and batch entries its shards refused).

    Raises:
        UnknownPubSubError: no such PubSub on this node.
    """
    state = _state(pubsub)
    counters = {
        "slow_subscriber_drops": state.slow_drops,
        "subscriptions": Registry.count(state.name),
    }
    counters.update(state.adapter.stats())
    return counters


# -- the supervision tree ---------------------------------------------------------------


def _config(name: Any, pool_size: Any, broadcast_pool_size: Any) -> AdapterConfig:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a PubSub's name is a non-empty str, not {name!r}")
    check_number(pool_size, "pool_size", minimum=1, integer=True)
    if broadcast_pool_size is None:
        broadcast_pool_size = pool_size
    check_number(broadcast_pool_size, "broadcast_pool_size", minimum=1, integer=True)
    return AdapterConfig(name, f"{name}.Adapter", pool_size, broadcast_pool_size)


#: The options ``start_link`` takes besides the adapter's (``child_spec`` adds ``id``, ``restart``).
_OWN_OPTIONS = ("adapter", "pool_size", "broadcast_pool_size")


def _adapter_label(adapter: Any, cls: type[Adapter]) -> str:
    if isinstance(adapter, str):
        return f"the {adapter} adapter"
    return f"the adapter {cls.__qualname__}"


def _check_adapter_options(
    name: str,
    adapter: Any,
    cls: type[Adapter],
    options: Mapping[str, Any],
    own: tuple[str, ...],
) -> None:
    """Refuse an option neither the PubSub nor its adapter's class takes.

    Without this, a typo (``pool_sise=3``) reaches the adapter's ``__init__``
    and fails there, naming a class the caller never wrote.

    Raises:
        TypeError: an unknown option; the message names the PubSub, the option,
            and what the PubSub and its adapter take.
    """
    try:
        parameters = list(inspect.signature(cls).parameters.values())
    except (TypeError, ValueError):  # no signature to read: let the class decide
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return
    takes = [
        p.name
        for p in parameters[1:]  # the first is the AdapterConfig
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    unknown = [key for key in options if key not in takes]
    if not unknown:
        return
    key = unknown[0]
    close = difflib.get_close_matches(key, [*own, *takes], n=1)
    label = _adapter_label(adapter, cls)
    raise TypeError(
        f"PubSub {name!r}: unknown option {key!r}"
        + (f" (did you mean {close[0]!r}?)" if close else "")
        + f"; PubSub takes {', '.join(own)}; "
        + (f"{label} takes {', '.join(takes)}" if takes else f"{label} takes no options")
    )


class PubSub:
    """A distributed publish/subscribe service (Phoenix.PubSub).

    Example::

        await PubSub.start_link("chat")            # on every node
        subscribe("chat", "room:lobby")            # in a subscriber process
        broadcast("chat", "room:lobby", ("msg", "ann", "hi"))
        msg = await receive()                      # ("msg", "ann", "hi")

    The module-level functions (``subscribe``, ``broadcast``, ...) are also
    available as static methods of this class.
    """

    @staticmethod
    async def start_link(
        name: str,
        adapter: str | type[Adapter] = "cluster",
        *,
        pool_size: int = 1,
        broadcast_pool_size: int | None = None,
        **adapter_options: Any,
    ) -> Pid:
        """Start the PubSub on this node, linked to the caller; return its supervisor's pid.

        Start it on every node, with the same name, adapter and ``pool_size``.
        With the cluster adapter, start it once the node is distributed.

        Args:
            name: the PubSub's name; its Registry takes this name in the
                node's names, its supervisor ``f"{name}.Supervisor"``.
            adapter: ``"cluster"`` (beamlet distribution, the default),
                ``"redis"``, or an ``Adapter`` subclass.
            pool_size: shards per node (the same on every node).
            broadcast_pool_size: shards publishers use (default ``pool_size``;
                at most ``pool_size``).
            adapter_options: passed to the adapter's class.

        Raises:
            TypeError / ValueError: a bad option (an unknown one: a TypeError
                naming it and the options the PubSub and its adapter take),
                before anything starts.
            ImportError: the adapter cannot be loaded.
            StartError: a child failed to start, or the name is taken.
        """
        config = _config(name, pool_size, broadcast_pool_size)
        cls = resolve_adapter(adapter)
        _check_adapter_options(name, adapter, cls, adapter_options, _OWN_OPTIONS)
        return await _start(config, cls, adapter_options)

    @staticmethod
    def child_spec(
        name: str,
        adapter: str | type[Adapter] = "cluster",
        *,
        pool_size: int = 1,
        broadcast_pool_size: int | None = None,
        id: Any = None,
        restart: str = "permanent",
        **adapter_options: Any,
    ) -> dict[str, Any]:
        """Describe how a supervisor starts the PubSub (a mapping ``ChildSpec`` accepts).

        The options are checked here (the adapter's class is instantiated
        once to check its own); each start builds a fresh adapter instance.

        Args:
            id: the child id (default ``("pubsub", name)``).
            restart: its restart type.
            (others: as ``start_link``.)
        """
        config = _config(name, pool_size, broadcast_pool_size)
        cls = resolve_adapter(adapter)
        own = (*_OWN_OPTIONS, "id", "restart")
        _check_adapter_options(name, adapter, cls, adapter_options, own)
        cls(config, **adapter_options)  # type: ignore[call-arg]
        options = dict(adapter_options)

        async def start_link() -> Pid:
            return await _start(config, cls, options)

        start_link.__qualname__ = "PubSub.start_link"
        return {
            "id": ("pubsub", name) if id is None else id,
            "start": start_link,
            "args": (),
            "restart": restart,
            "shutdown": "infinity",
            "type": "supervisor",
        }

    subscribe = staticmethod(subscribe)
    unsubscribe = staticmethod(unsubscribe)
    broadcast = staticmethod(broadcast)
    broadcast_from = staticmethod(broadcast_from)
    local_broadcast = staticmethod(local_broadcast)
    local_broadcast_from = staticmethod(local_broadcast_from)
    direct_broadcast = staticmethod(direct_broadcast)
    node_name = staticmethod(node_name)
    stats = staticmethod(stats)


async def _start(config: AdapterConfig, cls: type[Adapter], options: Mapping[str, Any]) -> Pid:
    adapter = cls(config, **options)  # type: ignore[call-arg]
    state = _State(config, adapter)
    children = [
        Registry.child_spec(config.pubsub, keys="duplicate", meta={_META: state}),
        adapter.child_spec(),
    ]
    return await Supervisor.start_link(
        children, strategy="rest_for_one", name=f"{config.pubsub}.Supervisor"
    )
