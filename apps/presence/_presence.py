"""``Presence``: who is connected where, cluster-wide, and the calls that use it.

A presence is a supervisor (registered under the presence's name) over
``pool_size`` shard processes (``_shard``); topics are spread over the
shards by ``shard_index``, the same on every node, so ``pool_size`` must be
the same on every node. The supervisor owns a node-local table
(``NodeVar``) with the configuration and each shard's ``TrackerCore``:

- writes (``track``, ``untrack``, ``update``) are calls to the shard of the
  topic, which changes its core and tells the others;
- reads (``list_presences``, ``get_by_key``) run in the caller, straight on
  the core's state: they never wait behind a shard's mailbox.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Any, Literal

import attrs
from beamlet.actors import Pid, call
from beamlet.actors.lowlevel import NodeVar, check_number, check_timeout
from beamlet.apps import pubsub as _pubsub
from beamlet.supervisors import ChildSpec, Supervisor, SupervisorSpec

from ._shard import Shard
from ._tracker import MetaUpdate, TrackerCore, TrackerOptions, shard_index

__all__ = [
    "Fetch",
    "Presence",
    "UnknownPresenceError",
    "get_by_key",
    "list_presences",
    "track",
    "untrack",
    "update",
]

#: ``fetch(topic, presences) -> presences``: enriches what is listed.
Fetch = Callable[[str, dict[Any, list[dict[str, Any]]]], Mapping[Any, Any]]

#: The options of ``Presence.start_link`` and ``child_spec`` that go to each
#: shard's tracker: ``TrackerOptions``' fields.
_TRACKER_OPTIONS = tuple(field.name for field in attrs.fields(TrackerOptions))


class UnknownPresenceError(LookupError):
    """No presence of that name runs on this node.

    Attributes:
        presence: the name asked for.
    """

    def __init__(self, presence: object) -> None:
        super().__init__(
            f"no presence named {presence!r} is running on this node "
            "(start it with Presence.start_link or Presence.child_spec)"
        )
        self.presence = presence


class _Table:
    """What the readers and the shards of one presence share, on one node."""

    __slots__ = ("cores", "fetch", "name", "options", "permdown_on_shutdown", "pool_size", "pubsub")

    def __init__(
        self,
        name: str,
        pubsub: str,
        pool_size: int,
        options: TrackerOptions,
        fetch: Fetch | None,
        permdown_on_shutdown: bool,
    ) -> None:
        self.name = name
        self.pubsub = pubsub
        self.pool_size = pool_size
        self.options = options
        self.fetch = fetch
        self.permdown_on_shutdown = permdown_on_shutdown
        # Each shard's core, set by the shard's init; left in place when the
        # shard exits, until the restarted shard replaces it.
        self.cores: list[TrackerCore | None] = [None] * pool_size

    def shard_name(self, index: int) -> str:
        return f"{self.name}.shard{index}"

    def shard_topic(self, index: int) -> str:
        return f"beamlet_presence:{self.name}:{index}"

    def core(self, topic: str) -> TrackerCore:
        core = self.cores[shard_index(topic, self.pool_size)]
        if core is None:  # pragma: no cover - the shards start before the table is shown
            raise UnknownPresenceError(self.name)
        return core


_TABLES: NodeVar[_Table] = NodeVar("beamlet.apps.presence")


class _PresenceSupervisor(Supervisor):
    async def init(self, table: _Table) -> SupervisorSpec:  # type: ignore[override]
        _TABLES.set(table, key=table.name)
        return SupervisorSpec(
            [
                Shard.child_spec(table, i, id=i, name=table.shard_name(i))
                for i in range(table.pool_size)
            ],
            strategy="one_for_one",
            max_restarts=table.pool_size * 2,
            max_seconds=1.0,
        )


class Presence:
    """Phoenix.Tracker / Phoenix.Presence for beamlet: who is connected where, with no database.

    Every node runs the same presence (same name, same ``pubsub``, same
    ``pool_size``). Processes are tracked on their node under a topic and a
    key with a meta (a dict); every node lists every tracked process of the
    cluster, and the subscribers of a topic on each node get a
    ``PresenceDiff`` for each change. The state is a CRDT replicated by
    heartbeats and deltas over the PubSub: no node is special, and replicas
    converge after any loss, duplication or partition.

    Example::

        from beamlet.apps.presence import Presence, list_presences, track
        from beamlet.apps.pubsub import PubSub

        children = [
            PubSub.child_spec("chat_pubsub"),
            Presence.child_spec("chat_presence", pubsub="chat_pubsub"),
        ]
        ...
        await track("chat_presence", self_pid(), "room:1", "alice", {"device": "phone"})
        list_presences("chat_presence", "room:1")
        # {"alice": [{"device": "phone", "ref": "..."}]}

    Timings (Phoenix.Tracker's defaults):

    - heartbeats every ``broadcast_period`` (1.5 s) carry the changes; when
      nothing changes, an empty heartbeat goes out every
      ``max_silent_periods + 1`` periods (15 s);
    - a node not heard from for ``down_period`` (30 s) is down: its presences
      leave (they come back, with no state transfer, if it is heard again);
    - after ``permdown_period`` (20 min) it is forgotten;
    - a node that restarts is a new replica: its previous incarnation is
      forgotten at once (its presences leave on every node as soon as the
      new one's first heartbeat arrives);
    - a node that joins lists the others' presences within about
      ``1.25 x broadcast_period``: they answer its first heartbeat with
      theirs at once, even when idle.

    A tracked process that exits is untracked (the shard monitors it). By
    default a stopped node's presences stay listed elsewhere until
    ``down_period`` has passed, as in Phoenix (so that clients reconnecting to
    another node cause no leave/join storm); ``permdown_on_shutdown=True``
    makes a clean shutdown visible at once.

    When not to use it: for data that must survive the whole cluster's
    restart, or that must be strongly consistent (a presence is eventually
    consistent: a join is seen elsewhere within about ``2 x broadcast_period``).
    """

    @staticmethod
    def _table(arguments: Mapping[str, Any]) -> _Table:
        """Check the options of ``start_link`` or ``child_spec``: its arguments, by name.

        Both pass their ``locals()`` on entry, so that the options are read
        and checked in one place, for both alike.
        """
        name, pubsub, pool_size, fetch, permdown_on_shutdown = (
            arguments[key]
            for key in ("name", "pubsub", "pool_size", "fetch", "permdown_on_shutdown")
        )
        options = {key: arguments[key] for key in _TRACKER_OPTIONS}
        if type(name) is not str or not name:
            raise TypeError(f"a presence's name must be a non-empty str, not {name!r}")
        if type(pubsub) is not str or not pubsub:
            raise TypeError(
                f"pubsub must be the name of a PubSub (a non-empty str), not {pubsub!r}"
            )
        check_number(pool_size, "pool_size", minimum=1, integer=True)
        if fetch is not None and not callable(fetch):
            raise TypeError(
                f"fetch must be a function (topic, presences) -> presences, not {fetch!r}"
            )
        if type(permdown_on_shutdown) is not bool:
            raise TypeError(f"permdown_on_shutdown must be a bool, not {permdown_on_shutdown!r}")
        if options.get("down_period") is None:
            options.pop("down_period", None)
        return _Table(
            name,
            pubsub,
            pool_size,  # type: ignore[arg-type]
            TrackerOptions(**options),
            fetch,  # type: ignore[arg-type]
            permdown_on_shutdown,
        )

    @classmethod
    async def start_link(
        cls,
        name: str,
        *,
        pubsub: str,
        pool_size: int = 1,
        broadcast_period: float = 1.5,
        down_period: float | None = None,
        permdown_period: float = 1200.0,
        max_silent_periods: int = 10,
        clock_sample_periods: int = 2,
        max_delta_sizes: tuple[int, ...] = (100, 1000, 10000),
        fetch: Fetch | None = None,
        permdown_on_shutdown: bool = False,
    ) -> Pid:
        """Start the presence ``name`` on this node, linked to the caller.

        Args:
            name: the presence's name, the same on every node; the
                supervisor is registered under it.
            pubsub: the name of the PubSub it talks through (started before it).
            pool_size: shards (topics are spread over them); the same on every node.
            broadcast_period: seconds between heartbeats.
            down_period: seconds of silence after which a node is down
                (default ``broadcast_period * max_silent_periods * 2``, 30 s);
                at least ``2 * broadcast_period``.
            permdown_period: seconds of silence after which a node is
                forgotten; more than ``down_period``.
            max_silent_periods: periods without changes before an empty heartbeat.
            clock_sample_periods: heartbeats between transfer decisions.
            max_delta_sizes: sizes of the delta generations kept to catch up
                replicas without a full transfer.
            fetch: ``fetch(topic, presences) -> presences``, applied once per
                ``list_presences`` or ``get_by_key`` call (in the caller) and
                per ``PresenceDiff`` (in the shard) to enrich what is listed;
                ``presences`` is ``{key: [meta, ...]}`` (copies, free to
                change). It must be quick and not block: a node-local
                cache lookup, not a database query.
            permdown_on_shutdown: on a clean shutdown, tell the other nodes
                to forget this one at once.

        Returns:
            The pid of the presence's supervisor.

        Raises:
            TypeError / ValueError: a bad option (the message names it).
            UnknownPubSubError: ``pubsub`` is not running on this node
                (start the PubSub first); nothing was started.
            StartError: the name is taken, or a shard failed to start.

        Cancellation:
            If cancelled while starting, the presence is stopped.
        """
        table = cls._table(locals())
        _check_pubsub(pubsub)  # UnknownPubSubError now, rather than a failed start
        return await _PresenceSupervisor.start_link(table, name=name)

    @classmethod
    def child_spec(
        cls,
        name: str,
        *,
        pubsub: str,
        id: Hashable = None,
        restart: Literal["permanent", "transient", "temporary"] = "permanent",
        pool_size: int = 1,
        broadcast_period: float = 1.5,
        down_period: float | None = None,
        permdown_period: float = 1200.0,
        max_silent_periods: int = 10,
        clock_sample_periods: int = 2,
        max_delta_sizes: tuple[int, ...] = (100, 1000, 10000),
        fetch: Fetch | None = None,
        permdown_on_shutdown: bool = False,
    ) -> ChildSpec:
        """The spec that runs the whole presence as one child of a supervisor.

        The options are ``start_link``'s, checked now; ``id`` defaults to
        ``("presence", name)``. Put it after its PubSub in the same
        supervisor (``rest_for_one``, so that a restarted PubSub restarts it).
        If that PubSub is not running when the presence starts, the child
        fails to start with ``UnknownPubSubError`` as its reason.
        """
        table = cls._table(locals())
        return ChildSpec(
            ("presence", name) if id is None else id,
            _Start(table),
            restart=restart,
            shutdown="infinity",
            type="supervisor",
        )


def _check_pubsub(pubsub: str) -> None:
    """Raise ``UnknownPubSubError`` if no PubSub named ``pubsub`` runs on this node.

    The shards check it too, when they start (a PubSub may stop in between).
    """
    _pubsub.node_name(pubsub)


class _Start:
    """The start function of ``Presence.child_spec``: each start gets a fresh table."""

    def __init__(self, table: _Table) -> None:
        self.table = table

    async def __call__(self) -> Pid:
        t = self.table
        # A PubSub that is not running: this child fails to start with that
        # error as its reason, rather than with a shard's nested failure.
        _check_pubsub(t.pubsub)
        fresh = _Table(t.name, t.pubsub, t.pool_size, t.options, t.fetch, t.permdown_on_shutdown)
        return await _PresenceSupervisor.start_link(fresh, name=t.name)

    def __repr__(self) -> str:
        return f"Presence.start_link({self.table.name!r})"


# -- the calls ---------------------------------------------------------------------


def _lookup(presence: object) -> _Table:
    if type(presence) is not str:
        raise TypeError(f"presence must be the name of a presence (a str), not {presence!r}")
    table = _TABLES.get(key=presence, default=None)
    if table is None:
        raise UnknownPresenceError(presence)
    return table


def _check_topic(topic: object, what: str) -> str:
    if type(topic) is not str:
        raise TypeError(f"{what}: topic must be a str, not {topic!r}")
    return topic


async def _call(table: _Table, topic: str, request: tuple[Any, ...], timeout: float) -> Any:
    index = shard_index(topic, table.pool_size)
    status, value = await call(table.shard_name(index), request, timeout=timeout)
    if status == "error":
        raise value
    return value


async def track(
    presence: str,
    pid: Pid,
    topic: str,
    key: Hashable,
    meta: Mapping[str, Any],
    *,
    timeout: float = 5.0,
) -> str:
    """Track process ``pid`` under ``topic`` and ``key``, with ``meta``, until it exits.

    A process may be tracked under many topics and keys (a user with two
    devices: the same key, two processes); each (pid, topic, key) once.

    Args:
        presence: the presence's name.
        pid: the process (usually the caller's, ``self_pid()``).
        topic: the topic (a str).
        key: what it is tracked as (a user id...): hashable, and able to
            cross the wire.
        meta: a dict of whatever the others should see (able to cross the
            wire); a copy is stored, with the presence's unique ``"ref"``.
        timeout: seconds to wait for the shard.

    Returns:
        The presence's ref (the ``"ref"`` of its meta).

    Raises:
        AlreadyTrackedError: ``pid`` is already tracked under ``topic`` and ``key``.
        UnknownPresenceError: no presence of that name runs on this node.
        TypeError: a bad argument: the message says which and why.
        CallTimeoutError / CallExitError: the shard did not answer.

    Cancellation:
        If cancelled while waiting, the presence may or may not be tracked.
    """
    table = _lookup(presence)
    _check_topic(topic, "track")
    check_timeout(timeout)
    TrackerCore._checked(pid, topic, key, meta, "track")
    ref: str = await _call(table, topic, ("track", pid, topic, key, meta), timeout)
    return ref


async def untrack(
    presence: str,
    pid: Pid,
    topic: str | None = None,
    key: Hashable = None,
    *,
    timeout: float = 5.0,
) -> None:
    """Stop tracking ``pid`` under ``topic`` and ``key``; or, with neither, everywhere.

    Untracking what is not tracked does nothing.

    Raises:
        UnknownPresenceError: no presence of that name runs on this node.
        TypeError: a bad argument (a topic given without a key, or the reverse).
        CallTimeoutError / CallExitError: a shard did not answer.

    Cancellation:
        If cancelled while waiting, the presence may or may not be untracked.
    """
    table = _lookup(presence)
    check_timeout(timeout)
    if type(pid) is not Pid:
        raise TypeError(f"untrack: pid must be a Pid, not {pid!r}")
    if topic is None:
        if key is not None:
            raise TypeError("untrack: give a topic with the key, or neither to untrack everywhere")
        for index in range(table.pool_size):
            status, value = await call(
                table.shard_name(index), ("untrack_pid", pid), timeout=timeout
            )
            if status == "error":
                raise value
        return
    _check_topic(topic, "untrack")
    await _call(table, topic, ("untrack", pid, topic, key), timeout)


async def update(
    presence: str,
    pid: Pid,
    topic: str,
    key: Hashable,
    meta: MetaUpdate,
    *,
    timeout: float = 5.0,
) -> str:
    """Replace the meta of ``pid``'s presence under ``topic`` and ``key``.

    Subscribers see the old meta leave and the new one join, in one
    ``PresenceDiff``; the new meta has a new ``"ref"`` and ``"prev_ref"``,
    the old one's.

    Args:
        meta: the new meta, or a function given a copy of the current meta
            (refs included) that returns the new one; it runs in the shard,
            so it must be quick.

    Returns:
        The new ref.

    Raises:
        NoPresenceError: ``pid`` is not tracked there on this node.
        UnknownPresenceError: no presence of that name runs on this node.
        TypeError: a bad argument, or a meta that cannot cross the wire.
        CallTimeoutError / CallExitError: the shard did not answer.
    """
    table = _lookup(presence)
    _check_topic(topic, "update")
    check_timeout(timeout)
    if type(pid) is not Pid:
        raise TypeError(f"update: pid must be a Pid, not {pid!r}")
    if not callable(meta):
        TrackerCore._checked(pid, topic, key, meta, "update")
    ref: str = await _call(table, topic, ("update", pid, topic, key, meta), timeout)
    return ref


def list_presences(presence: str, topic: str) -> dict[Any, Any]:
    """Who is present under ``topic``, on every node: ``{key: [meta, ...]}``.

    One meta per tracked process under that key, each with its ``"ref"``;
    presences of nodes that are down are left out. Read from this node's
    copy, in the caller: it never waits for a shard. With a ``fetch`` hook,
    what it returns for these presences (called once).

    Raises:
        UnknownPresenceError: no presence of that name runs on this node.
        TypeError: ``topic`` is not a str.
    """
    table = _lookup(presence)
    _check_topic(topic, "list_presences")
    core = table.core(topic)
    presences = {
        key: [dict(meta) for meta in metas]
        for key, metas in core.state.list_presences(topic).items()
    }
    if table.fetch is None:
        return presences
    return dict(table.fetch(topic, presences))


def get_by_key(presence: str, topic: str, key: Hashable) -> Any:
    """The metas of ``key`` under ``topic``, on every node: ``[meta, ...]`` (``[]`` if none).

    With a ``fetch`` hook, what it returns for ``{key: metas}`` under ``key``.

    Raises:
        UnknownPresenceError: no presence of that name runs on this node.
        TypeError: ``topic`` is not a str, or ``key`` is not hashable.
    """
    table = _lookup(presence)
    _check_topic(topic, "get_by_key")
    hash(key)
    core = table.core(topic)
    metas = [dict(meta) for _pid, meta in core.state.get_by_key(topic, key)]
    if table.fetch is None:
        return metas
    if not metas:
        return []
    return table.fetch(topic, {key: metas}).get(key, [])


# The calls are also reachable from the class, as Phoenix.Presence's are
# from the module that uses it: Presence.track(...), Presence.list_presences(...).
Presence.track = staticmethod(track)  # type: ignore[attr-defined]
Presence.untrack = staticmethod(untrack)  # type: ignore[attr-defined]
Presence.update = staticmethod(update)  # type: ignore[attr-defined]
Presence.list_presences = staticmethod(list_presences)  # type: ignore[attr-defined]
Presence.get_by_key = staticmethod(get_by_key)  # type: ignore[attr-defined]
